"""Answering a question: plan it (LLM when configured, else offline), run the plan through
the SQL guard and the vector store, and assemble the Answer with sources and lineage.

Reads never take a writer lock: DuckDB is opened read-only and Qdrant for the length of one
search. While a materialization holds either file, the reader waits (up to the resources'
lock timeouts) and then answers from the last committed state; ``data_as_of`` says how fresh
that state is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from ozi_assets.questions.answer import MAX_ROWS, Answer, Source
from ozi_assets.questions.lineage import assets_for, lineage
from ozi_assets.questions.llm import LlmResource, LlmUnusable
from ozi_assets.questions.planner import Context, Plan
from ozi_assets.questions.planner import plan as offline_plan
from ozi_assets.questions.timerange import TimeRange
from ozi_resources.sql_guard import SqlRefused, guard
from ozi_resources.vectors import EmbedderResource, VectorStoreResource, collection_name
from ozi_resources.warehouse import PUBLIC_TABLES, WarehouseResource, query

SEMANTIC_LIMIT = 10  # sources shown for a semantic question
SEMANTIC_MIN_SCORE = 0.30  # cosine; below this a cast is not about the topic
HYBRID_LIMIT = 200  # hits that feed a hybrid question's SQL
HYBRID_MIN_SCORE = 0.45  # stricter: every hit counts toward a user's total
SOURCES_FOR_SQL = 5


@dataclass
class Services:
    """The resources a question may use; ``instance`` gives lineage (None: no lineage)."""

    warehouse: WarehouseResource
    vectors: VectorStoreResource
    embedder: EmbedderResource
    llm: LlmResource | None = None
    instance: dg.DagsterInstance | None = None


def _context(warehouse: WarehouseResource) -> Context:
    with warehouse.reader() as conn:
        users = dict(
            conn.execute(
                "SELECT lower(username), fid FROM users WHERE username IS NOT NULL ORDER BY fid"
            ).fetchall()
        )
        row = conn.execute(
            'SELECT greatest((SELECT max("timestamp") FROM casts), '
            '(SELECT max("timestamp") FROM reactions))'
        ).fetchone()
    now = row[0] if row and row[0] else datetime.now(UTC)
    return Context(users=users, now=now.astimezone(UTC))


def _rows(columns: Sequence[str], rows: Sequence[tuple]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def run_sql(warehouse: WarehouseResource, statement: str) -> tuple[str, tuple[str, ...], list]:
    """Guard and run one statement read-only. Returns (the SQL run, tables read, rows as
    dicts). Raises SqlRefused, TimeoutError, duckdb.Error."""
    guarded = guard(statement, PUBLIC_TABLES)
    with warehouse.reader() as conn:
        columns, rows = query(conn, guarded.sql)
    return guarded.sql, guarded.tables, _rows(columns, rows)


def search(
    services: Services,
    text: str,
    limit: int,
    min_score: float,
    time_range: TimeRange | None = None,
    fid: int | None = None,
) -> list[Source]:
    """Casts closest in meaning to ``text`` (cosine ≥ ``min_score``), best first, optionally
    within a time range and by one author."""
    from qdrant_client import models

    vector = services.embedder.encode([text])[0].tolist()
    conditions: list[models.Condition] = []
    if time_range:
        conditions.append(
            models.FieldCondition(
                key="timestamp_s",
                range=models.Range(
                    gte=int(time_range.start.timestamp()), lt=int(time_range.end.timestamp())
                ),
            )
        )
    if fid is not None:
        conditions.append(models.FieldCondition(key="fid", match=models.MatchValue(value=fid)))
    collection = collection_name(services.embedder.model_name)
    with services.vectors.client() as client:
        if not client.collection_exists(collection):
            return []
        hits = client.query_points(
            collection,
            query=vector,
            query_filter=models.Filter(must=conditions) if conditions else None,
            limit=limit,
            score_threshold=min_score,
            with_payload=True,
        ).points
    return [
        Source(
            hash=p.payload["hash"],
            fid=int(p.payload["fid"]),
            username=p.payload.get("username"),
            timestamp=p.payload["timestamp"],
            text=p.payload["text"],
            score=round(float(p.score), 4),
        )
        for p in hits
        if p.payload
    ]


def _sql_sources(warehouse: WarehouseResource, statement: str) -> list[Source]:
    _, _, rows = run_sql(warehouse, f"{statement} LIMIT {SOURCES_FOR_SQL}")
    return [
        Source(
            hash=r["hash"],
            fid=int(r["fid"]),
            username=r["username"],
            timestamp=r["timestamp"].astimezone(UTC).isoformat(),
            text=r["text"] or "",
        )
        for r in rows
    ]


def _partitions(time_range: TimeRange | None) -> list[str] | None:
    """Window keys a time range overlaps; None (all windows) without a range."""
    if time_range is None:
        return None
    from ozi_assets.partitions import window_grid

    grid = window_grid()
    return [
        key
        for key in grid.keys
        if grid.start_of(key) < time_range.end and grid.end_of(key) > time_range.start
    ]


def execute(services: Services, question: str, plan: Plan, ctx: Context, planner: str) -> Answer:
    """Run a plan and assemble its Answer. Raises SqlRefused / duckdb.Error when the plan's
    SQL is refused or fails (the caller decides whether to fall back)."""
    answer = Answer(question=question, kind=plan.kind, answer="", planner=planner)
    answer.data_as_of = ctx.now.isoformat()
    tables: tuple[str, ...] = ()
    semantic = False
    if plan.kind == "unanswered":
        tried = ", ".join(plan.tried) if plan.tried else plan.rule
        answer.answer = f"I cannot answer this from the data: {plan.note}. Tried: {tried}."
    elif plan.kind == "analytic" and plan.sql:
        answer.sql, tables, rows = run_sql(services.warehouse, plan.sql)
        answer.rows = rows[:MAX_ROWS]
        answer.answer = plan.describe(rows)
        if plan.sources_sql:
            answer.sources = _sql_sources(services.warehouse, plan.sources_sql)
    elif plan.kind == "semantic" and plan.search:
        semantic = True
        answer.sources = search(
            services, plan.search, SEMANTIC_LIMIT, SEMANTIC_MIN_SCORE, plan.time_range, plan.fid
        )
        if answer.sources:
            authors = ", ".join(dict.fromkeys(f"@{s.username}" for s in answer.sources[:5]))
            answer.answer = (
                f"{plan.describe([])}: {len(answer.sources)} casts, best match "
                f"{answer.sources[0].score:.2f}, from {authors}."
            )
        else:
            answer.answer = (
                f"No cast is close enough in meaning to {plan.search!r} "
                f"(cosine ≥ {SEMANTIC_MIN_SCORE})."
            )
    elif plan.kind == "hybrid" and plan.search and plan.hybrid_sql:
        semantic = True
        hits = search(
            services, plan.search, HYBRID_LIMIT, HYBRID_MIN_SCORE, plan.time_range, plan.fid
        )
        answer.sql, tables, rows = run_sql(
            services.warehouse, plan.hybrid_sql([h.hash for h in hits])
        )
        answer.rows = rows[:MAX_ROWS]
        top_users = {r["fid"] for r in rows}
        answer.sources = [h for h in hits if h.fid in top_users][:SEMANTIC_LIMIT]
        answer.answer = (
            plan.describe(rows) + f" ({len(hits)} casts matched by meaning, cosine ≥ "
            f"{HYBRID_MIN_SCORE})"
            if rows
            else f"No cast is close enough in meaning to {plan.search!r}."
        )
    else:
        raise ValueError(f"plan of kind {plan.kind} has nothing to run")
    answer.lineage = lineage(
        services.instance, assets_for(tables, semantic), _partitions(plan.time_range)
    )
    return answer


def ask(services: Services, question: str) -> Answer:
    """Answer one natural-language question.

    With an LLM configured its plan is tried first (guarded, dry-run with EXPLAIN, one repair
    round); when it stays unusable the offline planner answers and ``planner`` says so.
    Raises FileNotFoundError when nothing was materialized yet, TimeoutError when a writer
    holds a file past the lock timeout.
    """
    ctx = _context(services.warehouse)
    offline = offline_plan(question, ctx)
    if services.llm is None or not services.llm.configured:
        return execute(services, question, offline, ctx, "offline")
    try:
        llm_plan = services.llm.plan(question, ctx, services.warehouse)
        if offline.rule != "semantic_fallback" and llm_plan.kind != offline.kind:
            raise LlmUnusable(
                f"the model planned a {llm_plan.kind} answer; the question reads as "
                f"{offline.kind} (rule {offline.rule})"
            )
        answer = execute(services, question, llm_plan, ctx, f"llm:{services.llm.model}")
        if offline.kind == "analytic":
            # A second, independent plan: where a rule covers the question, the model's
            # result must agree with the rule's, or the model's SQL is not trusted.
            reference = execute(services, question, offline, ctx, "offline")
            if _first_value(answer.rows) != _first_value(reference.rows):
                reason = (
                    f"the model's result ({_first_value(answer.rows)!r}) disagrees with rule "
                    f"{offline.rule} ({_first_value(reference.rows)!r})"
                )
                return _fallback(reference, reason)
            # Agreed: keep the model's SQL, say it in the rule's words, with its sources.
            answer.answer, answer.sources = reference.answer, reference.sources
        return answer
    except (LlmUnusable, SqlRefused) as err:
        reason = str(err)
    except Exception as err:  # the model's SQL failed at run time
        reason = f"{type(err).__name__}: {err}"
    return _fallback(execute(services, question, offline, ctx, "offline"), reason)


def _first_value(rows: Sequence[dict[str, Any]]) -> Any:
    return next(iter(rows[0].values()), None) if rows else None


def _fallback(answer: Answer, reason: str) -> Answer:
    answer.planner = "offline-fallback"
    answer.answer += f" [LLM plan unusable: {reason[:240]}; answered by the offline planner]"
    return answer
