"""The one time-window partitions definition every stream asset shares.

Dagster needs the partition grid when it loads the definitions, so this is the one setting
read at load time (OZI_PARTITION_START / _END / _CRON, each with a default: an unset variable
never yields an empty key). Resources read everything else when they run.
"""

from __future__ import annotations

from ozi_resources.settings import OziSettings, build_partitions_def
from ozi_resources.windows import WindowGrid

stream_partitions = build_partitions_def(OziSettings.from_env())


def window_grid() -> WindowGrid:
    """The windows of ``stream_partitions`` as of now, for offset → window assignment."""
    keys = stream_partitions.get_partition_keys()
    windows = []
    for key in keys:
        tw = stream_partitions.time_window_for_partition_key(key)
        windows.append((key, tw.start, tw.end))
    return WindowGrid.from_windows(windows)
