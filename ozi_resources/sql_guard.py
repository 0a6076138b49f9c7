"""The SQL guard: every statement Ozi runs for a person or a model passes through here.

Parsed with sqlglot (DuckDB dialect), never matched with regular expressions. A statement is
allowed when it is exactly one SELECT (WITH, UNION and subqueries included), reads only the
public tables and views, calls no function that reaches files, the network, extensions or
settings, and has a LIMIT (one is added when missing). Execution then happens on a read-only
connection with a timeout, so the guard is one of several walls, not the only one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

DEFAULT_LIMIT = 1000

# Functions that read or write outside the warehouse, or change the session.
FORBIDDEN_FUNCTION_PREFIXES = ("read_", "sniff_", "parquet_", "iceberg_", "delta_", "glob")
FORBIDDEN_FUNCTIONS = {
    "read_csv",
    "read_csv_auto",
    "read_json",
    "read_json_auto",
    "read_json_objects",
    "read_ndjson",
    "read_parquet",
    "read_text",
    "read_blob",
    "read_xlsx",
    "parquet_scan",
    "parquet_metadata",
    "parquet_schema",
    "csv_scan",
    "json_scan",
    "glob",
    "httpfs",
    "sqlite_scan",
    "sqlite_attach",
    "postgres_scan",
    "postgres_attach",
    "mysql_scan",
    "query",
    "query_table",
    "getenv",
    "current_setting",
    "duckdb_settings",
    "duckdb_extensions",
    "duckdb_secrets",
    "load_extension",
    "install_extension",
    "system",
    "shell",
    "pragma",
    "set_config",
    "which_secret",
    "icu_sort_key",
}


WRITE_NODES = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
)


class SqlRefused(ValueError):
    """The statement is not a single read-only SELECT over the public tables; the message says
    which rule it broke."""


@dataclass(frozen=True)
class GuardedSql:
    sql: str  # the statement to run, LIMIT included
    tables: tuple[str, ...]  # the public tables it reads


def guard(
    statement: str, allowed_tables: tuple[str, ...], limit: int = DEFAULT_LIMIT
) -> GuardedSql:
    """Check one statement and return it ready to run.

    Raises SqlRefused with the reason when it is empty, does not parse, holds more than one
    statement, is anything but a SELECT, reads a table outside ``allowed_tables``, or calls a
    file, network, extension or settings function.
    """
    text = statement.strip().rstrip(";").strip()
    if not text:
        raise SqlRefused("empty statement")
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except ParseError as err:
        raise SqlRefused(f"the statement does not parse: {str(err).splitlines()[0]}") from err
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise SqlRefused(f"exactly one statement is allowed, got {len(trees)}")
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise SqlRefused(f"only SELECT is allowed, got {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, (exp.Command, exp.Pragma, exp.Set, exp.Into, exp.Copy, exp.Attach)):
            raise SqlRefused(f"{node.key.upper()} is not allowed")
        # A write can hide inside a query (WITH d AS (DELETE … RETURNING *) SELECT …).
        if isinstance(node, WRITE_NODES):
            raise SqlRefused(f"{node.key.upper()} inside a query is not allowed")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_FUNCTION_PREFIXES):
                raise SqlRefused(f"function {name}() reaches outside the warehouse")
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    tables = set()
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func) or not table.name:
            raise SqlRefused("table functions are not allowed in FROM")
        if table.args.get("db") or table.args.get("catalog"):
            raise SqlRefused(f"qualified table names are not allowed: {table.sql()}")
        name = table.name.lower()
        if name in cte_names:
            continue
        if name not in allowed_tables:
            raise SqlRefused(
                f"table {name!r} is not public; allowed: {', '.join(sorted(allowed_tables))}"
            )
        tables.add(name)
    existing = tree.args.get("limit")
    if existing is None:
        tree = tree.limit(limit)
    return GuardedSql(sql=tree.sql(dialect="duckdb"), tables=tuple(sorted(tables)))
