"""Offset → window assignment (pure)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ozi_resources.windows import WindowGrid, assign_windows, closed_windows

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


M = 60_000  # one minute in ms


def test_a_message_within_the_allowed_lateness_is_not_late(grid):
    # 11:00:30 was read, then 10:58 and 10:50: with 5 minutes allowed, window 10:00 closes
    # when the partition reads 11:05, so both are out of order but on time.
    a = assign_windows(
        grid, np.array([T0 + H + M // 2, T0 + H - 2 * M, T0 + H - 10 * M]), None, 5 * M
    )
    assert a.late.tolist() == [False, False, False]
    assert a.event_window.tolist() == [1, 0, 0]


def test_a_message_for_a_window_the_watermark_passed_is_late(grid):
    # 11:06 passed window 0's end by more than 5 minutes: 10:59 arrives late, 11:02 does not.
    a = assign_windows(grid, np.array([T0 + H + 6 * M, T0 + H - M, T0 + H + 2 * M]), None, 5 * M)
    assert a.late.tolist() == [False, True, False]


def test_lateness_follows_the_running_maximum_across_batches(grid):
    first = assign_windows(grid, np.array([T0 + 2 * H + 10 * M]), None, 5 * M)
    second = assign_windows(grid, np.array([T0 + H + 30 * M]), first.running_max_ms, 5 * M)
    assert second.late.tolist() == [True]
    # Without lateness allowed, every message older than the running maximum's window is late.
    assert assign_windows(grid, np.array([T0 + 2 * H, T0 + H]), None).late.tolist() == [False, True]


@pytest.mark.parametrize(
    ("watermark", "closed"), [(T0 - 1, 0), (T0 + H - 1, 0), (T0 + H, 1), (T0 + 3 * H + 5, 3)]
)
def test_windows_close_when_the_watermark_reaches_their_end(grid, watermark, closed):
    assert closed_windows(grid, watermark) == closed
