"""The sensors' run planning and the stage-offset arithmetic (pure)."""

from datetime import UTC, datetime, timedelta

import duckdb

from ozi_assets.sensors import (
    OBSERVE_EVERY_S,
    CloseCursor,
    SensorCursor,
    label_window,
    plan_run,
    windows_to_close,
)
from ozi_assets.stream import (
    PartitionOffset,
    advanced,
    lag,
    left_after,
    next_batch,
    offset_branches,
    offset_filter,
    position_filter,
)
from ozi_resources.windows import WindowGrid

START = datetime(2023, 3, 4, tzinfo=UTC)
T0 = int(START.timestamp() * 1000)
H = 3_600_000
GRID = WindowGrid.from_windows(
    [(f"w{i}", START + timedelta(hours=i), START + timedelta(hours=i + 1)) for i in range(3)]
)


def test_no_lag_is_a_skip_that_says_lag_zero():
    plan = plan_run(SensorCursor(), {"partition 0": 0}, now=100.0, queued=False)
    assert not plan.run and "lag 0" in plan.reason


def test_few_messages_wait_for_count_or_delay():
    plan = plan_run(SensorCursor(), {"partition 0": 2, "partition 1": 0}, 100.0, queued=False)
    assert not plan.run
    assert "lag 2" in plan.reason and "partition 0 2" in plan.reason
    later = plan_run(plan.cursor, {"partition 0": 2}, now=103.0, queued=False)
    assert later.run
    assert later.cursor.pending_since is None  # the next wait starts afresh


def test_many_messages_run_at_once():
    assert plan_run(SensorCursor(), {"partition 0": 500}, now=1.0, queued=False).run


def test_a_queued_run_is_not_requested_twice():
    plan = plan_run(SensorCursor(), {"partition 0": 5000}, now=1.0, queued=True)
    assert not plan.run and "queued" in plan.reason


def test_lag_is_observed_when_it_changes_but_not_every_tick():
    first = plan_run(SensorCursor(), {"p": 10}, now=100.0, queued=True)
    assert first.observe
    soon = plan_run(first.cursor, {"p": 20}, now=101.0, queued=True)
    assert not soon.observe
    later = plan_run(soon.cursor, {"p": 20}, now=100.0 + OBSERVE_EVERY_S, queued=True)
    assert later.observe
    caught_up = plan_run(later.cursor, {"p": 0}, now=later.cursor.observed_at + 1, queued=False)
    assert caught_up.observe  # reaching zero is always reported


def test_cursor_round_trips_and_survives_an_old_format():
    plan = plan_run(SensorCursor(), {"p": 3}, now=5.0, queued=False)
    assert SensorCursor.parse(plan.cursor.dump()) == plan.cursor
    assert SensorCursor.parse('{"offsets": {"0": 5}}') == SensorCursor()


def test_runs_are_labelled_with_the_newest_window_seen_or_the_clock():
    assert label_window(GRID, [T0 + 10, T0 + H + 5, None], now=0) == "w1"
    assert label_window(GRID, [], now=(T0 + 2 * H + 1) / 1000) == "w2"
    assert label_window(GRID, [None], now=(T0 + 99 * H) / 1000) == "w2"  # clamped


def test_next_batch_is_bounded_and_fair_and_advances_to_the_upstream():
    done = {0: PartitionOffset(10), 1: PartitionOffset(0)}
    upstream = {0: PartitionOffset(12), 1: PartitionOffset(1000), 2: PartitionOffset(50)}
    ranges = next_batch(done, upstream, max_messages=100)
    assert ranges[0] == (10, 12)  # the small one finishes, its share passes on
    assert sum(b - a for a, b in ranges.values()) == 100
    assert all(a >= done.get(p, PartitionOffset()).next_offset for p, (a, _) in ranges.items())
    moved = advanced(done, ranges)
    assert moved[0].next_offset == 12 and moved[2].next_offset == ranges[2][1]
    assert next_batch(upstream, upstream, max_messages=100) == {}
    assert lag(done, upstream) == {0: 2, 1: 1000, 2: 50}


def test_next_batch_covers_everything_in_order():
    done: dict[int, PartitionOffset] = {}
    upstream = {0: PartitionOffset(1234), 1: PartitionOffset(7)}
    covered = {0: 0, 1: 0}
    while ranges := next_batch(done, upstream, max_messages=100):
        for p, (first, nxt) in ranges.items():
            assert first == covered[p]  # contiguous, never skipping or repeating
            covered[p] = nxt
        done = advanced(done, ranges)
    assert covered == {0: 1234, 1: 7}


def test_a_batch_leaves_what_the_stage_before_passed_beyond_it():
    """The embedding lane's priority follows this: the messages a batch leaves before the
    stage before it, over every Kafka partition (a batch leaving at most two batches keeps
    up)."""
    done: dict[int, PartitionOffset] = {1: PartitionOffset(5)}
    upstream = {0: PartitionOffset(250), 1: PartitionOffset(10)}
    left = []
    while ranges := next_batch(done, upstream, max_messages=100):
        left.append(left_after(done, ranges, upstream))
        done = advanced(done, ranges)
    assert left == [155, 55, 0]
    whole = next_batch({}, upstream, max_messages=10_000)
    assert left_after({}, whole, upstream) == 0
    assert left_after({}, whole, {**upstream, 2: PartitionOffset(7)}) == 7


def test_filters_name_exactly_the_ranges():
    assert position_filter({}) == "FALSE"
    text = position_filter({1: (5, 9)})
    assert str((1 << 40) + 5) in text and str((1 << 40) + 9) in text
    assert offset_branches({0: (3, 3), 2: (0, 4)}) == [
        "kafka_partition = 2 AND kafka_offset >= 0 AND kafka_offset < 4"
    ]


def test_the_offset_filter_selects_exactly_the_ranges_messages():
    # evaluated by DuckDB over every (partition, offset) of a small log, so the covering
    # range in front of the OR (for DuckLake's file pruning) cannot drop or add a message
    ranges = {0: (40, 55), 1: (3, 9), 2: (70, 70), 3: (0, 1)}
    want = {(p, o) for p, (first, nxt) in ranges.items() for o in range(first, nxt)}
    conn = duckdb.connect()
    got = conn.execute(
        "SELECT kafka_partition, kafka_offset FROM range(4) p(kafka_partition), "
        f"range(100) o(kafka_offset) WHERE {offset_filter(ranges)}"
    ).fetchall()
    assert set(got) == want and len(got) == len(want)
    assert offset_filter({}) == offset_filter({1: (5, 5)}) == "FALSE"


def close_grid() -> WindowGrid:
    start = datetime(2026, 11, 21, tzinfo=UTC)
    return WindowGrid.from_windows(
        [
            (f"2026-11-21-{h:02d}:00", start + timedelta(hours=h), start + timedelta(hours=h + 1))
            for h in range(6)
        ]
    )


def at(hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 11, 21, hour, minute, tzinfo=UTC).timestamp() * 1000)


def test_windows_close_once_the_watermark_passes_their_end_and_only_once():
    grid = close_grid()
    data = list(grid.keys)
    assert windows_to_close(grid, data, None, None) == []
    assert windows_to_close(grid, data, at(0, 59), None) == []
    assert windows_to_close(grid, data, at(2, 1), None) == ["2026-11-21-00:00", "2026-11-21-01:00"]
    assert windows_to_close(grid, data, at(2, 1), "2026-11-21-01:00") == []
    assert windows_to_close(grid, data, at(4), "2026-11-21-01:00") == [
        "2026-11-21-02:00",
        "2026-11-21-03:00",
    ]


def test_windows_without_messages_are_not_checked():
    grid = close_grid()
    assert windows_to_close(grid, ["2026-11-21-01:00"], at(5), None) == ["2026-11-21-01:00"]


def test_close_cursor_round_trips_and_survives_an_old_format():
    cursor = CloseCursor("2026-11-21-01:00", 42, 1.5)
    assert CloseCursor.parse(cursor.dump()) == cursor
    assert CloseCursor.parse('{"unknown": 1}') == CloseCursor()
    assert CloseCursor.parse(None) == CloseCursor()


def test_a_stream_run_is_requested_only_when_none_is_queued_or_under_way():
    import dagster as dg
    from dagster._core.test_utils import create_run_for_test

    from ozi_assets.sensors import _follower_under_way

    with dg.instance_for_test() as instance:
        assert not _follower_under_way(instance)
        create_run_for_test(instance, job_name="ingest_job", status=dg.DagsterRunStatus.STARTED)
        create_run_for_test(instance, job_name="embed_job", status=dg.DagsterRunStatus.STARTED)
        assert not _follower_under_way(instance)  # other jobs do not follow the stream
        create_run_for_test(instance, job_name="stream_job", status=dg.DagsterRunStatus.SUCCESS)
        assert not _follower_under_way(instance)  # one that ended reads nothing more
        create_run_for_test(instance, job_name="stream_job", status=dg.DagsterRunStatus.STARTED)
        assert _follower_under_way(instance)
    for status in (dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING):
        with dg.instance_for_test() as instance:
            create_run_for_test(instance, job_name="stream_job", status=status)
            assert _follower_under_way(instance)
