"""Stream semantics on the real broker and a real lake: poison messages, a run killed with
SIGKILL in the middle of a micro-batch, and a log that lost what Ozi had read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import numpy as np
import pytest

from ozi_assets import stream
from ozi_assets.aggregates import AGGREGATE_TABLES
from ozi_assets.definitions import build_definitions, build_resources
from ozi_resources import farcaster
from ozi_resources.farcaster import Event
from ozi_resources.warehouse import Commit
from ozi_tests.conftest import REPO, SAMPLE_DIR, fingerprints, make_settings

pytestmark = pytest.mark.slow

INCREMENTAL = {"ozi/mode": "incremental"}
LABEL = "2023-03-04-06:00"
AT_03 = 1677898800000  # 2023-03-04 03:00 UTC


def cast(fid: int, text: str, ms: int, hash_byte: str, **extra) -> dict:
    message = farcaster.cast_message(
        {"hash": "0x" + hash_byte * 32, "author": {"fid": 1}, "text": text, "timestamp": ms}
    )
    message["data"]["fid"] = fid
    message["data"]["castAddBody"].update(extra)
    return message


def poison_messages() -> list[tuple[str, dict, int]]:
    """(expected reason prefix, message, Kafka timestamp): valid JSON and hash, each with one
    value the clean tables would refuse."""
    reaction = {
        "hash": "0x" + "c1" * 32,
        "data": {
            "type": farcaster.REACTION_ADD,
            "fid": 5,
            "timestamp": farcaster.to_farcaster_time(AT_03),
            "network": farcaster.NETWORK,
            "reactionBody": {
                "type": farcaster.REACTION_LIKE,
                "targetCastId": {"fid": -1, "hash": "0x" + "c2" * 32},
            },
        },
    }
    link = {
        "hash": "0x" + "c3" * 32,
        "data": {
            "type": farcaster.LINK_ADD,
            "fid": 5,
            "timestamp": farcaster.to_farcaster_time(AT_03),
            "network": farcaster.NETWORK,
            "linkBody": {"type": "follow", "targetFid": 0},
        },
    }
    ahead = cast(7, "from the future", AT_03, "a5")
    ahead["data"]["timestamp"] += 86_400
    huge_time = cast(7, "timestamp past 32 bits", AT_03, "a6")
    huge_time["data"]["timestamp"] = 2**40
    return [
        (
            "data.fid is not a positive 64-bit integer",
            cast(2**64 - 1, "max uint64", AT_03, "a1"),
            AT_03,
        ),
        ("data.fid is not a positive 64-bit integer", cast(0, "fid zero", AT_03, "a2"), AT_03),
        ("data.fid is not a positive 64-bit integer", cast(-5, "negative", AT_03, "a3"), AT_03),
        ("cast text is over", cast(7, "x" * 2000, AT_03, "a4"), AT_03),
        ("data.timestamp is 86400 s ahead", ahead, AT_03),
        ("data.timestamp is not a 32-bit count", huge_time, AT_03),
        (
            "cast add whose mentions are not a list of fids",
            cast(7, "m", AT_03, "a7", mentions=["x"]),
            AT_03,
        ),
        ("reaction whose target fid", reaction, AT_03),
        ("link whose linkBody.targetFid", link, AT_03),
        (
            "Kafka timestamp",
            cast(7, "producer clock ahead", AT_03, "a8"),
            int(time.time() * 1000) + 86_400_000,
        ),
    ]


@pytest.fixture(scope="module")
def broker_address(running_broker):
    return running_broker.address


def world(tmp_path, address: str, topic: str, batch: int = 50_000):
    import dataclasses

    settings = dataclasses.replace(
        make_settings(tmp_path, address),
        topic=topic,
        dlq_topic=f"{topic}.dlq",
        batch_messages=batch,
    )
    resources = build_resources(settings)
    resources["kafka"].ensure_topics()
    return settings, resources, build_definitions(settings)


def test_poison_messages_are_dead_lettered_and_their_window_succeeds(
    broker_address, sample_events, tmp_path
):
    settings, resources, defs = world(tmp_path, broker_address, "poison")
    poison = poison_messages()
    resources["kafka"].produce(sample_events)
    resources["kafka"].produce(
        [Event(farcaster.fid_key(7), farcaster.encode(m), ts, "x") for _, m, ts in poison]
    )
    with dg.instance_for_test() as instance:
        # `ozi backfill --partition` of the window the poison is read with
        for name in ("ingest_job", "embed_job"):
            result = defs.resolve_job_def(name).execute_in_process(
                partition_key=LABEL, instance=instance
            )
            assert result.success
            assert all(e.passed for e in result.get_asset_check_evaluations())
    with resources["warehouse"].reader() as conn:
        letters = dict(
            conn.execute("SELECT decode(message_value), reason FROM dead_letters").fetchall()
        )
        (casts,) = conn.execute("SELECT count(*) FROM casts").fetchone()
    assert casts == 888  # the sample's casts, nothing else
    for expected, message, _ in poison:
        reason = letters.get(farcaster.encode(message).decode())
        assert reason and reason.startswith(expected), (expected, reason)
    assert sum(resources["kafka"].high_watermarks(settings.dlq_topic).values()) == len(poison)


CHILD = """
import dagster as dg
import numpy as np
from ozi_assets.definitions import defs
defs.resolve_job_def("ingest_job").execute_in_process(
    partition_key="{label}", instance=dg.DagsterInstance.ephemeral(),
    tags={{"ozi/mode": "incremental"}})
"""


BATCH = 25  # messages a stage commits at a time in the crash test


def raw_done(warehouse) -> int:
    if not warehouse.exists():
        return 0
    try:
        with warehouse.reader() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(next_offset), 0) FROM stage_offsets WHERE stage = 'raw'"
            ).fetchone()
            return int(row[0]) if row else 0
    except Exception:  # the child is creating the lake right now
        return 0


def test_a_run_killed_mid_batch_and_rerun_equals_an_uninterrupted_run(
    broker_address, sample_events, tmp_path
):
    """SIGKILL lands while the raw stage is part way through the log (batches of 25
    messages, one transaction each: small, so the raw stage takes long enough for the poll
    below to see it part way). The re-run (incremental, then embeddings) leaves every table
    and the vectors identical to a run that was never interrupted."""
    killed_settings, killed, defs = world(tmp_path / "killed", broker_address, "crash", BATCH)
    killed["kafka"].produce(sample_events[-1500:])  # the last hours: casts and recasts
    total = sum(killed["kafka"].high_watermarks().values())
    env = {
        **os.environ,
        "OZI_HOME": str(killed_settings.home),
        "OZI_KAFKA_BOOTSTRAP": broker_address,
        "OZI_KAFKA_TOPIC": "crash",
        "OZI_KAFKA_DLQ_TOPIC": "crash.dlq",
        "OZI_BATCH_MESSAGES": str(BATCH),
        "OZI_SAMPLE_DIR": str(SAMPLE_DIR),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(label=LABEL)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    done = 0
    while child.poll() is None and time.monotonic() < deadline:
        done = raw_done(killed["warehouse"])
        if done >= total // 3:
            break
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert 0 < done < total, f"the kill should land mid-way: {done} of {total} offsets read"

    with dg.instance_for_test() as instance:
        for name in ("ingest_job", "embed_job"):
            result = defs.resolve_job_def(name).execute_in_process(
                partition_key=LABEL, instance=instance, tags=INCREMENTAL
            )
            assert result.success

    # The uninterrupted run reads the log in one batch: equal tables then also say that
    # folding 25 messages at a time changes nothing
    _, whole, whole_defs = world(tmp_path / "whole", broker_address, "crash")
    with dg.instance_for_test() as instance:
        for name in ("ingest_job", "embed_job"):
            result = whole_defs.resolve_job_def(name).execute_in_process(
                partition_key=LABEL, instance=instance, tags=INCREMENTAL
            )
            assert result.success
    expected = fingerprints(whole["warehouse"])
    assert expected["casts"][0] > 0 and expected["cast_vectors"][0] == expected["casts"][0]
    assert fingerprints(killed["warehouse"]) == expected

    # The aggregates' state, folded 25 messages at a time and in one batch alike (equal
    # above), equals what a rebuild of every window makes from the window's rows at once.
    folded = ("cast_terms", "reaction_state", *AGGREGATE_TABLES)
    assert all(expected[t][0] > 0 for t in ("cast_terms", "reaction_state"))
    with dg.instance_for_test() as instance:
        for key in whole_defs.resolve_job_def("ingest_job").partitions_def.get_partition_keys():
            rebuilt = whole_defs.resolve_job_def("ingest_job").execute_in_process(
                partition_key=key, instance=instance
            )
            assert rebuilt.success
    after = fingerprints(whole["warehouse"])
    assert {t: after[t] for t in folded} == {t: expected[t] for t in folded}


def test_a_lake_from_before_the_aggregate_state_is_given_it_with_the_same_aggregates(
    broker_address, sample_events, tmp_path
):
    """A lake of schema 4 had aggregates but no cast_terms or reaction_state. The next run's
    process opens it, the schema's upgrade sends the aggregates stage back to the start, and
    that run folds everything in again: the state is built and every aggregate comes out as
    in a lake that always had it (here the old aggregates are emptied too, so nothing
    passes by being left over)."""
    settings, resources, defs = world(tmp_path, broker_address, "upgrade")
    resources["kafka"].produce(sample_events[-1500:])
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("ingest_job").execute_in_process(
            partition_key=LABEL, instance=instance, tags=INCREMENTAL
        )
        assert result.success
    expected = fingerprints(resources["warehouse"])
    assert expected["top_terms"][0] > 0
    with resources["warehouse"].writer() as conn:
        for table in ("cast_terms", "reaction_state", *AGGREGATE_TABLES):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("UPDATE ozi_schema SET version = 4")
    env = {
        **os.environ,
        "OZI_HOME": str(settings.home),
        "OZI_KAFKA_BOOTSTRAP": broker_address,
        "OZI_KAFKA_TOPIC": "upgrade",
        "OZI_KAFKA_DLQ_TOPIC": "upgrade.dlq",
        "OZI_SAMPLE_DIR": str(SAMPLE_DIR),
    }
    subprocess.run([sys.executable, "-c", CHILD.format(label=LABEL)], cwd=REPO, env=env, check=True)
    assert fingerprints(resources["warehouse"]) == expected


def test_a_log_shorter_than_the_committed_offsets_fails_with_one_clear_line(
    broker_address, sample_events, tmp_path
):
    """The embedded broker keeps its log in memory: after a restart the high watermark is
    below what Ozi committed, and the same offsets name other messages. The run refuses to
    mix them and says why, instead of re-reading or skipping silently."""
    _, resources, defs = world(tmp_path, broker_address, "reset")
    resources["kafka"].produce(sample_events[:50])
    with dg.instance_for_test() as instance:
        job = defs.resolve_job_def("ingest_job")
        assert job.execute_in_process(
            partition_key=LABEL, instance=instance, tags=INCREMENTAL
        ).success

        def lose_the_log(conn):  # as if the broker had held 10,000 more messages, then lost them
            conn.execute("UPDATE stage_offsets SET next_offset = next_offset + 10000")

        resources["warehouse"].write(Commit("test", ("raw/farcaster_events",)), lose_the_log)
        result = job.execute_in_process(
            partition_key=LABEL, instance=instance, tags=INCREMENTAL, raise_on_error=False
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "below the committed offset" in message and "make clean" in message


AT_06_20 = AT_03 + 3 * 3_600_000 + 20 * 60_000


def test_a_late_message_is_kept_counted_and_its_window_refreshed(
    broker_address, sample_events, tmp_path, monkeypatch, capsys
):
    settings, resources, defs = world(tmp_path, broker_address, "late")
    kafka = resources["kafka"]
    kafka.produce(sample_events)
    job = defs.resolve_job_def("ingest_job")
    with dg.instance_for_test() as instance:
        job.execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
        with resources["warehouse"].reader() as conn:
            (late_before,) = conn.execute(
                "SELECT count(*) FILTER (is_late) FROM raw_events"
            ).fetchone()
        # One fid's partition reads 06:20, then a cast of 06:17 (out of order, within the
        # 5 minutes allowed) and one of 03:30 (its window closed at 04:05 on that partition).
        on_time = cast(7, "out of order but on time", AT_06_20 - 3 * 60_000, "d1")
        late = cast(7, "an hour and more late", AT_03 + 30 * 60_000, "d2")
        kafka.produce(
            [
                Event(farcaster.fid_key(7), farcaster.encode(m), ts, "x")
                for m, ts in [
                    (cast(7, "the newest", AT_06_20, "d0"), AT_06_20),
                    (on_time, AT_06_20 - 3 * 60_000),
                    (late, AT_03 + 30 * 60_000),
                ]
            ]
        )
        result = job.execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
        (raw,) = result.asset_materializations_for_node("raw__farcaster_events")
        assert raw.metadata["late_messages"].value == 1
        assert raw.metadata["late_by_window"].value == {"2023-03-04-03:00": 1}
        # The late cast's own window was refreshed, and the UI is told so.
        refreshed = {
            e.event_specific_data.materialization.partition
            for e in result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"
            and e.asset_key == dg.AssetKey(["aggregates", "hourly_activity"])
        }
        assert "2023-03-04-03:00" in refreshed
        with resources["warehouse"].reader() as conn:
            (late_after,) = conn.execute(
                "SELECT count(*) FILTER (is_late) FROM raw_events"
            ).fetchone()
            (in_03,) = conn.execute(
                "SELECT casts FROM hourly_activity WHERE window_start = '2023-03-04 03:00:00+00'"
            ).fetchone()
            kept = conn.execute(
                "SELECT count(*) FROM casts WHERE hash IN ($a, $b)",
                {"a": late["hash"], "b": on_time["hash"]},
            ).fetchone()
            flags = conn.execute(
                "SELECT kafka_partition, kafka_offset, is_late FROM raw_events ORDER BY ALL"
            ).fetchall()
        assert late_after - late_before == 1
        assert in_03 == 220  # the sample's 219 and the late one
        assert kept == (2,)
        # A rebuild of the window reads the same messages and calls the same ones late.
        assert job.execute_in_process(partition_key=LABEL, instance=instance).success
        with resources["warehouse"].reader() as conn:
            assert (
                conn.execute(
                    "SELECT kafka_partition, kafka_offset, is_late FROM raw_events ORDER BY ALL"
                ).fetchall()
                == flags
            )
    # `ozi status` says where the watermark stands (06:20 read, 5 minutes allowed).
    from ozi_assets import cli

    for name, value in {
        "OZI_HOME": str(settings.home),
        "OZI_KAFKA_BOOTSTRAP": broker_address,
        "OZI_KAFKA_TOPIC": "late",
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "watermark: 2023-03-04T06:15:00+00:00" in out
    assert f"late messages: {late_after}" in out


def test_messages_add_up_per_window_and_a_lost_row_fails_the_blocking_check(
    broker_address, sample_events, tmp_path
):
    _settings, resources, defs = world(tmp_path, broker_address, "counts")
    kafka = resources["kafka"]
    kafka.produce(sample_events)
    kafka.produce(sample_events[:50])  # copies: duplicates, not rows
    # Poison read at 06:20, so the window the check looks at reads it.
    kafka.produce(
        [
            Event(farcaster.fid_key(7), farcaster.encode(m), max(ts, AT_06_20), "x")
            for _, m, ts in poison_messages()
        ]
    )
    job = defs.resolve_job_def("ingest_job")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
        (check,) = [
            e for e in result.get_asset_check_evaluations() if e.check_name == "messages_add_up"
        ]
        counts = {k: v.value for k, v in check.metadata.items() if isinstance(v.value, int)}
        assert check.passed, check.description
        assert counts["duplicates"] >= 1 and counts["dead_letters"] == len(poison_messages())
        assert counts["messages_read"] == (
            counts["clean_rows"] + counts["duplicates"] + counts["dead_letters"]
        )
        assert check.metadata["scope"].value == "messages this run folded in"
        # A bug that loses a row (here: deleted behind the pipeline's back, after its batch
        # was reconciled) fails the check when the window's close run reconciles the whole
        # window, and the window's aggregates are not computed.
        with resources["warehouse"].writer() as conn:
            for table in ("cast_adds", "reaction_messages", "user_data"):
                found = conn.execute(
                    f"SELECT max(source_position) FROM {table} "
                    "WHERE window_start = '2023-03-04 06:00:00+00'"
                ).fetchone()[0]
                if found is not None:
                    conn.execute(f"DELETE FROM {table} WHERE source_position = $p", {"p": found})
                    break
            assert found is not None
        result = job.execute_in_process(
            partition_key=LABEL,
            instance=instance,
            tags={stream.MODE_TAG: stream.CLOSE},
            raise_on_error=False,
        )
        (check,) = [
            e for e in result.get_asset_check_evaluations() if e.check_name == "messages_add_up"
        ]
        assert check.metadata["scope"].value == "the whole window"
        assert not check.passed
        assert check.metadata["lost"].value == 1
        assert len(check.metadata["lost_sample"].records) == 1
        assert not result.asset_materializations_for_node("aggregates")


def test_the_high_watermarks_count_every_message_produced_in_batches(
    broker_address, sample_events, tmp_path
):
    """The high watermarks come from a fetch of at most BOUNDS_FETCH_BYTES a partition, far
    less than one of the producer's record batches: still exact, every produced message
    counted, as the broker's own list of the log's end (a lower bound) is not."""
    from ozi_resources.kafka import BOUNDS_FETCH_BYTES

    _settings, resources, _defs = world(tmp_path, broker_address, "ends")
    kafka = resources["kafka"]
    events = sample_events[:2000]
    assert sum(len(e.value) for e in events) > 100 * BOUNDS_FETCH_BYTES
    kafka.produce(events)
    starts, high = kafka.log_bounds()
    assert sum(high.values()) == len(events)
    assert starts == dict.fromkeys(high, 0)
    assert kafka.high_watermarks() == high


def test_a_stalled_confluent_read_goes_on_with_kafka_python(
    broker_address, sample_events, tmp_path, monkeypatch
):
    from ozi_resources import kafka as kafka_module

    _settings, resources, _defs = world(tmp_path, broker_address, "stall")
    kafka = resources["kafka"]
    kafka.produce(sample_events[:300])
    ranges = {p: (0, hw) for p, hw in kafka.high_watermarks().items()}
    expected = kafka.model_copy(update={"consumer_client": "kafka-python"}).read(ranges)
    # A stall at once: nothing comes from librdkafka, so every message comes from the
    # fallback, in batches that still cover each partition's offsets in order.
    monkeypatch.setattr(kafka_module, "CONFLUENT_STALL_S", 0.0)
    batches = list(kafka.batches(ranges, max_messages=100))
    assert len(batches) >= 3
    for p, log in expected.items():
        got = np.concatenate([b[p].offsets for b in batches])
        assert got.tolist() == log.offsets.tolist()
        assert [v for b in batches for v in b[p].values] == log.values
    # Offsets past the high watermark are missing for good: one clear error, not a hang.
    monkeypatch.setattr(kafka_module, "IDLE_TIMEOUT_S", 1.0)
    beyond = {p: (hw, hw + 1) for p, (_, hw) in ranges.items()}
    with pytest.raises(kafka_module.KafkaReadError, match="no message for"):
        list(kafka.batches(beyond))


def test_an_embedding_run_from_the_sensor_follows_casts_folded_in_while_it_runs(
    broker_address, sample_events, tmp_path, monkeypatch
):
    """The embedding sensor's runs linger (LINGER_TAG): casts that an ingest run folds in
    while the embedding run is under way get their vectors in that same run, batch by batch,
    instead of waiting for the next run's process start, and the UI gets the window's
    materialization while the run lasts (REPORT_EVERY_S), not only at its end. Without the
    tag a run embeds what was there when it started, and ends."""
    import threading

    from ozi_assets import embeddings
    from ozi_assets.embeddings import LINGER_TAG

    monkeypatch.setattr(embeddings, "REPORT_EVERY_S", 1.0)

    _, resources, defs = world(tmp_path, broker_address, "linger")
    # the casts in two halves, the first with every other message
    cast_positions = [i for i, e in enumerate(sample_events) if "CAST_ADD" in e.message_type]
    half = cast_positions[len(cast_positions) // 2]
    resources["kafka"].produce(sample_events[:half])
    ingest, embed = defs.resolve_job_def("ingest_job"), defs.resolve_job_def("embed_job")
    assert ingest.execute_in_process(
        partition_key=LABEL, instance=dg.DagsterInstance.ephemeral(), tags=INCREMENTAL
    ).success

    def vectors_and_casts() -> tuple[int, int]:
        with resources["warehouse"].reader() as conn:
            return conn.execute(
                "SELECT (SELECT count(*) FROM cast_vectors), "
                "(SELECT count(*) FROM casts WHERE trim(text) <> '')"
            ).fetchone()

    first_vectors, first_casts = 0, vectors_and_casts()[1]
    outcome: dict = {}
    lingering = threading.Thread(
        target=lambda: outcome.update(
            result=embed.execute_in_process(
                partition_key=LABEL,
                instance=dg.DagsterInstance.ephemeral(),
                tags={**INCREMENTAL, LINGER_TAG: "20"},
            )
        )
    )
    lingering.start()
    deadline = time.monotonic() + 300
    while first_vectors < first_casts and time.monotonic() < deadline:
        time.sleep(0.2)
        first_vectors = vectors_and_casts()[0]
    assert first_vectors == first_casts > 0 and lingering.is_alive()  # caught up, lingering

    resources["kafka"].produce(sample_events[half:])
    assert ingest.execute_in_process(
        partition_key=LABEL, instance=dg.DagsterInstance.ephemeral(), tags=INCREMENTAL
    ).success
    lingering.join(timeout=300)
    assert not lingering.is_alive()
    result = outcome["result"]
    assert result.success
    materializations = result.asset_materializations_for_node("embeddings__casts")
    progress = [m for m in materializations if m.description and "so far" in m.description]
    (materialization,) = [m for m in materializations if m.partition == LABEL and m not in progress]
    vectors, casts = vectors_and_casts()
    assert casts > first_casts and vectors == casts  # the later casts too, in the same run
    assert materialization.metadata["embedded"].value == casts
    # reported while lingering after the first half, before the run ended: each window the
    # first half's casts fell in, with the casts embedded so far
    with resources["warehouse"].reader() as conn:
        first_windows = {
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT strftime(window_start AT TIME ZONE 'UTC', '%Y-%m-%d-%H:%M') "
                "FROM cast_vectors ORDER BY 1"
            ).fetchall()
        }
    early = [m for m in progress if m.metadata["embedded"].value == first_casts]
    assert early and {m.partition for m in early} < first_windows
    assert materialization.metadata["lingered_s"].value > 0

    # A run with no tag ends at once when nothing is waiting.
    started = time.monotonic()
    quiet = embed.execute_in_process(
        partition_key=LABEL, instance=dg.DagsterInstance.ephemeral(), tags=INCREMENTAL
    )
    assert quiet.success and time.monotonic() - started < 20


def test_the_lane_embeds_the_next_batch_while_the_last_one_commits(
    broker_address, sample_events, tmp_path, monkeypatch
):
    """An embedding run of many batches encodes the next batch while the last one commits, so
    the model does not wait for the lane's reads and commits; and pipelined so, the lake ends
    with exactly one vector per cast with text, each of its cast's current text, none for
    the casts a CAST_REMOVE took back (sent after every add, so they fall in later batches
    than their adds). The sample's casts only, so that every batch has casts to embed."""
    import hashlib
    import json
    import threading

    from ozi_assets import embeddings
    from ozi_resources.warehouse import WarehouseResource

    monkeypatch.setattr(embeddings, "EMBED_BATCH_MESSAGES", 250)
    _, resources, defs = world(tmp_path, broker_address, "pipelined")
    cast_events = [e for e in sample_events if "CAST_ADD" in e.message_type]
    adds = [(json.loads(e.value), e.timestamp_ms) for e in cast_events]
    removed = adds[:: max(len(adds) // 5, 1)][:5]
    removes = [
        Event(
            farcaster.fid_key(m["data"]["fid"]),
            farcaster.encode(
                {
                    "hash": farcaster.derived_hash("remove", m["hash"]),
                    "data": farcaster.message_data(
                        farcaster.CAST_REMOVE,
                        m["data"]["fid"],
                        sent_ms + 1000,
                        "castRemoveBody",
                        {"targetHash": m["hash"]},
                    ),
                }
            ),
            sent_ms + 1000,
            farcaster.CAST_REMOVE,
        )
        for m, sent_ms in removed
    ]
    resources["kafka"].produce([*cast_events, *removes])
    assert (
        defs.resolve_job_def("ingest_job")
        .execute_in_process(
            partition_key=LABEL, instance=dg.DagsterInstance.ephemeral(), tags=INCREMENTAL
        )
        .success
    )

    events: list[str] = []  # "encoding", "encoded", "committed", in time order
    lock = threading.Lock()
    encode, write = embeddings.encode, WarehouseResource.write

    keeping_up: list[bool] = []  # each batch's priority, in order

    def timed_encode(*args, **kwargs):
        with lock:
            events.append("encoding")
            keeping_up.append(args[4])
        try:
            return encode(*args, **kwargs)
        finally:
            with lock:
                events.append("encoded")

    def timed_write(self, commit, work):
        result = write(self, commit, work)
        with lock:
            events.append("committed")
        return result

    monkeypatch.setattr(embeddings, "encode", timed_encode)
    monkeypatch.setattr(WarehouseResource, "write", timed_write)
    result = defs.resolve_job_def("embed_job").execute_in_process(
        partition_key=LABEL, instance=dg.DagsterInstance.ephemeral(), tags=INCREMENTAL
    )
    assert result.success
    assert events.count("encoding") > 3
    # commits while an encoding was under way: the next batch's, as the last one committed
    under_way, overlapped = False, 0
    for event in events:
        under_way = {"encoding": True, "encoded": False}.get(event, under_way)
        overlapped += event == "committed" and under_way
    assert overlapped >= 2, " ".join(events)
    # a run launched by hand reads to where the checks stood at its start: its batches are a
    # backlog's, embedded at the lower priority, until the one leaving at most two batches
    # behind it (the run's last two batches and its last), which keep up
    assert keeping_up == [False] * (len(keeping_up) - 3) + [True] * 3, keeping_up

    with resources["warehouse"].reader() as conn:
        vectors = dict(conn.execute("SELECT hash, content_sha256 FROM cast_vectors").fetchall())
        texts = dict(conn.execute("SELECT hash, text FROM casts WHERE trim(text) <> ''").fetchall())
        (rows,) = conn.execute("SELECT count(*) FROM cast_vectors").fetchone()
    assert rows == len(vectors) == len(texts) > 0
    assert vectors == {h: hashlib.sha256(t.encode()).hexdigest() for h, t in texts.items()}
    assert not {m["hash"] for m, _ in removed} & set(vectors)


def test_embeddings_wait_for_the_ingest_runs_blocking_checks(
    broker_address, sample_events, tmp_path
):
    """Casts an ingest run has folded into clean/casts but not yet checked (its blocking
    checks and the aggregates step after them have not run) get no vector yet; once a run's
    checks have passed over them, they do."""
    _, resources, defs = world(tmp_path, broker_address, "checked")
    resources["kafka"].produce(sample_events)
    instance = dg.DagsterInstance.ephemeral()
    ingest, embed = defs.resolve_job_def("ingest_job"), defs.resolve_job_def("embed_job")
    folded_only = ingest.execute_in_process(
        partition_key=LABEL,
        instance=instance,
        tags=INCREMENTAL,
        asset_selection=[dg.AssetKey(["raw", "farcaster_events"]), dg.AssetKey(["clean", "casts"])],
    )
    assert folded_only.success
    early = embed.execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
    with resources["warehouse"].reader() as conn:
        casts, vectors = conn.execute(
            "SELECT (SELECT count(*) FROM casts), (SELECT count(*) FROM cast_vectors)"
        ).fetchone()
    assert early.success and casts == 888 and vectors == 0
    assert ingest.execute_in_process(
        partition_key=LABEL, instance=instance, tags=INCREMENTAL
    ).success
    assert embed.execute_in_process(
        partition_key=LABEL, instance=instance, tags=INCREMENTAL
    ).success
    with resources["warehouse"].reader() as conn:
        vectors, with_text = conn.execute(
            "SELECT (SELECT count(*) FROM cast_vectors), "
            "(SELECT count(*) FROM casts WHERE trim(text) <> '')"
        ).fetchone()
    assert vectors == with_text > 0


def follow_config(linger_s: float) -> dict:
    return {"ops": {"follow_stream": {"config": {"linger_s": linger_s}}}}


def test_a_stream_run_takes_what_comes_while_it_waits_for_its_next_batch(
    broker_address, sample_events, tmp_path
):
    """A batch starts when batch_min_messages wait or batch_every_s after the last one began.
    Sends of 40 messages soon after a batch wait for the delay and come in one batch; with
    batch_min_messages 40, each send starts a batch of its own without waiting for the delay,
    even when the loop saw only its first half (a send in two halves 1.5 s apart). Every
    message is folded in either way."""
    import threading

    events = sample_events[-300:]

    def run(topic: str, pause_s: float, follow: dict, halves_s: float = 0.0) -> dict:
        _, live, defs = world(tmp_path / topic, broker_address, topic, 200)
        live["kafka"].produce(events[:100])

        def trickle() -> None:
            deadline = time.monotonic() + 120
            while raw_done(live["warehouse"]) < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            for start in range(100, 300, 40):  # five sends of 40
                if halves_s:
                    live["kafka"].produce(events[start : start + 20])
                    time.sleep(halves_s)
                    live["kafka"].produce(events[start + 20 : start + 40])
                else:
                    live["kafka"].produce(events[start : start + 40])
                time.sleep(pause_s)

        producer = threading.Thread(target=trickle)
        producer.start()
        # a generous linger: the first send waits for a reader to see the first batch, which
        # on two busy cores has taken over 5 s
        config = {"ops": {"follow_stream": {"config": {"linger_s": 10.0, **follow}}}}
        with dg.instance_for_test() as instance:
            result = defs.resolve_job_def("stream_job").execute_in_process(
                instance=instance, run_config=config
            )
        producer.join()
        assert result.success
        (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        assert raw_done(live["warehouse"]) == 300
        return {k: v.value for k, v in output.event_specific_data.metadata.items()}

    by_delay = run("follow-delay", 0.25, {"batch_every_s": 8.0, "batch_min_messages": 10_000})
    assert by_delay["messages"] == 300
    assert by_delay["batches"] == 2  # the first hundred, then the five sends together
    # Sends 3 s apart: a loop busy with a check round or a refresh on a slow machine may
    # take a send of 1.5 s after the last into the same batch, which is no defect.
    by_count = run(
        "follow-count", 3.0, {"batch_every_s": 60.0, "batch_min_messages": 40}, halves_s=1.5
    )
    assert by_count["messages"] == 300
    assert by_count["batches"] >= 4  # the sends' batches did not wait the 60 s delay


def test_a_stream_run_follows_the_stream_and_writes_what_incremental_runs_write(
    broker_address, sample_events, tmp_path, monkeypatch
):
    """One stream_job run reads the first half, then the second half produced while it runs
    (sent after its first batch; it lingers for more), in separate batches, compacting the
    lake's small files after each; its tables and offsets, and the vectors an embeddings run
    then makes, equal those of one incremental ingest_job run over the whole."""
    import threading

    from ozi_assets import follow

    monkeypatch.setattr(follow, "COMPACT_EVERY_S", 0.0)

    events = sample_events[-1500:]
    _, live, defs = world(tmp_path / "live", broker_address, "follow", 200)
    live["kafka"].produce(events[:700])

    def second_half() -> None:
        # sent once the run has committed its first batch, so it comes while the run reads
        # the first half or lingers after it; the linger is generous, since on two busy cores
        # a reader's open and a send of 800 messages took over 5 s
        deadline = time.monotonic() + 120
        while raw_done(live["warehouse"]) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        live["kafka"].produce(events[700:])

    producer = threading.Thread(target=second_half)
    producer.start()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("stream_job").execute_in_process(
            instance=instance, run_config=follow_config(15.0)
        )
        producer.join()
        assert result.success
        (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
        assert metadata["messages"] == 1500
        assert metadata["batches"] >= 2  # the second half came in a later batch
        assert metadata["stopped_because"] == "no message for 15s"
        assert "compaction" in metadata["seconds_by_phase"]
        evaluations = result.get_asset_check_evaluations()
        assert evaluations and all(e.passed for e in evaluations)
        written = {
            e.asset_key.to_user_string(): e.partition
            for e in result.get_asset_materialization_events()
            for e in [e.event_specific_data.materialization]
        }
        assert {"raw/farcaster_events", "clean/casts", "aggregates/hourly_activity"} <= set(written)
        assert (
            defs.resolve_job_def("embed_job")
            .execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
            .success
        )

    _, whole, whole_defs = world(tmp_path / "whole", broker_address, "follow", 200)
    with dg.instance_for_test() as instance:
        for name in ("ingest_job", "embed_job"):
            assert (
                whole_defs.resolve_job_def(name)
                .execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
                .success
            )
    expected = fingerprints(whole["warehouse"])
    assert expected["casts"][0] > 0 and expected["cast_vectors"][0] == expected["casts"][0]
    assert fingerprints(live["warehouse"]) == expected


def test_a_stream_run_reads_a_backlog_in_bounded_turns_and_writes_what_one_run_writes(
    broker_address, sample_events, tmp_path, monkeypatch
):
    """A backlog longer than a turn is read turn by turn (TURN_MESSAGES each), so the checks
    and the aggregates between turns fold in a bounded share of it; the tables and offsets
    equal those of one incremental ingest_job run over the whole."""
    from ozi_assets import follow

    monkeypatch.setattr(follow, "TURN_MESSAGES", 400)
    events = sample_events[-1500:]
    _, live, defs = world(tmp_path / "live", broker_address, "turns", 200)
    live["kafka"].produce(events)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("stream_job").execute_in_process(
            instance=instance, run_config=follow_config(0.0)
        )
        assert result.success
        (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
        assert metadata["messages"] == 1500
        assert metadata["batches"] == 4  # 400, 400, 400, 300
        evaluations = result.get_asset_check_evaluations()
        assert evaluations and all(e.passed for e in evaluations)

    _, whole, whole_defs = world(tmp_path / "whole", broker_address, "turns", 200)
    with dg.instance_for_test() as instance:
        assert (
            whole_defs.resolve_job_def("ingest_job")
            .execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
            .success
        )
    expected = fingerprints(whole["warehouse"])
    assert expected["casts"][0] > 0
    assert fingerprints(live["warehouse"]) == expected


def test_a_failing_blocking_check_stops_the_stream_run_before_the_aggregates(
    broker_address, sample_events, tmp_path, monkeypatch
):
    """A bug the blocking checks catch (here: a casts expectation no cast can meet, put in
    their place) fails the run with the check's evaluation on record, and the aggregates
    never fold the batch in, as a blocking asset check stops ingest_job."""
    import dataclasses

    from ozi_assets import checks
    from ozi_assets.checks import Expectation

    impossible = dataclasses.replace(
        checks.CASTS_VALID,
        expectations=[
            Expectation("ExpectColumnValuesToBeBetween", {"column": "fid", "max_value": 0})
        ],
    )
    monkeypatch.setattr(checks, "ROW_CHECKS", (impossible, *checks.ROW_CHECKS[1:]))
    _, resources, defs = world(tmp_path, broker_address, "blocked")
    resources["kafka"].produce(sample_events[-300:])
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("stream_job").execute_in_process(
            instance=instance, run_config=follow_config(0.0), raise_on_error=False
        )
        assert not result.success
        evaluations = [
            e.dagster_event.event_specific_data
            for e in instance.all_logs(result.run_id)
            if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        failed = [e for e in evaluations if not e.passed]
        assert failed and {e.check_name for e in failed} == {"casts_are_valid"}
        assert all(e.partition for e in failed)
        # The next run, with nothing new on the topic, checks the same rows again (they are
        # not in the aggregates) and fails again: the batch keeps blocking.
        again = defs.resolve_job_def("stream_job").execute_in_process(
            instance=instance, run_config=follow_config(0.0), raise_on_error=False
        )
        assert not again.success
    with resources["warehouse"].reader() as conn:
        assert conn.execute("SELECT count(*) FROM casts").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM hourly_activity").fetchone()[0] == 0
        assert stream.load_offsets(conn, stream.AGGREGATES, "blocked") == {}
        assert stream.load_offsets(conn, stream.CHECKED, "blocked") == {}


def ingest_raw_and_clean(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """An incremental ingest_job run of the raw and clean stages only: it leaves its rows
    unchecked and out of the aggregates, as a run that died before its checks would."""
    selection = [
        dg.AssetKey(["raw", "farcaster_events"]),
        *(dg.AssetKey(stage.split("/")) for stage in stream.CLEAN_STAGES),
    ]
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        partition_key=LABEL, instance=instance, tags=INCREMENTAL, asset_selection=selection
    )
    assert result.success


def test_a_stream_run_checks_and_aggregates_what_an_earlier_run_left_unchecked(
    broker_address, sample_events, tmp_path
):
    """Clean rows committed by a run that stopped before its checks (here: an incremental
    ingest_job run of raw and clean only) are checked and folded into the aggregates by the
    next stream run, though the topic has nothing new for it."""
    _, resources, defs = world(tmp_path, broker_address, "leftover")
    resources["kafka"].produce(sample_events[-300:])
    with dg.instance_for_test() as instance:
        ingest_raw_and_clean(defs, instance)
        with resources["warehouse"].reader() as conn:
            assert stream.load_offsets(conn, stream.AGGREGATES, "leftover") == {}
        result = defs.resolve_job_def("stream_job").execute_in_process(
            instance=instance, run_config=follow_config(0.0)
        )
        assert result.success
        evaluations = result.get_asset_check_evaluations()
        assert {e.check_name for e in evaluations} >= {"casts_are_valid", "messages_add_up"}
        assert all(e.passed for e in evaluations)
    with resources["warehouse"].reader() as conn:
        clean = stream.upstream_offsets(conn, stream.CLEAN_STAGES, "leftover")
        assert stream.load_offsets(conn, stream.AGGREGATES, "leftover") == clean
        assert conn.execute("SELECT count(*) FROM hourly_activity").fetchone()[0] > 0


def test_the_vectors_follow_the_checks_without_waiting_for_the_aggregates(
    broker_address, sample_events, tmp_path
):
    """Once a round of the stream loop's checks has passed over clean rows and committed the
    checked offsets, the embedding lane embeds their casts, though the aggregates have not
    folded them in yet; the next stream run folds them in, with nothing new on the topic."""
    from ozi_assets import follow
    from ozi_assets.partitions import window_grid

    _, resources, defs = world(tmp_path, broker_address, "ahead")
    warehouse = resources["warehouse"]
    resources["kafka"].produce(sample_events[-300:])
    with dg.instance_for_test() as instance:
        ingest_raw_and_clean(defs, instance)
        checked = follow._check(warehouse, "ahead", window_grid(), None)
        assert checked.reached and all(e.passed for e in checked.evaluations)
        warehouse.write(
            Commit("test", ()),
            lambda conn: stream.raise_offsets(conn, stream.CHECKED, "ahead", checked.reached),
        )
        assert follow._unfolded(warehouse, "ahead") == checked.reached
        assert (
            defs.resolve_job_def("embed_job")
            .execute_in_process(partition_key=LABEL, instance=instance, tags=INCREMENTAL)
            .success
        )
        with warehouse.reader() as conn:
            vectors, with_text = conn.execute(
                "SELECT (SELECT count(*) FROM cast_vectors), "
                "(SELECT count(*) FROM casts WHERE trim(text) <> '')"
            ).fetchone()
            assert stream.load_offsets(conn, stream.AGGREGATES, "ahead") == {}
        assert vectors == with_text > 0
        result = defs.resolve_job_def("stream_job").execute_in_process(
            instance=instance, run_config=follow_config(0.0)
        )
        assert result.success
    assert follow._unfolded(warehouse, "ahead") is None
    with warehouse.reader() as conn:
        assert stream.load_offsets(conn, stream.AGGREGATES, "ahead") == checked.reached
        assert conn.execute("SELECT count(*) FROM hourly_activity").fetchone()[0] > 0


def test_the_aggregates_fold_in_no_further_than_the_checks_reached(
    broker_address, sample_events, tmp_path
):
    """stream_job checks on a reader beside its batches, so a batch can commit between the
    checks and the refresh: the refresh folds in up to the offsets the checks reached, and the
    later batch waits for the next round of checks."""
    from ozi_assets import aggregates, checks
    from ozi_assets.partitions import window_grid

    _, resources, defs = world(tmp_path, broker_address, "reached")
    warehouse, grid = resources["warehouse"], window_grid()

    with dg.instance_for_test() as instance:
        resources["kafka"].produce(sample_events[-300:-100])
        ingest_raw_and_clean(defs, instance)
        with warehouse.reader() as conn:
            evaluations, reached, _ = checks.check_batch(conn, "reached", grid, {})
            first = stream.upstream_offsets(conn, stream.CLEAN_STAGES, "reached")
        assert evaluations and all(e.passed for e in evaluations)
        assert reached == first
        resources["kafka"].produce(sample_events[-100:])
        ingest_raw_and_clean(defs, instance)
    commit = Commit("test", ("aggregates",))
    warehouse.write(commit, lambda conn: aggregates.catch_up(conn, grid, "reached", reached))
    with warehouse.reader() as conn:
        later = stream.upstream_offsets(conn, stream.CLEAN_STAGES, "reached")
        folded = stream.load_offsets(conn, stream.AGGREGATES, "reached")
    assert (
        sum(o.next_offset for o in later.values())
        == sum(o.next_offset for o in first.values()) + 100
    )
    assert {p: o.next_offset for p, o in folded.items()} == {
        p: o.next_offset for p, o in first.items()
    }
    warehouse.write(commit, lambda conn: aggregates.catch_up(conn, grid, "reached"))
    with warehouse.reader() as conn:
        folded = stream.load_offsets(conn, stream.AGGREGATES, "reached")
    assert {p: o.next_offset for p, o in folded.items()} == {
        p: o.next_offset for p, o in later.items()
    }


def test_a_refresh_whose_write_loses_its_commit_is_written_by_the_retry(
    broker_address, sample_events, tmp_path, monkeypatch
):
    """stream_job computes a refresh in a transaction that only reads and writes it in a short
    one (follow._aggregate). A write that loses its commit to another writer is tried again
    from the same temp tables, and the aggregates equal those of one refresh in one
    transaction."""
    from ozi_assets import aggregates, follow
    from ozi_assets.partitions import window_grid
    from ozi_resources.warehouse import WarehouseResource

    grid = window_grid()
    commit = Commit("test", ("aggregates",))
    attempts: list[bool] = []
    write_on = WarehouseResource.write_on

    def first_attempt_loses(self, conn, commit, work):
        def work_then_another_commits(c):
            done = work(c)
            attempts.append(done)
            if len(attempts) == 1:
                # another writer commits while this transaction is open: its commit then
                # fails ("database is locked") and write_on tries again
                with self.writer() as other:
                    other.execute("BEGIN TRANSACTION")
                    stream.save_offsets(other, "test/other", "x", {0: stream.PartitionOffset(1)})
                    other.execute("COMMIT")
            return done

        return write_on(self, conn, commit, work_then_another_commits)

    tables = {}
    for name in ("whole", "split"):
        topic = f"lost-{name}"
        _, resources, defs = world(tmp_path / name, broker_address, topic)
        warehouse = resources["warehouse"]
        with dg.instance_for_test() as instance:
            resources["kafka"].produce(sample_events[-400:])
            ingest_raw_and_clean(defs, instance)
        if name == "whole":
            warehouse.write(commit, lambda conn, t=topic: aggregates.catch_up(conn, grid, t))
        else:
            monkeypatch.setattr(WarehouseResource, "write_on", first_attempt_loses)
            folded = follow._aggregate(warehouse, commit, grid, topic, None)
            assert folded.messages == 400 and folded.windows
        prints = fingerprints(warehouse)
        tables[name] = {t: prints[t] for t in AGGREGATE_TABLES}
    assert len(attempts) >= 2, "the first write did not lose its commit: nothing was retried"
    assert tables["split"] == tables["whole"]
    assert all(rows for rows, _ in tables["whole"].values())
