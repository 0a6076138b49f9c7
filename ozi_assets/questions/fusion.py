"""Reciprocal rank fusion: one ranking from several ranked lists of the same items.

Cormack, Clarke and Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
Rank Learning Methods" (SIGIR 2009): an item's fused score is the sum over the lists that
hold it of 1 / (k + rank), ranks counted from 1. It reads ranks only, never scores, so a
cosine similarity (-1..1) and a BM25 score (0..∞) need no common scale; k (60 in the paper,
and here) keeps one list's first place from outweighing agreement between lists.

Pure functions: hybrid search (``engine.py``) fuses the vector list and the keyword list with
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RRF_K = 60


@dataclass(frozen=True)
class Fused:
    """One item of a fused ranking: its place (``rank``, from 1), its fused score, and its
    rank in each input list (None where that list does not hold it), in the lists' order."""

    key: str
    rank: int
    score: float
    ranks: tuple[int | None, ...]


def reciprocal_rank_fusion(lists: Sequence[Sequence[str]], k: int = RRF_K) -> list[Fused]:
    """Fuse ranked lists of keys (best first) into one, best first.

    Score of a key: sum of 1 / (k + rank) over the lists holding it. Ties go to the key
    with the better best rank, then to the key itself, so the order is total and
    reproducible. A key repeated within one list counts at its first place only.
    Raises ValueError when k < 0 (a rank-1 item would then score more than 1).
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    ranks: dict[str, list[int | None]] = {}
    for i, keys in enumerate(lists):
        for rank, key in enumerate(keys, start=1):
            places = ranks.setdefault(key, [None] * len(lists))
            if places[i] is None:
                places[i] = rank
    scored = [
        (sum(1.0 / (k + r) for r in places if r is not None), key, places)
        for key, places in ranks.items()
    ]
    scored.sort(key=lambda s: (-s[0], min(r for r in s[2] if r is not None), s[1]))
    return [
        Fused(key, place, score, tuple(places))
        for place, (score, key, places) in enumerate(scored, start=1)
    ]
