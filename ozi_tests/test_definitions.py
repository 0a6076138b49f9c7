"""The code location loads and validates (as the webserver and daemon load it)."""

import dagster as dg

from ozi_assets.definitions import defs


def test_definitions_validate():
    dg.Definitions.validate_loadable(defs)


def test_assets_are_grouped_by_stage_and_share_the_partitions():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "raw/farcaster_events",
        "clean/casts",
        "clean/reactions",
        "clean/users",
        "aggregates/hourly_activity",
        "aggregates/cast_engagement",
    } <= keys
    partitions = {graph.get(k).partitions_def for k in graph.get_all_asset_keys()}
    assert len(partitions) == 1
    assert len(next(iter(partitions)).get_partition_keys()) == 8
