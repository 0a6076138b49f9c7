"""Time ranges in questions: "today", "last 7 days", "between 03:00 and 04:00 UTC on March 4,
2023", "the 3am UTC hour of March 4", "after 5am UTC on March 4", "before 02:00 UTC",
"on 2023-03-04", "on 4 March 2023", "in December 2022", "in 2022", "the first half hour
after 4am"; clock times in words ("half past three") once ``written_clock`` wrote them as
digits.

Relative ranges count back from the data's newest event, not the wall clock: on a replayed
sample "today" is the day the data ends, and on a live stream the two are seconds apart. The
answer says which instant "now" was. A clock time without a date is on the day of the newest
event, or the day before when that day's has not come yet. "Before" a time starts at the
Farcaster epoch; "after" a time ends with that day, or with the newest event when the question
says so ("until the end of the sample", "up to now").
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
MONTHS["sept"] = 9

_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
DATE = (
    rf"(?:(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})"
    rf"|(?P<month>{_MONTH})\.? (?P<day>\d{{1,2}})(?!\d)(?:st|nd|rd|th)?(?:,? (?P<year>\d{{4}}))?"
    rf"|(?<!\d)(?P<day2>\d{{1,2}})(?:st|nd|rd|th)? (?:of )?(?P<month2>{_MONTH})\b\.?"
    rf"(?:,? (?P<year2>\d{{4}}))?)"
)
# A clock time: "03:00", "3am", "5 o'clock", "midnight", "noon".
CLOCK = r"(midnight|noon|\d{1,2}(?::\d{2})?(?:\s*(?:am|pm|o'clock))?)"
STRICT_CLOCK = r"(midnight|noon|\d{1,2}(?::\d{2}|\s*(?:am|pm|o'clock)))"
ZONE = r"(?:\s*\(?(?:utc|gmt|z)\)?)?"
# What may join a clock time to its date: "03:00 UTC on March 4", "3am of March 4",
# "before midnight going into March 4", "2:00 UTC March 4".
DATE_AFTER = re.compile(
    rf"\s*,?\s*(?:(?:on|of|for|during|going into|into)\s+)?(?:{DATE}"
    # "between 03:00 and 04:00 on the 4th": that day of the newest event's month
    rf"|the (?P<dom>\d{{1,2}})(?:st|nd|rd|th)\b(?!\s+(?:of\s+)?(?:{_MONTH})\b))"
)
FROM_TO = re.compile(
    rf"\b(?:between|from) {CLOCK}{ZONE}\s*(?:and|to|until|till|-)\s*{CLOCK}{ZONE}(?:\s+hours?)?"
    # "messages sent 23:45 to 00:15": two times that can be nothing but clock times
    rf"|(?<![\w:.]){STRICT_CLOCK}{ZONE}\s*(?:to|until|till)\s*{STRICT_CLOCK}{ZONE}"
)
DASH = re.compile(
    rf"(?:\b(?:in |during )?the (?:\w+ )?(?:hours? )?)?(?<![\d:-]){CLOCK}{ZONE}\s*-\s*{CLOCK}"
    rf"(?![\d-]){ZONE}(?:\s+hours?)?"
)
HOUR = re.compile(
    rf"\b(?:(?:in|during) )?(?:the )?{STRICT_CLOCK}{ZONE}\s+hour\b"
    # "the hour starting at 03:00 UTC"
    rf"|\b(?:(?:in|during) )?the hour (?:starting|beginning|that starts|that begins|from) "
    rf"(?:at )?{STRICT_CLOCK}{ZONE}"
)
AFTER = re.compile(rf"\b(?:after|later than|since|from) {CLOCK}{ZONE}")
# "from 05:00 until the end of the sample", "after 4am up to now": to the newest event, not to
# that day's end
TO_THE_END = re.compile(
    r"\s*,?\s*(?:until|till|to|through|up to|up until) (?:now|the (?:very )?end(?! of the day)"
    r"(?: of (?:the )?(?:sample|data(?:set)?|stream|log|records?))?|the (?:latest|newest|last) "
    r"(?:data|events?|casts?|messages?))\b"
)
BEFORE = re.compile(rf"\b(?:before|earlier than|until|till|prior to|up to|up until) {CLOCK}{ZONE}")
ON_DATE = re.compile(rf"\b(?:(?:on|during|for) )?{DATE}{ZONE}")
# "since March 3", "after 2023-03-03", "before 4 March": a date, not a clock time, after the word
SINCE_DATE = re.compile(rf"\b(since|after|later than|before|until|till|prior to) {DATE}{ZONE}")
# "for march 3rd and march 4th", "between 3 March and 4 March", "from March 3 to March 4":
# both days whole (the second date's groups are named with a trailing "_b")
DATES = re.compile(
    rf"\b(?:(?:on|during|for|between|from) )?{DATE}\s*(?:and|to|through|until|-)\s*"
    + re.sub(r"\(\?P<(\w+)>", r"(?P<\1_b>", DATE)
    + ZONE
)
IN_MONTH = re.compile(
    rf"\b(?:(?:in|during) ({_MONTH})(?:,? (\d{{4}}))?|({_MONTH}),? (\d{{4}}))\b"
)  # "in March", "during march 2023", "feb 2023"
# "on the 4th": that day of the month of the newest event
DAY_OF_MONTH = re.compile(r"\b(?:on |for )?the (\d{1,2})(?:st|nd|rd|th)\b(?! (?:hour|minute))")
IN_YEAR = re.compile(r"\b(?:in|during) (\d{4})\b")
LAST_N = re.compile(r"\b(?:in the )?(?:last|past|previous|final) (?:(\d+) )?(hour|day|week)s?\b")
TODAY = re.compile(r"\btoday\b")
YESTERDAY = re.compile(r"\byesterday\b")
# A length of time after a clock time: "the first half hour after 4am", "the 15 minutes
# from 03:15", "the hour following 2am".
DURATION = (
    r"(?P<n>\d+|an?|one|two|three|four|five|ten|fifteen|twenty|thirty|forty[- ]five|sixty|"
    r"ninety)?\s*(?P<unit>half[- ]?(?:an? )?hour|quarter[- ]?(?:of an? )?hour|minutes?|mins?|"
    r"hours?)"
)
DURATION_FROM = re.compile(
    rf"\b(?:(?:in|during|within|over) )?the (?:first |next )?{DURATION}"
    rf" (?:after|from|following|since|starting at|beginning at) {CLOCK}{ZONE}"
)
# A length of time at the data's start or end: "the first 60 minutes after the very first
# cast", "the first half hour of the data", "the last 15 minutes of the sample".
_OF_THE_DATA = (
    r"(?:of|in) (?:the )?(?:data(?:set)?|sample|stream|log)"
    r"|(?:after|from|following|since) (?:the )?(?:very )?(?:first|earliest|oldest) "
    r"(?:cast|post|message|event)(?: (?:in|of) (?:the )?(?:data(?:set)?|sample))?"
)
FIRST_OF_DATA = re.compile(
    rf"\b(?:(?:in|during|within|over) )?the (?P<end>first|last|final) {DURATION}"
    rf" (?:{_OF_THE_DATA})\b"
)
# A length of time at a day's start or end: "the first hour of March 4", "the last 30
# minutes of 2023-03-03".
EDGE_OF_DAY = re.compile(
    rf"\b(?:(?:in|during|within|over) )?the (?P<end>first|last|final) {DURATION}"
    rf" (?:of|on) (?:the day,? )?{DATE}{ZONE}"
)
FARCASTER_EPOCH = datetime(2021, 1, 1, tzinfo=UTC)

# Clock times and lengths written in words, and the digits they stand for.
_HOUR_NAMES = ("zero", "one", "two", "three", "four", "five", "six")
_HOUR_NAMES += ("seven", "eight", "nine", "ten", "eleven", "twelve")
_HOUR_WORDS = {w: i for i, w in enumerate(_HOUR_NAMES)}
_HOUR_WORD = "|".join(_HOUR_WORDS)
_MINUTE_WORDS = {"five": 5, "ten": 10, "twenty": 20, "twenty-five": 25, "twenty five": 25}
_COUNT_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "ten": 10,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty five": 45,
    "forty-five": 45,
    "sixty": 60,
    "ninety": 90,
}
# "half past three", "a quarter to four", "ten past two", "20 minutes to 5". Not "from 4 to 5"
# nor "from ten to two": before "to" only a quarter or minutes said as such.
_AMOUNT_PAST = r"(half|quarter|a quarter|(?:twenty[- ])?five|ten|twenty)|(\d{1,2}) minutes"
_AMOUNT_TO = r"(quarter|a quarter)|((?:twenty[- ])?five|ten|twenty|\d{1,2}) minutes"
_PAST = re.compile(
    rf"(?:\b(?:{_AMOUNT_PAST}) (past|after)|\b(?:{_AMOUNT_TO}) (to|before|of)) "
    rf"({_HOUR_WORD}|\d{{1,2}})\b(?!:)"
)
_WORD_CLOCK = re.compile(rf"\b({_HOUR_WORD})(?=\s*(?:am|pm|a\.m\.|p\.m\.|o'clock)\b)")
# "from two to three", "between one and two": hours, as in "from 2 to 3"
_WORD_RANGE = re.compile(
    rf"\b(from|between) ({_HOUR_WORD}) (to|and|until|till) ({_HOUR_WORD})\b"
    r"(?=\s*(?:$|[?.,!;(]|(?:am|pm|a\.m\.|p\.m\.|utc|gmt|o'clock|on|hours?)\b))"
)  # not "between two and five casts"
# "the fifteen-minute window 03:15-03:30", "in the quarter hour from 3:15 to 3:30": the
# length of a range written out beside it says nothing more
_WINDOW = re.compile(
    r"\b(?:(?:in|within|during|over) )?the (?:(?:\d+|[a-z]+(?:[- ][a-z]+)?)[- ]minutes?|"
    r"quarter[- ]hour|half[- ]hour|one[- ]hour|hour[- ]long)(?: (?:window|period|interval|span|"
    r"slot|stretch|block))?\s+(?=(?:from |between )?\d)"
)


_MILITARY_RANGE = re.compile(
    r"\b([01]\d|2[0-3])([0-5]\d)\s*-\s*([01]\d|2[0-3])([0-5]\d)(?=\s*(?:utc|gmt|z|hrs|hours)\b)"
)


def written_clock(question: str) -> str:
    """``question`` (lower case) with clock times written in words as digits: "half past
    three" → "3:30", "quarter to four" → "3:45", "ten past two" → "2:10", "three pm" → "3 pm";
    and the length of a range written beside it dropped ("the fifteen-minute window
    03:15-03:30" → "03:15-03:30"). Other text is left as it is."""

    def past(m: re.Match[str]) -> str:
        amount = next(g for g in (m.group(1), m.group(2), m.group(4), m.group(5)) if g)
        relation, hour_text = m.group(3) or m.group(6), m.group(7)
        hour = _HOUR_WORDS.get(hour_text)
        hour = int(hour_text) if hour is None else hour
        if amount.isdigit():
            minutes = int(amount)
        else:
            minutes = {"half": 30, "quarter": 15, "a quarter": 15}.get(amount) or _MINUTE_WORDS[
                amount.replace("-", " ")
            ]
        if not 0 < minutes < 60 or hour > 23:
            return m.group(0)
        if relation in ("to", "before", "of"):
            if amount == "half":
                return m.group(0)  # "half to four" is not said
            hour, minutes = (hour - 1) % 24, 60 - minutes
        return f"{hour}:{minutes:02d}"

    text = _PAST.sub(past, question)
    text = _WORD_RANGE.sub(
        lambda m: f"{m.group(1)} {_HOUR_WORDS[m.group(2)]} {m.group(3)} {_HOUR_WORDS[m.group(4)]}",
        text,
    )
    text = _WORD_CLOCK.sub(lambda m: str(_HOUR_WORDS[m.group(1)]), text)
    text = re.sub(r"\b([ap])\.m\.", r"\1m", text)
    # a range of 24-hour clock times written without colons before its zone ("0130-0230
    # utc"); only with the zone, so a span of years ("2022-2023") stays as written
    text = _MILITARY_RANGE.sub(r"\1:\2-\3:\4", text)
    # "at or after 03:00", "on or after March 4": since then, which includes it ("on or
    # before" is left: "before" would leave its day out)
    text = re.sub(r"\b(?:at|on) or after\b", "since", text)
    return _WINDOW.sub("", text)


# A time of day written with its part of the day: "3 in the morning", "from 3 to 4 in the
# afternoon" ("at night" says no half of the day: "2 at night" is am, "11 at night" pm).
_PART_OF_DAY = re.compile(
    r"\b(\d{1,2}(?::\d{2})?)(?:(\s*(?:-|to|and|until|till)\s*)(\d{1,2}(?::\d{2})?))?"
    r"(?: o'clock)? in the (morning|afternoon|evening)\b"
)
# A date and its time of day written together: "2023-03-04T03:00Z", "2023-03-04 03:00",
# "March 4 at 3am". Its groups are renamed per endpoint of a range (see _renamed).
_DATE_TIME = rf"{DATE}(?:t|,?\s+(?:at\s+)?)(?P<clock>{STRICT_CLOCK}){ZONE}"


def _renamed(pattern: str, suffix: str) -> str:
    return re.sub(r"\(\?P<(\w+)>", rf"(?P<\1{suffix}>", pattern)


_DATE_TIME_RANGE = re.compile(
    rf"\b(?P<word>between|from) {_renamed(_DATE_TIME, '_a')}\s*(?:and|to|until|till|-)\s*"
    rf"{_renamed(_DATE_TIME, '_b')}"
)
_ONE_DATE_TIME = re.compile(rf"\b{_DATE_TIME}")
# The time first: "from 11pm on March 3 to 1am on March 4".
_TIME_DATE = rf"(?P<clock>{STRICT_CLOCK}){ZONE},?\s+(?:on\s+|of\s+)?{DATE}"
_TIME_DATE_RANGE = re.compile(
    rf"\b(?P<word>between|from) {_renamed(_TIME_DATE, '_a')}\s*(?:and|to|until|till|-)\s*"
    rf"{_renamed(_TIME_DATE, '_b')}"
)
# A range of two clock times said without "from" or "between": "3am to 4am", "03:00 until
# 04:00" (both unmistakably times: "2 to 3 casts" is no range).
_BARE_RANGE = re.compile(
    rf"(?<!from )(?<!between )(?<![\w:])({STRICT_CLOCK}{ZONE}\s+(?:to|until|till)\s+{STRICT_CLOCK})"
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY = {name: i for i, name in enumerate(_WEEKDAYS)}
WEEKDAY.update({name[:3]: i for i, name in enumerate(_WEEKDAYS)})
WEEKDAY.update(tue=1, tues=1, thur=3, thurs=3)
# A weekday written before its date: "Saturday, March 4", "Sat 4 Mar 2023".
_WEEKDAY_DATE = re.compile(
    rf"\b(?P<weekday>{'|'.join(sorted(WEEKDAY, key=len, reverse=True))})\.?,?\s+"
    rf"(?=(?P<date>{DATE}))"
)
_ORDINALS = (
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
    "twenty-first",
    "twenty-second",
    "twenty-third",
    "twenty-fourth",
    "twenty-fifth",
    "twenty-sixth",
    "twenty-seventh",
    "twenty-eighth",
    "twenty-ninth",
    "thirtieth",
    "thirty-first",
)
ORDINAL = {name: i + 1 for i, name in enumerate(_ORDINALS)}
_ORDINAL = "|".join(sorted(ORDINAL, key=len, reverse=True))
# An ordinal day in words beside its month: "the fourth of March", "March fourth".
_ORDINAL_DATE = re.compile(
    rf"\b(?P<day>{_ORDINAL})(?= of (?:{_MONTH})\b)|\b(?P<month>{_MONTH}) (?P<day2>{_ORDINAL})\b"
)


_DATE_ONLY = re.compile(DATE)


def written_dates(question: str, now: datetime) -> str:
    """``question`` (lower case, clock times as digits) with dates and times of day written
    the way ``find_time_range`` reads them: seconds dropped ("03:00:00"); the part of the
    day as am or pm ("3 in the morning"); a date and its time written together as the time
    on the date ("2023-03-04T03:00Z" → "03:00 utc on 2023-03-04"), a range of two as one
    range when they are on one day or cross one midnight; and a date written apart from the
    one time range that names none moved beside it ("On March 4, how many casts between 3
    and 4am" → "how many casts between 3 and 4am on march 4")."""
    text = re.sub(
        r"\b(\d{4})/(\d{1,2})/(\d{1,2})\b",  # "2023/03/04": year first, so not ambiguous
        lambda m: f"{m.group(1)}-{int(m.group(2)):02d}-{int(m.group(3)):02d}",
        question,
    )
    # "mar4", "march4th", "4mar": a day and its month typed without the space between
    text = re.sub(rf"\b({_MONTH})(\d{{1,2}}(?:st|nd|rd|th)?)\b", r"\1 \2", text)
    text = re.sub(rf"\b(\d{{1,2}}(?:st|nd|rd|th)?)({_MONTH})\b", r"\1 \2", text)
    text = _ORDINAL_DATE.sub(
        lambda m: (
            f"{ORDINAL[m.group('day')]}th"
            if m.group("day")
            else f"{m.group('month')} {ORDINAL[m.group('day2')]}th"
        ),
        text,
    )

    def weekday(m: re.Match[str]) -> str:
        # said only when it is that date's weekday; another weekday is left for the planner
        # to refuse, since which of the two was meant is not said
        date = _DATE_ONLY.match(m.group("date"))
        right = date is not None and _date(date, now).weekday() == WEEKDAY[m.group("weekday")]
        return "" if right else m.group(0)

    text = _WEEKDAY_DATE.sub(weekday, text)
    text = _BARE_RANGE.sub(r"from \1", text)
    text = re.sub(r"\b(\d{4}-\d{2}-\d{2})t(?=\d{1,2}:\d{2})", r"\1 ", text)
    text = re.sub(r"\b(\d{1,2}:\d{2}):\d{2}(?:\.\d+)?(?!\d)", r"\1", text)
    text = re.sub(r"\b(\d{1,2}:\d{2}) ?z\b", r"\1 utc", text)

    def part_of_day(m: re.Match[str]) -> str:
        half = "am" if m.group(4) == "morning" else "pm"
        if m.group(3):
            return f"{m.group(1)}{half}{m.group(2)}{m.group(3)}{half}"
        return f"{m.group(1)}{half}"

    text = _PART_OF_DAY.sub(part_of_day, text)

    def date_time_range(m: re.Match[str]) -> str:
        first, last = _date(m, now, "_a"), _date(m, now, "_b")
        start, end = first + _clock(m.group("clock_a")), last + _clock(m.group("clock_b"))
        days = last - first
        if not (start < end and days in (timedelta(0), timedelta(days=1))):
            return m.group(0)  # not one range FROM_TO can say: left for the planner to judge
        if days and end - start > timedelta(days=1):
            return m.group(0)
        clocks = f"{m.group('clock_a')} and {m.group('clock_b')}"
        return f"{m.group('word')} {clocks} on {first:%Y-%m-%d}"

    text = _DATE_TIME_RANGE.sub(date_time_range, text)
    text = _TIME_DATE_RANGE.sub(date_time_range, text)
    text = _ONE_DATE_TIME.sub(lambda m: f"{m.group('clock')} on {_date(m, now):%Y-%m-%d}", text)
    return _date_beside_its_clock(text)


def _date_beside_its_clock(text: str) -> str:
    """``text`` with a date written apart from the first clock range (one that names no
    date of its own) moved right after it; ``text`` when there is no such pair."""
    if DATES.search(text) or SINCE_DATE.search(text):
        return text  # read before any clock (find_time_range), as whole days
    if EDGE_OF_DAY.search(text):
        return text  # "the first hour of March 4 (00:00 to 01:00)": the date is the edge's
    clock = next((m for p in _CLOCK_RANGES if (m := p.search(text))), None)
    if (
        clock is None
        or DATE_AFTER.match(text, clock.end())
        or re.match(r"[-/\d]", text[clock.end() :])
    ):
        return text
    dates = [
        d
        for pattern in (ON_DATE, DAY_OF_MONTH)
        for d in pattern.finditer(text)
        if d.end() <= clock.start() or d.start() >= clock.end()
    ]
    if len(dates) != 1:
        return text  # no date, or several: which goes with the clock is not said
    d = dates[0]
    between = (
        text[d.end() : clock.start()] if d.end() <= clock.start() else text[clock.end() : d.start()]
    )
    if re.search(r"\b(?:and|or|but|versus|vs|than|compared)\b", between):
        return text  # "on March 3 and how many after 5am": two questions, each its own time
    said = re.sub(r"^(?:on|during|for) ", "", d.group(0).strip())
    if d.end() <= clock.start():
        return f"{text[: d.start()]} {text[d.end() : clock.end()]} on {said}{text[clock.end() :]}"
    return f"{text[: clock.end()]} on {said}{text[clock.end() : d.start()]} {text[d.end() :]}"


def _words(length: timedelta) -> str:
    """ "90 minutes", "hour", "2 hours": a length as "the first …" says it."""
    minutes = int(length.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes} minutes"
    return "hour" if minutes == 60 else f"{minutes // 60} hours"


def _duration(n: str | None, unit: str) -> timedelta:
    count = _COUNT_WORDS.get((n or "a").replace("-", " "))
    count = int(n) if count is None and n else (count or 1)
    if unit.startswith("half"):
        return timedelta(minutes=30 * count)
    if unit.startswith("quarter"):
        return timedelta(minutes=15 * count)
    if unit.startswith("min"):
        return timedelta(minutes=count)
    return timedelta(hours=count)


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


def _date(match: re.Match[str], now: datetime, suffix: str = "") -> datetime:
    def group(name: str) -> str | None:
        return match.group(name + suffix)

    if group("iso"):
        return datetime.fromisoformat(group("iso") or "").replace(tzinfo=UTC)
    if dom := match.groupdict().get("dom"):
        return now.astimezone(UTC).replace(day=int(dom), hour=0, minute=0, second=0, microsecond=0)
    month = group("month") or group("month2") or ""
    day = group("day") or group("day2") or "1"
    year = int(group("year") or group("year2") or now.year)
    return datetime(year, MONTHS[month], int(day), tzinfo=UTC)


def _clock(text: str) -> timedelta:
    """ "03:00", "3am", "5 o'clock", "midnight" → the time after midnight."""
    text = text.strip()
    if text == "midnight":
        return timedelta(0)
    if text == "noon":
        return timedelta(hours=12)
    m = re.match(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm|o'clock)?", text)
    assert m is not None  # the patterns above only hand over clock times
    h = int(m.group(1)) % 24
    if m.group(3) == "pm" and h < 12:
        h += 12
    if m.group(3) == "am" and h == 12:
        h = 0
    return timedelta(hours=h, minutes=int(m.group(2) or 0))


def _clock_pair(first: str, second: str) -> tuple[timedelta, timedelta]:
    """The two ends of a spoken range of clock times, after midnight. A bare hour (1 to 12,
    no minutes) beside an end with am or pm takes the half of the day that puts it nearest
    before (or after) that end: "between 12 and 1am" is 00:00-01:00, "11 to 1am" 23:00-01:00,
    "from 10pm to 11" 22:00-23:00; two bare hours are on a 24-hour clock ("3 and 4")."""

    def bare(text: str) -> bool:
        return re.fullmatch(r"\d{1,2}", text.strip()) is not None and 1 <= int(text) <= 12

    def told(text: str) -> bool:
        return re.search(r"am|pm|midnight|noon", text) is not None

    def gap(a: timedelta, b: timedelta) -> timedelta:
        return (b - a) % timedelta(days=1) or timedelta(days=1)

    start, end = _clock(first), _clock(second)
    if bare(first) and told(second):
        start = min((_clock(first + half) for half in ("am", "pm")), key=lambda t: gap(t, end))
    elif bare(second) and told(first):
        end = min((_clock(second + half) for half in ("am", "pm")), key=lambda t: gap(start, t))
    return start, end


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _with_date(
    question: str,
    match: re.Match[str],
    default: datetime,
    now: datetime,
    clock: timedelta | None = None,
) -> tuple[datetime, int]:
    """The date written right after a clock expression, and where the expression ends. With
    no date written: ``default`` (the day of the newest event), or the day before when the
    range's start at ``clock`` on that day is still to come: "from 23:45 to 00:15" asked of
    data that ends at 06:00 means the night before, not a night that has not come."""
    if d := DATE_AFTER.match(question, match.end()):
        return _date(d, now), d.end()
    if clock is not None and default + clock > now:
        return default - timedelta(days=1), match.end()
    return default, match.end()


def _day(start: datetime) -> TimeRange:
    """The UTC calendar day starting at ``start``."""
    return TimeRange(start, start + timedelta(days=1), f"on {start:%Y-%m-%d} (UTC)")


def _of_month(now: datetime, day: int) -> datetime | None:
    """Day ``day`` of ``now``'s month, or None when the month has no such day."""
    try:
        return datetime(now.year, now.month, day, tzinfo=UTC)
    except ValueError:  # "the 31st" of a shorter month: not a date
        return None


def find_time_range(
    question: str, now: datetime, first: datetime | None = None
) -> tuple[TimeRange, tuple[int, int]] | None:
    """The time range a question names and the span of the question that says it, or None.

    ``question`` is lower-case; ``now`` is the newest event time (UTC), ``first`` the oldest
    (None: unknown, and "the first hour of the data" is not read). Raises nothing: an
    unreadable range is simply not found (and its words are left for the planner to judge).
    """
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    at_data_end = FIRST_OF_DATA.search(question)
    if at_data_end and at_data_end.group("end") == "first" and first is not None:
        start = first
        end = first + _duration(at_data_end.group("n"), at_data_end.group("unit"))
        label = f"the first {_words(end - start)} of the data ({_fmt(start)} to {_fmt(end)} UTC)"
        return TimeRange(start, end, label), at_data_end.span()
    if m := EDGE_OF_DAY.search(question):
        day, length = _date(m, now), _duration(m.group("n"), m.group("unit"))
        start = day if m.group("end") == "first" else day + timedelta(days=1) - length
        label = f"between {_fmt(start)} and {_fmt(start + length)} UTC"
        return TimeRange(start, start + length, label), m.span()
    # dates first: "from 2023-03-03 to 2023-03-04", "since March 3" hold no clock time
    if (m := DATES.search(question)) and (first := _date(m, now)) <= (last := _date(m, now, "_b")):
        end = last + timedelta(days=1)
        label = f"from {first:%Y-%m-%d} to {last:%Y-%m-%d} (UTC, whole days)"
        return TimeRange(first, end, label), m.span()
    if m := SINCE_DATE.search(question):
        day, word = _date(m, now), m.group(1)
        if word in ("before", "until", "till", "prior to"):
            return TimeRange(FARCASTER_EPOCH, day, f"before {day:%Y-%m-%d} (UTC)"), m.span()
        start = day + timedelta(days=1) if word in ("after", "later than") else day
        end = now + timedelta(microseconds=1)  # to the newest event, included
        label = f"from {start:%Y-%m-%d} (UTC) to {_fmt(now)} UTC, the newest data"
        return TimeRange(start, end, label), m.span()
    for pattern in (FROM_TO, DASH):
        if m := pattern.search(question):
            clocks = _clock_pair(m.group(1), m.group(2))
            day, end_at = _with_date(question, m, day_start, now, clocks[0])
            start, end = (day + t for t in clocks)
            if end <= start:
                end += timedelta(days=1)
            label = f"between {_fmt(start)} and {_fmt(end)} UTC"
            return TimeRange(start, end, label), (m.start(), end_at)
    if m := HOUR.search(question):
        clock = _clock(m.group(1) or m.group(2))
        day, end_at = _with_date(question, m, day_start, now, clock)
        start = day + clock
        end = start + timedelta(hours=1)
        return TimeRange(start, end, f"in the hour from {_fmt(start)} UTC"), (m.start(), end_at)
    if m := DURATION_FROM.search(question):
        clock = _clock(m.group(3))
        day, end_at = _with_date(question, m, day_start, now, clock)
        start = day + clock
        end = start + _duration(m.group("n"), m.group("unit"))
        label = f"between {_fmt(start)} and {_fmt(end)} UTC"
        return TimeRange(start, end, label), (m.start(), end_at)
    if m := AFTER.search(question):
        clock = _clock(m.group(1))
        day, end_at = _with_date(question, m, day_start, now, clock)
        start = day + clock
        if to_end := TO_THE_END.match(question, end_at):
            end = now + timedelta(microseconds=1)  # to the newest event, included
            label = f"from {_fmt(start)} UTC to {_fmt(now)} UTC, the newest data"
            return TimeRange(start, end, label), (m.start(), to_end.end())
        end = day + timedelta(days=1)
        return TimeRange(start, end, f"from {_fmt(start)} UTC to that day's end"), (
            m.start(),
            end_at,
        )
    if m := BEFORE.search(question):
        day, end_at = _with_date(question, m, day_start, now)
        end = day + _clock(m.group(1))
        return TimeRange(FARCASTER_EPOCH, end, f"before {_fmt(end)} UTC"), (m.start(), end_at)
    if m := ON_DATE.search(question):
        return _day(_date(m, now)), m.span()
    if m := IN_MONTH.search(question):
        month, year_text = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        year = int(year_text or now.year)
        start = datetime(year, MONTHS[month], 1, tzinfo=UTC)
        end = (start + timedelta(days=32)).replace(day=1)
        return TimeRange(start, end, f"in {start:%B %Y} (UTC)"), m.span()
    if (m := DAY_OF_MONTH.search(question)) and (start := _of_month(now, int(m.group(1)))):
        return _day(start), m.span()
    if m := IN_YEAR.search(question):
        start = datetime(int(m.group(1)), 1, 1, tzinfo=UTC)
        end = start.replace(year=start.year + 1)
        return TimeRange(start, end, f"in {start.year} (UTC)"), m.span()
    if m := TODAY.search(question):
        label = f"today ({day_start:%Y-%m-%d} UTC, the day of the newest data)"
        return TimeRange(day_start, day_start + timedelta(days=1), label), m.span()
    if m := YESTERDAY.search(question):
        start = day_start - timedelta(days=1)
        return TimeRange(start, day_start, f"yesterday ({start:%Y-%m-%d} UTC)"), m.span()
    if m := LAST_N.search(question):
        n = int(m.group(1) or 1)
        unit = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7)}
        end = now + timedelta(microseconds=1)  # include the newest event itself
        start = now - n * unit[m.group(2)]
        plural = "s" if n != 1 else ""
        label = f"in the last {n} {m.group(2)}{plural} (to {_fmt(now)} UTC, the newest data)"
        return TimeRange(start, end, label), m.span()
    if at_data_end and at_data_end.group("end") != "first":  # "the last 15 minutes of the data"
        length = _duration(at_data_end.group("n"), at_data_end.group("unit"))
        start, end = now - length, now + timedelta(microseconds=1)  # the newest included
        label = f"in the last {_words(length)} (to {_fmt(now)} UTC, the newest data)"
        return TimeRange(start, end, label), at_data_end.span()
    return None


# A time said roughly beside the range that states it exactly: "from 11:45pm to 12:15am, around
# midnight", "the half hour around midnight (23:45 to 00:15)".
AROUND = re.compile(
    r"(?:\b(?:in|during) )?(?:\bthe )?"
    r"(?:\b(?:(?:half|quarter)[ -]hour|hour|\d+ minutes|minutes)\s+)?"
    rf"\b(?:around|near|about|close to|surrounding|either side of) {CLOCK}{ZONE}"
)


def without_rough_times(rest: str, found: TimeRange) -> str:
    """``rest`` (a question without the span that stated ``found``) without the times said
    roughly ("around midnight", "the half hour around 3am") that lie within ``found``: they
    describe the same range. A rough time outside it stays, for the planner to judge."""

    def inside(m: re.Match[str]) -> bool:
        clock = _clock(m.group(1))  # AROUND's one group: the clock time
        day = found.start.replace(hour=0, minute=0, second=0, microsecond=0)
        return any(found.start <= day + clock + timedelta(days=d) <= found.end for d in (0, 1))

    return AROUND.sub(lambda m: " " if inside(m) else m.group(0), rest)


def without_restated_range(rest: str, found: TimeRange) -> str:
    """``rest`` (a question without the span that stated ``found``) without a second
    statement of the same range: "the first hour of March 4 (00:00 to 01:00 UTC)", "between
    3 and 4am, i.e. 03:00-04:00". A clock range with no date of its own is read on
    ``found``'s day. A different second range stays, for the planner to judge."""
    again = find_time_range(rest, found.start)
    if again is None or (again[0].start, again[0].end) != (found.start, found.end):
        return rest
    return rest[: again[1][0]] + " " + rest[again[1][1] :]


# "most casts that day", "replies during that hour": the range already said, referred back
# to ("that", never "the same": "replied the same day" relates two acts, it restates nothing)
_BACK_REFERENCE = re.compile(
    r"\s*\b(?:(?:on|in|during|for|within|over|across|throughout) )?that "
    r"(?:day|date|hour|morning|afternoon|evening|night|period|window|stretch|span|time)\b"
)


def without_back_reference(rest: str) -> str:
    """``rest`` (a question without the span that stated its range) without the words that
    refer back to that range: "who were the top 2 posters on march 3rd? most casts that
    day" is a ranking over March 3, not by day nor about "day"."""
    return _BACK_REFERENCE.sub(" ", rest)


# The clock expressions a date may belong to, in the order find_time_range tries them.
_CLOCK_RANGES = (FROM_TO, DASH, HOUR, DURATION_FROM, AFTER, BEFORE)


def parse_time_range(question: str, now: datetime) -> TimeRange | None:
    """The time range a question names, or None (see ``find_time_range``)."""
    found = find_time_range(written_dates(written_clock(question), now), now)
    return found[0] if found else None
