"""embeddings stage: one vector per cast, in its own lane.

Vectors go to the lake table ``cast_vectors`` (the system of record, time travel included)
and from there to the vector index: the embedded Qdrant engine's owner (``ozi serve``)
catches up from the lake's snapshots, a Qdrant server gets each batch as it commits and is
reconciled for the run's windows at its end. The asset runs in its own job (``embed_job``,
requested by ``embedding_sensor``) outside the ``lake_writer`` pool, so casts are visible in
the tables without waiting for the model, and ingestion never waits behind it. It keeps its
own stage offsets (stream.py): each run embeds the casts folded in since, as far as the
blocking checks have passed over them (stream.checked_offsets), batch by batch, and deletes
the vectors of removed casts. Following clean/casts instead, a lingering run would embed casts
before their checks had said anything about them; following the aggregates, a cast's vector
waited for their next refresh, which comes at its own pace and grows with the window
(searchable p95 45 s at 500 events/s). ``stream_job`` commits the checked offsets as soon as a
round of its blocking checks passes; an ingest run raises them in its aggregates step, which
Dagster runs only after the checks passed. The model encodes the next batch while the lane
commits the last one, so it does not wait for the lane's reads and commits. Only new or
changed casts are embedded: each vector keeps the sha256 of the text it was computed from, so
a rebuild of a window embeds nothing new.

When a blocking check of clean/casts failed for a window, its casts are held back: no vector
is computed from a window known to be wrong (Dagster's blocking only reaches within one run,
so the asset looks up the window's latest check result itself).
"""

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ozi_assets import stream, table_metadata
from ozi_assets.clean import casts
from ozi_assets.partitions import EMBEDDING_FRESHNESS, stream_partitions, window_grid
from ozi_assets.raw import report_windows
from ozi_resources.kafka import KafkaResource
from ozi_resources.vectors import EmbedderResource, VectorStoreResource, lake_digests
from ozi_resources.warehouse import Commit, WarehouseResource

WINDOW_CASTS = """
SELECT hash, fid, username, text, "timestamp", parent_hash, is_reply, window_start
FROM casts WHERE window_start = $w ORDER BY hash
"""


# Messages a batch at most (~2k casts). A batch takes what waits, up to this: a lane that
# keeps up embeds the few hundred casts that arrived since its last batch (a cast is
# searchable when its batch commits), and a lane behind takes large batches, since each one
# costs about 2-4 s besides the model (reads, the commit, the index) under a 500 events/s
# stream here. Batches of at most 2,500 messages embedded 72 casts/s there, below the 100/s
# the stream brought.
EMBED_BATCH_MESSAGES = 10_000
# A batch that leaves at most this many batches' messages behind it still keeps up (the
# keep-up priority); more is a backlog (the lower one): 40 s of a 500 events/s stream.
KEEP_UP_BATCHES = 2
# A run the embedding sensor requests (tag LINGER_TAG) keeps embedding what the stream folds in
# while it runs, and waits this long for more once caught up before it ends: under a steady
# stream the next casts arrive within seconds, and a new run would cost them a process start
# and a sensor tick (5-10 s). It starts no batch after RUN_BUDGET_S, so a new version of the
# code reaches the lane at least that often. A handover to the next run leaves the lane
# without a batch for the sensor's tick, the queue and a process importing the code (gaps of
# 20-34 s between embedding requests under a 500 events/s stream here), so the budget is long
# and the UI gets the windows' materializations every REPORT_EVERY_S instead of at the run's
# end. Whether the long run costs the stream's batches CPU at 2,000 events/s is not settled
# (README, Measured). A run launched by hand or by a backfill has no tag: it embeds up to
# where the checked offsets stood when it started, and ends.
LINGER_TAG = "ozi/linger_s"
EMBED_LINGER_S = 20.0
RUN_BUDGET_S = 1800.0
REPORT_EVERY_S = 60.0
POLL_S = 0.5  # how often a lingering run looks for newly folded casts

BLOCKING_CHECKS = [
    dg.AssetCheckKey(dg.AssetKey(["clean", "casts"]), name)
    for name in ("casts_are_valid", "messages_add_up")
]


def failed_blocking_checks(instance: dg.DagsterInstance, partition: str) -> list[str]:
    """Names of clean/casts' blocking checks whose latest result for ``partition`` failed."""
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecordStatus,
    )

    infos = instance.event_log_storage.get_asset_check_partition_info(
        BLOCKING_CHECKS, partition_keys=[partition]
    )
    return [
        info.check_key.name
        for info in infos
        if info.latest_execution_status == AssetCheckExecutionRecordStatus.FAILED
    ]


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode(
    context: dg.AssetExecutionContext,
    embedder: EmbedderResource,
    vectors: VectorStoreResource,
    texts: list[str],
    keeping_up: bool = False,
) -> np.ndarray:
    """Unit vectors of ``texts``, shape (len(texts), dimension): from the running ``ozi serve``
    when there is one (its model is warm; loading it here costs 20–40 s a run on 2 cores;
    ``keeping_up`` picks its priority, see ``serve.BulkEmbedder``), else from the model loaded
    in this process. Both use the same model files."""
    try:
        return vectors.embed_warm(embedder.model_name, texts, keeping_up)
    except ConnectionError:
        pass  # no ozi serve: load the model here
    except (OSError, ValueError) as err:
        context.log.warning(f"ozi serve did not embed ({err}); embedding in this run")
    return embedder.encode(texts)


@dataclass
class Batch:
    """One batch of the lane, its vectors on the way: the casts to embed (``todo``, the
    columns cast_vectors keeps but the model's and the vector), how many kept the vector they
    have, the hashes whose vectors go (removed casts), and the vectors of ``todo`` in order
    (shape (len(todo), dimension); None when nothing is to be embedded)."""

    todo: pd.DataFrame
    unchanged: int
    gone: list[str]
    encoded: Future[np.ndarray] | None


def start_batch(
    context: dg.AssetExecutionContext,
    embedder: EmbedderResource,
    vectors: VectorStoreResource,
    frame: pd.DataFrame,
    gone: list[str],
    stored: dict[str, str],
    pool: Executor | None = None,
    keeping_up: bool = False,
) -> Batch:
    """The casts of ``frame`` whose text changed since ``stored`` ({hash: sha256}) and their
    encoding, started on ``pool`` (None: done here before returning); ``keeping_up``: the
    batch leaves at most KEEP_UP_BATCHES batches behind it (``encode``)."""
    texts = frame["text"].fillna("")
    wanted = frame.loc[texts.str.strip() != ""].copy()
    wanted["content_sha256"] = [content_sha256(t) for t in wanted["text"]]
    changed = [
        stored.get(h) != d for h, d in zip(wanted["hash"], wanted["content_sha256"], strict=True)
    ]
    todo = wanted.loc[changed]
    encoded: Future[np.ndarray] | None = None
    if len(todo):
        job = partial(encode, context, embedder, vectors, todo["text"].tolist(), keeping_up)
        if pool is None:
            encoded = Future()
            encoded.set_result(job())
        else:
            encoded = pool.submit(job)
    return Batch(todo, len(wanted) - len(todo), gone, encoded)


def commit_batch(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    model: str,
    batch: Batch,
    commit_more: Callable[[duckdb.DuckDBPyConnection], bool] | None = None,
) -> bool:
    """Wait for the batch's vectors, then delete the vectors of its removed casts and of its
    changed ones and insert the new vectors, in one transaction. ``commit_more`` runs inside it
    first (offsets) and returns False to abandon the transaction (another run got there).
    Returns whether it committed; raises what the encoding raised."""
    todo = batch.todo
    encoded = batch.encoded.result() if batch.encoded is not None else None

    def work(conn: duckdb.DuckDBPyConnection) -> bool:
        if commit_more is not None and not commit_more(conn):
            return False
        stale = pa.table({"hash": pa.array([*todo["hash"], *batch.gone], pa.string())})
        conn.register("stale_vectors", stale)
        conn.execute(
            "DELETE FROM cast_vectors WHERE model = $m "
            "AND hash IN (SELECT hash FROM stale_vectors)",
            {"m": model},
        )
        if encoded is not None:
            rows = pa.Table.from_pandas(todo, preserve_index=False).append_column(
                "vector", pa.array(list(encoded), pa.list_(pa.float32()))
            )
            conn.register("new_vectors", rows)
            conn.execute(
                "INSERT INTO cast_vectors BY NAME SELECT hash, $m AS model, vector, "
                'content_sha256, fid, username, text, "timestamp", parent_hash, is_reply, '
                "window_start FROM new_vectors",
                {"m": model},
            )
        return True

    return warehouse.write(Commit.of(context), work)


def embed_and_commit(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    vectors: VectorStoreResource,
    frame: pd.DataFrame,
    gone: list[str],
    stored: dict[str, str],
) -> tuple[int, int, bool]:
    """``start_batch`` then ``commit_batch``, one after the other. Returns (embedded,
    unchanged, committed)."""
    batch = start_batch(context, embedder, vectors, frame, gone, stored)
    committed = commit_batch(context, warehouse, embedder.model_name, batch)
    return len(batch.todo), batch.unchanged, committed


@dataclass
class Lag:
    """How far the vectors are behind the casts: messages and casts not yet folded in, and
    the age in seconds of the oldest of those casts (by Kafka timestamp; 0 when none)."""

    messages: int
    casts: int
    seconds: float


def embedding_lag(conn: duckdb.DuckDBPyConnection, topic: str) -> Lag:
    """The embeddings stage's lag behind clean/casts, from the lake alone."""
    done = stream.load_offsets(conn, stream.EMBEDDINGS, topic)
    upstream = stream.load_offsets(conn, "clean/casts", topic)
    ranges = stream.next_batch(done, upstream, max_messages=2**62)
    if not ranges:
        return Lag(0, 0, 0.0)
    row = conn.execute(
        "SELECT count(*), min(epoch_ms(r.kafka_timestamp)) FROM cast_adds a "
        "JOIN raw_events r ON r.kafka_partition = a.source_position >> 40 "
        "AND r.kafka_offset = a.source_position & 1099511627775 "
        f"WHERE {stream.position_filter(ranges, 'a.source_position')}"
    ).fetchone()
    count, oldest_ms = row if row else (0, None)
    seconds = max(time.time() - oldest_ms / 1000, 0.0) if oldest_ms else 0.0
    return Lag(sum(b - a for a, b in ranges.values()), int(count), round(seconds, 1))


def held_back_windows(instance: dg.DagsterInstance, windows: list[str]) -> set[str]:
    """Windows whose latest blocking check of clean/casts failed."""
    return {w for w in windows if failed_blocking_checks(instance, w)}


@dataclass
class _Pending:
    """A batch of ``catch_up`` read and encoding, not yet committed: the stage's offsets it was
    read from and those it moves them to, its casts' hashes and their window keys."""

    batch: Batch
    done: stream.Offsets
    after: stream.Offsets
    hashes: list[str]
    windows: set[str]


def catch_up(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    vectors: VectorStoreResource,
    topic: str,
    linger_s: float = 0.0,
    budget_s: float = RUN_BUDGET_S,
    report: Callable[[set[str], int], None] | None = None,
) -> dict[str, Any]:
    """Embed the casts folded into clean/casts since the embeddings stage's offsets, as far
    as the blocking checks have passed over them (stream.checked_offsets), batch by batch
    (EMBED_BATCH_MESSAGES messages each), each batch's vectors with the new offsets in
    one transaction, the next batch read and encoding (on one thread) while the last one
    commits; delete the vectors of removed casts. Casts of a window whose blocking
    check failed are held back (a rebuild of that window embeds them once it passes).

    With ``linger_s`` 0 the run embeds up to where the checked offsets stood when it started.
    With ``linger_s`` > 0 it follows them as they move, and once caught up waits up to
    ``linger_s`` seconds for more (polling every POLL_S); it starts no batch after
    ``budget_s`` seconds; every REPORT_EVERY_S it calls ``report(windows, embedded)`` with the
    window keys its batches touched since the last call and the casts embedded in all. Returns
    counts (embedded, unchanged, deleted, held_back, batches, lingered_s) and the window keys
    touched."""
    model = embedder.model_name
    totals = {"embedded": 0, "unchanged": 0, "deleted": 0, "held_back": 0, "batches": 0}
    windows: set[str] = set()
    grid = window_grid()
    if not warehouse.exists():
        return {**totals, "lingered_s": 0.0, "windows": []}
    with warehouse.reader() as conn:
        upstream = stream.checked_offsets(conn, topic)
    started = last_report = time.monotonic()
    unreported: set[str] = set()
    idle_since: float | None = None
    lingered = 0.0
    pending: _Pending | None = None  # read and encoding while the one before commits

    def finish() -> bool:
        """Commit the pending batch with its offsets; False when another run committed them
        first (the batches read past them are then stale)."""
        nonlocal pending, windows, unreported
        assert pending is not None
        ahead, pending = pending, None
        batch = ahead.batch

        def advance(conn: duckdb.DuckDBPyConnection) -> bool:
            if stream.load_offsets(conn, stream.EMBEDDINGS, topic) != ahead.done:
                return False  # another run committed this batch first
            stream.save_offsets(conn, stream.EMBEDDINGS, topic, ahead.after)
            return True

        if not commit_batch(context, warehouse, model, batch, advance):
            return False
        totals["embedded"] += len(batch.todo)
        totals["unchanged"] += batch.unchanged
        totals["deleted"] += len(batch.gone)
        totals["batches"] += 1
        windows |= ahead.windows
        unreported |= ahead.windows
        with warehouse.reader() as conn:
            problem = vectors.after_batch(conn, model, embedder.dimension, ahead.hashes, batch.gone)
        if problem:
            context.log.warning(problem)
        return True

    # One thread encodes: the next batch's vectors are computed while the lane reads, commits
    # and hands the last batch to the index (2-4 s a batch under a 500 events/s stream), so
    # the model does not wait for them (it waited 21% of the time, with a fifth of the 2 cores
    # idle, when each batch was read, embedded and committed in turn).
    pool = ThreadPoolExecutor(1, thread_name_prefix="ozi-encode")
    try:
        while True:
            if (
                report is not None
                and unreported
                and time.monotonic() - last_report >= REPORT_EVERY_S
            ):
                report(unreported, totals["embedded"])
                unreported, last_report = set(), time.monotonic()
            with warehouse.reader() as conn:
                if linger_s > 0:
                    upstream = stream.checked_offsets(conn, topic)
                done = (
                    stream.load_offsets(conn, stream.EMBEDDINGS, topic)
                    if pending is None
                    else pending.after
                )
                ranges = stream.next_batch(done, upstream, EMBED_BATCH_MESSAGES)
                if ranges and linger_s > 0 and time.monotonic() - started >= budget_s:
                    break  # the budget is spent: the sensor's next run takes the rest
                if ranges:
                    where = stream.position_filter(ranges, "a.source_position")
                    frame = conn.execute(
                        'SELECT c.hash, c.fid, c.username, c.text, c."timestamp", '
                        "c.parent_hash, c.is_reply, c.window_start FROM casts c WHERE c.hash IN "
                        f"(SELECT a.hash FROM cast_adds a WHERE {where}) ORDER BY c.hash"
                    ).df()
                    gone = [
                        row[0]
                        for row in conn.execute(
                            f"SELECT a.target_hash FROM cast_removes a WHERE {where}"
                        ).fetchall()
                    ]
                    conn.register(
                        "batch_hashes", pa.table({"hash": pa.array(frame["hash"], pa.string())})
                    )
                    # A cast of the pending batch is not stored yet: were it in this batch too,
                    # it would be embedded twice, and its second commit replaces the first.
                    stored = dict(
                        conn.execute(
                            "SELECT hash, content_sha256 FROM cast_vectors WHERE model = $m "
                            "AND hash IN (SELECT hash FROM batch_hashes)",
                            {"m": model},
                        ).fetchall()
                    )
            if not ranges:
                if pending is not None:
                    finish()
                    continue
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                if linger_s <= 0 or now - idle_since >= linger_s or now - started >= budget_s:
                    break
                try:
                    time.sleep(POLL_S)
                except dg.DagsterExecutionInterruptedError:
                    break  # stopped (`make dev` ends) while waiting: nothing is half done
                lingered += POLL_S
                continue
            idle_since = None
            keys: set[str] = set()
            if len(frame):
                keys = {
                    ts.strftime("%Y-%m-%d-%H:%M")
                    for ts in pd.to_datetime(frame["window_start"], utc=True).unique()
                } & set(grid.keys)
                held = held_back_windows(context.instance, sorted(keys))
                if held:
                    keep = ~frame["window_start"].map(
                        lambda ts: pd.Timestamp(ts).strftime("%Y-%m-%d-%H:%M")
                    ).isin(list(held))
                    totals["held_back"] += int((~keep).to_numpy().sum())
                    frame = frame.loc[keep]
                keys -= held
            # A batch that leaves at most KEEP_UP_BATCHES batches for the next keeps up with the
            # stream; one that leaves more is a backlog's, embedded at a lower priority
            # (serve.BulkEmbedder), so that the tables come first when the model cannot keep up.
            # Not only the batch that takes everything: at 500 events/s one slow batch left a
            # little more than a batch behind it, the next went to the lower priority, and the
            # lane never caught up again (in one run the niced-by-5 child did most of the
            # embedding). The bound is not yet shown to help: measured since only on a CPU
            # where the model cannot keep up at any priority.
            left = stream.left_after(done, ranges, upstream)
            keeping_up = left <= KEEP_UP_BATCHES * EMBED_BATCH_MESSAGES
            batch = start_batch(context, embedder, vectors, frame, gone, stored, pool, keeping_up)
            if pending is not None and not finish():
                continue  # read past offsets another run moved: read again from theirs
            pending = _Pending(
                batch, done, stream.advanced(done, ranges), frame["hash"].tolist(), keys
            )
        if pending is not None:
            finish()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return {**totals, "lingered_s": lingered, "windows": sorted(windows)}


@dg.asset(
    key=["embeddings", "casts"],
    deps=[casts],
    partitions_def=stream_partitions,
    group_name="embeddings",
    freshness_policy=EMBEDDING_FRESHNESS,
    kinds={"ducklake", "qdrant", "pytorch"},
)
def cast_embeddings(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    vectors: VectorStoreResource,
    kafka: KafkaResource,
) -> dg.MaterializeResult:
    """Vectors of casts (all-MiniLM-L6-v2 by default, 384 floats, unit length, cosine) in the
    lake table ``cast_vectors`` (hash, model, vector, content_sha256 and the cast's fid,
    username, text, timestamp, parent_hash, is_reply, window_start), and in the vector index
    (collection ``casts__<model>``) with the same fields as payload. Casts with empty text
    get no vector; a removed cast loses its vector. Runs in its own job (``embed_job``), so
    casts never wait for vectors. Source: clean/casts."""
    started = time.perf_counter()
    model = embedder.model_name
    dimension = embedder.dimension  # from the model's config: no model load for an idle run
    linger_s = float(context.run.tags.get(LINGER_TAG, 0) or 0)
    grid = window_grid()
    of_model = "model = '" + model.replace("'", "''") + "'"

    def report(windows: set[str], embedded: int) -> None:
        # a lingering run lasts up to RUN_BUDGET_S: the UI sees its windows before it ends
        tables = table_metadata.by_window(warehouse, grid, windows, "cast_vectors", where=of_model)
        report_windows(
            context,
            [context.asset_key],
            grid,
            {grid.index_of(k) for k in windows},
            {"embedded": dg.MetadataValue.int(embedded)},
            lambda _, key: tables[key],
            include_own=True,
            description="embedded so far by a run that follows the stream",
        )

    summary = catch_up(context, warehouse, embedder, vectors, kafka.topic, linger_s, report=report)
    rebuilt: dict[str, int] = {}
    if stream.run_mode(context) == stream.REBUILD:
        failed = failed_blocking_checks(context.instance, context.partition_key)
        if failed:
            raise dg.Failure(
                description=(
                    f"blocking checks of clean/casts failed for window "
                    f"{context.partition_key}: {', '.join(failed)}; fix the data and re-run "
                    "the window"
                )
            )
        window_start = window_grid().start_of(context.partition_key)
        with warehouse.reader() as conn:
            frame = conn.execute(WINDOW_CASTS, {"w": window_start}).df()
            stored = lake_digests(conn, model, int(window_start.timestamp()))
        gone = sorted(set(stored) - set(frame["hash"]))
        embedded, unchanged, _ = embed_and_commit(
            context, warehouse, embedder, vectors, frame, gone, stored
        )
        rebuilt = {"embedded": embedded, "unchanged": unchanged, "deleted": len(gone)}
        summary["windows"] = sorted(set(summary["windows"]) | {context.partition_key})
    seconds = time.perf_counter() - started
    with warehouse.reader() as conn:
        if vectors.server:
            index: dict[str, Any] = {}
            for key in summary["windows"]:
                index[key] = vectors.after_commit(
                    conn, model, dimension, int(window_grid().start_of(key).timestamp())
                )
        else:
            index = vectors.after_commit(conn, model, dimension, None)
        total = conn.execute(
            "SELECT count(*) FROM cast_vectors WHERE model = $m", {"m": model}
        ).fetchone()
        lag = embedding_lag(conn, kafka.topic)
    # The window's vectors of this model: a vector of another model is not this asset's.
    tables = table_metadata.by_window(
        warehouse,
        grid,
        {context.partition_key, *summary["windows"]},
        "cast_vectors",
        where=of_model,
    )
    report_windows(
        context,
        [context.asset_key],
        grid,
        {grid.index_of(k) for k in summary["windows"]},
        {"embedded": dg.MetadataValue.int(summary["embedded"])},
        lambda _, key: tables[key],
    )
    metadata = {
        **tables[context.partition_key],
        "mode": dg.MetadataValue.text(stream.run_mode(context)),
        "embedded": dg.MetadataValue.int(summary["embedded"] + rebuilt.get("embedded", 0)),
        "unchanged": dg.MetadataValue.int(summary["unchanged"] + rebuilt.get("unchanged", 0)),
        "deleted": dg.MetadataValue.int(summary["deleted"] + rebuilt.get("deleted", 0)),
        "held_back": dg.MetadataValue.int(summary["held_back"]),
        "batches": dg.MetadataValue.int(summary["batches"]),
        "lingered_s": dg.MetadataValue.float(summary["lingered_s"]),
        "vectors_in_lake": dg.MetadataValue.int(int(total[0]) if total else 0),
        "lag_casts": dg.MetadataValue.int(lag.casts),
        "lag_seconds": dg.MetadataValue.float(lag.seconds),
        "index": dg.MetadataValue.json(index),
        "model": dg.MetadataValue.text(model),
        "seconds": dg.MetadataValue.float(round(seconds, 2)),
    }
    return dg.MaterializeResult(metadata=metadata)
