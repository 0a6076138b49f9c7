"""Near-real-time runs: a sensor that watches the event topic and requests a run for each
window with new messages.

The decision is a pure function, ``plan_runs``, of the cursor and the messages that arrived
since; the sensor only reads Kafka and turns the plan into run requests. The cursor (stored by
Dagster, so it survives restarts) holds, per Kafka partition, the next offset to look at and
the running maximum timestamp that assigns offsets to windows (see windows.py).
"""

import json
import time
from dataclasses import asdict, dataclass, field

import dagster as dg
import numpy as np

from ozi_assets.jobs import ingest_job
from ozi_assets.partitions import window_grid
from ozi_resources.kafka import KafkaResource
from ozi_resources.windows import WindowGrid, assign_windows

MIN_MESSAGES = 200  # request at once when this many messages wait…
MAX_DELAY_S = 3.0  # …or when the oldest waiting message was seen this long ago
AGGREGATE_KEYS = [
    dg.AssetKey(["aggregates", name])
    for name in (
        "hourly_activity",
        "top_authors",
        "most_replied_to",
        "top_terms",
        "cast_engagement",
    )
]


@dataclass
class SensorCursor:
    """What the sensor has seen: next offset and running max timestamp per Kafka partition,
    and messages counted but not yet covered by a requested run."""

    offsets: dict[str, int] = field(default_factory=dict)
    running_max_ms: dict[str, int | None] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)  # window key → messages
    late: list[str] = field(default_factory=list)  # windows that got late messages
    pending_since: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> "SensorCursor":
        return cls(**json.loads(text)) if text else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class RunPlan:
    cursor: SensorCursor
    windows: list[str]  # run the whole pipeline for these
    late_windows: list[str]  # refresh only the aggregates of these
    reason: str  # what was seen, for the sensor's tick (skip reason when nothing is run)


def plan_runs(
    cursor: SensorCursor,
    arrived: dict[int, tuple[np.ndarray, np.ndarray]],
    grid: WindowGrid,
    now: float,
    min_messages: int = MIN_MESSAGES,
    max_delay_s: float = MAX_DELAY_S,
) -> RunPlan:
    """Fold newly arrived messages into the cursor and decide which windows to run.

    ``arrived`` maps a Kafka partition to (offsets, timestamps in Unix ms) of the messages
    read since the cursor. Runs are requested when at least ``min_messages`` wait or the
    oldest waiting batch was seen ``max_delay_s`` seconds ago; otherwise the cursor keeps
    counting. Late messages also ask for their own window's aggregates to be refreshed.
    """
    new = SensorCursor(
        offsets=dict(cursor.offsets),
        running_max_ms=dict(cursor.running_max_ms),
        pending=dict(cursor.pending),
        late=list(cursor.late),
        pending_since=cursor.pending_since,
    )
    arrived_count = 0
    for partition, (offsets, stamps) in arrived.items():
        if len(offsets) == 0:
            continue
        p = str(partition)
        assignment = assign_windows(grid, stamps, new.running_max_ms.get(p))
        new.offsets[p] = int(offsets[-1]) + 1
        new.running_max_ms[p] = assignment.running_max_ms
        for w in assignment.log_window.tolist():
            new.pending[grid.keys[w]] = new.pending.get(grid.keys[w], 0) + 1
        late = assignment.event_window < assignment.log_window
        new.late = sorted(set(new.late) | {grid.keys[w] for w in assignment.event_window[late]})
        arrived_count += len(offsets)
    if arrived_count and new.pending_since is None:
        new.pending_since = now
    waiting = sum(new.pending.values())
    if waiting == 0:
        return RunPlan(new, [], [], "no new messages since the last run request (lag 0)")
    age = now - (new.pending_since or now)
    summary = ", ".join(f"{w}: {n}" for w, n in sorted(new.pending.items()))
    if waiting < min_messages and age < max_delay_s:
        return RunPlan(
            new,
            [],
            [],
            f"{waiting} new messages wait ({summary}); running at {min_messages} messages "
            f"or after {max_delay_s:.0f}s (waited {age:.1f}s)",
        )
    windows = sorted(new.pending)
    late = [w for w in new.late if w not in new.pending]
    done = SensorCursor(new.offsets, new.running_max_ms, {}, [], None)
    return RunPlan(done, windows, late, f"{waiting} new messages ({summary})")


def _queued(instance: dg.DagsterInstance, window: str) -> bool:
    """True when a run of the window waits in the queue: it will read everything up to the
    high watermark when it starts, so another request would only repeat it."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            job_name=ingest_job.name,
            statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED],
            tags={"dagster/partition": window},
        ),
        limit=1,
    )
    return bool(runs)


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a run for each window with new Kafka messages (micro-batches), and "
    "an aggregates refresh for windows that received late messages.",
)
def kafka_window_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource):
    cursor = SensorCursor.parse(context.cursor)
    high = kafka.high_watermarks()
    if not high:
        return dg.SkipReason(f"topic {kafka.topic} does not exist yet: nothing produced")
    ranges = {p: (cursor.offsets.get(str(p), 0), hw) for p, hw in high.items()}
    lag = sum(max(end - start, 0) for start, end in ranges.values())
    arrived = {p: (log.offsets, log.timestamps_ms) for p, log in kafka.read(ranges).items()}
    plan = plan_runs(cursor, arrived, window_grid(), time.time())
    context.update_cursor(plan.cursor.dump())
    if not plan.windows:
        return dg.SkipReason(f"{plan.reason}; consumer lag {lag}")
    requests = []
    offsets_tag = json.dumps(plan.cursor.offsets, sort_keys=True)
    for window in plan.windows:
        if context.instance and _queued(context.instance, window):
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"{window}@{offsets_tag}",
                partition_key=window,
                tags={"ozi/trigger": "new messages", "ozi/offsets": offsets_tag},
            )
        )
    for window in plan.late_windows:
        requests.append(
            dg.RunRequest(
                run_key=f"late:{window}@{offsets_tag}",
                partition_key=window,
                asset_selection=AGGREGATE_KEYS,
                tags={"ozi/trigger": "late messages"},
            )
        )
    if not requests:
        return dg.SkipReason(f"{plan.reason}; runs for those windows are already queued")
    return dg.SensorResult(run_requests=requests)
