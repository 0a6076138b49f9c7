"""The LLM planner: any OpenAI-compatible endpoint through the ``openai`` client.

The model sees the public schema and worked examples and must reply with one JSON object
``{"kind": "analytic"|"semantic"|"hybrid", "sql": "...", "search": "..."}``. Its SQL goes
through the same guard as everything else, then a dry run (EXPLAIN) on a read-only
connection. A plan that fails either gets one repair round with the error; a second failure
raises LlmUnusable and the offline planner answers instead.

OpenAI-compatible servers differ in what structured output they accept, so the request asks
for a JSON object and the reply is parsed and validated here, whatever the server did.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import dagster as dg
import duckdb
from pydantic import Field

from ozi_assets.questions.planner import Context, Plan, Rows, literal, users_of_casts_sql
from ozi_resources.sql_guard import SqlRefused, guard
from ozi_resources.warehouse import PUBLIC_TABLES

EXAMPLES = [
    (
        "How many casts did dwr post?",
        {"kind": "analytic", "sql": "SELECT count(*) AS casts FROM casts WHERE username = 'dwr'"},
    ),
    (
        "Who are the top 3 authors by number of casts?",
        {
            "kind": "analytic",
            "sql": "SELECT username, count(*) AS casts FROM casts GROUP BY username "
            "ORDER BY casts DESC LIMIT 3",
        },
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
            'and nothing else: {"kind": "analytic" | "semantic" | "hybrid", "sql": "...", '
            '"search": "..."}. analytic: a single DuckDB SELECT over these tables and views '
            "only (timestamps are TIMESTAMPTZ in UTC; is_reply marks replies; "
            "reactions.reaction_type is 'like' or 'recast'):\n"
            f"{schema}\n"
            "semantic: what people say about a topic; give the topic as search. hybrid: which "
            "users talk about a topic; give the topic as search. "
            f"The newest data is from {ctx.now:%Y-%m-%d %H:%M} UTC."
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

    def _validate(self, question: str, reply: str, conn: duckdb.DuckDBPyConnection) -> Plan:
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

    def plan(self, question: str, ctx: Context, conn: duckdb.DuckDBPyConnection) -> Plan:
        """Ask the model for a plan; one repair round. Raises LlmUnusable with both errors
        when the plan is still unusable (connection errors included)."""
        try:
            messages = self._messages(question, ctx, self._public_schema(conn))
            reply = self._complete(messages)
        except Exception as err:  # endpoint down, timeout, HTTP error
            raise LlmUnusable(f"endpoint error: {type(err).__name__}: {err}") from err
        try:
            return self._validate(question, reply, conn)
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
            return self._validate(question, repaired, conn)
        except Exception as second:
            raise LlmUnusable(
                f"first plan: {first_error}; repaired plan: {type(second).__name__}: "
                f"{_short(str(second))}"
            ) from second


def _short(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
