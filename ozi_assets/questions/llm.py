"""The LLM planner: any OpenAI-compatible endpoint through the ``openai`` client.

The model targets the semantic layer: its prompt is the layer's catalogue (metrics,
dimensions, filters: the same one the offline planner, `ozi metrics` and the README read) and
it replies with one JSON object. For a number or a ranking that is a query over the layer::

    {"kind": "analytic", "query": {"metric": "casts", "group_by": "user",
     "filters": [{"filter": "user", "value": "dwr", "negated": false}],
     "since": "2023-03-04T03:00:00Z", "until": "2023-03-04T04:00:00Z",
     "order": "desc", "limit": 5}}

which the layer compiles (an unknown metric, or a dimension or filter the metric lacks, is
refused in the layer's words). The query may use every field of ``layer.Query`` the offline
planner uses (median, extreme, count_over, having, share and base, users_with, moment,
cast_time, and top_user / ratio_to as nested queries; QUERY_FIELDS says what each means); a
key the query does not know, or a value of the wrong type, is refused in one line naming
it, never ignored.
Only what the layer cannot say comes as ``{"kind": "analytic", "sql": "..."}`` over the
public schema. ``{"kind": "semantic" | "hybrid",
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
# The keys a model's query object may hold (the module docstring and the prompt name them);
# any other key is refused rather than ignored, so a misspelt field never drops a condition.
QUERY_KEYS = frozenset(
    [
        "metric",
        "group_by",
        "filters",
        "since",
        "until",
        "order",
        "limit",
        "average_over",
        "median",
        "extreme",
        "count_over",
        "having",
        "share",
        "base",
        "users_with",
        "moment",
        "cast_time",
        "top_user",
        "ratio_to",
    ]
)
FILTER_KEYS = frozenset(["filter", "value", "negated"])
# What each field beyond the basic ones means, for the prompt (layer.Query says the same).
QUERY_FIELDS = {
    "average_over": "a dimension: the mean of the metric over its groups ('casts per user')",
    "median": "true: with average_over, the median of the groups instead of their mean",
    "extreme": '"desc" or "asc": with average_over, the largest or smallest group\'s figure '
    "instead of their mean ('how many casts are in the biggest thread')",
    "count_over": "a dimension: how many of its groups there are ('how many users posted "
    "more than 10 casts': count_over user, having [\">\", 10]; 'how many threads have more "
    "than 10 casts': count_over thread; 'casts that tag 2+ people': metric mentioned_users, "
    'count_over cast, having [">=", 2])',
    "having": "[one of >, >=, <, <=, =, a number]: keep the groups whose metric compares so",
    "share": "true: the metric as a percentage of all casts (or reactions) ('what share of "
    "casts are replies')",
    "base": "filter names of this query that also narrow the whole a share is taken of",
    "users_with": '[{"metric": a metric, "without": false}]: grouped by user, only the users '
    "who have (without: true, who have not) a row of that metric ('authors who never replied')",
    "moment": '"first" or "last": the time of the first or last row of the metric, not its '
    "count ('when did dwr last cast')",
    "cast_time": "true: since/until say when the cast the metric is about was posted",
    "top_user": "a query ranking users (group_by user, order, limit 1): only the user it puts "
    "first ('the followers of the most active poster')",
    "ratio_to": "a query: this query's figure divided by that one's (both ungrouped)",
}
COMPARISONS = (">", ">=", "<", "<=", "=")


def _moment(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f'"{name}" must be an ISO 8601 time, got {value!r}')
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f'"{name}" must be an ISO 8601 time, got {value!r}') from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _flag(obj: dict[str, Any], name: str) -> bool:
    """A true/false field (absent or null: false); anything else is refused."""
    value = obj.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f'"{name}" must be true or false, got {value!r}')
    return value


def _dimension(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and (not isinstance(value, str) or value not in layer.DIMENSIONS):
        known = ", ".join(layer.DIMENSIONS)
        raise layer.LayerError(f'no dimension {value!r} for "{name}"; the layer\'s: {known}')
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _conditions(items: Any) -> tuple[layer.Condition, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ValueError('"filters" must be a list of objects')
    conditions = []
    for item in items:
        name = item.get("filter") if isinstance(item, dict) else None
        if not isinstance(name, str) or name not in layer.FILTERS:
            raise layer.LayerError(f"no filter {name!r}; the layer's: {', '.join(layer.FILTERS)}")
        if extra := set(item) - FILTER_KEYS:
            raise ValueError(f"filter {name} has unknown fields: {', '.join(sorted(extra))}")
        value = item.get("value")
        if value is not None and (
            not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip()
        ):
            raise ValueError(f"the value of filter {name} must be text, got {value!r}")
        if layer.FILTERS[name].takes_value and value is None:
            raise ValueError(f"filter {name} needs a value")
        if not layer.FILTERS[name].takes_value and value is not None:
            raise ValueError(f"filter {name} takes no value, got {value!r}")
        negated = item.get("negated", False)
        if not isinstance(negated, bool | None):
            raise ValueError(f'"negated" of filter {name} must be true or false, got {negated!r}')
        conditions.append(
            layer.Condition(name, None if value is None else str(value), bool(negated))
        )
    return tuple(conditions)


def query_from_json(obj: Any, ctx: Context, nested: bool = False) -> layer.Query:
    """A layer Query from the model's ``query`` object (shape in the module docstring; the
    fields beyond it in the prompt: ``median``, ``count_over``, ``having`` as ``[">", 10]``,
    ``share`` with ``base`` (filter names), ``users_with`` as ``[{"metric": ..., "without":
    false}]``, ``moment`` ("first" | "last"), ``cast_time``, and ``top_user`` / ``ratio_to``,
    each a query object of its own that holds neither of those two).

    Raises ValueError naming the field when a field is unknown or has the wrong type, and
    LayerError (in the layer's words) when a metric, dimension or filter is not in the
    catalogue. A missing ``since`` is the oldest event, a missing ``until`` just after the
    newest.
    """
    if not isinstance(obj, dict):
        raise ValueError('"query" must be an object')
    if extra := set(obj) - QUERY_KEYS:
        raise ValueError(f"the query has unknown fields: {', '.join(sorted(map(str, extra)))}")
    metric = obj.get("metric")
    if not isinstance(metric, str) or metric not in layer.METRICS:
        known = ", ".join(layer.METRICS)
        raise layer.LayerError(f"no metric {metric!r} in the layer; its metrics: {known}")
    group_by = _dimension(obj, "group_by")
    conditions = _conditions(obj.get("filters"))
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
    if limit is not None and (
        not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT
    ):
        raise ValueError(f'"limit" must be a whole number from 1 to {MAX_LIMIT}, got {limit!r}')
    average_over = _dimension(obj, "average_over")
    median = _flag(obj, "median")
    if median and average_over is None:
        raise ValueError('"median" needs "average_over" (the groups it is the median of)')
    extreme = obj.get("extreme")
    if extreme not in (None, "desc", "asc"):
        raise ValueError(f'"extreme" must be "desc", "asc" or null, got {extreme!r}')
    if extreme and average_over is None:
        raise ValueError('"extreme" needs "average_over" (the groups it is the largest of)')
    count_over = _dimension(obj, "count_over")
    having = obj.get("having")
    if having is not None:
        if not (
            isinstance(having, list)
            and len(having) == 2
            and having[0] in COMPARISONS
            and _number(having[1])
        ):
            raise ValueError(
                f'"having" must be [one of {", ".join(COMPARISONS)}, a number], got {having!r}'
            )
        having = (having[0], float(having[1]))
    share = _flag(obj, "share")
    base = obj.get("base") or []
    if not isinstance(base, list) or not all(isinstance(b, str) for b in base):
        raise ValueError(f'"base" must be a list of filter names, got {base!r}')
    if unknown := [b for b in base if b not in {c.filter for c in conditions}]:
        raise ValueError(f'"base" names filters the query does not have: {", ".join(unknown)}')
    if base and not share:
        raise ValueError('"base" needs "share": true')
    users_with = []
    for item in obj.get("users_with") or []:
        other = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(other, str) or other not in layer.METRICS:
            raise layer.LayerError(f'no metric {other!r} in "users_with"')
        if set(item) - {"metric", "without"}:
            raise ValueError(f'"users_with" items hold "metric" and "without", got {item!r}')
        users_with.append((other, _flag(item, "without")))
    moment = obj.get("moment")
    if moment not in (None, "first", "last"):
        raise ValueError(f'"moment" must be "first", "last" or null, got {moment!r}')
    cast_time = _flag(obj, "cast_time")
    if cast_time and time_range is None:
        raise ValueError('"cast_time" needs "since" or "until" (when the casts were posted)')
    nested_queries = {}
    for name in ("top_user", "ratio_to"):
        if obj.get(name) is None:
            continue
        if nested:
            raise ValueError(f'a nested query cannot hold "{name}" again')
        nested_queries[name] = query_from_json(obj[name], ctx, nested=True)
    top = nested_queries.get("top_user")
    if top is not None and (top.group_by != "user" or top.limit != 1 or top.order is None):
        raise ValueError('"top_user" must rank users: group_by user, an order, limit 1')
    return layer.Query(
        metric,
        group_by,
        conditions,
        time_range,
        order,
        limit,
        having=having,
        average_over=average_over,
        median=median,
        extreme=extreme,
        count_over=count_over,
        share=share,
        base=tuple(base),
        users_with=tuple(users_with),
        moment=moment,
        cast_time=cast_time,
        top_user=top,
        ratio_to=nested_queries.get("ratio_to"),
    )


def _named(value: str, question: str, whole_word: bool) -> bool:
    if not whole_word:
        return value in question
    return re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w-])", question) is not None


def _values_named(condition: layer.Condition) -> list[tuple[str, bool]]:
    """The parts of a filter's value the question must name, each with whether it must stand
    as a whole word: each user of a list (a short name like "v" is not named by "over"), each
    word of a cast's description (an "@name" word by its name, whole), else the value whole."""
    value = (condition.value or "").lower()
    if condition.filter in ("user", "to_user"):
        return [(v.strip().lstrip("@"), True) for v in value.split(",") if v.strip()]
    if condition.filter in ("in_thread", "named_cast", "to_named_cast"):
        return [(w.lstrip("@"), w.startswith("@")) for w in value.split()]
    return [(value.strip().lstrip("@#"), False)]


def query_grounding_error(question: str, query: layer.Query) -> str | None:
    """Why a layer query is not grounded in the question, or None: every filter value (a
    user, a term, a channel, each word naming a cast), in the query and in the queries it
    holds (top user, ratio), must occur in the question (a user as a whole word). The
    compiled SQL holds the layer's own literals, so it is the query that is checked, not its
    SQL."""
    q = question.lower()
    for part in (query, query.top_user, query.ratio_to):
        if part is None:
            continue
        for condition in part.conditions:
            if not all(_named(v, q, whole) for v, whole in _values_named(condition)):
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
            '"order": "desc" | "asc" | null, "limit": null or a number, and only when the '
            "question asks for it any of the query fields listed after the filters}} over the "
            "semantic layer below. Only when the layer cannot say it: "
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
                f"first plan: {_short(first_error)}; repaired plan: {type(second).__name__}: "
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
    lines += [
        f"- {f['name']}: {f['description']}"
        + (" (needs a value)" if layer.FILTERS[f["name"]].takes_value else " (no value)")
        for f in cat["filters"]
    ]
    lines.append("Query fields beyond metric, group_by, filters, since, until, order, limit:")
    lines += [f"- {name}: {meaning}" for name, meaning in QUERY_FIELDS.items()]
    return "\n".join(lines)


def _short(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
