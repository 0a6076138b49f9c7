"""Answering a question: plan it (LLM when configured, else offline), run the plan through
the SQL guard and the vector index, and assemble the Answer with sources and lineage.

A question reads one lake snapshot from start to end: the reader attaches the lake at the
newest snapshot (or the one asked for with ``at``), every statement of the answer runs on that
connection, and the answer names the snapshot (``data_as_of``) and the commits behind the
partitions it read (``lineage``). Reads never wait for a writer and never make one wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from ozi_assets.questions import keywords, layer
from ozi_assets.questions.answer import MAX_ROWS, Answer, Source
from ozi_assets.questions.fusion import RRF_K, reciprocal_rank_fusion
from ozi_assets.questions.lineage import assets_for, lineage
from ozi_assets.questions.llm import LlmResource, LlmUnusable
from ozi_assets.questions.planner import Context, Plan
from ozi_assets.questions.planner import plan as offline_plan
from ozi_assets.questions.timerange import TimeRange
from ozi_resources.sql_guard import SqlRefused, guard
from ozi_resources.vectors import (
    EmbedderResource,
    SearchFilter,
    SearchResult,
    VectorStoreResource,
)
from ozi_resources.warehouse import (
    PUBLIC_TABLES,
    Snapshot,
    SnapshotRecord,
    WarehouseResource,
    query,
)

SEMANTIC_LIMIT = 10  # sources shown for a semantic question
SEMANTIC_MIN_SCORE = 0.30  # cosine; below this a cast is not in the vector list at all
VECTOR_DEPTH = 50  # the vector list fused with the keyword list
HYBRID_LIMIT = 200  # the vector list of a hybrid question, whose hits may count
# Tuned on the evaluation set's dev split, the hybrid coverage then on dev and tune
# (ozi_tests/eval; README "Questions" gives the grids and the figures):
# Both read the topical coverage (keywords.topical), which the first was not tuned on.
KEYWORD_COVERAGE = 0.30  # a keyword hit is in the fused list from this coverage on
HYBRID_KEYWORD_COVERAGE = 0.75  # …and counts toward a user's total from this one on
# How much a keyword term's weight in the hybrid count follows its agreement with the vector
# list (keywords.topical_coverage): 0 ignores it, 1 scales by it; tuned on tune in {0, 0.5, 1}.
TOPICAL_POWER = 0.5
# Cosine at which the model reads an item's initials as the item ("ai" and "artificial
# intelligence": 0.79, "ui" and "user interface": 0.79; "gm" and "good morning" only 0.23, "rl"
# and "rugby league" 0.39); every value in 0.55-0.75 answers the tune split alike.
INITIALISM_MIN_COSINE = 0.6
HYBRID_MIN_SCORE = 0.60  # cosine at which any hit counts toward a user's total
SOURCES_FOR_SQL = 5
# Every document of the keyword index is a cast, so the catalogue's words for a cast say
# nothing about a topic ("machine learning / AI casts"): they are left out of keyword queries.
CAST_WORDS = frozenset(
    form for word in layer.DIMENSIONS["cast"].words for form in (word, f"{word}s")
)
# The keyword index is built from the casts view, so an answer that used it read these.
KEYWORD_TABLES = ("casts",)
MAX_FETCH_ROWS = 10_000  # rows fetched from any one statement


@dataclass
class Services:
    """The resources a question may use."""

    warehouse: WarehouseResource
    vectors: VectorStoreResource
    embedder: EmbedderResource
    llm: LlmResource | None = None


@dataclass
class Reading:
    """What one question reads: a reader pinned to one snapshot, and the commits behind it
    (the newest of each asset partition at or before it, for lineage)."""

    conn: duckdb.DuckDBPyConnection
    snapshot: Snapshot
    history: list[SnapshotRecord]
    time_travel: bool  # an earlier snapshot than the newest was asked for


def _context(conn: duckdb.DuckDBPyConnection) -> Context:
    users = dict(
        conn.execute(
            "SELECT lower(username), fid FROM users WHERE username IS NOT NULL ORDER BY fid"
        ).fetchall()
    )
    # From the stage tables, not the public views: the casts view joins every profile, and
    # only the newest time is wanted (removed casts excluded, as in the view).
    # The oldest event too: a question about a time before it is refused, not answered 0.
    row = conn.execute(
        'SELECT greatest((SELECT max("timestamp") FROM cast_adds WHERE hash NOT IN '
        "(SELECT target_hash FROM cast_removes)), "
        '(SELECT max("timestamp") FROM reactions)), '
        'least((SELECT min("timestamp") FROM cast_adds), (SELECT min("timestamp") FROM reactions))'
    ).fetchone()
    now = row[0] if row and row[0] else datetime.now(UTC)
    first = row[1].astimezone(UTC) if row and row[1] else None
    return Context(
        users=users, now=now.astimezone(UTC), first=first, display_names=display_names(conn)
    )


def display_names(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Lower-case display names of two words or more → lower-case username, for names no
    two users share (an ambiguous name names nobody)."""
    rows = conn.execute(
        "SELECT lower(trim(display_name)) AS name, any_value(lower(username)) FROM users "
        "WHERE username IS NOT NULL AND display_name IS NOT NULL "
        "AND regexp_matches(trim(display_name), '\\w\\S*\\s+\\S*\\w') "
        "GROUP BY name HAVING count(*) = 1"
    ).fetchall()
    return dict(rows)


def _rows(columns: Sequence[str], rows: Sequence[tuple]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


def run_sql(
    conn: duckdb.DuckDBPyConnection, statement: str, timeout_s: float = 10.0
) -> tuple[str, tuple[str, ...], list]:
    """Guard and run one statement on a reader. Returns (the SQL run, tables read, rows as
    dicts). Raises SqlRefused, TimeoutError, duckdb.Error."""
    guarded = guard(statement, PUBLIC_TABLES)
    columns, rows = query(conn, guarded.sql, timeout_s, max_rows=MAX_FETCH_ROWS)
    return guarded.sql, guarded.tables, _rows(columns, rows)


def search_filter(time_range: TimeRange | None, fid: int | None) -> SearchFilter:
    """The payload filter of a search: one author, and the time range in Unix seconds."""
    return SearchFilter(
        fid=fid,
        since_s=int(time_range.start.timestamp()) if time_range else None,
        until_s=int(time_range.end.timestamp()) if time_range else None,
    )


def search(
    services: Services,
    reading: Reading,
    text: str,
    limit: int,
    min_score: float,
    time_range: TimeRange | None = None,
    fid: int | None = None,
) -> SearchResult:
    """Casts closest in meaning to ``text`` (cosine ≥ ``min_score``), best first, optionally
    within a time range and by one author."""
    flt = search_filter(time_range, fid)
    return services.vectors.search(
        text, flt, limit, min_score, services.embedder, reading.conn, reading.time_travel
    )


@dataclass
class HybridResult:
    """A hybrid search: the fused hits (best first, each a Source carrying its cosine, its
    BM25 and its fused rank), the vector search behind it, and the keyword index it read."""

    hits: list[Source]
    vectors: SearchResult
    index: keywords.KeywordIndex
    coverage: dict[str, float]  # hash → coverage (keywords.KeywordHit) of each keyword hit
    # hash → topical coverage (keywords.topical) of every cast holding a query term
    topical: dict[str, float]

    def counted(self, min_score: float, keyword_coverage: float) -> list[Source]:
        """The fused hits that count as being about the search text, best first: those with
        a cosine of ``min_score`` or more, and those holding ``keyword_coverage`` (0..1) or
        more of the query's topical keyword weight (its terms weighed by their agreement
        with the vector list, so a rare side word does not outweigh the topic's own)."""
        return [
            h
            for h in self.hits
            if (h.score is not None and h.score >= min_score)
            or self.topical.get(h.hash, 0.0) >= keyword_coverage
        ]


def hybrid_search(
    services: Services,
    reading: Reading,
    text: str,
    depth: int,
    time_range: TimeRange | None = None,
    fid: int | None = None,
) -> HybridResult:
    """Casts about ``text``: the vector list (the ``depth`` nearest casts with cosine ≥
    SEMANTIC_MIN_SCORE; any cosine when restricted to one author ``fid``) and the keyword
    list (BM25 matches, best first, holding at least KEYWORD_COVERAGE of the query's topical
    keyword weight, ``keywords.topical``; the query also holds the short forms people write
    for an item of the topic, see ``_short_forms``), both under the same payload filters
    (author ``fid``, ``time_range``), fused by reciprocal rank fusion (k = RRF_K). The
    keyword index is the one of the snapshot the reading is pinned to (built on its first
    question). Raises what the vector search and the keyword index raise."""
    # Restricted to one author, every cast of theirs is a candidate, nearest first: the
    # question asks what that person said, their casts are few, and a short reply ("@x is
    # great") can be what they said about it while sharing no word and little cosine with it.
    floor = SEMANTIC_MIN_SCORE if fid is None else -1.0
    found = search(services, reading, text, depth, floor, time_range, fid)
    warehouse = services.warehouse
    index = keywords.index_for(
        reading.conn, warehouse.catalog, reading.snapshot.id, warehouse.extension_directory
    )
    flt = search_filter(time_range, fid)
    named = keywords.alternatives(text)
    short = _short_forms(services, index, named, flt)
    by_vector = {h.hash: h for h in found.hits}
    items = [index.term_matches(item, flt, ignore=CAST_WORDS) for item in named + short]
    topical = keywords.topical(items, by_vector, TOPICAL_POWER)
    matched = [
        h
        for h in index.search(" ".join([text, *short]), flt, MAX_FETCH_ROWS, ignore=CAST_WORDS)
        if topical.get(h.hash, 0.0) >= KEYWORD_COVERAGE
    ]
    by_keyword = {h.hash: h for h in matched}
    fused = reciprocal_rank_fusion([list(by_vector), list(by_keyword)], RRF_K)
    hits = []
    for item in fused:
        vector, keyword = by_vector.get(item.key), by_keyword.get(item.key)
        cast = vector or keyword
        assert cast is not None  # every fused key came from one of the two lists
        hits.append(
            Source(
                cast.hash,
                cast.fid,
                cast.username,
                cast.timestamp,
                cast.text,
                score=vector.score if vector else None,
                bm25=keyword.score if keyword else None,
                rank=item.rank,
            )
        )
    return HybridResult(hits, found, index, {h.hash: h.coverage for h in matched}, topical)


def _short_forms(
    services: Services,
    index: keywords.KeywordIndex,
    items: Sequence[str],
    flt: SearchFilter,
) -> list[str]:
    """Other ways people write an item of the topic that some cast within ``flt`` uses, each
    one more item of the topic: the medium's shorthand (``keywords.shorthand``: "gm" for
    "good morning"), and the initials of an item of several words when the embedding model
    reads them as the item (cosine ≥ INITIALISM_MIN_COSINE): people write "AI" for
    "artificial intelligence", so a cast saying "AI" is about it though it shares no word
    with it."""
    found: list[str] = []

    def new(form: str, item: str) -> bool:
        return (
            form not in items
            and form not in found
            and form not in item.lower().split()
            and bool(index.term_matches(form, flt))
        )

    for item in items:
        found.extend(form for form in keywords.shorthand(item) if new(form, item))
        short = keywords.initials(item)
        if not short or not new(short, item):
            continue
        whole, initials = services.embedder.encode([item, short])
        if float(whole @ initials) >= INITIALISM_MIN_COSINE:
            found.append(short)
    return found


def _sql_sources(conn: duckdb.DuckDBPyConnection, statement: str) -> list[Source]:
    _, _, rows = run_sql(conn, f"{statement} LIMIT {SOURCES_FOR_SQL}")
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


def execute(
    services: Services, reading: Reading, question: str, plan: Plan, ctx: Context, planner: str
) -> Answer:
    """Run a plan on the reading's snapshot and assemble its Answer. Raises SqlRefused /
    duckdb.Error when the plan's SQL is refused or fails (the caller decides whether to fall
    back)."""
    answer = Answer(question=question, kind=plan.kind, answer="", planner=planner)
    tables: tuple[str, ...] = ()
    found: SearchResult | None = None
    keyword_index: keywords.KeywordIndex | None = None
    if plan.kind == "unanswered":
        tried = ", ".join(plan.tried) if plan.tried else plan.rule
        answer.answer = f"I cannot answer this from the data: {plan.note}. Tried: {tried}."
    elif plan.kind == "analytic" and plan.sql:
        answer.sql, tables, rows = run_sql(reading.conn, plan.sql)
        answer.rows = rows[:MAX_ROWS]
        answer.answer = plan.describe(rows)
        if plan.sources_sql:
            answer.sources = _sql_sources(reading.conn, plan.sources_sql)
    elif plan.kind == "semantic" and plan.search:
        hybrid = hybrid_search(
            services, reading, plan.search, VECTOR_DEPTH, plan.time_range, plan.fid
        )
        found, keyword_index, tables = hybrid.vectors, hybrid.index, KEYWORD_TABLES
        answer.sources = hybrid.hits[:SEMANTIC_LIMIT]
        if answer.sources:
            authors = ", ".join(dict.fromkeys(f"@{s.username}" for s in answer.sources[:5]))
            answer.answer = (
                f"{plan.describe([])}: {len(answer.sources)} casts, fused from "
                f"{len(hybrid.vectors.hits)} found by meaning and {len(hybrid.coverage)} by "
                f"keyword, from {authors}."
            )
        else:
            answer.answer = (
                f"No cast is close enough in meaning to {plan.search!r} "
                f"(cosine ≥ {SEMANTIC_MIN_SCORE}) or shares its words."
            )
    elif plan.kind == "hybrid" and plan.search and plan.hybrid_sql:
        hybrid = hybrid_search(
            services, reading, plan.search, HYBRID_LIMIT, plan.time_range, plan.fid
        )
        found, keyword_index = hybrid.vectors, hybrid.index
        hits = hybrid.counted(HYBRID_MIN_SCORE, HYBRID_KEYWORD_COVERAGE)
        answer.sql, tables, rows = run_sql(reading.conn, plan.hybrid_sql([h.hash for h in hits]))
        answer.rows = rows[:MAX_ROWS]
        top_users = {r["fid"] for r in rows}
        answer.sources = [h for h in hits if h.fid in top_users][:SEMANTIC_LIMIT]
        answer.answer = (
            plan.describe(rows) + f" ({len(hits)} casts counted: those holding the topic's "
            f"words (topical keyword coverage ≥ {HYBRID_KEYWORD_COVERAGE}) or close to it in "
            f"meaning (cosine ≥ {HYBRID_MIN_SCORE}))"
            if rows
            else f"No cast is close enough in meaning to {plan.search!r} or shares its words."
        )
    else:
        raise ValueError(f"plan of kind {plan.kind} has nothing to run")
    answer.data_as_of = {
        "event_time": ctx.now.isoformat(),
        "snapshot_id": reading.snapshot.id,
        "snapshot_time": reading.snapshot.time.astimezone(UTC).isoformat(),
        "vector_index": None
        if found is None
        else {"kind": found.index, "snapshot_id": found.snapshot, "note": found.note},
    }
    if keyword_index is not None:
        answer.data_as_of["keyword_index"] = {
            "kind": keywords.INDEX_KIND,
            "snapshot_id": keyword_index.snapshot,
            "documents": keyword_index.documents,
            "note": "BM25 over the casts view at this snapshot, built in memory on its first "
            f"question in {keyword_index.build_seconds:.2f} s",
        }
    answer.lineage = lineage(
        reading.history, assets_for(tables, found is not None), _partitions(plan.time_range)
    )
    return answer


def ask(services: Services, question: str, at: int | None = None) -> Answer:
    """Answer one natural-language question from the newest lake snapshot, or from snapshot
    ``at`` (time travel: the same question against an earlier state).

    With an LLM configured its plan is tried first (guarded, dry-run with EXPLAIN, one repair
    round); when it stays unusable the offline planner answers and ``planner`` says so.
    Raises WarehouseError when nothing was materialized yet or ``at`` is no snapshot.
    """
    warehouse = services.warehouse
    with warehouse.reader(snapshot=at) as conn:
        snapshot = warehouse.current_snapshot(conn)
        reading = Reading(
            conn,
            snapshot,
            warehouse.lineage_commits(conn, snapshot.id),
            snapshot.id < warehouse.newest_snapshot_id(conn),
        )
        return _answer(services, reading, question)


def _answer(services: Services, reading: Reading, question: str) -> Answer:
    ctx = _context(reading.conn)
    offline = offline_plan(question, ctx)
    # A refusal because the data does not hold what is asked ("which accounts follow dwr")
    # stands: the model's plan of the same data could only answer another question.
    if services.llm is None or not services.llm.configured or offline.final:
        return execute(services, reading, question, offline, ctx, "offline")
    model = f"llm:{services.llm.model}"
    try:
        llm_plan = services.llm.plan(question, ctx, reading.conn)
        if offline.kind == "unanswered":
            # The rules could not read the question; the model's plan is grounded, guarded
            # and dry-run, so it may answer, and says it is the model's.
            answer = execute(services, reading, question, llm_plan, ctx, model)
            answer.answer += (
                f" [answered by the model ({llm_plan.rule}); the offline planner could not: "
                f"{offline.note}]"
            )
            return answer
        if offline.rule != "semantic_fallback" and llm_plan.kind != offline.kind:
            raise LlmUnusable(
                f"the model planned a {llm_plan.kind} answer; the question reads as "
                f"{offline.kind} (rule {offline.rule})"
            )
        answer = execute(services, reading, question, llm_plan, ctx, model)
        if offline.kind == "analytic":
            # A second, independent plan: where the layer reads the question, the model's
            # result must agree with the layer's, or the model's answer is not trusted.
            reference = execute(services, reading, question, offline, ctx, "offline")
            if _first_value(answer.rows) != _first_value(reference.rows):
                return _disagreement(reference, answer, llm_plan, offline)
            # Agreed: keep the model's SQL, say it in the rule's words, with its sources.
            answer.answer, answer.sources = reference.answer, reference.sources
        return answer
    except (LlmUnusable, SqlRefused) as err:
        reason = str(err)
    except Exception as err:  # the model's SQL failed at run time
        reason = f"{type(err).__name__}: {err}"
    return _fallback(execute(services, reading, question, offline, ctx, "offline"), reason)


def _disagreement(trusted: Answer, model: Answer, llm_plan: Plan, offline: Plan) -> Answer:
    """Both planners answered and their results differ: the layer's reading (every word of
    the question composed into one query of the catalogue) is given, and the model's answer
    is shown beside it, with what each read the question as."""
    read_as = llm_plan.query.describe() if llm_plan.query else "its own SQL"
    trusted.planner = "offline-over-llm"
    trusted.answer += (
        f" The model ({model.planner}) read the question as {read_as} and answered "
        f"{_first_value(model.rows)!r}; Ozi trusts the semantic layer's reading "
        f"({offline.query.describe() if offline.query else offline.rule})."
    )
    trusted.alternative = {
        "planner": model.planner,
        "answer": model.answer,
        "sql": model.sql,
        "rows": model.rows[:5],
    }
    return trusted


def _first_value(rows: Sequence[dict[str, Any]]) -> Any:
    return next(iter(rows[0].values()), None) if rows else None


def _fallback(answer: Answer, reason: str) -> Answer:
    answer.planner = "offline-fallback"
    answer.answer += f" [LLM plan unusable: {reason[:240]}; answered by the offline planner]"
    return answer
