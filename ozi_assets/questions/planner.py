"""The offline planner: a deterministic reading of the common questions over the public schema.

It classifies a question and turns it into a Plan: SQL for analytic questions, a search text
for semantic ones, both for hybrid ones ("which users talked about Denver the most": the
vector hits feed the SQL). It is the default when no LLM is configured and the fallback when
the LLM's plan fails. It never guesses a number: a question that asks for one and matches
no rule gets an "unanswered" plan that lists the rules it tried.

Pure functions: the caller passes the known usernames and the newest event time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlglot import exp

from ozi_assets.questions.answer import Kind
from ozi_assets.questions.timerange import TimeRange, parse_time_range

DEFAULT_TOP_N = 10
MAX_TOP_N = 100

Rows = Sequence[Mapping[str, Any]]


@dataclass
class Plan:
    """What to run for a question, and how to say the result.

    ``sql`` runs for analytic plans; for hybrid plans ``hybrid_sql`` turns the hashes of the
    semantic hits into SQL. ``describe`` turns result rows into the answer sentence.
    """

    kind: Kind
    rule: str  # which rule matched, e.g. "count_by_user"
    sql: str | None = None
    search: str | None = None  # text to embed for semantic and hybrid plans
    time_range: TimeRange | None = None
    fid: int | None = None  # restrict a search to one author
    hybrid_sql: Callable[[Sequence[str]], str] | None = None
    describe: Callable[[Rows], str] = lambda rows: f"{len(rows)} rows"
    sources_sql: str | None = None  # casts that support an analytic answer
    tried: list[str] = field(default_factory=list)
    note: str | None = None  # why a question went unanswered


@dataclass(frozen=True)
class Context:
    """What the planner may know about the data: usernames → fid, and the newest event."""

    users: Mapping[str, int]  # lower-case username → fid
    now: datetime


def literal(value: str) -> str:
    """A SQL string literal, quoted by sqlglot (values never go into SQL unquoted)."""
    return exp.Literal.string(value).sql(dialect="duckdb")


# Nouns a question counts, and the verbs that mean "received" rather than "made".
METRICS = {
    "cast": "casts",
    "casts": "casts",
    "post": "casts",
    "posts": "casts",
    "message": "casts",
    "messages": "casts",
    "reply": "replies",
    "replies": "replies",
    "comments": "replies",
    "recast": "recasts",
    "recasts": "recasts",
    "like": "likes",
    "likes": "likes",
    "reaction": "reactions",
    "reactions": "reactions",
}
RECEIVED_VERBS = {"get", "got", "gets", "receive", "received", "receives", "earn", "earned"}
NUMBER_WORDS = re.compile(
    r"\b(how many|how much|count|number of|total|average|mean|median|percent|percentage|ratio|"
    r"sum)\b"
)
USER = r"@?([a-z0-9][a-z0-9_.-]*)"
TOPIC_VERBS = (
    r"(?:talk|talked|talking|talks|post|posted|posting|posts|write|wrote|writing|writes|cast|"
    r"casted|casting|say|said|saying|says|mention|mentioned|mentioning|mentions|discuss|"
    r"discussed|discussing|discusses|tweet|tweeted|chat|chatted)"
)


def _clean_topic(topic: str) -> str:
    topic = re.sub(r"\b(the most|most|the least|lately|recently|please)\b", " ", topic)
    topic = re.sub(r"[?!.\"']+", " ", topic)
    return " ".join(topic.split())


def _where(*conditions: str | None) -> str:
    present = [c for c in conditions if c]
    return f" WHERE {' AND '.join(present)}" if present else ""


def _time(tr: TimeRange | None, column: str = '"timestamp"') -> str | None:
    return tr.where(column) if tr else None


def _suffix(tr: TimeRange | None) -> str:
    return f" {tr.label}" if tr else ""


def _value(rows: Rows) -> Any:
    return next(iter(rows[0].values())) if rows else 0


def _ranking(rows: Rows, label: str, column: str) -> str:
    if not rows:
        return f"No {label} found."
    items = ", ".join(
        f"{r.get('username') or 'fid ' + str(r.get('fid'))} ({r[column]})" for r in rows
    )
    return f"{label}: {items}."


def _user_fids(username: str) -> str:
    return f"fid IN (SELECT fid FROM users WHERE username = {literal(username)})"


SOURCE_COLUMNS = 'hash, fid, username, "timestamp", text'
C_TS = 'c."timestamp"'
R_TS = 'r."timestamp"'
RECAST = "reaction_type = 'recast'"
R_RECAST = "r.reaction_type = 'recast'"


def count_by_user(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "How many casts did dwr post?", "How many recasts did @dwr get today?" """
    m = re.search(
        rf"how many (\w+)(?: \w+)? (?:did|has|have|does|do|was|were) {USER} (\w+)", q
    ) or re.search(rf"how many (\w+) (?:by|from) {USER}()", q)
    if not m or m.group(1) not in METRICS:
        return None
    metric, username, verb = METRICS[m.group(1)], m.group(2), m.group(3)
    if username not in ctx.users:
        return Plan(
            "unanswered",
            "count_by_user",
            note=f"there is no user named {username!r} in the data",
        )
    received = verb in RECEIVED_VERBS
    when = _time(tr)
    name = literal(username)
    if metric in ("casts", "replies") and not received:
        reply = "is_reply" if metric == "replies" else None
        condition = _where(f"username = {name}", reply, when)
        sql = f"SELECT count(*) AS {metric} FROM casts{condition}"
        sources = f'SELECT {SOURCE_COLUMNS} FROM casts{condition} ORDER BY "timestamp" DESC'
        verb_text = "posted" if metric == "casts" else "wrote"
        return Plan(
            "analytic",
            "count_by_user",
            sql=sql,
            sources_sql=sources,
            time_range=tr,
            describe=lambda rows: f"{username} {verb_text} {_value(rows)} {metric}{_suffix(tr)}.",
        )
    if metric == "replies" and received:
        condition = _where(f"parent_{_user_fids(username)}", when)
        sql = f"SELECT count(*) AS replies_received FROM casts{condition}"
        sources = f'SELECT {SOURCE_COLUMNS} FROM casts{condition} ORDER BY "timestamp" DESC'
        return Plan(
            "analytic",
            "count_by_user",
            sql=sql,
            sources_sql=sources,
            time_range=tr,
            describe=lambda rows: f"{username} received {_value(rows)} replies{_suffix(tr)}.",
        )
    if metric in ("recasts", "likes", "reactions"):
        kind = {"recasts": "reaction_type = 'recast'", "likes": "reaction_type = 'like'"}
        who = f"target_{_user_fids(username)}" if received else _user_fids(username)
        sql = f"SELECT count(*) AS {metric} FROM reactions{_where(kind.get(metric), who, when)}"
        verb_text = "received" if received else "made"
        return Plan(
            "analytic",
            "count_by_user",
            sql=sql,
            time_range=tr,
            describe=lambda rows: f"{username} {verb_text} {_value(rows)} {metric}{_suffix(tr)}.",
        )
    return None


def count_total(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "How many casts are there?", "How many casts mention denver?", "How many users…?" """
    m = re.search(r"how many (\w+)", q)
    if not m:
        return None
    if re.search(r"how many \w+(?: \w+)? (?:did|does|do|has|have|was|were) (?!there\b)", q):
        return None  # about someone in particular: count_by_user's question, never a total
    noun = m.group(1)
    when = _time(tr)
    if noun in ("users", "people", "authors", "accounts", "profiles", "casters", "fids"):
        if noun in ("authors", "casters") or re.search(r"\b(post|posted|cast|casted|wrote)\b", q):
            sql = f"SELECT count(DISTINCT fid) AS authors FROM casts{_where(when)}"
            return Plan(
                "analytic",
                "count_total",
                sql=sql,
                time_range=tr,
                describe=lambda rows: f"{_value(rows)} distinct users cast{_suffix(tr)}.",
            )
        if tr is None:
            return Plan(
                "analytic",
                "count_total",
                sql="SELECT count(*) AS users FROM users",
                describe=lambda rows: f"{_value(rows)} users have a profile in the data.",
            )
    if noun not in METRICS:
        return None
    metric = METRICS[noun]
    term_match = re.search(
        r"\b(?:mention|mentions|mentioning|contain|contains|containing|with the word|that say|"
        r"saying|about|with)\s+[\"']?([^\"'?]+?)[\"']?\s*(?:\?|$| in | on | between | today| "
        r"yesterday| during)",
        q,
    )
    term = _clean_topic(term_match.group(1)) if term_match else None
    if metric in ("casts", "replies"):
        reply = "is_reply" if metric == "replies" else None
        text = f"text ILIKE {literal('%' + term + '%')}" if term else None
        condition = _where(reply, text, when)
        sql = f"SELECT count(*) AS {metric} FROM casts{condition}"
        sources = f'SELECT {SOURCE_COLUMNS} FROM casts{condition} ORDER BY "timestamp" DESC'
        about = f" mentioning {term!r}" if term else ""
        return Plan(
            "analytic",
            "count_total",
            sql=sql,
            sources_sql=sources if term else None,
            time_range=tr,
            describe=lambda rows: f"{_value(rows)} {metric}{about}{_suffix(tr)}.",
        )
    if term:
        return None  # reactions have no text; leave it to the rules that say so
    kind = {"recasts": "reaction_type = 'recast'", "likes": "reaction_type = 'like'"}
    sql = f"SELECT count(*) AS {metric} FROM reactions{_where(kind.get(metric), when)}"
    return Plan(
        "analytic",
        "count_total",
        sql=sql,
        time_range=tr,
        describe=lambda rows: f"{_value(rows)} {metric}{_suffix(tr)}.",
    )


def _top_n(q: str) -> int:
    m = re.search(r"\b(?:top|first|best)\s+(\d+)\b", q) or re.search(r"\b(\d+)\s+(?:most|top)\b", q)
    return min(int(m.group(1)), MAX_TOP_N) if m else DEFAULT_TOP_N


def most_replied_to(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "Who got the most replies?", "Top 5 most replied-to users" """
    if not re.search(
        r"most[ -]replied|most replies|replies (?:received|they got)|(?:got|received|get|receive)"
        r" the most replies",
        q,
    ):
        return None
    n = _top_n(q)
    sql = (
        "SELECT u.username, c.parent_fid AS fid, count(*) AS replies_received "
        "FROM casts AS c LEFT JOIN users AS u ON u.fid = c.parent_fid"
        f"{_where('c.parent_fid IS NOT NULL', _time(tr, C_TS))} "
        "GROUP BY u.username, c.parent_fid ORDER BY replies_received DESC, fid "
        f"LIMIT {n}"
    )
    return Plan(
        "analytic",
        "most_replied_to",
        sql=sql,
        time_range=tr,
        describe=lambda rows: _ranking(
            rows, f"Most replied-to users{_suffix(tr)}", "replies_received"
        ),
    )


def top_users(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "Who are the top 5 authors by number of casts?", "Who posted the most?",
    "Top 10 users by recasts received" """
    ranked = (
        re.search(r"\btop(?:\s+\d+)?\s+(?:authors|users|posters|casters|accounts|people|fids)\b", q)
        or re.search(
            r"\b(?:who|which users?|which authors?)\s+(?:posted|cast|casted|wrote|replied|recast|"
            r"recasted|liked|made|has|had|got|received)\s+(?:the )?most\b(?!\s+(?:about|on)\b)",
            q,
        )
        or re.search(r"\bmost active (?:users|authors|casters|people)\b", q)
    )
    if not ranked:
        return None
    n = _top_n(q)
    when = _time(tr)
    if re.search(
        r"\brecasts?\b.*\b(received|got|get)\b|\bmost recasted\b"
        r"|\b(received|got) the most recasts\b",
        q,
    ):
        column, label = "recasts_received", f"Top {n} users by recasts received"
        sql = (
            "SELECT u.username, r.target_fid AS fid, count(*) AS recasts_received "
            "FROM reactions AS r LEFT JOIN users AS u ON u.fid = r.target_fid"
            f"{_where(R_RECAST, _time(tr, R_TS))} "
            f"GROUP BY u.username, r.target_fid ORDER BY recasts_received DESC, fid LIMIT {n}"
        )
    elif re.search(r"\b(recasts?|recasted)\b", q):
        column, label = "recasts", f"Top {n} users by recasts made"
        sql = (
            f"SELECT username, fid, count(*) AS recasts FROM reactions{_where(RECAST, when)} "
            f"GROUP BY username, fid ORDER BY recasts DESC, fid LIMIT {n}"
        )
    elif re.search(r"\b(replies|replied)\b", q):
        column, label = "replies", f"Top {n} users by replies written"
        sql = (
            f"SELECT username, fid, count(*) AS replies FROM casts{_where('is_reply', when)} "
            f"GROUP BY username, fid ORDER BY replies DESC, fid LIMIT {n}"
        )
    else:
        column, label = "casts", f"Top {n} authors by casts"
        sql = (
            "SELECT username, fid, count(*) AS casts, count(*) FILTER (WHERE is_reply) AS "
            f"replies FROM casts{_where(when)} GROUP BY username, fid "
            f"ORDER BY casts DESC, fid LIMIT {n}"
        )
    return Plan(
        "analytic",
        "top_users",
        sql=sql,
        time_range=tr,
        describe=lambda rows: _ranking(rows, f"{label}{_suffix(tr)}", column),
    )


def per_hour(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "Casts per hour", "Which hour was busiest?", "Activity by hour today" """
    busiest = re.search(r"\b(busiest|most active|peak) hour\b|\b(which|what) hour\b", q)
    if not (busiest or re.search(r"\b(per|by|each|every) hour\b|\bhourly\b", q)):
        return None
    when = _time(tr, "window_start")
    order = "casts DESC, hour" if busiest else "hour"
    limit = " LIMIT 1" if busiest else ""
    sql = (
        "SELECT window_start AS hour, casts, replies, reactions, recasts, distinct_authors "
        f"FROM hourly_activity{_where(when)} ORDER BY {order}{limit}"
    )

    def describe(rows: Rows) -> str:
        if not rows:
            return f"No activity{_suffix(tr)}."
        if busiest:
            r = rows[0]
            return (
                f"The busiest hour{_suffix(tr)} starts {r['hour']:%Y-%m-%d %H:%M} UTC: "
                f"{r['casts']} casts from {r['distinct_authors']} authors."
            )
        items = "; ".join(f"{r['hour']:%m-%d %H:%M} {r['casts']}" for r in rows)
        return f"Casts per hour (UTC){_suffix(tr)}: {items}."

    return Plan("analytic", "per_hour", sql=sql, time_range=tr, describe=describe)


def top_terms(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "What are the top terms?", "Most mentioned users", "Trending hashtags" """
    kind = None
    if re.search(r"\b(most mentioned|top mentions|mentioned the most)\b", q):
        kind = "mention"
    elif re.search(r"\bhashtags?\b", q):
        kind = "hashtag"
    elif re.search(
        r"\b(top(?:\s+\d+)?|most (?:used|common|popular)|trending|popular)\s+"
        r"(terms|words|topics|keywords)\b"
        r"|\btrending\b",
        q,
    ):
        kind = "term"
    if kind is None:
        return None
    n = _top_n(q)
    when = _time(tr, "window_start")
    sql = (
        f"SELECT term, sum(uses) AS uses, max(authors) AS max_authors_in_a_window FROM top_terms"
        f"{_where('kind = ' + literal(kind), when)} GROUP BY term ORDER BY uses DESC, term "
        f"LIMIT {n}"
    )
    label = {"mention": "Most mentioned", "hashtag": "Top hashtags", "term": "Top terms"}[kind]
    return Plan(
        "analytic",
        "top_terms",
        sql=sql,
        time_range=tr,
        describe=lambda rows: (
            f"{label}{_suffix(tr)}: " + ", ".join(f"{r['term']} ({r['uses']})" for r in rows) + "."
            if rows
            else f"No terms{_suffix(tr)}."
        ),
    )


def top_casts(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "Most recast casts", "Most popular casts", "Which casts got the most replies?" """
    m = re.search(
        r"\b(?:most (recasted|recast|replied|liked|popular|engaging)|(?:which|what) casts? "
        r"(?:got|received|have|had) the most (replies|recasts|likes))\b",
        q,
    )
    if not m or not re.search(r"\bcasts?\b|\bposts?\b", q):
        return None
    word = m.group(1) or m.group(2)
    column = {
        "recasted": "recasts_seen",
        "recast": "recasts_seen",
        "recasts": "recasts_seen",
        "replied": "replies_seen",
        "replies": "replies_seen",
        "liked": "likes_seen",
        "likes": "likes_seen",
    }.get(word, "replies_seen + recasts_seen + likes_seen")
    n = _top_n(q)
    sql = (
        f"SELECT c.hash, c.username, c.text, e.replies_seen, e.recasts_seen, e.likes_seen, "
        f"{column} AS engagement FROM cast_engagement AS e JOIN casts AS c USING (hash)"
        f"{_where(_time(tr, C_TS))} ORDER BY engagement DESC, c.hash LIMIT {n}"
    )
    return Plan(
        "analytic",
        "top_casts",
        sql=sql,
        time_range=tr,
        sources_sql=None,
        describe=lambda rows: (
            f"Top {len(rows)} casts by {column.replace('_seen', '')} seen in the stream"
            f"{_suffix(tr)}: "
            + "; ".join(f"@{r['username']} ({r['engagement']})" for r in rows)
            + "."
        ),
    )


def users_of_casts_sql(hashes: Sequence[str], n: int = DEFAULT_TOP_N) -> str:
    """SQL ranking the authors of the given casts (a hybrid question's vector hits) by how
    many of them they wrote; the hashes are listed as quoted literals."""
    listed = ", ".join(literal(h) for h in hashes) or "NULL"
    return (
        'SELECT username, fid, count(*) AS casts_on_topic, max("timestamp") AS latest '
        f"FROM casts WHERE hash IN ({listed}) GROUP BY username, fid "
        f"ORDER BY casts_on_topic DESC, latest DESC, fid LIMIT {n}"
    )


def hybrid_topic_users(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "Which users talked about invites the most?", "Who posted about Denver?" """
    m = re.search(
        rf"\b(?:which|what) (?:users|people|authors|accounts|casters)\s+(?:\w+\s+)?{TOPIC_VERBS}"
        rf"\s+(?:about|on|regarding)?\s*(.+)",
        q,
    ) or re.search(
        rf"\bwho(?:'s| is| was| has)?\s+{TOPIC_VERBS}\s+(?:about|on|regarding)\s+(.+)", q
    )
    if not m:
        return None
    topic = _clean_topic(
        re.sub(r"\b(in|on|between|during|today|yesterday|last|past)\b.*$", "", m.group(1))
    )
    if not topic:
        return None
    n = _top_n(q)

    return Plan(
        "hybrid",
        "hybrid_topic_users",
        search=topic,
        time_range=tr,
        hybrid_sql=lambda hashes: users_of_casts_sql(hashes, n),
        describe=lambda rows: _ranking(
            rows, f"Users who cast most about {topic!r}{_suffix(tr)}", "casts_on_topic"
        ),
    )


def _author(q: str, ctx: Context) -> tuple[str, int] | None:
    """The known user a search is restricted to: "what did dwr say about …", "casts by @dwr
    about …", "posts from dwr on …"; None when no known username stands there."""
    m = re.search(rf"\b(?:did|does|has|by|from)\s+{USER}\s", q)
    if m and m.group(1) in ctx.users:
        return m.group(1), ctx.users[m.group(1)]
    return None


def semantic_topic(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "What are people saying about ETHDenver?", "Casts about onboarding", "Find posts on
    zora" """
    m = (
        re.search(
            r"\b(?:saying|say|said|talking|think|thinking|feel|feeling|posting|writing)\s+(?:about|"
            r"of|on)\s+(.+)",
            q,
        )
        or re.search(
            r"\b(?:casts?|posts?|messages?|anything|something)(?:\s+(?:by|from)\s+@?[\w.-]+)?"
            r"\s+(?:about|on|regarding|mentioning)\s+(.+)",
            q,
        )
        or re.search(r"^(?:find|show|search|search for|look for|show me)\s+(?:me\s+)?(.+)", q)
    )
    if not m:
        return None
    topic = _clean_topic(
        re.sub(
            r"\b(between|during|today|yesterday|in the last|in the past|on (?:march|\d{4}-)).*$",
            "",
            m.group(1),
        )
    )
    if not topic:
        return None
    author = _author(q, ctx)
    by = f" by {author[0]}" if author else ""
    return Plan(
        "semantic",
        "semantic_topic",
        search=topic,
        time_range=tr,
        fid=author[1] if author else None,
        describe=lambda rows: f"Casts{by} about {topic!r}{_suffix(tr)}",
    )


RULES: list[Callable[[str, Context, TimeRange | None], Plan | None]] = [
    count_by_user,
    most_replied_to,
    top_casts,
    top_users,
    per_hour,
    top_terms,
    count_total,
    hybrid_topic_users,
    semantic_topic,
]


def plan(question: str, ctx: Context) -> Plan:
    """Classify ``question`` and plan it. Always returns a Plan; kind "unanswered" when the
    question asks for a number no rule can compute (``tried`` lists the rules)."""
    q = " ".join(question.lower().replace("’", "'").split())
    tr = parse_time_range(q, ctx.now)
    tried = []
    for rule in RULES:
        tried.append(rule.__name__)
        result = rule(q, ctx, tr)
        if result is not None:
            result.tried = tried
            return result
    if NUMBER_WORDS.search(q):
        return Plan(
            "unanswered",
            "none",
            tried=tried,
            note="the question asks for a number and no rule of the offline planner computes it",
        )
    # Anything else is a search: the casts closest in meaning to the whole question.
    return Plan(
        "semantic",
        "semantic_fallback",
        search=_clean_topic(q),
        time_range=tr,
        tried=tried,
        describe=lambda rows: f"Casts closest in meaning to the question{_suffix(tr)}",
    )
