"""Time windows over the Kafka log: which window each offset belongs to.

A window is one Dagster partition (hourly by default). Each Kafka partition's offsets are cut
into contiguous ranges, one per window, by the running maximum of the message timestamps:
offset ``o`` belongs to the window that holds ``max(timestamp[0..o])``. This is what Kafka's
own ``offsets_for_times`` answers on a conforming broker (the first offset whose timestamp is
at or past a time), computed by Ozi because the embedded broker's ``offsets_for_times`` does
not answer it (it returns offset 0 with a made-up timestamp). Consequences:

- an offset's window never changes once assigned, so re-materializing a window reads exactly
  the same messages;
- a message older than its offset's window is read with the window of its offset; its own
  window is reported so that window's aggregates can be refreshed;
- a message is *late* when its own window had already closed on its Kafka partition when it
  arrived: the window's end lay at or below the partition's watermark, its newest timestamp
  so far minus the allowed lateness (Kafka Streams' stream time and grace period, per
  partition, so the verdict depends on the log alone and a rebuild repeats it). A late
  message is kept and counted, never dropped;
- timestamps before the first window are clamped into it and past the last into the last, so
  no message falls outside every partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np


@dataclass(frozen=True)
class WindowGrid:
    """The ordered window starts of the partitions definition, in Unix ms.

    ``keys[i]`` is the Dagster partition key of the window starting at ``starts_ms[i]`` and
    ending at ``ends_ms[i]`` (exclusive).
    """

    keys: tuple[str, ...]
    starts_ms: np.ndarray
    ends_ms: np.ndarray

    @classmethod
    def from_windows(cls, windows: list[tuple[str, datetime, datetime]]) -> WindowGrid:
        """Build from (partition key, start, end) triples in time order; raises ValueError
        when there are none (the partition start lies in the future)."""
        if not windows:
            raise ValueError("the partitions definition has no windows yet: is its start ahead?")
        return cls(
            keys=tuple(k for k, _, _ in windows),
            starts_ms=np.array([int(s.timestamp() * 1000) for _, s, _ in windows], np.int64),
            ends_ms=np.array([int(e.timestamp() * 1000) for _, _, e in windows], np.int64),
        )

    def index_of(self, key: str) -> int:
        """Position of a partition key; raises ValueError for an unknown key."""
        return self.keys.index(key)

    def window_of(self, timestamps_ms: np.ndarray) -> np.ndarray:
        """Window position of each timestamp, clamped into the grid."""
        idx = np.searchsorted(self.starts_ms, timestamps_ms, side="right") - 1
        return np.clip(idx, 0, len(self.keys) - 1)

    def start_of(self, key: str) -> datetime:
        return datetime.fromtimestamp(self.starts_ms[self.index_of(key)] / 1000, tz=UTC)

    def end_of(self, key: str) -> datetime:
        return datetime.fromtimestamp(self.ends_ms[self.index_of(key)] / 1000, tz=UTC)


@dataclass(frozen=True)
class Assignment:
    """Windows of a run of consecutive offsets of one Kafka partition.

    ``log_window[i]``: the window offset ``i`` is read with (running-max rule);
    ``event_window[i]``: the window of the message's own timestamp;
    ``late[i]``: its event window had closed by the partition's watermark when it arrived;
    ``running_max_ms``: the running maximum after the last offset, to carry forward.
    """

    log_window: np.ndarray
    event_window: np.ndarray
    late: np.ndarray
    running_max_ms: int | None


def assign_windows(
    grid: WindowGrid,
    timestamps_ms: np.ndarray,
    running_max_ms: int | None,
    allowed_lateness_ms: int = 0,
) -> Assignment:
    """Assign consecutive offsets (given by their timestamps, Unix ms) to windows.

    ``running_max_ms`` is the running maximum before the first of them (None at offset 0);
    ``allowed_lateness_ms`` how far behind the newest timestamp a window still accepts
    messages without calling them late. Pure and vectorized: ~1 µs a message would be too
    slow at 100k messages/s in Python.
    """
    ts = np.asarray(timestamps_ms, dtype=np.int64)
    if ts.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return Assignment(empty, empty, np.empty(0, dtype=bool), running_max_ms)
    running = np.maximum.accumulate(ts)
    if running_max_ms is not None:
        running = np.maximum(running, running_max_ms)
    event_window = grid.window_of(ts)
    # The watermark a message meets is the partition's before it; its own timestamp cannot
    # raise the watermark past its own window's end, so including it changes nothing.
    watermark = running - allowed_lateness_ms
    return Assignment(
        log_window=grid.window_of(running),
        event_window=event_window,
        late=grid.ends_ms[event_window] <= watermark,
        running_max_ms=int(running[-1]),
    )


def closed_windows(grid: WindowGrid, watermark_ms: int) -> int:
    """How many windows, from the first, have closed: those ending at or below
    ``watermark_ms`` (Unix ms)."""
    return int(np.searchsorted(grid.ends_ms, watermark_ms, side="right"))
