"""embeddings stage: one vector per cast, partitioned like the clean tables.

Vectors go to the lake table ``cast_vectors`` (the system of record, one snapshot per run,
time travel included) and from there to the vector index: the embedded Qdrant engine's owner
(``ozi serve``) catches up from the lake's snapshots, a Qdrant server is reconciled for the
window right after the commit. Only new or changed casts are embedded: each vector keeps the
sha256 of the text it was computed from, so a re-run of a window embeds nothing. Vectors of
casts that left the window (removed by CAST_REMOVE, or re-windowed) are deleted, so the
vectors mirror the ``casts`` view.

The asset runs in the ingest job after clean/casts; when a blocking check of clean/casts
fails, Dagster skips it, so no vector is computed from a window known to be wrong. Dagster's
blocking only reaches within one run, so the asset also looks up the window's latest check
result itself and refuses when it failed (an embeddings-only run from the UI, say).
"""

import hashlib
import time

import dagster as dg
import duckdb
import pyarrow as pa

from ozi_assets.clean import casts
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_resources.vectors import EmbedderResource, VectorStoreResource, lake_digests
from ozi_resources.warehouse import Commit, WarehouseResource

WINDOW_CASTS = """
SELECT hash, fid, username, text, "timestamp", parent_hash, is_reply, window_start
FROM casts WHERE window_start = $w ORDER BY hash
"""


BLOCKING_CHECKS = [dg.AssetCheckKey(dg.AssetKey(["clean", "casts"]), "casts_are_valid")]


def failed_blocking_checks(instance: dg.DagsterInstance, partition: str) -> list[str]:
    """Names of clean/casts' blocking checks whose latest result for ``partition`` failed."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus,
    )

    infos = instance.event_log_storage.get_asset_check_partition_info(
        BLOCKING_CHECKS, partition_keys=[partition]
    )
    return [
        info.check_key.name
        for info in infos
        if info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED
    ]


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dg.asset(
    key=["embeddings", "casts"],
    deps=[casts],
    partitions_def=stream_partitions,
    group_name="embeddings",
    pool="lake_writer",
    kinds={"ducklake", "qdrant", "pytorch"},
)
def cast_embeddings(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    vectors: VectorStoreResource,
) -> dg.MaterializeResult:
    """Vectors of the window's casts (all-MiniLM-L6-v2 by default, 384 floats, unit length,
    cosine) in the lake table ``cast_vectors`` (hash, model, vector, content_sha256 and the
    cast's fid, username, text, timestamp, parent_hash, is_reply, window_start), and in the
    vector index (collection ``casts__<model>``) with the same fields as payload. Casts with
    empty text get no vector. Source: clean/casts."""
    failed = failed_blocking_checks(context.instance, context.partition_key)
    if failed:
        raise dg.Failure(
            description=(
                f"blocking checks of clean/casts failed for window {context.partition_key}: "
                f"{', '.join(failed)}; fix the data and re-run the window"
            )
        )
    window_start = window_grid().start_of(context.partition_key)
    window_s = int(window_start.timestamp())
    model = embedder.model_name
    started = time.perf_counter()
    with warehouse.reader() as conn:
        frame = conn.execute(WINDOW_CASTS, {"w": window_start}).df()
        stored = lake_digests(conn, model, window_s)

    texts = frame["text"].fillna("")
    wanted = frame.loc[texts.str.strip() != ""].copy()
    wanted["content_sha256"] = [content_sha256(t) for t in wanted["text"]]
    changed = [
        stored.get(h) != d for h, d in zip(wanted["hash"], wanted["content_sha256"], strict=True)
    ]
    todo = wanted.loc[changed]
    gone = sorted(set(stored) - set(wanted["hash"]))
    encoded = embedder.encode(todo["text"].tolist()) if len(todo) else None
    dimension = embedder.dimension  # from the model's config: no model load for an idle run

    def work(conn: duckdb.DuckDBPyConnection) -> int:
        stale = pa.table({"hash": pa.array([*todo["hash"], *gone], pa.string())})
        conn.register("stale_vectors", stale)
        conn.execute(
            "DELETE FROM cast_vectors WHERE model = $m "
            "AND hash IN (SELECT hash FROM stale_vectors)",
            {"m": model},
        )
        if encoded is not None:
            batch = pa.Table.from_pandas(todo, preserve_index=False).append_column(
                "vector", pa.array(list(encoded), pa.list_(pa.float32()))
            )
            conn.register("new_vectors", batch)
            conn.execute(
                "INSERT INTO cast_vectors BY NAME SELECT hash, $m AS model, vector, "
                'content_sha256, fid, username, text, "timestamp", parent_hash, is_reply, '
                "window_start FROM new_vectors",
                {"m": model},
            )
        total = conn.execute(
            "SELECT count(*) FROM cast_vectors WHERE model = $m", {"m": model}
        ).fetchone()
        return int(total[0]) if total else 0

    total = warehouse.write(Commit.of(context), work)
    embed_seconds = time.perf_counter() - started
    with warehouse.reader() as conn:
        index = vectors.after_commit(conn, model, dimension, window_s)

    return dg.MaterializeResult(
        metadata={
            "casts": dg.MetadataValue.int(len(frame)),
            "embedded": dg.MetadataValue.int(len(todo)),
            "unchanged": dg.MetadataValue.int(len(wanted) - len(todo)),
            "empty_text": dg.MetadataValue.int(len(frame) - len(wanted)),
            "deleted": dg.MetadataValue.int(len(gone)),
            "vectors_in_lake": dg.MetadataValue.int(total),
            "index": dg.MetadataValue.json(index),
            "model": dg.MetadataValue.text(model),
            "seconds": dg.MetadataValue.float(round(embed_seconds, 2)),
        }
    )
