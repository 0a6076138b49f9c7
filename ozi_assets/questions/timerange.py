"""Time ranges in questions: "today", "last 7 days", "between 03:00 and 04:00 UTC on March 4,
2023", "on 2023-03-04".

Relative ranges count back from the data's newest event, not the wall clock: on a replayed
sample "today" is the day the data ends, and on a live stream the two are seconds apart. The
answer says which instant "now" was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_MONTH_NAMES = (
    "january february march april may june july august september october november december"
)
MONTHS = {name: i + 1 for i, name in enumerate(_MONTH_NAMES.split())}
MONTHS.update({name[:3]: n for name, n in list(MONTHS.items())})

_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
DATE = (
    rf"(?:(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})"
    rf"|(?P<month>{_MONTH})\.? (?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:,? (?P<year>\d{{4}}))?)"
)
CLOCK = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
BETWEEN = re.compile(
    rf"\b(?:between|from) {CLOCK} (?:and|to|-) {CLOCK}\s*(?:utc|gmt|z)?(?:,? on {DATE})?"
)
ON_DATE = re.compile(rf"\bon {DATE}")
LAST_N = re.compile(r"\b(?:in the )?(?:last|past|previous) (?:(\d+) )?(hour|day|week)s?\b")
TODAY = re.compile(r"\btoday\b")
YESTERDAY = re.compile(r"\byesterday\b")


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC, and how to say it in an answer."""

    start: datetime
    end: datetime
    label: str  # e.g. "between 2023-03-04 03:00 and 04:00 UTC"

    def where(self, column: str = '"timestamp"') -> str:
        """A SQL condition on ``column`` (TIMESTAMPTZ) with the bounds as literals."""
        return (
            f"{column} >= TIMESTAMPTZ '{self.start.isoformat()}' "
            f"AND {column} < TIMESTAMPTZ '{self.end.isoformat()}'"
        )


def _date(match: re.Match[str], now: datetime) -> datetime:
    if match.group("iso"):
        return datetime.fromisoformat(match.group("iso")).replace(tzinfo=UTC)
    year = int(match.group("year") or now.year)
    return datetime(year, MONTHS[match.group("month")], int(match.group("day")), tzinfo=UTC)


def _clock(hour: str, minute: str | None, meridiem: str | None) -> timedelta:
    h = int(hour) % 24
    if meridiem == "pm" and h < 12:
        h += 12
    if meridiem == "am" and h == 12:
        h = 0
    return timedelta(hours=h, minutes=int(minute or 0))


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def parse_time_range(question: str, now: datetime) -> TimeRange | None:
    """The time range a question names, or None. ``question`` is lower-case; ``now`` is the
    newest event time (UTC). Raises nothing: an unreadable range is simply not found."""
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if m := BETWEEN.search(question):
        day = _date(m, now) if (m.group("iso") or m.group("month")) else day_start
        start = day + _clock(m.group(1), m.group(2), m.group(3))
        end = day + _clock(m.group(4), m.group(5), m.group(6))
        if end <= start:
            end += timedelta(days=1)
        return TimeRange(start, end, f"between {_fmt(start)} and {_fmt(end)} UTC")
    if m := ON_DATE.search(question):
        start = _date(m, now)
        return TimeRange(start, start + timedelta(days=1), f"on {start:%Y-%m-%d} (UTC)")
    if TODAY.search(question):
        return TimeRange(
            day_start,
            day_start + timedelta(days=1),
            f"today ({day_start:%Y-%m-%d} UTC, the day of the newest data)",
        )
    if YESTERDAY.search(question):
        start = day_start - timedelta(days=1)
        return TimeRange(start, day_start, f"yesterday ({start:%Y-%m-%d} UTC)")
    if m := LAST_N.search(question):
        n = int(m.group(1) or 1)
        unit = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
        end = now + timedelta(microseconds=1)  # include the newest event itself
        start = now - n * unit[m.group(2)]
        plural = "s" if n != 1 else ""
        return TimeRange(
            start,
            end,
            f"in the last {n} {m.group(2)}{plural} (to {_fmt(now)} UTC, the newest data)",
        )
    return None
