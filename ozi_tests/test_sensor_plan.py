"""The sensor's run planning (pure)."""

from datetime import UTC, datetime, timedelta

import numpy as np

from ozi_assets.sensors import SensorCursor, plan_runs
from ozi_resources.windows import WindowGrid

START = datetime(2023, 3, 4, tzinfo=UTC)
T0 = int(START.timestamp() * 1000)
H = 3_600_000
GRID = WindowGrid.from_windows(
    [(f"w{i}", START + timedelta(hours=i), START + timedelta(hours=i + 1)) for i in range(3)]
)


def arrived(offsets, stamps):
    return {0: (np.array(offsets, np.int64), np.array(stamps, np.int64))}


def test_nothing_new_is_a_skip_with_lag_zero():
    plan = plan_runs(SensorCursor(), {}, GRID, now=100.0)
    assert plan.windows == [] and "lag 0" in plan.reason


def test_few_messages_wait_for_count_or_delay():
    plan = plan_runs(SensorCursor(), arrived([0, 1], [T0, T0 + 1]), GRID, now=100.0)
    assert plan.windows == []
    assert "2 new messages wait" in plan.reason
    later = plan_runs(plan.cursor, {}, GRID, now=110.0)
    assert later.windows == ["w0"]
    assert later.cursor.pending == {} and later.cursor.offsets == {"0": 2}


def test_many_messages_run_at_once_for_each_window():
    stamps = [T0] * 150 + [T0 + H] * 150
    plan = plan_runs(SensorCursor(), arrived(range(300), stamps), GRID, now=1.0)
    assert plan.windows == ["w0", "w1"]


def test_late_messages_refresh_their_own_windows_aggregates():
    stamps = [T0 + 2 * H] + [T0 + 5] * 299
    plan = plan_runs(SensorCursor(), arrived(range(300), stamps), GRID, now=1.0)
    assert plan.windows == ["w2"]
    assert plan.late_windows == ["w0"]


def test_cursor_survives_a_round_trip():
    plan = plan_runs(SensorCursor(), arrived([0], [T0]), GRID, now=1.0)
    assert SensorCursor.parse(plan.cursor.dump()) == plan.cursor
