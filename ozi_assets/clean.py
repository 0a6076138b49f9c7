"""clean stage: typed, deduplicated tables from the window's decoded messages.

Each asset replaces its window's rows in one transaction (delete, then insert), so any number
of re-runs leaves the same rows. A message seen twice (produced again, or redelivered) is kept
once, by hash: the copy earliest in the log owns the row, whichever window runs first.
"""

import dagster as dg

from ozi_assets import sql
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_assets.raw import farcaster_events
from ozi_resources.warehouse import WarehouseResource, run_script


def replace_window(
    warehouse: WarehouseResource, script: str, tables: tuple[str, ...], window_key: str
) -> dict[str, int]:
    """Delete ``tables``' rows of the window, run the clean script, commit; returns
    {table: rows now owned by the window}."""
    window_start = window_grid().start_of(window_key)
    with warehouse.writer() as conn:
        conn.execute("BEGIN TRANSACTION")
        for table in tables:
            conn.execute(f"DELETE FROM {table} WHERE window_start = $w", {"w": window_start})
        run_script(conn, sql.load(script), {"window_start": window_start})
        counts = {}
        for table in tables:
            row = conn.execute(
                f"SELECT count(*) FROM {table} WHERE window_start = $w", {"w": window_start}
            ).fetchone()
            counts[table] = row[0] if row else 0
        conn.execute("COMMIT")
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
    pool="duckdb_writer",
    kinds={"duckdb"},
)
def casts(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Casts and replies of the window (table ``cast_adds``, public view ``casts``): hash, fid,
    username, text, timestamp (UTC), parent_hash / parent_fid (NULL for top-level casts),
    thread_hash, mentions, embeds and the source's snapshot counters. CAST_REMOVE messages go
    to ``cast_removes`` and hide their target from the view. Source: raw/farcaster_events."""
    return _result(
        replace_window(
            warehouse, "clean_casts", ("cast_adds", "cast_removes"), context.partition_key
        )
    )


@dg.asset(
    key=["clean", "reactions"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="duckdb_writer",
    kinds={"duckdb"},
)
def reactions(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Likes and recasts of the window (table ``reaction_messages``, public view ``reactions``
    with hash, reaction_type 'like' | 'recast', fid, target_hash, timestamp). A reaction
    counts while its latest message is an add. Source: raw/farcaster_events."""
    return _result(
        replace_window(warehouse, "clean_reactions", ("reaction_messages",), context.partition_key)
    )


@dg.asset(
    key=["clean", "users"],
    deps=[farcaster_events],
    partitions_def=stream_partitions,
    group_name="clean",
    pool="duckdb_writer",
    kinds={"duckdb"},
)
def users(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """Profile fields of the window (table ``user_data``, one row per USER_DATA_ADD; public
    view ``users`` with the latest fid, username, display_name, bio, follower_count) and
    follows (``links``). Source: raw/farcaster_events."""
    return _result(
        replace_window(warehouse, "clean_users", ("user_data", "links"), context.partition_key)
    )
