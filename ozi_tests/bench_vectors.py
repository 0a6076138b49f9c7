"""Vector search in the embedded Qdrant engine at 100k and 1M points (part of `make bench`).

For each size: build a shard with Ozi's configuration (``edge_config``: cosine, HNSW m=16,
ef_construct=128, payload index on fid, up to 16 segments) in one optimize, or as a stream
builds it (an optimize each 10k points, each pause timed), close it, then measure what a
restarted owner meets: the time to open it, search latency p50/p95 over 200 queries with and
without a fid filter (through ``EdgeIndex.search``, the code path `ozi serve` runs), and recall@10
against exact search over the same shard.

Vectors are synthetic. "mixture": each point is a random convex mix of three real cast
vectors of the sample (all-MiniLM-L6-v2, Dirichlet weights) plus small gaussian noise,
renormalized: points spread over the region real casts occupy, with the low intrinsic
dimension text embeddings have. "uniform": uniform random unit vectors, the worst case for
any graph index (no structure; every distance alike), reported at 100k to show it. Authors
(fid) are drawn from a Zipf distribution over 20k fids, as a few accounts write most casts.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DIMENSION = 384
QUERIES = 200
K = 10


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def synthetic_vectors(n: int, base: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors: mixes of three ``base`` rows plus noise when given, else uniform."""
    vectors = np.empty((n, DIMENSION), np.float32)
    for start in range(0, n, 100_000):  # in blocks: the 3-way gather is 3× the output size
        m = min(100_000, n - start)
        if base is not None:
            picks = rng.integers(0, len(base), (m, 3))
            weights = rng.dirichlet([1.0, 1.0, 1.0], m).astype(np.float32)
            block = (base[picks] * weights[:, :, None]).sum(axis=1)
            block += rng.normal(0, 0.01, size=block.shape).astype(np.float32)
        else:
            block = rng.normal(size=(m, DIMENSION)).astype(np.float32)
        vectors[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return vectors


def build_shard(
    folder: Path, vectors: np.ndarray, fids: np.ndarray, optimize_every: int | None = None
) -> dict[str, Any]:
    """Upsert the points in batches, then build the HNSW graph; returns the seconds each.

    ``optimize_every``: build as `ozi serve` does under a stream instead, an optimize each
    time that many points are unindexed; adds each optimize's pause (the engine holds the
    GIL while it runs, so the owner answers nothing meanwhile): max and total seconds."""
    from qdrant_edge import EdgeShard, PayloadSchemaType, Point, UpdateOperation

    from ozi_resources.vectors import INDEXED_FIELDS, edge_config

    shard = EdgeShard.create(str(folder), edge_config(vectors.shape[1]))
    for name in INDEXED_FIELDS:
        shard.update(UpdateOperation.create_field_index(name, PayloadSchemaType.Integer))
    started = time.perf_counter()
    pauses: list[float] = []
    for start in range(0, len(vectors), 5000):
        points = [
            Point(
                i,
                vectors[i].tolist(),
                {
                    "hash": f"0x{i:064x}",
                    "fid": int(fids[i]),
                    "username": None,
                    "timestamp": "2023-03-04T00:00:00+00:00",
                    "timestamp_s": 1677888000 + i,
                    "text": "",
                    "window_start_s": 1677888000,
                },
            )
            for i in range(start, min(start + 5000, len(vectors)))
        ]
        shard.update(UpdateOperation.upsert_points(points))
        if optimize_every and (start + 5000) % optimize_every == 0:
            t = time.perf_counter()
            shard.optimize()
            pauses.append(time.perf_counter() - t)
    upserted = time.perf_counter() - started - sum(pauses)
    started = time.perf_counter()
    shard.optimize()
    optimized = time.perf_counter() - started + sum(pauses)
    segments = shard.info().segments_count
    shard.flush()
    shard.close()
    built: dict[str, Any] = {"upsert_s": round(upserted, 1), "hnsw_build_s": round(optimized, 1)}
    built["segments"] = segments
    if optimize_every:
        built["optimize_every_points"] = optimize_every
        built["optimize_pauses"] = len(pauses)
        built["optimize_pause_s_max"] = round(max(pauses), 2)
    return built


def measure(folder: Path, queries: np.ndarray, popular_fid: int) -> dict[str, Any]:
    from qdrant_edge import (
        EdgeShard,
        QuantizationSearchParams,
        Query,
        QueryRequest,
        SearchParams,
    )

    from ozi_resources.vectors import EdgeIndex, SearchFilter

    started = time.perf_counter()
    index = EdgeIndex.__new__(EdgeIndex)  # the owner's index object; only the load is timed
    index.folder, index.model = folder, "bench"
    index.shard = EdgeShard.load(str(folder))
    open_s = time.perf_counter() - started

    plain, filtered, recalls = [], [], []
    for vector in queries:
        v = vector.tolist()
        t = time.perf_counter()
        hits = index.search(v, SearchFilter(), K, -1.0)
        plain.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        index.search(v, SearchFilter(fid=popular_fid), K, -1.0)
        filtered.append((time.perf_counter() - t) * 1000)
        exact = index.shard.query(
            QueryRequest(
                limit=K,
                query=Query.Nearest(v),
                with_payload=["hash"],
                # exact over the full vectors: ignore the int8 copies
                params=SearchParams(exact=True, quantization=QuantizationSearchParams(ignore=True)),
            )
        )
        truth = {p.payload["hash"] for p in exact if p.payload}
        recalls.append(len(truth & {h.hash for h in hits}) / K)
    points = index.count()
    index.close()
    return {
        "points": points,
        "open_s": round(open_s, 3),
        "search_ms_p50": round(percentile(plain, 50), 2),
        "search_ms_p95": round(percentile(plain, 95), 2),
        "search_fid_filter_ms_p50": round(percentile(filtered, 50), 2),
        "search_fid_filter_ms_p95": round(percentile(filtered, 95), 2),
        "recall_at_10": round(statistics.mean(recalls), 4),
    }


def bench_size(
    n: int, base: np.ndarray | None, seed: int = 7, optimize_every: int | None = None
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    vectors = synthetic_vectors(n, base, rng)
    fids = np.minimum(rng.zipf(1.3, n), 20_000).astype(np.int64)
    popular_fid = int(np.bincount(fids).argsort()[-5])  # a busy author, not the busiest
    queries = synthetic_vectors(QUERIES, base, rng)
    folder = Path(tempfile.mkdtemp(prefix=f"ozi-bench-shard-{n}-"))
    try:
        built = build_shard(folder / "shard", vectors, fids, optimize_every)
        del vectors
        figures = measure(folder / "shard", queries, popular_fid)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "vectors": "mixtures of real cast vectors" if base is not None else "uniform random",
        **built,
        **figures,
    }
