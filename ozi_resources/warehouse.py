"""The DuckDB warehouse: one file, one writer at a time, any number of readers.

Writes go through dagster-duckdb's DuckDBResource, which retries while another process holds
the file's write lock (a backfill waiting behind a sensor run does not fail). Reads open the
file read-only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

# The public analytics contract: what `ozi sql` and question answering may read.
PUBLIC_TABLES = (
    "casts",
    "reactions",
    "users",
    "links",
    "hourly_activity",
    "top_authors",
    "most_replied_to",
    "top_terms",
    "cast_engagement",
    "dead_letters",
)

_STATEMENT_END = re.compile(r";\s*\n\s*\n")
_PARAM = re.compile(r"\$([a-z_]+)")


def split_statements(script: str) -> list[str]:
    """Split a .sql file into statements. Ozi's .sql files end each statement with ';' and a
    blank line, so no SQL parser is needed to split them."""
    return [s.strip().rstrip(";") for s in _STATEMENT_END.split(script + "\n\n") if s.strip()]


def run_script(
    conn: duckdb.DuckDBPyConnection, script: str, params: Mapping[str, Any] | None = None
) -> None:
    """Execute each statement of ``script``, binding the ``$name`` parameters it uses.

    Values are always bound, never formatted into the SQL.
    """
    for statement in split_statements(script):
        conn.execute(statement, bound(statement, params))


def bound(statement: str, params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The subset of ``params`` that ``statement`` names as ``$name`` (DuckDB refuses extra
    named parameters), or None when it names none."""
    params = params or {}
    used = {name: params[name] for name in set(_PARAM.findall(statement)) if name in params}
    return used or None


def schema_sql() -> str:
    return resources.files("ozi_resources").joinpath("schema.sql").read_text()


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse file. ``writer()`` for assets, ``reader()`` for questions and `ozi sql`."""

    path: str = Field(description="Path of the DuckDB file (OZI_DUCKDB_PATH).")
    lock_timeout_s: float = Field(
        default=120.0, description="How long a reader waits for a writer to release the file."
    )

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection with the schema in place (idempotent DDL)."""
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with DuckDBResource(database=self.path).get_connection() as conn:
            run_script(conn, schema_sql())
            yield conn

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection. Waits up to ``lock_timeout_s`` while a writer holds the
        file; raises FileNotFoundError when nothing was materialized yet."""
        if not Path(self.path).exists():
            raise FileNotFoundError(
                f"no warehouse at {self.path}: materialize the pipeline first (`make demo`)"
            )
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                conn = duckdb.connect(self.path, read_only=True)
                break
            except duckdb.IOException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        try:
            yield conn
        finally:
            conn.close()


def query(
    conn: duckdb.DuckDBPyConnection, statement: str, timeout_s: float = 10.0
) -> tuple[list[str], list[tuple]]:
    """Run one statement with a timeout; returns (column names, rows).

    Raises TimeoutError when it runs longer than ``timeout_s`` seconds (the query is
    interrupted, not left running).
    """
    import threading

    timer = threading.Timer(timeout_s, conn.interrupt)
    timer.start()
    try:
        cursor = conn.execute(statement)
        rows = cursor.fetchall()
        columns = [d[0] for d in cursor.description or []]
    except duckdb.InterruptException as err:
        raise TimeoutError(f"the query ran longer than {timeout_s:.0f}s and was stopped") from err
    finally:
        timer.cancel()
    return columns, rows
