"""Which asset partitions an answer read, from the tables its SQL names and the Dagster
instance's materialization records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import dagster as dg

from ozi_assets.questions.answer import LineageEntry

# Public table or view → the assets whose materializations write it. The casts view joins
# users (for usernames), so it reads both.
TABLE_ASSETS: dict[str, tuple[str, ...]] = {
    "casts": ("clean/casts", "clean/users"),
    "reactions": ("clean/reactions",),
    "users": ("clean/users",),
    "links": ("clean/users",),
    "hourly_activity": ("aggregates/hourly_activity",),
    "top_authors": ("aggregates/top_authors",),
    "most_replied_to": ("aggregates/most_replied_to",),
    "top_terms": ("aggregates/top_terms",),
    "cast_engagement": ("aggregates/cast_engagement",),
    "dead_letters": ("raw/farcaster_events",),
}
EMBEDDINGS_ASSET = "embeddings/casts"


def assets_for(tables: Iterable[str], semantic: bool) -> list[str]:
    """Asset keys (as "a/b" strings) behind ``tables``, plus the embeddings when a vector
    search was run."""
    keys = {key for table in tables for key in TABLE_ASSETS.get(table, ())}
    if semantic:
        keys.add(EMBEDDINGS_ASSET)
    return sorted(keys)


def lineage(
    instance: dg.DagsterInstance | None,
    assets: Iterable[str],
    partitions: list[str] | None,
) -> list[LineageEntry]:
    """The latest materialization of each (asset, partition) read.

    ``partitions`` None means every partition that has a materialization. With no instance
    (nothing was ever run through Dagster) each asset is listed without a run.
    """
    entries: list[LineageEntry] = []
    for asset in assets:
        key = dg.AssetKey(asset.split("/"))
        if instance is None:
            entries.append(LineageEntry(asset, None, None, None))
            continue
        latest: dict[str | None, LineageEntry] = {}
        cursor = None
        while True:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions),
                limit=1000,
                cursor=cursor,
            )
            for record in result.records:  # newest first
                partition = record.partition_key
                if partition in latest:
                    continue
                latest[partition] = LineageEntry(
                    asset=asset,
                    partition=partition,
                    run_id=record.run_id,
                    materialized_at=datetime.fromtimestamp(record.timestamp, UTC).isoformat(),
                )
            if not result.has_more:
                break
            cursor = result.cursor
        entries.extend(latest[p] for p in sorted(latest, key=lambda p: p or ""))
    return entries
