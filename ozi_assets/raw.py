"""raw stage: one window of the Kafka log → ``raw_events``, undecodable messages dead-lettered.

Which offsets a window reads comes from Ozi's offset index (``kafka_offset_index``), extended
here as new messages arrive: see ozi_resources/windows.py for the rule and why Ozi keeps the
index itself.
"""

import time
from dataclasses import dataclass, field

import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa

from ozi_assets import sql
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_resources.kafka import KafkaResource, LogSlice
from ozi_resources.warehouse import Commit, WarehouseResource
from ozi_resources.windows import WindowGrid, assign_windows


@dataclass
class PartitionIndex:
    """Ozi's offset index of one Kafka partition, as stored in the warehouse."""

    indexed_to: int = 0
    running_max_ms: int | None = None
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)  # window → [first, next)


@dataclass
class WindowRead:
    """What reading one window produced: its messages, and the index after the read."""

    slices: list[LogSlice]
    index: dict[int, PartitionIndex]
    offset_ranges: dict[int, tuple[int, int]]
    log_resets: list[int]


def load_index(
    conn: duckdb.DuckDBPyConnection, topic: str, grid: WindowGrid
) -> dict[int, PartitionIndex]:
    index: dict[int, PartitionIndex] = {}
    for p, indexed_to, running_max in conn.execute(
        "SELECT kafka_partition, indexed_to, running_max_ms FROM kafka_index_state "
        "WHERE topic = $topic",
        {"topic": topic},
    ).fetchall():
        index[p] = PartitionIndex(indexed_to, running_max)
    for p, start_ms, first, nxt in conn.execute(
        "SELECT kafka_partition, epoch_ms(window_start), first_offset, next_offset "
        "FROM kafka_offset_index WHERE topic = $topic",
        {"topic": topic},
    ).fetchall():
        w = int(grid.window_of(np.array([start_ms]))[0])
        index.setdefault(p, PartitionIndex()).ranges[w] = (first, nxt)
    return index


def save_index(
    conn: duckdb.DuckDBPyConnection, topic: str, grid: WindowGrid, index: dict[int, PartitionIndex]
) -> None:
    conn.execute("DELETE FROM kafka_offset_index WHERE topic = $topic", {"topic": topic})
    conn.execute("DELETE FROM kafka_index_state WHERE topic = $topic", {"topic": topic})
    rows = [
        (topic, p, int(grid.starts_ms[w]), first, nxt)
        for p, part in index.items()
        for w, (first, nxt) in part.ranges.items()
    ]
    if rows:
        conn.executemany(
            "INSERT INTO kafka_offset_index VALUES (?, ?, make_timestamptz(? * 1000), ?, ?)", rows
        )
    conn.executemany(
        "INSERT INTO kafka_index_state VALUES (?, ?, ?, ?)",
        [(topic, p, part.indexed_to, part.running_max_ms) for p, part in index.items()],
    )


def read_window(
    kafka: KafkaResource, grid: WindowGrid, window: int, index: dict[int, PartitionIndex]
) -> WindowRead:
    """Read the messages of ``window`` (a position in ``grid``) from every Kafka partition.

    A window whose every partition has moved past it is read from the index alone. Otherwise
    the log is read up to the high watermark, new offsets are assigned to windows (extending
    ``index`` in place), and the window's messages are kept.
    """
    high = kafka.high_watermarks()
    plans: dict[int, tuple[int, int, int]] = {}  # partition → (start, end, first unindexed)
    resets = []
    for p, hw in high.items():
        part = index.setdefault(p, PartitionIndex())
        if hw < part.indexed_to:
            # The log is shorter than what was indexed: the embedded broker restarted and lost
            # its memory. Index it afresh; offsets now name other messages.
            index[p] = part = PartitionIndex()
            resets.append(p)
        current = (
            None
            if part.running_max_ms is None
            else int(grid.window_of(np.array([part.running_max_ms]))[0])
        )
        own = part.ranges.get(window)
        if current is not None and current > window:
            first, nxt = own or (0, 0)
            plans[p] = (first, nxt, nxt)
        else:
            start = own[0] if own else part.indexed_to
            plans[p] = (start, hw, part.indexed_to)
    slices = kafka.read({p: (start, end) for p, (start, end, _) in plans.items()})

    kept = []
    ranges = {}
    for p, (start, end, unindexed) in plans.items():
        log = slices[p]
        part = index[p]
        new = log.offsets >= unindexed
        assignment = assign_windows(grid, log.timestamps_ms[new], part.running_max_ms)
        for w in np.unique(assignment.log_window):
            offsets = log.offsets[new][assignment.log_window == w]
            first, nxt = int(offsets[0]), int(offsets[-1]) + 1
            if int(w) in part.ranges:
                first = min(first, part.ranges[int(w)][0])
                nxt = max(nxt, part.ranges[int(w)][1])
            part.ranges[int(w)] = (first, nxt)
        if new.any():
            part.indexed_to = end
            part.running_max_ms = assignment.running_max_ms
        mine = ~new
        mine[new] = assignment.log_window == window
        kept.append(log.select(mine))
        ranges[p] = part.ranges.get(window, (start, start))
    return WindowRead(kept, index, ranges, resets)


def to_arrow(topic: str, grid: WindowGrid, window: int, slices: list[LogSlice]) -> pa.Table:
    """The window's messages as the Arrow table raw_decode.sql reads (``raw_batch``)."""
    offsets = np.concatenate([s.offsets for s in slices]) if slices else np.empty(0, np.int64)
    stamps = np.concatenate([s.timestamps_ms for s in slices]) if slices else np.empty(0, np.int64)
    return pa.table(
        {
            "topic": pa.array([topic] * len(offsets), pa.string()),
            "kafka_partition": pa.array(
                np.concatenate([np.full(len(s), s.partition, np.int32) for s in slices])
                if slices
                else np.empty(0, np.int32)
            ),
            "kafka_offset": pa.array(offsets),
            "timestamp_ms": pa.array(stamps),
            "window_ms": pa.array(np.full(len(offsets), grid.starts_ms[window], np.int64)),
            "event_window_ms": pa.array(grid.starts_ms[grid.window_of(stamps)]),
            "message_key": pa.array([k for s in slices for k in s.keys], pa.binary()),
            "message_value": pa.array([v for s in slices for v in s.values], pa.binary()),
        }
    )


@dg.asset(
    key=["raw", "farcaster_events"],
    partitions_def=stream_partitions,
    group_name="raw",
    pool="lake_writer",
    kinds={"kafka", "ducklake"},
)
def farcaster_events(
    context: dg.AssetExecutionContext, kafka: KafkaResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Every Kafka message of the window, exact bytes with topic, partition, offset, timestamp
    and key (table ``raw_events``). Messages that are not well-formed protocol messages stay
    here with a ``dead_letter_reason`` (view ``dead_letters``) and are sent once to the
    dead-letter topic. Source: the Farcaster event topic."""
    started = time.perf_counter()
    grid = window_grid()
    window_key = context.partition_key
    window = grid.index_of(window_key)
    window_start = grid.start_of(window_key)

    def work(conn: duckdb.DuckDBPyConnection) -> tuple[WindowRead, pa.Table, list, tuple]:
        index = load_index(conn, kafka.topic, grid)
        read = read_window(kafka, grid, window, index)
        for p in read.log_resets:
            context.log.warning(f"partition {p}: the log restarted below the indexed offsets")
        batch = to_arrow(kafka.topic, grid, window, read.slices)
        conn.register("raw_batch", batch)
        before = {
            row[0:3]
            for row in conn.execute(
                "SELECT topic, kafka_partition, kafka_offset, 1 FROM dead_letters "
                "WHERE window_start = $w",
                {"w": window_start},
            ).fetchall()
        }
        conn.execute("DELETE FROM raw_events WHERE window_start = $w", {"w": window_start})
        conn.execute(sql.load("raw_decode"))
        save_index(conn, kafka.topic, grid, read.index)
        letters = conn.execute(
            "SELECT topic, kafka_partition, kafka_offset, message_key, message_value, "
            "epoch_ms(kafka_timestamp), reason FROM dead_letters WHERE window_start = $w "
            "ORDER BY kafka_partition, kafka_offset",
            {"w": window_start},
        ).fetchall()
        new_letters = [
            (
                k or b"",
                v,
                ts,
                [("ozi-reason", r.encode()), ("ozi-source", f"{t}/{p}/{o}".encode())],
            )
            for t, p, o, k, v, ts, r in letters
            if (t, p, o) not in before
        ]
        # Sent before the commit: a crash or a retried commit re-sends them (at-least-once),
        # never drops them.
        kafka.send_dead_letters(new_letters)
        stats = conn.execute(
            "SELECT count(*), count(dead_letter_reason), "
            "count(*) FILTER (WHERE event_window_start < window_start) "
            "FROM raw_events WHERE window_start = $w",
            {"w": window_start},
        ).fetchone()
        conn.unregister("raw_batch")
        assert stats is not None  # an aggregate query always returns a row
        return read, batch, new_letters, stats

    read, batch, new_letters, stats = warehouse.write(Commit.of(context), work)
    read_count, dead, late = stats
    late_windows = sorted(
        {
            grid.keys[w]
            for w in grid.window_of(batch.column("timestamp_ms").to_numpy())
            if w < window
        }
    )
    return dg.MaterializeResult(
        metadata={
            "messages": dg.MetadataValue.int(read_count),
            "decoded": dg.MetadataValue.int(read_count - dead),
            "dead_lettered": dg.MetadataValue.int(dead),
            "dead_letters_sent": dg.MetadataValue.int(len(new_letters)),
            "late_messages": dg.MetadataValue.int(late),
            "late_windows": dg.MetadataValue.json(late_windows),
            "offset_ranges": dg.MetadataValue.json(
                {str(p): list(r) for p, r in sorted(read.offset_ranges.items())}
            ),
            "indexed_to": dg.MetadataValue.json(
                {str(p): part.indexed_to for p, part in sorted(read.index.items())}
            ),
            "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
        }
    )
