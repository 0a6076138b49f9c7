"""Which asset partitions an answer read: from the tables its SQL names and the commit
messages of the lake snapshots up to the one it read.

Every write to the lake is one transaction whose commit message names the Dagster run, the
assets and the partition it materialized (see ``Commit`` in ozi_resources/warehouse.py). So
the lineage of an answer read at snapshot N is, for each asset and partition it read, the
newest commit at or before N: which run produced the data, at which snapshot and when. It
holds for time travel too, with no Dagster instance involved. Housekeeping keeps the newest
commit of every asset partition when it expires snapshots, so this history never thins out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ozi_assets.questions.answer import LineageEntry
from ozi_resources.warehouse import SnapshotRecord

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
    history: Sequence[SnapshotRecord],
    assets: Iterable[str],
    partitions: list[str] | None,
) -> list[LineageEntry]:
    """The newest commit of each (asset, partition) read, from ``history`` (the snapshots up
    to the one read, oldest first). ``partitions`` None means every partition committed."""
    latest: dict[tuple[str, str | None], SnapshotRecord] = {}
    wanted = set(assets)
    for record in history:
        for asset in record.assets:
            if asset in wanted and (partitions is None or record.partition in partitions):
                latest[(asset, record.partition)] = record
    return [
        LineageEntry(
            asset=asset,
            partition=partition,
            run_id=record.run_id,
            materialized_at=record.time.isoformat(),
            snapshot_id=record.id,
        )
        for (asset, partition), record in sorted(
            latest.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        )
    ]
