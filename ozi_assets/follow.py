"""``stream_job``: one run that follows the stream, micro-batch after micro-batch.

Why a run that stays: on 2 cores a Dagster run spends about ten seconds before its first step
(the sensor's tick, the queue, a new process importing the code, the lake attached). With one
run per micro-batch, a message waited for the next run's start as well as its steps: casts p95
18 s at 500 events/s (bench/results.json). A run of ``stream_job`` pays that once. Its one op
holds the lake_writer slot and loops: raw → clean (casts first) a batch at a time (when
``batch_min_messages`` wait or ``batch_every_s`` after the last, with all that came), every
few seconds the checks, then the aggregates, every minute a compaction of the small files the
batches left (housekeeping.compact_small_files), polling the topic's high watermarks every
``POLL_S`` when nothing is new. It ends when no message came for ``linger_s``, when it has run
``budget_s`` (so the UI's materializations and a new version of the code arrive at least that
often), or when a run of ``ingest_job`` (a backfill, a materialization from the UI) waits for
the writer slot; ``kafka_window_sensor`` starts the next one when messages wait again.

The loop calls the stage functions ``ingest_job``'s assets call (raw.catch_up with
clean.fold_batches inside each raw batch's transaction, aggregates.catch_up), so it writes the
same rows and offsets as incremental runs (tested). A batch of raw and clean rows is one lake
transaction with both stages' offsets: a run killed anywhere re-does at most the batch that did
not commit.

Checks: every message is checked (checks.check_batch) before the aggregates fold it in or the
embeddings embed it. A round of the checks runs every few seconds (``CHECK_EVERY_S``, longer
when a round costs more) over everything the clean tables hold that no round has passed: the
batches since the last round, and whatever an earlier run left unchecked (it may have died
between its commit and its checks, or failed them). It runs on a thread of its own, on a
reader, while the batches go on; when it passes, the loop commits the offsets it reached as
the checked stage's (stream.CHECKED), which the embedding lane follows, and the next refresh
of the aggregates (at most every ``AGGREGATE_EVERY_S``, longer when a refresh costs more)
folds in up to them and no further. So a failing batch keeps failing every run until its
window is rebuilt, as a blocking asset check stops ``ingest_job``; casts are not held back
behind checks that only the later stages need, and vectors are not held back behind the
aggregates. The refresh runs on a thread of its own too, so the batches do not wait for it:
it computes what it writes in a transaction that only reads, then writes it in a short one
(``_aggregate`` says why). Between two batches the loop does at most one of the report and the
compaction, and no compaction while a refresh is under way (both rewrite the aggregates'
files).

What the UI sees: at most every ``REPORT_EVERY_S``, and when the run ends (also by an error), a
materialization of each asset for each window it changed since the last report, and each
check's evaluation for each window (a failure is kept over later passes until reported, and a
blocking failure is logged at once).
"""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from ozi_assets import aggregates, checks, clean, housekeeping, raw, stream
from ozi_assets.jobs import has_runs
from ozi_assets.partitions import window_grid
from ozi_resources.kafka import KafkaResource
from ozi_resources.warehouse import Commit, WarehouseError, WarehouseResource
from ozi_resources.windows import WindowGrid

POLL_S = 0.25  # how often an idle loop reads the high watermarks (~15 ms a read)
WAIT_SLICE_S = 1.0  # how often a loop waiting to fill a batch reads them
# A batch starts when BATCH_MIN_MESSAGES wait, or BATCH_EVERY_S after the last batch began,
# whichever comes first (count or delay, as the sensors request runs). A batch costs mostly
# the same whatever its size (the reads of offsets and duplicates, the commit: 0.5-1 s at
# 500 events/s here, against 0.02 ms a message): a loop that starts the next batch as soon as
# one ends keeps a core busy with batches of a few hundred messages, and the embedding lane
# waits for that core (searchable p95 36 s at 500 events/s, 19 s with the delay in one run,
# 39 s in another: the figure varies much between runs, see the README). A fast
# stream fills a batch before the delay, so it does not wait for it. One message after a
# pause starts its batch at once.
BATCH_EVERY_S = 2.0
BATCH_MIN_MESSAGES = 1_000
# A turn of the loop reads at most this many messages (in Kafka batches of batch_messages):
# the checks and the aggregates between two turns then fold in at most this many, and their
# memory stays bounded however long the backlog is. The 1M-event replay read in one turn
# peaked at 1,551 MiB (the checks' one round over 1M rows, then the aggregates' one fold);
# in turns of 200k at 1,095-1,121 MiB. Outside the bench the 200k runs took 28, 28 and 38 s
# (one turn: 27 s), turns of 50k 38 s (1,090 MiB, the window's aggregates refreshed 5
# times), of 400k 32 s (1,028 MiB): the spread between runs is as large as the sizes' own.
TURN_MESSAGES = 200_000
# A round of the checks starts at most this often while messages keep coming (and at once when
# the stream pauses), and at most once in CHECK_COST_FACTOR times its last cost: it runs on a
# thread beside the batches, but on the same 2 cores as the batches and the embedding lane.
# The casts' vectors wait for it (the embeddings follow the checked offsets). Every 2 s with
# the aggregates every 5 s, the checks and the aggregates took 108 s of a 320 s run at 500
# events/s against 38 s with both every ~10 s (searchable p95 35.8 s against 18.9 s; both
# runs on a machine shared with other work, so a hint, not a measure).
CHECK_EVERY_S = 3.0
CHECK_COST_FACTOR = 3.0
# The aggregates fold in what the checks passed at most this often while messages keep coming
# (and at once when the stream pauses): their cost is mostly per refresh, not per row (a
# refresh re-reads each window it touches), and neither casts nor vectors wait for them.
AGGREGATE_EVERY_S = 10.0
# ... and at most once in this many times their last cost, so that a refresh that grows with
# its windows (1-2 s at 2,000 events/s) is under way at most a quarter of the time, on the 2
# cores the batches and the embedding lane share. It runs on its own thread: in the loop's
# own thread a refresh stalled the batches for its time, and casts p95 by minute grew with
# the window at 2,000 events/s (7.9 s in the first minute, 15.8 s in the tenth).
AGGREGATE_COST_FACTOR = 3.0
# Materializations and check evaluations at most this often: each report reads every table's
# row counts and previews for the windows changed (about 10% of the loop at every 10 s).
REPORT_EVERY_S = 30.0
# Compaction of the small files the batches leave, at most this often while batches commit.
# Each batch writes a file a table, and every later batch reads them all: over a 10-minute
# stream a batch's reads grew with the number of batches before it.
COMPACT_EVERY_S = 60.0
RAW_KEY = raw.farcaster_events.key
WRITER_WANTED_EVERY_S = 2.0  # how often the loop asks the run queue for a waiting writer
# The jobs that write the lake besides this one (the lake_writer pool) that a person starts
# (a backfill, a materialization from the UI): when a run of one waits in the queue, the loop
# ends so that it gets the slot. The hourly housekeeping is not one of them: it waits for the
# run's budget (at most budget_s) instead. Giving way to it cost the next run's start, 35 s
# of casts p95 in the minute it came at 2,000 events/s, once an hour.
WRITING_JOBS = ("ingest_job",)


class FollowConfig(dg.Config):
    """How long a ``stream_job`` run follows the stream."""

    linger_s: float = Field(
        default=20.0, description="End after this many seconds with no new message."
    )
    budget_s: float = Field(
        default=600.0, description="Start no batch after this many seconds of running."
    )
    batch_every_s: float = Field(
        default=BATCH_EVERY_S,
        description="Start a batch of fewer than batch_min_messages messages at most this "
        "often (seconds between batch starts).",
    )
    batch_min_messages: int = Field(
        default=BATCH_MIN_MESSAGES,
        description="Start a batch at once when this many messages wait.",
    )


@dataclass
class Changes:
    """What the loop changed since its last report."""

    windows: dict[str, set[int]] = field(default_factory=dict)  # stage → grid indices
    messages: dict[str, int] = field(default_factory=dict)  # stage → messages folded in
    evaluations: dict[tuple[str, str], dg.AssetCheckEvaluation] = field(default_factory=dict)

    def add(self, stage: str, windows: set[int], messages: int) -> None:
        self.windows.setdefault(stage, set()).update(windows)
        self.messages[stage] = self.messages.get(stage, 0) + messages

    def evaluated(self, evaluation: dg.AssetCheckEvaluation) -> None:
        """Keep ``evaluation`` for the report, unless a failure of the same check and window
        is waiting to be reported: each covers one batch, and a pass must not hide it."""
        key = (evaluation.check_name, evaluation.partition or "")
        kept = self.evaluations.get(key)
        if kept is None or kept.passed:
            self.evaluations[key] = evaluation

    def empty(self) -> bool:
        return not self.evaluations and not any(self.windows.values())


@dataclass
class Totals:
    """What the whole run did, for its log and the op's output metadata."""

    batches: int = 0
    messages: int = 0
    dead_lettered: int = 0
    late: int = 0
    aggregate_refreshes: int = 0
    batch_seconds: list[float] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)  # phase → seconds in all
    stopped_because: str = ""

    def timed(self, phase: str, started: float) -> None:
        """Add the seconds since ``started`` (time.perf_counter) to ``phase``."""
        self.add(phase, time.perf_counter() - started)

    def add(self, phase: str, seconds: float) -> None:
        """Add ``seconds`` to ``phase`` (one spent on another thread, timed there)."""
        self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + seconds


def waiting(committed: dict[int, int], high: dict[int, int]) -> int:
    """Messages between the raw stage's offsets ``committed`` and the high watermarks
    ``high`` (both Kafka partition → offset)."""
    return sum(max(0, hw - committed.get(p, 0)) for p, hw in high.items())


def _writer_wanted(instance: dg.DagsterInstance) -> bool:
    """Whether a run of another job that writes the lake waits in the queue: it needs the
    writer slot this run holds."""
    return any(has_runs(instance, job) for job in WRITING_JOBS)


def _report(
    context: dg.OpExecutionContext,
    warehouse: WarehouseResource,
    topic: str,
    grid: WindowGrid,
    c: Changes,
) -> None:
    """Log a materialization of each asset for each window in ``c`` it changed, with the
    window's table metadata, then the checks' evaluations."""

    for stage, windows in sorted(c.windows.items()):
        partitions = {grid.keys[w] for w in windows}
        if not partitions:
            continue
        if stage == stream.RAW:
            targets = [(RAW_KEY, raw.window_metadata(warehouse, topic, grid, partitions))]
        elif stage == stream.AGGREGATES:
            by_table = aggregates.window_metadata(warehouse, grid, partitions)
            targets = [(k, by_table[k.path[-1]]) for k in aggregates.AGGREGATE_KEYS]
        else:
            meta = clean.window_metadata(warehouse, grid, partitions, clean.STAGES[stage][1])
            targets = [(dg.AssetKey(stage.split("/")), meta)]
        for asset_key, by_window in targets:
            for key in sorted(partitions):
                context.log_event(
                    dg.AssetMaterialization(
                        asset_key=asset_key,
                        partition=key,
                        description="followed by stream_job",
                        metadata={
                            **by_window[key],
                            "mode": dg.MetadataValue.text("follow"),
                            "messages_folded_in_all_windows": dg.MetadataValue.int(
                                c.messages.get(stage, 0)
                            ),
                        },
                    )
                )
    for evaluation in c.evaluations.values():
        context.log_event(evaluation)


def _batch(
    context: dg.OpExecutionContext,
    kafka: KafkaResource,
    warehouse: WarehouseResource,
    grid: WindowGrid,
    changes: Changes,
    totals: Totals,
    first_batch: bool,
    starts: dict[int, int],
    high: dict[int, int],
) -> raw.CatchUp:
    """Read what is new up to the high watermarks ``high`` (Kafka partition → offset, just read by
    the loop with the log start offsets ``starts``), at most TURN_MESSAGES of it (the next
    turn reads on), and fold it into the clean tables, raw and clean in one transaction a
    batch (one commit, where ingest_job's steps make four). The run's ``first_batch`` also
    folds in what an earlier run left in raw_events. Returns what the raw stage read."""
    run_id = context.run_id
    started = time.perf_counter()

    def fold(
        conn: duckdb.DuckDBPyConnection, appended: raw.BatchResult
    ) -> dict[str, tuple[int, set[int]] | None]:
        return clean.fold_batches(
            conn, tuple(clean.STAGES), kafka.topic, kafka.batch_messages, appended.ranges
        )

    summary = raw.catch_up(
        context,
        kafka,
        warehouse,
        grid,
        Commit(run_id, (RAW_KEY.to_user_string(), *clean.STAGES)),
        also=fold,
        high=high,
        starts=starts,
        max_messages=TURN_MESSAGES,
    )
    changes.add(stream.RAW, summary.windows, summary.messages)
    leftovers = first_batch
    for folds in summary.also:
        for stage, result in folds.items():
            if result is not None:
                changes.add(stage, clean.window_indices(grid, result[1]), result[0])
                # a full batch: the stage was behind the raw stage by more than this batch
                leftovers = leftovers or result[0] >= kafka.batch_messages
    if leftovers:
        for stage in clean.STAGES:
            folded, starts = clean.fold_in(
                warehouse,
                context,
                stage,
                kafka.topic,
                kafka.batch_messages,
                Commit(run_id, (stage,)),
            )
            changes.add(stage, clean.window_indices(grid, starts), folded)
    totals.timed("raw and clean", started)
    return summary


def _compact(context: dg.OpExecutionContext, warehouse: WarehouseResource, totals: Totals) -> None:
    """Compact the small files of the batches since the last compaction. A compaction that
    fails is logged and left for the next one: the rows are committed either way."""
    phase = time.perf_counter()
    try:
        housekeeping.compact_while_streaming(warehouse, context.run_id)
    except duckdb.Error as err:
        context.log.warning(f"compaction failed, left for the next one: {err}")
    totals.timed("compaction", phase)


@dataclass
class Checked:
    """What one round of the checks found (checks.check_batch)."""

    evaluations: list[dg.AssetCheckEvaluation]
    reached: stream.Offsets  # the clean stages' offsets checked up to; {}: nothing to check
    seconds: float
    mark: checks.FeedMark  # where the round read: the next round's change feed starts there


@dataclass
class Folded:
    """What one refresh of the aggregates folded in (``_aggregate``)."""

    windows: list[int]  # grid indices of the windows refreshed
    messages: int
    seconds: float


def _aggregate(
    warehouse: WarehouseResource,
    commit: Commit,
    grid: WindowGrid,
    topic: str,
    upto: stream.Offsets | None,
) -> Folded:
    """Fold into the aggregates what the checks passed, up to ``upto``. It runs on the
    aggregator thread beside the batches, in two steps on one writer connection: the refresh
    is computed in a transaction that only reads (aggregates.prepare: seconds at 2,000
    events/s, growing with the window), then written in a short one (committed as
    ``commit``). A SQLite catalog fails the commit of a transaction when another writer
    committed after its first read, so one that read for seconds beside the batches lost
    every attempt. The write touches the aggregates' tables, which the batches do not, and
    the aggregates stage's own rows of the offsets; a commit that loses anyway is retried
    (warehouse.write_on)."""
    started = time.perf_counter()
    with warehouse.writer() as conn:
        conn.execute("BEGIN TRANSACTION")  # one snapshot for every read of the refresh
        try:
            prepared = aggregates.prepare(conn, grid, topic, upto)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")  # nothing of the lake's was written: temp tables only
        if prepared is None:
            return Folded([], 0, time.perf_counter() - started)
        written = warehouse.write_on(
            conn, commit, lambda c: aggregates.commit_prepared(c, topic, prepared)
        )
    if not written:
        return Folded([], 0, time.perf_counter() - started)
    return Folded(prepared.windows, prepared.messages, time.perf_counter() - started)


def _check(
    warehouse: WarehouseResource, topic: str, grid: WindowGrid, mark: checks.FeedMark | None
) -> Checked:
    """Check every message the clean tables hold that no round of the checks has passed (the
    batches since the last round, and whatever an earlier run left unchecked), on a reader
    at the newest snapshot, in one read transaction (every statement of the round reads that
    snapshot). ``mark``: the round before's (None: the run's first round). It only reads,
    so it runs on the checker thread beside the next batches (the reader is its own DuckDB
    instance; no commit of the writer waits for it)."""
    started = time.perf_counter()
    with warehouse.reader() as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            floor = stream.checked_offsets(conn, topic)
            evaluations, reached, here = checks.check_batch(conn, topic, grid, floor, mark)
        finally:
            conn.execute("ROLLBACK")  # nothing was written
    return Checked(evaluations, reached, time.perf_counter() - started, here)


def _unfolded(warehouse: WarehouseResource, topic: str) -> stream.Offsets | None:
    """The checked offsets when the aggregates have not folded in all the checks passed (a
    run that ended between the two, a schema upgrade that sent the aggregates back to the
    start), else None: the run's first refresh folds in up to them."""
    if not warehouse.exists():
        return None
    try:
        with warehouse.reader() as conn:
            checked = stream.checked_offsets(conn, topic)
            done = stream.load_offsets(conn, stream.AGGREGATES, topic)
    except (WarehouseError, duckdb.CatalogException):  # the lake's tables are not made yet
        return None
    return checked if stream.next_batch(done, checked, max_messages=1) else None


def _record(
    context: dg.OpExecutionContext, checked: Checked, changes: Changes, totals: Totals
) -> None:
    """Keep ``checked``'s evaluations for the report. Raises dg.Failure when a blocking check
    failed (logged at once): the aggregates must not fold its messages in."""
    totals.phase_seconds["checks"] = totals.phase_seconds.get("checks", 0.0) + checked.seconds
    for e in checked.evaluations:
        changes.evaluated(e)
    failed = [e for e in checked.evaluations if e.blocking and not e.passed]
    if failed:
        for e in failed:
            context.log_event(e)
        raise dg.Failure(
            description="blocking check failed, the aggregates did not fold its messages in: "
            + "; ".join(f"{e.check_name} on {e.partition}: {e.description}" for e in failed)
        )


@dg.op(
    pool="lake_writer",
    description="Follows the topic: raw → clean batch after batch, checks → aggregates every "
    "few seconds, while messages keep coming (stream.py, follow.py).",
)
def follow_stream(
    context: dg.OpExecutionContext,
    config: FollowConfig,
    kafka: KafkaResource,
    warehouse: WarehouseResource,
) -> dg.Output[None]:
    """Follow the stream until it pauses for ``config.linger_s``, ``config.budget_s`` has
    passed, or another writer waits. Output metadata: batches, messages, dead letters, late
    messages, aggregate refreshes, the batches' seconds (p50, max), seconds by phase and why
    the loop stopped. Raises dg.Failure when a blocking check fails, and what the stages
    raise (LogResetError, KafkaReadError, WarehouseError); what was committed before is
    reported either way."""
    grid = window_grid()
    totals = Totals()
    changes = Changes()
    started = last_message = last_report = last_asked = last_compact = time.monotonic()
    last_batch = started - config.batch_every_s  # when the last batch with messages started
    uncompacted = False  # batches committed since the last compaction
    last_aggregate, aggregate_every = 0.0, AGGREGATE_EVERY_S
    last_check, check_every = 0.0, CHECK_EVERY_S  # when the last round of checks started
    pending = False  # clean rows the checks have not seen (a run's first batch: maybe)
    # checked offsets the aggregates have not folded in
    unfolded: stream.Offsets | None = _unfolded(warehouse, kafka.topic)
    committed: dict[int, int] | None = None  # the raw stage's offsets after the last batch
    agg_commit = Commit(
        context.run_id, tuple(k.to_user_string() for k in aggregates.AGGREGATE_KEYS)
    )
    check_commit = Commit(context.run_id, ())  # offsets only: no asset's rows change

    # The checks run on their own thread while the batches go on: they only read, and the
    # refresh that follows them stalled the batches for their time too (7% of the loop at
    # 2,000 events/s). The aggregates then fold in only what the checks reached.
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ozi-checks")
    checking: Future[Checked] | None = None
    feed_mark: checks.FeedMark | None = None  # where the last round read (its change feed)

    def passed(checked: Checked) -> None:
        """Record a round of the checks (raises dg.Failure on a blocking failure) and commit
        the offsets it reached as the checked stage's, at once: the embedding lane follows
        them, so a cast's vector waits for its checks and not for the next refresh of the
        aggregates (which grows with the window: searchable p95 45 s at 500 events/s when
        the vectors waited for it too)."""
        nonlocal check_every, unfolded, feed_mark
        _record(context, checked, changes, totals)
        check_every = max(CHECK_EVERY_S, CHECK_COST_FACTOR * checked.seconds)
        if checked.reached:
            committing = time.perf_counter()
            reached = checked.reached
            warehouse.write(
                check_commit,
                lambda conn: stream.raise_offsets(conn, stream.CHECKED, kafka.topic, reached),
            )
            totals.timed("checked offsets", committing)
            unfolded = reached
        feed_mark = checked.mark

    # The refresh of the aggregates runs on a thread of its own as well (``_aggregate``): the
    # batches go on meanwhile.
    aggregator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ozi-aggregates")
    aggregating: Future[Folded] | None = None

    def aggregate() -> None:
        """Start folding into the aggregates what the checks passed (``unfolded``)."""
        nonlocal unfolded, aggregating
        upto, unfolded = unfolded, None
        aggregating = aggregator.submit(_aggregate, warehouse, agg_commit, grid, kafka.topic, upto)

    def aggregated(folded: Folded) -> None:
        """Record a refresh that ended (in the loop's thread: the report reads ``changes``)."""
        nonlocal aggregate_every, last_aggregate
        changes.add(stream.AGGREGATES, set(folded.windows), folded.messages)
        totals.aggregate_refreshes += 1
        totals.add(stream.AGGREGATES, folded.seconds)
        aggregate_every = max(AGGREGATE_EVERY_S, AGGREGATE_COST_FACTOR * folded.seconds)
        last_aggregate = time.monotonic()

    def finish_aggregate() -> None:
        """Wait for the refresh under way, if any, and record it (raises what it raised)."""
        nonlocal aggregating
        if aggregating is not None:
            running, aggregating = aggregating, None
            aggregated(running.result())

    try:
        while True:
            starts, high = kafka.log_bounds()
            new = committed is None or waiting(committed, high) > 0
            # Messages wait, but fewer than batch_min_messages, and the last batch started
            # less than batch_every_s ago: let more come, reading the log's ends again every
            # WAIT_SLICE_S, so that batch_min_messages reached meanwhile starts the batch. Not
            # every POLL_S: each read of the log's ends opens a consumer (tens of ms of CPU),
            # and polling that often while waiting took CPU from the embedding lane. Not one
            # sleep to the delay's end either: a read that saw half of a send slept through
            # the rest of a 60 s delay while whole sends came.
            try:
                while (
                    committed is not None
                    and 0 < waiting(committed, high) < config.batch_min_messages
                    and (rest := last_batch + config.batch_every_s - time.monotonic()) > 0
                ):
                    time.sleep(min(rest, WAIT_SLICE_S))
                    starts, high = kafka.log_bounds()
            except dg.DagsterExecutionInterruptedError:
                totals.stopped_because = "stopped while waiting"
                break  # nothing is half done
            now = time.monotonic()
            if new:
                batch_started = time.perf_counter()
                summary = _batch(
                    context,
                    kafka,
                    warehouse,
                    grid,
                    changes,
                    totals,
                    committed is None,
                    starts,
                    high,
                )
                pending = pending or committed is None or summary.messages > 0
                committed = summary.committed or committed or {}
                if summary.messages:
                    last_message = last_batch = now
                    totals.batches += 1
                    totals.messages += summary.messages
                    totals.dead_lettered += summary.dead_lettered
                    totals.late += sum(summary.late.values())
                    totals.batch_seconds.append(time.perf_counter() - batch_started)
                    uncompacted = True
            now = time.monotonic()
            if checking is not None and checking.done():
                finished, checking = checking.result(), None
                passed(finished)  # a commit of a few rows
            if aggregating is not None and aggregating.done():
                finish_aggregate()
            if (
                aggregating is None
                and unfolded is not None
                and (not new or time.monotonic() - last_aggregate >= aggregate_every)
            ):
                aggregate()
            # At most one of the report and the compaction between two batches: each stalls
            # the batches for a second or more at 2,000 events/s, and falling due together
            # they stalled them for their sum (casts p95 by minute up to 18 s). One a turn,
            # the other the next turn, after the next batch. No compaction while a refresh
            # is under way: it would rewrite the files the refresh deletes from, and one of
            # the two would lose its commit.
            if not changes.empty() and now - last_report >= REPORT_EVERY_S:
                phase = time.perf_counter()
                _report(context, warehouse, kafka.topic, grid, changes)
                totals.timed("report", phase)
                changes, last_report = Changes(), now
            elif uncompacted and aggregating is None and now - last_compact >= COMPACT_EVERY_S:
                _compact(context, warehouse, totals)
                last_compact, uncompacted = time.monotonic(), False
            if (
                checking is None
                and pending
                and (not new or time.monotonic() - last_check >= check_every)
            ):
                checking = checker.submit(_check, warehouse, kafka.topic, grid, feed_mark)
                pending = False
                last_check = time.monotonic()
            if now - started >= config.budget_s:
                totals.stopped_because = f"ran its budget of {config.budget_s:.0f}s"
                break
            if not new and now - last_message >= config.linger_s:
                totals.stopped_because = f"no message for {config.linger_s:.0f}s"
                break
            if now - last_asked >= WRITER_WANTED_EVERY_S:
                last_asked = now
                if _writer_wanted(context.instance):
                    totals.stopped_because = "another writer waits for the lake's writer slot"
                    break
            if not new:
                try:
                    time.sleep(POLL_S)
                except dg.DagsterExecutionInterruptedError:
                    totals.stopped_because = "stopped while waiting"
                    break  # nothing is half done
        if checking is not None:
            finished, checking = checking.result(), None
            passed(finished)
        if pending:
            passed(_check(warehouse, kafka.topic, grid, feed_mark))
        finish_aggregate()
        if unfolded is not None:
            aggregate()
            finish_aggregate()
    finally:
        checker.shutdown(wait=True, cancel_futures=True)  # a check in flight only reads
        # a refresh in flight commits or rolls back on its own: it is waited for, not left
        # holding a transaction while the run ends
        aggregator.shutdown(wait=True, cancel_futures=True)
        # also on an error: what was committed is shown (the aggregates are not folded then)
        if not changes.empty():
            _report(context, warehouse, kafka.topic, grid, changes)
    context.log.info(
        f"followed the stream for {time.monotonic() - started:.0f}s: {totals.messages} messages "
        f"in {totals.batches} batches; stopped: {totals.stopped_because}"
    )
    seconds = sorted(totals.batch_seconds)
    metadata: dict[str, Any] = {
        "batches": dg.MetadataValue.int(totals.batches),
        "messages": dg.MetadataValue.int(totals.messages),
        "dead_lettered": dg.MetadataValue.int(totals.dead_lettered),
        "late_messages": dg.MetadataValue.int(totals.late),
        "aggregate_refreshes": dg.MetadataValue.int(totals.aggregate_refreshes),
        "batch_seconds_p50": dg.MetadataValue.float(
            round(seconds[len(seconds) // 2], 3) if seconds else 0.0
        ),
        "batch_seconds_max": dg.MetadataValue.float(round(seconds[-1], 3) if seconds else 0.0),
        "stopped_because": dg.MetadataValue.text(totals.stopped_because),
        "seconds_by_phase": dg.MetadataValue.json(
            {k: round(v, 2) for k, v in totals.phase_seconds.items()}
        ),
    }
    return dg.Output(None, metadata=metadata)


@dg.job(
    tags={stream.MODE_TAG: stream.INCREMENTAL},
    executor_def=dg.in_process_executor,
    description="Follows the Kafka topic in one run: raw → clean batch after batch, checks → "
    "aggregates every few seconds, while messages keep coming (requested by "
    "kafka_window_sensor).",
)
def stream_job() -> None:
    follow_stream()
