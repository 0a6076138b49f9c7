"""`ozi`: the command line. Every command works on the embedded defaults with no setup.

ozi broker start|stop|status     the embedded Kafka-compatible broker
ozi produce [--live --rate N]    replay the Farcaster sample into Kafka
ozi produce --raw-file FILE      send each line of FILE as-is (bad input on purpose)
ozi backfill [--partition KEY]   materialize windows (all by default) on the instance
ozi sql "SELECT …" [--json]      read-only SQL over the public tables
ozi ask "question" [--json]      answer a question with sources and lineage
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
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ozi_resources import broker
from ozi_resources.settings import OziSettings

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
    return state.bootstrap


def cmd_broker(args: argparse.Namespace) -> int:
    settings = _settings()
    if not settings.embedded:
        print(f"OZI_KAFKA_BOOTSTRAP={settings.kafka_bootstrap}: Ozi uses that cluster unchanged")
        return 0
    if args.action == "start":
        state = broker.start(settings.home)
        _kafka(settings).ensure_topics()
        print(f"embedded broker running: pid {state.pid}, bootstrap {state.bootstrap}")
    elif args.action == "stop":
        stopped = broker.stop(settings.home)
        print("embedded broker stopped" if stopped else "no embedded broker was running")
    else:
        state = broker.status(settings.home)
        if state is None:
            print("embedded broker: not running")
            return 1
        print(f"embedded broker: running, pid {state.pid}, bootstrap {state.bootstrap}")
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
        stream, pace = _live(events, pace), None

    started = time.perf_counter()
    with tqdm(total=total, desc="produce", unit="msg", disable=None, file=sys.stderr) as bar:
        sent = kafka.produce(stream, pace=pace, on_sent=lambda n: bar.update(n - bar.n))
    seconds = time.perf_counter() - started
    print(f"produced {sent} {label} to {kafka.topic} in {seconds:.1f}s")
    return 0


def backfill(settings: OziSettings, partitions: list[str] | None = None) -> list[dict[str, Any]]:
    """Materialize the ingest job for each window, in order, on the persistent instance (the
    UI shows these runs). Returns one summary a window: run id, success, check results."""
    prepare_dagster_home(settings)
    import dagster as dg

    from ozi_assets.definitions import defs
    from ozi_assets.partitions import stream_partitions

    job = defs.resolve_job_def("ingest_job")
    keys = partitions or stream_partitions.get_partition_keys()
    summaries = []
    with dg.DagsterInstance.get() as instance:
        for key in keys:
            result = job.execute_in_process(
                partition_key=key,
                instance=instance,
                raise_on_error=False,
                tags={"ozi/trigger": "cli backfill"},
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
            print(
                f"window {key}: {'ok' if result.success else 'FAILED'} "
                f"(run {result.run_id[:8]}, {sum(c['passed'] for c in checks)}/{len(checks)} "
                "checks passed)"
            )
    return summaries


def cmd_backfill(args: argparse.Namespace) -> int:
    summaries = backfill(_settings(), args.partition or None)
    return 0 if all(s["success"] for s in summaries) else 1


def run_sql(settings: OziSettings, statement: str) -> tuple[list[str], list[tuple]]:
    """Guard and run one statement read-only; raises SqlRefused, TimeoutError,
    FileNotFoundError."""
    from ozi_resources.sql_guard import guard
    from ozi_resources.warehouse import PUBLIC_TABLES, WarehouseResource, query

    guarded = guard(statement, PUBLIC_TABLES)
    with WarehouseResource(path=str(settings.duckdb_path)).reader() as conn:
        return query(conn, guarded.sql)


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
    from ozi_resources.sql_guard import SqlRefused

    try:
        columns, rows = run_sql(_settings(), args.statement)
    except SqlRefused as err:
        print(f"refused: {err}", file=sys.stderr)
        return 2
    except (TimeoutError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
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


def answer_all(settings: OziSettings, questions: list[str]) -> list[Any]:
    """Answer questions on the local instance (lineage from $OZI_HOME/dagster), sharing one
    model load and one instance. Raises FileNotFoundError before the first materialization,
    TimeoutError on a held lock."""
    prepare_dagster_home(settings)
    import dagster as dg

    from ozi_assets.definitions import build_resources
    from ozi_assets.questions.engine import Services, ask

    r: dict[str, Any] = build_resources(settings)
    with dg.DagsterInstance.get() as instance:
        services = Services(r["warehouse"], r["vectors"], r["embedder"], r["llm"], instance)
        return [ask(services, question) for question in questions]


def cmd_ask(args: argparse.Namespace) -> int:
    try:
        (result,) = answer_all(_settings(), [args.question])
    except (TimeoutError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else result.render())
    return 0 if result.kind != "unanswered" else 3


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


def cmd_report(args: argparse.Namespace) -> int:
    settings = _settings()
    for title, statement in REPORT_QUERIES:
        print(f"\n== {title}")
        _print_table(*run_sql(settings, statement))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings()
    started = time.perf_counter()
    bootstrap = ensure_broker(settings)
    print(f"Kafka: {bootstrap} ({'embedded broker' if settings.embedded else 'cluster'})")
    cmd_produce(
        argparse.Namespace(
            raw_file=None, sample_dir=None, live=False, rate=None, limit=None, timestamp=None
        )
    )
    summaries = backfill(settings)
    cmd_report(args)
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
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("backfill", help="materialize windows (all by default)")
    p.add_argument("--partition", action="append", help="a window key, e.g. 2023-03-04-03:00")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("sql", help="run one read-only SELECT over the public tables")
    p.add_argument("statement")
    p.add_argument("--json", action="store_true", help="print rows as a JSON array")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("ask", help="answer a question in plain language")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.set_defaults(func=cmd_ask)

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
