"""The one time-window partitions definition every stream asset shares, and the freshness the
stream promises.

Dagster needs the partition grid when it loads the definitions, so this is the one setting
read at load time (OZI_PARTITION_START / _END / _CRON, each with a default: an unset variable
never yields an empty key). Resources read everything else when they run.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

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


# What a live stream promises: under the sensor a micro-batch run lands every few seconds
# (runs took at most 18 s at 2,000 events/s), so raw, clean and aggregates not materialized
# for a minute warn and for five minutes fail: the broker, the sensor or the daemon is down,
# or the stream itself stopped (a Farcaster firehose never idles that long; a replayed
# sample does, and then shows as stale on purpose). Dagster's policy is per asset, not per
# partition: any window's materialization counts.
STREAM_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=5), warn_window=timedelta(minutes=1)
)
# Embeddings run in their own lane and a backlog takes minutes (the model embeds ~300 casts/s
# on 2 cores), so they get a looser promise.
EMBEDDING_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=30), warn_window=timedelta(minutes=10)
)
