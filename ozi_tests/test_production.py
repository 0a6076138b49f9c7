"""The production path, for real: the lake's catalog in PostgreSQL and its data in an S3 API
server (moto), the Dagster instance itself on PostgreSQL (dagster-postgres, the repository's
deploy/dagster.docker.yaml), runs launched by the real daemon through the run queue (the
sensor's micro-batch runs and a backfill), and every lake table compared with an embedded
run (SQLite catalog, local Parquet) over the same Kafka messages."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pytest

from ozi_assets.definitions import build_definitions, build_resources
from ozi_assets.partitions import stream_partitions
from ozi_resources.warehouse import WarehouseError
from ozi_tests.conftest import REPO, fingerprints, make_settings, stop_group
from ozi_tests.servers import postgres_server, s3_server

pytestmark = pytest.mark.slow

BUCKET = "ozi-lake"
STAGES = (
    "raw",
    "clean/casts",
    "clean/reactions",
    "clean/users",
    "checks",
    "aggregates",
    "embeddings",
)


def stage_totals(warehouse) -> dict[str, int]:
    """{stage: offsets done over all Kafka partitions} ({} before the lake exists).

    The first run creates the lake on the Postgres catalog while this polls it, so for a
    moment the catalog can answer with no lake or with the lake but not yet its tables;
    both mean that nothing is done yet, and the caller's deadline still bounds the wait.
    """
    try:
        with warehouse.reader() as conn:
            return dict(
                conn.execute(
                    "SELECT stage, sum(next_offset) FROM stage_offsets GROUP BY 1"
                ).fetchall()
            )
    except (WarehouseError, duckdb.CatalogException):
        return {}


@pytest.fixture(scope="module")
def servers():
    with postgres_server(("ozi_lake", "dagster")) as pg, s3_server((BUCKET,)) as s3:
        yield pg, s3


def production_env(pg, s3, home, bootstrap) -> dict[str, str]:
    """The environment a production deployment sets: only variables, same code."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copyfile(REPO / "deploy" / "dagster.docker.yaml", dagster_home / "dagster.yaml")
    return {
        "OZI_HOME": str(home),
        "OZI_KAFKA_BOOTSTRAP": bootstrap,
        "OZI_LAKE_CATALOG": "postgres:" + pg.libpq("ozi_lake"),
        "OZI_LAKE_DATA_PATH": f"s3://{BUCKET}/lake/",
        "OZI_S3_ENDPOINT_URL": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3.secret_access_key,
        "AWS_REGION": s3.region,
        "DAGSTER_HOME": str(dagster_home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(pg.port),
        "DAGSTER_PG_USER": pg.user,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": "dagster",
    }


def wait_for_runs(
    instance, predicate, count: int, timeout_s: float, log, job_name: str = "ingest_job"
) -> list:
    """Runs of ``job_name`` matching ``predicate``, once ``count`` of them have finished.
    Fails with the daemon's log when a run fails or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [r for r in instance.get_runs(dg.RunsFilter(job_name=job_name)) if predicate(r)]
        failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
        assert not failed, f"runs failed: {[r.run_id for r in failed]}\n{log.read_text()[-3000:]}"
        done = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
        if len(done) >= count:
            return done
        if time.monotonic() > deadline:
            pytest.fail(f"{len(done)}/{count} runs finished in time\n{log.read_text()[-3000:]}")
        time.sleep(2)


def test_postgres_catalog_and_s3_data_match_the_embedded_lake(
    running_broker, servers, sample_events, tmp_path, monkeypatch
):
    pg, s3 = servers
    embedded = make_settings(tmp_path / "embedded", running_broker.address)
    resources = build_resources(embedded)
    resources["kafka"].ensure_topics()
    resources["kafka"].produce(sample_events)

    # The embedded run: in-process, the SQLite catalog and local Parquet files; one
    # incremental run of each job takes the whole log, as a sensor's run would (that
    # rebuilds of every window give the same tables is test_pipeline's)
    defs = build_definitions(embedded)
    newest = stream_partitions.get_partition_keys()[-1]
    with dg.instance_for_test() as instance:
        for name in ("ingest_job", "embed_job"):
            result = defs.resolve_job_def(name).execute_in_process(
                partition_key=newest, instance=instance, tags={"ozi/mode": "incremental"}
            )
            assert result.success
    expected = fingerprints(resources["warehouse"])
    assert expected["casts"][0] == 888 and expected["cast_vectors"][0] == 888

    # The production run: the same messages, the daemon on a Postgres instance.
    env = production_env(pg, s3, tmp_path / "production", running_broker.address)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "dagster-daemon"), "run", "-w", "workspace.yaml"]
            if (REPO / ".venv" / "bin" / "dagster-daemon").exists()
            else [sys.executable, "-m", "dagster._daemon", "run", "-w", "workspace.yaml"],
            cwd=REPO,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    production = dataclasses.replace(
        make_settings(tmp_path / "production", running_broker.address),
        lake_catalog=env["OZI_LAKE_CATALOG"],
        lake_data_path=env["OZI_LAKE_DATA_PATH"],
        s3_endpoint_url=s3.endpoint_url,
        s3_region=s3.region,
        s3_access_key_id=s3.access_key_id,
        s3_secret_access_key=s3.secret_access_key,
    )
    warehouse = build_resources(production)["warehouse"]
    total = sum(resources["kafka"].high_watermarks().values())
    try:
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            # The sensors see the lag and request runs that follow the stream, ingestion and
            # embeddings in their own lanes, until every stage has caught up with the log.
            deadline = time.monotonic() + 600
            while stage_totals(warehouse) != {stage: total for stage in STAGES}:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"stages {stage_totals(warehouse)} of {total}\n{log.read_text()[-3000:]}"
                    )
                time.sleep(2)
            sensor_runs = wait_for_runs(
                instance,
                lambda r: r.tags.get("ozi/trigger") == "new messages",
                1,
                600,
                log,
                job_name="stream_job",
            )
            assert all(r.tags["ozi/mode"] == "incremental" for r in sensor_runs)
            embed_runs = wait_for_runs(instance, lambda r: True, 1, 600, log, job_name="embed_job")
            assert all(r.tags["ozi/mode"] == "incremental" for r in embed_runs)
            # A backfill of two windows through the same queue changes nothing.
            backfill = subprocess.run(
                [
                    str(REPO / ".venv" / "bin" / "dagster"),
                    "job",
                    "backfill",
                    "-w",
                    "workspace.yaml",
                    "-j",
                    "ingest_job",
                    "--partitions",
                    "2023-03-04-02:00,2023-03-04-03:00",
                    "--noprompt",
                ],
                cwd=REPO,
                env=dict(os.environ),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert backfill.returncode == 0, backfill.stdout + backfill.stderr
            wait_for_runs(instance, lambda r: "dagster/backfill" in r.tags, 2, 600, log)
    finally:
        stop_group(daemon)

    assert fingerprints(warehouse) == expected
    # The data really is in the bucket, the catalog really in Postgres.
    objects = warehouse.s3.get_client().list_objects_v2(Bucket=BUCKET, Prefix="lake/")
    assert objects.get("KeyCount", 0) > 0
    with warehouse.reader() as conn:
        assert len(warehouse.snapshots(conn)) > 8
