"""clean stage: typed, deduplicated tables from the decoded messages of ``raw_events``.

Each asset folds in the raw rows it has not seen, batch by batch (its own stage offsets, see
stream.py): it stages the batch's messages one row a hash (``sql/clean_*.sql``) and merges the
staged rows, one transaction a batch. A rebuild run then deletes the window's rows and stages
and merges the window's messages again, in one transaction.
A message seen twice (produced again, or redelivered) is kept once, by hash: the copy earliest
in the log owns the row, whichever window runs first. DuckLake has no primary keys, so the
merge does that explicitly (``keep_earliest``).
"""

import time
from typing import Any

import dagster as dg
import duckdb
import numpy as np

from ozi_assets import sql, stream, table_metadata
from ozi_assets.partitions import STREAM_FRESHNESS, stream_partitions, window_grid
from ozi_assets.raw import farcaster_events, report_windows
from ozi_resources.kafka import KafkaResource
from ozi_resources.warehouse import Commit, WarehouseResource, run_script
from ozi_resources.windows import WindowGrid

# Every clean table is keyed by message hash and ordered by source_position.
CLEAN_TABLES = ("cast_adds", "cast_removes", "reaction_messages", "user_data", "links")
# Each clean stage (stream.CLEAN_STAGES, named as its asset): its script and the tables it
# writes, the first being the one its materializations describe. Casts first: they are what
# a live stream waits to see.
STAGES = {
    "clean/casts": ("clean_casts", ("cast_adds", "cast_removes")),
    "clean/reactions": ("clean_reactions", ("reaction_messages",)),
    "clean/users": ("clean_users", ("user_data", "links")),
}


def keep_earliest(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Merge ``staged_<table>`` into ``table``: a staged row replaces a row of the same hash
    that stands later in the log, and is dropped when an earlier copy already owns the hash.
    ``table`` is one of CLEAN_TABLES (a constant, never input)."""
    if table not in CLEAN_TABLES:
        raise ValueError(f"not a clean table: {table}")
    lo, hi = conn.execute(
        f'SELECT epoch_us(min("timestamp")), epoch_us(max("timestamp")) FROM staged_{table}'
    ).fetchone()
    if lo is None:
        return  # nothing staged: no probe of the table, no empty insert
    # One probe of the table for the staged hashes (earlier_owns: a copy at or before the
    # staged one owns the hash); nearly always it finds none (a copy is rare), and the batch
    # is a plain append. Copies of one message carry one timestamp (the hash covers the
    # message's data, its timestamp included), so the probe reads only the files whose
    # timestamps overlap the batch's: the bounds are constants, which DuckLake prunes files
    # by, where the whole table's hashes were read every batch (a batch's probe grew with
    # the table).
    conn.execute(
        f"""CREATE OR REPLACE TEMP TABLE owned AS
            SELECT s.hash, min(t.source_position) <= min(s.source_position) AS earlier_owns
            FROM staged_{table} s JOIN {table} t
              ON t.hash = s.hash AND t."timestamp" = s."timestamp"
            WHERE t."timestamp" BETWEEN make_timestamptz({int(lo)}::BIGINT)
                                    AND make_timestamptz({int(hi)}::BIGINT)
            GROUP BY s.hash"""
    )
    (copies,) = conn.execute("SELECT count(*) FROM owned").fetchone()
    if copies:
        conn.execute(
            f"""DELETE FROM {table} WHERE hash IN (
                    SELECT hash FROM owned WHERE NOT earlier_owns)"""
        )
    conn.execute(
        f"""INSERT INTO {table} BY NAME
            SELECT * FROM staged_{table}
            WHERE hash NOT IN (SELECT hash FROM owned WHERE earlier_owns)"""
    )


# The messages of the log the clean stage reads: those not dead-lettered, as JSON, with their
# source_position (which orders copies of one message by where they stand in the log). From
# raw_events, or from the temp table decoded_batch: what the raw stage has just appended in
# the same transaction (stream_job's batches), so it is not read back from the lake.
DECODED_MESSAGES = """(
    SELECT {msg} AS msg,
           message_type,
           (kafka_partition::BIGINT << 40) + kafka_offset AS source_position,
           kafka_partition,
           kafka_offset,
           window_start
    FROM {source}
    WHERE dead_letter_reason IS NULL
)"""
# Each source of messages and how its rows' JSON is read: decoded_batch holds the document the
# raw stage parsed, one parse a message fewer (a 1M-message replay did not measurably change).
MESSAGE_SOURCES = {"raw_events": "decode(message_value)::JSON", "decoded_batch": "msg"}


def stage_source(
    conn: duckdb.DuckDBPyConnection, branches: list[str], source: str = "raw_events"
) -> None:
    """Read the messages (DECODED_MESSAGES) of ``source`` (one of MESSAGE_SOURCES) matching
    any of ``branches`` (SQL conditions on them, built from integers and timestamps by this
    module) into the temp table batch_messages, which the clean scripts read. A table, not a
    view: each script reads it twice and the three stages of a stream_job batch share one, so
    raw_events is scanned and decoded once a batch, not six times (about 180 ms against 60 ms
    for 1,000 messages beside 300k)."""
    if source not in MESSAGE_SOURCES:
        raise ValueError(f"not a source of messages: {source}")
    messages = DECODED_MESSAGES.format(source=source, msg=MESSAGE_SOURCES[source])
    union = " UNION ALL ".join(f"SELECT * FROM {messages} WHERE {b}" for b in branches or ["FALSE"])
    conn.execute(f"CREATE OR REPLACE TEMP TABLE batch_messages AS {union}")


def stage_batch(conn: duckdb.DuckDBPyConnection, script: str, branches: list[str]) -> None:
    """Stage the messages matching any of ``branches`` (see stage_source) with a clean
    script."""
    stage_source(conn, branches)
    run_script(conn, sql.load(script))


def window_indices(grid: WindowGrid, starts_ms: set[int]) -> set[int]:
    """Grid indices of the windows given by their start (Unix ms), as fold_batch returns
    them."""
    return set(grid.window_of(np.array(sorted(starts_ms), np.int64)).tolist())


def staged_windows(conn: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> set[int]:
    """Windows (start, Unix ms) of the staged rows."""
    union = " UNION ".join(f"SELECT epoch_ms(window_start) FROM staged_{t}" for t in tables)
    return {row[0] for row in conn.execute(union).fetchall()}


def fold_batch(
    conn: duckdb.DuckDBPyConnection, stage: str, topic: str, batch_messages: int
) -> tuple[int, set[int]] | None:
    """Fold the next batch of raw rows the stage (a key of STAGES) has not seen into its
    tables, with the stage's new offsets, inside the caller's transaction: at most
    ``batch_messages`` messages. Returns (messages folded in, window starts in Unix ms of the
    rows that changed), or None when the stage has caught up with the raw stage."""
    return fold_batches(conn, (stage,), topic, batch_messages)[stage]


def fold_batches(
    conn: duckdb.DuckDBPyConnection,
    stages: tuple[str, ...],
    topic: str,
    batch_messages: int,
    fresh: stream.Ranges | None = None,
) -> dict[str, tuple[int, set[int]] | None]:
    """fold_batch for each of ``stages`` (keys of STAGES) in the caller's transaction, with
    their offsets read and written in one statement each, and the raw rows read once for the
    stages that stand at the same offsets (stream_job's batches: all three). ``fresh``: the
    offset ranges (Kafka partition → (first, next)) the raw stage has just appended in this
    transaction; a stage whose next batch is exactly those reads them from decoded_batch,
    not back from raw_events (a tenth of a small batch's time). Returns {stage: what
    fold_batch returns}."""
    offsets = stream.load_stages(conn, (stream.RAW, *stages), topic)
    plans = {s: stream.next_batch(offsets[s], offsets[stream.RAW], batch_messages) for s in stages}
    results: dict[str, tuple[int, set[int]] | None] = {}
    staged: stream.Ranges | None = None  # the ranges batch_messages holds
    for stage, ranges in plans.items():
        if not ranges:
            results[stage] = None
            continue
        if ranges != staged:
            source = "decoded_batch" if ranges == fresh else "raw_events"
            stage_source(conn, stream.offset_branches(ranges), source)
            staged = ranges
        script, tables = STAGES[stage]
        run_script(conn, sql.load(script))
        for table in tables:
            keep_earliest(conn, table)
        results[stage] = (sum(b - a for a, b in ranges.values()), staged_windows(conn, tables))
    stream.save_stages(
        conn, topic, {s: stream.advanced(offsets[s], r) for s, r in plans.items() if r}
    )
    return results


def fold_in(
    warehouse: WarehouseResource,
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    stage: str,
    topic: str,
    batch_messages: int,
    commit: Commit | None = None,
) -> tuple[int, set[int]]:
    """Fold the raw rows the stage has not seen into its tables, batch by batch, each batch
    with the stage's new offsets in one transaction (committed as ``commit``; default: the
    asset's). Returns (messages folded in, windows whose rows changed, as window starts in
    Unix ms)."""
    folded = 0
    windows: set[int] = set()
    while True:
        result = warehouse.write(
            commit or Commit.of(context),
            lambda conn: fold_batch(conn, stage, topic, batch_messages),
        )
        if result is None:
            return folded, windows
        folded += result[0]
        windows |= result[1]


def rebuild(
    warehouse: WarehouseResource,
    context: dg.AssetExecutionContext,
    stage: str,
    script: str,
    tables: tuple[str, ...],
    topic: str,
) -> dict[str, int]:
    """Delete ``tables``' rows of the run's window and stage and merge its messages again, in
    one transaction; returns {table: rows now owned by the window}."""
    window_start = window_grid().start_of(context.partition_key)

    def work(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
        done = stream.load_offsets(conn, stage, topic)
        for table in tables:
            conn.execute(f"DELETE FROM {table} WHERE window_start = $w", {"w": window_start})
        # Only what the stage has folded in: raw rows appended since are the next batch's.
        literal = f"TIMESTAMPTZ '{window_start.isoformat()}'"
        stage_batch(
            conn,
            script,
            [
                f"window_start = {literal} AND {b}"
                for b in stream.offset_branches(stream.below(done))
            ],
        )
        counts = {}
        for table in tables:
            keep_earliest(conn, table)
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE window_start = $w", {"w": window_start}
            ).fetchone()
            counts[table] = row[0] if row else 0
        return counts

    return warehouse.write(Commit.of(context), work)


def window_metadata(
    warehouse: WarehouseResource, grid: WindowGrid, partitions: set[str], tables: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """{partition: metadata}: the standard table entries of the asset's first table (its row
    count: the window's rows) and the window's rows of each other table it writes, as
    ``<table>_rows``."""

    def others(conn: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any]:
        entries = {}
        for table in tables[1:]:
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE window_start = $w", {"w": grid.start_of(key)}
            ).fetchone()
            entries[f"{table}_rows"] = dg.MetadataValue.int(int(row[0]) if row else 0)
        return entries

    return table_metadata.by_window(warehouse, grid, partitions, tables[0], more=others)


def materialize(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    kafka: KafkaResource,
    stage: str,
) -> dg.MaterializeResult:
    """Catch the stage (a key of STAGES) up with the raw stage; in a rebuild run, rebuild the
    run's window too. Every other window whose rows changed is reported as materialized."""
    started = time.perf_counter()
    script, tables = STAGES[stage]
    folded, windows = fold_in(warehouse, context, stage, kafka.topic, kafka.batch_messages)
    grid = window_grid()
    touched = window_indices(grid, windows)
    if stream.run_mode(context) == stream.REBUILD:
        rebuild(warehouse, context, stage, script, tables, kafka.topic)
    tables_by_window = window_metadata(
        warehouse, grid, {context.partition_key} | {grid.keys[w] for w in touched}, tables
    )
    report_windows(
        context,
        [context.asset_key],
        grid,
        touched,
        {"messages_folded_in": dg.MetadataValue.int(folded)},
        lambda _, key: tables_by_window[key],
    )
    metadata: dict[str, Any] = {
        **tables_by_window[context.partition_key],
        "mode": dg.MetadataValue.text(stream.run_mode(context)),
        "messages_folded_in": dg.MetadataValue.int(folded),
        "windows_changed": dg.MetadataValue.json(sorted(grid.keys[w] for w in touched)),
    }
    metadata["seconds"] = dg.MetadataValue.float(round(time.perf_counter() - started, 3))
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key=["clean", "casts"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="lake_writer",
    freshness_policy=STREAM_FRESHNESS,
    kinds={"ducklake"},
)
def casts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource
) -> dg.MaterializeResult:
    """Casts and replies of the window (table ``cast_adds``, public view ``casts``): hash, fid,
    username, text, timestamp (UTC), parent_hash / parent_fid (NULL for top-level casts),
    thread_hash, mentions, embeds and the source's snapshot counters. CAST_REMOVE messages go
    to ``cast_removes`` and hide their target from the view. Source: raw/farcaster_events."""
    return materialize(context, warehouse, kafka, "clean/casts")


@dg.asset(
    key=["clean", "reactions"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="lake_writer",
    freshness_policy=STREAM_FRESHNESS,
    kinds={"ducklake"},
)
def reactions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource
) -> dg.MaterializeResult:
    """Likes and recasts of the window (table ``reaction_messages``, public view ``reactions``
    with hash, reaction_type 'like' | 'recast', fid, target_hash, timestamp). A reaction
    counts while its latest message is an add. Source: raw/farcaster_events."""
    return materialize(context, warehouse, kafka, "clean/reactions")


@dg.asset(
    key=["clean", "users"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="lake_writer",
    freshness_policy=STREAM_FRESHNESS,
    kinds={"ducklake"},
)
def users(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource
) -> dg.MaterializeResult:
    """Profile fields of the window (table ``user_data``, one row per USER_DATA_ADD; public
    view ``users`` with the latest fid, username, display_name, bio, follower_count) and
    follows (``links``). Source: raw/farcaster_events."""
    return materialize(context, warehouse, kafka, "clean/users")
