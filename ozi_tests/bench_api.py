"""`make bench api`: the HTTP API of a real ``ozi serve`` under concurrent clients.

For two lakes (the sample, materialized by the pipeline; 100k casts with their vectors, from
``bench.lake_100k``) it starts ``ozi serve`` as ``make dev`` does, then for ``/v1/ask`` (the
bench's analytic and semantic questions in turn) and ``/v1/search``:

- **http**: CLIENTS threads, each with its own keep-alive connection, call the route for
  SECONDS seconds: requests/s, latency p50/p95/p99 and errors (any non-200 or failure).
- **in_process**: the same calls made in this process one after another (``ask`` on the lake;
  the hybrid search ``/v1/search`` runs by default, its vector half through the same owner
  over loopback), for the same time: calls/s and latency.

The ratio says what HTTP, JSON, auth, rate limiting and the worker pool cost, and how much
concurrency gains on these cores. The clients run on the same 2 cores as the server, so the
figures are a lower bound for a server with a machine of its own.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

CLIENTS = int(os.environ.get("OZI_BENCH_API_CLIENTS", "20"))
SECONDS = float(os.environ.get("OZI_BENCH_API_SECONDS", "60"))
SEARCHES = ["eth denver", "farcaster invites", "wallets and keys", "AI models", "coffee"]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 1)


def _figures(latencies: list[float], errors: int, seconds: float) -> dict[str, Any]:
    return {
        "requests": len(latencies) + errors,
        "per_s": round(len(latencies) / seconds, 1),
        "ms_p50": _percentile(latencies, 50),
        "ms_p95": _percentile(latencies, 95),
        "ms_p99": _percentile(latencies, 99),
        "errors": errors,
    }


def load(base: str, token: str, route: str, bodies: list[Any]) -> dict[str, Any]:
    """CLIENTS threads calling ``route`` for SECONDS seconds, each cycling through
    ``bodies`` (a JSON body for POST, query parameters for GET)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS
    first_error: list[str] = []

    def client(offset: int) -> None:
        mine: list[float] = []
        failed = 0
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as http:
            i = offset
            while time.monotonic() < stop:
                body = bodies[i % len(bodies)]
                i += 1
                started = time.perf_counter()
                try:
                    if route == "/v1/search":
                        response = http.get(route, params=body)
                    else:
                        response = http.post(route, json=body)
                    ok = response.status_code == 200
                    if not ok and not first_error:
                        first_error.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as err:
                    ok = False
                    if not first_error:
                        first_error.append(repr(err))
                if ok:
                    mine.append(time.perf_counter() - started)
                else:
                    failed += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    figures = _figures(latencies, errors[0], time.monotonic() - started)
    figures["clients"] = CLIENTS
    if first_error:
        figures["first_error"] = first_error[0]
    return figures


def in_process(calls: list[Any]) -> dict[str, Any]:
    """The same work one call after another in this process, for SECONDS seconds."""
    latencies: list[float] = []
    stop = time.monotonic() + SECONDS
    started = time.monotonic()
    i = 0
    while time.monotonic() < stop:
        t = time.perf_counter()
        calls[i % len(calls)]()
        latencies.append(time.perf_counter() - t)
        i += 1
    return _figures(latencies, 0, time.monotonic() - started)


def bench_lake(settings: Any, questions: list[str]) -> dict[str, Any]:
    """Serve ``settings``' lake and load it; stops the server after."""
    from ozi_assets.api import HYBRID_DEPTH, issue_token
    from ozi_assets.cli import start_owner
    from ozi_assets.definitions import build_resources
    from ozi_assets.questions.engine import Reading, Services, ask, hybrid_search
    from ozi_resources import processes
    from ozi_resources.vectors import OWNER

    token = issue_token(settings.api_token_file, "bench")
    previous = os.environ.get("OZI_API_RATE_LIMIT")
    # The bench measures the server, not the limit that protects it.
    os.environ["OZI_API_RATE_LIMIT"] = "1000000/second"
    try:
        address = start_owner(settings)
    finally:
        if previous is None:
            os.environ.pop("OZI_API_RATE_LIMIT", None)
        else:
            os.environ["OZI_API_RATE_LIMIT"] = previous
    base = f"http://{address}"
    r = build_resources(settings)
    services = Services(r["warehouse"], r["vectors"], r["embedder"], None)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
            for q in questions:  # warm: model, reader, page cache
                assert http.post("/v1/ask", json={"question": q}, timeout=120).status_code == 200
        results: dict[str, Any] = {}
        asks = [{"question": q} for q in questions]
        searches = [{"q": q, "limit": 10} for q in SEARCHES]
        results["ask_http"] = load(base, token, "/v1/ask", asks)
        results["search_http"] = load(base, token, "/v1/search", searches)

        def search_call(q: str):
            # What /v1/search does by default: vector and keyword hits fused.
            def call() -> None:
                with services.warehouse.reader() as conn:
                    reading = Reading(conn, services.warehouse.current_snapshot(conn), [], False)
                    hybrid_search(services, reading, q, HYBRID_DEPTH)

            return call

        results["ask_in_process"] = in_process([lambda q=q: ask(services, q) for q in questions])
        results["search_in_process"] = in_process([search_call(q) for q in SEARCHES])
        for route in ("ask", "search"):
            http, alone = results[f"{route}_http"], results[f"{route}_in_process"]
            if alone["per_s"]:
                results[f"{route}_http_per_s_over_in_process"] = round(
                    http["per_s"] / alone["per_s"], 2
                )
    finally:
        processes.stop(settings.home, OWNER)
    return results


def sample_lake(world: Any) -> Any:
    """The sample produced to a topic of its own and materialized by the pipeline (every
    window, raw → embeddings) in a fresh home."""
    from ozi_resources import farcaster
    from ozi_tests.conftest import materialize_sample

    home = Path(tempfile.mkdtemp(prefix="ozi-bench-api-"))
    settings = dataclasses.replace(
        world.settings,
        home=home,
        topic="bench.api.sample",
        dlq_topic="bench.api.sample.dlq",
        lake_catalog=f"sqlite:{home / 'lake' / 'catalog.sqlite'}",
        lake_data_path=f"{home / 'lake' / 'data'}/",
    )
    materialize_sample(
        settings, farcaster.sample_events(*farcaster.load_sample(settings.sample_dir))
    )
    return settings


def bench_api(world: Any) -> dict[str, Any]:
    from ozi_tests.bench import ANALYTIC_QUESTIONS, SEMANTIC_QUESTIONS, lake_100k

    questions = [
        q for pair in zip(ANALYTIC_QUESTIONS, SEMANTIC_QUESTIONS, strict=True) for q in pair
    ]
    sample = bench_lake(sample_lake(world), questions)
    at_100k = bench_lake(lake_100k(world), questions)
    return {
        "clients": CLIENTS,
        "seconds_per_load": SECONDS,
        "sample": sample,
        "casts_100k": at_100k,
        "note": "ask alternates the bench's analytic and semantic questions; clients share "
        "the server's 2 cores",
    }
