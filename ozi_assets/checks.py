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
from typing import Any

import dagster as dg
import duckdb
import pandas as pd

from ozi_assets import stream
from ozi_assets.clean import casts, reactions, users
from ozi_assets.partitions import stream_partitions, window_grid
from ozi_resources.warehouse import WarehouseResource, bound

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


def check_result(
    validation: Validation, severity: dg.AssetCheckSeverity, engine: str
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=validation.passed,
        severity=severity,
        metadata={
            "engine": dg.MetadataValue.text(engine),
            "rows_checked": dg.MetadataValue.int(validation.evaluated),
            "failed_expectations": dg.MetadataValue.int(len(validation.failures)),
            "failures": dg.MetadataValue.json(validation.failures),
        },
    )


def run_check(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    query: str,
    expectations: list[Expectation],
    suite: str,
    severity: dg.AssetCheckSeverity,
) -> dg.AssetCheckResult:
    """Validate the window's rows (``query`` with $w, $w_end bound to the window): in DuckDB
    for an incremental run, with great-expectations otherwise."""
    grid = window_grid()
    key = context.partition_key
    params = bound(query, {"w": grid.start_of(key), "w_end": grid.end_of(key)})
    incremental = context.run.tags.get(stream.MODE_TAG) == stream.INCREMENTAL
    with warehouse.reader() as conn:
        if incremental:
            validation = validate_sql(conn, query, params, expectations)
        else:
            validation = validate(conn.execute(query, params).df(), expectations, suite)
    return check_result(validation, severity, "duckdb" if incremental else "great-expectations")


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


@dg.asset_check(asset=casts, blocking=True, partitions_def=stream_partitions)
def casts_are_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Blocking: unique non-null 0x-hex hashes, fid > 0, text of at most 1,024 bytes, parent
    hash and fid both set or both NULL, a known thread for top-level casts."""
    return run_check(
        context,
        warehouse,
        """SELECT hash, fid, text, "timestamp", parent_hash, parent_fid,
                  octet_length(encode(text)) AS text_bytes,
                  (parent_hash IS NULL) = (parent_fid IS NULL) AS parent_consistent,
                  parent_hash IS NOT NULL OR thread_hash = hash AS thread_known
           FROM cast_adds WHERE window_start = $w""",
        CAST_RULES,
        "casts",
        dg.AssetCheckSeverity.ERROR,
    )


@dg.asset_check(asset=casts, partitions_def=stream_partitions)
def casts_are_in_window(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Warning: cast timestamps fall inside the window that read them. A late event (older than
    its window) is legitimate, and its own window's aggregates are refreshed, but many of them
    point at a producer whose clock or replay order is off."""
    return run_check(
        context,
        warehouse,
        """SELECT hash, "timestamp",
                  "timestamp" >= $w AND "timestamp" < $w_end + INTERVAL 5 MINUTE AS in_window
           FROM cast_adds WHERE window_start = $w""",
        [Expectation("ExpectColumnValuesToBeInSet", {"column": "in_window", "value_set": [True]})],
        "casts_window",
        dg.AssetCheckSeverity.WARN,
    )


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


@dg.asset_check(asset=reactions, blocking=True, partitions_def=stream_partitions)
def reactions_are_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Blocking: unique 0x-hex hashes, a like or recast type, fid > 0, a 0x-hex target."""
    return run_check(
        context,
        warehouse,
        """SELECT hash, fid, reaction_type, target_hash, "timestamp"
           FROM reaction_messages WHERE window_start = $w""",
        REACTION_RULES,
        "reactions",
        dg.AssetCheckSeverity.ERROR,
    )


USER_RULES = [
    *_not_null("hash", "fid", "field"),
    Expectation("ExpectColumnValuesToBeUnique", {"column": "hash"}),
    Expectation("ExpectColumnValuesToBeBetween", {"column": "fid", "min_value": 1}),
    Expectation("ExpectColumnValuesToBeBetween", {"column": "follower_count", "min_value": 0}),
]


@dg.asset_check(asset=users, blocking=True, partitions_def=stream_partitions)
def users_are_valid(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    """Blocking: unique message hashes, fid > 0, a named field, non-negative follower counts."""
    return run_check(
        context,
        warehouse,
        "SELECT hash, fid, field, value, follower_count FROM user_data WHERE window_start = $w",
        USER_RULES,
        "users",
        dg.AssetCheckSeverity.ERROR,
    )


all_checks = [casts_are_valid, casts_are_in_window, reactions_are_valid, users_are_valid]
