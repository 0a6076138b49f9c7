"""The code location: every asset, check, job, sensor and resource of Ozi."""

import os

import dagster as dg
from dagster_aws.s3 import S3Resource

from ozi_assets.aggregates import aggregates
from ozi_assets.ask import answers_automation_sensor, ask_job, standing_answers
from ozi_assets.checks import all_checks, window_close
from ozi_assets.clean import casts, reactions, users
from ozi_assets.embeddings import cast_embeddings
from ozi_assets.follow import stream_job
from ozi_assets.housekeeping import lake_housekeeping_job, lake_housekeeping_schedule
from ozi_assets.jobs import embed_job, ingest_job, window_close_job
from ozi_assets.questions.llm import LlmResource
from ozi_assets.raw import farcaster_events
from ozi_assets.sensors import embedding_sensor, kafka_window_sensor, window_close_sensor
from ozi_resources.kafka import KafkaResource
from ozi_resources.settings import OziSettings
from ozi_resources.vectors import EmbedderResource, VectorStoreResource
from ozi_resources.warehouse import WarehouseResource


def build_resources(
    settings: OziSettings, *, secrets_as_env_vars: bool = False
) -> dict[str, dg.ConfigurableResource]:
    """The resources for an environment: embedded defaults or production, same classes.

    With ``secrets_as_env_vars`` (the Definitions), every secret that is set is passed as
    ``dg.EnvVar(name)``: Dagster resolves it from the process environment when a run or sensor
    starts, and its UI, GraphQL API and stored run config show the variable's name, never the
    value. Without it (the CLI, the HTTP server, tests) the resources hold the values and work
    as plain objects. Raises ValueError when ``secrets_as_env_vars`` is set and a secret in
    ``settings`` is not what the process environment holds (Dagster could not resolve it).
    """

    def secret(name: str, value: str) -> str:
        if not secrets_as_env_vars or not value:
            return value
        if os.environ.get(name) != value:
            raise ValueError(f"{name} must be set in the environment Dagster runs in")
        return dg.EnvVar(name)

    # A Postgres catalog is a libpq string that may hold a password.
    catalog = settings.lake_catalog
    if catalog.startswith("postgres:"):
        catalog = secret("OZI_LAKE_CATALOG", catalog)
    return {
        "kafka": KafkaResource(
            bootstrap_servers=settings.kafka_bootstrap,
            home=str(settings.home),
            topic=settings.topic,
            dlq_topic=settings.dlq_topic,
            num_partitions=settings.kafka_partitions,
            batch_messages=settings.batch_messages,
            allowed_lateness_s=settings.allowed_lateness_s,
            idle_close_s=settings.idle_close_s,
            max_clock_skew_s=settings.max_clock_skew_s,
        ),
        "warehouse": WarehouseResource(
            catalog=catalog,
            data_path=settings.lake_data_path,
            extension_directory=str(settings.extension_directory),
            temp_directory=str(settings.temp_directory),
            snapshot_retention_hours=settings.snapshot_retention_hours,
            s3=S3Resource(
                endpoint_url=settings.s3_endpoint_url or None,
                region_name=settings.s3_region or None,
                aws_access_key_id=secret("AWS_ACCESS_KEY_ID", settings.s3_access_key_id) or None,
                aws_secret_access_key=secret("AWS_SECRET_ACCESS_KEY", settings.s3_secret_access_key)
                or None,
            ),
        ),
        "embedder": EmbedderResource(
            model_name=settings.embedding_model_name,
            model_path=settings.embedding_model_path,
            precision=settings.embed_precision,
        ),
        "vectors": VectorStoreResource(
            path=str(settings.vector_path),
            home=str(settings.home),
            url=settings.qdrant_url,
            api_key=secret("OZI_QDRANT_API_KEY", settings.qdrant_api_key),
        ),
        "llm": LlmResource(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=secret("OPENAI_API_KEY", settings.llm_api_key),
        ),
    }


def build_definitions(settings: OziSettings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            farcaster_events,
            casts,
            reactions,
            users,
            aggregates,
            cast_embeddings,
            window_close,
            standing_answers,
        ],
        asset_checks=all_checks,
        jobs=[ingest_job, stream_job, embed_job, window_close_job, ask_job, lake_housekeeping_job],
        schedules=[lake_housekeeping_schedule],
        sensors=[
            kafka_window_sensor,
            embedding_sensor,
            window_close_sensor,
            answers_automation_sensor,
        ],
        resources=build_resources(settings, secrets_as_env_vars=True),
        # Jobs without an executor of their own (asset backfills and the standing answers
        # run the implicit asset job) run their steps in one process: a process a step
        # costs seconds of imports, and the lake_writer pool serializes the writers anyway.
        executor=dg.in_process_executor,
    )


defs = build_definitions(OziSettings.from_env())
