"""Run the evaluation set's truth over Ozi's public tables (the I/O half of the evaluation;
``grade.py`` is the pure half).

``truth_for`` takes any DuckDB connection on which the public tables and views (casts,
reactions, users, ...) resolve: a reader of the lake (``WarehouseResource.reader()``), as
``run.py`` and the tests use. Truth SQL is written by hand, independently of the planner, and
runs as written (it is not planned, only read).

``python -m ozi_tests.eval.truth`` prints every entry's truth in short, reading the lake of
``$OZI_HOME`` (after `make demo`), to read when changing the set.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import duckdb
import yaml

QUESTIONS = Path(__file__).with_name("questions.yaml")


def load_questions(path: Path = QUESTIONS) -> list[dict[str, Any]]:
    """The entries of ``questions.yaml``, a list of dicts in file order."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def query(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """The rows of ``sql`` as dicts keyed by column name."""
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def truth_for(
    entry: dict[str, Any], con: duckdb.DuckDBPyConnection
) -> tuple[list[dict[str, Any]] | None, set[str] | None]:
    """``(truth_rows, relevant_hashes)`` of one entry, the inputs ``grade.grade`` takes.

    ``truth_rows`` is None when the entry has no ``truth_sql`` (semantic and refusal
    entries); ``relevant_hashes`` is None when it has no ``relevant_sql``.
    """
    rows = query(con, entry["truth_sql"]) if entry.get("truth_sql") else None
    relevant = None
    if entry.get("relevant_sql"):
        relevant = {row["hash"] for row in query(con, entry["relevant_sql"])}
    return rows, relevant


def main(argv: list[str]) -> int:
    """Print each entry's id, compare mode and a short view of its truth, for the sets named
    in ``argv`` (file names beside this module, e.g. tuning10.yaml; default questions.yaml)."""
    from ozi_assets.definitions import build_resources
    from ozi_resources.settings import OziSettings

    paths = [QUESTIONS.with_name(name) for name in argv] or [QUESTIONS]
    warehouse = build_resources(OziSettings.from_env())["warehouse"]
    with warehouse.reader() as con:
        return _print_truths(con, paths)


def _print_truths(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> int:
    for entry in (e for path in paths for e in load_questions(path)):
        rows, relevant = truth_for(entry, con)
        if relevant is not None:
            shown = f"{len(relevant)} relevant casts"
        elif rows is None:
            shown = "(refusal)"
        else:
            shown = f"{len(rows)} rows: " + "; ".join(
                ", ".join(str(v) for v in row.values()) for row in rows[:3]
            )
        print(f"{entry['id']:<40} {entry['compare']:<15} {shown[:150]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
