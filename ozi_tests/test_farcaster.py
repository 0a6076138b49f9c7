"""The sample replay into protocol messages (pure)."""

import json
from collections import Counter

from ozi_resources import farcaster


def test_sample_becomes_casts_recasts_and_profiles(sample_events):
    kinds = Counter(e.message_type for e in sample_events)
    assert kinds[farcaster.CAST_ADD] == 888
    assert kinds[farcaster.REACTION_ADD] == 112
    # users.json profiles plus cast authors missing from it, one message per field
    fids = {
        json.loads(e.value)["data"]["fid"]
        for e in sample_events
        if e.message_type == farcaster.USER_DATA_ADD
    }
    assert len(fids) == 1204


def test_replay_is_in_event_time_order_and_deterministic(sample, sample_events):
    stamps = [e.timestamp_ms for e in sample_events]
    assert stamps == sorted(stamps)
    again = farcaster.sample_events(*sample)
    assert [e.value for e in again] == [e.value for e in sample_events]


def test_reply_carries_parent_and_hashes_are_kept(sample):
    casts, _ = sample
    reply = next(c for c in casts if c.get("parentHash") and not c["text"].startswith("recast:"))
    message = farcaster.cast_message(reply)
    assert message["hash"] == reply["hash"]
    assert message["data"]["castAddBody"]["parentCastId"] == {
        "fid": reply["parentAuthor"]["fid"],
        "hash": reply["parentHash"],
    }


def test_recast_record_is_a_recast_reaction(sample):
    casts, _ = sample
    record = next(c for c in casts if c["text"].startswith(farcaster.RECAST_PREFIX))
    message = farcaster.recast_message(record, {})
    body = message["data"]["reactionBody"]
    assert body["type"] == farcaster.REACTION_RECAST
    assert body["targetCastId"]["hash"] == record["text"].rsplit("/", 1)[1]
    assert message["data"]["fid"] == record["author"]["fid"]


def test_farcaster_time_round_trip():
    ms = 1677909627000  # 2023-03-04T06:00:27Z
    seconds = farcaster.to_farcaster_time(ms)
    assert seconds == (ms - farcaster.FARCASTER_EPOCH_MS) // 1000
    assert farcaster.from_farcaster_time(seconds).isoformat() == "2023-03-04T06:00:27+00:00"


def test_live_restamp_moves_kafka_and_event_time_together(sample_events):
    now = 1_900_000_000_000
    live = list(farcaster.restamp(sample_events[:50], now))
    assert live[0].timestamp_ms == now
    for before, after in zip(sample_events[:50], live, strict=True):
        shift = after.timestamp_ms - before.timestamp_ms
        assert shift == now - sample_events[0].timestamp_ms
        assert json.loads(after.value)["hash"] == json.loads(before.value)["hash"]
        assert json.loads(after.value)["data"]["timestamp"] == farcaster.to_farcaster_time(
            after.timestamp_ms
        )
