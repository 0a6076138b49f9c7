"""Property-based tests of the SQL guard (hypothesis).

* A forbidden thing (a private table, a file, a table function, a qualified name, a forbidden
  function) stays refused however it is wrapped: subqueries, CTEs, unions, joins, laterals,
  same-named CTEs in other scopes, comments, case and quoting.
* Whatever the guard accepts, DuckDB's own plan of it scans no private table: statements built
  around CTEs named like private tables (recursive ones too) are planned on a DuckDB that has
  those tables, and the plan says what each name meant.
* Every LIMIT in the output is at most the cap, and exactly the asked value below it.
* Statements from a small grammar of ordinary analytics pass, re-render to a fixed point and run.
* Nothing makes the guard fail with anything but SqlRefused.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from ozi_resources.sql_guard import GuardedSql, SqlRefused, guard
from ozi_resources.warehouse import PUBLIC_TABLES
from ozi_tests.test_sql_guard import PRIVATE_TABLES, PUBLIC_DDL, REFUSED, limits_of

FAST = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

FILES = ["x.csv", "/etc/passwd", "https://example.com/d.parquet", "s3://b/*.json", "notes.txt"]
TABLE_FUNCTIONS = [
    "read_csv('x.csv')",
    "read_parquet('s3://b/x.parquet')",
    "glob('/*')",
    "query_table('raw_events')",
    "ducklake_snapshots('lake')",
    "duckdb_settings()",
    "range(1000000000000)",
    "sniff_csv('x.csv')",
]
QUALIFIED = ["main.casts", "lake.casts", "db.main.casts", "information_schema.tables"]
FORBIDDEN_CALLS = ["getenv('HOME')", "current_setting('threads')", "getvariable('x')"]


def random_case(draw: st.DrawFn, word: str) -> str:
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in word)


def private_name(draw: st.DrawFn, name: str) -> str:
    spelled = random_case(draw, name)
    return f'"{spelled}"' if draw(st.booleans()) else spelled


@st.composite
def forbidden_core(draw: st.DrawFn) -> tuple[str, str | None]:
    """A query holding one forbidden thing, and the private name it reads (if any)."""
    kind = draw(st.sampled_from(["private", "file", "function", "qualified", "call"]))
    if kind == "private":
        name = draw(st.sampled_from(PRIVATE_TABLES))
        return f"SELECT * FROM {private_name(draw, name)}", name
    if kind == "file":
        quote = draw(st.sampled_from(["'", '"']))
        return f"SELECT * FROM {quote}{draw(st.sampled_from(FILES))}{quote}", None
    if kind == "function":
        return f"SELECT * FROM {draw(st.sampled_from(TABLE_FUNCTIONS))}", None
    if kind == "qualified":
        return f"SELECT * FROM {draw(st.sampled_from(QUALIFIED))}", None
    return f"SELECT {random_case(draw, draw(st.sampled_from(FORBIDDEN_CALLS)))} FROM casts", None


def wrappers(name: str | None, n: int) -> list[Callable[[str], str]]:
    """Ways to put a query q inside a bigger one without making its forbidden part legitimate:
    CTEs get fresh names, and a CTE named like the private table sits in another scope."""
    shadow = name or "raw_events"
    return [
        lambda q: f"SELECT * FROM ({q}) AS t{n}",
        lambda q: f"SELECT * FROM casts WHERE hash IN ({q})",
        lambda q: f"SELECT * FROM casts WHERE EXISTS ({q})",
        lambda q: f"SELECT ({q}) AS v{n}",
        lambda q: f"WITH c{n} AS ({q}) SELECT * FROM c{n}",
        lambda q: f"SELECT hash FROM casts UNION ALL {q}",
        lambda q: f"({q}) EXCEPT SELECT hash FROM casts",
        lambda q: f"SELECT * FROM casts JOIN ({q}) AS j{n} ON true",
        lambda q: f"SELECT * FROM casts, LATERAL ({q}) AS l{n}",
        lambda q: f"SELECT * FROM ({q}) AS a{n}, (WITH {shadow} AS (SELECT 1) SELECT 1) AS b{n}",
        lambda q: (
            f"SELECT * FROM ({q}) AS a{n} WHERE EXISTS (WITH {shadow} AS (SELECT 1) SELECT 1)"
        ),
        lambda q: f"(WITH {shadow} AS (SELECT 1) SELECT * FROM {shadow}) UNION ALL ({q})",
        lambda q: (
            f"WITH RECURSIVE {shadow} AS (({q}) UNION ALL SELECT * FROM {shadow}) "
            f"SELECT * FROM {shadow}"
        ),
        lambda q: (
            f"WITH RECURSIVE {shadow} AS (SELECT 1 UNION ALL BY NAME ({q})) SELECT * FROM {shadow}"
        ),
    ]


def sprinkle_comments(draw: st.DrawFn, sql: str) -> str:
    """Comments at some of the spaces (never inside a quoted name or literal: those are made
    without spaces)."""
    parts = sql.split(" ")
    out = [parts[0]]
    for part in parts[1:]:
        out.append(draw(st.sampled_from([" ", " ", " /* c */ ", " -- c\n", "\n\t"])))
        out.append(part)
    return "".join(out)


@st.composite
def wrapped_forbidden(draw: st.DrawFn) -> str:
    sql, name = draw(forbidden_core())
    for n in range(draw(st.integers(0, 4))):
        sql = draw(st.sampled_from(wrappers(name, n)))(sql)
    return sprinkle_comments(draw, sql)


@FAST
@given(wrapped_forbidden())
def test_a_forbidden_thing_stays_refused_however_wrapped(statement):
    with pytest.raises(SqlRefused):
        guard(statement, PUBLIC_TABLES)


# -- what DuckDB plans for whatever the guard accepts ------------------------------------------


def planning_double(public: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    """DuckDB with single-column tables: the public ones hold 'ok', the private ones 'LEAK'.
    The optimizer is off so a plan keeps every scan the statement asks for."""
    conn = duckdb.connect()
    for name in public:
        conn.execute(f"CREATE TABLE {name} AS SELECT 'ok' AS secret")
    for name in PRIVATE_TABLES:
        conn.execute(f"CREATE TABLE {name} AS SELECT 'LEAK' AS secret")
    conn.execute("PRAGMA disable_optimizer")
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")
    return conn


def scanned_tables(conn: duckdb.DuckDBPyConnection, sql: str) -> set[str] | None:
    """The tables DuckDB's plan of ``sql`` scans (None when DuckDB cannot plan it)."""
    try:
        rows = conn.execute(f"EXPLAIN (FORMAT json) {sql}").fetchall()
    except duckdb.Error:
        return None

    def walk(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            table = node.get("extra_info", {}).get("Table")
            if table:
                yield table.rsplit(".", 1)[-1]
            for child in node.get("children", []):
                yield from walk(child)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return set(walk(json.loads(rows[0][1])))


NAMES = ["raw_events", "user_data", "pub"]


@st.composite
def scoped_query(draw: st.DrawFn, depth: int = 0) -> str:
    """A query over one-column relations where CTEs take the private names, in every scope."""
    name = draw(st.sampled_from(NAMES))
    leaf = f"SELECT secret FROM {private_name(draw, name)}"
    if depth >= 3:
        return leaf

    def sub() -> str:
        return draw(scoped_query(depth + 1))

    shape = draw(st.integers(0, 10))
    if shape == 0:
        return leaf
    if shape == 1:
        return f"SELECT secret FROM ({sub()}) AS t{depth}"
    if shape == 2:
        return f"({sub()}) UNION ALL ({sub()})"
    if shape == 3:
        return f"WITH {name} AS ({sub()}) {sub()}"
    if shape == 4:
        other = draw(st.sampled_from(NAMES))
        return f"WITH {name} AS ({sub()}), {other}_2 AS ({sub()}) {sub()}"
    if shape == 5:
        operator = draw(st.sampled_from(["UNION", "UNION BY NAME", "INTERSECT", "EXCEPT"]))
        step = draw(st.sampled_from([f"SELECT secret FROM {name}", sub()]))
        return f"WITH RECURSIVE {name} AS (({sub()}) {operator} ({step})) {sub()}"
    if shape == 6:
        return f"SELECT (SELECT max(secret) FROM ({sub()}) AS s{depth}) AS secret"
    if shape == 7:
        return f"SELECT secret FROM pub WHERE EXISTS ({sub()})"
    if shape == 8:
        return f"SELECT secret FROM pub WHERE secret IN ({sub()})"
    if shape == 9:
        return f"SELECT l{depth}.secret FROM pub, LATERAL ({sub()}) AS l{depth}"
    return f"SELECT secret FROM ({sub()}) AS a{depth}, ({sub()}) AS b{depth}"


@st.composite
def covered_query(draw: st.DrawFn) -> str:
    """A scoped query, often under a top-level CTE that covers one private name (so more of
    them pass the guard) while the other private name stays uncovered."""
    sql = draw(scoped_query())
    if draw(st.booleans()):
        name = draw(st.sampled_from(NAMES[:2]))
        sql = f"WITH {name} AS (SELECT secret FROM pub) {sql}"
    return sql


@pytest.fixture(scope="module")
def planner() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = planning_double(("pub",))
    yield conn
    conn.close()


@settings(FAST, max_examples=300)
@given(covered_query())
def test_duckdb_scans_no_private_table_in_what_the_guard_accepts(planner, statement):
    try:
        guarded = guard(statement, ("pub",))
    except SqlRefused:
        return
    scanned = scanned_tables(planner, guarded.sql)
    if scanned is not None:
        assert scanned <= {"pub"}, (statement, scanned)


# -- limits ------------------------------------------------------------------------------------


@FAST
@given(
    cap=st.integers(1, 10_000),
    outer=st.one_of(st.none(), st.integers(0, 10**15)),
    inner=st.lists(st.integers(0, 10**15), max_size=3),
    fetch=st.booleans(),
)
def test_every_output_limit_is_at_most_the_cap(cap, outer, inner, fetch):
    sql = "SELECT hash FROM casts"
    for n, rows in enumerate(inner):
        sql = f"SELECT * FROM ({sql} LIMIT {rows}) AS s{n}"
    if outer is not None:
        sql += f" FETCH FIRST {outer} ROWS ONLY" if fetch else f" LIMIT {outer}"
    limits = limits_of(guard(sql, PUBLIC_TABLES, limit=cap).sql)
    expected = [min(rows, cap) for rows in inner] + [cap if outer is None else min(outer, cap)]
    assert sorted(limits) == sorted(expected)


@FAST
@given(offset=st.integers(0, 300_000), max_offset=st.integers(0, 200_000))
def test_offsets_pass_exactly_up_to_the_bound(offset, max_offset):
    sql = f"SELECT * FROM casts LIMIT 5 OFFSET {offset}"
    if offset <= max_offset:
        assert f"OFFSET {offset}" in guard(sql, PUBLIC_TABLES, max_offset=max_offset).sql
    else:
        with pytest.raises(SqlRefused, match="OFFSET"):
            guard(sql, PUBLIC_TABLES, max_offset=max_offset)


# -- a grammar of ordinary analytics -----------------------------------------------------------

COLUMNS = {
    "casts": {
        "num": ["fid", "parent_fid"],
        "text": ["hash", "username", "text"],
        "ts": ["timestamp"],
    },
    "reactions": {"num": ["fid", "target_fid"], "text": ["reaction_type"], "ts": ["timestamp"]},
    "users": {"num": ["follower_count", "fid"], "text": ["username", "bio"], "ts": ["updated_at"]},
    "hourly_activity": {"num": ["casts", "replies", "likes"], "text": [], "ts": ["window_start"]},
    "top_terms": {"num": ["uses", "rank"], "text": ["term", "kind"], "ts": ["window_start"]},
}
FUNCTIONS = {
    "num": ["{}", "abs({})", "round({} / 7.0, 2)", "coalesce({}, 0)", "{} * 2 + 1"],
    "text": ["{}", "lower({})", "length({})", "left({}, 3)", "regexp_replace({}, '[0-9]', '')"],
    "ts": ["date_trunc('hour', {})", "strftime({}, '%Y-%m-%d')", "year({})", "{} + INTERVAL 1 DAY"],
}
AGGREGATES = ["count(*)", "count(DISTINCT {})", "max({})", "min({})", "arg_max({}, {})"]
CTE_NAMES = ["daily", "raw_events", "user_data", "t", "cast_adds"]


def keyword(draw: st.DrawFn, word: str) -> str:
    return random_case(draw, word)


@st.composite
def column(draw: st.DrawFn, table: str, kinds: tuple[str, ...] = ("num", "text", "ts")) -> str:
    kind = draw(st.sampled_from([k for k in kinds if COLUMNS[table][k]]))
    name = draw(st.sampled_from(COLUMNS[table][kind]))
    return draw(st.sampled_from(FUNCTIONS[kind])).format(f'"{name}"')


@st.composite
def analytic_query(draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(sorted(COLUMNS)))
    spelled = draw(st.sampled_from([table, f'"{table}"', table.upper()]))
    select, frm = keyword(draw, "SELECT"), keyword(draw, "FROM")
    grouped = draw(st.booleans())
    key = draw(column(table))
    if grouped:
        inner = draw(st.sampled_from(COLUMNS[table]["num"] or COLUMNS[table]["text"]))
        aggregate = draw(st.sampled_from(AGGREGATES)).format(f'"{inner}"', f'"{inner}"')
        sql = f"{select} {key} AS k, {aggregate} AS v {frm} {spelled}"
    else:
        sql = f"{select} {key} AS k, {draw(column(table))} AS v {frm} {spelled}"
    if draw(st.booleans()) and COLUMNS[table]["num"]:
        sql += f' {keyword(draw, "WHERE")} "{COLUMNS[table]["num"][0]}" > {draw(st.integers())}'
    if grouped:
        sql += f" {keyword(draw, 'GROUP BY')} ALL"
    if draw(st.booleans()):
        sql += f" {keyword(draw, 'ORDER BY')} 1 {draw(st.sampled_from(['', 'DESC']))}"
    wrap = draw(st.integers(0, 3))
    if wrap == 1:
        name = draw(st.sampled_from(CTE_NAMES))
        sql = f"{keyword(draw, 'WITH')} {name} AS ({sql}) SELECT * FROM {name}"
    elif wrap == 2:
        sql = f"SELECT k, v FROM ({sql}) AS q UNION ALL SELECT k, v FROM ({sql}) AS r"
    elif wrap == 3:
        sql = f"SELECT * FROM ({sql}) AS q WHERE k IS NOT NULL"
    if draw(st.booleans()):
        sql += f" LIMIT {draw(st.integers(0, 10**9))}"
    return sql


@pytest.fixture(scope="module")
def duck() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    conn.execute(PUBLIC_DDL)
    yield conn
    conn.close()


@settings(FAST, max_examples=200)
@given(analytic_query())
def test_ordinary_analytics_pass_and_run(duck, statement):
    guarded = guard(statement, PUBLIC_TABLES)
    assert guarded.tables and set(guarded.tables) <= set(PUBLIC_TABLES)
    again = sqlglot.parse_one(guarded.sql, read="duckdb")
    assert isinstance(again, exp.Query)
    assert guard(guarded.sql, PUBLIC_TABLES) == guarded
    duck.execute(guarded.sql).fetchall()


# -- robustness --------------------------------------------------------------------------------


@st.composite
def mutated_corpus_statement(draw: st.DrawFn) -> str:
    """A refused corpus statement with a few characters inserted, deleted or replaced."""
    _, entry = draw(st.sampled_from(REFUSED))
    text = entry["sql"]
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        at = draw(st.integers(0, len(text) - 1))
        change = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from([*" ();,'\"*.-/", "casts", "SELECT", "--"]))
        if change == "insert":
            text = text[:at] + char + text[at:]
        elif change == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


@pytest.fixture(scope="module")
def canaries() -> Iterator[duckdb.DuckDBPyConnection]:
    conn = duckdb.connect()
    conn.execute(PUBLIC_DDL)
    for name in PRIVATE_TABLES:
        conn.execute(f"CREATE TABLE {name} AS SELECT 'LEAK' AS secret")
    conn.execute("PRAGMA disable_optimizer")
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")
    yield conn
    conn.close()


def accepted_reads_only_public(conn: duckdb.DuckDBPyConnection, result: GuardedSql) -> None:
    assert set(result.tables) <= set(PUBLIC_TABLES)
    scanned = scanned_tables(conn, result.sql)
    if scanned is not None:
        assert scanned <= set(PUBLIC_TABLES), (result.sql, scanned)


@settings(FAST, max_examples=300)
@given(st.one_of(mutated_corpus_statement(), st.text(max_size=200)))
def test_the_guard_only_ever_refuses_or_returns_public_sql(canaries, statement):
    try:
        result = guard(statement, PUBLIC_TABLES)
    except SqlRefused as refusal:
        assert "\n" not in str(refusal)
        return
    accepted_reads_only_public(canaries, result)
