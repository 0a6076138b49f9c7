"""Lake housekeeping as Dagster work: flush inlined rows, merge small files, expire old
snapshots.

Micro-batches commit often and small: DuckLake keeps commits of up to
``inlining_row_limit`` rows inlined in the catalog instead of writing a Parquet file each.
The housekeeping job (scheduled hourly, or `ozi housekeeping`) flushes those rows to Parquet,
merges adjacent small files, and expires snapshots older than the retention, keeping the
newest commit of every asset partition (the lineage answers name it) and the newest snapshot.
Files no snapshot needs any more are then deleted. Its figures (files and bytes before and
after, snapshots expired) are the op's output metadata.
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
        # Each maintenance call commits on its own; the commit message says which run did it.
        conn.execute(
            f"CALL {LAKE}.set_commit_message('ozi', 'housekeeping', extra_info => $x)",
            {"x": Commit(context.run_id, ()).extra_info()},
        )
        flushed = conn.execute(f"CALL ducklake_flush_inlined_data('{LAKE}')").fetchall()
        # Files whose rows were mostly deleted (windows are rebuilt by delete-then-insert)
        # are rewritten without them, then small neighbours are merged.
        rewritten = conn.execute(f"CALL ducklake_rewrite_data_files('{LAKE}')").fetchall()
        merged = conn.execute(f"CALL ducklake_merge_adjacent_files('{LAKE}')").fetchall()
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
        "files_rewritten_for_deletes": len(rewritten),
        "merge_results": len(merged),
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
