"""embeddings stage: one vector per cast in Qdrant, partitioned like the clean tables.

Only new or changed casts are embedded: each point's payload keeps the sha256 of the text it
was computed from, so a re-run of a window finds every point current and embeds nothing. The
point store is the cache, so cache and vectors cannot disagree. Points of casts that left the
window (removed by CAST_REMOVE, or re-windowed) are deleted, so the collection mirrors the
``casts`` view.

The asset runs in the ingest job after clean/casts; when a blocking check of clean/casts
fails, Dagster skips it, so no vector is computed from a window known to be wrong. Dagster's
blocking only reaches within one run, so the asset also looks up the window's latest check
result itself and refuses when it failed (an embeddings-only run from the UI, say).
"""

import hashlib
import time
from datetime import UTC

import dagster as dg

from ozi_assets.clean import casts
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_resources.vectors import (
    EmbedderResource,
    VectorStoreResource,
    collection_name,
    ensure_collection,
    point_id,
)
from ozi_resources.warehouse import WarehouseResource

UPSERT_BATCH = 256

WINDOW_CASTS = """
SELECT hash, fid, username, text, "timestamp", parent_hash, is_reply
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
    kinds={"qdrant", "pytorch"},
)
def cast_embeddings(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    vectors: VectorStoreResource,
) -> dg.MaterializeResult:
    """Vectors of the window's casts (all-MiniLM-L6-v2 by default, 384 floats, cosine) in the
    Qdrant collection ``casts__<model>``. Payload: hash, fid, username, timestamp (ISO, UTC),
    timestamp_s (epoch seconds), parent_hash, is_reply, text, window_start_s, content_sha256.
    Casts with empty text get no vector. Source: clean/casts."""
    from qdrant_client import models

    failed = failed_blocking_checks(context.instance, context.partition_key)
    if failed:
        raise dg.Failure(
            description=(
                f"blocking checks of clean/casts failed for window {context.partition_key}: "
                f"{', '.join(failed)}; fix the data and re-run the window"
            )
        )
    window_start = window_grid().start_of(context.partition_key)
    with warehouse.reader() as conn:
        frame = conn.execute(WINDOW_CASTS, {"w": window_start}).df()

    model = embedder.model_name
    collection = collection_name(model)
    window_s = int(window_start.timestamp())
    started = time.perf_counter()
    dimension = embedder.dimension  # from the model's config: no model load here
    # Qdrant local mode locks its folder while a client is open: hold it for the reads and
    # the writes, not for the encoding in between, so questions wait as little as possible.
    with vectors.client() as client:
        created = ensure_collection(client, collection, dimension)
        in_window = client.scroll(
            collection,
            scroll_filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key="window_start_s", match=models.MatchValue(value=window_s)
                    )
                ]
            ),
            limit=1_000_000,
            with_payload=["hash", "content_sha256"],
        )[0]
    stored = {p.payload["hash"]: p.payload.get("content_sha256") for p in in_window if p.payload}

    texts = frame["text"].fillna("")
    wanted = frame.loc[texts.str.strip() != ""]
    digests = [content_sha256(t) for t in wanted["text"]]
    changed = [stored.get(h) != d for h, d in zip(wanted["hash"], digests, strict=True)]
    todo = wanted.loc[changed]
    vectors_out = embedder.encode(todo["text"].tolist()) if len(todo) else []
    points = [
        models.PointStruct(
            id=point_id(row["hash"], model),
            vector=vector.tolist(),
            payload={
                "hash": row["hash"],
                "fid": int(row["fid"]),
                "username": row["username"],
                "timestamp": row["timestamp"].astimezone(UTC).isoformat(),
                "timestamp_s": int(row["timestamp"].timestamp()),
                "parent_hash": row["parent_hash"],
                "is_reply": bool(row["is_reply"]),
                "text": row["text"],
                "window_start_s": window_s,
                "content_sha256": content_sha256(row["text"]),
                "model": model,
            },
        )
        for row, vector in zip(todo.to_dict("records"), vectors_out, strict=True)
    ]
    gone = sorted(set(stored) - set(wanted["hash"]))

    with vectors.client() as client:
        for i in range(0, len(points), UPSERT_BATCH):
            client.upsert(collection, points[i : i + UPSERT_BATCH], wait=True)
        if gone:
            client.delete(
                collection,
                points_selector=models.PointIdsList(points=[point_id(h, model) for h in gone]),
                wait=True,
            )
        total = client.count(collection, exact=True).count
    seconds = time.perf_counter() - started

    return dg.MaterializeResult(
        metadata={
            "casts": dg.MetadataValue.int(len(frame)),
            "embedded": dg.MetadataValue.int(len(points)),
            "unchanged": dg.MetadataValue.int(len(wanted) - len(points)),
            "empty_text": dg.MetadataValue.int(len(frame) - len(wanted)),
            "deleted": dg.MetadataValue.int(len(gone)),
            "collection": dg.MetadataValue.text(collection),
            "collection_created": dg.MetadataValue.bool(created),
            "points_in_collection": dg.MetadataValue.int(total),
            "model": dg.MetadataValue.text(model),
            "seconds": dg.MetadataValue.float(round(seconds, 2)),
        }
    )
