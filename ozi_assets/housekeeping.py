"""Lake housekeeping as Dagster work: flush inlined rows, merge small files, expire old
snapshots.

Micro-batches commit often and small, a Parquet file a table a commit (or rows inlined in
the catalog when the warehouse's ``inlining_row_limit`` is set). ``stream_job`` compacts the
small files every minute while it follows the stream (``compact_small_files``), so a batch's
reads do not grow with the number of batches before it. The housekeeping job (scheduled
hourly, or `ozi housekeeping`) also flushes inlined rows to Parquet and expires snapshots
older than the retention, keeping the newest commit of every asset partition (the lineage
answers name it) and the newest snapshot. Files no snapshot needs any more are then deleted.
Its figures (files and bytes before and after, snapshots expired) are the op's output
metadata.
"""

import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
from pydantic import Field

from ozi_resources.warehouse import LAKE, Commit, SnapshotRecord, WarehouseResource


class HousekeepingConfig(dg.Config):
    retention_hours: float | None = Field(
        default=None,
        description="Snapshots older than this are expired (time travel reaches back this "
        "far); the newest commit of each asset partition is always kept. Empty: the "
        "warehouse's snapshot_retention_hours (OZI_SNAPSHOT_RETENTION_HOURS).",
    )


def file_figures(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Data files, their bytes and delete files across the lake's tables."""
    row = conn.execute(
        "SELECT coalesce(sum(file_count), 0), coalesce(sum(file_size_bytes), 0), "
        f"coalesce(sum(delete_file_count), 0) FROM ducklake_table_info('{LAKE}')"
    ).fetchone()
    files, size, deletes = row if row else (0, 0, 0)
    return {"data_files": int(files), "data_bytes": int(size), "delete_files": int(deletes)}


# Files at or above this size are left out of the merges stream_job runs every minute: merging
# rewrites every file it takes, so a large file in the merge would make each compaction cost
# the table's size instead of the last minute's batches.
SMALL_FILE_BYTES = 16 * 1024 * 1024


def compact_small_files(conn: duckdb.DuckDBPyConnection, max_file_bytes: int | None = None) -> int:
    """Rewrite the lake's files whose rows were mostly deleted (windows and aggregates are
    rebuilt by delete-then-insert), then merge small neighbours; each call commits on its own
    (the caller sets the commit message). ``max_file_bytes``: leave files this large or larger
    out of the merge (None: DuckLake's target file size). Returns the number of merge and
    rewrite results (0: nothing to do)."""
    rewritten = conn.execute(f"CALL ducklake_rewrite_data_files('{LAKE}')").fetchall()
    if max_file_bytes is None:
        merged = conn.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')").fetchall()
    else:
        merged = conn.execute(
            f"CALL ducklake_merge_adjacent_files('{LAKE}', max_file_size => $b)",
            {"b": int(max_file_bytes)},
        ).fetchall()
    return len(rewritten) + len(merged)


def compact_while_streaming(warehouse: WarehouseResource, run_id: str) -> int:
    """``compact_small_files`` for a run that holds the lake's writer slot (stream_job),
    leaving large files alone, committed with a message naming ``run_id``; retried when the
    commit loses to another writer (an embeddings run). Returns what compact_small_files
    returns; raises duckdb.Error when it still fails."""

    def attempt() -> int:
        with warehouse.writer() as conn:
            set_maintenance_message(conn, "compaction", run_id)
            return compact_small_files(conn, SMALL_FILE_BYTES)

    return warehouse.retrying()(attempt)


def set_maintenance_message(conn: duckdb.DuckDBPyConnection, message: str, run_id: str) -> None:
    """The commit message of the maintenance calls that follow on ``conn`` (each commits on its
    own): ``message`` and the run that made them."""
    conn.execute(
        f"CALL {LAKE}.set_commit_message('ozi', $m, extra_info => $x)",
        {"m": message, "x": Commit(run_id, ()).extra_info()},
    )


def snapshots_to_expire(history: list[SnapshotRecord], older_than: datetime) -> list[int]:
    """Snapshot ids to expire: older than ``older_than``, except the newest snapshot and the
    newest commit of every (asset, partition), which lineage names. Pure."""
    if not history:
        return []
    keep = {history[-1].id}
    newest: dict[tuple[str, str | None], int] = {}
    for record in history:
        for asset in record.assets:
            newest[(asset, record.partition)] = record.id
    keep |= set(newest.values())
    return [r.id for r in history if r.time < older_than and r.id not in keep]


@dg.op(
    pool="lake_writer",
    description="Flush inlined rows, merge adjacent files, expire snapshots past the "
    "retention and delete the files they alone needed.",
)
def compact_lake(
    context: dg.OpExecutionContext, config: HousekeepingConfig, warehouse: WarehouseResource
) -> dg.Output[dict]:
    started = time.perf_counter()
    with warehouse.writer() as conn:
        before = file_figures(conn)
        history = warehouse.snapshots(conn)
        set_maintenance_message(conn, "housekeeping", context.run_id)
        flushed = conn.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')").fetchall()
        compacted = compact_small_files(conn)
        retention = config.retention_hours or warehouse.snapshot_retention_hours
        cutoff = datetime.now(UTC) - timedelta(hours=retention)
        expire = snapshots_to_expire(history, cutoff)
        if expire:
            conn.execute(f"CALL ducklake_expire_snapshots('{LAKE}', versions => $v)", {"v": expire})
        cleaned = conn.execute(
            f"CALL ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)"
        ).fetchall()
        after = file_figures(conn)
        remaining = len(warehouse.snapshots(conn))
    figures = {
        "files_before": before["data_files"],
        "files_after": after["data_files"],
        "bytes_before": before["data_bytes"],
        "bytes_after": after["data_bytes"],
        "delete_files_before": before["delete_files"],
        "delete_files_after": after["delete_files"],
        "inlined_tables_flushed": len(flushed),
        "rewrite_and_merge_results": compacted,
        "snapshots_expired": len(expire),
        "snapshots_kept": remaining,
        "old_files_deleted": len(cleaned),
        "retention_hours": float(retention),
        "seconds": round(time.perf_counter() - started, 3),
    }
    context.log.info(f"lake housekeeping: {figures}")
    return dg.Output(
        figures,
        metadata={
            k: dg.MetadataValue.float(float(v)) if isinstance(v, float) else dg.MetadataValue.int(v)
            for k, v in figures.items()
        },
    )


@dg.job(description="Lake housekeeping: flush inlined rows, merge files, expire old snapshots.")
def lake_housekeeping_job() -> None:
    compact_lake()


lake_housekeeping_schedule = dg.ScheduleDefinition(
    job=lake_housekeeping_job,
    cron_schedule="17 * * * *",  # hourly, off the hour the windows close on
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly lake housekeeping.",
)
