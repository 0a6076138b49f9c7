"""The embedded Qdrant engine as Ozi configures it (``edge_config``), on synthetic vectors."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from ozi_resources.vectors import EdgeIndex, SearchFilter

DIMENSION = 384
ROUND = 8_000  # points a round: above the engine's indexing threshold (~6.5k vectors of 384)


def cast_rows(vectors: np.ndarray, first: int) -> list[dict]:
    """Point rows as the lake's cast_vectors gives them, one per vector."""
    stamp = datetime(2023, 3, 4, 3, tzinfo=UTC)
    return [
        {
            "hash": f"0x{first + i:040x}",
            "vector": vector,
            "fid": i % 300,
            "username": f"user{i % 300}",
            "timestamp": stamp,
            "parent_hash": None,
            "is_reply": False,
            "text": "",
            "window_start": stamp,
            "content_sha256": "",
        }
        for i, vector in enumerate(vectors)
    ]


def test_each_optimize_builds_a_graph_for_the_new_points_only(tmp_path):
    """qdrant-edge's optimize holds Python's GIL, so the owner of the shard (`ozi serve`)
    pauses while it runs. Each optimize must index the points added since the last one into
    a segment of their own, not merge them into the segments already indexed and rebuild
    those: with the engine's default target (one segment a core) the pause grew with the
    shard. Searches still find every round's points."""
    rng = np.random.default_rng(7)
    index = EdgeIndex(tmp_path / "shard", "m", DIMENSION)
    segments, stored = [], []
    for k in range(3):
        vectors = rng.normal(size=(ROUND, DIMENSION)).astype(np.float32)
        index.upsert(cast_rows(vectors, k * ROUND))
        assert index.unindexed() == ROUND
        index.optimize()
        assert index.unindexed() == 0
        segments.append(index.shard.info().segments_count)
        stored.append((vectors[0], f"0x{k * ROUND:040x}"))
    assert segments[0] < segments[1] < segments[2], f"segments after each round: {segments}"
    assert index.count() == 3 * ROUND
    for vector, hash_ in stored:
        (hit,) = index.search(vector.tolist(), SearchFilter(), 1, 0.0)
        assert hit.hash == hash_
    index.close()
