"""raw stage: the Kafka log → ``raw_events``, messages that cannot be used dead-lettered.

The raw stage reads each Kafka partition from its committed offset (``stage_offsets``, stage
``raw``) to the high watermark seen when the run starts, in bounded batches, and appends each
batch with the new offsets in one transaction (see ozi_assets/stream.py). Every message gets a
window by the running-maximum rule of ozi_resources/windows.py, and the window's offset range
is kept in ``kafka_offset_index``, so a rebuild of a window reads exactly its messages again.
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa

from ozi_assets import sql, stream, table_metadata
from ozi_assets.partitions import STREAM_FRESHNESS, stream_partitions, window_grid
from ozi_assets.stream import PartitionOffset
from ozi_resources.kafka import KafkaResource, LogSlice
from ozi_resources.warehouse import Commit, WarehouseError, WarehouseResource
from ozi_resources.windows import WindowGrid, assign_windows, closed_windows

CLOCK_REASON_PREFIX = "Kafka timestamp"  # dead letters whose Kafka timestamp lay ahead


class LogResetError(WarehouseError):
    """A Kafka partition's log is shorter than what Ozi already read: the broker lost it."""


@dataclass
class BatchResult:
    """What appending one batch did."""

    messages: int = 0
    dead_lettered: int = 0
    windows: set[int] = field(default_factory=set)  # log windows written
    late: dict[int, int] = field(default_factory=dict)  # late messages by their own window
    letters: list[tuple] = field(default_factory=list)
    # Kafka partition → (first offset, next offset) of the messages appended; they are in the
    # temp table decoded_batch until the transaction ends
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    # the raw stage's offsets committed with the batch, every Kafka partition's
    offsets: stream.Offsets = field(default_factory=dict)


def to_arrow(
    topic: str,
    grid: WindowGrid,
    slices: list[LogSlice],
    running: dict[int, int | None],
    now_ms: int,
    max_skew_s: float,
    allowed_lateness_s: float,
) -> tuple[pa.Table, dict[int, int | None]]:
    """Consecutive messages of each partition as the Arrow table raw_decode.sql reads
    (``raw_batch``), each with its log window, event window, whether it is late (its window
    had closed: windows.assign_windows) and, when its Kafka timestamp is more than
    ``max_skew_s`` ahead of ``now_ms``, the reason it is dead-lettered.

    ``running`` is each partition's running maximum timestamp before its slice; returns the
    table and the running maxima after. A message from the future never moves the running
    maximum: one bad clock must not push a whole partition into a window hours ahead."""
    columns: dict[str, list] = {
        k: []
        for k in (
            "kafka_partition",
            "kafka_offset",
            "timestamp_ms",
            "window_ms",
            "event_window_ms",
            "late",
            "clock_reason",
        )
    }
    keys: list = []
    values: list = []
    after = dict(running)
    for log in slices:
        if not len(log):
            continue
        stamps = log.timestamps_ms
        future = stamps > now_ms + max_skew_s * 1000
        # A future timestamp counts as the smallest possible, so it cannot raise the maximum.
        assignment = assign_windows(
            grid,
            np.where(future, np.iinfo(np.int64).min, stamps),
            running.get(log.partition),
            int(allowed_lateness_s * 1000),
        )
        event_window = np.where(future, assignment.log_window, grid.window_of(stamps))
        after[log.partition] = assignment.running_max_ms
        columns["kafka_partition"].append(np.full(len(log), log.partition, np.int32))
        columns["kafka_offset"].append(log.offsets)
        columns["timestamp_ms"].append(stamps)
        columns["window_ms"].append(grid.starts_ms[assignment.log_window])
        columns["event_window_ms"].append(grid.starts_ms[event_window])
        columns["late"].append(assignment.late & ~future)
        columns["clock_reason"].extend(
            f"{CLOCK_REASON_PREFIX} {int(t) // 1000 - now_ms // 1000} s ahead of the ingest clock "
            f"(more than {max_skew_s} s)"
            if f
            else None
            for t, f in zip(stamps, future, strict=True)
        )
        keys.extend(log.keys)
        values.extend(log.values)
    n = len(values)

    def cat(name: str, dtype) -> np.ndarray:
        return np.concatenate(columns[name]) if columns[name] else np.empty(0, dtype)

    table = pa.table(
        {
            "topic": pa.array([topic] * n, pa.string()),
            "kafka_partition": pa.array(cat("kafka_partition", np.int32)),
            "kafka_offset": pa.array(cat("kafka_offset", np.int64)),
            "timestamp_ms": pa.array(cat("timestamp_ms", np.int64)),
            "window_ms": pa.array(cat("window_ms", np.int64)),
            "event_window_ms": pa.array(cat("event_window_ms", np.int64)),
            "is_late": pa.array(cat("late", bool)),
            "clock_reason": pa.array(columns["clock_reason"], pa.string()),
            "message_key": pa.array(keys, pa.binary()),
            "message_value": pa.array(values, pa.binary()),
        }
    )
    return table, after


def decode_batch(
    conn: duckdb.DuckDBPyConnection, batch: pa.Table, max_skew_s: float
) -> list[tuple]:
    """Decode ``batch`` (see to_arrow) and append it to raw_events; returns its dead letters
    as (topic, partition, offset, key, value, timestamp_ms, reason) tuples."""
    conn.register("raw_batch", batch)
    try:
        conn.execute(sql.load("raw_decode"), {"max_skew_s": max_skew_s})
    finally:
        conn.unregister("raw_batch")
    conn.execute("INSERT INTO raw_events BY NAME SELECT * EXCLUDE (msg) FROM decoded_batch")
    return conn.execute(
        "SELECT topic, kafka_partition, kafka_offset, message_key, message_value, "
        "epoch_ms(kafka_timestamp), dead_letter_reason FROM decoded_batch "
        "WHERE dead_letter_reason IS NOT NULL ORDER BY kafka_partition, kafka_offset"
    ).fetchall()


def send_dead_letters(kafka: KafkaResource, letters: list[tuple]) -> None:
    """Send dead letters (as decode_batch returns them) with their reason and source position
    as headers. Called before the commit: a crash or a retried commit re-sends them
    (at-least-once), never drops them."""
    kafka.send_dead_letters(
        [
            (k or b"", v, ts, [("ozi-reason", r.encode()), ("ozi-source", f"{t}/{p}/{o}".encode())])
            for t, p, o, k, v, ts, r in letters
        ]
    )


def extend_index(conn: duckdb.DuckDBPyConnection, topic: str, batch: pa.Table) -> None:
    """Widen kafka_offset_index with the batch's (partition, log window) offset ranges."""
    conn.register("raw_batch", batch)
    try:
        conn.execute(
            """CREATE OR REPLACE TEMP TABLE index_update AS
               SELECT $topic AS topic, kafka_partition,
                      make_timestamptz(window_ms * 1000) AS window_start,
                      min(kafka_offset) AS first_offset, max(kafka_offset) + 1 AS next_offset
               FROM raw_batch GROUP BY ALL""",
            {"topic": topic},
        )
    finally:
        conn.unregister("raw_batch")
    conn.execute(
        """CREATE OR REPLACE TEMP TABLE index_merged AS
           SELECT u.topic, u.kafka_partition, u.window_start,
                  least(u.first_offset, i.first_offset) AS first_offset,
                  greatest(u.next_offset, i.next_offset) AS next_offset
           FROM index_update u LEFT JOIN kafka_offset_index i
             ON i.topic = u.topic AND i.kafka_partition = u.kafka_partition
            AND i.window_start = u.window_start"""
    )
    conn.execute(
        """DELETE FROM kafka_offset_index WHERE (topic, kafka_partition, window_start) IN
           (SELECT (topic, kafka_partition, window_start) FROM index_merged)"""
    )
    conn.execute(
        "INSERT INTO kafka_offset_index BY NAME "
        "SELECT topic, kafka_partition, window_start, first_offset, next_offset FROM index_merged"
    )


def append_batch(
    conn: duckdb.DuckDBPyConnection,
    kafka: KafkaResource,
    grid: WindowGrid,
    slices: dict[int, LogSlice],
    now_ms: int,
) -> BatchResult:
    """Append one batch read from the committed offsets on, and commit the new offsets with
    it (the caller's transaction). Idempotent: offsets below the committed ones (a batch
    another run already appended) are dropped; a gap above them is an error."""
    done = stream.load_offsets(conn, stream.RAW, kafka.topic)
    kept = []
    for p, log in slices.items():
        start = done.get(p, PartitionOffset()).next_offset
        log = log.select(log.offsets >= start)
        if len(log) and int(log.offsets[0]) != start:
            raise WarehouseError(
                f"partition {p}: batch starts at offset {int(log.offsets[0])}, committed is "
                f"{start}; another writer moved the offsets"
            )
        kept.append(log)
    running = {p: o.running_max_ms for p, o in done.items()}
    batch, running = to_arrow(
        kafka.topic, grid, kept, running, now_ms, kafka.max_clock_skew_s, kafka.allowed_lateness_s
    )
    result = BatchResult(messages=batch.num_rows)
    if batch.num_rows:
        result.letters = decode_batch(conn, batch, kafka.max_clock_skew_s)
        extend_index(conn, kafka.topic, batch)
        log_windows = grid.window_of(batch.column("window_ms").to_numpy())
        event_windows = grid.window_of(batch.column("event_window_ms").to_numpy())
        result.windows = set(np.unique(log_windows).tolist())
        late = event_windows[batch.column("is_late").to_numpy(zero_copy_only=False)]
        windows, counts = np.unique(late, return_counts=True)
        result.late = dict(zip(windows.tolist(), counts.tolist(), strict=True))
    result.dead_lettered = len(result.letters)
    for log in kept:
        if len(log):
            done[log.partition] = PartitionOffset(int(log.offsets[-1]) + 1, running[log.partition])
            result.ranges[log.partition] = (int(log.offsets[0]), int(log.offsets[-1]) + 1)
    stream.save_offsets(conn, stream.RAW, kafka.topic, done)
    result.offsets = done
    send_dead_letters(kafka, result.letters)
    return result


def record_gaps(
    conn: duckdb.DuckDBPyConnection, topic: str, gaps: list[tuple[int, int, int, str]]
) -> None:
    """Store lost offset ranges (partition, first, next, reason) and move the raw stage past
    them."""
    done = stream.load_offsets(conn, stream.RAW, topic)
    now = datetime.now(UTC)
    for p, first, nxt, reason in gaps:
        conn.execute(
            "INSERT INTO kafka_log_gaps VALUES ($t, $p, $f, $n, $r, $now)",
            {"t": topic, "p": p, "f": first, "n": nxt, "r": reason, "now": now},
        )
        current = done.setdefault(p, PartitionOffset())
        current.next_offset = max(current.next_offset, nxt)
    stream.save_offsets(conn, stream.RAW, topic, done)


@dataclass
class CatchUp:
    """What a raw catch-up read and wrote."""

    messages: int = 0
    dead_lettered: int = 0
    batches: int = 0
    windows: set[int] = field(default_factory=set)
    late: dict[int, int] = field(default_factory=dict)  # late messages by their own window
    watermark_ms: int | None = None  # newest timestamp read minus the allowed lateness
    lost: int = 0  # offsets deleted by retention before they were read
    high_watermarks: dict[int, int] = field(default_factory=dict)
    committed: dict[int, int] = field(default_factory=dict)
    also: list[Any] = field(default_factory=list)  # what catch_up's ``also`` returned, a batch


def catch_up(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    kafka: KafkaResource,
    warehouse: WarehouseResource,
    grid: WindowGrid,
    commit: Commit | None = None,
    also: Callable[[duckdb.DuckDBPyConnection, BatchResult], Any] | None = None,
    high: dict[int, int] | None = None,
    starts: dict[int, int] | None = None,
    max_messages: int | None = None,
) -> CatchUp:
    """Read every partition from its committed offset to the high watermark seen now (or to
    ``high``, Kafka partition → high watermark, when the caller has just read them, and the
    log start offsets ``starts`` read with them), batch by batch, one lake transaction per
    batch (committed as ``commit``; default: the asset's), at most ``max_messages`` in all
    (None: up to the high watermarks; the rest is left for the next call).
    ``also(conn, appended)`` runs in each batch's transaction after the append (stream_job
    folds the batch into the clean tables there: one commit, not one a stage); its results
    are in ``CatchUp.also``.

    Retention that deleted offsets before they were read is recorded in ``kafka_log_gaps`` and
    logged with the count; a log shorter than the committed offsets (a broker that lost its
    log) raises LogResetError instead of mixing two logs' offsets."""
    summary = CatchUp()
    commit = commit or Commit.of(context)
    high = high or kafka.high_watermarks()
    if not high:
        return summary
    summary.high_watermarks = high
    with warehouse.writer() as conn:  # the writer: it creates the lake on the first run
        done = stream.load_offsets(conn, stream.RAW, kafka.topic)
    for p, hw in high.items():
        committed = done.get(p, PartitionOffset()).next_offset
        if hw < committed:
            raise LogResetError(
                f"partition {p} of {kafka.topic}: the high watermark {hw} is below the "
                f"committed offset {committed}: the broker lost the log Ozi read (an embedded "
                "broker restarted?). Its offsets now name other messages, so Ozi will not mix "
                "them: start a new lake (`make clean` or another OZI_HOME) or restore the log."
            )
    starts = kafka.log_starts() if starts is None else starts
    gaps = [
        (
            p,
            done.get(p, PartitionOffset()).next_offset,
            starts[p],
            "deleted by retention before it was read",
        )
        for p in high
        if starts.get(p, 0) > done.get(p, PartitionOffset()).next_offset
    ]
    if gaps:
        summary.lost = sum(nxt - first for _, first, nxt, _ in gaps)
        context.log.warning(
            f"{summary.lost} messages were deleted by retention before Ozi read them: "
            + ", ".join(f"partition {p} offsets {a}..{b - 1}" for p, a, b, _ in gaps)
        )
        warehouse.write(commit, lambda conn: record_gaps(conn, kafka.topic, gaps))
        for p, _, nxt, _ in gaps:
            done.setdefault(p, PartitionOffset()).next_offset = nxt
    if max_messages is None:
        ranges = {p: (done.get(p, PartitionOffset()).next_offset, hw) for p, hw in high.items()}
    else:
        ranges = stream.next_batch(
            done, {p: PartitionOffset(hw) for p, hw in high.items()}, max_messages
        )
    offsets = done  # the raw stage's, as the last batch left them
    for slices in kafka.batches(ranges, kafka.batch_messages):
        now_ms = int(time.time() * 1000)

        def work(conn: duckdb.DuckDBPyConnection, s=slices, t=now_ms) -> tuple[BatchResult, Any]:
            appended = append_batch(conn, kafka, grid, s, t)
            return appended, also(conn, appended) if also else None

        result, extra = warehouse.write(commit, work)
        offsets = result.offsets
        if also:
            summary.also.append(extra)
        summary.batches += 1
        summary.messages += result.messages
        summary.dead_lettered += result.dead_lettered
        summary.windows |= result.windows
        for w, n in result.late.items():
            summary.late[w] = summary.late.get(w, 0) + n
    # From the last batch's own transaction, not read again: a read of the offsets costs a
    # stream_job batch a statement on the catalog (about 4% of its time at 500 events/s).
    summary.committed = {p: o.next_offset for p, o in offsets.items()}
    summary.watermark_ms = stream.watermark_ms(
        [o.running_max_ms for o in offsets.values()], kafka.allowed_lateness_s
    )
    if summary.late:
        context.log.info(
            f"{sum(summary.late.values())} late messages (their window had closed on their "
            "partition; kept, and their windows refreshed): "
            + ", ".join(f"{grid.keys[w]}: {n}" for w, n in sorted(summary.late.items()))
        )
    return summary


def running_before(
    conn: duckdb.DuckDBPyConnection, topic: str, ranges: dict[int, tuple[int, int]]
) -> dict[int, int | None]:
    """Each Kafka partition's running maximum timestamp (Unix ms) before the first offset of
    its range, from the rows the lake holds, so a rebuilt window calls the same messages late
    as the incremental path did. Timestamps dead-lettered as ahead of the ingest clock never
    counted (to_arrow)."""
    out: dict[int, int | None] = {}
    for p, (first, _) in ranges.items():
        row = conn.execute(
            "SELECT max(epoch_ms(kafka_timestamp)) FROM raw_events WHERE topic = $t "
            "AND kafka_partition = $p AND kafka_offset < $o "
            f"AND coalesce(dead_letter_reason, '') NOT LIKE '{CLOCK_REASON_PREFIX}%'",
            {"t": topic, "p": p, "o": first},
        ).fetchone()
        out[p] = int(row[0]) if row and row[0] is not None else None
    return out


def rebuild_window(
    context: dg.AssetExecutionContext,
    kafka: KafkaResource,
    warehouse: WarehouseResource,
    grid: WindowGrid,
    window: int,
) -> int:
    """Replace the window's raw rows by its whole offset range read again, in one transaction;
    returns the messages read. Raises WarehouseError when part of the range was deleted by
    retention (the rows stay as they are: a rebuild never loses what the lake holds)."""
    window_start = grid.start_of(grid.keys[window])
    with warehouse.reader() as conn:
        ranges = {
            p: (first, nxt)
            for p, first, nxt in conn.execute(
                "SELECT kafka_partition, first_offset, next_offset FROM kafka_offset_index "
                "WHERE topic = $t AND window_start = $w",
                {"t": kafka.topic, "w": window_start},
            ).fetchall()
        }
    if ranges:
        starts = kafka.log_starts()
        gone = {p: r for p, r in ranges.items() if starts.get(p, 0) > r[0]}
        if gone:
            raise WarehouseError(
                f"window {grid.keys[window]}: offsets {gone} are partly deleted by retention; "
                "its raw rows are kept as they are instead of being rebuilt"
            )

    def work(conn: duckdb.DuckDBPyConnection) -> int:
        before = {
            row
            for row in conn.execute(
                "SELECT topic, kafka_partition, kafka_offset FROM dead_letters "
                "WHERE window_start = $w",
                {"w": window_start},
            ).fetchall()
        }
        conn.execute("DELETE FROM raw_events WHERE window_start = $w", {"w": window_start})
        messages = 0
        letters = []
        running = running_before(conn, kafka.topic, ranges)
        for slices in kafka.batches(ranges, kafka.batch_messages):
            batch, running = to_arrow(
                kafka.topic,
                grid,
                list(slices.values()),
                running,
                int(time.time() * 1000),
                kafka.max_clock_skew_s,
                kafka.allowed_lateness_s,
            )
            # Offsets keep the window the index gave them.
            batch = batch.set_column(
                batch.schema.get_field_index("window_ms"),
                "window_ms",
                pa.array(np.full(batch.num_rows, grid.starts_ms[window], np.int64)),
            )
            messages += batch.num_rows
            letters += decode_batch(conn, batch, kafka.max_clock_skew_s)
        send_dead_letters(kafka, [x for x in letters if tuple(x[:3]) not in before])
        return messages

    return warehouse.write(Commit.of(context), work)


def report_windows(
    context: dg.AssetExecutionContext,
    keys: list[dg.AssetKey],
    grid: WindowGrid,
    windows: set[int],
    metadata: dict,
    per_window: Callable[[dg.AssetKey, str], dict] | None = None,
    include_own: bool = False,
    description: str | None = None,
) -> None:
    """Record a materialization of ``keys`` for every window a run changed besides its own
    partition (and its own too when ``include_own``: progress reported before the run's own
    materialization), so the UI shows each window's latest change: ``metadata`` and, when
    given, ``per_window(key, partition)`` (that window's row count and previews), with
    ``description`` (default: which run changed the window)."""
    own = context.partition_key
    for w in sorted(windows):
        if grid.keys[w] == own and not include_own:
            continue
        for key in keys:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=key,
                    partition=grid.keys[w],
                    description=description or f"changed by the run for window {own}",
                    metadata={**metadata, **(per_window(key, grid.keys[w]) if per_window else {})},
                )
            )


# The dead letters of one window, one row a reason, most frequent first; first_message
# (Kafka partition/offset, the lowest) names one to look at with `ozi sql`.
DEAD_LETTER_REASONS = """
SELECT reason, count(*) AS messages,
       arg_min(kafka_partition::VARCHAR || '/' || kafka_offset::VARCHAR,
               (kafka_partition::BIGINT << 40) + kafka_offset) AS first_message
FROM dead_letters WHERE topic = $t AND window_start = $w
GROUP BY reason ORDER BY messages DESC, reason
"""


def window_metadata(
    warehouse: WarehouseResource, topic: str, grid: WindowGrid, partitions: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """{partition: metadata} for ``raw_events`` in each window: the standard table entries
    (row count: messages the window read, dead letters included), the window's dead letters
    and, when there are any, a table of their reasons (at most 10, most frequent first)."""

    def dead_letters(conn: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any]:
        params = {"t": topic, "w": grid.start_of(key)}
        row = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE topic = $t AND window_start = $w", params
        ).fetchone()
        letters = int(row[0]) if row else 0
        entries: dict[str, Any] = {"window_dead_letters": dg.MetadataValue.int(letters)}
        if letters:
            entries["dead_letter_reasons"] = table_metadata.preview(
                conn, DEAD_LETTER_REASONS, params
            )
        return entries

    return table_metadata.by_window(warehouse, grid, partitions, "raw_events", more=dead_letters)


@dg.asset(
    key=["raw", "farcaster_events"],
    partitions_def=stream_partitions,
    group_name="raw",
    pool="lake_writer",
    freshness_policy=STREAM_FRESHNESS,
    kinds={"kafka", "ducklake"},
)
def farcaster_events(
    context: dg.AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Every Kafka message, exact bytes with topic, partition, offset, timestamp and key
    (table ``raw_events``). Messages that cannot be used stay here with a
    ``dead_letter_reason`` (view ``dead_letters``) and are sent to the dead-letter topic.
    Appends the new messages (committed offset → high watermark); a rebuild run also reads
    the window's whole offset range again. Source: the Farcaster event topic."""
    started = time.perf_counter()
    grid = window_grid()
    window = grid.index_of(context.partition_key)
    summary = catch_up(context, kafka, warehouse, grid)
    rebuilt = None
    if stream.run_mode(context) == stream.REBUILD:
        rebuilt = rebuild_window(context, kafka, warehouse, grid, window)
    tables = window_metadata(
        warehouse,
        kafka.topic,
        grid,
        {context.partition_key} | {grid.keys[w] for w in summary.windows},
    )
    report_windows(
        context,
        [context.asset_key],
        grid,
        summary.windows,
        {"messages_appended": dg.MetadataValue.int(summary.messages)},
        lambda _, key: tables[key],
    )
    entries = {
        **tables[context.partition_key],
        "mode": dg.MetadataValue.text(stream.run_mode(context)),
        "messages_appended": dg.MetadataValue.int(summary.messages),
        "dead_lettered": dg.MetadataValue.int(summary.dead_lettered),
        "batches": dg.MetadataValue.int(summary.batches),
        "windows_appended_to": dg.MetadataValue.json(sorted(grid.keys[w] for w in summary.windows)),
        "late_messages": dg.MetadataValue.int(sum(summary.late.values())),
        "late_by_window": dg.MetadataValue.json(
            {grid.keys[w]: n for w, n in sorted(summary.late.items())}
        ),
        "watermark": dg.MetadataValue.text(
            datetime.fromtimestamp(summary.watermark_ms / 1000, UTC).isoformat()
            if summary.watermark_ms is not None
            else "none: nothing read"
        ),
        "windows_closed": dg.MetadataValue.int(
            closed_windows(grid, summary.watermark_ms) if summary.watermark_ms is not None else 0
        ),
        "lost_to_retention": dg.MetadataValue.int(summary.lost),
        "committed_offsets": dg.MetadataValue.json(
            {str(p): o for p, o in sorted(summary.committed.items())}
        ),
        "high_watermarks": dg.MetadataValue.json(
            {str(p): o for p, o in sorted(summary.high_watermarks.items())}
        ),
        "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
    }
    if rebuilt is not None:
        entries["window_messages_reread"] = dg.MetadataValue.int(rebuilt)
    return dg.MaterializeResult(metadata=entries)
