"""The code location loads and validates (as the webserver and daemon load it), and holds
secrets as the names of environment variables."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from ozi_assets.definitions import build_definitions, defs
from ozi_assets.questions.llm import LlmResource
from ozi_resources.settings import OziSettings
from ozi_resources.vectors import VectorStoreResource
from ozi_resources.warehouse import WarehouseResource
from ozi_tests.conftest import EXPECTED_ASSETS, SECRETS


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


def test_the_dagster_cli_validates_the_workspace(tmp_path):
    """What `make lint` runs: the workspace the webserver and daemon load, through Dagster's
    own command, not only the Python API."""
    from ozi_tests.conftest import REPO

    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


def test_assets_are_grouped_by_stage_and_share_the_partitions():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys >= EXPECTED_ASSETS
    stream = [k for k in graph.get_all_asset_keys() if k.path[0] != "answers"]
    partitions = {graph.get(k).partitions_def for k in stream}
    assert len(partitions) == 1
    assert len(next(iter(partitions)).get_partition_keys()) == 8
    # The standing answers read every window: one unpartitioned asset.
    assert graph.get(dg.AssetKey(["answers", "standing_questions"])).partitions_def is None


def test_loading_definitions_imports_no_heavy_library():
    """Every run the daemon launches imports the definitions first: torch,
    sentence-transformers and great-expectations cost seconds and load only when used."""
    code = (
        "import sys, ozi_assets.definitions\n"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'great_expectations', "
        "'qdrant_client', 'openai') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


@pytest.fixture
def production_defs(monkeypatch, tmp_path) -> dg.Definitions:
    """The definitions as a deployment with every secret set loads them."""
    monkeypatch.setenv("OZI_HOME", str(tmp_path))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return build_definitions(OziSettings.from_env())


def test_the_definitions_hold_secret_names_and_runs_get_the_values(production_defs):
    warehouse = production_defs.resources["warehouse"]
    held = {
        "OPENAI_API_KEY": production_defs.resources["llm"].api_key,
        "OZI_QDRANT_API_KEY": production_defs.resources["vectors"].api_key,
        "AWS_ACCESS_KEY_ID": warehouse.s3.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": warehouse.s3.aws_secret_access_key,
        "OZI_LAKE_CATALOG": warehouse.catalog,
    }
    # What Dagster keeps (and shows) is the variable's name...
    assert held == {name: name for name in SECRETS}

    # ...and a run's resources get the value, read from the environment when the run starts.
    received: dict[str, str] = {}

    @dg.op
    def read_secrets(llm: LlmResource, vectors: VectorStoreResource, warehouse: WarehouseResource):
        received.update(
            OPENAI_API_KEY=llm.api_key,
            OZI_QDRANT_API_KEY=vectors.api_key,
            AWS_ACCESS_KEY_ID=warehouse.s3.aws_access_key_id,
            AWS_SECRET_ACCESS_KEY=warehouse.s3.aws_secret_access_key,
            OZI_LAKE_CATALOG=warehouse.catalog,
        )

    @dg.job
    def secrets_job():
        read_secrets()

    names = ("llm", "vectors", "warehouse")
    run_defs = dg.Definitions(
        jobs=[secrets_job], resources={k: production_defs.resources[k] for k in names}
    )
    assert run_defs.resolve_job_def("secrets_job").execute_in_process().success
    assert received == SECRETS


def test_a_secret_not_in_the_environment_is_refused_not_shown(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = OziSettings.from_env({"OZI_HOME": str(tmp_path), "OPENAI_API_KEY": "sk-elsewhere"})
    with pytest.raises(ValueError, match="OPENAI_API_KEY must be set in the environment"):
        build_definitions(settings)
