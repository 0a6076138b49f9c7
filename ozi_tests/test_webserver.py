"""The real dagster-webserver on the workspace file: its GraphQL endpoint lists Ozi's assets,
their hourly partitions and their checks, as the UI shows them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ozi_tests.conftest import EXPECTED_ASSETS, REPO, free_port, wait_for_http

pytestmark = pytest.mark.slow

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    isPartitioned
    partitionKeys
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
  sensorsOrError: repositoriesOrError {
    ... on RepositoryConnection { nodes { name sensors { name } jobs { name } } }
  }
}
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("ozi")
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    port = free_port()
    env = dict(os.environ, OZI_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    log = (home / "webserver.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}/server_info", server, 180, home / "webserver.log")
    yield base
    server.terminate()
    server.wait(timeout=30)
    log.close()


def graphql(base: str, query: str) -> dict:
    # The code location loads in a subprocess after the server is up; wait for it.
    deadline = time.monotonic() + 180
    while True:
        response = requests.post(f"{base}/graphql", json={"query": query}, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        if body["data"]["assetNodes"] or time.monotonic() > deadline:
            return body["data"]
        time.sleep(1)


def test_ui_shows_assets_partitions_and_checks(webserver):
    data = graphql(webserver, QUERY)
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert set(nodes) >= EXPECTED_ASSETS

    casts = nodes["clean/casts"]
    assert casts["isPartitioned"] and casts["groupName"] == "clean"
    assert casts["partitionKeys"][0] == "2023-03-03-23:00"
    assert casts["partitionKeys"][-1] == "2023-03-04-06:00"
    assert len(casts["partitionKeys"]) == 8
    checks = {c["name"]: c["blocking"] for c in casts["assetChecksOrError"]["checks"]}
    assert checks == {"casts_are_valid": True, "casts_are_in_window": False}

    (repo,) = data["sensorsOrError"]["nodes"]
    assert {s["name"] for s in repo["sensors"]} >= {"kafka_window_sensor"}
    assert {j["name"] for j in repo["jobs"]} >= {"ingest_job", "ask_job"}
