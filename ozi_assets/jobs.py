"""The jobs that carry the stream through the stages: ingestion and embeddings, apart."""

import dagster as dg

from ozi_assets.partitions import stream_partitions

INGEST_GROUPS = ("raw", "clean", "aggregates")

# In-process: one process per asset would cost seconds of imports per step (8 s a run against
# 0.5 s measured); the lake_writer pool already serializes the writers.
ingest_job = dg.define_asset_job(
    name="ingest_job",
    selection=dg.AssetSelection.groups(*INGEST_GROUPS),
    partitions_def=stream_partitions,
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
    partitions_def=stream_partitions,
    executor_def=dg.in_process_executor,
    description=(
        "Vectors for the casts folded in since the last run (clean/casts → cast_vectors → "
        "vector index); other than sensor runs, also re-checks the run's window."
    ),
)
