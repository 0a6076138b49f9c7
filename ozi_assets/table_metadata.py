"""What a materialization shows of the lake table it wrote: the standard table metadata the
Dagster UI recognises (``dagster/table_name``, ``dagster/column_schema``,
``dagster/row_count``) and small previews (at most PREVIEW_ROWS rows) as table metadata.

Everything here reads the lake through a reader connection; nothing writes. Table names are
constants of the stage modules, never input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import dagster as dg
import duckdb

from ozi_resources.warehouse import LAKE, WarehouseResource
from ozi_resources.windows import WindowGrid

PREVIEW_ROWS = 10


def table_name(table: str) -> str:
    """The name a person types to read ``table`` in DuckDB with the lake attached:
    ``lake.main.<table>``."""
    return f"{LAKE}.main.{table}"


def column_schema(conn: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    """The lake table's columns as DuckDB reports them (name, SQL type, NOT NULL), in table
    order. Raises ValueError when the lake has no such table."""
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE database_name = $db AND schema_name = 'main' AND table_name = $t "
        "ORDER BY column_index",
        {"db": LAKE, "t": table},
    ).fetchall()
    if not rows:
        raise ValueError(f"the lake has no table {table}")
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name, data_type, constraints=dg.TableColumnConstraints(nullable=bool(nullable))
            )
            for name, data_type, nullable in rows
        ]
    )


def window_row_counts(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    windows: Iterable[tuple[str, datetime, datetime]],
    column: str = "window_start",
    where: str = "TRUE",
) -> dict[str, int]:
    """{partition key: rows of ``table`` whose ``column`` (a TIMESTAMPTZ) lies in the window}
    for each (partition key, window start, window end), in one query. ``where`` narrows the
    rows further (a constant SQL condition of the caller, never input)."""
    windows = list(windows)
    if not windows:
        return {}
    counts = {key: 0 for key, _, _ in windows}
    bounds = [(start, end) for _, start, end in windows]
    found = conn.execute(
        f"""SELECT w.start, count(t.{column})
            FROM (SELECT unnest($starts) AS start, unnest($ends) AS stop) w
            LEFT JOIN (SELECT {column} FROM {table} WHERE {where}) t
              ON t.{column} >= w.start AND t.{column} < w.stop
            GROUP BY w.start""",
        {"starts": [s for s, _ in bounds], "ends": [e for _, e in bounds]},
    ).fetchall()
    by_start = {start: n for start, n in found}
    for key, start, _ in windows:
        counts[key] = int(by_start.get(start, 0))
    return counts


def table_entries(table: str, schema: dg.TableSchema, row_count: int) -> dict[str, Any]:
    """The three standard entries for one lake table and one partition's row count."""
    return {
        "dagster/table_name": dg.MetadataValue.text(table_name(table)),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
        "dagster/row_count": dg.MetadataValue.int(row_count),
    }


def cell(value: Any) -> str | int | float | bool | None:
    """A value a TableRecord takes and the UI can read: timestamps as ISO text (UTC),
    decimals as floats, a missing number (NaN, as pandas writes NULL) as None: the UI parses
    each record as JSON, which has no NaN, and shows "Could not parse record" for it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def preview(
    conn: duckdb.DuckDBPyConnection, statement: str, params: Mapping[str, Any] | None = None
) -> dg.TableMetadataValue:
    """The first PREVIEW_ROWS rows of ``statement`` (a constant query of the caller) as table
    metadata, columns typed as DuckDB reports them."""
    cursor = conn.execute(f"SELECT * FROM ({statement}) LIMIT {PREVIEW_ROWS}", params)
    names = [d[0] for d in cursor.description or []]
    types = [str(d[1]) for d in cursor.description or []]
    rows = cursor.fetchall()
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({n: cell(v) for n, v in zip(names, row, strict=True)}) for row in rows
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(n, t) for n, t in zip(names, types, strict=True)]
        ),
    )


def by_window(
    warehouse: WarehouseResource,
    grid: WindowGrid,
    partitions: Iterable[str],
    table: str,
    column: str = "window_start",
    where: str = "TRUE",
    more: Callable[[duckdb.DuckDBPyConnection, str], dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """{partition key: metadata} of ``table`` for each window: the three standard entries
    (the row count is the rows whose ``column`` lies in the window and that match ``where``)
    and, when given, ``more(conn, partition)`` (previews). All read on one reader connection,
    so the figures agree with each other. Empty entries when the lake does not exist yet."""
    partitions = sorted(set(partitions))
    if not warehouse.exists():
        return {key: {} for key in partitions}
    out: dict[str, dict[str, Any]] = {}
    with warehouse.reader() as conn:
        schema = column_schema(conn, table)
        counts = window_row_counts(
            conn,
            table,
            [(k, grid.start_of(k), grid.end_of(k)) for k in partitions],
            column,
            where,
        )
        for key in partitions:
            out[key] = table_entries(table, schema, counts[key]) | (more(conn, key) if more else {})
    return out
