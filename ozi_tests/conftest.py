"""Shared fixtures: a real embedded broker on a free port and a warehouse under tmp_path."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from ozi_resources import broker, farcaster
from ozi_resources.settings import OziSettings
from ozi_resources.warehouse import PUBLIC_TABLES

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = (REPO / ".." / "shared" / "data" / "farcaster" / "warpy-2023-03").resolve()


# The test files that take longest, longest first (as `pytest --durations=0` measured them
# on two workers): `make test` hands whole files to two workers in collection order, so
# these start first and the short ones fill the end. Other files keep their own order.
SLOWEST_FILES = (
    "test_stream.py",
    "test_questions.py",
    "test_production.py",
    "test_ui.py",
    "test_pipeline.py",
    "test_api.py",
    "test_wheel.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOWEST_FILES.index(name) if name in SLOWEST_FILES else len(SLOWEST_FILES)

    items.sort(key=rank)  # stable: within a file, and among the others, the order stays


@pytest.fixture(scope="session")
def sample() -> tuple[list[dict], list[dict]]:
    return farcaster.load_sample(SAMPLE_DIR)


@pytest.fixture(scope="session")
def sample_events(sample) -> list[farcaster.Event]:
    return farcaster.sample_events(*sample)


def make_settings(home: Path, bootstrap: str = "") -> OziSettings:
    base = OziSettings.from_env({"OZI_HOME": str(home), "OZI_SAMPLE_DIR": str(SAMPLE_DIR)})
    return dataclasses.replace(base, kafka_bootstrap=bootstrap)


@pytest.fixture(scope="module")
def running_broker(tmp_path_factory):
    """The embedded broker, started for this test module on a free loopback port."""
    home = tmp_path_factory.mktemp("broker")
    state = broker.start(home)
    yield state
    broker.stop(home)


def materialize_sample(settings: OziSettings, events: list[farcaster.Event]) -> None:
    """Produce ``events`` to the settings' topic and materialize every window of the sample
    (ingest_job, then embed_job, each window in order) on a temporary instance: the lake
    `ozi demo` leaves, without the Dagster history."""
    import dagster as dg

    from ozi_assets.definitions import build_definitions, build_resources
    from ozi_assets.partitions import stream_partitions

    kafka = build_resources(settings)["kafka"]
    kafka.ensure_topics()
    kafka.produce(events)
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        for name in ("ingest_job", "embed_job"):
            job = defs.resolve_job_def(name)
            for key in stream_partitions.get_partition_keys():
                assert job.execute_in_process(partition_key=key, instance=instance).success


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Each secret Ozi reads, set to a value that must never come back from Dagster.
SECRETS = {
    "OPENAI_API_KEY": "sk-ozi-test-llm-key-3141",
    "OZI_QDRANT_API_KEY": "qdrant-test-key-2718",
    "AWS_ACCESS_KEY_ID": "AKIAOZITESTKEY1618",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-test-1414",
    "OZI_LAKE_CATALOG": "postgres:host=127.0.0.1 dbname=ozi_lake password=pg-test-secret-1732",
}


# Asset keys every deployment of the definitions must show.
EXPECTED_ASSETS = frozenset(
    {
        "raw/farcaster_events",
        "clean/casts",
        "clean/reactions",
        "clean/users",
        "aggregates/hourly_activity",
        "aggregates/top_authors",
        "aggregates/cast_engagement",
        "embeddings/casts",
        "answers/standing_questions",
    }
)


def wait_for_http(url: str, server: subprocess.Popen, timeout_s: float, log: Path) -> None:
    """Poll ``url`` until it answers 2xx. Raises RuntimeError with the end of ``log`` when
    the server process exits or ``timeout_s`` seconds pass first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"{url} did not come up:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.5)


# Every table of the lake (the stages' own tables, then the public ones); fingerprints are
# order-independent (count and sum of row hashes).
LAKE_TABLES = (
    "kafka_offset_index",
    "stage_offsets",
    "raw_events",
    "cast_adds",
    "cast_removes",
    "reaction_messages",
    "user_data",
    "cast_terms",
    "reaction_state",
    "cast_vectors",
    *PUBLIC_TABLES,
)


def fingerprints(warehouse) -> dict[str, tuple]:
    """{table: (rows, sum of row hashes)} for every table of the lake."""
    with warehouse.reader() as conn:
        return {
            table: conn.execute(f"SELECT count(*), sum(hash(t)) FROM {table} t").fetchone()
            for table in LAKE_TABLES
        }


def stop_group(process: subprocess.Popen, timeout_s: float = 60) -> None:
    """Stop ``process`` and every process it started (it must have been started with
    ``start_new_session=True``): SIGTERM to the group, SIGKILL to what is left after
    ``timeout_s``. A stopped dagster-daemon can leave its code server behind, still trying to
    reach a database the test has already shut down."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
