"""The sample replay into protocol messages, and the clean scripts over it (pure)."""

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


def test_the_clean_stage_reads_the_fields_a_message_has_and_defaults_the_rest():
    """The clean scripts over DuckDB alone: a cast without embeds or mentions keys, one with
    them, a follow without a link type. No embeds is an empty list (so "casts without links"
    counts it), absent mentions are NULL, a link with no type is a follow."""
    import duckdb
    import pyarrow as pa

    from ozi_assets import sql
    from ozi_resources.warehouse import run_script

    def cast(hash_byte: str, **body) -> dict:
        message = farcaster.cast_message(
            {"hash": "0x" + hash_byte * 32, "author": {"fid": 3}, "text": "gm", "timestamp": 0}
        )
        message["data"]["castAddBody"] = {"text": "gm", **body}
        return message

    link = {
        "hash": "0x" + "d1" * 32,
        "data": {
            "type": farcaster.LINK_ADD,
            "fid": 3,
            "timestamp": 5,
            "linkBody": {"targetFid": 9},
        },
    }
    messages = [
        (farcaster.CAST_ADD, cast("a1")),
        (
            farcaster.CAST_ADD,
            cast("a2", embeds=[{"url": "https://x.org"}, {"castId": {}}], mentions=[7]),
        ),
        (farcaster.LINK_ADD, link),
    ]
    conn = duckdb.connect()
    conn.register(
        "batch",
        pa.table(
            {
                "msg": [json.dumps(m) for _, m in messages],
                "message_type": [t for t, _ in messages],
                "source_position": list(range(len(messages))),
            }
        ),
    )
    conn.execute(
        "CREATE TEMP VIEW batch_messages AS SELECT msg::JSON AS msg, message_type, "
        "source_position, TIMESTAMPTZ '2023-03-04 00:00:00+00' AS window_start FROM batch"
    )
    conn.execute(
        "CREATE MACRO farcaster_time(seconds) AS "
        "TIMESTAMPTZ '2021-01-01 00:00:00+00' + to_seconds(seconds::BIGINT)"
    )
    run_script(conn, sql.load("clean_casts"))
    run_script(conn, sql.load("clean_users"))
    rows = conn.execute(
        "SELECT right(hash, 2), embeds, mentions, thread_hash = hash "
        "FROM staged_cast_adds ORDER BY 1"
    ).fetchall()
    assert rows == [("a1", [], None, True), ("a2", ["https://x.org"], [7], True)]
    assert conn.execute("SELECT link_type, target_fid FROM staged_links").fetchall() == [
        ("follow", 9)
    ]
