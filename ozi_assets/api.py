"""The public HTTP API of ``ozi serve``: questions, search, guarded SQL, the catalogue,
lineage, health and metrics, for programs (JSON; OpenAPI at ``/docs``) and for people (the
question page at ``/``).

Routes. Every response carries ``X-Request-ID`` (the caller's, when it sends a UUID; a new
one otherwise); every error is ``{"error": "<one line>", "request_id": "..."}`` with a 4xx
status for bad input and never a traceback.

- ``POST /v1/ask`` ``{question, at?}`` → the answer object: ``answer``, ``kind``, ``sql``,
  ``rows``, ``sources`` (casts, each with a ``url``), ``lineage`` (asset partitions, each with
  a ``ui_url`` into the Dagster UI), ``data_as_of``, ``planner``.
- ``GET /v1/search?q=&fid=&since=&until=&limit=&mode=`` → ``{hits: [{hash, fid, username,
  timestamp, text, score, bm25, rank, url}], vector_index, keyword_index, snapshot_id}``:
  ``mode=hybrid`` (default) fuses the vector and BM25 lists by reciprocal rank as semantic
  questions do (``rank`` orders them; ``score`` is the cosine, None for a keyword-only hit);
  ``mode=vector`` is cosine only, best first, at least ``min_score``.
- ``POST /v1/sql`` ``{sql, at?}`` → ``{sql, tables, columns, rows, snapshot_id}``: one read-only
  SELECT over the public tables, through the same guard as ``ozi sql``.
- ``GET /v1/catalog`` → the semantic layer (metrics, dimensions, filters) and the public
  tables with their columns: what questions can ask about.
- ``GET /v1/lineage?asset=&partition=&limit=`` → the lake commits that materialized that asset
  partition (run, snapshot, time; newest first), its upstream and downstream assets, a UI link.
- ``GET /v1/activity?limit=`` → hourly activity, newest windows last (the page's chart).
- ``GET /health`` → broker, warehouse, vectors and LLM, each up or down and why; 503 when the
  warehouse cannot be read (nothing can be answered).
- ``GET /metrics`` → Prometheus text: requests and latency by route, consumer lag by Kafka
  partition and stage, the age of the newest cast and of the newest lake commit, how far the
  vector shard is behind the lake.

Tokens. ``/v1/*`` needs ``Authorization: Bearer <token>``. Only SHA-256 hashes of tokens are
configured (OZI_API_TOKENS, and the ``$OZI_HOME/api_tokens`` file ``ozi token new`` appends
to), so a leaked configuration does not leak a token. A plain hash and not a slow password
hash: the tokens are 256 random bits, not words a dictionary could guess. Each token has its
own rate limit (OZI_API_RATE_LIMIT, the ``limits`` library's moving window); past it the answer
is 429 with ``Retry-After``. ``/health`` and ``/metrics`` answer without a token: probes and
scrapers call them, and they hold counts and states, no cast. The internal ``/v1/vectors/*``
routes the pipeline's runs call take loopback callers without a token.

Bounds: bodies of at most 64 KiB on public routes (413 beyond), questions of at most 1,000
characters, SQL of at most 20,000, a request budget of 60 s (504 beyond), SQL statements stopped
after 10 s, at most 8 requests working at once (more wait their turn).

Logs: one JSON line per request on the ``ozi.api`` logger (request id, method, route, status,
milliseconds, token name), and the traceback of a server error under the same request id.
"""

import concurrent.futures
import contextlib
import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import dagster as dg
import duckdb
from asgi_correlation_id import CorrelationIdFilter, CorrelationIdMiddleware, correlation_id
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from pythonjsonlogger.json import JsonFormatter
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ozi_assets.questions.answer import jsonable
from ozi_assets.questions.engine import (
    Reading,
    Services,
    ask,
    hybrid_search,
    run_sql,
    search,
)
from ozi_assets.questions.layer import catalogue
from ozi_assets.questions.timerange import TimeRange
from ozi_resources.settings import OziSettings
from ozi_resources.sql_guard import SqlRefused
from ozi_resources.warehouse import PUBLIC_TABLES, WarehouseError, first_line

log = logging.getLogger("ozi.api")

TOKEN_PREFIX = "ozi_"
MAX_BODY_BYTES = 64 * 1024  # public routes; a question or a statement is far smaller
MAX_INTERNAL_BODY_BYTES = 64 * 1024 * 1024  # /v1/vectors/embed carries a batch of casts
REQUEST_BUDGET_S = 60.0
SQL_TIMEOUT_S = 10.0
WORKERS = 8  # requests doing work at once: the reader takes at most half the cores anyway
PROBE_TIMEOUT_S = 3.0  # each component /health and /metrics look at
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
CAST_URL = "https://warpcast.com/{username}/{short_hash}"
HYBRID_DEPTH = 50  # vector hits fused with the keyword hits, as a semantic question does


# -- tokens -----------------------------------------------------------------------------------


def new_token() -> str:
    """A fresh API token: ``ozi_`` and 43 URL-safe characters (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 of a token, 64 hex digits: what configuration stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_token_hashes(text: str, source: str) -> dict[str, str]:
    """``{hash: name}`` from ``name:hash`` entries separated by commas or newlines (a space may
    stand for the colon). Raises ValueError naming ``source`` and the entry when a hash is not
    64 hex digits or a name is missing."""
    hashes: dict[str, str] = {}
    for entry in text.replace(",", "\n").splitlines():
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        name, _, digest = entry.replace(" ", ":", 1).partition(":")
        digest = digest.strip().lower()
        if not name or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{source}: {entry[:20]!r}… is not name:sha256-hex")
        hashes[digest] = name
    return hashes


def issue_token(file: Path, name: str) -> str:
    """Make a token named ``name``, keep its hash in ``file`` (replacing the hash of an older
    token of that name, which stops working) and return the token, which is not stored."""
    if not name or any(c in name for c in ":, \n#"):
        raise ValueError(f"a token name is one word without ':' or ',': {name!r}")
    token = new_token()
    lines = file.read_text().splitlines() if file.exists() else []
    kept = [line for line in lines if line.split(" ", 1)[0] != name]
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("\n".join([*kept, f"{name} {token_hash(token)}"]) + "\n")
    file.chmod(0o600)
    return token


class TokenStore:
    """The configured token hashes (OZI_API_TOKENS) and those in the token file, which is read
    again when it changes, so ``ozi token new`` needs no restart."""

    def __init__(self, configured: str, file: Path) -> None:
        self._configured = parse_token_hashes(configured, "OZI_API_TOKENS")
        self._file = file
        self._stamp: float | None = None
        self._hashes = dict(self._configured)
        self._lock = threading.Lock()

    def _reload(self) -> None:
        try:
            stamp = self._file.stat().st_mtime
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        with self._lock:
            text = self._file.read_text() if stamp is not None else ""
            self._hashes = {**parse_token_hashes(text, str(self._file)), **self._configured}
            self._stamp = stamp

    def __len__(self) -> int:
        self._reload()
        return len(self._hashes)

    def name_of(self, token: str) -> str | None:
        """The name of the token, or None when it is not one of ours. Compared in constant
        time, so response times do not reveal how much of a hash matched."""
        self._reload()
        digest = token_hash(token)
        found = None
        for known, name in self._hashes.items():
            if hmac.compare_digest(known, digest):
                found = name
        return found


class RateLimits:
    """Per-token limits (e.g. ``20/second;600/minute``) over a moving window, in memory: one
    ``ozi serve`` process answers for its tokens."""

    def __init__(self, spec: str) -> None:
        try:
            self.items: list[RateLimitItem] = parse_many(spec)
        except ValueError as err:
            raise ValueError(f"OZI_API_RATE_LIMIT {spec!r}: {err}") from None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, name: str) -> int | None:
        """Count one request of token ``name``; None when allowed, else the seconds until the
        window that refused it has room again."""
        for item in self.items:
            if not self._limiter.hit(item, "token", name):
                stats = self._limiter.get_window_stats(item, "token", name)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None


# -- errors, request ids, logs and bounds ------------------------------------------------------


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": message, "request_id": correlation_id.get()}, status, headers=headers
    )


def _validation_message(err: RequestValidationError) -> str:
    first = err.errors()[0] if err.errors() else {}
    # loc is ("body" | "query" | ..., field, ...): the field is what a person can act on.
    where = ".".join(str(part) for part in first.get("loc", ())[1:])
    message = first.get("msg", "invalid request")
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON"
    return f"{where}: {message}" if where else message


def configure_logging() -> None:
    """One JSON object per line on stderr for ``ozi.api``, each with the request id."""
    if any(getattr(h, "ozi_json", False) for h in log.handlers):
        return
    handler = logging.StreamHandler()
    handler.ozi_json = True  # type: ignore[attr-defined]
    handler.addFilter(CorrelationIdFilter(default_value="-"))
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{message}{correlation_id}",
            style="{",
            rename_fields={"correlation_id": "request_id", "levelname": "level"},
        )
    )
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


class BodyLimit:
    """ASGI middleware: a request body longer than the route's bound is refused with 413
    before it is read whole (``Content-Length`` checked first, chunked bodies counted)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        internal = scope["path"].startswith("/v1/vectors/")
        bound = MAX_INTERNAL_BODY_BYTES if internal else MAX_BODY_BYTES
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > bound:
            await _error(413, f"the body is larger than {bound // 1024} KiB")(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > bound:
                raise HTTPException(413, f"the body is larger than {bound // 1024} KiB")
            return message

        await self.app(scope, counted, send)


# -- metrics ----------------------------------------------------------------------------------


class Probes:
    """What /health and /metrics look at: each component, with a time limit, in parallel.

    A probe that does not finish in PROBE_TIMEOUT_S counts as down ("no answer within 3 s");
    its thread is left to finish on its own (a hung broker connection must not hang /health).
    """

    def __init__(self, settings: OziSettings, services: Services, kafka: Any, owner: Any) -> None:
        self.settings, self.services, self.kafka, self.owner = settings, services, kafka, owner
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="ozi-probe")

    def run_all(self, probes: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        futures = {name: self._pool.submit(probe) for name, probe in probes.items()}
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        results: dict[str, dict[str, Any]] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                results[name] = {"up": False, "detail": f"no answer within {PROBE_TIMEOUT_S:.0f}s"}
            except Exception as err:
                results[name] = {"up": False, "detail": first_line(err)}
        return results

    def broker(self) -> dict[str, Any]:
        high = self.kafka.high_watermarks()
        return {
            "up": True,
            "detail": f"{len(high)} partitions of {self.kafka.topic}",
            "high_watermarks": high,
        }

    def warehouse(self) -> dict[str, Any]:
        warehouse = self.services.warehouse
        with warehouse.reader() as conn:
            snapshot = warehouse.current_snapshot(conn)
            (newest,) = conn.execute('SELECT max("timestamp") FROM cast_adds').fetchone() or (None,)
        return {
            "up": True,
            "detail": f"lake snapshot {snapshot.id}",
            "snapshot_id": snapshot.id,
            "snapshot_time": snapshot.time.astimezone(UTC).isoformat(),
            "newest_cast": newest.astimezone(UTC).isoformat() if newest else None,
        }

    def vectors(self) -> dict[str, Any]:
        vectors = self.services.vectors
        if self.owner is None:
            embedder = self.services.embedder
            vectors.server_index(embedder.model_name, embedder.dimension).client.get_collections()
            return {"up": True, "detail": f"Qdrant server {vectors.url}", "index": "qdrant-server"}
        owner = self.owner
        lake = None
        with contextlib.suppress(WarehouseError), self.services.warehouse.reader() as conn:
            lake = self.services.warehouse.current_snapshot_id(conn)
        state = {
            "index": owner.index.kind,
            "model": owner.model,
            "points": owner.index.count(),
            "synced_snapshot": owner.index.synced_snapshot(),
            "lake_snapshot": lake,
            "last_error": owner.last_error,
        }
        up = owner.last_error is None or owner.last_error.startswith("no warehouse")
        synced = f"{state['points']} points at snapshot {state['synced_snapshot']}"
        detail = owner.last_error or synced
        return {"up": up, "detail": detail, **state}

    def llm(self) -> dict[str, Any]:
        llm = self.services.llm
        if llm is None or not llm.configured:
            return {"up": None, "detail": "not configured: the offline planner answers"}
        from openai import OpenAI

        client = OpenAI(
            base_url=llm.base_url,
            api_key=llm.api_key or "unused",
            timeout=PROBE_TIMEOUT_S,
            max_retries=0,
        )
        served = [m.id for m in client.models.list().data]
        return {"up": True, "detail": f"{llm.base_url} serves {len(served)} model(s)"}

    def health(self) -> dict[str, dict[str, Any]]:
        return self.run_all(
            {
                "broker": self.broker,
                "warehouse": self.warehouse,
                "vectors": self.vectors,
                "llm": self.llm,
            }
        )

    def lag(self) -> dict[str, Any]:
        from ozi_assets.sensors import stream_lag

        lag, _ = stream_lag(self.kafka, self.services.warehouse)
        return {"up": True, "lag": lag}


class StreamCollector(Collector):
    """Prometheus gauges read at scrape time: consumer lag, data age, vector shard lag and
    each component's state. A component that is down is 0 in ``ozi_up`` and its gauges are
    left out, so a scrape never fails because the broker is away."""

    def __init__(self, probes: Probes) -> None:
        self.probes = probes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        seen = self.probes.run_all(
            {
                "lag": self.probes.lag,
                "warehouse": self.probes.warehouse,
                "vectors": self.probes.vectors,
            }
        )
        up = GaugeMetricFamily("ozi_up", "1 when the component answers", labels=["component"])
        up.add_metric(["broker"], 1.0 if seen["lag"]["up"] else 0.0)
        for name in ("warehouse", "vectors"):
            up.add_metric([name], 1.0 if seen[name]["up"] else 0.0)
        yield up
        lag = seen["lag"].get("lag")
        if lag is not None:
            family = GaugeMetricFamily(
                "ozi_consumer_lag_messages",
                "messages in the log a stage has not folded in (by Kafka partition for raw)",
                labels=["stage", "partition"],
            )
            for where, behind in lag.items():
                if where.startswith("partition "):
                    family.add_metric(["raw", where.removeprefix("partition ")], float(behind))
                else:
                    family.add_metric([where, "all"], float(behind))
            yield family
        now = datetime.now(UTC)
        lake = seen["warehouse"]
        if lake["up"]:
            committed = datetime.fromisoformat(lake["snapshot_time"])
            yield GaugeMetricFamily(
                "ozi_lake_commit_age_seconds",
                "seconds since the newest lake snapshot was committed",
                value=(now - committed).total_seconds(),
            )
            if lake["newest_cast"]:
                newest = datetime.fromisoformat(lake["newest_cast"])
                yield GaugeMetricFamily(
                    "ozi_newest_cast_age_seconds",
                    "seconds between now and the newest cast in the lake (event time): "
                    "freshness for a live stream",
                    value=(now - newest).total_seconds(),
                )
            vectors = seen["vectors"]
            if vectors["up"] and vectors.get("synced_snapshot") is not None:
                yield GaugeMetricFamily(
                    "ozi_vectors_behind_snapshots",
                    "lake snapshots the vector shard has not caught up to",
                    value=float(max(0, lake["snapshot_id"] - vectors["synced_snapshot"])),
                )


class Metrics:
    """Request counters and latency histograms, in a registry of this app's own."""

    def __init__(self, probes: Probes) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ozi_api_requests",
            "requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ozi_api_request_duration_seconds",
            "time to answer, by route template",
            ["route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.registry.register(StreamCollector(probes))


# -- request and answer shapes ---------------------------------------------------------------


class AskBody(BaseModel):
    question: str = Field(min_length=1, max_length=1000, description="a question in English")
    at: int | None = Field(default=None, ge=1, description="lake snapshot to read (time travel)")


class SqlBody(BaseModel):
    sql: str = Field(min_length=1, max_length=20_000, description="one SELECT")
    at: int | None = Field(default=None, ge=1, description="lake snapshot to read")


def cast_url(username: str | None, cast_hash: str) -> str | None:
    """The cast's page on Warpcast (``https://warpcast.com/<user>/<0x + 8 hex>``), or None
    without a username."""
    if not username:
        return None
    return CAST_URL.format(username=username, short_hash=cast_hash[:10])


def asset_url(dagster_url: str, asset: str, partition: str | None) -> str:
    """The asset's page in the Dagster UI, on ``partition`` when given."""
    url = f"{dagster_url}/assets/{asset}"
    return f"{url}?view=partitions&partition={partition}" if partition else url


def _with_links(record: dict[str, Any], dagster_url: str) -> dict[str, Any]:
    for source in record.get("sources", []):
        source["url"] = cast_url(source.get("username"), source["hash"])
    for entry in record.get("lineage", []):
        entry["ui_url"] = asset_url(dagster_url, entry["asset"], entry.get("partition"))
    return record


@dataclass(frozen=True)
class LakeCommit:
    """One lake commit behind an asset partition, as /v1/lineage lists it."""

    snapshot_id: int
    committed_at: str
    run_id: str | None
    partition: str | None


# -- the app ----------------------------------------------------------------------------------


def install(
    app: FastAPI,
    settings: OziSettings,
    services: Services,
    kafka: Any,
    owner: Any,
) -> Callable[[Request], Awaitable[None]]:
    """Add the public routes, middleware and error handlers to ``app`` (the ``ozi serve``
    app, which owns the vector shard); returns the dependency that admits callers of the
    internal ``/v1/vectors/*`` routes (loopback, or a valid token).

    Raises ValueError for a malformed OZI_API_TOKENS or OZI_API_RATE_LIMIT.
    """
    configure_logging()
    tokens = TokenStore(settings.api_tokens, settings.api_token_file)
    limits = RateLimits(settings.api_rate_limit)
    probes = Probes(settings, services, kafka, owner)
    metrics = Metrics(probes)
    workers = anyio.CapacityLimiter(WORKERS)
    graph = _asset_graph()

    async def work(fn: Callable[..., Any], *args: Any) -> Any:
        """Run blocking work (DuckDB, the model) on a worker thread within the budget. On a
        thread of its own limiter, so a question's call to this process's own vector routes
        always finds a free thread."""
        try:
            with anyio.fail_after(REQUEST_BUDGET_S):
                return await anyio.to_thread.run_sync(
                    fn, *args, limiter=workers, abandon_on_cancel=True
                )
        except TimeoutError as err:
            raise HTTPException(504, f"no answer within {REQUEST_BUDGET_S:.0f}s") from err

    def caller(request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(
                401,
                "send a token: Authorization: Bearer <token> (`ozi token new` makes one)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        name = tokens.name_of(token.strip())
        if name is None:
            raise HTTPException(
                401, "unknown token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
        request.state.token = name
        wait = limits.retry_after(name)
        if wait is not None:
            raise HTTPException(
                429,
                f"token {name} is over its rate limit ({settings.api_rate_limit}); "
                f"retry in {wait}s",
                headers={"Retry-After": str(wait)},
            )
        return name

    async def internal(request: Request) -> None:
        host = request.client.host if request.client else ""
        if host not in LOOPBACK:
            caller(request)

    async def observe(request: Request, call_next: Callable) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            seconds = time.perf_counter() - started
            metrics.requests.labels(template, request.method, str(status)).inc()
            metrics.latency.labels(template).observe(seconds)
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "route": template,
                    "status": status,
                    "ms": round(seconds * 1000, 1),
                    "token": getattr(request.state, "token", None),
                },
            )

    # The last added is the outermost: the request id is set before anything runs or logs
    # (observe runs the route in a task of its own, which sees the id only when it was set
    # outside), and bodies are bounded before a route reads them.
    app.add_middleware(BaseHTTPMiddleware, dispatch=observe)
    app.add_middleware(BodyLimit)
    app.add_middleware(CorrelationIdMiddleware, header_name="X-Request-ID")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(err))

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception) -> JSONResponse:
        log.exception("server error on %s", request.url.path)
        return _error(500, "internal error: the server log has it under this request id")

    router = APIRouter(prefix="/v1", dependencies=[Depends(caller)])

    def _ask(body: AskBody) -> dict[str, Any]:
        try:
            answer = ask(services, body.question, body.at)
        except WarehouseError as err:
            raise HTTPException(409, str(err)) from err
        return _with_links(answer.to_dict(), settings.dagster_url)

    @router.post("/ask", summary="Answer a question with rows, sources and lineage")
    async def ask_route(body: AskBody) -> dict[str, Any]:
        return await work(_ask, body)

    def _search(
        q: str,
        fid: int | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        min_score: float,
        mode: str,
    ) -> dict[str, Any]:
        warehouse = services.warehouse
        time_range = None
        if since or until:
            start = since or datetime(1970, 1, 1, tzinfo=UTC)
            end = until or datetime(9999, 1, 1, tzinfo=UTC)
            time_range = TimeRange(start, end, f"from {start.isoformat()} to {end.isoformat()}")
        try:
            with warehouse.reader() as conn:
                snapshot = warehouse.current_snapshot(conn)
                reading = Reading(conn, snapshot, [], time_travel=False)
                if mode == "vector":
                    found = search(services, reading, q, limit, min_score, time_range, fid)
                    hits = [asdict(h) for h in found.hits]
                    keyword_index = None
                else:
                    fused = hybrid_search(
                        services, reading, q, max(limit, HYBRID_DEPTH), time_range, fid
                    )
                    found = fused.vectors
                    hits = [asdict(h) for h in fused.hits[:limit]]
                    keyword_index = {
                        "kind": "duckdb-fts",
                        "snapshot_id": fused.index.snapshot,
                        "documents": fused.index.documents,
                    }
        except WarehouseError as err:
            raise HTTPException(409, str(err)) from err
        for hit in hits:
            hit["url"] = cast_url(hit["username"], hit["hash"])
        return {
            "query": q,
            "mode": mode,
            "hits": hits,
            "vector_index": {
                "kind": found.index,
                "snapshot_id": found.snapshot,
                "note": found.note,
            },
            "keyword_index": keyword_index,
            "snapshot_id": snapshot.id,
        }

    @router.get("/search", summary="Casts about q: vector and keyword hits fused, or vectors only")
    async def search_route(
        q: Annotated[str, Query(min_length=1, max_length=1000, description="the topic")],
        fid: Annotated[int | None, Query(ge=0, description="only this author's casts")] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        min_score: Annotated[float, Query(ge=-1.0, le=1.0, description="vector mode")] = 0.0,
        mode: Annotated[
            Literal["hybrid", "vector"],
            Query(description="hybrid: vectors and BM25 fused by rank; vector: cosine only"),
        ] = "hybrid",
    ) -> dict[str, Any]:
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise HTTPException(422, f"{name}: give a time zone (e.g. Z for UTC)")
        return await work(_search, q, fid, since, until, limit, min_score, mode)

    def _sql(body: SqlBody) -> dict[str, Any]:
        warehouse = services.warehouse
        try:
            with warehouse.reader(snapshot=body.at) as conn:
                snapshot = warehouse.current_snapshot(conn)
                statement, tables, rows = run_sql(conn, body.sql, SQL_TIMEOUT_S)
        except SqlRefused as err:
            raise HTTPException(400, f"refused: {err}") from err
        except TimeoutError as err:
            raise HTTPException(400, str(err)) from err
        except duckdb.Error as err:
            raise HTTPException(400, first_line(err)) from err
        except WarehouseError as err:
            raise HTTPException(409, str(err)) from err
        columns = list(rows[0]) if rows else []
        return {
            "sql": statement,
            "tables": list(tables),
            "columns": columns,
            "rows": [{k: jsonable(v) for k, v in row.items()} for row in rows],
            "snapshot_id": snapshot.id,
        }

    @router.post("/sql", summary="One read-only SELECT over the public tables, as JSON rows")
    async def sql_route(body: SqlBody) -> dict[str, Any]:
        return await work(_sql, body)

    def _catalog() -> dict[str, Any]:
        tables: dict[str, list[dict[str, str]]] = {}
        try:
            with services.warehouse.reader() as conn:
                for table, column, kind in conn.execute(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns "
                    "WHERE table_catalog = 'lake' AND list_contains($t, table_name) "
                    "ORDER BY table_name, ordinal_position",
                    {"t": list(PUBLIC_TABLES)},
                ).fetchall():
                    tables.setdefault(table, []).append({"name": column, "type": kind})
        except WarehouseError:
            pass  # nothing materialized yet: the layer still says what can be asked
        return {**catalogue(), "tables": tables}

    @router.get("/catalog", summary="What questions can ask about: metrics, dimensions, tables")
    async def catalog_route() -> dict[str, Any]:
        return await work(_catalog)

    def _lineage(asset: str, partition: str | None, limit: int) -> dict[str, Any]:
        if asset not in graph:
            known = ", ".join(sorted(graph))
            raise HTTPException(404, f"no asset {asset!r}; the assets are {known}")
        try:
            with services.warehouse.reader() as conn:
                records = services.warehouse.commits_of(conn, asset, partition, limit)
        except WarehouseError as err:
            raise HTTPException(409, str(err)) from err
        return {
            "asset": asset,
            "partition": partition,
            "commits": [
                asdict(LakeCommit(r.id, r.time.astimezone(UTC).isoformat(), r.run_id, r.partition))
                for r in records
            ],
            "upstream": sorted(graph[asset]["upstream"]),
            "downstream": sorted(graph[asset]["downstream"]),
            "ui_url": asset_url(settings.dagster_url, asset, partition),
        }

    @router.get("/lineage", summary="The commits behind an asset partition, and its neighbours")
    async def lineage_route(
        asset: Annotated[str, Query(min_length=1, max_length=200, description="clean/casts")],
        partition: Annotated[str | None, Query(max_length=40, description="window key")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> dict[str, Any]:
        return await work(_lineage, asset, partition, limit)

    def _activity(limit: int) -> dict[str, Any]:
        warehouse = services.warehouse
        try:
            with warehouse.reader() as conn:
                rows = conn.execute(
                    "SELECT * FROM (SELECT window_start, casts, replies, reactions "
                    "FROM hourly_activity ORDER BY window_start DESC LIMIT $n) "
                    "ORDER BY window_start",
                    {"n": limit},
                ).fetchall()
        except WarehouseError as err:
            raise HTTPException(409, str(err)) from err
        return {
            "windows": [
                {"window_start": jsonable(w), "casts": c, "replies": r, "reactions": x}
                for w, c, r, x in rows
            ]
        }

    @router.get("/activity", summary="Casts, replies and reactions per hourly window")
    async def activity_route(limit: Annotated[int, Query(ge=1, le=2000)] = 48) -> dict[str, Any]:
        return await work(_activity, limit)

    app.include_router(router)

    @app.get("/health", summary="Each component up or down, and why")
    async def health_route() -> JSONResponse:
        components = await anyio.to_thread.run_sync(probes.health)
        status = 200 if components["warehouse"]["up"] else 503
        overall = "ok" if all(c["up"] is not False for c in components.values()) else "degraded"
        return JSONResponse({"status": overall, **components}, status)

    @app.get("/metrics", summary="Prometheus text", response_class=Response)
    async def metrics_route() -> Response:
        text = await anyio.to_thread.run_sync(generate_latest, metrics.registry)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("ozi_assets").joinpath("web/index.html").read_text())

    if not len(tokens):
        log.warning("no API token configured: /v1 refuses every request (`ozi token new`)")
    return internal


def _asset_graph() -> dict[str, dict[str, set[str]]]:
    """``{asset: {"upstream": {...}, "downstream": {...}}}`` for every asset of the Dagster
    definitions, keys as ``a/b`` strings."""
    from ozi_assets.definitions import defs

    graph: dict[str, dict[str, set[str]]] = {}
    for assets_def in defs.assets or []:
        if not isinstance(assets_def, dg.AssetsDefinition):
            continue
        for key, deps in assets_def.asset_deps.items():
            name = key.to_user_string()
            node = graph.setdefault(name, {"upstream": set(), "downstream": set()})
            for dep in deps:
                dep_name = dep.to_user_string()
                node["upstream"].add(dep_name)
                graph.setdefault(dep_name, {"upstream": set(), "downstream": set()})
                graph[dep_name]["downstream"].add(name)
    return graph
