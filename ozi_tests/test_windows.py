"""Offset → window assignment (pure)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ozi_resources.windows import WindowGrid, assign_windows

H = 3_600_000
T0 = int(datetime(2023, 3, 4, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def grid() -> WindowGrid:
    start = datetime(2023, 3, 4, tzinfo=UTC)
    return WindowGrid.from_windows(
        [(f"w{i}", start + timedelta(hours=i), start + timedelta(hours=i + 1)) for i in range(4)]
    )


def test_in_order_messages_fall_in_their_own_hour(grid):
    a = assign_windows(grid, np.array([T0, T0 + H, T0 + 2 * H + 5]), None)
    assert a.log_window.tolist() == [0, 1, 2]
    assert a.event_window.tolist() == [0, 1, 2]
    assert a.running_max_ms == T0 + 2 * H + 5


def test_late_message_is_read_with_its_offsets_window(grid):
    a = assign_windows(grid, np.array([T0 + 2 * H, T0 + 10]), None)
    assert a.log_window.tolist() == [2, 2]
    assert a.event_window.tolist() == [2, 0]


def test_running_max_carries_across_batches(grid):
    a = assign_windows(grid, np.array([T0 + 5]), T0 + 3 * H)
    assert a.log_window.tolist() == [3]


@pytest.mark.parametrize(
    ("stamp", "window"), [(T0 - 10 * H, 0), (T0 + 100 * H, 3), (T0 + 4 * H - 1, 3)]
)
def test_out_of_range_timestamps_are_clamped(grid, stamp, window):
    assert assign_windows(grid, np.array([stamp]), None).log_window.tolist() == [window]


def test_empty_batch_keeps_running_max(grid):
    a = assign_windows(grid, np.array([], dtype=np.int64), 42)
    assert a.running_max_ms == 42 and a.log_window.size == 0
