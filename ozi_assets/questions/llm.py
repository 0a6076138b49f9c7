"""The LLM planner: any OpenAI-compatible endpoint through the ``openai`` client.

The model targets the semantic layer: its prompt is the layer's catalogue (metrics,
dimensions, filters: the same one the offline planner, `ozi metrics` and the README read) and
it replies with one JSON object. For a number or a ranking that is a query over the layer::

    {"kind": "analytic", "query": {"metric": "casts", "group_by": "user",
     "filters": [{"filter": "user", "value": "dwr", "negated": false}],
     "since": "2023-03-04T03:00:00Z", "until": "2023-03-04T04:00:00Z",
     "order": "desc", "limit": 5}}

which the layer compiles (an unknown metric, or a dimension or filter the metric lacks, is
refused in the layer's words); only what the layer cannot say comes as ``{"kind":
"analytic", "sql": "..."}`` over the public schema. ``{"kind": "semantic" | "hybrid",
"search": "..."}`` asks what casts say about a topic. Every plan is grounded (a value it
filters on must come from the question), goes through the same SQL guard as everything else,
then a dry run (EXPLAIN) on the reader. A plan that fails gets one repair round with the
error; a second failure raises LlmUnusable and the offline planner answers instead.

OpenAI-compatible servers differ in what structured output they accept, so the request asks
for a JSON object and the reply is parsed and validated here, whatever the server did.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from ozi_assets.questions import layer
from ozi_assets.questions.planner import (
    Context,
    Plan,
    Rows,
    describer,
    literal,
    users_of_casts_sql,
)
from ozi_assets.questions.timerange import TimeRange
from ozi_resources.sql_guard import SqlRefused, guard
from ozi_resources.warehouse import PUBLIC_TABLES

EXAMPLES = [
    (
        "How many casts did dwr post?",
        {
            "kind": "analytic",
            "query": {"metric": "casts", "filters": [{"filter": "user", "value": "dwr"}]},
        },
    ),
    (
        "Who are the top 3 authors by number of casts?",
        {
            "kind": "analytic",
            "query": {"metric": "casts", "group_by": "user", "order": "desc", "limit": 3},
        },
    ),
    (
        "What is the longest cast in characters?",
        {"kind": "analytic", "sql": "SELECT max(length(text)) AS longest FROM casts"},
    ),
    ("What are people saying about zora?", {"kind": "semantic", "search": "zora"}),
    ("Which users talked about airdrops the most?", {"kind": "hybrid", "search": "airdrops"}),
]


# String literals a plan may use without the question naming them.
SCHEMA_VALUES = {"like", "recast", "term", "mention", "hashtag", ""}


def grounding_error(question: str, sql: str | None, search: str | None) -> str | None:
    """Why a plan is not grounded in the question, or None.

    Small models copy the worked examples ("dwr", "zora") into unrelated questions. A value
    the SQL filters on, or the search text, must come from the question: every string literal
    (bar schema values and timestamps) must occur in it, and the search text must share a
    word with it.
    """
    q = question.lower()
    if sql:
        import sqlglot
        from sqlglot import exp

        for node in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Literal):
            if not node.is_string:
                continue
            value = node.this.strip("%").lower()
            if value in SCHEMA_VALUES or value in q:
                continue
            try:
                datetime.fromisoformat(value)
                continue  # time bounds are phrased differently in questions
            except ValueError:
                pass
            return f"the SQL filters on {node.this!r}, which the question does not mention"
    if search is not None:
        words = {w for w in re.findall(r"[a-z0-9]{3,}", search.lower())}
        if not any(w in q for w in words):
            return f"the search text {search!r} shares no word with the question"
    return None


MAX_LIMIT = 1000


def _moment(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f'"{name}" must be an ISO 8601 time, got {value!r}')
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f'"{name}" must be an ISO 8601 time, got {value!r}') from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def query_from_json(obj: Any, ctx: Context) -> layer.Query:
    """A layer Query from the model's ``query`` object (shape in the module docstring).

    Raises ValueError naming the field when a field has the wrong type, and LayerError (in
    the layer's words) when the metric, dimension or a filter is not in the catalogue. A
    missing ``since`` is the oldest event, a missing ``until`` just after the newest.
    """
    if not isinstance(obj, dict):
        raise ValueError('"query" must be an object')
    metric = obj.get("metric")
    if not isinstance(metric, str) or metric not in layer.METRICS:
        known = ", ".join(layer.METRICS)
        raise layer.LayerError(f"no metric {metric!r} in the layer; its metrics: {known}")
    group_by = obj.get("group_by")
    if group_by is not None and (not isinstance(group_by, str) or group_by not in layer.DIMENSIONS):
        known = ", ".join(layer.DIMENSIONS)
        raise layer.LayerError(f"no dimension {group_by!r}; the layer's dimensions: {known}")
    conditions = []
    for item in obj.get("filters") or []:
        name = item.get("filter") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in layer.FILTERS:
            raise layer.LayerError(f"no filter {name!r}; the layer's: {', '.join(layer.FILTERS)}")
        value = item.get("value")
        if value is not None and not isinstance(value, str | int):
            raise ValueError(f"the value of filter {name} must be text, got {value!r}")
        conditions.append(
            layer.Condition(
                name, None if value is None else str(value), bool(item.get("negated", False))
            )
        )
    time_range = None
    since, until = obj.get("since"), obj.get("until")
    if since is not None or until is not None:
        start = _moment(since, "since") if since is not None else ctx.first or ctx.now
        end = _moment(until, "until") if until is not None else ctx.now + timedelta(seconds=1)
        if end <= start:
            raise ValueError(f'"until" ({end:%Y-%m-%d %H:%M}) is not after "since"')
        label = f"between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
        time_range = TimeRange(start, end, label)
    order = obj.get("order")
    if order not in (None, "desc", "asc"):
        raise ValueError(f'"order" must be "desc", "asc" or null, got {order!r}')
    limit = obj.get("limit")
    if limit is not None and (not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT):
        raise ValueError(f'"limit" must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}')
    average_over = obj.get("average_over")
    if average_over is not None and (
        not isinstance(average_over, str) or average_over not in layer.DIMENSIONS
    ):
        known = ", ".join(layer.DIMENSIONS)
        raise layer.LayerError(f"no dimension {average_over!r} to average over: {known}")
    return layer.Query(
        metric,
        group_by,
        tuple(conditions),
        time_range,
        order,
        limit,
        average_over=average_over,
    )


def query_grounding_error(question: str, query: layer.Query) -> str | None:
    """Why a layer query is not grounded in the question, or None: every filter value (a
    user, a term, a channel) must occur in the question. The compiled SQL holds the layer's
    own literals, so it is the query that is checked, not its SQL."""
    q = question.lower()
    for condition in query.conditions:
        if condition.value is not None and condition.value.lower().lstrip("@#") not in q:
            return (
                f"the query filters {condition.filter} on {condition.value!r}, which the "
                "question does not mention"
            )
    return None


class LlmUnusable(RuntimeError):
    """The model's plan could not be used (after the repair round); the message says why."""


def _first_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in a reply (models wrap JSON in prose or code fences)."""
    start = text.find("{")
    if start < 0:
        raise ValueError("the reply holds no JSON object")
    obj, _ = json.JSONDecoder().raw_decode(text[start:])
    if not isinstance(obj, dict):
        raise ValueError("the reply's JSON is not an object")
    return obj


def _describe(rows: Rows) -> str:
    if not rows:
        return "The query returned no rows."
    if len(rows) == 1 and len(rows[0]) == 1:
        ((column, value),) = rows[0].items()
        return f"{column}: {value}."
    first = ", ".join(f"{k}={v}" for k, v in list(rows[0].items())[:4])
    return f"{len(rows)} rows; first: {first}."


class LlmResource(dg.ConfigurableResource):
    """An OpenAI-compatible chat endpoint (OZI_LLM_BASE_URL, OZI_LLM_MODEL, OPENAI_API_KEY).
    Unset base URL or model: not configured, and the offline planner answers."""

    base_url: str = Field(default="", description="e.g. http://127.0.0.1:8080/v1")
    model: str = Field(default="", description="model name the endpoint serves")
    api_key: str = Field(default="", description="key; servers that ignore it take any value")
    timeout_s: float = Field(default=120.0, description="per request")
    max_tokens: int = Field(default=300, description="reply budget")

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def _public_schema(self, conn: duckdb.DuckDBPyConnection) -> str:
        listed = ", ".join(literal(t) for t in PUBLIC_TABLES)
        rows = conn.execute(
            "SELECT table_name, string_agg(column_name || ' ' || data_type, ', ' "
            "ORDER BY ordinal_position) FROM information_schema.columns "
            f"WHERE table_catalog = 'lake' AND table_name IN ({listed}) "
            "GROUP BY table_name ORDER BY table_name"
        ).fetchall()
        return "\n".join(f"{table}({columns})" for table, columns in rows)

    def _messages(self, question: str, ctx: Context, schema: str) -> list[dict[str, str]]:
        system = (
            "You turn questions about Farcaster data into a plan. Reply with one JSON object "
            "and nothing else.\n"
            'For a number or a ranking: {"kind": "analytic", "query": {"metric": ..., '
            '"group_by": null or a dimension, "filters": [{"filter": ..., "value": ..., '
            '"negated": false}], "since": null or ISO 8601 UTC, "until": null or ISO 8601 UTC, '
            '"order": "desc" | "asc" | null, "limit": null or a number, "average_over": null '
            "or a dimension (the mean of the metric per that dimension)}} over the semantic "
            "layer below. Only when the layer cannot say it: "
            '{"kind": "analytic", "sql": "<one DuckDB SELECT>"} over these tables and views '
            "(timestamps are TIMESTAMPTZ in UTC; is_reply marks replies; "
            "reactions.reaction_type is 'like' or 'recast'):\n"
            f"{schema}\n"
            'What people say about a topic: {"kind": "semantic", "search": "<topic>"}. Which '
            'users talk about a topic: {"kind": "hybrid", "search": "<topic>"}.\n'
            f"{layer_prompt()}\n"
            f"The data runs to {ctx.now:%Y-%m-%d %H:%M} UTC."
        )
        messages = [{"role": "system", "content": system}]
        for example_q, example_plan in EXAMPLES:
            messages.append({"role": "user", "content": example_q})
            messages.append({"role": "assistant", "content": json.dumps(example_plan)})
        messages.append({"role": "user", "content": question})
        return messages

    def _complete(self, messages: list[dict[str, str]]) -> str:
        from openai import OpenAI

        client = OpenAI(
            base_url=self.base_url, api_key=self.api_key or "unused", timeout=self.timeout_s
        )
        response = client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            temperature=0,
            max_tokens=self.max_tokens,
            response_format={"type": "json_object"},
        )
        return response.choices[0].message.content or ""

    def _validate(
        self, question: str, reply: str, conn: duckdb.DuckDBPyConnection, ctx: Context
    ) -> Plan:
        """The Plan in a reply; raises ValueError / SqlRefused / duckdb.Error with the reason."""
        obj = _first_json_object(reply)
        kind = obj.get("kind")
        search = obj.get("search")
        if kind in ("semantic", "hybrid"):
            if not isinstance(search, str) or not search.strip():
                raise ValueError(f'a {kind} plan needs a non-empty "search" text')
            if problem := grounding_error(question, None, search):
                raise ValueError(problem)
            if kind == "semantic":
                return Plan(
                    "semantic",
                    "llm",
                    search=search.strip(),
                    describe=lambda rows: f"Casts about {search.strip()!r}",
                )
            return Plan(
                "hybrid",
                "llm",
                search=search.strip(),
                hybrid_sql=users_of_casts_sql,
                describe=lambda rows: (
                    "Users who cast most about "
                    f"{search.strip()!r}: "
                    + ", ".join(f"{r['username']} ({r['casts_on_topic']})" for r in rows)
                ),
            )
        if kind != "analytic":
            raise ValueError(f'"kind" must be analytic, semantic or hybrid, got {kind!r}')
        if obj.get("query") is not None:
            return self._layer_plan(question, obj["query"], conn, ctx)
        sql = obj.get("sql")
        if not isinstance(sql, str):
            raise ValueError('an analytic plan needs "sql"')
        guarded = guard(sql, PUBLIC_TABLES)
        if not guarded.tables:
            raise SqlRefused("the SQL reads no public table, so it cannot answer from the data")
        if problem := grounding_error(question, guarded.sql, None):
            raise ValueError(problem)
        conn.execute(f"EXPLAIN {guarded.sql}")  # dry run: binds names and types
        return Plan("analytic", "llm", sql=guarded.sql, describe=_describe)

    def _layer_plan(
        self, question: str, obj: Any, conn: duckdb.DuckDBPyConnection, ctx: Context
    ) -> Plan:
        """A plan from a query over the layer: compiled by the layer, grounded, guarded and
        dry-run. Raises LayerError / ValueError / SqlRefused / duckdb.Error."""
        query = query_from_json(obj, ctx)
        if problem := query_grounding_error(question, query):
            raise ValueError(problem)
        guarded = guard(layer.compile_sql(query), PUBLIC_TABLES)
        conn.execute(f"EXPLAIN {guarded.sql}")
        return Plan(
            "analytic",
            "llm-layer",
            sql=guarded.sql,
            sources_sql=layer.sources_sql(query),
            time_range=query.time_range,
            describe=describer(query),
            query=query,
        )

    def plan(self, question: str, ctx: Context, conn: duckdb.DuckDBPyConnection) -> Plan:
        """Ask the model for a plan; one repair round. Raises LlmUnusable with both errors
        when the plan is still unusable (connection errors included)."""
        try:
            messages = self._messages(question, ctx, self._public_schema(conn))
            reply = self._complete(messages)
        except Exception as err:  # endpoint down, timeout, HTTP error
            raise LlmUnusable(f"endpoint error: {type(err).__name__}: {err}") from err
        try:
            return self._validate(question, reply, conn, ctx)
        except Exception as first:
            first_error = f"{type(first).__name__}: {first}"
        messages += [
            {"role": "assistant", "content": reply},
            {
                "role": "user",
                "content": f"That plan failed: {first_error}. Reply with a corrected JSON object.",
            },
        ]
        try:
            repaired = self._complete(messages)
            return self._validate(question, repaired, conn, ctx)
        except Exception as second:
            raise LlmUnusable(
                f"first plan: {first_error}; repaired plan: {type(second).__name__}: "
                f"{_short(str(second))}"
            ) from second


def layer_prompt() -> str:
    """The semantic layer's catalogue as the model reads it: one line per metric (with the
    dimensions and filters it takes), dimension and filter."""
    cat = layer.catalogue()
    lines = ["Metrics (name: meaning; dimensions; filters):"]
    lines += [
        f"- {m['name']}: {m['description']}; by {m['dimensions'] or 'nothing'}; "
        f"filters {m['filters'] or 'none'}"
        for m in cat["metrics"]
    ]
    lines.append("Dimensions:")
    lines += [f"- {d['name']}: {d['description']}" for d in cat["dimensions"]]
    lines.append("Filters (value: the user, term, hashtag or channel named in the question):")
    lines += [f"- {f['name']}: {f['description']}" for f in cat["filters"]]
    return "\n".join(lines)


def _short(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
