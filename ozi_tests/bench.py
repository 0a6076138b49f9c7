"""`make bench`: Ozi's speed as ratios against the best this machine does with the same parts.

1. Ingest: events/s from Kafka offsets to the clean tables (raw + clean assets, in-process),
   against the ceiling of simply consuming the same messages with the same client
   (kafka-python, assign + seek, no decoding). 100k synthetic events built from the real
   sample: each copy of a message gets a new hash, so nothing is deduplicated away.
2. Embeddings: casts/s through the embeddings asset (read, hash, encode, upsert into Qdrant)
   against the model alone encoding the same texts.
3. Questions: the offline planner's answer time against the bare DuckDB query it runs.

Prints a table and writes it as JSON to $OZI_HOME/bench.json. Figures, not assertions: the
tests never time anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

N_EVENTS = int(os.environ.get("OZI_BENCH_EVENTS", "100000"))
REPO = Path(__file__).resolve().parents[1]
SAMPLE = (REPO / ".." / "shared" / "data" / "farcaster" / "warpy-2023-03").resolve()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
        bootstrap_servers=kafka.bootstrap_servers,
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


def bench_ingest(settings, resources, defs, instance) -> dict:
    from ozi_assets.partitions import stream_partitions

    kafka = resources["kafka"]
    kafka.ensure_topics()
    events = synthetic_events(N_EVENTS)
    started = time.perf_counter()
    kafka.produce(events)
    produce_rate = len(events) / (time.perf_counter() - started)

    ceiling = consume_ceiling(kafka, settings.topic)
    job = defs.resolve_job_def("ingest_job")
    selection = [
        dg.AssetKey(["raw", "farcaster_events"]),
        dg.AssetKey(["clean", "casts"]),
        dg.AssetKey(["clean", "reactions"]),
        dg.AssetKey(["clean", "users"]),
    ]
    started = time.perf_counter()
    for key in stream_partitions.get_partition_keys():
        result = job.execute_in_process(
            partition_key=key,
            instance=instance,
            asset_selection=selection,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
        assert result.success
    seconds = time.perf_counter() - started
    with resources["warehouse"].reader() as conn:
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
        "note": "ingest includes Dagster run overhead, checks and 8 window runs",
    }


def bench_embeddings(resources, defs, instance) -> dict:
    from ozi_assets.partitions import stream_partitions

    embedder = resources["embedder"]
    with resources["warehouse"].reader() as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM casts ORDER BY hash").fetchall()]
    texts = [t for t in texts if t and t.strip()]
    embedder.encode(texts[:64])  # load the model outside the timing
    started = time.perf_counter()
    embedder.encode(texts)
    ceiling = len(texts) / (time.perf_counter() - started)

    job = defs.resolve_job_def("ingest_job")
    embedded = 0
    started = time.perf_counter()
    for key in stream_partitions.get_partition_keys():
        result = job.execute_in_process(
            partition_key=key,
            instance=instance,
            asset_selection=[dg.AssetKey(["embeddings", "casts"])],
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
        (m,) = result.asset_materializations_for_node("embeddings__casts")
        embedded += int(m.metadata["embedded"].value)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    rate = embedded / seconds
    return {
        "texts": len(texts),
        "embedded": embedded,
        "model_only_texts_per_s": round(ceiling, 1),
        "asset_texts_per_s": round(rate, 1),
        "ratio_to_ceiling": round(rate / ceiling, 3),
    }


def bench_questions(resources, instance) -> dict:
    from ozi_assets.questions.engine import Services, ask
    from ozi_resources.warehouse import query

    services = Services(
        resources["warehouse"], resources["vectors"], resources["embedder"], None, instance
    )
    question = "How many casts did dwr post?"
    ask(services, question)  # warm
    answer_times = []
    for _ in range(10):
        started = time.perf_counter()
        answer = ask(services, question)
        answer_times.append(time.perf_counter() - started)
    assert answer.sql
    query_times = []
    with resources["warehouse"].reader() as conn:
        for _ in range(10):
            started = time.perf_counter()
            query(conn, answer.sql)
            query_times.append(time.perf_counter() - started)
    semantic = []
    for _ in range(5):
        started = time.perf_counter()
        ask(services, "What are people saying about ETHDenver?")
        semantic.append(time.perf_counter() - started)
    answer_ms = statistics.median(answer_times) * 1000
    query_ms = statistics.median(query_times) * 1000
    return {
        "analytic_answer_ms_p50": round(answer_ms, 1),
        "bare_query_ms_p50": round(query_ms, 2),
        "ratio_query_to_answer": round(query_ms / answer_ms, 3),
        "semantic_answer_ms_p50": round(statistics.median(semantic) * 1000, 1),
    }


def main() -> int:
    from ozi_assets.definitions import build_definitions, build_resources
    from ozi_resources import broker
    from ozi_resources.settings import OziSettings

    home = Path(tempfile.mkdtemp(prefix="ozi-bench-"))
    state = broker.start(home)
    try:
        base = OziSettings.from_env({"OZI_HOME": str(home), "OZI_SAMPLE_DIR": str(SAMPLE)})
        settings = dataclasses.replace(base, kafka_bootstrap=state.address)
        resources = build_resources(settings)
        defs = build_definitions(settings)
        with dg.instance_for_test() as instance:
            results = {"ingest": bench_ingest(settings, resources, defs, instance)}
            print(json.dumps(results["ingest"]), file=sys.stderr)
            results["embeddings"] = bench_embeddings(resources, defs, instance)
            print(json.dumps(results["embeddings"]), file=sys.stderr)
            results["questions"] = bench_questions(resources, instance)
        results["peak_rss_mib"] = round(peak_rss_mib())
    finally:
        broker.stop(home)
    out = Path(os.environ.get("OZI_HOME") or ".ozi") / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    for section, figures in results.items():
        if isinstance(figures, dict):
            print(f"\n{section}")
            for name, value in figures.items():
                print(f"  {name:32} {value}")
        else:
            print(f"\n{section:34} {figures}")
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
