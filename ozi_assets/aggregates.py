"""aggregates stage: per-window activity, top authors, most replied-to users, top terms and
mentions, and per-cast engagement.

A window's run recomputes, from the whole clean tables, every window its rows fall in (its
own, plus the windows of late events it read) and every cast its replies and reactions point
at. Each recomputation is a pure function of the clean tables, so re-runs, late data and any
run order end in the same rows.
"""

import time

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from ozi_assets import sql
from ozi_assets.clean import casts, reactions, users
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_resources.warehouse import Commit, WarehouseResource, run_script
from ozi_resources.windows import WindowGrid

AGGREGATE_TABLES = (
    "hourly_activity",
    "top_authors",
    "most_replied_to",
    "top_terms",
    "cast_engagement",
)
# Social-media filler that English stop-word lists do not carry.
EXTRA_STOPWORDS = ("just", "like", "get", "got", "gonna", "it's", "i'm", "don't", "that's")


def stopwords() -> list[str]:
    """English stop words from scikit-learn (a maintained list) plus a few of the medium's."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return sorted(set(ENGLISH_STOP_WORDS) | set(EXTRA_STOPWORDS))


def touched(
    conn: duckdb.DuckDBPyConnection, grid: WindowGrid, window_key: str
) -> tuple[pd.DataFrame, list[str]]:
    """Windows (start, end) and cast hashes whose aggregates a window's clean rows affect."""
    window_start = grid.start_of(window_key)
    stamps = conn.execute(
        """SELECT epoch_ms("timestamp") FROM cast_adds WHERE window_start = $w
           UNION ALL SELECT epoch_ms("timestamp") FROM reaction_messages WHERE window_start = $w""",
        {"w": window_start},
    ).fetchnumpy()
    positions = set(grid.window_of(next(iter(stamps.values())).astype(np.int64)).tolist())
    positions.add(grid.index_of(window_key))
    windows = pd.DataFrame(
        {
            "window_start": pd.to_datetime(grid.starts_ms[sorted(positions)], unit="ms", utc=True),
            "window_end": pd.to_datetime(grid.ends_ms[sorted(positions)], unit="ms", utc=True),
        }
    )
    hashes = [
        row[0]
        for row in conn.execute(
            """SELECT hash FROM cast_adds WHERE window_start = $w
               UNION SELECT parent_hash FROM cast_adds
                     WHERE window_start = $w AND parent_hash IS NOT NULL
               UNION SELECT target_hash FROM reaction_messages WHERE window_start = $w""",
            {"w": window_start},
        ).fetchall()
    ]
    return windows, hashes


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["aggregates", name],
            deps=[casts, reactions, users],
            partitions_def=stream_partitions,
            group_name="aggregates",
            kinds={"ducklake"},
            description=description,
        )
        for name, description in [
            (
                "hourly_activity",
                "Casts, top-level casts, replies, reactions (likes, recasts) "
                "and distinct authors per window, by event time.",
            ),
            ("top_authors", "The 25 fids with most casts in each window, with their replies."),
            ("most_replied_to", "The 25 fids whose casts drew most replies in each window."),
            (
                "top_terms",
                "The 25 most used terms, @mentions and #hashtags in each window's "
                "casts, stop words dropped, with how many authors used each.",
            ),
            (
                "cast_engagement",
                "Per cast: replies, recasts and likes seen in the stream, and "
                "the source's snapshot counters where it sent them.",
            ),
        ]
    ],
    partitions_def=stream_partitions,
    pool="lake_writer",
    can_subset=False,
)
def aggregates(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Recompute the aggregates a window affects, in one transaction (one lake snapshot).
    Source: the clean casts, reactions and users."""
    started = time.perf_counter()
    grid = window_grid()

    def work(conn: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, list[str], dict[str, int]]:
        windows, hashes = touched(conn, grid, context.partition_key)
        conn.register("touched_windows", windows)
        conn.register("touched_casts", pd.DataFrame({"hash": pd.Series(hashes, dtype=str)}))
        conn.register("stopwords", pd.DataFrame({"word": stopwords()}))
        run_script(conn, sql.load("aggregates"))
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in AGGREGATE_TABLES
        }
        return windows, hashes, counts

    windows, hashes, counts = warehouse.write(Commit.of(context), work)
    seconds = round(time.perf_counter() - started, 3)
    refreshed = [ts.strftime("%Y-%m-%d-%H:%M") for ts in windows["window_start"]]
    for table in AGGREGATE_TABLES:
        yield dg.MaterializeResult(
            asset_key=["aggregates", table],
            metadata={
                "rows": dg.MetadataValue.int(counts[table]),
                "windows_refreshed": dg.MetadataValue.json(refreshed),
                "casts_refreshed": dg.MetadataValue.int(len(hashes)),
                "seconds": dg.MetadataValue.float(seconds),
            },
        )
