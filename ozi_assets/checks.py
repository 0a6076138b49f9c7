"""Data-quality checks on the clean tables: great-expectations suites inside asset checks.

Blocking checks guard what makes data wrong (missing or duplicate hashes, bad fids, oversized
text, inconsistent parents): when one fails, the window's aggregates (and later embeddings)
are not computed. Warning checks report what is unusual but legitimate, such as late events.
Each check validates the window's rows only and puts sample failing rows in its metadata.

great-expectations takes seconds to import, so it is imported when a check runs, never when
Dagster loads the definitions.
"""

import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from ozi_assets import stream
from ozi_assets.clean import CLEAN_TABLES, casts, reactions, users, window_indices
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_assets.table_metadata import cell
from ozi_resources.kafka import KafkaResource
from ozi_resources.warehouse import WarehouseResource, bound, first_line
from ozi_resources.windows import WindowGrid

# Partitioned asset checks are a Dagster preview feature, chosen knowingly (a check per window
# is what the UI should show); the README says so. Say it once there, not on every import.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def.*")

HASH_PATTERN = r"^0x([0-9a-f]{40}|[0-9a-f]{64})$"
MAX_CAST_BYTES = 1024  # the protocol's limit for long casts; standard casts stop at 320
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Expectation:
    """One great-expectations expectation by class name and arguments, e.g.
    ``Expectation("ExpectColumnValuesToNotBeNull", {"column": "hash"})``."""

    name: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Validation:
    passed: bool
    evaluated: int
    failures: list[dict[str, Any]]  # one a failed expectation, with sample failing rows


@dataclass(frozen=True)
class RowCheck:
    """A check of a clean table's rows in one window: ``query`` selects them (``$w``,
    ``$w_end``: the window's bounds), ``expectations`` judge them. The same check runs as a
    Dagster asset check and on every batch of ``stream_job`` (follow.py)."""

    asset: dg.AssetKey
    name: str
    query: str
    expectations: list[Expectation]
    suite: str  # the great-expectations suite's name
    severity: dg.AssetCheckSeverity
    table: str  # the table the query reads: an incremental run checks its rows there (added_by_run)
    blocking: bool  # a failure stops the aggregates (and so the embeddings) of its rows

    def at_positions(self, positions: str, source: str | None = None) -> str:
        """``query`` narrowed to the rows at ``positions`` (a condition on source_position,
        stream.position_filter): a batch's rows read by their position. Probing the window's
        rows for the batch's hashes instead read the whole window, every column, in each round
        of stream_job's checks. ``source`` (SQL naming a relation with the table's columns,
        see feed_sources) is read instead of the table. Raises ValueError for a query that
        does not end by reading its table with its window's condition (every RowCheck's
        does)."""
        tail = f"FROM {self.table} WHERE window_start = $w"
        query = self.query.rstrip()
        if not query.endswith(tail):
            raise ValueError(f"{self.name}: the query does not end with its window's condition")
        relation = f"{source} AS {self.table}" if source else self.table
        return f"{query[: -len(tail)]}FROM {relation} WHERE window_start = $w AND ({positions})"


def validate(frame: pd.DataFrame, expectations: list[Expectation], suite: str) -> Validation:
    """Run the expectations over ``frame`` with great-expectations (ephemeral context).

    Returns whether all passed and, for each failure, the expectation, its unexpected count and
    up to SAMPLE_ROWS failing rows.
    """
    import great_expectations as gx  # lazy: 3-6 s to import
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(suite)
        .add_dataframe_asset(suite)
        .add_batch_definition_whole_dataframe(suite)
        .get_batch(batch_parameters={"dataframe": frame})
    )
    gx_suite = gx.ExpectationSuite(name=suite)
    for expectation in expectations:
        gx_suite.add_expectation(getattr(gx.expectations, expectation.name)(**expectation.kwargs))
    result = batch.validate(gx_suite, result_format="COMPLETE")
    failures = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        rows = item.result.get("unexpected_index_list") or []
        sample = frame.iloc[[i for i in rows if isinstance(i, int)][:SAMPLE_ROWS]]
        failures.append(
            {
                "expectation": config.type if config else "?",
                "column": (config.kwargs or {}).get("column") if config else None,
                "unexpected_count": item.result.get("unexpected_count"),
                "sample_rows": sample.astype(str).to_dict(orient="records"),
            }
        )
    return Validation(bool(result.success), len(frame), failures)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def violation(expectation: Expectation) -> str:
    """The SQL predicate true for a row that breaks ``expectation`` (over ``frame`` with a
    ``_dup_<column>`` count for uniqueness), with great-expectations' semantics: NULLs break
    only ExpectColumnValuesToNotBeNull. Raises ValueError for an expectation it cannot
    translate, so a new rule is never silently skipped."""
    kw = expectation.kwargs
    column = '"' + kw["column"].replace('"', '""') + '"'
    match expectation.name:
        case "ExpectColumnValuesToNotBeNull":
            return f"{column} IS NULL"
        case "ExpectColumnValuesToBeUnique":
            return f'{column} IS NOT NULL AND "_dup_{kw["column"]}" > 1'
        case "ExpectColumnValuesToMatchRegex":
            return f"{column} IS NOT NULL AND NOT regexp_matches({column}, {_literal(kw['regex'])})"
        case "ExpectColumnValuesToBeBetween":
            terms = []
            if kw.get("min_value") is not None:
                terms.append(f"{column} < {_literal(kw['min_value'])}")
            if kw.get("max_value") is not None:
                terms.append(f"{column} > {_literal(kw['max_value'])}")
            return f"{column} IS NOT NULL AND ({' OR '.join(terms)})"
        case "ExpectColumnValuesToBeInSet":
            values = ", ".join(_literal(v) for v in kw["value_set"])
            return f"{column} IS NOT NULL AND {column} NOT IN ({values})"
    raise ValueError(f"no SQL form for {expectation.name}")


def validate_sql(
    conn: duckdb.DuckDBPyConnection,
    query: str,
    params: dict[str, Any] | None,
    expectations: list[Expectation],
) -> Validation:
    """The same expectations as ``validate``, evaluated by DuckDB over the rows of ``query``:
    milliseconds, and no great-expectations import (3-6 s in every run's process). Used by
    incremental runs; rebuild runs (a backfill, a window materialized again) run the
    great-expectations suites."""
    unique = sorted(
        {e.kwargs["column"] for e in expectations if e.name == "ExpectColumnValuesToBeUnique"}
    )
    dups = "".join(f', count(*) OVER (PARTITION BY "{c}") AS "_dup_{c}"' for c in unique)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE check_frame AS SELECT *{dups} FROM ({query})", params
    )
    predicates = [violation(e) for e in expectations]
    counts = conn.execute(
        "SELECT count(*), "
        + ", ".join(f"count(*) FILTER (WHERE {p})" for p in predicates)
        + " FROM check_frame"
    ).fetchone()
    assert counts is not None  # an aggregate always returns a row
    failures = []
    for expectation, predicate, count in zip(expectations, predicates, counts[1:], strict=True):
        if count:
            hidden = ", ".join(f'"_dup_{c}"' for c in unique)
            columns = f"* EXCLUDE ({hidden})" if unique else "*"
            sample = conn.execute(
                f"SELECT {columns} FROM check_frame WHERE {predicate} LIMIT {SAMPLE_ROWS}"
            ).df()
            failures.append(
                {
                    "expectation": _snake(expectation.name),
                    "column": expectation.kwargs.get("column"),
                    "unexpected_count": int(count),
                    "sample_rows": sample.astype(str).to_dict(orient="records"),
                }
            )
    return Validation(not failures, int(counts[0]), failures)


def _snake(name: str) -> str:
    """ExpectColumnValuesToBeUnique → expect_column_values_to_be_unique (GX's type names)."""
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def describe(validation: Validation, engine: str, scope: str) -> str:
    """One line for the check's result, e.g. "2 expectations failed on 219 rows (the whole
    window, great-expectations): fid must be between (1 row), hash must be unique (2 rows)"."""
    rows = f"{validation.evaluated} rows ({scope}, {engine})"
    if validation.passed:
        return f"all expectations passed on {rows}"
    failed = ", ".join(
        f"{f['column']} must "
        + f["expectation"].removeprefix("expect_column_values_to_").replace("_", " ")
        + f" ({f['unexpected_count']} {'row' if f['unexpected_count'] == 1 else 'rows'})"
        for f in validation.failures
    )
    n = len(validation.failures)
    return f"{n} expectation{'' if n == 1 else 's'} failed on {rows}: {failed}"


def _text(value: Any) -> str | None:
    """A failing row's value as the text its column declares (None stays empty)."""
    value = cell(value)
    return None if value is None else str(value)


def failing_rows(validation: Validation) -> dg.TableMetadataValue:
    """The sample failing rows of every failed expectation as one table (at most 10 rows):
    the expectation and column it broke, then the row's own columns as text."""
    columns: list[str] = []
    records = []
    for failure in validation.failures:
        for row in failure["sample_rows"]:
            columns += [c for c in row if c not in columns]
            records.append(
                {"expectation": failure["expectation"], "column": failure["column"]} | row
            )
    records = records[:10]
    names = ["expectation", "column", *columns]
    return dg.MetadataValue.table(
        records=[dg.TableRecord({n: _text(r.get(n)) for n in names}) for r in records],
        schema=dg.TableSchema(columns=[dg.TableColumn(n) for n in names]),
    )


def check_result(
    validation: Validation, severity: dg.AssetCheckSeverity, engine: str, scope: str
) -> dg.AssetCheckResult:
    """The UI's view of a validation: a one-line description, the failed expectations and
    their sample rows as tables; ``failures`` keeps the whole record as JSON."""
    metadata: dict[str, Any] = {
        "engine": dg.MetadataValue.text(engine),
        "scope": dg.MetadataValue.text(scope),
        "rows_checked": dg.MetadataValue.int(validation.evaluated),
        "failed_expectations": dg.MetadataValue.int(len(validation.failures)),
    }
    if validation.failures:
        metadata["failed"] = dg.MetadataValue.table(
            records=[
                dg.TableRecord(
                    {
                        "expectation": f["expectation"],
                        "column": f["column"],
                        "failing_rows": f["unexpected_count"],
                    }
                )
                for f in validation.failures
            ],
            schema=dg.TableSchema(
                columns=[
                    dg.TableColumn("expectation"),
                    dg.TableColumn("column"),
                    dg.TableColumn("failing_rows", "int"),
                ]
            ),
        )
        metadata["failing_rows"] = failing_rows(validation)
    metadata["failures"] = dg.MetadataValue.json(validation.failures)
    return dg.AssetCheckResult(
        passed=validation.passed,
        severity=severity,
        description=describe(validation, engine, scope),
        metadata=metadata,
    )


def errored(context: dg.AssetCheckExecutionContext, err: Exception) -> dg.AssetCheckResult:
    """A check that could not run, recorded as a failed evaluation of its partition (severity
    ERROR) with the error in one line: a raised exception would leave the UI an execution
    with no partition and no result. The traceback goes to the run's log."""
    context.log.exception(f"check {context.check_specs[0].name} could not run")
    line = f"{type(err).__name__}: {first_line(err)}"
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"error: the check could not run: {line}",
        metadata={"error": dg.MetadataValue.text(line)},
    )


def added_by_run(
    warehouse: WarehouseResource,
    conn: duckdb.DuckDBPyConnection,
    query: str,
    table: str,
    run_id: str,
) -> str:
    """``query`` (rows with a ``hash``) narrowed to the hashes of rows this run inserted into
    ``table``, through the lake's change feed: an incremental run checks its own batches, so
    a check costs what the batch holds, not what the window holds. Rows sharing such a hash
    are kept, so uniqueness is still judged against the whole window."""
    since = warehouse.first_snapshot_of_run(conn, run_id)
    if since is None:
        return f"SELECT * FROM ({query}) AS q WHERE false"
    now = warehouse.current_snapshot_id(conn)
    return (
        f"SELECT * FROM ({query}) AS q WHERE q.hash IN (SELECT hash FROM "
        f"ducklake_table_changes('lake', 'main', '{table}', {since}, {now}) "
        "WHERE change_type IN ('insert', 'update_postimage'))"
    )


def run_check(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, check: RowCheck
) -> dg.AssetCheckResult:
    """Validate rows of the window (``query`` over ``table`` with $w, $w_end bound to the
    window): in an incremental run, in DuckDB and only the rows the run added (a batch's
    cheap checks); in a rebuild and when the window closes, all of them with the
    great-expectations suite."""
    grid = window_grid()
    key = context.partition_key
    params = bound(check.query, {"w": grid.start_of(key), "w_end": grid.end_of(key)})
    incremental = context.run.tags.get(stream.MODE_TAG) == stream.INCREMENTAL
    try:
        with warehouse.reader() as conn:
            if incremental:
                scoped = added_by_run(warehouse, conn, check.query, check.table, context.run.run_id)
                validation = validate_sql(conn, scoped, params, check.expectations)
                return check_result(validation, check.severity, "duckdb", "rows this run added")
            frame = conn.execute(check.query, params).df()
            validation = validate(frame, check.expectations, check.suite)
    except Exception as err:  # any failure to validate is shown as this partition's result
        return errored(context, err)
    return check_result(validation, check.severity, "great-expectations", "the whole window")


def _not_null(*columns: str) -> list[Expectation]:
    return [Expectation("ExpectColumnValuesToNotBeNull", {"column": c}) for c in columns]


CAST_RULES = [
    *_not_null("hash", "fid", "text", "timestamp"),
    Expectation("ExpectColumnValuesToBeUnique", {"column": "hash"}),
    Expectation("ExpectColumnValuesToMatchRegex", {"column": "hash", "regex": HASH_PATTERN}),
    Expectation("ExpectColumnValuesToBeBetween", {"column": "fid", "min_value": 1}),
    Expectation(
        "ExpectColumnValuesToBeBetween", {"column": "text_bytes", "max_value": MAX_CAST_BYTES}
    ),
    # A reply names both the parent's hash and fid; a top-level cast names neither.
    Expectation(
        "ExpectColumnValuesToBeInSet", {"column": "parent_consistent", "value_set": [True]}
    ),
    Expectation("ExpectColumnValuesToBeInSet", {"column": "thread_known", "value_set": [True]}),
]


CASTS_VALID = RowCheck(
    casts.key,
    "casts_are_valid",
    """SELECT hash, fid, text, "timestamp", parent_hash, parent_fid,
              octet_length(encode(text)) AS text_bytes,
              (parent_hash IS NULL) = (parent_fid IS NULL) AS parent_consistent,
              parent_hash IS NOT NULL OR thread_hash = hash AS thread_known
       FROM cast_adds WHERE window_start = $w""",
    CAST_RULES,
    "casts",
    dg.AssetCheckSeverity.ERROR,
    "cast_adds",
    True,
)


@dg.asset_check(asset=casts, blocking=CASTS_VALID.blocking, partitions_def=stream_partitions)
def casts_are_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Blocking: unique non-null 0x-hex hashes, fid > 0, text of at most 1,024 bytes, parent
    hash and fid both set or both NULL, a known thread for top-level casts."""
    return run_check(context, warehouse, CASTS_VALID)


CASTS_IN_WINDOW = RowCheck(
    casts.key,
    "casts_are_in_window",
    """SELECT hash, "timestamp",
              "timestamp" >= $w AND "timestamp" < $w_end + INTERVAL 5 MINUTE AS in_window
       FROM cast_adds WHERE window_start = $w""",
    [Expectation("ExpectColumnValuesToBeInSet", {"column": "in_window", "value_set": [True]})],
    "casts_window",
    dg.AssetCheckSeverity.WARN,
    "cast_adds",
    False,
)


@dg.asset_check(asset=casts, blocking=CASTS_IN_WINDOW.blocking, partitions_def=stream_partitions)
def casts_are_in_window(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Warning: cast timestamps fall inside the window that read them. A late event (older than
    its window) is legitimate, and its own window's aggregates are refreshed, but many of them
    point at a producer whose clock or replay order is off."""
    return run_check(context, warehouse, CASTS_IN_WINDOW)


REACTION_RULES = [
    *_not_null("hash", "fid", "reaction_type", "target_hash", "timestamp"),
    Expectation("ExpectColumnValuesToBeUnique", {"column": "hash"}),
    Expectation("ExpectColumnValuesToMatchRegex", {"column": "hash", "regex": HASH_PATTERN}),
    Expectation("ExpectColumnValuesToMatchRegex", {"column": "target_hash", "regex": HASH_PATTERN}),
    Expectation(
        "ExpectColumnValuesToBeInSet", {"column": "reaction_type", "value_set": ["like", "recast"]}
    ),
    Expectation("ExpectColumnValuesToBeBetween", {"column": "fid", "min_value": 1}),
]


REACTIONS_VALID = RowCheck(
    reactions.key,
    "reactions_are_valid",
    """SELECT hash, fid, reaction_type, target_hash, "timestamp"
       FROM reaction_messages WHERE window_start = $w""",
    REACTION_RULES,
    "reactions",
    dg.AssetCheckSeverity.ERROR,
    "reaction_messages",
    True,
)


@dg.asset_check(
    asset=reactions, blocking=REACTIONS_VALID.blocking, partitions_def=stream_partitions
)
def reactions_are_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Blocking: unique 0x-hex hashes, a like or recast type, fid > 0, a 0x-hex target."""
    return run_check(context, warehouse, REACTIONS_VALID)


USER_RULES = [
    *_not_null("hash", "fid", "field"),
    Expectation("ExpectColumnValuesToBeUnique", {"column": "hash"}),
    Expectation("ExpectColumnValuesToBeBetween", {"column": "fid", "min_value": 1}),
    Expectation("ExpectColumnValuesToBeBetween", {"column": "follower_count", "min_value": 0}),
]


USERS_VALID = RowCheck(
    users.key,
    "users_are_valid",
    "SELECT hash, fid, field, value, follower_count FROM user_data WHERE window_start = $w",
    USER_RULES,
    "users",
    dg.AssetCheckSeverity.ERROR,
    "user_data",
    True,
)


@dg.asset_check(asset=users, blocking=USERS_VALID.blocking, partitions_def=stream_partitions)
def users_are_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Blocking: unique message hashes, fid > 0, a named field, non-negative follower counts."""
    return run_check(context, warehouse, USERS_VALID)


# Every clean table (clean.CLEAN_TABLES; each decoded message type lands in exactly one of
# them, raw_decode.sql) with the message it came from (Kafka partition << 40 | offset).
CLEAN_ROWS = "\nUNION ALL ".join(
    f"SELECT source_position, hash, window_start FROM {t}" for t in CLEAN_TABLES
)


def reconciled_ranges(
    warehouse: WarehouseResource,
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    run_id: str | None,
) -> stream.Ranges:
    """The offsets to reconcile, per Kafka partition: those every clean stage has folded in
    (the check never counts a message still on its way), and for an incremental run
    (``run_id``) only those not yet folded in at the snapshot before the run's first commit:
    a batch reconciles its own messages, the window's close run and a rebuild all of them."""
    floor: stream.Offsets = {}
    if run_id is not None:
        since = warehouse.first_snapshot_of_run(conn, run_id)
        floor = (
            stream.upstream_offsets(conn, stream.CLEAN_STAGES, topic)
            if since is None  # the run committed nothing: nothing new to reconcile
            else stream.upstream_offsets(conn, stream.CLEAN_STAGES, topic, snapshot=since - 1)
        )
    return folded_since(conn, topic, floor)


def folded_since(
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    floor: stream.Offsets,
    now: stream.Offsets | None = None,
) -> stream.Ranges:
    """Per Kafka partition, the offsets from ``floor`` up to where every clean stage stands
    now (``now``, when the caller has read it already): the messages folded into all clean
    tables since the clean stages stood at ``floor`` ({}: since the start)."""
    if now is None:
        now = stream.upstream_offsets(conn, stream.CLEAN_STAGES, topic)
    return {p: (floor[p].next_offset if p in floor else 0, o.next_offset) for p, o in now.items()}


@dataclass(frozen=True)
class FeedMark:
    """Where a round of stream_job's checks read the lake: its snapshot, and each clean
    stage's offsets at that snapshot ({stage: offsets})."""

    snapshot: int
    stages: dict[str, stream.Offsets]


# The changes a snapshot may hold for the change feed to give a table's new rows exactly:
# appends, deletes (their tables are read whole, see feed_sources) and merged files (the feed
# keeps each row's snapshot through a merge). Anything else (a table created, altered or
# dropped, inlined data flushed, files rewritten) makes every table be read whole.
FEED_SAFE_CHANGES = frozenset({"tables_inserted_into", "tables_deleted_from", "merge_adjacent"})


def feed_sources(
    conn: duckdb.DuckDBPyConnection, mark: FeedMark | None, floor: stream.Offsets, now: int
) -> dict[str, str]:
    """{clean table: what a round reads its rows from}: DuckLake's change feed of the
    snapshots after ``mark`` up to ``now`` (the snapshot ``conn`` reads), which reads only the
    files those snapshots added, where it holds every row at or after ``floor`` (Kafka
    partition → offset); else the table itself (a round then reads the window's files). The
    feed holds them when every clean stage stood at or before ``floor`` at the mark's
    snapshot (so no such row was there yet), no snapshot since deleted rows of the table (a
    deleted row stays in the feed) and no snapshot changed anything but rows (see
    FEED_SAFE_CHANGES). The first round of a run has no mark and reads the tables."""
    whole = {t: t for t in CLEAN_TABLES}
    if mark is None or mark.snapshot >= now:
        return whole
    for stage in stream.CLEAN_STAGES:
        stood = mark.stages.get(stage, {})
        for p, o in stood.items():
            if o.next_offset > (floor[p].next_offset if p in floor else 0):
                return whole
    changes = conn.execute(
        "SELECT snapshot_id, changes FROM ducklake_snapshots('lake') "
        "WHERE snapshot_id > $a AND snapshot_id <= $b",
        {"a": mark.snapshot, "b": now},
    ).fetchall()
    if len(changes) != now - mark.snapshot:  # an expired snapshot: the feed cannot be read
        return whole
    ids = dict(
        conn.execute(
            "SELECT table_id, table_name FROM ducklake_table_info('lake') "
            "WHERE list_contains($t, table_name)",
            {"t": list(CLEAN_TABLES)},
        ).fetchall()
    )
    touched_by_deletes: set[str] = set()
    for _, change in changes:
        if set(change) - FEED_SAFE_CHANGES:
            return whole
        touched_by_deletes |= {ids.get(int(i), "") for i in change.get("tables_deleted_from", [])}
    return {
        t: t
        if t in touched_by_deletes
        else f"ducklake_table_insertions('lake', 'main', '{t}', {mark.snapshot + 1}, {now})"
        for t in CLEAN_TABLES
    }


def counts_sql(
    ranges: stream.Ranges, find_copies: bool = True, sources: dict[str, str] | None = None
) -> str:
    """The reconciliation of the messages of ``ranges`` in the window $w of topic $t: one row
    of counts and a sample of lost messages. One scan per table: a clean table's file holds
    every Kafka partition's positions, so no one partition's range prunes a file, and a scan
    per table and partition read every file once per partition (the clean tables' rows 65
    -> 20 ms on a 5-minute stream's lake); raw_events' scan still skips the files outside
    the offsets' covering range (stream.offset_filter). ``find_copies`` False leaves out the
    search of every clean table for an earlier copy of each message without a row: each such
    message then counts as lost, so a row without lost messages is exact and saves that
    search (see reconcile). ``sources`` reads a table's rows from another relation
    (feed_sources)."""
    sources = sources or {}
    read = (
        "SELECT (kafka_partition::BIGINT << 40) + kafka_offset AS pos, message_hash AS hash, "
        "dead_letter_reason IS NOT NULL AS dead FROM raw_events "
        f"WHERE topic = $t AND window_start = $w AND {stream.offset_filter(ranges)}"
    )
    positions = stream.position_filter(ranges)
    rows = "\nUNION ALL ".join(
        f"SELECT source_position AS pos, hash FROM {sources.get(t, t)} "
        f"WHERE window_start = $w AND {positions}"
        for t in CLEAN_TABLES
    )
    clean_rows = (
        CLEAN_ROWS
        if find_copies
        else "SELECT NULL::BIGINT AS source_position, NULL::VARCHAR AS hash WHERE FALSE"
    )
    return f"""
WITH read AS ({read}), clean_rows AS ({clean_rows}), rows AS ({rows}), first_copy AS (
    SELECT hash, min(source_position) AS pos FROM clean_rows
    WHERE hash IN (SELECT hash FROM read WHERE NOT dead AND pos NOT IN (SELECT pos FROM rows))
    GROUP BY hash
), verdict AS (
    SELECT r.pos, r.hash,
        CASE WHEN r.dead THEN 'dead letter'
             WHEN r.pos IN (SELECT pos FROM rows) THEN 'clean'
             WHEN f.pos < r.pos THEN 'duplicate'
             ELSE 'lost' END AS verdict
    FROM read r LEFT JOIN first_copy f USING (hash)
)
SELECT
    (SELECT count(*) FROM read) AS messages_read,
    (SELECT count(*) FROM verdict WHERE verdict = 'clean') AS clean_rows,
    (SELECT count(*) FROM verdict WHERE verdict = 'duplicate') AS duplicates,
    (SELECT count(*) FROM verdict WHERE verdict = 'dead letter') AS dead_letters,
    (SELECT count(*) FROM verdict WHERE verdict = 'lost') AS lost,
    (SELECT count(*) FROM rows WHERE pos NOT IN (SELECT pos FROM read)) AS rows_without_message,
    (SELECT list({{'kafka_partition': pos >> 40, 'kafka_offset': pos & 1099511627775,
                  'hash': hash}}) FROM (SELECT * FROM verdict WHERE verdict = 'lost'
                  ORDER BY pos LIMIT {SAMPLE_ROWS})) AS lost_sample
"""


@dg.asset_check(
    asset=casts,
    additional_deps=[reactions, users],
    blocking=True,
    partitions_def=stream_partitions,
)
def messages_add_up(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource
) -> dg.AssetCheckResult:
    """Blocking: in the window's offsets that every clean stage has folded in, messages read
    = clean rows + duplicates (an earlier copy of the same hash owns the row) + dead letters,
    and no clean row lacks its message. An incremental run reconciles the messages it folded
    in (a batch costs its own messages); a rebuild and the window's close run reconcile the
    whole window. A failure is a bug in Ozi, never bad input (bad input is dead-lettered);
    sample lost messages are in the metadata."""
    window = window_grid().start_of(context.partition_key)
    incremental = context.run.tags.get(stream.MODE_TAG) == stream.INCREMENTAL
    scope = "messages this run folded in" if incremental else "the whole window"
    try:
        with warehouse.reader() as conn:
            ranges = reconciled_ranges(
                warehouse, conn, kafka.topic, context.run.run_id if incremental else None
            )
            return reconcile(conn, kafka.topic, window, ranges, scope)
    except Exception as err:  # any failure to count is shown as this partition's result
        return errored(context, err)


def reconcile(
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    window: datetime,
    ranges: stream.Ranges,
    scope: str,
    sources: dict[str, str] | None = None,
) -> dg.AssetCheckResult:
    """messages read = clean rows + duplicates + dead letters, for the messages of ``ranges``
    in ``window`` (its start); ``scope`` says which messages those are, in words; ``sources``
    as in counts_sql."""
    params = {"t": topic, "w": window}
    # A message without a clean row is nearly always rare (a duplicate of an earlier copy):
    # look for earlier copies, a scan of every clean table's hashes, only when there is one.
    row = conn.execute(counts_sql(ranges, find_copies=False, sources=sources), params).fetchone()
    assert row is not None  # an aggregate query always returns one row
    if row[4]:
        row = conn.execute(counts_sql(ranges, sources=sources), params).fetchone()
        assert row is not None
    read, clean, duplicates, dead, lost, orphans, sample = row
    return dg.AssetCheckResult(
        passed=lost == 0 and orphans == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{read} messages read = {clean} clean rows + {duplicates} duplicates + {dead} "
            f"dead letters"
            + (f"; {lost} lost" if lost else "")
            + (f"; {orphans} clean rows without a message" if orphans else "")
        ),
        metadata={
            "engine": dg.MetadataValue.text("duckdb"),
            "scope": dg.MetadataValue.text(scope),
            "messages_read": dg.MetadataValue.int(read),
            "clean_rows": dg.MetadataValue.int(clean),
            "duplicates": dg.MetadataValue.int(duplicates),
            "dead_letters": dg.MetadataValue.int(dead),
            "lost": dg.MetadataValue.int(lost),
            "clean_rows_without_message": dg.MetadataValue.int(orphans),
            "lost_sample": dg.MetadataValue.table(
                records=[dg.TableRecord(dict(m)) for m in sample or []],
                schema=dg.TableSchema(
                    columns=[
                        dg.TableColumn("kafka_partition", "int"),
                        dg.TableColumn("kafka_offset", "int"),
                        dg.TableColumn("hash"),
                    ]
                ),
            ),
        },
    )


# The checks of the rows each batch adds, in the order they run (stream_job, follow.py).
ROW_CHECKS = (CASTS_VALID, CASTS_IN_WINDOW, REACTIONS_VALID, USERS_VALID)

all_checks = [
    casts_are_valid,
    casts_are_in_window,
    messages_add_up,
    reactions_are_valid,
    users_are_valid,
]


def evaluation(
    result: dg.AssetCheckResult, asset: dg.AssetKey, name: str, blocking: bool, partition: str
) -> dg.AssetCheckEvaluation:
    """``result`` as the evaluation of the check ``name`` on ``asset``'s ``partition``, for an
    op to log (stream_job's batches)."""
    return dg.AssetCheckEvaluation(
        asset_key=asset,
        check_name=name,
        passed=result.passed,
        severity=result.severity,
        description=result.description,
        metadata=result.metadata,
        blocking=blocking,
        partition=partition,
    )


def check_batch(
    conn: duckdb.DuckDBPyConnection,
    topic: str,
    grid: WindowGrid,
    floor: stream.Offsets,
    mark: FeedMark | None = None,
) -> tuple[list[dg.AssetCheckEvaluation], stream.Offsets, FeedMark]:
    """The checks of the messages folded into the clean tables since the clean stages stood
    at ``floor`` (see folded_since), in every window those messages were read in: each
    RowCheck on their rows (in DuckDB), and their reconciliation. Scoped by the messages'
    positions, so a batch costs its own rows, and read from the change feed since ``mark``
    (the round before's) where it holds them (feed_sources), so a round reads the files its
    batches added, not the window's. ``conn`` reads one snapshot (the caller's
    transaction). Returns (one evaluation per check and window, the clean stages' offsets
    the checks reached: Kafka partition → offset, {} when there was nothing to check, this
    round's mark for the next). The aggregates fold in up to those offsets and no further: a
    batch committed after this reader's snapshot is not checked yet."""
    row = conn.execute("FROM lake.current_snapshot()").fetchone()
    now = int(row[0]) if row else 0
    here = FeedMark(now, stream.load_stages(conn, stream.CLEAN_STAGES, topic))
    since = folded_since(conn, topic, floor, stream.slowest(here.stages.values()))
    ranges = {p: r for p, r in since.items() if r[1] > r[0]}
    if not ranges:
        return [], {}, here
    reached = {p: stream.PartitionOffset(nxt) for p, (_, nxt) in since.items()}
    positions = stream.position_filter(ranges)
    sources = feed_sources(conn, mark, floor, now)
    fed = sum(sources[t] != t for t in CLEAN_TABLES)
    reconcile_scope = (
        f"messages of one batch ({fed} of {len(CLEAN_TABLES)} tables read from the change feed)"
    )
    starts = {
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT epoch_ms(window_start) FROM raw_events "
            f"WHERE topic = $t AND {stream.offset_filter(ranges)}",
            {"t": topic},
        ).fetchall()
    }
    out = []
    for window in sorted(window_indices(grid, starts)):
        key = grid.keys[window]
        bounds = {"w": grid.start_of(key), "w_end": grid.end_of(key)}
        for check in ROW_CHECKS:
            scoped = check.at_positions(positions, sources[check.table])
            validation = validate_sql(conn, scoped, bound(scoped, bounds), check.expectations)
            read = "change feed" if sources[check.table] != check.table else "window's rows"
            scope = f"messages of one batch (read from the {read})"
            result = check_result(validation, check.severity, "duckdb", scope)
            out.append(evaluation(result, check.asset, check.name, check.blocking, key))
        result = reconcile(conn, topic, bounds["w"], ranges, reconcile_scope, sources)
        out.append(evaluation(result, casts.key, "messages_add_up", True, key))
    return out, reached, here


@dg.asset(
    key=["stream", "window_close"],
    deps=[casts, reactions, users],
    partitions_def=stream_partitions,
    group_name="checks",
    kinds={"ducklake"},
)
def window_close(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, kafka: KafkaResource
) -> dg.MaterializeResult:
    """A window the watermark closed: what it read (messages, dead letters, late messages by
    its own window) when its close run validated it with the great-expectations suites (the
    checks of clean/casts, clean/reactions and clean/users in the same run). Writes nothing
    to the lake. Source: raw_events."""
    grid = window_grid()
    window = grid.start_of(context.partition_key)
    with warehouse.reader() as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (dead_letter_reason IS NOT NULL), "
            "(SELECT count(*) FROM raw_events WHERE topic = $t AND is_late "
            " AND event_window_start = $w) "
            "FROM raw_events WHERE topic = $t AND window_start = $w",
            {"t": kafka.topic, "w": window},
        ).fetchone()
    messages, dead, late = row if row else (0, 0, 0)
    return dg.MaterializeResult(
        metadata={
            "messages_read": dg.MetadataValue.int(messages),
            "dead_letters": dg.MetadataValue.int(dead),
            "late_messages_for_window": dg.MetadataValue.int(late),
            "allowed_lateness_s": dg.MetadataValue.float(kafka.allowed_lateness_s),
            "trigger": dg.MetadataValue.text(context.run.tags.get("ozi/trigger", "manual")),
        }
    )
