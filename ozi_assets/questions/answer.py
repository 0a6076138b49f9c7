"""What a question gets back: the answer, and everything needed to trust it.

``Answer.to_dict()`` is the JSON contract of `ozi ask --json`, the ask job's run metadata and
the query asset's answers::

    {"question", "kind", "answer", "sql", "rows",
     "sources": [{"hash", "fid", "username", "timestamp", "text", "score", "bm25", "rank"}],
     "lineage": [{"asset", "partition", "run_id", "materialized_at", "snapshot_id"}],
     "data_as_of": {"event_time", "snapshot_id", "snapshot_time", "vector_index",
                    "keyword_index"},
     "planner"}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

Kind = Literal["analytic", "semantic", "hybrid", "unanswered"]
MAX_ROWS = 50  # rows kept in an answer; the SQL has the full LIMIT


@dataclass(frozen=True)
class Source:
    """A cast the answer rests on. For a search hit: ``score`` is its cosine similarity to
    the search text (-1..1; None when only the keyword index found it), ``bm25`` its BM25
    score in the keyword index (None when only the vector index found it) and ``rank`` its
    place in the fused ranking (from 1). All three are None for casts selected by SQL."""

    hash: str
    fid: int
    username: str | None
    timestamp: str  # ISO 8601, UTC
    text: str
    score: float | None = None
    bm25: float | None = None
    rank: int | None = None


@dataclass(frozen=True)
class LineageEntry:
    """One asset partition the answer read and the commit that wrote it: the Dagster run,
    the lake snapshot it created and when."""

    asset: str  # asset key, e.g. "clean/casts"
    partition: str | None  # window key, e.g. "2023-03-04-03:00"
    run_id: str | None
    materialized_at: str | None  # ISO 8601, UTC: the snapshot's commit time
    snapshot_id: int | None = None


@dataclass
class Answer:
    question: str
    kind: Kind
    answer: str
    sql: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    lineage: list[LineageEntry] = field(default_factory=list)
    # What the answer read: the newest event time in it, the lake snapshot (id, commit time)
    # and, for searches, the vector index used and the snapshot it had caught up to.
    data_as_of: dict[str, Any] | None = None
    planner: str = "offline"
    # Where two planners answered and disagreed: the answer not trusted ({planner, answer,
    # sql, rows}), shown beside the one given.
    alternative: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "kind": self.kind,
            "answer": self.answer,
            "sql": self.sql,
            "rows": [{k: jsonable(v) for k, v in row.items()} for row in self.rows],
            "sources": [asdict(s) for s in self.sources],
            "lineage": [asdict(e) for e in self.lineage],
            "data_as_of": self.data_as_of,
            "planner": self.planner,
            "alternative": self.alternative,
        }

    def render(self) -> str:
        """Plain text for a terminal: answer, SQL, up to 5 sources, lineage summary."""
        lines = [f"Q: {self.question}", f"A: {self.answer}", f"   ({self.kind}, {self.planner})"]
        if self.sql:
            sql = self.sql
            if len(sql) > 400:  # hybrid SQL lists every hit's hash; --json has all of it
                sql = f"{sql[:300]} … ({len(sql)} characters; `--json` shows all)"
            lines.append(f"   SQL: {sql}")
        for source in self.sources[:5]:
            score = f" score {source.score:.2f}" if source.score is not None else ""
            score += f" bm25 {source.bm25:.2f}" if source.bm25 is not None else ""
            text = " ".join(source.text.split())
            text = text if len(text) <= 110 else text[:107] + "..."
            lines.append(f"   - @{source.username} {source.timestamp[:16]}{score}: {text}")
        if self.lineage:
            assets = sorted({e.asset for e in self.lineage})
            partitions = sorted({e.partition for e in self.lineage if e.partition})
            if len(partitions) > 1:
                span = f"{len(partitions)} partitions, {partitions[0]} … {partitions[-1]}"
            else:
                span = f"partition {partitions[0]}" if partitions else "unpartitioned"
            lines.append(f"   lineage: {', '.join(assets)} ({span})")
        if self.data_as_of:
            seen = self.data_as_of
            line = (
                f"   data as of {seen['event_time']} (lake snapshot {seen['snapshot_id']}, "
                f"committed {seen['snapshot_time'][:19]})"
            )
            index = seen.get("vector_index")
            if index:
                line += f"; vectors: {index['kind']}"
                if index.get("snapshot_id") is not None:
                    line += f" at snapshot {index['snapshot_id']}"
            lines.append(line)
        return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """A JSON-ready form of a DuckDB value (datetimes → ISO UTC, decimals → float)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
