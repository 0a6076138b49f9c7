"""The code location loads and validates (as the webserver and daemon load it)."""

import subprocess
import sys

import dagster as dg

from ozi_assets.definitions import defs
from ozi_tests.conftest import EXPECTED_ASSETS


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


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
