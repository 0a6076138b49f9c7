"""clean stage: typed, deduplicated tables from the window's decoded messages.

Each asset replaces its window's rows in one transaction (one lake snapshot): it deletes them,
stages the window's messages one row a hash (``sql/clean_*.sql``) and merges the staged rows.
A message seen twice (produced again, or redelivered) is kept once, by hash: the copy earliest
in the log owns the row, whichever window runs first. DuckLake has no primary keys, so the
merge does that explicitly (``keep_earliest``).
"""

import dagster as dg
import duckdb

from ozi_assets import sql
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_assets.raw import farcaster_events
from ozi_resources.warehouse import Commit, WarehouseResource, run_script

# Every clean table is keyed by message hash and ordered by source_position.
CLEAN_TABLES = ("cast_adds", "cast_removes", "reaction_messages", "user_data", "links")


def keep_earliest(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Merge ``staged_<table>`` into ``table``: a staged row replaces a row of the same hash
    that stands later in the log, and is dropped when an earlier copy already owns the hash.
    ``table`` is one of CLEAN_TABLES (a constant, never input)."""
    if table not in CLEAN_TABLES:
        raise ValueError(f"not a clean table: {table}")
    conn.execute(
        f"""DELETE FROM {table} WHERE hash IN (
                SELECT s.hash FROM staged_{table} s JOIN {table} t ON t.hash = s.hash
                WHERE t.source_position > s.source_position)"""
    )
    conn.execute(
        f"""INSERT INTO {table} BY NAME
            SELECT * FROM staged_{table} s
            WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.hash = s.hash)"""
    )


def replace_window(
    warehouse: WarehouseResource,
    context: dg.AssetExecutionContext,
    script: str,
    tables: tuple[str, ...],
) -> dict[str, int]:
    """Delete ``tables``' rows of the window, stage and merge its messages, commit as one
    snapshot; returns {table: rows now owned by the window}."""
    window_start = window_grid().start_of(context.partition_key)

    def work(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
        for table in tables:
            conn.execute(f"DELETE FROM {table} WHERE window_start = $w", {"w": window_start})
        run_script(conn, sql.load(script), {"window_start": window_start})
        counts = {}
        for table in tables:
            keep_earliest(conn, table)
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE window_start = $w", {"w": window_start}
            ).fetchone()
            counts[table] = row[0] if row else 0
        return counts

    counts = warehouse.write(Commit.of(context), work)
    return counts


def _result(counts: dict[str, int]) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={f"{table}_rows": dg.MetadataValue.int(n) for table, n in counts.items()}
    )


@dg.asset(
    key=["clean", "casts"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="lake_writer",
    kinds={"ducklake"},
)
def casts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Casts and replies of the window (table ``cast_adds``, public view ``casts``): hash, fid,
    username, text, timestamp (UTC), parent_hash / parent_fid (NULL for top-level casts),
    thread_hash, mentions, embeds and the source's snapshot counters. CAST_REMOVE messages go
    to ``cast_removes`` and hide their target from the view. Source: raw/farcaster_events."""
    return _result(replace_window(warehouse, context, "clean_casts", ("cast_adds", "cast_removes")))


@dg.asset(
    key=["clean", "reactions"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="lake_writer",
    kinds={"ducklake"},
)
def reactions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Likes and recasts of the window (table ``reaction_messages``, public view ``reactions``
    with hash, reaction_type 'like' | 'recast', fid, target_hash, timestamp). A reaction
    counts while its latest message is an add. Source: raw/farcaster_events."""
    return _result(replace_window(warehouse, context, "clean_reactions", ("reaction_messages",)))


@dg.asset(
    key=["clean", "users"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="lake_writer",
    kinds={"ducklake"},
)
def users(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Profile fields of the window (table ``user_data``, one row per USER_DATA_ADD; public
    view ``users`` with the latest fid, username, display_name, bio, follower_count) and
    follows (``links``). Source: raw/farcaster_events."""
    return _result(replace_window(warehouse, context, "clean_users", ("user_data", "links")))
