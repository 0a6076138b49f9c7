"""`make bench` sections for the stream: replay throughput and micro-batch cost by window size.

For each size N (10k, 100k, 1M by default; ``OZI_BENCH_STREAM_SIZES``) a child process, so
its peak RSS is its own:

1. produces N seeded synthetic events (ozi_resources/synthetic.py) into a fresh topic, all
   in one hourly window;
2. baselines on that topic in the same run: kafka-python and confluent-kafka consuming every
   message, nothing else; and a bare script that consumes with confluent-kafka in batches of
   10k, hands the values to DuckDB as an Arrow column and parses the JSON in SQL into one
   table on disk;
3. replays them: one incremental ``ingest_job`` run (raw → clean → aggregates, Dagster and
   checks included) on a fresh lake, in events/s;
4. adds 1,000 events to that window three times and times the incremental run for each:
   the micro-batch cost against the size of the window it lands in;
5. adds 1,000 more under pyinstrument: the seconds of each asset and check in that run, the
   rest being Dagster's own work, and the whole profile in
   ``bench/profile_micro_batch_<N>.txt``.

The ``replay_follow`` section replays the same N events through the path a live stream takes,
one ``stream_job`` run (raw and clean in one transaction a batch, the checks and the
aggregates, Dagster included) on a fresh lake, in its own child process, beside the same
baselines on its own topic.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLE = (REPO / ".." / "shared" / "data" / "farcaster" / "warpy-2023-03").resolve()
SIZES = [
    int(s) for s in os.environ.get("OZI_BENCH_STREAM_SIZES", "10000,100000,1000000").split(",")
]
WINDOW_START_MS = 1677884400000  # 2023-03-03 23:00 UTC, the first window of the default grid
MICRO = 1_000
SPAN_S = 3000.0  # the replayed events lie in the first 50 minutes of one window
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}

STEPS = {  # the functions of ozi_assets whose time the profile reports, by step
    "farcaster_events": "raw",
    "casts": "clean/casts",
    "reactions": "clean/reactions",
    "users": "clean/users",
    "aggregates": "aggregates",
    "run_check": "checks",
    "messages_add_up": "checks",
}


def step_seconds(session) -> dict[str, float]:
    """Seconds of each step in a pyinstrument session (the outermost frame of each step
    function under ozi_assets), and the remainder as Dagster's."""
    out: dict[str, float] = {}

    def walk(frame) -> None:
        step = STEPS.get(frame.function) if "ozi_assets" in (frame.file_path or "") else None
        if step:
            out[step] = out.get(step, 0.0) + frame.time
            return
        for child in frame.children:
            walk(child)

    root = session.root_frame()
    walk(root)
    out = {k: round(v, 3) for k, v in out.items()}
    out["dagster_and_rest"] = round(root.time - sum(out.values()), 3)
    return out


def confluent_consumer(kafka, topic: str, ends: dict[int, int]):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap(),
            "group.id": "ozi-bench",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    return consumer


def confluent_consume(kafka, topic: str) -> float:
    """Messages/s for confluent-kafka consuming every message (values taken), nothing else."""
    ends = kafka.high_watermarks(topic)
    consumer = confluent_consumer(kafka, topic, ends)
    total, want = 0, sum(ends.values())
    started = time.perf_counter()
    while total < want:
        messages = consumer.consume(num_messages=10_000, timeout=1.0)
        values = [m.value() for m in messages]
        total += len(values)
    seconds = time.perf_counter() - started
    consumer.close()
    return total / seconds


def bare_script(kafka, topic: str, folder: Path) -> float:
    """Events/s for the bare script: consume with confluent-kafka in batches of 10k, hand the
    values to DuckDB as an Arrow column, parse the JSON in SQL into one table on disk."""
    import duckdb
    import pyarrow as pa

    ends = kafka.high_watermarks(topic)
    conn = duckdb.connect(str(folder / "bare.duckdb"))
    conn.execute(
        "CREATE TABLE events (hash VARCHAR, type VARCHAR, fid BIGINT, ts BIGINT, text VARCHAR)"
    )
    consumer = confluent_consumer(kafka, topic, ends)
    total, want = 0, sum(ends.values())
    started = time.perf_counter()
    while total < want:
        values = [m.value() for m in consumer.consume(num_messages=10_000, timeout=1.0)]
        if not values:
            continue
        batch = pa.table({"v": pa.array(values, pa.binary())})
        conn.register("batch", batch)
        conn.execute(
            """INSERT INTO events
               SELECT j ->> '$.hash', j ->> '$.data.type', (j ->> '$.data.fid')::BIGINT,
                      (j ->> '$.data.timestamp')::BIGINT, j ->> '$.data.castAddBody.text'
               FROM (SELECT decode(v)::JSON AS j FROM batch)"""
        )
        conn.unregister("batch")
        total += len(values)
    seconds = time.perf_counter() - started
    consumer.close()
    conn.close()
    return total / seconds


def produced(n: int, address: str, home: Path, prefix: str) -> tuple[Any, dict, Any]:
    """A fresh topic (nothing from an earlier run) named ``prefix<n>-<pid>`` holding ``n``
    seeded synthetic events in the first 50 minutes of one window, and a lake in ``home``.
    Returns (settings, resources, the sample's shape for more events)."""
    from ozi_assets.definitions import build_resources
    from ozi_resources import farcaster
    from ozi_resources.settings import OziSettings
    from ozi_resources.synthetic import SampleShape, synthetic_events

    base = OziSettings.from_env({"OZI_HOME": str(home), "OZI_SAMPLE_DIR": str(SAMPLE)})
    topic = f"{prefix}{n}-{os.getpid()}"
    settings = dataclasses.replace(
        base, kafka_bootstrap=address, topic=topic, dlq_topic=f"{topic}.dlq"
    )
    resources = build_resources(settings)
    resources["kafka"].ensure_topics()
    shape = SampleShape.of(farcaster.load_sample(SAMPLE)[0])
    resources["kafka"].produce(synthetic_events(shape, n, WINDOW_START_MS, n / SPAN_S, seed=n))
    return settings, resources, shape


def child(n: int, address: str, home: Path) -> dict:
    import dagster as dg

    from ozi_assets.definitions import build_definitions
    from ozi_resources.synthetic import synthetic_events
    from ozi_tests.bench import consume_ceiling

    settings, resources, shape = produced(n, address, home, "bench")
    kafka, topic = resources["kafka"], settings.topic
    consume = consume_ceiling(kafka, topic)  # kafka-python, as in the ingest section
    consume_confluent = confluent_consume(kafka, topic)
    bare = bare_script(kafka, topic, home)

    job = build_definitions(settings).resolve_job_def("ingest_job")
    tags = {"ozi/mode": "incremental"}
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(
            partition_key="2023-03-03-23:00", instance=instance, tags=tags, run_config=QUIET
        )
        assert result.success
        seconds = time.perf_counter() - started
        (raw,) = result.asset_materializations_for_node("raw__farcaster_events")
        assert raw.metadata["messages_appended"].value == n
        rss_after_replay = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        micro = []
        for k in range(3):
            start = WINDOW_START_MS + int(SPAN_S * 1000) + k * 100_000  # later in the window
            kafka.produce(synthetic_events(shape, MICRO, start, MICRO / 100.0, seed=n + k + 1))
            t = time.perf_counter()
            result = job.execute_in_process(
                partition_key="2023-03-03-23:00", instance=instance, tags=tags, run_config=QUIET
            )
            assert result.success
            micro.append(time.perf_counter() - t)
        from pyinstrument import Profiler

        start = WINDOW_START_MS + int(SPAN_S * 1000) + 3 * 100_000
        kafka.produce(synthetic_events(shape, MICRO, start, MICRO / 100.0, seed=n + 4))
        profiler = Profiler(interval=0.002)
        profiler.start()
        result = job.execute_in_process(
            partition_key="2023-03-03-23:00", instance=instance, tags=tags, run_config=QUIET
        )
        profiler.stop()
        assert result.success
        text = profiler.output_text(unicode=False, color=False)
        (REPO / "bench" / f"profile_micro_batch_{n}.txt").write_text(
            "\n".join(line for line in text.splitlines() if not line.startswith("Profile at "))
            + "\n"
        )
        profiled = step_seconds(profiler.last_session)
    with resources["warehouse"].reader() as conn:
        (window_events,) = conn.execute("SELECT count(*) FROM raw_events").fetchone()
    return {
        "events": n,
        "ingest_events_per_s": round(n / seconds),
        "kafka_python_consume_events_per_s": round(consume),
        "confluent_kafka_consume_events_per_s": round(consume_confluent),
        "bare_script_events_per_s": round(bare),
        "ratio_to_bare_script": round(n / seconds / bare, 3),
        "peak_rss_mib_replay": round(rss_after_replay),
        "micro_batch_of_1000_seconds_median": round(statistics.median(micro), 2),
        "micro_batch_seconds": [round(m, 2) for m in micro],
        "window_events_after": int(window_events),
        "profiled_micro_batch_seconds_by_step": profiled,
    }


def follow_child(n: int, address: str, home: Path) -> dict:
    """Replay ``n`` events through one stream_job run (linger 0: it ends when caught up)."""
    import dagster as dg

    from ozi_assets.definitions import build_definitions

    settings, resources, _ = produced(n, address, home, "follow")
    kafka, topic = resources["kafka"], settings.topic
    consume_confluent = confluent_consume(kafka, topic)
    bare = bare_script(kafka, topic, home)
    job = build_definitions(settings).resolve_job_def("stream_job")
    config = {**QUIET, "ops": {"follow_stream": {"config": {"linger_s": 0.0}}}}
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, run_config=config)
        seconds = time.perf_counter() - started
        assert result.success
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    meta = {k: v.value for k, v in event.event_specific_data.metadata.items()}
    assert meta["messages"] == n, meta
    return {
        "events": n,
        "stream_job_events_per_s": round(n / seconds),
        "confluent_kafka_consume_events_per_s": round(consume_confluent),
        "bare_script_events_per_s": round(bare),
        "ratio_to_bare_script": round(n / seconds / bare, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "batches": meta["batches"],
        "seconds_by_phase": meta["seconds_by_phase"],
    }


def each_size(address: str, label: str, mode: list[str]) -> dict:
    """Run this module as a child process for every size of OZI_BENCH_STREAM_SIZES (its own
    process: its own peak RSS), ``mode`` after its arguments; returns {"<N>_events":
    figures}. Raises RuntimeError with the child's stderr when one fails."""
    out: dict = {}
    for n in SIZES:
        home = Path(tempfile.mkdtemp(prefix=f"ozi-bench-{label}-{n}-"))
        proc = subprocess.run(
            [sys.executable, "-m", "ozi_tests.bench_stream", str(n), address, str(home), *mode],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"size {n} failed:\n{proc.stderr[-3000:]}")
        out[f"{n}_events"] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{label} {n}: {out[f'{n}_events']}", file=sys.stderr)
    return out


def bench_replay_follow(address: str) -> dict:
    """``follow_child`` for every size; returns {size: figures}."""
    out = each_size(address, "replay_follow", ["follow"])
    out["note"] = (
        "one stream_job run (raw and clean in one transaction a batch, checks, aggregates, "
        "Dagster) per replay; baselines on the same topic in the same child process"
    )
    return out


def bench_stream(address: str) -> dict:
    """Run the child for every size; returns {size: figures} and the micro-batch growth."""
    out = each_size(address, "stream", [])
    micro = [out[f"{n}_events"]["micro_batch_of_1000_seconds_median"] for n in SIZES]
    out["micro_batch_growth_largest_over_smallest"] = round(micro[-1] / micro[0], 2)
    out["note"] = (
        "one incremental ingest_job run (raw, clean, aggregates, checks) per replay; "
        "baselines on the same topic in the same child process"
    )
    return out


if __name__ == "__main__":
    run = follow_child if sys.argv[4:] == ["follow"] else child
    figures = run(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
    print(json.dumps(figures))
