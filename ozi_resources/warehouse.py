"""The warehouse: a DuckLake. Many processes read while Dagster runs write; each commit is a
snapshot that can be read again later (time travel).

A DuckLake keeps its catalog (tables, snapshots, file lists) in a database and its data as
Parquet files. The embedded default is a SQLite catalog in WAL mode with the files under
``$OZI_HOME/lake/``; production points the same code at a Postgres catalog and an S3 bucket
(``OZI_LAKE_CATALOG``, ``OZI_LAKE_DATA_PATH``, credentials through dagster-aws's S3 resource).
A reader attaches the catalog read-only at one snapshot and never waits for a writer; a
writer's transaction commits as one snapshot whose commit message names the Dagster run,
asset and partition that wrote it (the lineage of a snapshot).

DuckLake runs offline only on DuckDB 1.5.5 with the extension wheels of that version
(``duckdb-extension-ducklake`` and friends): each wheel carries the extension file, which is
installed once into ``$OZI_HOME/duckdb_extensions`` and loaded from there, with DuckDB's
automatic install and load switched off so nothing is ever downloaded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import importlib
import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
import tenacity
from dagster_aws.s3 import S3Resource
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
T = TypeVar("T")
LAKE = "lake"  # the name the lake is attached under in every connection
# Bump when schema.sql changes: writers apply it once per version, not on every open (every
# DDL statement on a DuckLake is a commit, so re-running it would add a snapshot per run).
SCHEMA_VERSION = 6
EXTENSIONS = ("ducklake", "sqlite", "postgres", "httpfs")

_STATEMENT_END = re.compile(r";\s*\n\s*\n")
_PARAM = re.compile(r"\$([a-z_]+)")
_install_lock = threading.Lock()
# Opening a DuckDB instance and attaching the lake costs 0.2-0.5 s (extension loading), so each
# process keeps one writer instance and one reader instance per lake and hands out cursors
# (each cursor is a connection of its own to the same instance).
_instances: dict[tuple[str, str, bool, int], duckdb.DuckDBPyConnection] = {}
_instances_lock = threading.Lock()


class WarehouseError(RuntimeError):
    """The lake cannot be opened (nothing materialized yet, an unknown snapshot, a catalog
    that cannot be reached); the message says which and what to do."""


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


@dataclass(frozen=True)
class Snapshot:
    """One committed state of the lake: DuckLake's snapshot id and commit time (UTC)."""

    id: int
    time: datetime


@dataclass(frozen=True)
class Commit:
    """Who writes a transaction: stored as the snapshot's commit message, so the lineage of
    any snapshot names the run, assets and partition that produced it."""

    run_id: str
    assets: tuple[str, ...]  # asset keys, e.g. ("clean/casts",)
    partition: str | None = None

    @classmethod
    def of(cls, context: dg.AssetExecutionContext | dg.OpExecutionContext) -> Commit:
        """The commit of the asset (or op) the context runs."""
        keys: tuple[str, ...] = ()
        partition = None
        if isinstance(context, dg.AssetExecutionContext):
            keys = tuple(k.to_user_string() for k in context.selected_asset_keys)
            partition = context.partition_key if context.has_partition_key else None
        return cls(context.run_id, keys, partition)

    def extra_info(self) -> str:
        return json.dumps(
            {"run_id": self.run_id, "assets": list(self.assets), "partition": self.partition}
        )


def extension_files() -> dict[str, str]:
    """{extension name: path of its file inside the PyPI wheel}. Raises WarehouseError when a
    wheel is missing (the extension would otherwise be downloaded, which must never happen)."""
    found = {}
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(f"duckdb_extension_{name}")
        except ImportError as err:
            raise WarehouseError(
                f"the DuckDB extension package duckdb-extension-{name}=={duckdb.__version__} "
                "is not installed"
            ) from err
        folder = Path(module.__file__ or "").parent
        files = glob.glob(str(folder / "extensions" / "*" / f"{name}.duckdb_extension"))
        if not files:
            raise WarehouseError(f"duckdb-extension-{name} ships no {name}.duckdb_extension")
        found[name] = files[0]
    return found


def connect(
    extension_directory: str, extensions: Sequence[str] = EXTENSIONS
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with ``extensions`` loaded from the wheels.

    Autoinstall and autoload are off, so a missing extension is an error, not a download.
    The extensions are installed into ``extension_directory`` on first use (DuckDB loads
    them from there; loading the wheel's file directly fails on its entry point name).
    """
    folder = Path(extension_directory)
    conn = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "extension_directory": str(folder),
        }
    )
    installed = {p.stem for p in folder.glob(f"v{duckdb.__version__}/*/*.duckdb_extension")}
    if not set(EXTENSIONS) <= installed:
        with _install_lock:
            for name, path in extension_files().items():
                if name not in installed:
                    conn.execute(f"INSTALL '{path}'")
    for name in extensions:
        conn.execute(f"LOAD {name}")
    return conn


def _quote(value: str) -> str:
    """A SQL string literal. ATTACH and CREATE SECRET take no bound parameters, and their
    values come from configuration, never from a person's input."""
    return "'" + value.replace("'", "''") + "'"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckLake. ``transaction()`` for assets (one commit, one snapshot), ``reader()`` for
    questions and `ozi sql` (read-only, at one snapshot, locked down)."""

    catalog: str = Field(
        description="DuckLake catalog (OZI_LAKE_CATALOG): 'sqlite:<file>' for the embedded "
        "default, 'postgres:<libpq connection string>' in production."
    )
    data_path: str = Field(
        description="Where the Parquet files go (OZI_LAKE_DATA_PATH): a folder, or "
        "s3://bucket/prefix/ (credentials and endpoint from the s3 resource)."
    )
    extension_directory: str = Field(
        description="Where DuckDB's extensions are installed from their wheels."
    )
    s3: S3Resource = Field(
        default_factory=S3Resource,
        description="Credentials, region and endpoint for an s3:// data path (dagster-aws).",
    )
    # Off by default: on a SQLite catalog a stream_job batch cost 1.76 s with 1,000-row
    # inlining against 1.25 s writing Parquet files (raw and clean 0.57 against 0.29 s, and
    # growing faster with the batches before it); stream_job compacts the small files instead.
    inlining_row_limit: int = Field(
        default=0,
        description="Commits of at most this many rows stay inlined in the catalog until "
        "housekeeping flushes them to Parquet (0: every commit writes Parquet files).",
    )
    query_timeout_s: float = Field(default=10.0, description="Longest a read query may run.")
    reader_memory_mib: int = Field(
        default=2048, description="Memory a reader process's queries may use together."
    )
    temp_directory: str = Field(
        default="",
        description="Where a reader spills a query larger than its memory limit (empty: "
        "DuckDB's default, .tmp in the working directory). The one folder besides the data "
        "path a locked-down reader may touch.",
    )
    snapshot_retention_hours: float = Field(
        default=168.0,
        description="Housekeeping expires snapshots older than this "
        "(OZI_SNAPSHOT_RETENTION_HOURS); time travel reaches back this far.",
    )

    # -- connections -------------------------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        return self.catalog.startswith("sqlite:")

    def _catalog_file(self) -> Path:
        return Path(self.catalog.removeprefix("sqlite:"))

    def exists(self) -> bool:
        """True once a writer has created the lake (for a SQLite catalog: the file exists)."""
        return not self.is_sqlite or self._catalog_file().exists()

    def _s3_secret(self, conn: duckdb.DuckDBPyConnection) -> None:
        s3 = self.s3
        options = ["TYPE s3"]
        if s3.aws_access_key_id:
            options.append(f"KEY_ID {_quote(s3.aws_access_key_id)}")
        if s3.aws_secret_access_key:
            options.append(f"SECRET {_quote(s3.aws_secret_access_key)}")
        if s3.aws_session_token:
            options.append(f"SESSION_TOKEN {_quote(s3.aws_session_token)}")
        options.append(f"REGION {_quote(s3.region_name or 'us-east-1')}")
        if s3.endpoint_url:
            # DuckDB wants host:port and the scheme as USE_SSL; an endpoint other than AWS
            # (MinIO, moto) serves buckets by path.
            endpoint = re.sub(r"^https?://", "", s3.endpoint_url).rstrip("/")
            use_ssl = s3.endpoint_url.startswith("https://")
            options += [f"ENDPOINT {_quote(endpoint)}", "URL_STYLE 'path'", f"USE_SSL {use_ssl}"]
        conn.execute(f"CREATE OR REPLACE SECRET ozi_s3 ({', '.join(options)})")

    def _attach(
        self, conn: duckdb.DuckDBPyConnection, read_only: bool, snapshot: int | None = None
    ) -> None:
        if self.data_path.startswith("s3://"):
            self._s3_secret(conn)
        options = [f"DATA_PATH {_quote(self.data_path)}"]
        if read_only:
            options.append("READ_ONLY")
        else:
            options.append(f"DATA_INLINING_ROW_LIMIT {int(self.inlining_row_limit)}")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        conn.execute(
            f"ATTACH {_quote('ducklake:' + self.catalog)} AS {LAKE} ({', '.join(options)})"
        )
        conn.execute(f"USE {LAKE}")

    def _prepare_catalog(self) -> None:
        """A new SQLite catalog gets WAL journaling: readers in other processes then never
        wait for a writer's commit (with the default journal they stalled for seconds)."""
        if not self.is_sqlite:
            return
        path = self._catalog_file()
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.data_path.startswith("s3://"):
            Path(self.data_path).mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA journal_mode=wal")

    def _extensions(self) -> tuple[str, ...]:
        needed = ["ducklake", "sqlite" if self.is_sqlite else "postgres"]
        if self.data_path.startswith("s3://"):
            needed.append("httpfs")
        return tuple(needed)

    def _open(self, read_only: bool, snapshot: int | None = None) -> duckdb.DuckDBPyConnection:
        conn = connect(self.extension_directory, self._extensions())
        try:
            self._attach(conn, read_only=read_only, snapshot=snapshot)
            if read_only:
                self._lock_down(conn)
            else:
                for attempt in self.retrying():  # two first writers may race to create it
                    with attempt:
                        self._ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """A stream run (tagged ``ozi/mode``) opens this process's lake connections here, at
        resource init, before its steps queue for the lake_writer slot: loading DuckDB's
        extensions and attaching take about a second on 2 cores, a second the run would
        otherwise spend holding the slot while the next micro-batch waits. A failure here is
        left for the first step to meet and report."""
        run = context.dagster_run
        if run is None or "ozi/mode" not in run.tags or not self.exists():
            return
        with contextlib.suppress(duckdb.Error, OSError, WarehouseError):
            self._shared(read_only=False)
            self._shared(read_only=True)

    def _shared(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """This process's instance attached to the lake (newest snapshot), opened once."""
        key = (self.catalog, self.data_path, read_only, os.getpid())
        with _instances_lock:
            conn = _instances.get(key)
            if conn is None:
                conn = _instances[key] = self._open(read_only)
            return conn

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the lake (``USE lake``) with the schema in place."""
        self._prepare_catalog()
        cursor = self._shared(read_only=False).cursor()
        try:
            cursor.execute(f"USE {LAKE}")
            # The clean stage's helper: hub timestamps are seconds since the Farcaster epoch.
            cursor.execute(
                "CREATE OR REPLACE TEMP MACRO farcaster_time(seconds) AS "
                "TIMESTAMPTZ '2021-01-01 00:00:00+00' + to_seconds(seconds::BIGINT)"
            )
            yield cursor
        finally:
            cursor.close()

    def write(self, commit: Commit, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run ``work(conn)`` in one transaction committed as one snapshot (``commit``), again
        from the start when the commit lost to another writer; returns what ``work`` returns.

        A SQLite catalog takes one committing writer at a time and answers "database is
        locked" to the other (DuckLake's own retries do not cover it); Dagster's lake_writer
        pool keeps runs apart, but `ozi backfill` runs in-process beside the daemon. So
        ``work`` must be safe to run twice (every Ozi write is: delete, then insert).
        """

        def attempt() -> T:
            with self.transaction(commit) as conn:
                return work(conn)

        return self.retrying()(attempt)

    def retrying(self, attempts: int = 8) -> tenacity.Retrying:
        """Retries for a transaction whose commit collided with another writer's (see
        ``write``), with jittered exponential waits."""
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_write_conflict),
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential_jitter(initial=0.05, max=2.0),
            reraise=True,
        )

    def write_on(
        self,
        conn: duckdb.DuckDBPyConnection,
        commit: Commit,
        work: Callable[[duckdb.DuckDBPyConnection], T],
    ) -> T:
        """``write`` on a writer the caller holds (from ``writer``): what ``work`` needs that
        was prepared on that connection before (its temp tables) stays there for every
        attempt. Keep ``work`` short: on a SQLite catalog a transaction loses its commit to
        any writer that committed since its first read (a refresh of the aggregates that read
        for seconds inside its transaction lost all 8 attempts to the batches beside it)."""

        def attempt() -> T:
            with _transaction(conn, commit):
                return work(conn)

        return self.retrying()(attempt)

    @contextmanager
    def transaction(self, commit: Commit) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writer inside one transaction: everything done in the block commits as one
        snapshot whose commit message is ``commit``; an exception rolls it all back. Prefer
        ``write``, which also retries a commit that lost to another writer."""
        with self.writer() as conn, _transaction(conn, commit):
            yield conn

    def _ensure_schema(self, conn: duckdb.DuckDBPyConnection) -> None:
        row = conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = $db "
            "AND table_name = 'ozi_schema'",
            {"db": LAKE},
        ).fetchone()
        if row and row[0]:
            version = conn.execute("SELECT max(version) FROM ozi_schema").fetchone()
            if version and version[0] == SCHEMA_VERSION:
                return
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(
                f"CALL {LAKE}.set_commit_message('ozi', 'schema', extra_info => $extra)",
                {"extra": json.dumps({"schema_version": SCHEMA_VERSION})},
            )
            run_script(conn, schema_sql())
            conn.execute("CREATE TABLE IF NOT EXISTS ozi_schema (version INTEGER)")
            conn.execute("DELETE FROM ozi_schema")
            conn.execute("INSERT INTO ozi_schema VALUES ($v)", {"v": SCHEMA_VERSION})
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(duckdb.TransactionException):
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def reader(self, snapshot: int | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection to the lake at ``snapshot`` (None: the newest), locked down:
        no file or network access beyond the lake's own data files, no extension loading,
        configuration locked. It never waits for a writer and never makes one wait.

        Raises WarehouseError when nothing was materialized yet or the snapshot is unknown
        (expired, or not yet written).
        """
        if not self.exists():
            raise WarehouseError(
                f"no warehouse at {self.catalog}: materialize the pipeline first (`make demo`)"
            )
        if snapshot is None:
            try:
                conn = self._shared(read_only=True).cursor()
            except duckdb.Error as err:
                raise WarehouseError(f"cannot open the lake: {first_line(err)}") from err
        else:
            try:
                conn = self._open(read_only=True, snapshot=snapshot)
            except duckdb.Error as err:
                raise WarehouseError(
                    f"the lake has no snapshot {snapshot}: see `ozi snapshots`"
                ) from err
        try:
            conn.execute(f"USE {LAKE}")
            yield conn
        finally:
            conn.close()

    def _lock_down(self, conn: duckdb.DuckDBPyConnection) -> None:
        """No statement on this connection can reach a file, URL or setting outside the lake.

        The lake's data files stay readable (DuckLake reads them on this connection), so they
        are the one allowed directory; everything else is refused by DuckDB itself.
        """
        folder = self.data_path
        if not folder.startswith("s3://"):
            folder = str(Path(folder))
        if self.temp_directory:
            # Spill files belong to Ozi's home, not to whatever directory `ozi sql` ran in;
            # DuckDB adds this folder to the allowed ones by itself.
            Path(self.temp_directory).mkdir(parents=True, exist_ok=True)
            conn.execute("SET temp_directory = $t", {"t": self.temp_directory})
        conn.execute("SET allowed_directories = [$d]", {"d": folder})
        # The one bound on a query's memory (huge strings or lists); the guard caps rows.
        conn.execute("SET memory_limit = $m", {"m": f"{self.reader_memory_mib}MiB"})
        # Readers take at most half the cores, so ingestion always keeps the rest.
        conn.execute("SET threads = $t", {"t": max(1, (os.cpu_count() or 2) // 2)})
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")

    # -- snapshots ---------------------------------------------------------------------------

    def snapshots(self, conn: duckdb.DuckDBPyConnection) -> list[SnapshotRecord]:
        """Every snapshot the catalog keeps, oldest first, with the commit that made it."""
        rows = conn.execute(
            f"SELECT snapshot_id, snapshot_time, commit_extra_info "
            f"FROM ducklake_snapshots({_quote(LAKE)}) ORDER BY snapshot_id"
        ).fetchall()
        return [SnapshotRecord.from_row(*row) for row in rows]

    def first_snapshot_of_run(self, conn: duckdb.DuckDBPyConnection, run_id: str) -> int | None:
        """The first snapshot a Dagster run committed (commit messages name the run), or None
        when it committed nothing."""
        row = conn.execute(
            f"SELECT min(snapshot_id) FROM ducklake_snapshots({_quote(LAKE)}) "
            "WHERE json_valid(commit_extra_info) "
            "AND json_extract_string(commit_extra_info, '$.run_id') = $r",
            {"r": run_id},
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def commits_of(
        self, conn: duckdb.DuckDBPyConnection, asset: str, partition: str | None, limit: int
    ) -> list[SnapshotRecord]:
        """The commits that materialized ``asset`` (e.g. "clean/casts"), of one partition when
        ``partition`` is given, newest first, at most ``limit``."""
        rows = conn.execute(
            f"""
            SELECT snapshot_id, snapshot_time, commit_extra_info
            FROM ducklake_snapshots({_quote(LAKE)})
            WHERE json_valid(commit_extra_info)
              AND list_contains(json_extract_string(commit_extra_info, '$.assets[*]'), $asset)
              AND ($partition IS NULL
                   OR json_extract_string(commit_extra_info, '$.partition') = $partition)
            ORDER BY snapshot_id DESC
            LIMIT $limit
            """,
            {"asset": asset, "partition": partition, "limit": limit},
        ).fetchall()
        return [SnapshotRecord.from_row(*row) for row in rows]

    def lineage_commits(self, conn: duckdb.DuckDBPyConnection, up_to: int) -> list[SnapshotRecord]:
        """The newest commit of each (asset, partition) at or before snapshot ``up_to``, one
        record per asset: what an answer read at ``up_to`` rests on. Computed in SQL, so it
        costs milliseconds however many micro-batch snapshots the catalog keeps."""
        rows = conn.execute(
            f"""
            WITH commits AS (
                SELECT snapshot_id, snapshot_time, commit_extra_info AS info,
                       unnest(json_extract_string(commit_extra_info, '$.assets[*]')) AS asset
                FROM ducklake_snapshots({_quote(LAKE)})
                WHERE snapshot_id <= $up_to AND json_valid(commit_extra_info)
            )
            SELECT max(snapshot_id), arg_max(snapshot_time, snapshot_id),
                   arg_max(info, snapshot_id), asset
            FROM commits
            GROUP BY asset, json_extract_string(info, '$.partition')
            ORDER BY 1
            """,
            {"up_to": up_to},
        ).fetchall()
        return [
            dataclasses.replace(SnapshotRecord.from_row(i, t, info), assets=(asset,))
            for i, t, info, asset in rows
        ]

    def newest_snapshot_id(self, conn: duckdb.DuckDBPyConnection) -> int:
        """The newest snapshot in the catalog (whatever snapshot ``conn`` reads)."""
        row = conn.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots({_quote(LAKE)})")
        value = row.fetchone()
        return int(value[0]) if value and value[0] is not None else 0

    def current_snapshot_id(self, conn: duckdb.DuckDBPyConnection) -> int:
        """The id of the snapshot this connection reads (its attach version, or the latest),
        without its time: ``current_snapshot`` also reads the time, from the list of every
        snapshot, which grows by one a commit until housekeeping expires them (the two reads
        of ``current_snapshot`` took about 15% of `ozi serve`'s CPU under a 500 events/s
        stream, where its sync needs only the id each second). Raises WarehouseError when
        the lake reports none."""
        row = conn.execute(f"FROM {LAKE}.current_snapshot()").fetchone()
        if row is None:
            raise WarehouseError("the lake reports no snapshot")
        return int(row[0])

    def current_snapshot(self, conn: duckdb.DuckDBPyConnection) -> Snapshot:
        """The snapshot this connection reads (its attach version, or the latest), with its
        time."""
        snapshot_id = self.current_snapshot_id(conn)
        stamp = conn.execute(
            f"SELECT snapshot_time FROM ducklake_snapshots({_quote(LAKE)}) WHERE snapshot_id = $id",
            {"id": snapshot_id},
        ).fetchone()
        return Snapshot(snapshot_id, stamp[0] if stamp else datetime.min)


@dataclass(frozen=True)
class SnapshotRecord:
    """A snapshot with what its commit message says: the run, assets and partition that wrote
    it (None for commits Ozi did not label, such as DuckLake's own housekeeping)."""

    id: int
    time: datetime
    run_id: str | None
    assets: tuple[str, ...]
    partition: str | None

    @classmethod
    def from_row(cls, snapshot_id: int, time: datetime, extra: str | None) -> SnapshotRecord:
        info: dict[str, Any] = {}
        if extra:
            try:
                info = json.loads(extra)
            except ValueError:
                info = {}
        return cls(
            int(snapshot_id),
            time,
            info.get("run_id"),
            tuple(info.get("assets") or ()),
            info.get("partition"),
        )


@contextmanager
def _transaction(conn: duckdb.DuckDBPyConnection, commit: Commit) -> Iterator[None]:
    """One transaction on the writer ``conn``, committed as one snapshot whose commit message
    is ``commit``; an exception rolls it all back."""
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            f"CALL {LAKE}.set_commit_message('ozi', $message, extra_info => $extra)",
            {"message": ", ".join(commit.assets) or "ozi", "extra": commit.extra_info()},
        )
        yield
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT has already ended the transaction: nothing to roll back.
        with contextlib.suppress(duckdb.TransactionException):
            conn.execute("ROLLBACK")
        raise


def is_write_conflict(err: BaseException) -> bool:
    """True for a commit that lost to another writer and can simply be tried again."""
    text = str(err).lower()
    return isinstance(err, duckdb.Error) and ("database is locked" in text or "conflict" in text)


def first_line(err: BaseException) -> str:
    """The first line of an error's message: DuckDB's errors carry a caret diagram below."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def query(
    conn: duckdb.DuckDBPyConnection,
    statement: str,
    timeout_s: float = 10.0,
    max_rows: int | None = None,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
) -> tuple[list[str], list[tuple]]:
    """Run one statement with a timeout; returns (column names, rows), at most ``max_rows``
    rows fetched (in batches, so a runaway result never lands in memory whole).

    Raises TimeoutError when it runs longer than ``timeout_s`` seconds (the query is
    interrupted, not left running) and duckdb.Error when DuckDB refuses it.
    """
    timer = threading.Timer(timeout_s, conn.interrupt)
    timer.start()
    try:
        cursor = conn.execute(statement, params)
        columns = [d[0] for d in cursor.description or []]
        rows: list[tuple] = []
        while max_rows is None or len(rows) < max_rows:
            batch = cursor.fetchmany(1000 if max_rows is None else min(1000, max_rows - len(rows)))
            if not batch:
                break
            rows.extend(batch)
    except duckdb.InterruptException as err:
        raise TimeoutError(f"the query ran longer than {timeout_s:.0f}s and was stopped") from err
    finally:
        timer.cancel()
    return columns, rows
