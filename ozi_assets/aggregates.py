"""aggregates stage: per-window activity, top authors, most replied-to users, top terms and
mentions, and per-cast engagement.

A run recomputes, from the clean tables, every window and cast that the clean rows folded in
since the last run touch (the aggregates stage keeps its own offsets, see stream.py): the
windows their events fall in, the windows of the casts and reactions a remove cancels, and
the casts replies and reactions point at. Each recomputation is a pure function of the clean
tables, so re-runs, late data, removes and any run order end in the same rows. So that a
batch costs its own messages, the stage keeps state that is itself such a function
(cast_terms: each cast's terms; reaction_state: each reaction key's latest message), folded
in batch by batch and rebuilt with its window.
"""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from ozi_assets import sql, stream, table_metadata
from ozi_assets.clean import casts, reactions, users
from ozi_assets.partitions import STREAM_FRESHNESS, stream_partitions, window_grid
from ozi_assets.raw import report_windows
from ozi_resources.kafka import KafkaResource
from ozi_resources.warehouse import Commit, WarehouseResource, run_script
from ozi_resources.windows import WindowGrid

AGGREGATE_TABLES = (
    "hourly_activity",
    "top_authors",
    "most_replied_to",
    "top_terms",
    "cast_engagement",
)
AGGREGATE_KEYS = [dg.AssetKey(["aggregates", t]) for t in AGGREGATE_TABLES]
# Social-media filler that English stop-word lists do not carry.
EXTRA_STOPWORDS = ("just", "like", "get", "got", "gonna", "it's", "i'm", "don't", "that's")


# scikit-learn's English stop-word list (a maintained list), copied to a package file because
# importing scikit-learn takes 2-3 s, in every run's process; a test keeps the copy equal to it.
STOP_WORDS_FILE = Path(__file__).parent / "sql" / "english_stop_words.txt"


@functools.cache
def stopwords() -> list[str]:
    """English stop words (scikit-learn's list) plus a few of the medium's."""
    english = STOP_WORDS_FILE.read_text().split()
    return sorted(set(english) | set(EXTRA_STOPWORDS))


def touched(
    conn: duckdb.DuckDBPyConnection, grid: WindowGrid, where: Callable[[str], str]
) -> tuple[list[int], list[str]]:
    """Windows (positions in ``grid``) and cast hashes whose aggregates the clean rows chosen by
    ``where(alias)`` (a SQL condition on a clean table aliased ``alias``) affect.

    A cast counts in the window of its own timestamp; a remove changes the window of the cast
    it removes and the engagement of that cast's parent; a reaction message can end or revive
    the reactions of its (fid, type, target) in other windows."""
    stamps = conn.execute(
        f"""SELECT epoch_ms(a."timestamp") AS ms FROM cast_adds a WHERE {where("a")}
            UNION ALL
            SELECT epoch_ms(c."timestamp") FROM cast_removes r
              JOIN cast_adds c ON c.hash = r.target_hash WHERE {where("r")}
            UNION ALL
            SELECT epoch_ms(m."timestamp") FROM reaction_messages b
              JOIN reaction_messages m USING (fid, reaction_type, target_hash)
             WHERE {where("b")}"""
    ).fetchnumpy()["ms"]
    windows = sorted(set(grid.window_of(np.asarray(stamps, np.int64)).tolist()))
    hashes = [
        row[0]
        for row in conn.execute(
            f"""SELECT a.hash FROM cast_adds a WHERE {where("a")}
                UNION SELECT a.parent_hash FROM cast_adds a
                      WHERE {where("a")} AND a.parent_hash IS NOT NULL
                UNION SELECT b.target_hash FROM reaction_messages b WHERE {where("b")}
                UNION SELECT r.target_hash FROM cast_removes r WHERE {where("r")}
                UNION SELECT c.parent_hash FROM cast_removes r
                      JOIN cast_adds c ON c.hash = r.target_hash
                      WHERE {where("r")} AND c.parent_hash IS NOT NULL"""
        ).fetchall()
    ]
    return windows, hashes


def compute(
    conn: duckdb.DuckDBPyConnection,
    grid: WindowGrid,
    windows: list[int],
    hashes: list[str],
    where: Callable[[str], str],
) -> None:
    """Fold the clean rows chosen by ``where(alias)`` into the stage's state (each cast's
    terms, each reaction key's latest message) and recompute the aggregates of ``windows``
    and ``hashes`` from the clean tables and that state, into temp tables of ``conn``
    (aggregates.sql). It only reads the lake, so it may run outside the transaction that
    writes: ``apply`` on the same connection writes the result."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE batch_casts AS "
        f"SELECT a.hash FROM cast_adds a WHERE {where('a')}"
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE batch_reaction_keys AS SELECT DISTINCT b.fid, "
        f"b.reaction_type, b.target_hash FROM reaction_messages b WHERE {where('b')}"
    )
    conn.register(
        "touched_windows",
        pd.DataFrame(
            {
                "window_start": pd.to_datetime(grid.starts_ms[windows], unit="ms", utc=True),
                "window_end": pd.to_datetime(grid.ends_ms[windows], unit="ms", utc=True),
            }
        ),
    )
    conn.register("touched_casts", pd.DataFrame({"hash": pd.Series(hashes, dtype=str)}))
    conn.register("stopwords", pd.DataFrame({"word": stopwords()}))
    run_script(conn, sql.load("aggregates"))


def apply(conn: duckdb.DuckDBPyConnection) -> None:
    """Write what ``compute`` left in ``conn``'s temp tables (aggregates_apply.sql): the
    stage's state and the aggregates of its windows and casts, each replaced whole. Safe to
    run again after a transaction that lost its commit: it drops none of the temp tables."""
    run_script(conn, sql.load("aggregates_apply"))


# cast_engagement is per cast, not per window: a cast's row belongs to the window of its
# timestamp (NULL when the cast itself is not in the stream: such rows are in no window).
WINDOW_COLUMN = {"cast_engagement": '"timestamp"'}

# What each aggregate's materialization previews for its window (at most 10 rows): $w is the
# window's start; hourly_activity shows the windows up to this one, so a trend is visible.
PREVIEWS = {
    "hourly_activity": """
        SELECT window_start, casts, top_level_casts, replies, reactions, likes, recasts,
               distinct_authors
        FROM hourly_activity WHERE window_start <= $w ORDER BY window_start DESC""",
    "top_authors": """
        SELECT rank, username, fid, casts, replies FROM top_authors
        WHERE window_start = $w ORDER BY rank""",
    "most_replied_to": """
        SELECT rank, username, fid, replies_received FROM most_replied_to
        WHERE window_start = $w ORDER BY rank""",
    "top_terms": """
        SELECT kind, term, uses, authors FROM top_terms
        WHERE window_start = $w ORDER BY uses DESC, authors DESC, term""",
    "cast_engagement": """
        SELECT c.username, left(c.text, 80) AS text, e.replies_seen, e.recasts_seen,
               e.likes_seen, e.hash
        FROM cast_engagement e JOIN casts c USING (hash)
        WHERE e."timestamp" >= $w AND e."timestamp" < $w_end
        ORDER BY e.replies_seen + e.recasts_seen + e.likes_seen DESC, e.hash""",
}
# The window's figures that the UI plots across partitions (hourly_activity's Plots tab).
ACTIVITY_FIGURES = ("casts", "replies", "reactions", "distinct_authors")


def window_preview(
    table: str, grid: WindowGrid, conn: duckdb.DuckDBPyConnection, partition: str
) -> dict[str, Any]:
    """``preview``: the table's rows for ``partition`` (PREVIEWS), and for hourly_activity the
    window's own figures (ACTIVITY_FIGURES) as numbers, which Dagster plots by partition."""
    start, end = grid.start_of(partition), grid.end_of(partition)
    statement = PREVIEWS[table]
    params = {"w": start, "w_end": end} if "$w_end" in statement else {"w": start}
    entries: dict[str, Any] = {"preview": table_metadata.preview(conn, statement, params)}
    if table == "hourly_activity":
        row = conn.execute(
            f"SELECT {', '.join(ACTIVITY_FIGURES)} FROM hourly_activity WHERE window_start = $w",
            {"w": start},
        ).fetchone()
        for name, value in zip(ACTIVITY_FIGURES, row or (0,) * len(ACTIVITY_FIGURES), strict=True):
            entries[name] = dg.MetadataValue.int(int(value))
    return entries


@dataclass
class Prepared:
    """A refresh computed and not yet written (``prepare``): the stage's offsets it read, the
    ones it moves to, and what it refreshes."""

    done: stream.Offsets
    folded: stream.Offsets
    windows: list[int]
    casts: int
    messages: int


def prepare(
    conn: duckdb.DuckDBPyConnection,
    grid: WindowGrid,
    topic: str,
    upto: stream.Offsets | None = None,
) -> Prepared | None:
    """Compute (``compute``, into ``conn``'s temp tables) the refresh for every clean row the
    aggregates stage has not seen, no further than ``upto`` (Kafka partition → offset, the
    offsets checks.check_batch reached; None: as far as the clean stages stand). Only reads;
    None when there is nothing new."""
    done = stream.load_offsets(conn, stream.AGGREGATES, topic)
    upstream = stream.upstream_offsets(conn, stream.CLEAN_STAGES, topic)
    if upto is not None:
        upstream = {
            p: stream.PartitionOffset(min(o.next_offset, upto[p].next_offset))
            for p, o in upstream.items()
            if p in upto
        }
    # One batch for all that is new: the cost is in the windows refreshed, not the rows.
    ranges = stream.next_batch(done, upstream, max_messages=2**62)
    if not ranges:
        return None

    def batch(alias: str) -> str:
        return stream.position_filter(ranges, f"{alias}.source_position")

    windows, hashes = touched(conn, grid, batch)
    compute(conn, grid, windows, hashes, batch)
    return Prepared(
        done,
        stream.advanced(done, ranges),
        windows,
        len(hashes),
        sum(b - a for a, b in ranges.values()),
    )


def commit_prepared(conn: duckdb.DuckDBPyConnection, topic: str, prepared: Prepared) -> bool:
    """Write a prepared refresh with the stage's new offsets (inside the caller's transaction,
    on the connection that prepared it); the checked stage's offsets are raised to them. False,
    writing nothing, when the stage's offsets moved since ``prepare`` read them (another run
    refreshed meanwhile: the next refresh starts from where it left them)."""
    if stream.load_offsets(conn, stream.AGGREGATES, topic) != prepared.done:
        return False
    apply(conn)
    stream.save_offsets(conn, stream.AGGREGATES, topic, prepared.folded)
    # What the aggregates fold in has passed the blocking checks (stream_job checks first; in
    # an ingest run Dagster runs this asset only after they pass), so the checked offsets are
    # at least as far: the embeddings follow those.
    stream.raise_offsets(conn, stream.CHECKED, topic, prepared.folded)
    return True


def catch_up(
    conn: duckdb.DuckDBPyConnection,
    grid: WindowGrid,
    topic: str,
    upto: stream.Offsets | None = None,
) -> tuple[list[int], int, int]:
    """Fold in every clean row the aggregates stage has not seen (inside the caller's
    transaction, with the stage's new offsets; the checked stage's raised to them), no
    further than ``upto`` (see ``prepare``).
    Returns (indices of the windows refreshed, casts refreshed, messages folded in)."""
    prepared = prepare(conn, grid, topic, upto)
    if prepared is None:
        return [], 0, 0
    commit_prepared(conn, topic, prepared)
    return prepared.windows, prepared.casts, prepared.messages


def window_metadata(
    warehouse: WarehouseResource, grid: WindowGrid, partitions: set[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """{table: {partition: metadata}}: each aggregate table's entries (row count, preview)
    for each window of ``partitions``."""
    return {
        table: table_metadata.by_window(
            warehouse,
            grid,
            partitions,
            table,
            column=WINDOW_COLUMN.get(table, "window_start"),
            more=functools.partial(window_preview, table, grid),
        )
        for table in AGGREGATE_TABLES
    }


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["aggregates", name],
            deps=[casts, reactions, users],
            partitions_def=stream_partitions,
            group_name="aggregates",
            kinds={"ducklake"},
            freshness_policy=STREAM_FRESHNESS,
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
def aggregates(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource
):
    """Recompute the aggregates the clean rows folded in since the last run affect (and, in a
    rebuild run, those the window's rows affect), one transaction each (one lake snapshot).
    Source: the clean casts, reactions and users."""
    started = time.perf_counter()
    grid = window_grid()
    topic = kafka.topic

    windows, casts_refreshed, folded = warehouse.write(
        Commit.of(context), lambda conn: catch_up(conn, grid, topic)
    )
    windows_set = set(windows)
    if stream.run_mode(context) == stream.REBUILD:
        literal = f"TIMESTAMPTZ '{grid.start_of(context.partition_key).isoformat()}'"

        def rebuild(conn: duckdb.DuckDBPyConnection) -> tuple[list[int], int]:
            def window(alias: str) -> str:
                return f"{alias}.window_start = {literal}"

            windows, hashes = touched(conn, grid, window)
            windows = sorted(set(windows) | {grid.index_of(context.partition_key)})
            compute(conn, grid, windows, hashes, window)
            apply(conn)
            return windows, len(hashes)

        rebuilt, rebuilt_casts = warehouse.write(Commit.of(context), rebuild)
        windows_set |= set(rebuilt)
        casts_refreshed += rebuilt_casts
    refreshed = sorted(grid.keys[w] for w in windows_set)
    previews = window_metadata(warehouse, grid, {context.partition_key, *refreshed})
    seconds = round(time.perf_counter() - started, 3)
    report_windows(
        context,
        AGGREGATE_KEYS,
        grid,
        windows_set,
        {"messages_folded_in": dg.MetadataValue.int(folded)},
        lambda key, partition: previews[key.path[-1]][partition],
    )
    for table in AGGREGATE_TABLES:
        yield dg.MaterializeResult(
            asset_key=["aggregates", table],
            metadata={
                **previews[table][context.partition_key],
                "mode": dg.MetadataValue.text(stream.run_mode(context)),
                "messages_folded_in": dg.MetadataValue.int(folded),
                "windows_refreshed": dg.MetadataValue.json(refreshed),
                "casts_refreshed": dg.MetadataValue.int(casts_refreshed),
                "seconds": dg.MetadataValue.float(seconds),
            },
        )
