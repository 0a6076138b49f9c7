"""Stream semantics shared by every stage: stage offsets, bounded batches, run modes.

Each stage of the pipeline consumes the Kafka log like a consumer group of its own. For every
Kafka partition it keeps ``next_offset`` in the lake table ``stage_offsets``: the raw stage has
read every offset below it into ``raw_events``; a later stage has folded in every offset below
it from the stage before. A stage writes its rows and its new offsets in one transaction (one
lake snapshot), so a run killed at any point re-does at most the batch that did not commit, and
never does one twice.

A run works in one of two modes, chosen by the ``ozi/mode`` tag:

- ``incremental`` (the sensors' runs): each stage catches up with the stage before it, batch by
  batch. A run's cost follows its new messages, not the size of the windows they fall in.
  ``stream_job`` (follow.py, requested by kafka_window_sensor) does this in one op that keeps
  following the stream while messages come; an ``ingest_job`` run tagged so does it once,
  its partition only a label. Either reports every window the batches touched as
  materialized.
- ``rebuild`` (the default: the UI's materialize, a backfill, ``ozi backfill``): catch up first,
  then rebuild the run's window from its whole offset range. The result is the same rows the
  incremental path wrote (tested).
- ``close`` (``window_close_sensor``'s runs of ``window_close_job``): the window's checks only,
  once the watermark has closed it, with the great-expectations suites (the incremental runs
  check every batch with the same expectations in DuckDB). They write nothing, so they never
  wait for, or hold, the lake's writer slot.

Positions: ``source_position = (kafka_partition << 40) + kafka_offset`` orders every message of
the topic, and names the offset ranges in SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dagster as dg
import duckdb

MODE_TAG = "ozi/mode"
INCREMENTAL = "incremental"
REBUILD = "rebuild"
CLOSE = "close"

RAW = "raw"
CLEAN_STAGES = ("clean/casts", "clean/reactions", "clean/users")
# How far the blocking checks of the clean tables have passed: the stages after them
# (aggregates, embeddings) fold in nothing beyond it. Never behind AGGREGATES.
CHECKED = "checks"
AGGREGATES = "aggregates"
EMBEDDINGS = "embeddings"


@dataclass
class PartitionOffset:
    """Where a stage stands in one Kafka partition."""

    next_offset: int = 0
    running_max_ms: int | None = None  # raw only: max timestamp of offsets below next_offset


Offsets = dict[int, PartitionOffset]
Ranges = dict[int, tuple[int, int]]  # Kafka partition → [first, next) offsets


def run_mode(context: dg.AssetExecutionContext) -> str:
    """INCREMENTAL when the run was tagged so (sensors), else REBUILD."""
    return context.run.tags.get(MODE_TAG, REBUILD)


def load_offsets(
    conn: duckdb.DuckDBPyConnection, stage: str, topic: str, snapshot: int | None = None
) -> Offsets:
    """The stage's offsets per Kafka partition ({} before its first batch), at the lake's
    ``snapshot`` (None: now)."""
    at = "" if snapshot is None else f" AT (VERSION => {int(snapshot)})"
    rows = conn.execute(
        f"SELECT kafka_partition, next_offset, running_max_ms FROM stage_offsets{at} "
        "WHERE stage = $s AND topic = $t",
        {"s": stage, "t": topic},
    ).fetchall()
    return {p: PartitionOffset(n, m) for p, n, m in rows}


def save_offsets(conn: duckdb.DuckDBPyConnection, stage: str, topic: str, offsets: Offsets) -> None:
    """Replace the stage's offsets (inside the caller's transaction)."""
    save_stages(conn, topic, {stage: offsets})


def raise_offsets(
    conn: duckdb.DuckDBPyConnection, stage: str, topic: str, offsets: Offsets
) -> None:
    """Move the stage's offsets up to ``offsets`` in each Kafka partition where they are
    behind, never back (inside the caller's transaction)."""
    done = load_offsets(conn, stage, topic)
    raised = {p: PartitionOffset(o.next_offset, o.running_max_ms) for p, o in done.items()}
    for p, o in offsets.items():
        if p not in raised or raised[p].next_offset < o.next_offset:
            raised[p] = PartitionOffset(o.next_offset)
    if raised != done:
        save_offsets(conn, stage, topic, raised)


def checked_offsets(conn: duckdb.DuckDBPyConnection, topic: str) -> Offsets:
    """How far the blocking checks have passed, per Kafka partition: the checked stage's
    offsets, or the aggregates' where it has none (a lake written before the checked stage
    existed; the aggregates fold in only what passed)."""
    stages = load_stages(conn, (CHECKED, AGGREGATES), topic)
    return {**stages[AGGREGATES], **stages[CHECKED]}


def load_stages(
    conn: duckdb.DuckDBPyConnection, stages: tuple[str, ...], topic: str
) -> dict[str, Offsets]:
    """Several stages' offsets in one statement: {stage: offsets}, {} for a stage before its
    first batch. A batch of stream_job reads four stages' offsets: one statement each cost
    about 20 ms on 2 cores under load."""
    rows = conn.execute(
        "SELECT stage, kafka_partition, next_offset, running_max_ms FROM stage_offsets "
        "WHERE topic = $t AND list_contains($stages, stage)",
        {"t": topic, "stages": list(stages)},
    ).fetchall()
    out: dict[str, Offsets] = {s: {} for s in stages}
    for stage, p, n, m in rows:
        out[stage][p] = PartitionOffset(n, m)
    return out


def save_stages(conn: duckdb.DuckDBPyConnection, topic: str, offsets: dict[str, Offsets]) -> None:
    """Replace the offsets of every stage in ``offsets`` ({stage: offsets}) in two statements
    (inside the caller's transaction)."""
    if not offsets:
        return
    conn.execute(
        "DELETE FROM stage_offsets WHERE topic = $t AND list_contains($stages, stage)",
        {"t": topic, "stages": list(offsets)},
    )
    rows = [
        (stage, topic, p, o.next_offset, o.running_max_ms)
        for stage, by_partition in offsets.items()
        for p, o in by_partition.items()
    ]
    if rows:
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(rows))
        conn.execute(f"INSERT INTO stage_offsets VALUES {values}", [v for row in rows for v in row])


def upstream_offsets(
    conn: duckdb.DuckDBPyConnection,
    stages: tuple[str, ...],
    topic: str,
    snapshot: int | None = None,
) -> Offsets:
    """How far all of ``stages`` have come (at the lake's ``snapshot``; None: now): the
    smallest next_offset per Kafka partition."""
    return slowest([load_offsets(conn, stage, topic, snapshot) for stage in stages])


def slowest(offsets: Iterable[Offsets]) -> Offsets:
    """The smallest next_offset per Kafka partition of the first stage's partitions over
    several stages' ``offsets`` (a partition a later stage lacks counts as 0)."""
    merged: Offsets | None = None
    for by_partition in offsets:
        if merged is None:
            merged = {p: PartitionOffset(o.next_offset) for p, o in by_partition.items()}
            continue
        merged = {
            p: PartitionOffset(
                min(o.next_offset, by_partition[p].next_offset if p in by_partition else 0)
            )
            for p, o in merged.items()
        }
    return merged or {}


def next_batch(done: Offsets, upstream: Offsets, max_messages: int) -> Ranges:
    """The next offset ranges a stage should fold in: from where it stands to where the stage
    before it stands, at most ``max_messages`` in all (shared evenly, leftovers to partitions
    with more). {} when the stage has caught up."""
    todo = {
        p: (done.get(p, PartitionOffset()).next_offset, up.next_offset)
        for p, up in upstream.items()
        if up.next_offset > done.get(p, PartitionOffset()).next_offset
    }
    if not todo:
        return {}
    budget = max_messages
    ranges: Ranges = {}
    # smallest first, so a nearly caught-up partition is finished and its share passes on
    for i, (p, (first, nxt)) in enumerate(sorted(todo.items(), key=lambda kv: kv[1][1] - kv[1][0])):
        share = budget // (len(todo) - i)
        take = min(nxt - first, max(share, 1))
        ranges[p] = (first, first + take)
        budget -= take
    return ranges


def advanced(done: Offsets, ranges: Ranges) -> Offsets:
    """``done`` moved to the end of ``ranges``."""
    out = {p: PartitionOffset(o.next_offset, o.running_max_ms) for p, o in done.items()}
    for p, (_, nxt) in ranges.items():
        out.setdefault(p, PartitionOffset()).next_offset = nxt
    return out


def left_after(done: Offsets, ranges: Ranges, upstream: Offsets) -> int:
    """Messages a batch of ``ranges`` read from ``done`` leaves before ``upstream``, over every
    Kafka partition: 0 when the stage has caught up once it commits."""
    return sum(lag(advanced(done, ranges), upstream).values())


def position_filter(ranges: Ranges, column: str = "source_position") -> str:
    """A SQL condition on a stored position column, true for the messages of ``ranges``
    (integers only, never input); FALSE when ``ranges`` is empty."""
    terms = [
        f"({column} >= {(int(p) << 40) + int(first)} AND {column} < {(int(p) << 40) + int(nxt)})"
        for p, (first, nxt) in sorted(ranges.items())
        if nxt > first
    ]
    return "(" + " OR ".join(terms) + ")" if terms else "FALSE"


def offset_branches(ranges: Ranges) -> list[str]:
    """One SQL condition per Kafka partition of ``ranges``, on kafka_partition and
    kafka_offset (none for an empty range)."""
    return [
        f"kafka_partition = {int(p)} AND kafka_offset >= {int(first)} AND kafka_offset < {int(nxt)}"
        for p, (first, nxt) in sorted(ranges.items())
        if nxt > first
    ]


def offset_filter(ranges: Ranges) -> str:
    """A SQL condition on kafka_partition and kafka_offset, true for the messages of
    ``ranges``; FALSE when there are none. DuckLake prunes files by an AND of column ranges,
    not by an OR: the offsets' covering range (lowest first to highest next offset over the
    partitions) comes first, so that a file written long before (the partitions' offsets grow
    together) is skipped, as it is with one scan per partition."""
    branches = offset_branches(ranges)
    if not branches:
        return "FALSE"
    spans = [(int(first), int(nxt)) for first, nxt in ranges.values() if nxt > first]
    low, high = min(a for a, _ in spans), max(b for _, b in spans)
    return (
        f"(kafka_offset >= {low} AND kafka_offset < {high} AND ("
        + " OR ".join(f"({b})" for b in branches)
        + "))"
    )


def below(offsets: Offsets) -> Ranges:
    """Every offset below each partition's next_offset."""
    return {p: (0, o.next_offset) for p, o in offsets.items()}


def lag(done: Offsets, upstream: Offsets) -> dict[int, int]:
    """Messages a stage is behind the stage before it, per Kafka partition."""
    return {
        p: max(up.next_offset - done.get(p, PartitionOffset()).next_offset, 0)
        for p, up in upstream.items()
    }


def watermark_ms(running_max_ms: list[int | None], allowed_lateness_s: float) -> int | None:
    """The stream's event-time watermark (Unix ms): the newest timestamp read on any Kafka
    partition minus the allowed lateness; None before anything was read. Windows ending at
    or below it are closed (windows.closed_windows)."""
    known = [m for m in running_max_ms if m is not None]
    return max(known) - int(allowed_lateness_s * 1000) if known else None
