"""`make bench`: Ozi's speed as ratios against the best this machine does with the same parts.

Sections (all by default; name some to run only those: `python -m ozi_tests.bench vectors`):

1. ``ingest``: events/s of one incremental ``ingest_job`` run (raw, clean, aggregates,
   checks; in-process, DuckLake) over 100k events built from the real sample (each copy of a
   message gets a new hash, so nothing is deduplicated away), against kafka-python consuming
   the same messages. The data the later sections read.
1b. ``stream`` (bench_stream.py): replay throughput and micro-batch cost at 10k, 100k and 1M
   synthetic events, each in its own process (peak RSS), against confluent-kafka and
   kafka-python consuming and a bare consume → Arrow → DuckDB script, in the same run.
1b'. ``replay_follow`` (bench_stream.py): the same replays through one ``stream_job`` run, the
   path a live stream takes, against the same baselines.
1c. ``freshness`` (bench_freshness.py): seconds from produce to visible in ``casts`` and in
   ``cast_vectors`` under the real daemon and sensors with a live synthetic stream.
2. ``embeddings``: casts/s through the embeddings asset (read, hash, encode, write the lake)
   against the model alone encoding the same texts.
3. ``questions``: the offline planner's answer time against the bare query it runs, and a
   semantic answer through `ozi serve` on the same lake.
4. ``reads_under_load``: a writer process re-materializes windows (raw → clean →
   aggregates) while two other processes ask 200 questions and run 200 `ozi sql`
   statements: latency p50/p95 and failures, and the writer's rate with and without them.
5. ``vectors``: the embedded Qdrant engine at 100k and 1M points: open time, search p50/p95
   with and without a fid filter, recall@10 against exact search (bench_vectors.py); and at
   100k uniform random vectors, the worst case for a graph index.
6. ``semantic_100k``: a semantic answer end to end in a warm process with 100k casts and
   their vectors in the lake and the shard, against the shard's search alone.
7. ``api`` (bench_api.py): ``/v1/ask`` and ``/v1/search`` of a real ``ozi serve`` under 20
   concurrent clients for 60 s, on the sample and at 100k casts: requests/s, p50/p95/p99,
   errors, beside the same calls made in process one after another.

Results merge into bench/results.json (one key a section, with the date, machine and
versions of the run) and bench/results.md. Figures, not assertions: the tests never time
anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

N_EVENTS = int(os.environ.get("OZI_BENCH_EVENTS", "100000"))
REPO = Path(__file__).resolve().parents[1]
SAMPLE = (REPO / ".." / "shared" / "data" / "farcaster" / "warpy-2023-03").resolve()
RESULTS = REPO / "bench" / "results.json"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
ANALYTIC_QUESTIONS = [
    "How many casts did dwr post?",
    "Who are the top 5 authors by number of casts?",
    "How many casts between 03:00 and 04:00 UTC on March 4, 2023?",
    "How many recasts did dwr make?",
]
SEMANTIC_QUESTIONS = [
    "What are people saying about ETHDenver?",
    "What are people saying about invites?",
    "What are people saying about wallets?",
    "What are people saying about AI?",
]
SQL_STATEMENTS = [
    "SELECT count(*) FROM casts",
    "SELECT username, count(*) AS n FROM casts GROUP BY 1 ORDER BY n DESC LIMIT 10",
    "SELECT date_trunc('hour', \"timestamp\") AS h, count(*) FROM casts GROUP BY 1 ORDER BY 1",
    "SELECT count(*) FROM reactions WHERE reaction_type = 'recast'",
]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ms(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values) * 1000, q)), 1)


def synthetic_events(n: int):
    """n events cycled from the real sample; copy k of a message gets a derived hash."""
    from ozi_resources import farcaster

    base = farcaster.sample_events(*farcaster.load_sample(SAMPLE))
    out = []
    copy = 0
    while len(out) < n:
        for event in base:
            if len(out) >= n:
                break
            if copy == 0:
                out.append(event)
                continue
            message = json.loads(event.value)
            old = message.get("hash")
            message["hash"] = farcaster.derived_hash(old, copy)
            hydrated = message.get("hydrated") or {}
            if hydrated.get("threadHash") == old:  # a thread root is its own thread
                hydrated["threadHash"] = message["hash"]
            out.append(
                farcaster.Event(event.key, farcaster.encode(message), event.timestamp_ms, "x")
            )
        copy += 1
    return out


def consume_ceiling(kafka, topic: str) -> float:
    """Messages/s for kafka-python consuming every message of the topic, nothing else."""
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    ends = kafka.high_watermarks(topic)
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap(),
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    parts = [TopicPartition(topic, p) for p in ends]
    consumer.assign(parts)
    for tp in parts:
        consumer.seek(tp, 0)
    total, want = 0, sum(ends.values())
    started = time.perf_counter()
    while total < want:
        for records in consumer.poll(timeout_ms=1000, max_records=50_000).values():
            total += len(records)
    seconds = time.perf_counter() - started
    consumer.close()
    return total / seconds


def bench_ingest(world: World) -> dict:
    from ozi_assets.partitions import stream_partitions

    kafka = world.resources["kafka"]
    kafka.ensure_topics()
    events = synthetic_events(N_EVENTS)
    started = time.perf_counter()
    kafka.produce(events)
    produce_rate = len(events) / (time.perf_counter() - started)

    ceiling = consume_ceiling(kafka, world.settings.topic)
    job = world.defs.resolve_job_def("ingest_job")
    started = time.perf_counter()
    result = job.execute_in_process(
        partition_key=stream_partitions.get_partition_keys()[-1],
        instance=world.instance,
        tags={"ozi/mode": "incremental"},
        run_config=QUIET,
    )
    assert result.success
    seconds = time.perf_counter() - started
    with world.resources["warehouse"].reader() as conn:
        raw = conn.execute("SELECT count(*) FROM raw_events").fetchone()[0]
        casts = conn.execute("SELECT count(*) FROM casts").fetchone()[0]
    rate = raw / seconds
    return {
        "events": raw,
        "casts": casts,
        "produce_events_per_s": round(produce_rate),
        "consume_ceiling_events_per_s": round(ceiling),
        "ingest_events_per_s": round(rate),
        "ingest_seconds": round(seconds, 1),
        "ratio_to_ceiling": round(rate / ceiling, 3),
        "note": "one incremental ingest_job run (raw, clean, aggregates, checks); ceiling: "
        "kafka-python consuming the topic",
    }


def bench_embeddings(world: World) -> dict:
    from ozi_assets.partitions import stream_partitions

    embedder = world.resources["embedder"]
    with world.resources["warehouse"].reader() as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM casts ORDER BY hash").fetchall()]
    texts = [t for t in texts if t and t.strip()]
    embedder.encode(texts[:64])  # load the model outside the timing
    started = time.perf_counter()
    embedder.encode(texts)
    ceiling = len(texts) / (time.perf_counter() - started)
    # The same model in float32, beside the default precision (bf16 where the CPU has it).
    full = embedder.model_copy(update={"precision": "fp32"})
    full.encode(texts[:64])
    started = time.perf_counter()
    full.encode(texts)
    fp32 = len(texts) / (time.perf_counter() - started)

    started = time.perf_counter()
    newest = stream_partitions.get_partition_keys()[-1]
    result = world.defs.resolve_job_def("embed_job").execute_in_process(
        partition_key=newest,
        instance=world.instance,
        tags={"ozi/mode": "incremental"},
        run_config=QUIET,
    )
    # The run's own window carries the run's figures, its last materialization the totals (a
    # run reports the windows it touched as it goes); the other windows get their own.
    m = [
        m for m in result.asset_materializations_for_node("embeddings__casts")
        if m.partition == newest
    ][-1]  # fmt: skip
    embedded = int(m.metadata["embedded"].value)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    rate = embedded / seconds
    return {
        "texts": len(texts),
        "embedded": embedded,
        "precision": "bf16" if embedder.uses_bf16() else "fp32",
        "model_only_texts_per_s": round(ceiling, 1),
        "model_only_fp32_texts_per_s": round(fp32, 1),
        "asset_texts_per_s": round(rate, 1),
        "ratio_to_ceiling": round(rate / ceiling, 3),
    }


def bench_questions(world: World) -> dict:
    from ozi_assets.cli import start_owner
    from ozi_assets.questions.engine import Services, ask
    from ozi_resources.warehouse import query

    start_owner(world.settings)
    r = world.resources
    services = Services(r["warehouse"], r["vectors"], r["embedder"], None)
    question = "How many casts did dwr post?"
    ask(services, question)  # warm
    answer_times = []
    for _ in range(20):
        started = time.perf_counter()
        answer = ask(services, question)
        answer_times.append(time.perf_counter() - started)
    assert answer.sql
    query_times = []
    with r["warehouse"].reader() as conn:
        for _ in range(20):
            started = time.perf_counter()
            query(conn, answer.sql)
            query_times.append(time.perf_counter() - started)
    semantic = []
    for i in range(20):
        started = time.perf_counter()
        a = ask(services, SEMANTIC_QUESTIONS[i % len(SEMANTIC_QUESTIONS)])
        semantic.append(time.perf_counter() - started)
    assert a.data_as_of and a.data_as_of["vector_index"]["kind"] == "qdrant-edge"
    with r["warehouse"].reader() as conn:
        (casts,) = conn.execute("SELECT count(*) FROM casts").fetchone()
    return {
        "casts": casts,
        "analytic_answer_ms_p50": ms(answer_times, 50),
        "bare_query_ms_p50": ms(query_times, 50),
        "ratio_query_to_answer": round(
            statistics.median(query_times) / statistics.median(answer_times), 3
        ),
        "semantic_answer_ms_p50": ms(semantic, 50),
        "semantic_answer_ms_p95": ms(semantic, 95),
    }


WRITER = textwrap.dedent(
    """
    import json, sys, time
    import dagster as dg
    from ozi_assets.definitions import build_definitions
    from ozi_assets.partitions import stream_partitions
    from ozi_resources.settings import OziSettings

    passes = int(sys.argv[1])
    defs = build_definitions(OziSettings.from_env())
    job = defs.resolve_job_def("ingest_job")
    selection = [k for k in job.asset_layer.asset_graph.get_all_asset_keys()
                 if k.path[0] in ("raw", "clean", "aggregates")]
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    messages, started, runs = 0, time.perf_counter(), []
    with dg.instance_for_test() as instance:
        for _ in range(passes):
            for key in stream_partitions.get_partition_keys():
                t = time.perf_counter()
                result = job.execute_in_process(partition_key=key, instance=instance,
                                                asset_selection=selection, run_config=quiet)
                assert result.success
                (m,) = result.asset_materializations_for_node("raw__farcaster_events")
                messages += int(m.metadata["window_messages_reread"].value)
                runs.append(time.perf_counter() - t)
    seconds = time.perf_counter() - started
    print(json.dumps({"messages": messages, "seconds": seconds, "runs": len(runs),
                      "events_per_s": messages / seconds}))
    """
)

READER = textwrap.dedent(
    """
    import json, sys, time
    from ozi_assets.definitions import build_resources
    from ozi_resources.settings import OziSettings

    kind, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    items = json.loads(sys.argv[4])
    settings = OziSettings.from_env()
    r = build_resources(settings)
    if kind == "ask":
        from ozi_assets.questions.engine import Services, ask
        services = Services(r["warehouse"], r["vectors"], r["embedder"], None)
        run = lambda item: ask(services, item)
    else:
        from ozi_assets.cli import run_sql
        run = lambda item: run_sql(settings, item)
    run(items[0])  # warm: imports, model, connections
    print("ready", flush=True)
    sys.stdin.readline()
    results, next_at = [], time.perf_counter()
    for i in range(count):
        item = items[i % len(items)]
        t = time.perf_counter()
        try:
            run(item)
            error = None
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
        results.append({"item": item, "seconds": time.perf_counter() - t, "error": error})
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    print(json.dumps(results))
    """
)


def bench_reads_under_load(world: World) -> dict:
    """The writer alone, then the writer with two reader processes pacing 200 requests each
    (4 a second: people and dashboards, not a load generator)."""
    env = dict(os.environ, **world.env)

    def writer(passes: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", WRITER, str(passes)],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )

    def reader(kind: str, items: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", READER, kind, "200", "0.25", json.dumps(items)],
            env=env,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout and proc.stdout.readline().strip() == "ready"
        return proc

    alone = writer(2)
    out, _ = alone.communicate()
    baseline = json.loads(out)

    readers = [
        reader("ask", ANALYTIC_QUESTIONS * 3 + SEMANTIC_QUESTIONS),
        reader("sql", SQL_STATEMENTS),
    ]
    loaded = writer(2)
    for proc in readers:
        assert proc.stdin
        proc.stdin.write("go\n")
        proc.stdin.flush()
    out, _ = loaded.communicate()
    with_readers = json.loads(out)
    records = {}
    for name, proc in zip(("ask", "sql"), readers, strict=True):
        text, _ = proc.communicate()
        records[name] = json.loads(text)

    def figures(rows: list[dict]) -> dict:
        times = [r["seconds"] for r in rows if not r["error"]]
        return {
            "requests": len(rows),
            "failures": sum(1 for r in rows if r["error"]),
            "ms_p50": ms(times, 50),
            "ms_p95": ms(times, 95),
            "first_error": next((r["error"] for r in rows if r["error"]), None),
        }

    analytic = [r for r in records["ask"] if r["item"] in ANALYTIC_QUESTIONS]
    semantic = [r for r in records["ask"] if r["item"] in SEMANTIC_QUESTIONS]
    return {
        "writer_alone_events_per_s": round(baseline["events_per_s"]),
        "writer_with_readers_events_per_s": round(with_readers["events_per_s"]),
        "readers_cost": round(1 - with_readers["events_per_s"] / baseline["events_per_s"], 3),
        "writer_runs": with_readers["runs"],
        "questions_analytic": figures(analytic),
        "questions_semantic": figures(semantic),
        "sql": figures(records["sql"]),
    }


def bench_vectors(world: World) -> dict:
    from ozi_tests.bench_vectors import bench_size

    with world.resources["warehouse"].reader() as conn:
        rows = conn.execute("SELECT vector FROM cast_vectors LIMIT 5000").fetchall()
    base = np.asarray([r[0] for r in rows], dtype=np.float32)
    from ozi_assets.serve import OPTIMIZE_AFTER_UNINDEXED

    return {
        "100k": bench_size(100_000, base),
        # as a stream builds it: `ozi serve` optimizes each OPTIMIZE_AFTER_UNINDEXED points
        "250k_streamed": bench_size(250_000, base, optimize_every=OPTIMIZE_AFTER_UNINDEXED),
        "1M": bench_size(1_000_000, base),
        "100k_uniform_random": bench_size(100_000, None),
    }


def lake_100k(world: World) -> Any:
    """A fresh lake of 100k casts (sample casts copied with new hashes) and their vectors
    (the sample's vectors with noise), beside the users of the world's lake. Returns its
    settings; no ``ozi serve`` owns its shard yet."""
    from ozi_assets.definitions import build_resources
    from ozi_resources.warehouse import Commit

    home = Path(tempfile.mkdtemp(prefix="ozi-bench-100k-"))
    settings = dataclasses.replace(world.settings, home=home)
    settings = dataclasses.replace(
        settings,
        lake_catalog=f"sqlite:{home / 'lake' / 'catalog.sqlite'}",
        lake_data_path=f"{home / 'lake' / 'data'}/",
    )
    r = build_resources(settings)
    source = world.resources["warehouse"]
    with source.reader() as conn:
        casts = conn.execute(
            "SELECT a.*, v.vector FROM cast_adds a JOIN cast_vectors v USING (hash)"
        ).fetch_arrow_table()
        users = conn.execute("SELECT * FROM user_data").fetch_arrow_table()
    n = 100_000
    rng = np.random.default_rng(11)
    picks = rng.integers(0, casts.num_rows, n)
    import pyarrow as pa

    table = casts.take(pa.array(picks))
    hashes = [f"0x{i:064x}" for i in range(n)]
    vectors = np.asarray(table.column("vector").to_pylist(), dtype=np.float32)
    vectors += rng.normal(0, 0.03, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    table = (
        table.drop_columns(["vector"])
        .set_column(table.schema.get_field_index("hash"), "hash", pa.array(hashes))
        .append_column("vector", pa.array(list(vectors), pa.list_(pa.float32())))
    )
    commit = Commit("bench", ("clean/casts", "clean/users", "embeddings/casts"))
    with r["warehouse"].transaction(commit) as conn:
        conn.register("bench_casts", table)
        conn.register("bench_users", users)
        conn.execute(
            "INSERT INTO cast_adds BY NAME SELECT * EXCLUDE (vector, parent_hash, parent_fid) "
            "FROM bench_casts"
        )
        conn.execute("INSERT INTO user_data BY NAME SELECT * FROM bench_users")
        conn.execute(
            "INSERT INTO cast_vectors BY NAME SELECT hash, $m AS model, vector, "
            "sha256(text) AS content_sha256, fid, author_username AS username, text, "
            '"timestamp", NULL AS parent_hash, false AS is_reply, window_start FROM bench_casts',
            {"m": settings.embedding_model_name},
        )
    return settings


def bench_semantic_100k(world: World) -> dict:
    """100k casts and their vectors in a fresh lake (``lake_100k``); `ozi serve` catches up;
    then questions."""
    from ozi_assets.cli import start_owner
    from ozi_assets.definitions import build_resources
    from ozi_assets.questions.engine import Services, ask
    from ozi_resources import processes
    from ozi_resources.vectors import OWNER

    settings = lake_100k(world)
    home, n = settings.home, 100_000
    r = build_resources(settings)
    try:
        address = start_owner(settings)  # catches up: 100k upserts, then the HNSW build
        services = Services(r["warehouse"], r["vectors"], r["embedder"], None)
        ask(services, SEMANTIC_QUESTIONS[0])  # warm
        answers, searches = [], []
        for i in range(40):
            q = SEMANTIC_QUESTIONS[i % len(SEMANTIC_QUESTIONS)]
            t = time.perf_counter()
            a = ask(services, q)
            answers.append(time.perf_counter() - t)
            body = json.dumps(
                {"text": q, "model": settings.embedding_model_name, "limit": 10, "min_score": 0.3}
            ).encode()
            request = urllib.request.Request(
                f"http://{address}/v1/vectors/search",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            t = time.perf_counter()
            urllib.request.urlopen(request, timeout=30).read()
            searches.append(time.perf_counter() - t)
        assert a.data_as_of and a.data_as_of["vector_index"]["kind"] == "qdrant-edge"
        with urllib.request.urlopen(f"http://{address}/health", timeout=10) as response:
            points = json.loads(response.read())["vectors"]["points"]
    finally:
        processes.stop(home, OWNER)
    return {
        "casts": n,
        "points_in_shard": points,
        "semantic_answer_ms_p50": ms(answers, 50),
        "semantic_answer_ms_p95": ms(answers, 95),
        "owner_search_ms_p50": ms(searches, 50),
        "note": "answer = snapshot reader + planner + search via ozi serve + lineage",
    }


@dataclasses.dataclass
class World:
    settings: Any
    resources: dict
    defs: Any
    instance: Any
    env: dict[str, str]

    @property
    def aggregate_keys(self) -> list[dg.AssetKey]:
        return [
            dg.AssetKey(["aggregates", n])
            for n in (
                "hourly_activity",
                "top_authors",
                "most_replied_to",
                "top_terms",
                "cast_engagement",
            )
        ]


def bench_stream_section(world: World) -> dict:
    from ozi_tests.bench_stream import bench_stream

    return bench_stream(world.settings.kafka_bootstrap)


def bench_replay_follow_section(world: World) -> dict:
    from ozi_tests.bench_stream import bench_replay_follow

    return bench_replay_follow(world.settings.kafka_bootstrap)


def bench_api_section(world: World) -> dict:
    from ozi_tests.bench_api import bench_api

    return bench_api(world)


def bench_freshness_section(world: World) -> dict:
    from ozi_tests.bench_freshness import bench_freshness

    return bench_freshness()


SECTIONS = {
    "ingest": bench_ingest,
    "stream": bench_stream_section,
    "replay_follow": bench_replay_follow_section,
    "freshness": bench_freshness_section,
    "embeddings": bench_embeddings,
    "questions": bench_questions,
    "reads_under_load": bench_reads_under_load,
    "vectors": bench_vectors,
    "semantic_100k": bench_semantic_100k,
    "api": bench_api_section,
}


# Sections that make their own data: run alone, they skip the shared ingest and embeddings.
SELF_CONTAINED = {"stream", "replay_follow", "freshness"}


def environment() -> dict[str, Any]:
    versions = {
        name: metadata.version(name)
        for name in ("duckdb", "dagster", "qdrant-edge-py", "kafka-python", "torch")
    }
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    # The CPU decides the model's speed: with native bfloat16 (AMX or AVX512-BF16) it embeds
    # about three times the texts per second it does on AVX2 alone, and every figure that
    # waits for vectors moves with it.
    from ozi_resources.vectors import EmbedderResource

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    bf16 = "native bf16" if EmbedderResource().uses_bf16() else "no native bf16"
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({cpu}, {bf16}), "
        f"{memory_gib:.0f} GiB",
        "python": platform.python_version(),
        "versions": versions,
    }


def flatten(prefix: str, value: Any) -> list[tuple[str, Any]]:
    """(name, value) pairs of a nested figure, names joined with " / "."""
    if not isinstance(value, dict):
        return [(prefix, value)]
    return [pair for k, v in value.items() for pair in flatten(f"{prefix} / {k}", v)]


def render_markdown(results: dict[str, Any]) -> str:
    lines = ["# `make bench` results", "", "Written by `ozi_tests/bench.py`; do not edit.", ""]
    for section, body in results.items():
        lines += [f"## {section}", ""]
        run = body.get("run", {})
        if run:
            lines += [
                f"{run.get('date')}, {run.get('machine')}, Python {run.get('python')}; "
                + ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items()),
                "",
            ]
        lines += ["| figure | value |", "|---|---|"]
        for key, value in body.items():
            if key != "run":
                lines += [f"| {name} | {v} |" for name, v in flatten(key, value)]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from ozi_assets.definitions import build_definitions, build_resources
    from ozi_resources import broker, processes
    from ozi_resources.settings import OziSettings
    from ozi_resources.vectors import OWNER

    wanted = argv or list(SECTIONS)
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        print(f"unknown sections: {unknown}; known: {list(SECTIONS)}", file=sys.stderr)
        return 2
    home = Path(tempfile.mkdtemp(prefix="ozi-bench-"))
    state = broker.start(home)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    run = environment()
    try:
        env = {"OZI_HOME": str(home), "OZI_SAMPLE_DIR": str(SAMPLE)}
        base = OziSettings.from_env(env)
        settings = dataclasses.replace(base, kafka_bootstrap=state.address)
        env["OZI_KAFKA_BOOTSTRAP"] = state.address
        with dg.instance_for_test() as instance:
            world = World(
                settings, build_resources(settings), build_definitions(settings), instance, env
            )
            # Later sections read what the earlier ones wrote: the lake needs data first.
            needed = wanted if set(wanted) <= SELF_CONTAINED else ["ingest", "embeddings", *wanted]
            for name in dict.fromkeys(needed):
                started = time.perf_counter()
                figures = SECTIONS[name](world)
                if name in wanted:
                    figures["seconds_to_run"] = round(time.perf_counter() - started)
                    results[name] = {"run": run, **figures}
                    print(f"{name}: {json.dumps(figures)}", file=sys.stderr)
                    write(results)  # each section as it ends: a later failure loses nothing
        if set(wanted) == set(SECTIONS):
            # the whole bench's peak: a run of some sections would overwrite it with its own
            results["memory"] = {
                "run": run,
                "peak_rss_mib_of_bench_process": round(peak_rss_mib()),
            }
            write(results)
    finally:
        processes.stop(home, OWNER)
        broker.stop(home)
    print(f"written to {RESULTS} and results.md")
    return 0


def write(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS.parent / "results.md").write_text(render_markdown(results))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
