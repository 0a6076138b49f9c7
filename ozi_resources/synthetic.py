"""A seeded generator of Farcaster protocol messages shaped like the real sample, for replaying
or streaming millions of events (``ozi produce --synthetic N``, ``make bench``).

What is drawn from the March 2023 sample: cast texts, the reply ratio, and the authors with
their skew (an author is drawn as often as they cast in the sample). What is fresh: every hash
(derived from the seed and the event's position, so a run is reproducible and never collides
with the sample) and every timestamp. The mix of message types follows the network's shape:
mostly reactions, about a fifth casts, some follows and profile updates, a few removes of
casts and reactions made earlier in the same stream. Every message is keyed by its fid, so a
remove stays behind its add on one Kafka partition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ozi_resources import farcaster
from ozi_resources.farcaster import Event

# Share of each kind of message, in the order drawn.
MIX = (
    ("like", 0.52),
    ("recast", 0.13),
    ("cast", 0.20),
    ("follow", 0.08),
    ("profile", 0.04),
    ("cast_remove", 0.015),
    ("reaction_remove", 0.015),
)
RECENT = 2_000  # replies and reactions point at one of the last RECENT casts


@dataclass(frozen=True)
class SampleShape:
    """What the generator draws from the sample: texts, authors (fid, username) with their
    cast counts as weights, and the share of casts that are replies."""

    texts: list[str]
    fids: np.ndarray
    usernames: list[str]
    weights: np.ndarray
    reply_ratio: float

    @classmethod
    def of(cls, casts: list[dict]) -> SampleShape:
        texts = [c["text"] for c in casts if not c["text"].startswith(farcaster.RECAST_PREFIX)]
        counts: dict[int, int] = {}
        names: dict[int, str] = {}
        for c in casts:
            fid = c["author"]["fid"]
            counts[fid] = counts.get(fid, 0) + 1
            names[fid] = c["author"].get("username") or f"fid{fid}"
        fids = np.array(sorted(counts), np.int64)
        weights = np.array([counts[f] for f in fids], np.float64)
        replies = sum(1 for c in casts if c.get("parentHash"))
        return cls(
            texts=texts,
            fids=fids,
            usernames=[names[int(f)] for f in fids],
            weights=weights / weights.sum(),
            reply_ratio=replies / len(casts),
        )


def fresh_hash(seed: int, i: int) -> str:
    return farcaster.derived_hash("synthetic", seed, i) + "0" * 24  # 32 bytes, like a cast's


def synthetic_events(
    shape: SampleShape,
    n: int,
    start_ms: int,
    rate: float,
    seed: int = 0,
) -> Iterator[Event]:
    """``n`` events, the i-th stamped ``start_ms + i * 1000 / rate`` (event time and Kafka
    timestamp alike). Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(MIX), size=n, p=[share for _, share in MIX])
    authors = rng.choice(len(shape.fids), size=n, p=shape.weights)
    picks = rng.integers(0, 2**62, size=n)
    recent: list[tuple[str, int]] = []  # (hash, fid) of recent casts
    reactions: list[tuple[int, str, int, str]] = []  # (fid, type, target fid, target hash)
    for i in range(n):
        ms = int(start_ms + i * 1000 / rate)
        fid = int(shape.fids[authors[i]])
        kind = MIX[kinds[i]][0]
        pick = int(picks[i])
        if kind in ("like", "recast", "cast_remove", "reaction_remove") and not recent:
            kind = "cast"
        if kind == "reaction_remove" and not reactions:
            kind = "like"
        extra: dict = {}
        if kind == "cast":
            body: dict = {
                "text": shape.texts[pick % len(shape.texts)],
                "mentions": [],
                "embeds": [],
            }
            if recent and (pick >> 20) % 1000 < shape.reply_ratio * 1000:
                parent_hash, parent_fid = recent[(pick >> 30) % len(recent)]
                body["parentCastId"] = {"fid": parent_fid, "hash": parent_hash}
            data = farcaster.message_data(farcaster.CAST_ADD, fid, ms, "castAddBody", body)
            extra = {"hydrated": {"username": shape.usernames[authors[i]]}}
            recent.append((fresh_hash(seed, i), fid))
            if len(recent) > RECENT:
                recent.pop(0)
        elif kind in ("like", "recast", "reaction_remove"):
            if kind == "reaction_remove":
                fid, rtype, target_fid, target_hash = reactions.pop(pick % len(reactions))
                msg_type = farcaster.REACTION_REMOVE
            else:
                target_hash, target_fid = recent[pick % len(recent)]
                rtype = farcaster.REACTION_LIKE if kind == "like" else farcaster.REACTION_RECAST
                msg_type = farcaster.REACTION_ADD
                reactions.append((fid, rtype, target_fid, target_hash))
                if len(reactions) > RECENT:
                    reactions.pop(0)
            body = {"type": rtype, "targetCastId": {"fid": target_fid, "hash": target_hash}}
            data = farcaster.message_data(msg_type, fid, ms, "reactionBody", body)
        elif kind == "cast_remove":
            target_hash, fid = recent.pop(pick % len(recent))  # only the author removes a cast
            body = {"targetHash": target_hash}
            data = farcaster.message_data(farcaster.CAST_REMOVE, fid, ms, "castRemoveBody", body)
        elif kind == "follow":
            body = {"type": "follow", "targetFid": int(shape.fids[pick % len(shape.fids)])}
            data = farcaster.message_data(farcaster.LINK_ADD, fid, ms, "linkBody", body)
        else:  # profile
            body = {
                "type": "USER_DATA_TYPE_BIO",
                "value": shape.texts[pick % len(shape.texts)][:256],
            }
            data = farcaster.message_data(farcaster.USER_DATA_ADD, fid, ms, "userDataBody", body)
        message = {"hash": fresh_hash(seed, i), "data": data, **extra}
        yield Event(farcaster.fid_key(fid), farcaster.encode(message), ms, message["data"]["type"])
