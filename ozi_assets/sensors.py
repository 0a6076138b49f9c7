"""Near-real-time runs: sensors that compare how far the log and each stage have come and
request runs.

``kafka_window_sensor`` compares the topic's high watermarks with the offsets the stages
committed in the lake (no message is read, so a tick costs the same at any backlog) and
requests a ``stream_job`` run (follow.py: one run that follows the stream until it pauses)
when enough messages wait or the oldest has waited long enough, and none is under way.
``embedding_sensor`` compares the embeddings stage with the stage it follows and requests
``embed_job`` runs, so vectors catch up in their own lane. Both say why they skip, with the
lag per Kafka partition, and report the lag to Dagster as asset observations.

``window_close_sensor`` follows the watermark (the newest timestamp read minus the allowed
lateness, or, once no message has arrived for ``idle_close_s``, the wall clock minus the
allowed lateness) and requests one ``window_close_job`` run for each window it closes, which
validates that window with the great-expectations suites.

The decisions are pure functions (``plan_run``, ``windows_to_close``) of the lag or the
watermark, the cursor and the clock.
"""

import json
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import dagster as dg
import duckdb
import numpy as np

from ozi_assets import stream
from ozi_assets.embeddings import EMBED_LINGER_S, LINGER_TAG, embedding_lag
from ozi_assets.follow import stream_job
from ozi_assets.jobs import UNDER_WAY, embed_job, has_runs, window_close_job
from ozi_assets.partitions import window_grid
from ozi_resources.kafka import KafkaResource
from ozi_resources.warehouse import WarehouseError, WarehouseResource
from ozi_resources.windows import WindowGrid, closed_windows

# Dagster copies a sensor whose target is a plain job (stream_job) to bind the job's resources,
# and its copy passes the beta ``owners`` parameter itself (as None): a warning about Dagster's
# own call, on every load of the definitions, that every CLI command would print.
warnings.filterwarnings(
    "ignore", category=dg.BetaWarning, message=r".*`owners` of initializer `SensorDefinition"
)

MIN_MESSAGES = 200  # request at once when this many messages wait…
MAX_DELAY_S = 2.0  # …or when the first of them was seen this long ago
OBSERVE_EVERY_S = 10.0  # lag observations at most this often (each is an event in the log)


@dataclass
class SensorCursor:
    """What a sensor remembers between ticks (stored by Dagster, so it survives restarts)."""

    pending_since: float | None = None  # when a lag above 0 was first seen
    observed_at: float = 0.0  # when the lag was last reported
    observed_lag: int = -1

    @classmethod
    def parse(cls, text: str | None) -> "SensorCursor":
        try:
            return cls(**json.loads(text)) if text else cls()
        except (TypeError, ValueError):
            return cls()  # a cursor from an older version: start afresh

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class RunPlan:
    cursor: SensorCursor
    run: bool
    reason: str  # what was seen: the skip reason, or the run's description
    observe: bool  # report the lag to Dagster this tick


def describe(lag: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(lag.items()))


def plan_run(
    cursor: SensorCursor,
    lag: dict[str, int],
    now: float,
    queued: bool,
    min_messages: int = MIN_MESSAGES,
    max_delay_s: float = MAX_DELAY_S,
) -> RunPlan:
    """Decide whether to request a run.

    ``lag`` maps a name (a Kafka partition, or a stage) to messages waiting; ``queued`` is
    True when a requested run has not started yet (it will read everything up to the high
    watermark when it starts, so another request would only repeat it)."""
    total = sum(lag.values())
    new = SensorCursor(cursor.pending_since, cursor.observed_at, cursor.observed_lag)
    observe = total != cursor.observed_lag and (
        total == 0 or now - cursor.observed_at >= OBSERVE_EVERY_S
    )
    if observe:
        new.observed_at, new.observed_lag = now, total
    if total == 0:
        new.pending_since = None
        return RunPlan(new, False, "caught up: lag 0 on every partition", observe)
    if new.pending_since is None:
        new.pending_since = now
    waited = now - new.pending_since
    if queued:
        return RunPlan(
            new,
            False,
            f"lag {total} ({describe(lag)}); a requested run is queued or under way",
            observe,
        )
    if total < min_messages and waited < max_delay_s:
        return RunPlan(
            new,
            False,
            f"lag {total} ({describe(lag)}); running at {min_messages} messages or after "
            f"{max_delay_s:.0f}s (waited {waited:.1f}s)",
            observe,
        )
    new.pending_since = None
    return RunPlan(new, True, f"lag {total} ({describe(lag)})", observe)


def label_window(grid: WindowGrid, running_max_ms: list[int | None], now: float) -> str:
    """The partition an incremental run is labelled with: the window of the newest timestamp
    the raw stage has seen, or of the clock when it has seen none (clamped into the grid)."""
    known = [m for m in running_max_ms if m is not None]
    stamp = max(known) if known else int(now * 1000)
    return grid.keys[int(grid.window_of(np.array([stamp]))[0])]


def _follower_under_way(instance: dg.DagsterInstance | None) -> bool:
    """Whether a stream_job run is queued or under way: it follows the stream until the
    stream pauses, so it reads what waits now; a second would only queue for the writer
    slot behind it."""
    return has_runs(instance, stream_job.name, UNDER_WAY)


def stream_lag(
    kafka: KafkaResource, warehouse: WarehouseResource, high: dict[int, int] | None = None
) -> tuple[dict[str, int], list[int | None]]:
    """Messages waiting per Kafka partition (high watermark − the raw stage's committed offset)
    and per later stage (its offsets behind the stage before it), and the raw stage's running
    maxima. ``high``: the high watermarks, when the caller has read them. Reads no message."""
    high = kafka.high_watermarks() if high is None else high
    stages: dict[str, stream.Offsets] = {}
    try:
        with warehouse.reader() as conn:
            for stage in (stream.RAW, *stream.CLEAN_STAGES, stream.AGGREGATES):
                stages[stage] = stream.load_offsets(conn, stage, kafka.topic)
    except (WarehouseError, duckdb.CatalogException):
        pass  # no lake, or its tables not committed yet: everything in the log waits
    raw = stages.get(stream.RAW, {})
    lag = {
        f"partition {p}": max(hw - raw.get(p, stream.PartitionOffset()).next_offset, 0)
        for p, hw in high.items()
    }
    clean = {
        p: stream.PartitionOffset(
            min(stages[s].get(p, stream.PartitionOffset()).next_offset for s in stream.CLEAN_STAGES)
        )
        for p in raw
    }
    for stage in (*stream.CLEAN_STAGES, stream.AGGREGATES):
        upstream = clean if stage == stream.AGGREGATES else raw
        behind = sum(stream.lag(stages.get(stage, {}), upstream).values())
        if behind:
            lag[stage] = behind
    return lag, [o.running_max_ms for o in raw.values()]


@dg.sensor(
    job=stream_job,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Compares the topic's high watermarks with the offsets the stages committed "
    "and requests a stream_job run (which follows the stream until it pauses) when messages "
    "wait and none is under way; reports consumer lag.",
)
def kafka_window_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, warehouse: WarehouseResource
):
    cursor = SensorCursor.parse(context.cursor)
    lag, _ = stream_lag(kafka, warehouse)
    if not lag:
        return dg.SkipReason(f"topic {kafka.topic} does not exist yet: nothing produced")
    now = time.time()
    plan = plan_run(cursor, lag, now, _follower_under_way(context.instance))
    context.update_cursor(plan.cursor.dump())
    events = []
    if plan.observe:
        events.append(
            dg.AssetObservation(
                asset_key=["raw", "farcaster_events"],
                metadata={
                    "consumer_lag": dg.MetadataValue.int(sum(lag.values())),
                    "lag_by_partition": dg.MetadataValue.json(lag),
                },
            )
        )
    if not plan.run:
        if events:
            return dg.SensorResult(asset_events=events, skip_reason=plan.reason)
        return dg.SkipReason(plan.reason)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"follow@{now:.3f}",
                tags={
                    stream.MODE_TAG: stream.INCREMENTAL,
                    "ozi/trigger": "new messages",
                    "ozi/lag": json.dumps(lag, sort_keys=True),
                },
            )
        ],
        asset_events=events,
    )


@dg.sensor(
    job=embed_job,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests an embeddings run when casts are waiting for vectors; reports the "
    "embedding lag (casts and seconds behind).",
)
def embedding_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, warehouse: WarehouseResource
):
    cursor = SensorCursor.parse(context.cursor)
    try:
        with warehouse.reader() as conn:
            lag = embedding_lag(conn, kafka.topic)
            raw = stream.load_offsets(conn, stream.RAW, kafka.topic)
    except (WarehouseError, duckdb.CatalogException):  # the first run is creating the lake
        return dg.SkipReason("no lake yet: nothing ingested")
    now = time.time()
    plan = plan_run(
        cursor,
        {"casts": lag.casts},
        now,
        # an embeddings run catches up until nothing is left, so one that runs already covers
        # what arrives meanwhile; two would race for the same batches
        has_runs(context.instance, embed_job.name, UNDER_WAY),
        min_messages=1,
        max_delay_s=0.0,
    )
    context.update_cursor(plan.cursor.dump())
    events = []
    if plan.observe:
        events.append(
            dg.AssetObservation(
                asset_key=["embeddings", "casts"],
                metadata={
                    "lag_casts": dg.MetadataValue.int(lag.casts),
                    "lag_seconds": dg.MetadataValue.float(lag.seconds),
                },
            )
        )
    if not plan.run:
        reason = plan.reason.replace("casts", "casts waiting for vectors")
        if events:
            return dg.SensorResult(asset_events=events, skip_reason=reason)
        return dg.SkipReason(reason)
    window = label_window(window_grid(), [o.running_max_ms for o in raw.values()], now)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"embed@{now:.3f}",
                partition_key=window,
                tags={
                    stream.MODE_TAG: stream.INCREMENTAL,
                    "ozi/trigger": "casts waiting for vectors",
                    LINGER_TAG: str(EMBED_LINGER_S),
                    "ozi/lag": json.dumps(
                        {"casts": lag.casts, "seconds": lag.seconds}, sort_keys=True
                    ),
                },
            )
        ],
        asset_events=events,
    )


@dataclass
class CloseCursor:
    """What window_close_sensor remembers: the last window it closed, and when the topic's
    high watermarks last moved (to tell an idle stream)."""

    closed_through: str | None = None  # partition key of the newest window closed
    high_total: int = -1  # the sum of the high watermarks last seen
    high_changed_at: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> "CloseCursor":
        try:
            return cls(**json.loads(text)) if text else cls()
        except (TypeError, ValueError):
            return cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def windows_to_close(
    grid: WindowGrid,
    with_data: list[str],
    watermark_ms: int | None,
    closed_through: str | None,
) -> list[str]:
    """Partition keys of the windows holding messages that the watermark (Unix ms) has closed
    and that were not closed before (after ``closed_through``), oldest first."""
    if watermark_ms is None:
        return []
    closed = closed_windows(grid, watermark_ms)
    after = grid.index_of(closed_through) if closed_through in grid.keys else -1
    held = set(with_data)
    return [k for k in grid.keys[after + 1 : closed] if k in held]


@dg.sensor(
    job=window_close_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Follows the watermark (newest timestamp minus the allowed lateness; the wall "
    "clock once the stream is idle) and requests the great-expectations checks of each "
    "window it closes.",
)
def window_close_sensor(
    context: dg.SensorEvaluationContext, kafka: KafkaResource, warehouse: WarehouseResource
):
    cursor = CloseCursor.parse(context.cursor)
    now = time.time()
    high = kafka.high_watermarks()
    if sum(high.values()) != cursor.high_total:
        cursor.high_total, cursor.high_changed_at = sum(high.values()), now
    context.update_cursor(cursor.dump())
    lag, running = stream_lag(kafka, warehouse, high)
    if sum(lag.values()):
        return dg.SkipReason(
            f"lag {sum(lag.values())} ({describe(lag)}): windows close once every stage is in"
        )
    try:
        with warehouse.reader() as conn:
            with_data = [
                row[0].strftime("%Y-%m-%d-%H:%M")
                for row in conn.execute(
                    "SELECT DISTINCT window_start AT TIME ZONE 'UTC' FROM kafka_offset_index "
                    "WHERE topic = $t",
                    {"t": kafka.topic},
                ).fetchall()
            ]
    except (WarehouseError, duckdb.CatalogException):
        return dg.SkipReason("no lake yet: nothing ingested")
    watermark = stream.watermark_ms(running, kafka.allowed_lateness_s)
    idle_s = now - cursor.high_changed_at
    if idle_s >= kafka.idle_close_s:
        # An idle stream: no timestamp will move the watermark, so the wall clock does.
        wall = int((now - kafka.allowed_lateness_s) * 1000)
        watermark = max(watermark, wall) if watermark is not None else wall
    keys = windows_to_close(window_grid(), with_data, watermark, cursor.closed_through)
    if not keys:
        return dg.SkipReason(
            "no window newly closed (watermark "
            + (datetime.fromtimestamp(watermark / 1000, UTC).isoformat() if watermark else "none")
            + f", idle {idle_s:.0f}s)"
        )
    cursor.closed_through = keys[-1]
    context.update_cursor(cursor.dump())
    return [
        dg.RunRequest(
            run_key=f"close:{key}",
            partition_key=key,
            tags={stream.MODE_TAG: stream.CLOSE, "ozi/trigger": "window closed"},
        )
        for key in keys
    ]
