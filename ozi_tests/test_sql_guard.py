"""The SQL guard refuses anything but one read-only query over the public tables.

The corpora live in ozi_tests/guard_corpus/: refused.yaml (the red team, grouped by trick, each
with why and the rule its refusal must name) and allowed.yaml (ordinary analytics). Every allowed
statement must also run on DuckDB against empty tables with the public columns, so the guard's
rewriting never produces SQL DuckDB rejects.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import sqlglot
import yaml
from sqlglot import exp

from ozi_resources.sql_guard import (
    ALLOWED_FUNCTIONS,
    DEFAULT_LIMIT,
    MAX_OFFSET,
    MAX_STATEMENT_CHARS,
    SqlRefused,
    guard,
)
from ozi_resources.warehouse import PUBLIC_TABLES

CORPUS = Path(__file__).parent / "guard_corpus"

# sqlglot warns when it falls back to keeping a statement as text (CALL, EXPLAIN, ...).
logging.getLogger("sqlglot").setLevel(logging.ERROR)


def load_refused() -> list[tuple[str, dict]]:
    groups = yaml.safe_load((CORPUS / "refused.yaml").read_text())
    return [
        (f"{group}-{i}", entry)
        for group, entries in groups.items()
        for i, entry in enumerate(entries)
    ]


def load_allowed() -> list[dict]:
    return yaml.safe_load((CORPUS / "allowed.yaml").read_text())


REFUSED = load_refused()
ALLOWED = load_allowed()

# The public contract's columns (the views and aggregate tables of ozi_resources/schema.sql).
PUBLIC_DDL = """
CREATE TABLE casts (hash VARCHAR, fid BIGINT, username VARCHAR, text VARCHAR,
    "timestamp" TIMESTAMPTZ, parent_hash VARCHAR, parent_fid BIGINT, thread_hash VARCHAR,
    parent_url VARCHAR, mentions BIGINT[], embeds VARCHAR[], is_reply BOOLEAN,
    window_start TIMESTAMPTZ);
CREATE TABLE reactions (hash VARCHAR, reaction_type VARCHAR, fid BIGINT, username VARCHAR,
    target_hash VARCHAR, target_fid BIGINT, "timestamp" TIMESTAMPTZ, window_start TIMESTAMPTZ);
CREATE TABLE users (fid BIGINT, username VARCHAR, display_name VARCHAR, bio VARCHAR,
    pfp_url VARCHAR, follower_count BIGINT, following_count BIGINT, updated_at TIMESTAMPTZ);
CREATE TABLE links (hash VARCHAR, fid BIGINT, link_type VARCHAR, target_fid BIGINT,
    "timestamp" TIMESTAMPTZ, window_start TIMESTAMPTZ, source_position BIGINT);
CREATE TABLE hourly_activity (window_start TIMESTAMPTZ, window_end TIMESTAMPTZ, casts BIGINT,
    top_level_casts BIGINT, replies BIGINT, reactions BIGINT, likes BIGINT, recasts BIGINT,
    distinct_authors BIGINT);
CREATE TABLE top_authors (window_start TIMESTAMPTZ, rank INTEGER, fid BIGINT, username VARCHAR,
    casts BIGINT, replies BIGINT);
CREATE TABLE most_replied_to (window_start TIMESTAMPTZ, rank INTEGER, fid BIGINT,
    username VARCHAR, replies_received BIGINT);
CREATE TABLE top_terms (window_start TIMESTAMPTZ, kind VARCHAR, rank INTEGER, term VARCHAR,
    uses BIGINT, authors BIGINT);
CREATE TABLE cast_engagement (hash VARCHAR, fid BIGINT, "timestamp" TIMESTAMPTZ,
    replies_seen BIGINT, recasts_seen BIGINT, likes_seen BIGINT, snapshot_replies BIGINT,
    snapshot_reactions BIGINT, snapshot_recasts BIGINT);
CREATE TABLE dead_letters (topic VARCHAR, kafka_partition INTEGER, kafka_offset BIGINT,
    kafka_timestamp TIMESTAMPTZ, window_start TIMESTAMPTZ, message_key BLOB,
    message_value BLOB, reason VARCHAR);
"""

# Private tables, each holding the canary 'LEAK' in a column named secret: a statement the guard
# accepted that returns 'LEAK' read something it must not.
PRIVATE_TABLES = (
    "raw_events",
    "cast_adds",
    "cast_removes",
    "kafka_offset_index",
    "kafka_index_state",
    "user_data",
    "reaction_messages",
)


def warehouse_double(*, canaries: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with empty public tables (and canary private tables), locked down
    like the read connection: no files, no network, no settings changes."""
    conn = duckdb.connect()
    conn.execute(PUBLIC_DDL)
    if canaries:
        for name in PRIVATE_TABLES:
            conn.execute(f"CREATE TABLE {name} AS SELECT 'LEAK' AS secret")
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")
    return conn


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = warehouse_double()
    yield conn
    conn.close()


def limits_of(sql: str) -> list[int]:
    """Every LIMIT in ``sql`` as a number (sqlglot's DuckDB rendering writes FETCH as LIMIT)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    return [int(node.expression.to_py()) for node in tree.find_all(exp.Limit)]


# -- the corpora -------------------------------------------------------------------------------


def test_corpora_are_large():
    assert len(REFUSED) >= 250
    assert len(ALLOWED) >= 60


@pytest.mark.parametrize(("case", "entry"), REFUSED, ids=[case for case, _ in REFUSED])
def test_refused(case, entry):
    with pytest.raises(SqlRefused) as refusal:
        guard(entry["sql"], PUBLIC_TABLES)
    message = str(refusal.value)
    assert "\n" not in message and message.strip() == message and message
    if "expect" in entry:
        assert entry["expect"].lower() in message.lower(), (entry["why"], message)


@pytest.mark.parametrize("entry", ALLOWED, ids=[f"allowed-{i}" for i in range(len(ALLOWED))])
def test_allowed(entry, duck):
    guarded = guard(entry["sql"], PUBLIC_TABLES)
    assert set(guarded.tables) <= set(PUBLIC_TABLES)
    limits = limits_of(guarded.sql)
    assert limits and max(limits) <= DEFAULT_LIMIT
    # a fixed point: what runs passes the guard unchanged
    assert guard(guarded.sql, PUBLIC_TABLES) == guarded
    # and DuckDB accepts the rewriting
    duck.execute(guarded.sql).fetchall()


# -- the holes users found -------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        'SELECT * FROM "some/file.json" '
        'WHERE EXISTS (WITH "some/file.json" AS (SELECT 1) SELECT 1)',
        "SELECT count(*) FROM raw_events, (WITH raw_events AS (SELECT 1) SELECT 1) t",
        "SELECT * FROM raw_events WHERE EXISTS (WITH raw_events AS (SELECT 1) SELECT 1)",
        "WITH RECURSIVE raw_events AS (SELECT * FROM raw_events UNION ALL "
        "SELECT * FROM raw_events) SELECT * FROM raw_events",
        "WITH RECURSIVE raw_events AS (SELECT 'a' AS secret UNION ALL BY NAME "
        "SELECT secret FROM raw_events) SELECT * FROM raw_events",
    ],
)
def test_a_cte_counts_only_where_it_is_visible(statement):
    with pytest.raises(SqlRefused):
        guard(statement, PUBLIC_TABLES)


def test_a_cte_shadows_a_name_in_its_own_scope(duck):
    guarded = guard(
        "WITH raw_events AS (SELECT hash FROM casts) SELECT count(*) FROM raw_events",
        PUBLIC_TABLES,
    )
    assert guarded.tables == ("casts",)
    guarded = guard(
        "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) "
        "SELECT * FROM t",
        PUBLIC_TABLES,
    )
    assert guarded.tables == ()
    assert duck.execute(guarded.sql).fetchall() == [(1,), (2,), (3,)]


def test_the_guard_agrees_with_duckdb_on_what_a_name_means():
    """Statements the guard accepts, run where the private tables hold a canary: DuckDB itself
    says whether a name meant the CTE or the table."""
    conn = warehouse_double(canaries=True)
    accepted = [
        "WITH raw_events AS (SELECT 'cte' AS secret) SELECT * FROM raw_events",
        "WITH RECURSIVE raw_events AS (SELECT 'a' AS secret UNION ALL "
        "SELECT secret FROM raw_events WHERE secret = 'LEAK') SELECT * FROM raw_events",
        "WITH RECURSIVE raw_events AS (SELECT 'a' AS secret UNION ALL (SELECT secret FROM "
        "raw_events WHERE secret = 'LEAK' UNION ALL SELECT secret FROM raw_events WHERE false)) "
        "SELECT * FROM raw_events",
        "WITH user_data AS (SELECT 'cte' AS secret) SELECT (SELECT max(secret) FROM user_data)",
        "WITH cast_adds AS (SELECT 'cte' AS secret) "
        "SELECT * FROM casts, LATERAL (SELECT * FROM cast_adds) RIGHT JOIN cast_adds ON true",
    ]
    for statement in accepted:
        rows = conn.execute(guard(statement, PUBLIC_TABLES).sql).fetchall()
        assert "LEAK" not in repr(rows), statement


def test_a_statement_hidden_in_a_nested_comment_is_dropped_with_it():
    guarded = guard(
        "SELECT 1 /* nested /* comment */ ; SELECT * FROM raw_events -- */", PUBLIC_TABLES
    )
    assert guarded.sql == "SELECT 1 LIMIT 1000"


# -- limits ----------------------------------------------------------------------------------


def test_a_huge_limit_is_capped_not_refused():
    guarded = guard("SELECT a.hash FROM casts a, casts b, casts c LIMIT 5000000", PUBLIC_TABLES)
    assert guarded.sql.endswith(f"LIMIT {DEFAULT_LIMIT}")


def test_every_limit_is_capped_inner_ones_too():
    guarded = guard(
        "WITH x AS (SELECT * FROM casts LIMIT 99999) "
        "SELECT * FROM (SELECT * FROM x LIMIT 12345678) s "
        "WHERE hash IN (SELECT hash FROM casts LIMIT 5000) "
        "UNION ALL (SELECT * FROM casts LIMIT 3) LIMIT ALL",
        PUBLIC_TABLES,
        limit=100,
    )
    assert sorted(limits_of(guarded.sql)) == [3, 100, 100, 100, 100]


def test_a_missing_limit_is_added_and_a_small_one_kept():
    assert guard("SELECT * FROM casts", PUBLIC_TABLES).sql.endswith(f"LIMIT {DEFAULT_LIMIT}")
    assert guard("SELECT * FROM casts LIMIT 7", PUBLIC_TABLES).sql.endswith("LIMIT 7")
    assert guard("SELECT * FROM casts FETCH FIRST 5 ROWS ONLY", PUBLIC_TABLES).sql.endswith(
        "LIMIT 5"
    )
    assert guard("SELECT 1 UNION SELECT 2", PUBLIC_TABLES).sql.endswith(f"LIMIT {DEFAULT_LIMIT}")


def test_offsets_are_bounded():
    assert "OFFSET 20" in guard("SELECT * FROM casts LIMIT 10 OFFSET 20", PUBLIC_TABLES).sql
    guard(f"SELECT * FROM casts OFFSET {MAX_OFFSET}", PUBLIC_TABLES)
    with pytest.raises(SqlRefused, match="OFFSET must be at most"):
        guard(f"SELECT * FROM casts OFFSET {MAX_OFFSET + 1}", PUBLIC_TABLES)
    with pytest.raises(SqlRefused, match="OFFSET must be at most 10"):
        guard("SELECT * FROM casts OFFSET 11", PUBLIC_TABLES, max_offset=10)


# -- the function allow-list -----------------------------------------------------------------


def duckdb_functions() -> dict[str, str]:
    """Every function DuckDB (this version, no extensions loaded) offers, with its type."""
    conn = duckdb.connect()
    rows = conn.execute(
        "SELECT function_name, min(function_type) FROM duckdb_functions() GROUP BY 1"
    ).fetchall()
    conn.close()
    return {name: kind for name, kind in rows if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)}


def parses_as_a_call(sql: str) -> bool:
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except Exception:
        return False
    return tree is not None and tree.find(exp.Func) is not None


def calls(name: str, template: str) -> Iterator[str]:
    for args in ("", "fid", "fid, 1", "fid, 1, 2"):
        sql = template.format(f"{name}({args})")
        if parses_as_a_call(sql):
            yield sql


def test_every_allowed_function_exists_and_passes():
    syntax = {
        "case",
        "cast",
        "try_cast",
        "coalesce",
        "collate",
        "columns",
        "exists",
        "extract",
        "if",
        "ifnull",
    }
    known = duckdb_functions()
    assert sorted(ALLOWED_FUNCTIONS - known.keys() - syntax) == []
    refused = []
    for name in sorted(ALLOWED_FUNCTIONS - syntax):
        for sql in calls(name, "SELECT {} FROM casts"):
            try:
                guard(sql, PUBLIC_TABLES)
            except SqlRefused as err:
                if "function" in str(err):
                    refused.append(f"{sql}: {err}")
    assert refused == []


def test_every_other_duckdb_function_is_refused():
    """All of DuckDB's functions, tables and pragmas not on the allow-list, called in a SELECT
    list and in FROM, with zero to three arguments: none may pass (a sqlglot typed expression
    shared with an allowed function would show here)."""
    passed = []
    for name in sorted(duckdb_functions().keys() - ALLOWED_FUNCTIONS):
        for template in ("SELECT {} FROM casts", "SELECT * FROM {}", "SELECT * FROM casts, {}"):
            for sql in calls(name, template):
                try:
                    guard(sql, PUBLIC_TABLES)
                except SqlRefused:
                    continue
                passed.append(sql)
    assert passed == []


# -- everything else -------------------------------------------------------------------------


def test_refusals_name_the_rule():
    cases = {
        "SELECT getenv('HOME')": "function getenv() is not allowed",
        "SELECT * FROM casts, read_csv('x')": "table functions are not allowed: read_csv()",
        "SELECT * FROM main.casts": "qualified table names are not allowed: main.casts",
        "SELECT * FROM raw_events": "table 'raw_events' is not public",
        "DESCRIBE casts": "only a SELECT query is allowed, got DESCRIBE",
        "SELECT 1; SELECT 2": "exactly one statement is allowed, got 2",
        "SELECT * FROM 'x.csv'": "table name 'x.csv' looks like a file or URL",
        "SELECT * FROM ｒａｗ_events": "(it reads as 'raw_events')",
        "SEL\u200bECT 1": "U+200B (ZERO WIDTH SPACE) at offset 3",
    }
    for statement, message in cases.items():
        with pytest.raises(SqlRefused) as refusal:
            guard(statement, PUBLIC_TABLES)
        assert message in str(refusal.value), statement


def test_names_with_newlines_still_give_one_line():
    with pytest.raises(SqlRefused) as refusal:
        guard('SELECT * FROM "raw\nevents"', PUBLIC_TABLES)
    assert "\n" not in str(refusal.value)


def test_allowed_tables_is_a_parameter():
    assert guard("SELECT * FROM Users", ("users",)).tables == ("users",)
    with pytest.raises(SqlRefused, match="not public"):
        guard("SELECT * FROM casts", ("users",))


def test_comments_never_reach_duckdb():
    guarded = guard("SELECT 1 /* */ -- ; DROP TABLE casts", PUBLIC_TABLES)
    assert "--" not in guarded.sql and "/*" not in guarded.sql


def test_over_long_statements_are_refused():
    hashes = ", ".join(f"'0x{i:040x}'" for i in range(MAX_STATEMENT_CHARS // 44 + 1))
    with pytest.raises(SqlRefused, match="longer than"):
        guard(f"SELECT * FROM casts WHERE hash IN ({hashes})", PUBLIC_TABLES)


def test_deep_nesting_is_refused_not_crashed():
    deep = "SELECT " + "(" * 5000 + "1" + ")" * 5000
    with pytest.raises(SqlRefused):
        guard(deep, PUBLIC_TABLES)
