"""The canonical Farcaster event: hub protocol messages as JSON, and the replay of the
March 2023 Warpcast sample into them.

Every Kafka message value is one protocol message in the hub HTTP API's JSON shape::

    {"hash": "0x…",                       # message hash, lowercase 0x-hex, kept as received
     "data": {"type": "MESSAGE_TYPE_CAST_ADD",
              "fid": 75,
              "timestamp": 67000000,       # seconds since the Farcaster epoch, 2021-01-01Z
              "network": "FARCASTER_NETWORK_MAINNET",
              "castAddBody": {"text": "…", "mentions": [fid, …],
                              "parentCastId": {"fid": 1890, "hash": "0x…"}}},
     "hydrated": {…}}                      # optional, see below

Message types follow the protocol: CAST_ADD, CAST_REMOVE, REACTION_ADD (like, recast),
REACTION_REMOVE, USER_DATA_ADD, LINK_ADD. ``hydrated`` is Ozi's one extension: fields the
source attached that the protocol message does not carry (the author's username, the thread
root, the source's engagement counters). Clean tables prefer protocol fields and fall back to
hydrated ones, so a real hub stream (no ``hydrated``) and the sample replay share one path.

The Kafka key is the message's fid (``fid_key``), as the hubs shard messages: every message of
one user, an add and the remove that cancels it included, lands on one Kafka partition, in
order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FARCASTER_EPOCH = datetime(2021, 1, 1, tzinfo=UTC)
FARCASTER_EPOCH_MS = int(FARCASTER_EPOCH.timestamp() * 1000)
NETWORK = "FARCASTER_NETWORK_MAINNET"
RECAST_PREFIX = "recast:farcaster://casts/"

CAST_ADD = "MESSAGE_TYPE_CAST_ADD"
CAST_REMOVE = "MESSAGE_TYPE_CAST_REMOVE"
REACTION_ADD = "MESSAGE_TYPE_REACTION_ADD"
REACTION_REMOVE = "MESSAGE_TYPE_REACTION_REMOVE"
USER_DATA_ADD = "MESSAGE_TYPE_USER_DATA_ADD"
LINK_ADD = "MESSAGE_TYPE_LINK_ADD"
MESSAGE_TYPES = (CAST_ADD, CAST_REMOVE, REACTION_ADD, REACTION_REMOVE, USER_DATA_ADD, LINK_ADD)

REACTION_LIKE = "REACTION_TYPE_LIKE"
REACTION_RECAST = "REACTION_TYPE_RECAST"
USER_DATA_FIELDS = {
    "USER_DATA_TYPE_USERNAME": "username",
    "USER_DATA_TYPE_DISPLAY": "display_name",
    "USER_DATA_TYPE_BIO": "bio",
    "USER_DATA_TYPE_PFP": "pfp_url",
}


@dataclass(frozen=True, slots=True)
class Event:
    """One Kafka message to produce: key and value are the exact bytes sent.

    ``timestamp_ms`` is the Kafka message timestamp (Unix milliseconds, UTC): the event time
    for a replay, so hourly windows match the data's own hours.
    """

    key: bytes
    value: bytes
    timestamp_ms: int
    message_type: str


def fid_key(fid: int) -> bytes:
    """The Kafka key of a message from ``fid``: its decimal digits."""
    return str(fid).encode()


def to_farcaster_time(unix_ms: int) -> int:
    """Unix milliseconds → whole seconds since the Farcaster epoch (the hub's timestamp)."""
    return (unix_ms - FARCASTER_EPOCH_MS) // 1000


def from_farcaster_time(seconds: int) -> datetime:
    """Seconds since the Farcaster epoch → an aware UTC datetime."""
    return datetime.fromtimestamp(FARCASTER_EPOCH.timestamp() + seconds, tz=UTC)


def encode(message: dict[str, Any]) -> bytes:
    """Serialize a message deterministically (sorted keys, no spaces): the same message always
    gives the same bytes, so a replay produced twice is byte-for-byte the same."""
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def derived_hash(*parts: object) -> str:
    """A 20-byte lowercase 0x-hex hash for messages the source did not hash (user data).

    The protocol hashes with BLAKE3 over the protobuf bytes; the sample has no protobuf, so
    this is BLAKE2b-160 over the message's identifying fields: stable across replays, which is
    what deduplication needs.
    """
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=20)
    return "0x" + digest.hexdigest()


def message_data(msg_type: str, fid: int, unix_ms: int, body_name: str, body: dict) -> dict:
    """The ``data`` object of a protocol message: type, fid, timestamp (from Unix ms), network
    and its body under ``body_name``."""
    return {
        "type": msg_type,
        "fid": fid,
        "timestamp": to_farcaster_time(unix_ms),
        "network": NETWORK,
        body_name: body,
    }


def cast_message(record: dict[str, Any]) -> dict[str, Any]:
    """A Warpcast v2 cast record → a CAST_ADD message (replies carry ``parentCastId``).

    Raises KeyError when the record lacks hash, author.fid, text or timestamp.
    """
    author = record["author"]
    body: dict[str, Any] = {
        "text": record["text"],
        "mentions": [m["fid"] for m in record.get("mentions") or []],
        "embeds": [
            {"url": og["url"]}
            for attachment in [record.get("attachments") or {}]
            for og in attachment.get("openGraph") or []
            if og.get("url")
        ],
    }
    if record.get("parentHash"):
        body["parentCastId"] = {
            "fid": (record.get("parentAuthor") or {}).get("fid"),
            "hash": record["parentHash"],
        }
    return {
        "hash": record["hash"],
        "data": message_data(CAST_ADD, author["fid"], record["timestamp"], "castAddBody", body),
        "hydrated": {
            "username": author.get("username"),
            "displayName": author.get("displayName"),
            "threadHash": record.get("threadHash"),
            "counts": {
                "replies": (record.get("replies") or {}).get("count"),
                "reactions": (record.get("reactions") or {}).get("count"),
                "recasts": (record.get("recasts") or {}).get("count"),
                "watches": (record.get("watches") or {}).get("count"),
            },
        },
    }


def recast_message(record: dict[str, Any], fid_by_hash: dict[str, int]) -> dict[str, Any]:
    """A ``recast:farcaster://casts/<hash>`` record → a REACTION_ADD of type recast.

    The record's author is the recaster; the target is the hash in the text. The target's fid
    is looked up among the sample's casts (None when the target is not in the sample).
    """
    target = record["text"][len(RECAST_PREFIX) :]
    author = record["author"]
    body = {
        "type": REACTION_RECAST,
        "targetCastId": {"fid": fid_by_hash.get(target), "hash": target},
    }
    return {
        "hash": record["hash"],
        "data": message_data(
            REACTION_ADD, author["fid"], record["timestamp"], "reactionBody", body
        ),
        "hydrated": {"username": author.get("username")},
    }


def profile_messages(profile: dict[str, Any], unix_ms: int) -> list[dict[str, Any]]:
    """A Warpcast profile → one USER_DATA_ADD per field, as the protocol sends them.

    Follower counts are not user data in the protocol (they come from LINK_ADD follows); the
    source's snapshot rides along in ``hydrated`` on each message.
    """
    values = {
        "USER_DATA_TYPE_USERNAME": profile.get("username"),
        "USER_DATA_TYPE_DISPLAY": profile.get("displayName"),
        "USER_DATA_TYPE_BIO": ((profile.get("profile") or {}).get("bio") or {}).get("text"),
        "USER_DATA_TYPE_PFP": (profile.get("pfp") or {}).get("url"),
    }
    hydrated = {
        "followerCount": profile.get("followerCount"),
        "followingCount": profile.get("followingCount"),
    }
    fid = profile["fid"]
    return [
        {
            "hash": derived_hash(fid, field, value),
            "data": message_data(
                USER_DATA_ADD, fid, unix_ms, "userDataBody", {"type": field, "value": value}
            ),
            "hydrated": hydrated,
        }
        for field, value in values.items()
        if value is not None
    ]


def load_sample(sample_dir: Path) -> tuple[list[dict], list[dict]]:
    """Read ``casts.json`` and ``users.json`` of the Warpcast sample: (cast records, profiles).

    Raises FileNotFoundError when either file is missing.
    """
    casts = json.loads((sample_dir / "casts.json").read_text())["casts"]
    users = json.loads((sample_dir / "users.json").read_text())["users"]
    return casts, users


def sample_events(casts: list[dict], users: list[dict]) -> list[Event]:
    """Turn the sample into Kafka events in event-time order.

    - cast records → CAST_ADD (112 ``recast:`` records → REACTION_ADD recasts);
    - profiles of users.json, and of cast authors missing from it (Warpcast hydrated them on
      each cast), → USER_DATA_ADD, stamped with the earliest cast time: the sample holds a
      snapshot of profiles, so they are replayed before the casts that name them.

    Ordering by time matters: a window maps to an offset range only when timestamps grow with
    offsets (the sample file lists newest first).
    """
    fid_by_hash = {c["hash"]: c["author"]["fid"] for c in casts}
    start_ms = min(c["timestamp"] for c in casts)
    events: list[Event] = []
    profiles = {u["fid"]: u for u in users}
    for record in casts:
        profiles.setdefault(record["author"]["fid"], record["author"])
    for fid in sorted(profiles):
        for message in profile_messages(profiles[fid], start_ms):
            events.append(Event(fid_key(fid), encode(message), start_ms, USER_DATA_ADD))
    for record in casts:
        if record["text"].startswith(RECAST_PREFIX):
            message, msg_type = recast_message(record, fid_by_hash), REACTION_ADD
        else:
            message, msg_type = cast_message(record), CAST_ADD
        events.append(
            Event(fid_key(record["author"]["fid"]), encode(message), record["timestamp"], msg_type)
        )
    # Stable sort: profiles (stamped first) keep their fid order; ties among casts keep file order.
    events.sort(key=lambda e: e.timestamp_ms)
    return events


def restamp(events: Iterable[Event], now_ms: int) -> Iterator[Event]:
    """Shift a replay so its first event happens at ``now_ms`` (live mode): both the Kafka
    timestamp and the message's own timestamp move by the same amount, so windows and event
    times stay consistent. Message hashes are kept: a live replay of the same sample is
    deduplicated against an earlier one."""
    events = list(events)
    if not events:
        return
    shift = now_ms - events[0].timestamp_ms
    for event in events:
        message = json.loads(event.value)
        new_ms = event.timestamp_ms + shift
        message["data"]["timestamp"] = to_farcaster_time(new_ms)
        yield Event(event.key, encode(message), new_ms, event.message_type)
