"""`make bench` section ``freshness``: seconds from produce to visible, under the daemon.

The embedded broker, a fresh OZI_HOME with an open-ended hourly grid starting this hour, the
real ``dagster-daemon`` with the default sensors and ``ozi serve`` (what ``make dev`` runs,
without the web server), and ``ozi produce --synthetic N --live --rate R`` streaming for a
few minutes. Once a second the bench reads the lake's newest snapshot and notes when each
cast first appears in ``casts`` and in ``cast_vectors``, and asks ``ozi serve`` which lake
snapshot its vector shard has caught up to: a cast is searchable once the shard holds the
snapshot its vector first appeared in. A cast's delay is that moment minus the moment the
live producer sent it (its Kafka timestamp). Every cast produced counts: one not visible when
the bench ends counts with the time it had waited by then (a lower bound).

Figures: p50/p95 per minute of the stream, overall, and the duration of each stream and
embeddings run. ``OZI_BENCH_FRESHNESS`` sets "rate:seconds,…" (default "500:180").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ozi_tests.conftest import stop_group

REPO = Path(__file__).resolve().parents[1]
SAMPLE = (REPO / ".." / "shared" / "data" / "farcaster" / "warpy-2023-03").resolve()
PLANS = [
    tuple(int(x) for x in item.split(":"))
    for item in os.environ.get("OZI_BENCH_FRESHNESS", "500:180").split(",")
]
DRAIN_S = 120


def bin_path(name: str) -> str:
    path = REPO / ".venv" / "bin" / name
    return str(path) if path.exists() else name


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def one_run(rate: int, seconds: int) -> dict:
    from ozi_assets.cli import prepare_dagster_home, start_owner
    from ozi_assets.definitions import build_resources
    from ozi_resources import broker, processes
    from ozi_resources.settings import OziSettings
    from ozi_resources.vectors import OWNER

    home = Path(tempfile.mkdtemp(prefix=f"ozi-fresh-{rate}-"))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    env = dict(
        os.environ,
        OZI_HOME=str(home),
        OZI_SAMPLE_DIR=str(SAMPLE),
        OZI_PARTITION_START=hour.strftime("%Y-%m-%d-%H:%M"),
        OZI_PARTITION_END="",
    )
    state = broker.start(home)
    env["OZI_KAFKA_BOOTSTRAP"] = state.address
    settings = OziSettings.from_env(env)
    env["DAGSTER_HOME"] = str(prepare_dagster_home(settings))
    warehouse = build_resources(settings)["warehouse"]
    build_resources(settings)["kafka"].ensure_topics()
    log = (home / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [bin_path("dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    producer = None
    seen_casts: dict[str, float] = {}
    seen_vectors: dict[str, float] = {}
    searchable: dict[str, float] = {}
    vector_snapshot: dict[str, int] = {}  # the lake snapshot a vector was first seen in
    # Kafka partition → newest source_position seen (below its first position: none yet)
    position_seen = {p: (p << 40) - 1 for p in range(settings.kafka_partitions)}
    vectors_counted = [-1]  # cast_vectors' row count at the last poll
    try:
        owner = start_owner(settings)  # `ozi serve`: the shard's owner, the model kept warm
        time.sleep(20)  # the daemon starts its sensors
        started = time.time()
        producer = subprocess.Popen(
            [
                bin_path("ozi"),
                "produce",
                "--synthetic",
                str(rate * seconds),
                "--live",
                "--rate",
                str(rate),
                "--seed",
                str(rate),
            ],
            cwd=REPO,
            env=env,
            stdout=(home / "producer.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = started + seconds + DRAIN_S
        while time.time() < deadline:
            time.sleep(1.0)
            now = time.time()
            try:
                with warehouse.reader() as conn:
                    # Only rows past the positions already seen: the clean stage appends in
                    # offset order per Kafka partition, and a poll must not load the machine
                    # it measures by reading every cast each second.
                    newer = " OR ".join(
                        f"(source_position > {pos} AND source_position < {(p + 1) << 40})"
                        for p, pos in position_seen.items()
                    )
                    for hash_, pos in conn.execute(
                        f"SELECT hash, source_position FROM cast_adds WHERE {newer}"
                    ).fetchall():
                        seen_casts.setdefault(hash_, now)
                        p = pos >> 40
                        position_seen[p] = max(position_seen.get(p, -1), pos)
                    snapshot = warehouse.current_snapshot(conn).id
                    (count,) = conn.execute("SELECT count(*) FROM cast_vectors").fetchone()
                    if count != vectors_counted[0]:
                        vectors_counted[0] = count
                        for (hash_,) in conn.execute("SELECT hash FROM cast_vectors").fetchall():
                            if hash_ not in seen_vectors:
                                seen_vectors[hash_] = now
                                vector_snapshot[hash_] = snapshot
            except Exception:  # the lake does not exist until the first run creates it
                continue
            synced = shard_snapshot(owner)
            if synced is not None:
                for hash_, snap in vector_snapshot.items():
                    if snap <= synced and hash_ not in searchable:
                        searchable[hash_] = now
            if (
                producer.poll() is not None
                and len(seen_vectors) >= len(seen_casts) > 0
                and (now > started + seconds + 10)
            ):
                break
        ended = time.time()
        produced, removed = produced_casts(build_resources(settings)["kafka"])
    finally:
        if producer and producer.poll() is None:
            producer.kill()
        stop_group(daemon)
        processes.stop(home, OWNER)
        broker.stop(home)
    runs = run_durations(home)
    batches = stream_batches(home)
    # Every cast produced counts, by its send time: one not visible by the end counts with
    # the time it had waited then (a lower bound), so a stream that falls behind shows it
    # instead of leaving its slowest casts out.
    first = min(produced.values(), default=started)

    # A cast removed in the stream loses its vector (or never gets one): it is never meant to
    # be searchable, so the vector figures leave it out (counting it as waiting until the end
    # made every minute's p95 look like the time left in the bench). It still counts for
    # `casts`, where its add is visible until the remove is folded in.
    kept = {h: ts for h, ts in produced.items() if h not in removed}

    def delays(
        seen: dict[str, float], casts: dict[str, float] = produced
    ) -> tuple[list[float], dict[int, list[float]]]:
        out, by_minute = [], {}
        for hash_, ts in casts.items():
            delay = seen.get(hash_, ended) - ts
            out.append(delay)
            by_minute.setdefault(int((ts - first) // 60), []).append(delay)
        return out, by_minute

    to_casts, per_minute = delays(seen_casts)
    to_vectors, vector_minute = delays(seen_vectors, kept)
    to_search, search_minute = delays(searchable, kept)
    return {
        "rate_events_per_s": rate,
        "stream_seconds": seconds,
        "casts_produced": len(produced),
        "casts_not_in_casts_by_the_end": sum(h not in seen_casts for h in produced),
        "casts_removed_in_the_stream": len(produced) - len(kept),
        "kept_casts_not_searchable_by_the_end": sum(h not in searchable for h in kept),
        "bench_ended_s_after_last_cast": round(ended - max(produced.values(), default=ended)),
        "to_casts_s_p50": percentile(to_casts, 50),
        "to_casts_s_p95": percentile(to_casts, 95),
        "to_vectors_s_p50": percentile(to_vectors, 50),
        "to_vectors_s_p95": percentile(to_vectors, 95),
        "to_searchable_s_p50": percentile(to_search, 50),
        "to_searchable_s_p95": percentile(to_search, 95),
        "to_casts_p50_by_minute": {m: percentile(v, 50) for m, v in sorted(per_minute.items())},
        "to_casts_p95_by_minute": {m: percentile(v, 95) for m, v in sorted(per_minute.items())},
        "to_searchable_p95_by_minute": {
            m: percentile(v, 95) for m, v in sorted(search_minute.items())
        },
        "to_vectors_p95_by_minute": {
            m: percentile(v, 95) for m, v in sorted(vector_minute.items())
        },
        "stream_runs": len(runs["stream_job"]),
        "stream_run_seconds": runs["stream_job"],
        "stream_runs_stopped_because": batches["stopped_because"],
        "stream_batch_seconds_p50_by_run": batches["p50"],
        "stream_batch_seconds_max_by_run": batches["max"],
        "stream_seconds_by_phase_by_run": batches["phases"],
        "ingest_runs": len(runs["ingest_job"]),
        "embed_runs": len(runs["embed_job"]),
        "embed_run_seconds_p50": percentile(runs["embed_job"], 50),
        "embed_run_seconds_max": max(runs["embed_job"], default=None),
    }


def produced_casts(kafka) -> tuple[dict[str, float], set[str]]:
    """Every cast add on the topic: hash → its Kafka timestamp (Unix s), the moment the live
    producer sent it; and the hashes of the casts a later CAST_REMOVE took back."""
    out: dict[str, float] = {}
    removed: set[str] = set()
    ranges = {p: (0, hw) for p, hw in kafka.high_watermarks().items()}
    for batch in kafka.batches(ranges, 100_000):
        for log in batch.values():
            for value, ms in zip(log.values, log.timestamps_ms, strict=True):
                message = json.loads(value)
                data = message.get("data", {})
                if data.get("type") == "MESSAGE_TYPE_CAST_ADD":
                    out[message["hash"]] = ms / 1000
                elif data.get("type") == "MESSAGE_TYPE_CAST_REMOVE":
                    removed.add(data.get("castRemoveBody", {}).get("targetHash"))
    return out, removed


def shard_snapshot(address: str | None) -> int | None:
    """The lake snapshot ``ozi serve``'s vector shard has caught up to (None: unknown)."""
    import urllib.request

    if address is None:
        return None
    try:
        with urllib.request.urlopen(f"http://{address}/health", timeout=5) as response:
            return json.loads(response.read())["vectors"].get("synced_snapshot")
    except (OSError, ValueError, KeyError):
        return None


def run_durations(home: Path) -> dict[str, list[float]]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    out: dict[str, list[float]] = {"stream_job": [], "ingest_job": [], "embed_job": []}
    with dg.DagsterInstance.get() as instance:
        for name in out:
            records = instance.get_run_records(dg.RunsFilter(job_name=name))
            for record in sorted(records, key=lambda r: r.create_timestamp):
                if record.start_time and record.end_time:
                    out[name].append(round(record.end_time - record.start_time, 1))
    return out


def stream_batches(home: Path) -> dict[str, list]:
    """Per stream_job run (oldest first): its batches' p50 and max seconds and why it
    stopped, from the op's output metadata."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    out: dict[str, list] = {"p50": [], "max": [], "stopped_because": [], "phases": []}
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name="stream_job"))
        for record in sorted(records, key=lambda r: r.create_timestamp):
            for entry in instance.all_logs(record.dagster_run.run_id):
                event = entry.dagster_event
                if event and event.event_type_value == "STEP_OUTPUT":
                    metadata = {k: v.value for k, v in event.event_specific_data.metadata.items()}
                    out["p50"].append(metadata.get("batch_seconds_p50"))
                    out["max"].append(metadata.get("batch_seconds_max"))
                    out["stopped_because"].append(metadata.get("stopped_because"))
                    out["phases"].append(metadata.get("seconds_by_phase"))
    return out


def bench_freshness() -> dict:
    return {f"{rate}_events_per_s": one_run(rate, seconds) for rate, seconds in PLANS}


if __name__ == "__main__":
    print(json.dumps(bench_freshness(), indent=2), file=sys.stderr)
