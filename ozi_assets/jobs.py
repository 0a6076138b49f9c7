"""The jobs that carry the stream through the stages: ingestion and embeddings, apart."""

import dagster as dg

from ozi_assets.clean import casts, reactions, users

INGEST_GROUPS = ("raw", "clean", "aggregates")
# Run statuses: waiting for a slot (the queue), and waiting or running.
WAITING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
UNDER_WAY = [*WAITING, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
LANE_TAG = "ozi/lane"  # dagster.yaml runs one embeddings run at a time by this tag

# In-process: one process per asset would cost seconds of imports per step (8 s a run against
# 0.5 s measured); the lake_writer pool already serializes the writers.
ingest_job = dg.define_asset_job(
    name="ingest_job",
    selection=dg.AssetSelection.groups(*INGEST_GROUPS),
    executor_def=dg.in_process_executor,
    description=(
        "Kafka messages → raw_events → clean tables → aggregates. Sensor runs (tag "
        "ozi/mode=incremental) append what is new; other runs also rebuild their window."
    ),
)

# Its own lane: the model runs at ~300 casts/s on 2 cores, so casts must never wait for it.
# Outside the lake_writer pool: its commits are short and retried if they lose to another.
embed_job = dg.define_asset_job(
    name="embed_job",
    selection=dg.AssetSelection.groups("embeddings"),
    executor_def=dg.in_process_executor,
    tags={LANE_TAG: "embeddings"},
    description=(
        "Vectors for the casts folded in since the last run (clean/casts → cast_vectors → "
        "vector index); other than sensor runs, also re-checks the run's window."
    ),
)

# The checks of a window the watermark closed, with the great-expectations suites: reads
# only, so no pool; one at a time, for great-expectations' import takes seconds of both cores.
window_close_job = dg.define_asset_job(
    name="window_close_job",
    selection=dg.AssetSelection.assets(["stream", "window_close"])
    | dg.AssetSelection.checks_for_assets(casts, reactions, users),
    executor_def=dg.in_process_executor,
    tags={LANE_TAG: "window-close"},
    description=(
        "The checks of the clean tables for one closed window, with the great-expectations "
        "suites (requested by window_close_sensor once the watermark passes the window)."
    ),
)


def has_runs(
    instance: dg.DagsterInstance | None,
    job_name: str,
    statuses: list[dg.DagsterRunStatus] = WAITING,
) -> bool:
    """Whether ``instance`` has a run of ``job_name`` in one of ``statuses`` (default: waiting
    in the queue); False without an instance (a sensor evaluated in a test)."""
    if instance is None:
        return False
    return bool(
        instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=statuses), limit=1)
    )
