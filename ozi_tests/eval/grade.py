"""Grading of one Ozi answer against the hand-written truth of one evaluation question.

Pure functions: no I/O, no Ozi imports. The caller runs the entry's ``truth_sql`` (or
``relevant_sql``) itself and passes the result in.

Shapes:

- ``entry``: one item of ``questions.yaml`` (a dict with ``id``, ``intent``, ``kind``,
  ``split``, ``question``, ``compare`` and the compare mode's own keys, see below).
- ``answer``: Ozi's JSON answer, ``{"question", "kind": "analytic|semantic|hybrid|unanswered",
  "answer": str, "sql": str | None, "rows": [dict], "sources": [{"hash", "fid", "username",
  "timestamp", "text", "score"}], "lineage": [...], "data_as_of", "planner"}``.
- ``truth_rows``: the rows of the entry's ``truth_sql``, as dicts keyed by column name.
- ``relevant_hashes``: the hashes ``relevant_sql`` returns (semantic entries only).

Compare modes (``entry["compare"]``):

- ``scalar``: the first value of the answer's first row equals the truth's single value.
  Optional ``tolerance`` (absolute, numbers only) and ``normalize: hour``.
- ``ranking``: the answer's first ``n`` rows, read in one of its columns, are the truth's
  first ``n`` values of column ``key``; truth rows with equal ``value`` (optional) are ties
  and may come in any order, including at the cut-off. Optional ``normalize: hour``.
- ``set``: one answer column holds exactly the set of the truth's ``key`` values.
- ``rows_per_group``: one pair of answer columns maps each group to the same number as the
  truth's (``key`` → ``value``); a group missing on one side counts as 0.
- ``semantic``: at least ``min_precision`` (default 0.6) of the answer's top-k sources are
  in ``relevant_hashes``, k = min(5, number of sources, number of relevant hashes); at least
  one source. With ``fids``, every top-k source must be by one of those fids.
- ``hybrid``: the answer's first user is among the truth's users with the largest ``value``
  (default ``n``), and every user the answer lists is a truth user (``key``, default
  ``username``, with n >= 1).
- ``refusal``: the answer's kind is ``unanswered`` and it has no rows.

Column names in the answer are free: values are matched, not names. Values are normalised
before comparing (see ``normalize``): 3 == 3.0 == "3", a timestamp equals its ISO string in
any offset, strings compare case-insensitively without surrounding space or a leading "@".
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

COMPARE_MODES = ("scalar", "ranking", "set", "rows_per_group", "semantic", "hybrid", "refusal")
DEFAULT_MIN_PRECISION = 0.6
SEMANTIC_TOP_K = 5

_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}")
_CLOCK = re.compile(r"^(\d{1,2})(?::(\d{2}))?(?::\d{2})?\s*(am|pm)?(\s*utc)?$")


@dataclass(frozen=True)
class Grade:
    """The verdict on one answer: ``correct``, and ``reason`` saying why in one line."""

    correct: bool
    reason: str


# --- normalisation -------------------------------------------------------------------------


def normalize(value: Any, *, hour: bool = False) -> Any:
    """A hashable, comparable form of one cell.

    None stays None; numbers (int, float, Decimal, numpy scalars, numeric strings) become an
    int when integral, else a float; datetimes (naive ones read as UTC) and timestamp strings
    become an ISO string in UTC; dates their ISO string; other strings are stripped,
    lower-cased and lose a leading "@". With ``hour=True`` anything that names a time of day
    (a datetime, a timestamp string, "03:00", "3am", or an int 0-23) becomes its UTC hour,
    an int.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy / pandas scalars
    if hour:
        h = _hour_of(value)
        if h is not None:
            return h
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        return _number(value)
    if isinstance(value, datetime):
        return _utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER.match(text):
            return _number(Decimal(text))
        if _TIMESTAMP.match(text):
            parsed = _parse_timestamp(text)
            if parsed is not None:
                return parsed.isoformat()
        return text.lower().removeprefix("@")
    return value


def _number(value: float | int | Decimal) -> int | float:
    """An int when ``value`` is integral, else a float; NaN stays a float."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    if value == int(value):
        return int(value)
    return float(value)


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _parse_timestamp(text: str) -> datetime | None:
    """A UTC datetime from an ISO-like string (" UTC" suffix allowed), or None."""
    cleaned = re.sub(r"\s*utc$", "", text, flags=re.IGNORECASE)
    try:
        return _utc(datetime.fromisoformat(cleaned))
    except ValueError:
        return None


def _hour_of(value: Any) -> int | None:
    """The UTC hour (0-23) ``value`` names, or None when it names no time of day."""
    if isinstance(value, datetime):
        return _utc(value).hour
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 23:
        return value
    if isinstance(value, float) and value.is_integer() and 0 <= value <= 23:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _TIMESTAMP.match(text):
            parsed = _parse_timestamp(text)
            return parsed.hour if parsed else None
        match = _CLOCK.match(text.lower())
        if match:
            h = int(match.group(1))
            suffix = match.group(3)
            if suffix == "pm" and h < 12:
                h += 12
            if suffix == "am" and h == 12:
                h = 0
            return h if 0 <= h <= 23 else None
    return None


def _equal(left: Any, right: Any, tolerance: float | None) -> bool:
    """Normalised values are equal; numbers within ``tolerance`` when one is given."""
    if tolerance is not None and _is_number(left) and _is_number(right):
        return abs(left - right) <= tolerance
    return left == right


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every column name of ``rows``, in first-seen order."""
    seen: dict[str, None] = {}
    for row in rows:
        for name in row:
            seen.setdefault(name, None)
    return list(seen)


def _column(rows: Sequence[Mapping[str, Any]], name: str, *, hour: bool = False) -> list[Any]:
    return [normalize(row.get(name), hour=hour) for row in rows]


def _preview(values: Iterable[Any], limit: int = 6) -> str:
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"


# --- the grader ----------------------------------------------------------------------------


def grade(
    entry: Mapping[str, Any],
    answer: Mapping[str, Any],
    truth_rows: list[dict] | None,
    relevant_hashes: set[str] | None,
) -> Grade:
    """Grade ``answer`` to ``entry`` (shapes in the module docstring).

    Raises ValueError when the entry's compare mode is unknown or its truth was not supplied
    (a harness bug, not a wrong answer).
    """
    mode = entry.get("compare")
    if mode not in COMPARE_MODES:
        raise ValueError(f"{entry.get('id')}: unknown compare mode {mode!r}")
    if mode == "refusal":
        return _grade_refusal(answer)
    if answer.get("kind") == "unanswered":
        return Grade(False, f"refused an answerable question: {answer.get('answer', '')!r:.120}")
    if mode == "semantic":
        if not relevant_hashes:
            raise ValueError(f"{entry.get('id')}: semantic entry graded without relevant hashes")
        return _grade_semantic(entry, answer, relevant_hashes)
    if truth_rows is None:
        raise ValueError(f"{entry.get('id')}: {mode} entry graded without truth rows")
    rows = list(answer.get("rows") or [])
    if not rows:
        return Grade(False, "the answer has no rows")
    graders = {
        "scalar": _grade_scalar,
        "ranking": _grade_ranking,
        "set": _grade_set,
        "rows_per_group": _grade_rows_per_group,
        "hybrid": _grade_hybrid,
    }
    return graders[mode](entry, rows, truth_rows)


def _grade_refusal(answer: Mapping[str, Any]) -> Grade:
    kind = answer.get("kind")
    rows = answer.get("rows") or []
    if kind != "unanswered":
        return Grade(False, f"expected a refusal, got a {kind} answer")
    if rows:
        return Grade(False, f"refused but still returned {len(rows)} row(s)")
    return Grade(True, "refused, no rows")


def _grade_scalar(entry: Mapping[str, Any], rows: list[dict], truth: list[dict]) -> Grade:
    if len(truth) != 1 or not truth[0]:
        raise ValueError(f"{entry.get('id')}: scalar truth must be one row, got {len(truth)}")
    hour = entry.get("normalize") == "hour"
    expected = normalize(next(iter(truth[0].values())), hour=hour)
    first_row = rows[0]
    if not first_row:
        return Grade(False, "the answer's first row is empty")
    got = normalize(next(iter(first_row.values())), hour=hour)
    if _equal(got, expected, entry.get("tolerance")):
        return Grade(True, f"scalar {got!r} matches")
    return Grade(False, f"scalar: expected {expected!r}, got {got!r}")


def _grade_ranking(entry: Mapping[str, Any], rows: list[dict], truth: list[dict]) -> Grade:
    key, value = entry["key"], entry.get("value")
    hour = entry.get("normalize") == "hour"
    truth_keys = _column(truth, key, hour=hour)
    if not truth_keys:
        raise ValueError(f"{entry.get('id')}: ranking truth is empty")
    n = min(int(entry.get("n", len(truth_keys))), len(truth_keys))
    if value is None:
        allowed = [{k} for k in truth_keys[:n]]
    else:
        by_value: dict[Any, set[Any]] = defaultdict(set)
        truth_values = _column(truth, value)
        for k, v in zip(truth_keys, truth_values, strict=True):
            by_value[v].add(k)
        allowed = [by_value[v] for v in truth_values[:n]]
    if len(rows) < n:
        return Grade(False, f"ranking: expected {n} rows, the answer has {len(rows)}")
    for column in _columns(rows):
        got = _column(rows[:n], column, hour=hour)
        if len(set(got)) == n and all(g in ok for g, ok in zip(got, allowed, strict=True)):
            return Grade(True, f"ranking: top {n} match in column {column!r}")
    return Grade(
        False,
        f"ranking: expected top {n} {_preview(truth_keys[:n])} (ties may swap), "
        f"no answer column matches; first columns: "
        + "; ".join(f"{c}={_preview(_column(rows[:n], c, hour=hour))}" for c in _columns(rows)),
    )


def _grade_set(entry: Mapping[str, Any], rows: list[dict], truth: list[dict]) -> Grade:
    hour = entry.get("normalize") == "hour"
    expected = set(_column(truth, entry["key"], hour=hour))
    closest: set[Any] = set()
    for column in _columns(rows):
        got = set(_column(rows, column, hour=hour))
        if got == expected:
            return Grade(True, f"set of {len(expected)} matches in column {column!r}")
        if len(got & expected) > len(closest & expected):
            closest = got
    missing, extra = expected - closest, closest - expected
    return Grade(
        False,
        f"set: expected {len(expected)} values; closest column misses {_preview(missing)} "
        f"and adds {_preview(extra)}",
    )


def _grade_rows_per_group(entry: Mapping[str, Any], rows: list[dict], truth: list[dict]) -> Grade:
    hour = entry.get("normalize") == "hour"
    tolerance = entry.get("tolerance")
    expected = dict(
        zip(_column(truth, entry["key"], hour=hour), _column(truth, entry["value"]), strict=True)
    )
    columns = _columns(rows)
    best: tuple[int, str] = (-1, "no column pair maps groups to numbers")
    for key_col in columns:
        keys = _column(rows, key_col, hour=hour)
        if len(set(keys)) != len(keys):
            continue  # a group column names each group once
        for value_col in columns:
            if value_col == key_col:
                continue
            got = dict(zip(keys, _column(rows, value_col), strict=True))
            wrong = [
                (k, expected.get(k, 0), got.get(k, 0))
                for k in expected.keys() | got.keys()
                if not _equal(got.get(k, 0), expected.get(k, 0), tolerance)
            ]
            if not wrong:
                return Grade(True, f"all {len(expected)} groups match ({key_col} → {value_col})")
            matched = len(expected) - len(wrong)
            if matched > best[0]:
                shown = "; ".join(f"{k!r}: expected {e!r}, got {g!r}" for k, e, g in wrong[:4])
                best = (matched, f"({key_col} → {value_col}) {shown}")
    return Grade(False, f"rows_per_group: {best[1]}")


def _grade_semantic(
    entry: Mapping[str, Any], answer: Mapping[str, Any], relevant: set[str]
) -> Grade:
    sources = list(answer.get("sources") or [])
    if not sources:
        return Grade(False, "semantic: the answer has no sources")
    relevant_norm = {normalize(h) for h in relevant}
    k = min(SEMANTIC_TOP_K, len(sources), len(relevant_norm))
    top = sources[:k]
    hits = sum(normalize(s.get("hash")) in relevant_norm for s in top)
    precision = hits / k
    fids = entry.get("fids")
    if fids:
        allowed = {normalize(f) for f in fids}
        strangers = [s.get("hash") for s in top if normalize(s.get("fid")) not in allowed]
        if strangers:
            return Grade(False, f"semantic: top sources by other authors: {_preview(strangers)}")
    needed = float(entry.get("min_precision", DEFAULT_MIN_PRECISION))
    if precision >= needed:
        return Grade(True, f"semantic: {hits}/{k} top sources relevant")
    return Grade(False, f"semantic: {hits}/{k} top sources relevant, needed {needed:.0%}")


def _grade_hybrid(entry: Mapping[str, Any], rows: list[dict], truth: list[dict]) -> Grade:
    key, value = entry.get("key", "username"), entry.get("value", "n")
    pairs = ((normalize(row[key]), normalize(row[value])) for row in truth)
    counts = {user: n for user, n in pairs if _is_number(n) and n >= 1}
    if not counts:
        raise ValueError(f"{entry.get('id')}: hybrid truth has no user with n >= 1")
    top_n = max(counts.values())
    leaders = {user for user, n in counts.items() if n == top_n}
    reasons = []
    for column in _columns(rows):
        users = _column(rows, column)
        if users[0] not in leaders:
            continue
        outsiders = [u for u in users if u not in counts]
        if not outsiders:
            return Grade(True, f"hybrid: top user {users[0]!r} has the most ({top_n})")
        reasons.append(f"users who never cast about it: {_preview(outsiders)}")
    if reasons:
        return Grade(False, f"hybrid: {reasons[0]}")
    firsts = _preview(normalize(v) for v in rows[0].values())
    return Grade(
        False,
        f"hybrid: expected the top user among {_preview(sorted(leaders))}, "
        f"the answer's first row is {firsts}",
    )


# --- summary -------------------------------------------------------------------------------


def summarize(results: Iterable[tuple[Mapping[str, Any], Grade]]) -> dict[str, Any]:
    """Accuracy of graded entries: overall, by kind, by split and by kind within split.

    ``results`` holds ``(entry, grade)`` pairs. Returns ``{"total", "correct", "accuracy",
    "by_kind": {kind: {"total", "correct", "accuracy"}}, "by_split": {...},
    "by_split_kind": {split: {kind: {...}}}, "wrong": [entry ids]}``; accuracy is a float in
    [0, 1] (0.0 when there is nothing to count).
    """
    overall = _Tally()
    by_kind: dict[str, _Tally] = defaultdict(_Tally)
    by_split: dict[str, _Tally] = defaultdict(_Tally)
    by_split_kind: dict[str, dict[str, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    wrong: list[str] = []
    for entry, verdict in results:
        kind, split = entry.get("kind", "?"), entry.get("split", "?")
        for tally in (overall, by_kind[kind], by_split[split], by_split_kind[split][kind]):
            tally.add(verdict.correct)
        if not verdict.correct:
            wrong.append(str(entry.get("id")))
    return {
        **overall.as_dict(),
        "by_kind": {k: t.as_dict() for k, t in sorted(by_kind.items())},
        "by_split": {s: t.as_dict() for s, t in sorted(by_split.items())},
        "by_split_kind": {
            s: {k: t.as_dict() for k, t in sorted(kinds.items())}
            for s, kinds in sorted(by_split_kind.items())
        },
        "wrong": wrong,
    }


class _Tally:
    """A running count of graded answers and of the correct ones."""

    def __init__(self) -> None:
        self.total = 0
        self.correct = 0

    def add(self, correct: bool) -> None:
        self.total += 1
        self.correct += bool(correct)

    def as_dict(self) -> dict[str, Any]:
        accuracy = self.correct / self.total if self.total else 0.0
        return {"total": self.total, "correct": self.correct, "accuracy": accuracy}
