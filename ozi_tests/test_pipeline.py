"""The whole pipeline on the real sample: embedded broker → DuckLake, through Dagster."""

from __future__ import annotations

import dagster as dg
import pytest

from ozi_assets.checks import all_checks
from ozi_assets.definitions import build_definitions, build_resources
from ozi_assets.partitions import stream_partitions
from ozi_assets.sensors import kafka_window_sensor, window_close_sensor
from ozi_tests.conftest import make_settings

pytestmark = pytest.mark.slow

# A stream_job run that ends as soon as it has caught up and the stream pauses.
FOLLOW_ONCE = {"ops": {"follow_stream": {"config": {"linger_s": 0.0}}}}

FINGERPRINT = """
SELECT (SELECT count(*) FROM casts), (SELECT count(*) FROM casts WHERE parent_hash IS NOT NULL),
       (SELECT count(*) FROM reactions WHERE reaction_type = 'recast'),
       (SELECT count(DISTINCT fid) FROM casts),
       (SELECT count(*) FROM casts WHERE "timestamp" >= TIMESTAMPTZ '2023-03-04 03:00:00+00'
                                     AND "timestamp" <  TIMESTAMPTZ '2023-03-04 04:00:00+00'),
       (SELECT count(*) FROM users),
       (SELECT sum(hash(c)) FROM casts c), (SELECT sum(hash(r)) FROM reactions r),
       (SELECT sum(hash(a)) FROM hourly_activity a), (SELECT sum(hash(t)) FROM top_terms t),
       (SELECT sum(hash(e)) FROM cast_engagement e), (SELECT sum(hash(m)) FROM most_replied_to m),
       -- the aggregates' own state, which the incremental path folds batch by batch and a
       -- rebuild makes at once: equal sums say both paths keep the same state
       (SELECT count(*) FROM cast_terms), (SELECT sum(hash(t)) FROM cast_terms t),
       (SELECT count(*) FROM reaction_state), (SELECT sum(hash(s)) FROM reaction_state s)
"""


@pytest.fixture(scope="module")
def env(running_broker, tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("ozi"), running_broker.address)
    resources = build_resources(settings)
    resources["kafka"].ensure_topics()
    return settings, resources, build_definitions(settings).resolve_job_def("ingest_job")


def backfill_all(job, instance):
    for key in stream_partitions.get_partition_keys():
        result = job.execute_in_process(partition_key=key, instance=instance)
        assert result.success
        assert all(e.passed for e in result.get_asset_check_evaluations())


def fingerprint(resources):
    with resources["warehouse"].reader() as conn:
        return conn.execute(FINGERPRINT).fetchone()


def test_pipeline_end_to_end(env, sample_events, tmp_path):
    settings, resources, job = env
    follow_job = build_definitions(settings).resolve_job_def("stream_job")
    kafka = resources["kafka"]
    kafka.produce(sample_events)
    with dg.instance_for_test() as instance:
        # The sensor sees the lag without reading a message and asks for a run that follows
        # the stream (here it ends as soon as the stream pauses).
        with dg.build_sensor_context(
            instance=instance,
            resources={"kafka": kafka, "warehouse": resources["warehouse"]},
        ) as context:
            result = kafka_window_sensor(context)
            assert isinstance(result, dg.SensorResult)
            (request,) = result.run_requests or []
            assert request.job_name in (None, "stream_job")
            assert request.tags["ozi/mode"] == "incremental"
            run = follow_job.execute_in_process(
                instance=instance, tags=request.tags, run_config=FOLLOW_ONCE
            )
            assert run.success
            evaluations = run.get_asset_check_evaluations()
            names = {spec.name for check in all_checks for spec in check.check_specs}
            assert {e.check_name for e in evaluations} == names
            assert all(e.passed for e in evaluations)
            first = fingerprint(resources)
            casts, replies, recasts, authors, hour_03, users = first[:6]
            assert (casts, replies, recasts, authors, hour_03) == (888, 696, 112, 221, 219)
            assert users == 1204
            term_rows, _, reaction_keys, _ = first[-4:]
            assert term_rows > 888 and reaction_keys > 0  # the state was folded, not left empty
            # Every window the run changed shows a materialization, not only its label.
            assert instance.get_materialized_partitions(dg.AssetKey(["clean", "casts"])) == set(
                stream_partitions.get_partition_keys()
            )
            # Caught up: the next tick skips and says so.
            again = kafka_window_sensor(context)
            assert isinstance(again, dg.SensorResult | dg.SkipReason)
            reason = again.skip_message if isinstance(again, dg.SkipReason) else again.skip_reason
            assert "lag 0" in str(reason)

            # The watermark (06:00:27 read, 5 minutes allowed) has closed the windows up to
            # 04:00: each gets one run of its checks with the great-expectations suites.
            closing = window_close_sensor(context)
            assert isinstance(closing, list)
            assert [r.partition_key for r in closing] == stream_partitions.get_partition_keys()[:6]
            close_job = build_definitions(settings).resolve_job_def("window_close_job")
            checked = close_job.execute_in_process(
                partition_key=closing[0].partition_key, instance=instance, tags=closing[0].tags
            )
            evaluations = checked.get_asset_check_evaluations()
            assert len(evaluations) == 5 and all(e.passed for e in evaluations)
            engines = {e.check_name: e.metadata["engine"].value for e in evaluations}
            assert engines.pop("messages_add_up") == "duckdb"
            assert set(engines.values()) == {"great-expectations"}
            # The window's close is on record in the UI; the lake was not written.
            (closed,) = checked.asset_materializations_for_node("stream__window_close")
            assert closed.metadata["messages_read"].value > 0
            # Nothing new closes until the watermark moves or the stream idles.
            assert isinstance(window_close_sensor(context), dg.SkipReason)

        # Rebuilding every window from its offset range gives the same tables.
        backfill_all(job, instance)
        assert fingerprint(resources) == first

        # Producing the same sample again, then re-materializing, changes nothing either.
        kafka.produce(sample_events)
        backfill_all(job, instance)
        assert fingerprint(resources) == first

        # Twenty malformed lines: twenty dead letters with reasons, no clean row changes.
        bad = [b"not json", b"\xff\xfe\x00", b"[1,2]", b"{}", b'{"hash": "0xABC"}'] * 4
        from ozi_resources.farcaster import Event

        kafka.produce([Event(b"", v, 1677902400000 + i, "raw") for i, v in enumerate(bad)])
        backfill_all(job, instance)
        assert fingerprint(resources) == first
        with resources["warehouse"].reader() as conn:
            letters = conn.execute("SELECT reason FROM dead_letters").fetchall()
        assert len(letters) == 20
        assert all(reason for (reason,) in letters)
        assert sum(kafka.high_watermarks(settings.dlq_topic).values()) == 20


def test_housekeeping_compacts_the_lake_and_keeps_every_table_and_lineage(env):
    """After the end-to-end test: flush, merge, expire everything older than now except the
    newest commit of each asset partition; tables and lineage are unchanged."""
    settings, resources, _ = env
    warehouse = resources["warehouse"]
    before = fingerprint(resources)
    with warehouse.reader() as conn:
        history = warehouse.snapshots(conn)
    newest = {}
    for record in history:
        for asset in record.assets:
            newest[(asset, record.partition)] = record.id

    job = build_definitions(settings).resolve_job_def("lake_housekeeping_job")
    config = {"ops": {"compact_lake": {"config": {"retention_hours": 1e-9}}}}
    with dg.instance_for_test() as instance:
        first = job.execute_in_process(instance=instance, run_config=config)
        again = job.execute_in_process(instance=instance, run_config=config)
    assert first.success and again.success
    figures = first.output_for_node("compact_lake")
    # The stages' small commits (a file a table a commit) are merged into fewer files.
    assert figures["files_after"] < figures["files_before"]
    assert figures["snapshots_expired"] > 0
    # A second pass has nothing left to do: nothing to flush, merge or expire.
    second = again.output_for_node("compact_lake")
    assert second["files_after"] == second["files_before"] == figures["files_after"]
    assert fingerprint(resources) == before
    with warehouse.reader() as conn:
        kept = {r.id for r in warehouse.snapshots(conn)}
    assert set(newest.values()) <= kept  # lineage still names a commit for each partition
    # Time travel still reaches a kept snapshot.
    with warehouse.reader(snapshot=min(newest.values())) as conn:
        conn.execute("SELECT count(*) FROM casts").fetchone()


def test_compaction_merges_small_files_leaves_large_ones_and_keeps_the_rows(tmp_path):
    """stream_job's compaction on a real lake: five micro-batch files merge into one, a file
    at the size limit is not rewritten, and the table reads the same."""
    from ozi_assets import housekeeping
    from ozi_resources.warehouse import Commit

    warehouse = build_resources(make_settings(tmp_path))["warehouse"]

    def append(first: int, n: int):
        warehouse.write(
            Commit("test", ("clean/casts",)),
            lambda conn: conn.execute(
                'INSERT INTO cast_adds (hash, fid, text, "timestamp", window_start, '
                "source_position) SELECT printf('0x%08x', i), i % 7, 'cast ' || i, now(), "
                "now(), i FROM range($a, $b) r(i)",
                {"a": first, "b": first + n},
            ),
        )

    def files():
        with warehouse.reader() as conn:
            return dict(
                conn.execute(
                    "SELECT data_file, data_file_size_bytes "
                    "FROM ducklake_list_files('lake', 'cast_adds')"
                ).fetchall()
            )

    def content():
        with warehouse.reader() as conn:
            return conn.execute(
                "SELECT count(*), sum(hash(hash, fid, text, source_position)) FROM cast_adds"
            ).fetchone()

    append(0, 50_000)
    (large,) = files().items()
    for k in range(5):
        append(50_000 + 100 * k, 100)
    before = content()
    assert len(files()) == 6

    with warehouse.writer() as conn:
        assert housekeeping.compact_small_files(conn, max_file_bytes=large[1]) > 0
    after = files()
    assert len(after) == 2 and after[large[0]] == large[1]  # the large file is untouched
    assert content() == before
    # stream_job's call: both files are under its limit (16 MiB), so they merge into one.
    assert large[1] < housekeeping.SMALL_FILE_BYTES
    assert housekeeping.compact_while_streaming(warehouse, "run-1") > 0
    assert len(files()) == 1 and content() == before


def test_snapshots_to_expire_keeps_the_newest_and_each_partitions_last_commit():
    from datetime import UTC, datetime, timedelta

    from ozi_assets.housekeeping import snapshots_to_expire
    from ozi_resources.warehouse import SnapshotRecord

    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def record(i: int, assets=(), partition=None):
        return SnapshotRecord(i, t0 + timedelta(minutes=i), f"r{i}", assets, partition)

    history = [
        record(1, ("clean/casts",), "w1"),
        record(2, ("clean/casts",), "w1"),
        record(3, ("clean/casts",), "w2"),
        record(4),
        record(5, ("clean/casts",), "w1"),
    ]
    assert snapshots_to_expire(history, t0 + timedelta(minutes=10)) == [1, 2, 4]
    assert snapshots_to_expire(history, t0 + timedelta(minutes=2)) == [1]
    assert snapshots_to_expire([], t0) == []
