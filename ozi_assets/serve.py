"""`ozi serve`: the long-running process that answers over HTTP: the public API and the
question page (``ozi_assets/api.py``), and the embedded vector shard it owns.

The embedded Qdrant engine (qdrant-edge) lets one process open a shard, so this process is
its owner: it catches up from the lake's snapshots (a background thread, every second, and at
once when the embeddings asset asks after a commit) and answers searches with the model kept
warm. Embedding writes to the lake and never waits for a search; a search reads the shard
and never waits for embedding. The internal routes the pipeline's runs call (loopback
callers, or a token):

- ``POST /v1/vectors/search`` ``{text, model, limit, min_score, fid, since_s, until_s}`` →
  ``{hits: [{hash, fid, username, timestamp, text, score}], index, snapshot}``.
- ``POST /v1/vectors/sync`` ``{model, wait}`` → what the catch-up did (``wait`` false: it is
  scheduled and the answer comes at once; the embeddings asset asks that way, so embedding
  never waits for the shard).
- ``POST /v1/vectors/embed`` ``{model, texts, keeping_up}`` → ``{model, dimension, count,
  vectors}``: the texts' unit vectors, float32 little-endian, row after row, base64. The
  embeddings runs embed here with the model kept warm, instead of loading it in every run
  (20–40 s). These bulk batches run in child processes at a lower CPU priority
  (``BulkEmbedder``): a batch that keeps up with the stream nearly at the pipeline's
  (OZI_EMBED_KEEP_UP_NICE), a batch of a backlog well below it (OZI_EMBED_NICE), so casts
  reach the tables first; searches embed their one text in this process at the normal
  priority.

With a Qdrant server configured (OZI_QDRANT_URL) there is no shard to own: the process
answers the public API and embeds.
"""

import argparse
import base64
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field, PrivateAttr

from ozi_assets import api
from ozi_assets.questions.engine import Services
from ozi_resources.settings import OziSettings
from ozi_resources.vectors import (
    EdgeIndex,
    EmbedderResource,
    SearchFilter,
    SearchResult,
    SyncResult,
    VectorHit,
    VectorStoreResource,
    catch_up,
)
from ozi_resources.warehouse import WarehouseError, WarehouseResource

log = logging.getLogger("ozi.serve")
SYNC_INTERVAL_S = 1.0
# Points appended since the last HNSW build are searched by brute force; past this many the
# owner builds their graph, in its sync thread. The engine holds the GIL while it builds, so
# the whole process pauses: 10k points keep that pause at 1-2.5 s (see edge_config).
OPTIMIZE_AFTER_UNINDEXED = 10_000
EMBED_MAX_TEXTS = 20_000  # one embeddings batch holds ~2k casts; this bounds a request's body


class VectorOwner:
    """The shard of one model, kept in step with the lake.

    ``sync()`` may be called from any thread; catch-ups are serialized by a lock, searches
    are not (the engine reads while it writes).
    """

    def __init__(
        self,
        warehouse: WarehouseResource,
        vectors: VectorStoreResource,
        embedder: EmbedderResource,
    ) -> None:
        self.warehouse, self.vectors, self.embedder = warehouse, vectors, embedder
        self.model = embedder.model_name
        self.index = EdgeIndex(vectors.shard_folder(self.model), self.model, embedder.dimension)
        self._lock = threading.Lock()
        self.wake = threading.Event()  # set to catch up now instead of at the next interval
        self.last: SyncResult | None = None
        self.last_error: str | None = None

    def sync(self) -> SyncResult:
        """Catch the shard up to the lake's newest snapshot. Raises WarehouseError when the
        lake does not exist yet."""
        with self._lock:
            started = time.perf_counter()
            with self.warehouse.reader() as conn:
                target = self.warehouse.current_snapshot_id(conn)
                result = catch_up(self.index, conn, self.model, target)
            if self.index.unindexed() > OPTIMIZE_AFTER_UNINDEXED:
                self.index.optimize()
            result.seconds = round(time.perf_counter() - started, 3)
            self.last, self.last_error = result, None
            return result

    def search(self, text: str, flt: SearchFilter, limit: int, min_score: float) -> dict:
        vector = self.embedder.encode([text])[0].tolist()
        hits = self.index.search(vector, flt, limit, min_score)
        return {
            "hits": [asdict(h) for h in hits],
            "index": self.index.kind,
            "snapshot": self.index.synced_snapshot(),
        }

    def follow(self, stop: threading.Event) -> None:
        """The sync loop: catch up every SYNC_INTERVAL_S until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.sync()
            except WarehouseError as err:  # nothing materialized yet: keep waiting
                self.last_error = str(err)
            except Exception as err:  # keep serving searches; /health shows the error
                self.last_error = f"{type(err).__name__}: {err}"
                log.exception("vector sync failed")
            self.wake.wait(SYNC_INTERVAL_S)
            self.wake.clear()

    def close(self) -> None:
        with self._lock:
            self.index.close()


class OwnedVectors(VectorStoreResource):
    """The vector store as this process's questions see it: searches of the present go to
    the shard it owns, in process, instead of over HTTP to itself."""

    _owner: VectorOwner | None = PrivateAttr(default=None)

    def search(
        self,
        text: str,
        flt: SearchFilter,
        limit: int,
        min_score: float,
        embedder: EmbedderResource,
        conn: Any,
        time_travel: bool = False,
    ) -> SearchResult:
        owner = self._owner
        if owner is None or time_travel or owner.index.synced_snapshot() is None:
            return super().search(text, flt, limit, min_score, embedder, conn, time_travel)
        found = owner.search(text, flt, limit, min_score)
        return SearchResult(
            [VectorHit(**hit) for hit in found["hits"]], found["index"], found["snapshot"]
        )


class SearchBody(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    model: str
    limit: int = Field(default=10, ge=1, le=1000)
    min_score: float = Field(default=0.0, ge=-1.0, le=1.0)
    fid: int | None = None
    since_s: int | None = None
    until_s: int | None = None


def warm_up(embedder: EmbedderResource, threads: int) -> None:
    """Load the model on ``threads`` torch threads (OZI_EMBED_THREADS, default half the
    cores): torch takes every core by default, and on 2 cores an embedding batch then stalls
    the micro-batch runs beside it."""
    import torch

    torch.set_num_threads(threads)
    embedder.encode(["warm"])


def lower_priority(nice: int) -> None:
    """Give this process ``nice`` more niceness (0–19), in a session of its own.

    Why a session: Linux's autogroups (on by default) share the CPU between sessions first and
    apply a nice value only within its session, so a niced process that shares a session
    with nobody must nice its autogroup (/proc/self/autogroup) to yield to the pipeline's
    runs. Where there are no autogroups (or no such file), the nice value alone counts."""
    os.setsid()
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass  # no autogroups here: os.nice below is what the scheduler weighs
    os.nice(nice)


def _bulk_worker(conn: Any, embedder: dict[str, str], threads: int, nice: int) -> None:
    """The child process of BulkEmbedder: texts in, float32 vectors (or an error's one-line
    text) out, until the parent's end of the pipe closes (it exited, or was killed)."""
    lower_priority(nice)
    import torch

    torch.set_num_threads(threads)
    model = EmbedderResource(**embedder)
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(model.encode(texts).astype("<f4"))
        except Exception as err:  # the parent answers the request with it
            conn.send(f"{type(err).__name__}: {err}")


class _Child:
    """One model process of BulkEmbedder, at one niceness: texts in, vectors out, one batch at
    a time. Started on its first batch (or warm-up); started again after it died."""

    def __init__(self, config: dict[str, str], threads: int, nice: int) -> None:
        self.config, self.threads, self.nice = config, threads, nice
        self.lock = threading.Lock()
        self.conn: Any = None
        self.proc: Any = None

    def _start(self) -> None:
        # spawn, not fork: this process runs threads (uvicorn, the shard's sync), and a fork
        # copies their locks in whatever state they are
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_bulk_worker,
            args=(child, self.config, self.threads, self.nice),
            name=f"ozi-bulk-embedder-nice-{self.nice}",
            daemon=True,
        )
        self.proc.start()
        child.close()  # the child's end lives only in the child: its recv sees our exit

    def encode(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            if self.proc is None or not self.proc.is_alive():
                self._start()
            try:
                self.conn.send(texts)
                out = self.conn.recv()
            except (EOFError, OSError) as err:
                self.proc = None
                raise RuntimeError(f"the bulk embedding process exited: {err}") from None
        if isinstance(out, str):
            raise RuntimeError(out)
        return out

    def close(self) -> None:
        with self.lock:
            if self.proc is not None:
                self.conn.close()
                self.proc.join(timeout=10)
                if self.proc.is_alive():
                    self.proc.kill()
                self.proc = None


class BulkEmbedder:
    """The embeddings runs' batches, embedded in child processes at a lower CPU priority.

    Why: on 2 cores, a bulk batch and the stream's micro-batches want the same cores, and a
    cast waiting for the tables is worse than a vector arriving later (the embedding lag is
    reported). Yet a lane that keeps up with the stream needs its CPU when it needs it: niced
    by 5 it got what the batches left and fell behind a 500 events/s stream after a few
    minutes (searchable p95 50 s), niced by 1 it kept pace (26 s) with casts as fresh (6.5 s
    against 5.7 s). Niced by 2 for every batch, though, casts missed their target at 2,000
    events/s (10.7 s), where the model cannot keep up at any priority. So there are two
    children: a batch that keeps up (``keeping_up``: it left at most two batches behind it)
    goes to the one niced by ``keep_up_nice`` (OZI_EMBED_KEEP_UP_NICE), a batch of a backlog to
    the one niced by ``nice`` (OZI_EMBED_NICE). Linux lets an unprivileged process lower its
    own priority but never raise it again, hence two processes rather than one changing its
    nice value. Each loads the model (~10 s of CPU; 690 and 880 MiB of RSS, measured once
    under a 500 events/s stream) and exits when ``ozi serve`` does (its pipe closes).
    Searches do not come here: their one text is embedded in ``ozi serve``'s own process, at
    the normal priority.

    ``encode(texts, keeping_up)`` → float32 unit vectors, shape (len(texts), dimension);
    batches of one child are serialized. Raises RuntimeError with the child's one-line error;
    a child that died is started again by its next batch.
    """

    def __init__(
        self, embedder: EmbedderResource, threads: int, nice: int, keep_up_nice: int | None = None
    ) -> None:
        config = {
            "model_name": embedder.model_name,
            "model_path": embedder.model_path,
            "precision": embedder.precision,
        }
        self.catching_up = _Child(config, threads, nice)
        self.keeping_up = (
            self.catching_up
            if keep_up_nice is None or keep_up_nice == nice
            else _Child(config, threads, keep_up_nice)
        )

    def _children(self) -> list[_Child]:
        return list({id(c): c for c in (self.keeping_up, self.catching_up)}.values())

    def warm_up(self) -> None:
        """Start the children and load their models now, so that the first batch does not wait
        for torch and the model (10-20 s on 2 cores, at the child's low priority). A failure
        is logged; the first batch then tries again and answers with the error."""
        for child in self._children():
            try:
                child.encode(["warm"])
            except RuntimeError as err:
                log.warning("the bulk embedding process did not start: %s", err)

    def encode(self, texts: list[str], keeping_up: bool = False) -> np.ndarray:
        return (self.keeping_up if keeping_up else self.catching_up).encode(texts)

    def close(self) -> None:
        for child in self._children():
            child.close()


class EmbedBody(BaseModel):
    model: str
    texts: list[str] = Field(max_length=EMBED_MAX_TEXTS)
    # the lane's batch leaves at most two batches behind it (BulkEmbedder): the keep-up priority
    keeping_up: bool = False


class SyncBody(BaseModel):
    model: str
    wait: bool = True  # False: schedule a catch-up and answer at once


def create_app(settings: OziSettings) -> FastAPI:
    """The HTTP app over this OZI_HOME's lake and shard."""
    from ozi_assets.definitions import build_resources

    resources: dict[str, Any] = build_resources(settings)
    warehouse: WarehouseResource = resources["warehouse"]
    vectors: VectorStoreResource = resources["vectors"]
    embedder: EmbedderResource = resources["embedder"]
    owner = None if vectors.server else VectorOwner(warehouse, vectors, embedder)
    owned = OwnedVectors(**vectors.model_dump())
    owned._owner = owner
    services = Services(warehouse, owned, embedder, resources["llm"])
    bulk = (
        BulkEmbedder(
            embedder, settings.embed_threads, settings.embed_nice, settings.embed_keep_up_nice
        )
        if settings.embed_nice > 0
        else None  # OZI_EMBED_NICE=0: bulk batches share this process and its priority
    )
    stop = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threads = []
        if owner is not None:
            threads.append(threading.Thread(target=owner.follow, args=(stop,), daemon=True))
            # Load the model now, not on the first question.
            threads.append(
                threading.Thread(
                    target=warm_up, args=(embedder, settings.embed_threads), daemon=True
                )
            )
        if bulk is not None:
            threads.append(threading.Thread(target=bulk.warm_up, daemon=True))
        for thread in threads:
            thread.start()
        yield
        stop.set()
        if owner is not None:
            owner.wake.set()
        for thread in threads:
            thread.join(timeout=10)
        if owner is not None:
            owner.close()
        if bulk is not None:
            bulk.close()

    app = FastAPI(
        title="Ozi",
        summary="Questions, search and SQL over a live Farcaster stream, with lineage.",
        lifespan=lifespan,
    )
    internal = Depends(api.install(app, settings, services, resources["kafka"], owner))

    def need_owner(model: str) -> VectorOwner:
        if owner is None:
            raise HTTPException(409, "vectors live in a Qdrant server: search it directly")
        if model != owner.model:
            raise HTTPException(404, f"this shard holds {owner.model} vectors, not {model}")
        return owner

    @app.post("/v1/vectors/search", dependencies=[internal])
    def search(body: SearchBody) -> dict:
        flt = SearchFilter(body.fid, body.since_s, body.until_s)
        return need_owner(body.model).search(body.text, flt, body.limit, body.min_score)

    @app.post("/v1/vectors/embed", dependencies=[internal])
    def embed(body: EmbedBody) -> dict:
        if body.model != embedder.model_name:
            raise HTTPException(
                404, f"this process embeds with {embedder.model_name}, not {body.model}"
            )
        try:
            vectors = (
                bulk.encode(body.texts, body.keeping_up)
                if bulk is not None
                else embedder.encode(body.texts)
            ).astype("<f4")
        except RuntimeError as err:
            raise HTTPException(503, str(err)) from err
        return {
            "model": embedder.model_name,
            "dimension": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
            "count": len(body.texts),
            "vectors": base64.b64encode(vectors.tobytes()).decode("ascii"),
        }

    @app.post("/v1/vectors/sync", dependencies=[internal])
    def sync(body: SyncBody) -> dict:
        target = need_owner(body.model)
        if not body.wait:
            target.wake.set()
            return {"scheduled": True}
        try:
            return asdict(target.sync())
        except WarehouseError as err:
            raise HTTPException(409, str(err)) from err

    return app


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground (``ozi serve start`` runs this in the background).
    ``--host 0.0.0.0`` serves other machines (a container); the default is loopback."""
    import uvicorn

    settings = OziSettings.from_env()
    parser = argparse.ArgumentParser(prog="ozi-serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.api_port)
    args = parser.parse_args(argv)
    app = create_app(settings)
    # Ozi logs each request as JSON (ozi.api); uvicorn's own access log would repeat it.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
