"""`ozi sql` on a real DuckLake: the guard, then the locked-down read connection.

The lake holds public casts (enough to be written as Parquet files, plus a later inlined
commit) and a private table holding the canary LAKE-CANARY; the working directory holds files
holding FILE-CANARY. A statement that prints either canary read something it must not. The
statements of the issue, and the same tricks in other scopes and with other file readers, go
through the command as a person types them; the file tricks also go straight to the read
connection, unguarded, to show it is a wall of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ozi_assets import cli
from ozi_assets.definitions import build_resources
from ozi_resources.sql_guard import DEFAULT_LIMIT
from ozi_resources.warehouse import Commit, extension_files, query
from ozi_tests.conftest import REPO, SAMPLE_DIR, make_settings

LAKE_CANARY = "LAKE-CANARY"
FILE_CANARY = "FILE-CANARY"
INLINED_ROWS = 1000  # commits of at most this many rows stay inlined in the catalog
CASTS = 1500  # above INLINED_ROWS: this commit lands as Parquet files

# The statements of the issue.
ISSUE = [
    'SELECT * FROM "some/file.json" WHERE EXISTS (WITH "some/file.json" AS (SELECT 1) SELECT 1)',
    "SELECT count(*) FROM raw_events, (WITH raw_events AS (SELECT 1) SELECT 1) t",
]
# An inner-scope CTE named like a private table, in every other place a scope opens.
CTE_SCOPES = [
    # a subquery in the SELECT list
    "SELECT (WITH raw_events AS (SELECT 1) SELECT 1), (SELECT count(*) FROM raw_events)",
    "SELECT (SELECT max(message_value) FROM raw_events), "
    "(WITH raw_events AS (SELECT 1 AS x) SELECT max(x) FROM raw_events)",
    # JOIN ... ON
    "SELECT c.hash FROM casts c JOIN raw_events r "
    "ON (WITH raw_events AS (SELECT 1 AS x) SELECT max(x) FROM raw_events) = 1",
    "SELECT * FROM (WITH raw_events AS (SELECT 1) SELECT 1) t JOIN raw_events ON true",
    # UNION branches, either side
    "(WITH raw_events AS (SELECT 1 AS x) SELECT x FROM raw_events) "
    "UNION ALL SELECT message_value FROM raw_events",
    "SELECT message_value FROM raw_events "
    "UNION ALL (WITH raw_events AS (SELECT 1 AS x) SELECT x FROM raw_events)",
    # nested CTEs, and a CTE read before it is defined
    "WITH a AS (WITH raw_events AS (SELECT 1) SELECT * FROM raw_events) "
    "SELECT * FROM a, raw_events",
    "WITH a AS (SELECT * FROM raw_events), raw_events AS (SELECT 1) SELECT * FROM a",
    "WITH a AS (SELECT 1) SELECT * FROM a WHERE EXISTS "
    "(WITH b AS (WITH raw_events AS (SELECT 1) SELECT 1) SELECT * FROM raw_events)",
    # WHERE ... IN, LATERAL, a quoted name in another case
    "SELECT * FROM raw_events WHERE 1 IN (WITH raw_events AS (SELECT 1) SELECT * FROM raw_events)",
    "SELECT * FROM casts, LATERAL (WITH raw_events AS (SELECT 1) SELECT 1) l, raw_events",
    'SELECT * FROM "RAW_EVENTS" WHERE EXISTS (WITH "raw_events" AS (SELECT 1) SELECT 1)',
]
# Files, under every quoting and through every reader DuckDB has.
FILES = [
    'SELECT * FROM "some/file.json"',
    "SELECT * FROM 'some/file.json'",
    "FROM 'some/file.json'",
    'SELECT * FROM "some/data.csv"',
    "SELECT * FROM 'some/data.parquet'",
    "SELECT * FROM read_csv('some/data.csv')",
    "SELECT * FROM read_csv_auto('some/data.csv')",
    "SELECT * FROM read_parquet('some/data.parquet')",
    "SELECT * FROM read_json_auto('some/file.json')",
    "SELECT * FROM read_text('some/file.json')",
    "SELECT * FROM glob('some/*')",
    "SELECT * FROM casts, LATERAL read_text('some/file.json') f",
    "WITH f AS (SELECT * FROM 'some/file.json') SELECT * FROM f",
    "SELECT * FROM casts WHERE text IN (SELECT secret FROM 'some/data.csv')",
    "SELECT (SELECT content FROM read_text('some/file.json'))",
    'SELECT * FROM "some/data.csv" UNION ALL SELECT * FROM "some/data.csv"',
    "SELECT * FROM 'https://example.com/x.parquet'",
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """(settings, warehouse, folder with the canary files): a lake with public casts and a
    private canary, committed the way the stages commit."""
    home = tmp_path_factory.mktemp("lake")
    settings = make_settings(home)
    # Inlining on (off by default), so that the lake holds inlined rows as well as files.
    warehouse = build_resources(settings)["warehouse"].model_copy(
        update={"inlining_row_limit": INLINED_ROWS}
    )
    warehouse.write(
        Commit("test", ("clean/casts",)),
        lambda conn: conn.execute(
            'INSERT INTO cast_adds (hash, fid, text, "timestamp", window_start, '
            "source_position) SELECT '0x' || i, i % 7, 'cast ' || i, now(), now(), i "
            "FROM range($n) r(i)",
            {"n": CASTS},
        ),
    )
    warehouse.write(
        Commit("test", ("raw/farcaster_events",)),
        lambda conn: conn.execute(
            "INSERT INTO raw_events (topic, kafka_partition, kafka_offset, kafka_timestamp, "
            "window_start, event_window_start, message_value) "
            "VALUES ('t', 0, 0, now(), now(), now(), encode($canary))",
            {"canary": LAKE_CANARY},
        ),
    )
    files = home / "cwd"
    (files / "some").mkdir(parents=True)
    (files / "some" / "file.json").write_text(json.dumps({"secret": FILE_CANARY}))
    (files / "some" / "data.csv").write_text(f"secret\n{FILE_CANARY}\n")
    with duckdb.connect() as conn:  # an ordinary connection, to write the Parquet canary
        conn.execute(
            f"COPY (SELECT '{FILE_CANARY}' AS secret) TO '{files / 'some' / 'data.parquet'}'"
        )
    return settings, warehouse, files


@pytest.fixture
def ozi_sql(lake, monkeypatch, capsys):
    """Run `ozi sql ARGS...` in this process, in the folder holding the canary files, as a
    person would type it; returns (exit code, stdout, stderr)."""
    settings, _, files = lake
    monkeypatch.setenv("OZI_HOME", str(settings.home))
    monkeypatch.setenv("OZI_SAMPLE_DIR", str(SAMPLE_DIR))
    monkeypatch.chdir(files)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main(["sql", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def assert_one_line_failure(code: int, out: str, err: str, prefix: str) -> None:
    assert code != 0
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(prefix), err
    assert "Traceback" not in err


# -- what a person types ----------------------------------------------------------------------


@pytest.mark.parametrize("statement", ISSUE + CTE_SCOPES + FILES)
def test_ozi_sql_refuses_files_and_private_tables_in_one_line(ozi_sql, statement):
    code, out, err = ozi_sql(statement)
    assert_one_line_failure(code, out, err, "refused: ")
    assert LAKE_CANARY not in err and FILE_CANARY not in err


def test_a_cte_that_shadows_a_private_name_reads_the_cte(ozi_sql):
    code, out, err = ozi_sql(
        "WITH raw_events AS (SELECT 'from the cte' AS secret) SELECT * FROM raw_events", "--json"
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == [{"secret": "from the cte"}]


def test_a_user_limit_is_capped(ozi_sql):
    code, out, err = ozi_sql("SELECT a.hash FROM casts a, casts b, casts c LIMIT 5000000", "--json")
    assert (code, err) == (0, "")
    assert len(json.loads(out)) == DEFAULT_LIMIT


@pytest.mark.parametrize(
    ("args", "prefix"),
    [
        (["SELECT nope FROM casts"], "error: Binder Error: "),
        (["SELECT count(*) FROM casts WHERE fid = 'not a number'"], "error: Conversion Error: "),
        (["SELECT 1 +"], "refused: the statement does not parse"),
        (["SELECT 1", "--at", "999999"], "error: the lake has no snapshot 999999"),
    ],
)
def test_every_error_is_one_line(ozi_sql, args, prefix):
    assert_one_line_failure(*ozi_sql(*args), prefix)


def test_a_bad_setting_is_one_line(ozi_sql, monkeypatch):
    monkeypatch.setenv("OZI_BATCH_MESSAGES", "lots")
    assert_one_line_failure(
        *ozi_sql("SELECT 1"), "error: OZI_BATCH_MESSAGES must be a whole number, got 'lots'"
    )


def test_a_niceness_an_unprivileged_process_cannot_take_is_one_line(ozi_sql, monkeypatch):
    monkeypatch.setenv("OZI_EMBED_NICE", "-5")
    assert_one_line_failure(
        *ozi_sql("SELECT 1"), "error: OZI_EMBED_NICE must be a whole number from 0 to 19, got -5"
    )


def test_a_setting_outside_its_choices_is_one_line(ozi_sql, monkeypatch):
    monkeypatch.setenv("OZI_EMBED_PRECISION", "fp16")
    assert_one_line_failure(
        *ozi_sql("SELECT 1"),
        "error: OZI_EMBED_PRECISION must be one of auto, fp32, bf16, got 'fp16'",
    )


def test_no_lake_yet_is_one_line(ozi_sql, monkeypatch, tmp_path):
    monkeypatch.setenv("OZI_HOME", str(tmp_path))
    assert_one_line_failure(*ozi_sql("SELECT 1"), "error: no warehouse at ")


def test_the_console_script_prints_a_binder_error_without_a_traceback(lake):
    settings, _, files = lake
    env = dict(os.environ, OZI_HOME=str(settings.home), PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", "from ozi_assets.cli import entry; entry()", "sql",
         "SELECT nope FROM casts"],
        cwd=files, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("error: Binder Error: ") and done.stderr.count("\n") == 1


# -- the read connection on its own ----------------------------------------------------------


@pytest.mark.parametrize("statement", FILES + ISSUE[:1])
def test_the_reader_reads_no_file_even_without_the_guard(lake, monkeypatch, statement):
    _, warehouse, files = lake
    monkeypatch.chdir(files)
    with warehouse.reader() as conn:
        try:
            rows = conn.execute(statement).fetchall()
        except duckdb.Error as err:
            assert FILE_CANARY not in str(err)
        else:
            assert FILE_CANARY not in repr(rows)


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1) TO 'out.csv'",
        "ATTACH 'out.duckdb' AS other",
        "INSTALL json",
        f"LOAD '{extension_files()['httpfs']}'",  # a real extension file, outside the lake
        "SET enable_external_access = true",
        "SET autoload_known_extensions = true",
        "SET autoinstall_known_extensions = true",
        "SET lock_configuration = false",
        "SET allowed_directories = ['/']",
        "SET temp_directory = 'elsewhere'",
        "RESET enable_external_access",
    ],
)
def test_the_reader_refuses_writes_extensions_and_settings_without_the_guard(
    lake, monkeypatch, statement
):
    _, warehouse, files = lake
    monkeypatch.chdir(files)
    before = sorted(p.name for p in files.rglob("*"))
    with warehouse.reader() as conn, pytest.raises(duckdb.Error):
        conn.execute(statement)
    assert sorted(p.name for p in files.rglob("*")) == before


@pytest.mark.parametrize("at_snapshot", [False, True])
def test_the_reader_is_locked_down_and_still_reads_the_lake(lake, at_snapshot):
    _, warehouse, _ = lake
    parquet = list(Path(warehouse.data_path).rglob("*.parquet"))
    assert parquet, "the casts commit should have written Parquet files"
    with warehouse.reader() as conn:
        snapshot = warehouse.newest_snapshot_id(conn) if at_snapshot else None
    with warehouse.reader(snapshot=snapshot) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN ("
                "'enable_external_access', 'autoload_known_extensions', "
                "'autoinstall_known_extensions', 'lock_configuration')"
            ).fetchall()
        )
        assert settings == {
            "enable_external_access": "false",
            "autoload_known_extensions": "false",
            "autoinstall_known_extensions": "false",
            "lock_configuration": "true",
        }
        # Parquet files and inlined rows both read through the locked connection.
        assert conn.execute("SELECT count(*) FROM casts").fetchone() == (CASTS,)
        assert conn.execute("SELECT count(*) FROM raw_events").fetchone() == (1,)


def test_a_locked_reader_sees_commits_made_after_it_opened(lake):
    _, warehouse, _ = lake
    with warehouse.reader() as conn:  # opens (and locks) this process's shared reader
        before = conn.execute("SELECT count(*) FROM casts").fetchone()[0]
        snapshot = warehouse.newest_snapshot_id(conn)
    warehouse.write(
        Commit("test", ("clean/casts",)),
        lambda conn: conn.execute(
            'INSERT INTO cast_adds (hash, fid, text, "timestamp", window_start, '
            "source_position) VALUES ('0xlate', 1, 'late', now(), now(), -1)"
        ),
    )
    with warehouse.reader() as conn:
        assert conn.execute("SELECT count(*) FROM casts").fetchone() == (before + 1,)
    with warehouse.reader(snapshot=snapshot) as conn:
        assert conn.execute("SELECT count(*) FROM casts").fetchone() == (before,)


def test_rows_are_fetched_in_bounded_batches(lake):
    """Without any LIMIT, a cross join of CASTS³ rows (billions) returns its first rows at
    once: the reader streams, and ``query`` stops at ``max_rows``."""
    _, warehouse, _ = lake
    with warehouse.reader() as conn:
        columns, rows = query(
            conn, "SELECT a.hash FROM casts a, casts b, casts c", timeout_s=10, max_rows=2500
        )
    assert columns == ["hash"] and len(rows) == 2500
