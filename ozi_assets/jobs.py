"""The job that carries one window through raw → clean → aggregates and embeddings."""

import dagster as dg

from ozi_assets.partitions import stream_partitions

PIPELINE_GROUPS = ("raw", "clean", "aggregates", "embeddings")

# In-process: a window is small, and one process per asset would cost seconds of imports per
# step (8 s a run against 0.5 s measured); the lake_writer pool already serializes writers.
ingest_job = dg.define_asset_job(
    name="ingest_job",
    selection=dg.AssetSelection.groups(*PIPELINE_GROUPS),
    partitions_def=stream_partitions,
    executor_def=dg.in_process_executor,
    description=(
        "Materialize one window: Kafka messages → raw_events → clean tables → aggregates "
        "and embeddings."
    ),
)
