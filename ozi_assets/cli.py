"""`ozi`: the command line. Every command works on the embedded defaults with no setup.

ozi broker start|stop|status     the embedded Kafka-compatible broker
ozi produce [--live --rate N]    replay the Farcaster sample into Kafka
ozi produce --raw-file FILE      send each line of FILE as-is (bad input on purpose)
ozi produce --synthetic N [--rate R] [--live] [--seed S]
                                 N seeded events shaped like the sample (fresh hashes, times)
ozi backfill [--partition KEY] [--url URL] [--in-process]
                                 a Dagster backfill of windows (all by default), submitted to
                                 the webserver; --in-process runs them here instead
ozi status                       consumer lag per stage and Kafka partition, embedding lag
ozi serve start|stop|status|run  the HTTP API, the question page and the vector shard's owner
ozi token new [--name NAME]      an API token (only its hash is kept)
ozi sql "SELECT …" [--json] [--at SNAPSHOT]
                                 read-only SQL over the public tables (at an earlier snapshot)
ozi ask "question" [--json] [--at SNAPSHOT]
                                 answer a question with sources, lineage and its snapshot
ozi snapshots [--limit N]        the lake's snapshots and the runs that committed them
ozi housekeeping                 flush inlined rows, merge files, expire old snapshots
ozi report                       activity per hour, top authors, dead letters
ozi demo                         all of the above on the sample
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ozi_resources import broker
from ozi_resources.settings import PARTITION_FMT, OziSettings

if TYPE_CHECKING:
    from ozi_resources.farcaster import Event

REPO_ROOT = Path(__file__).resolve().parents[1]


def _settings() -> OziSettings:
    return OziSettings.from_env()


def prepare_dagster_home(settings: OziSettings) -> Path:
    """Point DAGSTER_HOME at $OZI_HOME/dagster with the repository's dagster.yaml."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    if source.exists():
        shutil.copyfile(source, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["OZI_HOME"] = str(settings.home)
    return home


def _kafka(settings: OziSettings):
    from ozi_assets.definitions import build_resources

    return build_resources(settings)["kafka"]


def ensure_broker(settings: OziSettings) -> str:
    """Start the embedded broker when no cluster is configured; returns the bootstrap."""
    if not settings.embedded:
        return settings.kafka_bootstrap
    state = broker.start(settings.home)
    return state.address


def cmd_broker(args: argparse.Namespace) -> int:
    settings = _settings()
    if not settings.embedded:
        print(f"OZI_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: Ozi uses that cluster unchanged")
        return 0
    if args.action == "start":
        state = broker.start(settings.home)
        _kafka(settings).ensure_topics()
        print(f"embedded broker running: pid {state.pid}, bootstrap {state.address}")
    elif args.action == "stop":
        stopped = broker.stop(settings.home)
        print("embedded broker stopped" if stopped else "no embedded broker was running")
    else:
        state = broker.status(settings.home)
        if state is None:
            print("embedded broker: not running")
            return 1
        print(f"embedded broker: running, pid {state.pid}, bootstrap {state.address}")
    return 0


def _raw_events(path: Path, timestamp_ms: int):
    from ozi_resources.farcaster import Event

    with path.open("rb") as lines:
        for line in lines:
            value = line.rstrip(b"\r\n")
            if value:
                yield Event(b"", value, timestamp_ms, "raw")


def _live(events: list[Event], pace: Callable[[], None] | None) -> Iterator[Event]:
    """Each event stamped with the wall-clock time it is sent at (after pacing), so a live
    replay lands in the current window, as a hub stream would."""
    from ozi_resources.farcaster import restamp

    for event in events:
        if pace:
            pace()
        yield from restamp([event], int(time.time() * 1000))


def cmd_produce(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ozi_resources import farcaster

    settings = _settings()
    ensure_broker(settings)
    kafka = _kafka(settings)
    kafka.ensure_topics()
    if args.raw_file:
        stamp = (
            int(datetime.fromisoformat(args.timestamp).timestamp() * 1000)
            if args.timestamp
            else int(time.time() * 1000)
        )
        events = list(_raw_events(Path(args.raw_file), stamp))
        label = f"raw lines of {args.raw_file}"
    elif args.synthetic:
        from ozi_resources.synthetic import SampleShape, synthetic_events

        casts, _ = farcaster.load_sample(Path(args.sample_dir or settings.sample_dir))
        rate = args.rate or 500.0
        start = (
            int(time.time() * 1000)
            if args.live
            else int(
                datetime.strptime(settings.partition_start, PARTITION_FMT)
                .replace(tzinfo=UTC)
                .timestamp()
                * 1000
            )
        )
        events = list(
            synthetic_events(SampleShape.of(casts), args.synthetic, start, rate, args.seed)
        )
        label = f"synthetic events (seed {args.seed}, {rate:g}/s of event time)"
    else:
        casts, users = farcaster.load_sample(Path(args.sample_dir or settings.sample_dir))
        events = farcaster.sample_events(casts, users)
        label = "sample events (live)" if args.live else "sample events"
    if args.limit:
        events = events[: args.limit]
    pace: Callable[[], None] | None = None
    if args.live and args.rate:
        interval = 1.0 / args.rate
        next_at = [time.monotonic()]

        def wait_turn() -> None:
            next_at[0] += interval
            delay = next_at[0] - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        pace = wait_turn

    total = len(events)
    stream: Iterable[Event] = events
    if args.live and not args.raw_file:
        stream, pace = _live(events, pace), None  # synthetic events too: stamped when sent

    started = time.perf_counter()
    with tqdm(total=total, desc="produce", unit="msg", disable=None, file=sys.stderr) as bar:
        sent = kafka.produce(stream, pace=pace, on_sent=lambda n: bar.update(n - bar.n))
    seconds = time.perf_counter() - started
    print(f"produced {sent} {label} to {kafka.topic} in {seconds:.1f}s")
    return 0


def run_job(
    settings: OziSettings, job_name: str, partitions: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Run a job in-process on the persistent instance (the UI shows these runs), once per
    partition in order (once when ``partitions`` is None). Returns one summary a run: run
    id, success, check results."""
    prepare_dagster_home(settings)
    import dagster as dg

    from ozi_assets.definitions import defs

    job = defs.resolve_job_def(job_name)
    summaries = []
    with dg.DagsterInstance.get() as instance:
        for key in partitions or [None]:
            result = job.execute_in_process(
                partition_key=key,
                instance=instance,
                raise_on_error=False,
                tags={"ozi/trigger": f"cli {job_name}"},
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            checks = [
                {
                    "check": f"{e.asset_key.to_user_string()}:{e.check_name}",
                    "passed": e.passed,
                    "severity": e.severity.value,
                }
                for e in result.get_asset_check_evaluations()
            ]
            summaries.append(
                {
                    "partition": key,
                    "run_id": result.run_id,
                    "success": result.success,
                    "checks": checks,
                }
            )
            where = f"window {key}" if key else job_name
            print(
                f"{where}: {'ok' if result.success else 'FAILED'} (run {result.run_id[:8]}"
                + (
                    f", {sum(c['passed'] for c in checks)}/{len(checks)} checks passed)"
                    if checks
                    else ")"
                )
            )
    return summaries


def backfill(settings: OziSettings, partitions: list[str] | None = None) -> list[dict[str, Any]]:
    """Rebuild each window (all by default), in order and in this process: the ingest job,
    then the embeddings job. The first run of each also catches up with everything new in
    the log. ``ozi demo`` and ``ozi backfill --in-process`` use it: no daemon needed."""
    from ozi_assets.partitions import stream_partitions

    keys = partitions or stream_partitions.get_partition_keys()
    return run_job(settings, "ingest_job", keys) + run_job(settings, "embed_job", keys)


BACKFILL_GROUPS = ("raw", "clean", "aggregates", "embeddings")  # ingest_job's and embed_job's

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
BACKFILL_DAEMON = """
{ instance { daemonHealth { daemonStatus(daemonType: "BACKFILL") { healthy } } } }
"""


class BackfillError(Exception):
    """The webserver could not be reached or refused the backfill; the message is one line."""


def _graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST one GraphQL request to the webserver at ``url``; returns ``data``. Raises
    BackfillError when nothing answers there or the answer carries errors."""
    import requests

    try:
        response = requests.post(
            f"{url.rstrip('/')}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
    except (requests.RequestException, ValueError) as err:
        raise BackfillError(
            f"no Dagster webserver answers at {url} ({type(err).__name__}): start the UI and "
            "daemon with `make dev`, pass --url, or use --in-process; nothing was submitted"
        ) from None
    if body.get("errors"):
        raise BackfillError(f"the webserver refused the request: {body['errors'][0]['message']}")
    return body["data"]


def submit_backfill(url: str, partitions: list[str] | None = None) -> tuple[str, bool]:
    """Submit one asset backfill of the raw, clean, aggregate and embedding assets over
    ``partitions`` (every window by default) to the Dagster webserver at ``url``, through
    its GraphQL API (``launchPartitionBackfill``). Returns (backfill id, whether a backfill
    daemon is running: without one the backfill waits, listed in the Backfills tab).

    Why through the webserver: a backfill is a record on the instance that the daemon turns
    into runs, in dependency order per window, through the run queue and the ``lake_writer``
    pool, and Dagster's public API creates that record only through GraphQL (or the
    ``dagster job backfill`` command, one job at a time: embeddings would not wait for the
    ingest runs). Runs without the ``ozi/mode`` tag rebuild their window, as in-process
    runs do. Raises BackfillError (one line) when no webserver answers or it refuses."""
    from ozi_assets.definitions import defs
    from ozi_assets.partitions import stream_partitions

    keys = partitions or stream_partitions.get_partition_keys()
    specs = defs.resolve_all_asset_specs()
    assets = sorted(list(s.key.path) for s in specs if s.group_name in BACKFILL_GROUPS)
    params = {
        "assetSelection": [{"path": path} for path in assets],
        "partitionNames": keys,
        "title": f"ozi backfill: {len(keys)} windows",
        "description": "Rebuilds each window: raw → clean → aggregates → embeddings",
        "tags": [{"key": "ozi/trigger", "value": "cli backfill"}],
    }
    data = _graphql(url, LAUNCH_BACKFILL, {"params": params})
    result = data["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BackfillError(
            f"the webserver refused the backfill ({result['__typename']}): "
            + str(result.get("message", "")).strip().split("\n")[0]
        )
    daemon = _graphql(url, BACKFILL_DAEMON)["instance"]["daemonHealth"]["daemonStatus"]
    return result["backfillId"], bool(daemon["healthy"])


def cmd_backfill(args: argparse.Namespace) -> int:
    if args.in_process:
        summaries = backfill(_settings(), args.partition or None)
        return 0 if all(s["success"] for s in summaries) else 1
    url = args.url or _settings().dagster_url
    try:
        backfill_id, daemon = submit_backfill(url, args.partition or None)
    except BackfillError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"backfill {backfill_id} submitted: {url.rstrip('/')}/runs/b/{backfill_id}")
    if not daemon:
        print(
            "warning: no backfill daemon is running: the backfill waits in the Backfills tab "
            "until `dagster-daemon` starts (`make dev` runs one)",
            file=sys.stderr,
        )
    return 0


def _warehouse(settings: OziSettings):
    from ozi_assets.definitions import build_resources

    return build_resources(settings)["warehouse"]


def run_sql(
    settings: OziSettings, statement: str, at: int | None = None
) -> tuple[list[str], list[tuple]]:
    """Guard and run one statement read-only, at snapshot ``at`` (None: the newest).
    Raises SqlRefused, TimeoutError, WarehouseError, duckdb.Error."""
    from ozi_resources.sql_guard import guard
    from ozi_resources.warehouse import PUBLIC_TABLES, query

    guarded = guard(statement, PUBLIC_TABLES)
    warehouse = _warehouse(settings)
    with warehouse.reader(snapshot=at) as conn:
        return query(conn, guarded.sql, warehouse.query_timeout_s, max_rows=10_000)


def _print_table(columns: list[str], rows: list[tuple]) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns)
    with pd.option_context(
        "display.max_rows", 200, "display.width", 160, "display.max_colwidth", 60
    ):
        print(frame.to_string(index=False) if len(frame) else "(no rows)")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from ozi_resources.sql_guard import SqlRefused
    from ozi_resources.warehouse import first_line

    # Every failure is one line on stderr and a non-zero exit: 2 for the statement (refused,
    # or DuckDB could not bind or run it), 1 for everything around it.
    try:
        columns, rows = run_sql(_settings(), args.statement, args.at)
    except SqlRefused as err:
        print(f"refused: {err}", file=sys.stderr)
        return 2
    except duckdb.Error as err:
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:  # settings, the lake, a timeout: still one line, no traceback
        print(f"error: {first_line(err)}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows]
            )
        )
    else:
        _print_table(columns, rows)
    return 0


def answer_all(settings: OziSettings, questions: list[str], at: int | None = None) -> list[Any]:
    """Answer questions from the lake (snapshot ``at``, or the newest), sharing one model
    load. Raises WarehouseError before the first materialization or for an unknown snapshot."""
    from ozi_assets.definitions import build_resources
    from ozi_assets.questions.engine import Services, ask

    r: dict[str, Any] = build_resources(settings)
    services = Services(r["warehouse"], r["vectors"], r["embedder"], r["llm"])
    return [ask(services, question, at) for question in questions]


def cmd_ask(args: argparse.Namespace) -> int:
    from ozi_resources.warehouse import WarehouseError

    try:
        (result,) = answer_all(_settings(), [args.question], args.at)
    except (TimeoutError, WarehouseError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else result.render())
    return 0 if result.kind != "unanswered" else 3


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print the semantic layer's catalogue: metrics, dimensions and filters with the words
    a question may use for each (``--json``: the same as one object)."""
    from ozi_assets.questions.layer import catalogue

    entries = catalogue()
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    for part, rows in entries.items():
        print(f"{part}:")
        for row in rows:
            print(f"  {row['name']:<20} {row['description']}")
            for key in ("dimensions", "filters", "words"):
                if row.get(key):
                    print(f"  {'':<20}   {key}: {row[key]}")
        print()
    return 0


def cmd_snapshots(args: argparse.Namespace) -> int:
    from ozi_resources.warehouse import WarehouseError

    warehouse = _warehouse(_settings())
    try:
        with warehouse.reader() as conn:
            records = warehouse.snapshots(conn)
    except WarehouseError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rows = [
        (
            r.id,
            r.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            r.run_id[:8] if r.run_id else "",
            ", ".join(r.assets),
            r.partition or "",
        )
        for r in records[-args.limit :]
    ]
    _print_table(["snapshot", "committed (UTC)", "run", "assets", "partition"], rows)
    return 0


def start_owner(settings: OziSettings) -> str | None:
    """Start `ozi serve` (the embedded vector shard's owner) unless it runs, and have it catch
    up with the lake; returns its address, or None with a Qdrant server configured."""
    from ozi_resources import processes
    from ozi_resources.vectors import OWNER

    if settings.qdrant_url:
        return None
    state = processes.start(
        settings.home,
        OWNER,
        lambda port: [sys.executable, "-m", "ozi_assets.serve", "--port", str(port)],
        timeout_s=120,
        env={"OZI_HOME": str(settings.home)},
        port=settings.api_port,
    )
    import urllib.error

    from ozi_assets.definitions import build_resources

    vectors = build_resources(settings)["vectors"]
    try:
        # A first catch-up embeds nothing but may index a whole lake: minutes at millions.
        vectors.owner_request("/v1/vectors/sync", {"model": settings.embedding_model_name}, 1800)
    except urllib.error.HTTPError as err:
        if err.code != 409:  # 409: no lake yet; the owner catches up once there is one
            raise
    return state.address


def cmd_serve(args: argparse.Namespace) -> int:
    from ozi_resources import processes
    from ozi_resources.vectors import OWNER

    settings = _settings()
    if args.action == "run":
        from ozi_assets.serve import main as serve_main

        serve_main(["--host", args.host, "--port", str(args.port or settings.api_port)])
        return 0
    if args.action == "start":
        try:
            address = start_owner(settings)
        except (processes.ProcessError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"ozi serve running on http://{address}" if address else "vectors: Qdrant server")
        if address:
            print(f"  question page http://{address}/  ·  API docs http://{address}/docs")
            if not settings.api_tokens and not settings.api_token_file.exists():
                print("  no API token yet: `ozi token new` makes one")
    elif args.action == "stop":
        stopped = processes.stop(settings.home, OWNER)
        print("ozi serve stopped" if stopped else "no ozi serve was running")
    else:
        state = processes.status(settings.home, OWNER)
        if state is None:
            print("ozi serve: not running")
            return 1
        print(f"ozi serve: running, pid {state.pid}, http://{state.address}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from ozi_assets.api import issue_token, token_hash

    settings = _settings()
    file = settings.api_token_file
    names = (
        [line.split(" ", 1)[0] for line in file.read_text().splitlines()] if file.exists() else []
    )
    if args.if_missing and args.name in names:
        print(
            f"API token {args.name!r} exists (only its hash is kept; "
            f"`ozi token new --name {args.name}` replaces it)"
        )
        return 0
    try:
        token = issue_token(file, args.name)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    # The token is shown once; only its hash is kept, so a lost token is replaced, not read.
    print(token)
    print(
        f"API token {args.name!r} (shown once): send it as `Authorization: Bearer <token>`. "
        f"Its hash is kept in {file}; for OZI_API_TOKENS: {args.name}:{token_hash(token)}",
        file=sys.stderr,
    )
    return 0


def cmd_housekeeping(args: argparse.Namespace) -> int:
    summaries = run_job(_settings(), "lake_housekeeping_job")
    return 0 if all(s["success"] for s in summaries) else 1


DEMO_QUESTIONS = [
    "How many casts did dwr post?",
    "How many recasts did dwr make?",
    "Who are the top 5 authors by number of casts?",
    "How many casts between 03:00 and 04:00 UTC on March 4, 2023?",
    "What are people saying about ETHDenver?",
    "Which users talked about invites the most?",
]


REPORT_QUERIES = [
    (
        "Activity per hour (UTC)",
        "SELECT strftime(window_start, '%Y-%m-%d %H:%M') AS hour, casts, top_level_casts, "
        "replies, reactions, recasts, distinct_authors FROM hourly_activity ORDER BY 1",
    ),
    (
        "Top authors (all windows)",
        "SELECT username, fid, count(*) AS casts, count(*) FILTER (WHERE is_reply) AS replies "
        "FROM casts GROUP BY username, fid ORDER BY casts DESC, fid LIMIT 10",
    ),
    (
        "Top terms (all windows)",
        "SELECT term, sum(uses) AS uses FROM top_terms WHERE kind = 'term' GROUP BY term "
        "ORDER BY uses DESC, term LIMIT 10",
    ),
    (
        "Totals",
        "SELECT (SELECT count(*) FROM casts) AS casts, "
        "(SELECT count(*) FROM casts WHERE is_reply) AS replies, "
        "(SELECT count(*) FROM reactions) AS reactions, (SELECT count(*) FROM users) AS users, "
        "(SELECT count(*) FROM dead_letters) AS dead_letters",
    ),
]


def cmd_status(args: argparse.Namespace) -> int:
    """Where the stream stands: per stage and Kafka partition, the committed offsets against
    the high watermarks; the embedding lag; messages lost to retention; dead letters."""
    from ozi_assets import stream
    from ozi_assets.embeddings import embedding_lag

    settings = _settings()
    if settings.embedded and broker.status(settings.home) is None:
        print("embedded broker: not running (`ozi broker start`)")
        return 1
    kafka = _kafka(settings)
    warehouse = _warehouse(settings)
    high = kafka.high_watermarks()
    print(f"topic {kafka.topic}: high watermarks {high or 'none (nothing produced)'}")
    if not warehouse.exists():
        print("lake: none yet (nothing ingested)")
        return 0
    stages = (
        stream.RAW,
        *stream.CLEAN_STAGES,
        stream.CHECKED,
        stream.AGGREGATES,
        stream.EMBEDDINGS,
    )
    rows = []
    with warehouse.reader() as conn:
        for stage in stages:
            done = stream.load_offsets(conn, stage, kafka.topic)
            behind = {
                p: hw - done.get(p, stream.PartitionOffset()).next_offset for p, hw in high.items()
            }
            rows.append(
                (
                    stage,
                    " ".join(f"{p}:{o.next_offset}" for p, o in sorted(done.items())) or "-",
                    sum(behind.values()),
                )
            )
        lag = embedding_lag(conn, kafka.topic)
        (lost,) = conn.execute(
            "SELECT coalesce(sum(next_offset - first_offset), 0) FROM kafka_log_gaps"
        ).fetchone()
        (letters,) = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        (late,) = conn.execute("SELECT count(*) FILTER (is_late) FROM raw_events").fetchone()
        watermark = stream.watermark_ms(
            [o.running_max_ms for o in stream.load_offsets(conn, stream.RAW, kafka.topic).values()],
            settings.allowed_lateness_s,
        )
    _print_table(["stage", "committed offsets (partition:offset)", "behind the log"], rows)
    print(f"embeddings: {lag.casts} casts waiting for vectors, oldest {lag.seconds:.0f}s ago")
    print(f"dead letters: {letters}; messages lost to retention before they were read: {lost}")
    stamp = datetime.fromtimestamp(watermark / 1000, UTC).isoformat() if watermark else "none"
    print(
        f"watermark: {stamp} (newest timestamp read minus {settings.allowed_lateness_s:g}s); "
        f"late messages: {late}"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    settings = _settings()
    for title, statement in REPORT_QUERIES:
        print(f"\n== {title}")
        _print_table(*run_sql(settings, statement))
    return 0


def produce_sample() -> int:
    """``ozi produce`` with its defaults: the sample, once. The defaults come from the parser,
    so a new option never has to be spelled out by callers."""
    return cmd_produce(build_parser().parse_args(["produce"]))


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings()
    started = time.perf_counter()
    bootstrap = ensure_broker(settings)
    print(f"Kafka: {bootstrap} ({'embedded broker' if settings.embedded else 'cluster'})")
    produce_sample()
    summaries = backfill(settings)
    cmd_report(args)
    address = start_owner(settings)
    if address:
        print(f"\nVector shard owner (ozi serve): http://{address}")
    print("\n== Questions")
    for result in answer_all(settings, DEMO_QUESTIONS):
        print(result.render() + "\n")
    print("== Data-quality checks")
    failed = [c for s in summaries for c in s["checks"] if not c["passed"]]
    total = sum(len(s["checks"]) for s in summaries)
    print(f"{total - len(failed)} of {total} check evaluations passed")
    for check in failed:
        print(f"  {check['severity']}: {check['check']}")
    print(
        f"\nDemo done in {time.perf_counter() - started:.0f}s. Open the UI with `make dev` "
        "(http://127.0.0.1:3000): assets, partitions, checks and lineage."
    )
    return 0 if all(s["success"] for s in summaries) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ozi", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("broker", help="start, stop or inspect the embedded broker")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("produce", help="replay the Farcaster sample (or raw lines) into Kafka")
    p.add_argument("--sample-dir", help="folder with casts.json and users.json")
    p.add_argument("--live", action="store_true", help="stamp events with the current time")
    p.add_argument("--rate", type=float, help="events per second in live mode")
    p.add_argument("--raw-file", help="send each line of this file as-is")
    p.add_argument("--timestamp", help="ISO time to stamp raw lines with (default: now)")
    p.add_argument("--limit", type=int, help="send only the first N events")
    p.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="send N seeded synthetic events shaped like the sample (fresh hashes and times)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --synthetic (default 0)")
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser(
        "backfill", help="submit a Dagster backfill of windows (all by default) to the webserver"
    )
    p.add_argument("--partition", action="append", help="a window key, e.g. 2023-03-04-03:00")
    p.add_argument(
        "--url", help="the Dagster webserver (default OZI_DAGSTER_URL, http://127.0.0.1:3000)"
    )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run the windows' jobs here, one after another, instead (no webserver or daemon)",
    )
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("serve", help="the HTTP API, the question page, the vector shard")
    p.add_argument("action", choices=["start", "stop", "status", "run"])
    p.add_argument("--port", type=int, help="port for `run` (default OZI_API_PORT, 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address for `run` (default loopback)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("token", help="API tokens")
    p.add_argument("action", choices=["new"])
    p.add_argument("--name", default="default", help="one word; a new token replaces its namesake")
    p.add_argument("--if-missing", action="store_true", help="only when no token has that name")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("sql", help="run one read-only SELECT over the public tables")
    p.add_argument("statement")
    p.add_argument("--json", action="store_true", help="print rows as a JSON array")
    p.add_argument("--at", type=int, metavar="SNAPSHOT", help="read this lake snapshot")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("ask", help="answer a question in plain language")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.add_argument("--at", type=int, metavar="SNAPSHOT", help="answer from this lake snapshot")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("metrics", help="the metrics, dimensions and filters questions use")
    p.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("snapshots", help="the lake's snapshots and the runs behind them")
    p.add_argument("--limit", type=int, default=30, help="newest N (default 30)")
    p.set_defaults(func=cmd_snapshots)

    p = sub.add_parser("housekeeping", help="flush, merge files, expire old snapshots")
    p.set_defaults(func=cmd_housekeeping)

    p = sub.add_parser("status", help="consumer lag per stage and partition, embedding lag")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="activity per hour, top authors, totals")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="broker, produce, backfill every window, report")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except broker.BrokerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def entry() -> None:
    """The console script. Exits without interpreter teardown: with torch and DuckDB both
    loaded, teardown prints dozens of harmless nanobind "leaked instance" lines after the
    output, which read like an error. Everything Ozi opened is closed by then."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
