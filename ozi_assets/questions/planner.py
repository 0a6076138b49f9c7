"""The offline planner: a deterministic reading of the common questions over the public schema.

It classifies a question and turns it into a Plan: SQL for analytic questions, a search text
for semantic ones, both for hybrid ones ("which users talked about Denver the most": the
vector hits feed the SQL). It is the default when no LLM is configured and the fallback when
the LLM's plan fails. It never guesses a number: a question that asks for one and matches
no rule gets an "unanswered" plan that lists the rules it tried.

Pure functions: the caller passes the known usernames and the newest event time.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlglot import exp

from ozi_assets.questions import layer, lexicon
from ozi_assets.questions.answer import Kind
from ozi_assets.questions.layer import Condition, LayerError, Query
from ozi_assets.questions.timerange import (
    TimeRange,
    find_time_range,
    without_back_reference,
    without_restated_range,
    without_rough_times,
    written_clock,
    written_dates,
)

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
    rule: str  # which reading answered: "layer", "semantic_topic", "hybrid_topic_users", …
    sql: str | None = None
    search: str | None = None  # text to embed for semantic and hybrid plans
    time_range: TimeRange | None = None
    fid: int | None = None  # restrict a search to one author
    hybrid_sql: Callable[[Sequence[str]], str] | None = None
    describe: Callable[[Rows], str] = lambda rows: f"{len(rows)} rows"
    sources_sql: str | None = None  # casts that support an analytic answer
    tried: list[str] = field(default_factory=list)
    note: str | None = None  # why a question went unanswered
    # An unanswered plan whose reason is the data, not the planner's words: what is asked is
    # not held (a profile property, who follows whom, a time outside the data). The LLM path
    # does not ask the model then: a plan of the same data would answer another question.
    final: bool = False
    query: Query | None = None  # the semantic layer's query behind an analytic plan


@dataclass(frozen=True)
class Context:
    """What the planner may know about the data: usernames → fid, the newest event and the
    oldest."""

    users: Mapping[str, int]  # lower-case username → fid
    now: datetime
    first: datetime | None = None  # the oldest event; None: not known
    # lower-case display names of two words or more → username ("varun srinivasan" → "v"):
    # people are named that way too; one-word display names are too often plain words
    display_names: Mapping[str, str] = field(default_factory=dict)


def literal(value: str) -> str:
    """A SQL string literal, quoted by sqlglot (values never go into SQL unquoted)."""
    return exp.Literal.string(value).sql(dialect="duckdb")


# "what does 'self-sovereign' even mean": the verb, not the average
_MEAN_VERB = re.compile(r"\b(?:does|do|did)\b[^?.]*?\bmean\b")
NUMBER_WORDS = re.compile(
    r"\b(how many|how much|how often|count|number of|total|average|mean|median|percent|"
    r"percentage|ratio|sum)\b"
)
USER = r"@?([a-z0-9][a-z0-9_.-]*)"
TOPIC_VERBS = (
    r"(?:talk|talked|talking|talks|post|posted|posting|posts|write|wrote|writing|writes|written|cast|"
    r"casted|casting|say|said|saying|says|mention|mentioned|mentioning|mentions|discuss|"
    r"discussed|discussing|discusses|tweet|tweeted|chat|chatted|speak|speaks|speaking|spoke|"
    r"brought up|bring up|brings up|"
    r"bringing up|referenced|referencing)"
)


def _clean_topic(topic: str) -> str:
    topic = re.sub(r"\b(the most|most|the least|lately|recently|please|for me)\b", " ", topic)
    # where it was said, which every cast shares: "… in this dataset", "… across the sample"
    topic = re.sub(
        r"\b(?:in|within|across|from|of) (?:this|the|our|your) (?:whole |entire )?"
        r"(?:data ?set|sample|data|farcaster (?:data|sample))\b",
        " ",
        topic,
    )
    # on Farcaster, which every cast is: "tipping people on here", "… on this app"
    topic = re.sub(r"\b(?:on|around|in) (?:here|this (?:app|platform|site|network))\b", " ", topic)
    topic = re.sub(r"[?!.,\"']+", " ", topic)
    # whose the topic is says nothing of it: "their jobs and careers" are jobs and careers
    topic = re.sub(r"^(?:their|his|her|its|our|my) ", "", topic.strip())
    return " ".join(topic.split())


def _suffix(tr: TimeRange | None) -> str:
    return f" {tr.label}" if tr else ""


def _ranking(rows: Rows, label: str, column: str) -> str:
    if not rows:
        return f"No {label} found."
    items = ", ".join(
        f"{r.get('username') or 'fid ' + str(r.get('fid'))} ({r[column]})" for r in rows
    )
    return f"{label}: {items}."


def _top_n(q: str) -> int:
    m = re.search(r"\b(?:top|first|best)\s+(\d+)\b", q) or re.search(r"\b(\d+)\s+(?:most|top)\b", q)
    return min(int(m.group(1)), MAX_TOP_N) if m else DEFAULT_TOP_N


def users_of_casts_sql(hashes: Sequence[str], n: int = DEFAULT_TOP_N) -> str:
    """SQL ranking the authors of the given casts (a hybrid question's vector hits) by how
    many of them they wrote; the hashes are listed as quoted literals."""
    listed = ", ".join(literal(h) for h in hashes) or "NULL"
    return (
        'SELECT username, fid, count(*) AS casts_on_topic, max("timestamp") AS latest '
        f"FROM casts WHERE hash IN ({listed}) GROUP BY username, fid "
        f"ORDER BY casts_on_topic DESC, latest DESC, fid LIMIT {n}"
    )


# Who a hybrid question ranks: the catalogue's words for the user dimension ("which accounts",
# "top 5 people", "rank the authors", "who"), and what introduces its topic.
_PEOPLE = "|".join(sorted(w for w in layer.DIMENSIONS["user"].words if w not in ("who", "whose")))
_AGENTS = "|".join(sorted(lexicon.AGENT_NOUNS))  # people named by what they do: "recasters"
_RANKING = "|".join(sorted(lexicon.ORDER_DESC))
_RANKING_ASC = "|".join(sorted(lexicon.ORDER_ASC))
_SUBJECT = re.compile(
    rf"\b(?:who|(?:which|what)\s+(?:\d+\s+)?(?:{_PEOPLE})|(?:{_RANKING})\s+(?:the\s+)?"
    # "the most active user on tipping": how much they cast, said of the people
    rf"(?:\d+\s+)?(?:(?:active|prolific|frequent)\s+)?(?:{_PEOPLE})"
    rf"|(?:the|an?)\s+(?:{_PEOPLE})\s+with"  # "the author with …"
    rf"|\branking\s+of\s+(?:the\s+)?(?:{_PEOPLE})"  # "a ranking of users by …"
    rf"|(?:{_PEOPLE})\s+(?:ranked|ordered|sorted)\s+by)\b"  # "the users ranked by casts on …"
    # tersely, the topic between the ranking and the people: "top music poster"
    rf"|^(?:{_RANKING})\s+(?:[a-z0-9]+\s+){{1,2}}(?:{_PEOPLE}|posters?|talkers?)$"
    # or before the casts ranked per person: "most music casts by user", "users most meetup
    # casts"
    rf"|^(?:{_RANKING})\s+(?:[a-z0-9]+\s+){{1,2}}(?:casts|posts)\s+(?:by|per)\s+(?:{_PEOPLE})$"
    rf"|^(?:{_PEOPLE})\s+(?:with\s+)?(?:the\s+)?(?:{_RANKING})\s+(?:[a-z0-9]+\s+){{1,2}}"
    r"(?:casts|posts)$"
    # or the casts ranked and then their topic: "users most casts about bots", "accounts with
    # the most posts on nfts"
    rf"|^(?:{_PEOPLE})\s+(?:with\s+)?(?:the\s+)?(?:{_RANKING})"
    r"(?=\s+(?:casts|posts|messages)\s+(?:about|on|regarding|mentioning)\s)"
)
_RANKS = re.compile(rf"\b(?:{_RANKING}|more|often|keeps?|sorted|ordered)\b")
_INTRODUCER = re.compile(
    rf"\b(?:{TOPIC_VERBS}\s+)?(?:about|on|regarding|concerning|discussing|discussed|discusses|"
    rf"mentioning|"
    rf"brought up|bring up|brings up|bringing up|referencing|concern|concerns)\s+(.+)"
)
_SAID = re.compile(r"\b(?:said|say|says|saying)\s+(?!about\b|on\b|regarding\b)(.+)")
# What follows a topic and is not part of it: how the ranking is asked for, time words.
_TOPIC_END = re.compile(
    r"(?:,|[?!;(]|\.\s|\bby (?:the )?(?:number|count|how many)\b|\b(?:the )?most\b|\bmore\b|"
    r"\boften\b|\bin the data\b|\b(?:in|between|during|today|yesterday|last|past)\b).*$"
)
_TOPIC_START = re.compile(r"^(?:the |a |an )?(?:casts?|posts?|messages?) (?:about|on|regarding) ")


# A comma inside a list of topics ("about MetaMask, Rainbow and other wallets", "about NFTs,
# mints, or drops"): before an item of one to three words that is followed by another item or
# by the "and" / "or" that ends the list. A comma before a clause ("…, and how many each?",
# "…, by number of casts") separates it from the topic.
_ITEM = r"[\w@.-]+(?: [\w@.-]+){0,2}"
_LIST_COMMA = re.compile(rf",\s+(?=(?:{_ITEM},\s+)*{_ITEM},?\s+(?:and|or)\s)")


def _topic_after(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    # "the weather, such as cold or snow": the examples are items of the topic
    examples = re.sub(r",?\s+such as\s+", " or ", match.group(1))
    listed = _LIST_COMMA.sub(" or ", examples)
    topic = _TOPIC_START.sub("", _TOPIC_END.sub("", listed).strip())
    return _clean_topic(topic) or None


# Auxiliaries between "who" and the verb of saying: "who's been talking about …", "who has
# posted about …", "who was discussing …" ask what "who talked about …" asks. A form of "be"
# only before "-ing": "who was mentioned in posts about …" is a passive, said of others.
_AUXILIARIES = (
    r"(?:(?:has|have|had|'ve)\s+(?:been\s+(?=\w+ing\b))?"
    r"|(?:'s|is|are|was|were)\s+(?:been\s+)?(?=\w+ing\b))?"
)


# A verb of saying and what it was about, after which the catalogue's words are a topic.
_TALKED_ABOUT = re.compile(rf"\b{TOPIC_VERBS}(?:\s+(?:the\s+)?most)?\s+(?:about|regarding)\s")


def hybrid_topic_users(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """Users ranked by how many casts they wrote about a topic: "Which users talked about
    invites the most?", "Who posted the most about crypto wallets?", "Who said gm the most?",
    "Top 5 accounts discussing AI", "Which accounts greeted people with 'gm' most often?".

    The question names whom it ranks with the catalogue's user words (or "who"), asks for a
    ranking (or says "talked about"), and introduces its topic: a word like "about", "on",
    "regarding", "discussing" or "mentioning", the object of "said", or a quoted term. None
    when any of these is missing."""
    subject = _SUBJECT.search(q)
    if subject is None:
        return None
    rest = q[subject.end() :]
    intro = _INTRODUCER.search(rest)
    said = re.match(rf"\s*{_AUXILIARIES}{TOPIC_VERBS}\s", rest)
    if not (_RANKS.search(q) or (intro and said)):
        return None
    if subject.group(0).startswith("what") and not _RANKS.search(q):
        return None  # "show me what people said about invites": what they said, no ranking
    terms = [t.strip() for t in quoted(rest) if t.strip()]
    topic = " ".join(terms) or _topic_after(intro) or _topic_after(_SAID.search(rest))
    if topic in ("it", "this", "that", "them", "those", "these"):
        # "eth denver - who posted about it most": the topic stands before the subject;
        # "who's the biggest f1 fan here, as in who posted the most about it": in the clause
        # before the one that asks
        topic = _clean_topic(re.sub(r"[-:–—]+", " ", q[: subject.start()]))
        if not topic:
            first = re.split(r"[,;:?—–]", q)[0]
            topic = " ".join(
                w for w in tokens(first) if not lexicon.known(w) and w not in ctx.users
            )
    if not topic:
        return None
    return _topic_ranking("hybrid_topic_users", topic, tr, _top_n(q))


# Words of a ranking's topic that name nothing themselves: an item of a list made of them
# alone ("nfts and stuff") says nothing of the topic.
_EMPTY_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "topic",
        "topics",
        "subject",
        "conversation",
        "conversations",
        "discussion",
        "related",
        "stuff",
        "they",
        "their",
        "them",
        "are",
        "is",
        "were",  # "who were the top Denver posters"
        "was",
        "in",
        "by",
        # "who is most engaged in the @purple conversation", "the biggest f1 fan"
        "engaged",
        "involved",
        "fan",
        "fans",
    ]
)
# ... and with them the words that say how or what was cast, not what about: "the most
# posts from ETH Denver", "welcome messages they posted", "invite-related".
_TOPIC_NOISE = _EMPTY_WORDS | frozenset(
    [
        "post",
        "posts",
        "posted",
        "posting",
        "cast",
        "casts",
        "casted",
        "casting",
        "message",
        "messages",
        "wrote",
        "write",
        "writing",
        "writes",
        "shared",
        "share",
        "sharing",
        "talk",
        "talked",
        "talking",
        "talks",
        "talker",
        "talkers",
        "poster",
        "posters",
        # every cast is on Farcaster: "Farcaster invites" are invites
        "farcaster",
    ]
)
# What separates the items of a listed topic: "writing, blogging or reading", "a / b".
_TOPIC_ITEMS = re.compile(r"(\s+(?:or|and)\s+|\s*[,/]\s*)")


def _content(topic: str) -> str:
    """``topic`` without the words that say how it was cast; "" when nothing else is left.
    An item of a list that is only such words is an item still ("writing, blogging or
    reading", "talked about posting or casting"): it is what was said about."""
    text = re.sub(r"\bby (?:the )?(?:number|count) of\b", " ", topic)
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text)
    parts = _TOPIC_ITEMS.split(text)  # items at even places, separators between them
    out = ""
    for at in range(0, len(parts), 2):
        words = parts[at].split()
        content = [w for w in words if w not in _TOPIC_NOISE]
        if not content and len(parts) > 1 and not any(w in _EMPTY_WORDS for w in words):
            content = words  # the item itself: "writing" in "writing or reading"
        if content:
            # the separator before an item goes with it ("nfts and stuff": "nfts")
            out += (parts[at - 1] if out else "") + " ".join(content)
    return " ".join(out.split())


def _topic_core(topic: str) -> str:
    """``topic`` without the words that say how it was cast (``_TOPIC_NOISE``, "by the number
    of"); the topic itself when nothing else is left."""
    return _content(topic) or topic  # "good-morning", "invite-related": hyphens split


def _topic_ranking(rule: str, topic: str, tr: TimeRange | None, n: int) -> Plan:
    """A hybrid plan: the casts about ``topic`` (fused search), their authors ranked by how
    many of them they wrote, at most ``n``."""
    topic = _topic_core(topic)
    return Plan(
        "hybrid",
        rule,
        search=topic,
        time_range=tr,
        hybrid_sql=lambda hashes: users_of_casts_sql(hashes, n),
        describe=lambda rows: _ranking(
            rows, f"Users who cast most about {topic!r}{_suffix(tr)}", "casts_on_topic"
        ),
    )


_RANKING_WORDS = re.compile(
    rf"\b(?:the\s+)?(?:{_RANKING}|more|often)\b(?:\s+often)?|\bby (?:the )?(?:number|count) of "
    r"(?:casts|posts|messages)\b|\b(?:top|first)\s+\d+\b|[?!.,]"
)


def ranked_topic_users(q: str, reading: Reading, tr: TimeRange | None) -> Plan | None:
    """ "Who welcomed new users the most?", "Which people greeted newcomers most often?":
    people ranked by a ranking word, and words the layer does not know that say what they
    did. No metric of the layer is named beyond casts (then it is a question about that
    metric, and its unknown words are refused), so what they did is a topic of their casts:
    the question without its subject and ranking words is the search, and the authors of the
    hits are ranked as in hybrid_topic_users."""
    subject = _SUBJECT.search(q)
    if subject is None or not _RANKS.search(q) or not reading.unknown:
        return None
    if any(m != "casts" for m in reading.metrics):
        return None
    topic = _clean_topic(_RANKING_WORDS.sub(" ", q[subject.end() :]))
    if not _content(topic):
        # "purple dao - most posts by which user?", "summer of protocols who posted most":
        # the topic stands before the subject
        topic = " ".join(w for w in reading.unknown if w not in lexicon.FILLER)
    if not topic:
        return None
    return _topic_ranking("ranked_topic_users", topic, tr, _top_n(q))


# Verbs that say what an author said, for a topic named before them: "what product updates
# did dwr announce", "which tools has dwr shared".
_SAY_VERBS = rf"(?:{TOPIC_VERBS}|announce|announced|announces|announcing|share|shared|shares)"
# Where the author of a search stands: after "did", "by" or "from" ("casts about invites by
# dwr" too), or named as a user ("the user willbamberg"); before the topic, as the owner of
# the casts ("dwr's casts about …", "ccarella's take on …") or as the one who wrote ("what dwr
# wrote about …", "what @dwr (dwr) wrote regarding …": a display name read as the @username,
# the username beside it). After the topic a possessive is part of it ("what are people
# saying about purple's treasury").
_AUTHOR_ANYWHERE = re.compile(rf"\b(?:did|does|has|by|from)\s+{USER}\s")
_AUTHOR_NAMED = re.compile(rf"\b(?:user|account|author)\s+{USER}(?=\s|'s\b)")
_AUTHOR_BEFORE_TOPIC = (
    re.compile(rf"(?:^|[\s(]){USER}'s\s"),
    # "what dwr has written", "what dwr is saying"
    re.compile(
        rf"(?:^|[\s(]){USER}\s+(?:\(@?[a-z0-9_.-]+\)\s+)?(?:(?:has|had|is|was)\s+(?:been\s+)?)?"
        rf"{_SAY_VERBS}\b"
    ),
)


def _author(q: str, ctx: Context, topic_at: int | None = None) -> tuple[str, int] | None:
    """The known user a search is restricted to: "what did dwr say about …", "casts by @dwr
    about …", "posts from dwr on …", "what the user willbamberg wrote regarding …", and before
    the topic (which starts at ``topic_at``, the end of ``q`` when None) "dwr's casts about
    …", "what dwr wrote about …"; None when no known username stands there. Except after
    "did", "by" or "from", a word the planner knows is no author unless written with "@"
    ("what people said about …")."""
    found = [m for m in [_AUTHOR_ANYWHERE.search(q), _AUTHOR_NAMED.search(q)] if m]
    found += [m for pattern in _AUTHOR_BEFORE_TOPIC for m in pattern.finditer(q[:topic_at])]
    for m in found:
        name = m.group(1)
        marked = q[m.start(1) - 1 : m.start(1)] == "@"
        plain = m.re is _AUTHOR_ANYWHERE or marked or not lexicon.known(name)
        if name in ctx.users and plain:
            return name, ctx.users[name]
    return None


# A request's frame before what it asks for: "could you find …", "please show me …"
_REQUEST_FRAME = re.compile(
    r"^(?:(?:could|can|would|will)\s+you\s+(?:please\s+)?|please\s+|"
    r"i\s+(?:need|want|would like|'d like)\s+(?:you\s+)?to\s+)(?=find|show|search|look|get|pull)"
)
EVERYONE = frozenset(["everyone", "everybody", "anyone", "anybody"])
# Someone not named: the object of an act that says nothing of who received it.
_ANYONE = EVERYONE | {"someone", "somebody", "people", "ppl", "folks"}
# An amount left vague, before whom an act went to: "replied to some people", "a few users".
_VAGUE_AMOUNT = frozenset(["some", "a_few", "several", "many", "various"])
# Whoever posted, unnamed: "what … have ppl posted", "which … did people share"
_UNNAMED_POSTERS = (
    "(?:" + "|".join(sorted(_ANYONE | {"users", "authors", "they", "you", "we"})) + ")"
)


def semantic_topic(q: str, ctx: Context, tr: TimeRange | None) -> Plan | None:
    """ "What are people saying about ETHDenver?", "How does ccarella talk about Purple?",
    "Casts about onboarding", "Find posts on zora": the topic after a verb of saying or a
    word for casts; the author when a known user stands after "did", "does", "by" or "from"."""
    # "could you find …", "please show …", "I need you to find …": the request's frame
    q = _REQUEST_FRAME.sub("", q)
    m = (
        re.search(
            rf"\b(?:{TOPIC_VERBS}|think|thinking|feel|feeling)\s+(?:about|of|on|regarding)\s+(.+)",
            q,
        )
        or re.search(
            # "the conversation about Purple", "the chatter about rugby league"
            r"\b(?:casts?|posts?|messages?|anything|something|conversations?|discussions?|"
            r"chatter|buzz|talk|opinions?|thoughts|sentiment)(?:\s+(?:by|from)\s+@?[\w.-]+)?"
            r"\s+(?:about|on|regarding|concerning|(?:related|relating) to|mentioning|discussing|"
            # "casts in which users discuss eating": whoever discusses it, the casts do;
            # "which casts discuss grants": the casts themselves
            r"(?:(?:that|which|in which|where)\s+)?(?:(?:users|people|authors|they|someone)\s+)?"
            r"(?:discuss|discusses|mention|mentions|talk about|talks about))\s+(.+)",
            q,
        )
        or re.search(r"^(?:find|show|search|search for|look for|show me)\s+(?:me\s+)?(.+)", q)
        # "what product updates did dwr announce": the topic before its author and verb
        or re.search(
            rf"^(?:what|which)\s+(.+?)\s+(?:did|does|has|had)\s+{USER}\s+{_SAY_VERBS}\b", q
        )
        # "what bugs or feature requests have ppl posted": the same before anyone's verb
        or re.search(
            rf"^(?:what|which)\s+(.+?)\s+(?:did|do|does|have|has|had)\s+{_UNNAMED_POSTERS}\s+"
            rf"(?:{_SAY_VERBS}|reported|requested|asked for)\b",
            q,
        )
    )
    if not m:
        return None
    # the topic ends with its sentence: "talking about F1? what were they saying …"
    topic = re.split(r"[?!]", m.group(1))[0]
    topic = _clean_topic(
        re.sub(
            r"\b(between|during|today|yesterday|in the last|in the past|on (?:march|\d{4}-)).*$",
            "",
            topic,
        )
    )
    if topic in ("it", "this", "that", "them", "those", "these"):
        # "someone was making fonts, can you find the posts about that": the words of the
        # question the planner does not know say what "that" is
        topic = " ".join(
            w for w in tokens(q[: m.start()]) if not lexicon.known(w) and w not in ctx.users
        )
    # "talking about regarding AI": a second introducer is none of the topic
    topic = re.sub(r"^(?:regarding|concerning|about|on|(?:related|relating) to) ", "", topic)
    # every cast is on Farcaster: "casts about Farcaster invites" are about invites
    topic = " ".join(w for w in topic.split() if w != "farcaster") or topic
    if not topic:
        return None
    author = _author(q, ctx, m.start(1))
    by = f" by {author[0]}" if author else ""
    return Plan(
        "semantic",
        "semantic_topic",
        search=topic,
        time_range=tr,
        fid=author[1] if author else None,
        describe=lambda rows: f"Casts{by} about {topic!r}{_suffix(tr)}",
    )


# --- analytic questions: a reading of the question into a query over the semantic layer ----


@dataclass
class Reading:
    """What the planner understood of a question: the query (None when it is not one), the
    words it did not understand, whether the question asks for a number or a ranking at all,
    and why a query could not be made from words it did understand."""

    query: Query | None = None
    unknown: list[str] = field(default_factory=list)
    asks_number: bool = False
    counts: bool = False  # "how many", "count": a number, not a ranking
    problem: str | None = None
    metrics: list[str] = field(default_factory=list)  # the metrics its words name
    users: list[str] = field(default_factory=list)  # the known users it names
    by_unknown: str | None = None  # "casts by device": a grouping by a word not understood


# A double-quoted term may hold apostrophes: "What's your everyday wallet and why?"
QUOTED = re.compile(r"(?:(?<=\s)|^)(?:\"([^\"]+)\"|'([^']+)')(?=[\s?.!,;:)]|$)")


def quoted(text: str) -> list[str]:
    """The quoted terms of ``text``, in order."""
    return [m.group(1) or m.group(2) for m in QUOTED.finditer(text)]


HASHTAG = re.compile(r"#([a-z0-9_]+)")
QUOTED_TERM, HASHTAG_TERM = "quotedterm", "hashtagterm"  # where they stood, once taken
# A clock time no range took is one word ("at 7:30"): unknown, not the numbers 7 and 30.
TOKEN = re.compile(r"\d{1,2}:\d{2}(?:am|pm)?|[@]?[a-z0-9][a-z0-9_'.-]*")


def tokens(text: str, names: Container[str] = ()) -> list[str]:
    """The words of a lower-case question: punctuation dropped, "'s" split off, hyphenated
    words split unless the lexicon knows them whole or they are one of ``names`` (usernames
    such as "m-j-r"), known phrases joined with "_"."""
    words: list[str] = []
    for raw in TOKEN.findall(re.sub(r"@-?(?=mention)", "", text.replace("@-", ""))):
        word = raw.rstrip(".'-")
        tail = None
        if raw.endswith("s'") and word.endswith("s") and not lexicon.known(raw):
            tail = "'s"  # "users' casts": a plural's possessive
        if tail is None and word.endswith("'s") and not lexicon.known(word):
            word, tail = word[:-2], "'s"
        if "-" in word and not lexicon.known(word) and word.lstrip("@") not in names:
            words.extend(part for part in word.split("-") if part)
        else:
            words.append(word)
        if tail:
            words.append(tail)
    joined: list[str] = []
    i = 0
    while i < len(words):
        for size in (4, 3, 2):
            key = tuple(words[i : i + size])
            if len(key) == size and key in lexicon.PHRASES:
                joined.append(lexicon.PHRASES[key])
                i += size
                break
        else:
            joined.append(words[i])
            i += 1
    return joined


def _number(word: str) -> int | None:
    if word.isdigit():
        return int(word)
    return lexicon.NUMBERS.get(word)


_STARTED = frozenset(["start", "started", "starts", "begin", "began", "begins"])
# Words that may stand between a dimension word and what introduces it ("which 5 most
# active users", "per each hour"), looking back.
_SKIPPABLE = lexicon.FILLER | lexicon.DISTINCT | set(lexicon.NUMBERS) | lexicon.EACH


def _introducer(words: list[str], i: int, ctx: Context) -> str:
    """How the dimension word at ``i`` is introduced: "per", "each", "which", "order",
    "count", "distinct" or "plain" (none of these within the three words before it)."""
    seen = 0
    passed_noun = False
    for j in range(i - 1, max(-1, i - 5), -1):
        w = words[j]
        if w in lexicon.PER:
            return "per"
        if w in lexicon.EACH:
            return "each"
        if w in lexicon.QUESTION:
            return "which"
        if w in lexicon.ORDER_DESC or w in lexicon.ORDER_ASC:
            return "order"
        if w in lexicon.DISTINCT:
            # "per distinct author": grouped by authors, not counting them
            return "per" if j and words[j - 1] in lexicon.PER | lexicon.EACH else "distinct"
        if w in lexicon.COUNT_NOUN:
            # "how many replies were people …": the count is of the noun in between
            return "plain" if passed_noun else "count"
        if w.isdigit() or w in lexicon.NUMBERS:
            continue
        if w in lexicon.METRIC_NOUNS:
            passed_noun = True
        if (
            w in _SKIPPABLE
            or w in lexicon.METRIC_VERBS
            or w in lexicon.METRIC_NOUNS
            or (w == "replied_to")
        ):
            seen += 1
            if seen > 2:
                break
            continue
        break
    return "plain"


# Words after which a user stands: the subject or the author ("did rn post", "casts by rn"),
# the user acted on ("replied to rn", "casts mentioning rn").
_USER_BEFORE = frozenset(
    ["did", "does", "has", "by", "from", "replied_to"]
    + [w for w, m in {**lexicon.METRIC_VERBS, **lexicon.METRIC_NOUNS}.items() if m == "mentions"]
)
# Filler words that stay filler even where a user could stand ("casts by the hour").
_NEVER_A_NAME = lexicon.FUNCTION_WORDS | lexicon.WH_WORDS | {"do", "did", "does", "has", "had"}


def _user_slot(words: list[str], i: int, ctx: Context) -> bool:
    """Whether the filler word at ``i`` is a username standing where a user does: after
    "did", "by", a verb of mentioning or a metric's "to", before "'s", first before a
    metric's noun, or beside another user with "or" / "and" ("how many casts did rn post",
    "rn's casts", "replies to rn", "rn reply count", "rn or dwr"). Filler carries no meaning,
    so a username that is one (rn: "right now") would otherwise be dropped and the question
    answered for everyone."""
    w = words[i]
    if w not in lexicon.FILLER or w in _NEVER_A_NAME or w not in ctx.users:
        return False
    prev = words[i - 1] if i else ""
    nxt = words[i + 1] if i + 1 < len(words) else ""

    def other_user(at: int) -> bool:
        word = words[at] if 0 <= at < len(words) else ""
        return word.lstrip("@") in ctx.users and (word.startswith("@") or not lexicon.known(word))

    return (
        prev in _USER_BEFORE
        or nxt == "'s"
        or (i == 0 and nxt in lexicon.METRIC_NOUNS)  # "rn reply count"
        # "replies to rn", not "posted up to rn"
        or (prev == "to" and i > 1 and _metric_of(words[i - 2]) is not None)
        or (nxt in ("or", "and") and other_user(i + 2))
        or (prev in ("or", "and") and other_user(i - 2))
    )


# One person a ranking picks: "the most active poster", "the guy who posted the most".
SINGLE_PEOPLE = frozenset(
    ["poster", "author", "user", "account", "person", "guy", "caster", "creator", "member"]
)


def _one_person(words: list[str], numbers: list[int]) -> bool:
    """Whether a question is about one person a ranking picks: no number of them, and a word
    for one user ("the most active poster") or for one who does something ("the top
    recaster")."""
    return not numbers and any(
        w in SINGLE_PEOPLE or (w in lexicon.AGENT_NOUNS and not _plural(w)) for w in words
    )


def _inverted_passive(words: list[str], i: int, user_at: int) -> bool:
    """Whether the verb at ``i`` is a question's inverted passive: a copula, the user just
    named, the verb ("how many times was dwr recast", "is dwr mentioned")."""
    return user_at == i - 1 and i > 1 and words[i - 2] in lexicon.COPULA


def _metric_of(word: str) -> str | None:
    return (
        lexicon.METRIC_NOUNS.get(word)
        or lexicon.METRIC_VERBS.get(word)
        or lexicon.AGENT_NOUNS.get(word)
    )


def _ranked_metric(text: str) -> str | None:
    """The metric a question's ranking word is about, within its clause: the first metric
    word in the three after it ("the most active poster", "the highest number of casts"),
    else in the three before it ("the guy who posted the most — how many followers …");
    None without a ranking word or a metric near it."""
    for clause in re.split(r"[—–:;?!,]|\s-\s", text):
        words = tokens(clause)
        at = next(
            (i for i, w in enumerate(words) if w in lexicon.ORDER_DESC or w in lexicon.ORDER_ASC),
            None,
        )
        if at is None:
            continue
        if words[at] in LENGTH_ORDER and at + 1 < len(words) and _names_casts(words[at + 1]):
            return "cast_length"  # "the longest casts": by their length
        after = words[at + 1 : at + 4]
        for k, w in enumerate(after):
            # "the top poster": a word for authors ranks by casts
            if metric := _metric_of(w) or ("casts" if w in lexicon.AUTHOR_WORDS else None):
                # "the most active replier": how much they did what the person is named by
                doer = next((x for x in after[k + 1 :] if x in lexicon.AGENT_NOUNS), None)
                if metric == "casts" and not _names_casts(w) and doer:
                    return lexicon.AGENT_NOUNS[doer]
                return metric
        for j in range(at - 1, max(-1, at - 4), -1):
            # "posted the most"; not "dwr's casts the most", where a possessive makes "casts"
            # a noun
            if words[j] in lexicon.METRIC_VERBS and not (j and words[j - 1] == "'s"):
                return lexicon.METRIC_VERBS[words[j]]
        return None
    return None


def _antecedent(before: list[str]) -> str | None:
    """The dimension a bare "which" refers back to: the last word for casts or users before
    it ("of the posts …, which got", "among users, which posted"), or None."""
    for w in reversed(before):
        if _names_casts(w):
            return "cast"
        if lexicon.DIMENSION_WORDS.get(w) == "user" and w not in ("who", "whose"):
            return "user"
    return None


# A reaction's verb with the user as its object ("who recast dwr the most", "which accounts
# liked v"): the reactions went to that user's casts. Read word by word, the user had been
# the one reacting.
_REACTION_VERBS = frozenset(
    w
    for w, m in lexicon.METRIC_VERBS.items()
    if m in ("likes", "recasts", "reactions") and not w.endswith("s")
)


def _reacted_to(words: list[str], i: int) -> bool:
    """Whether the user at ``i`` is the object of a reaction verb just before it, asked of
    the people named before the verb ("who", "which users")."""
    if i == 0 or words[i - 1] not in _REACTION_VERBS:
        return False
    return any(
        x in lexicon.QUESTION or x in ("who", "whom") or lexicon.DIMENSION_WORDS.get(x) == "user"
        for x in words[: i - 1]
    )


def _names_casts(word: str) -> bool:
    """Whether ``word`` is a word for casts: "cast", "posts", "messages", …"""
    return word in lexicon.CAST_WORDS or lexicon.METRIC_NOUNS.get(word) == "casts"


# Words that may stand between "how many" and what it counts: "how many more replies",
# "how many distinct users", "how many of the casts"
_BEFORE_COUNTED = frozenset(
    ["more", "fewer", "less", "total", "different", "distinct", "unique", "separate", "of", "the"]
)


def _numbers_asked(words: list[str]) -> list[str]:
    """The metrics (or "users") each "how many" or "how much" of ``words`` counts, in
    order, without repeats: ["casts", "likes"] for "how many casts did dwr post and how many
    likes did he get". A second one that restates the first ("recasts per day? how many
    reshares …") adds nothing."""
    asked: list[str] = []
    for i, word in enumerate(words):
        if word not in ("how_many", "how_much"):
            continue
        j = i + 1
        while j < len(words) and words[j] in _BEFORE_COUNTED:
            j += 1
        if j == len(words):
            continue
        people = words[j] in layer.DIMENSIONS["user"].words  # "how many users …"
        metric = "users" if people else _metric_of(words[j])
        if metric and metric not in asked:
            asked.append(metric)
    return asked


def _share_of_people(words: list[str]) -> bool:
    """Whether the share ``words`` ask for is of people: "what % of (the) authors …", "the
    share of all users who …" ("sharetoken" stands for the share's words)."""
    at = words.index("sharetoken") if "sharetoken" in words else -1
    rest = [w for w in words[at + 1 :] if w not in ("of", "the", "all")][:1]
    return (
        at >= 0
        and bool(rest)
        and (rest[0] in layer.DIMENSIONS["user"].words or rest[0] in lexicon.AGENT_NOUNS)
    )


def read(text: str, ctx: Context, time_range: TimeRange | None) -> Reading:
    """Read a lower-case question (time range already taken out) into a query over the
    semantic layer. Every word must be understood: the unknown ones are returned, and the
    query is then not to be run."""
    r = Reading()
    conditions: list[Condition] = []
    # "the thread rooted at the cast 'What's your everyday wallet…'", "jithinraj's cast
    # 'What's …'": the quote names it, and goes before the noun it names
    text = _ROOTED.sub(lambda m: f"{m.group(2)} {m.group(1)}", text)
    text = _QUOTE_AFTER.sub(lambda m: f"{m.group(2)} {m.group(1)}", text)
    for term in quoted(text):
        conditions.append(Condition("term", term.strip()))
    placeholders = list(conditions)  # the quoted terms, then the hashtags, in order
    # placeholders keep their place: "the word 'chatgpt' appears", "posts tagged #ethdenver"
    text = QUOTED.sub(f" {QUOTED_TERM} ", text)
    for tag in HASHTAG.findall(text):
        # "#hashtag" itself: any hashtag ("posts with at least one #hashtag")
        any_tag = tag in ("hashtag", "hashtags")
        conditions.append(Condition("has_hashtag") if any_tag else Condition("hashtag", tag))
        placeholders.append(conditions[-1])
    text = HASHTAG.sub(f" {HASHTAG_TERM} ", text)
    words = tokens(text, ctx.users)
    if len(asked := _numbers_asked(words)) > 1:
        # one answer holds one number: of "how many casts … and how many likes …" the
        # metrics would merge and one would be dropped, answering another question
        r.problem = (
            f"the question asks for {len(asked)} numbers ({', '.join(asked)}): ask one at a time"
        )
        return r

    nouns: list[str] = []  # metrics named by a noun ("replies")
    verbs: list[str] = []  # metrics named by a verb ("recast")
    groups: list[tuple[str, str, str]] = []  # (dimension, introducer, word)
    users: list[str] = []
    counted_users = distinct = received = others = self_words = union = False
    order: str | None = None
    comparative: str | None = None
    share, share_mark, base_end = False, 0, None  # "what percentage of …" (see sharetoken)
    share_at = base_end_at = -1  # where the share's words and the whole's cast noun stand
    which_one = False  # "which one": a cast, unless the question compares users
    numbers: list[int] = []
    pronouns = 0  # of those numbers, the word "one" standing for a thing named before
    having: tuple[str, float] | None = None
    having_of: str | None = None  # what people with a threshold have ("with 3+ casts")
    owned = False  # the comparison said after "with" or "having"
    did: str | None = None  # the metric of the verb the comparison follows
    compare: str | None = None
    negate = 0  # words left in which a negation applies
    term_next = False
    term_forced = False  # after "the word": the next content word is the term
    mention_as_term = False
    follow_at = user_at = -1  # "does dwr follow" (following) vs "follow dwr" (followers)
    moment: str | None = None  # "when was the first …": first_cast_at or last_cast_at
    moment_noun = ""  # the noun after "first" or "last"
    average = False  # "on average per user": the mean over the grouping
    # "how many", "the size of": a number is asked, not "the highest number of" ranked
    count_asked = False
    median = False  # "the median … per user": the median over it
    owned = False  # "dwr's casts …": received unless a copula says what the casts are
    excluded: list[str] = []  # users left out
    count_over: str | None = None  # "how many users posted > 10 casts": the groups counted
    never = 0  # words left in which "never" applies: "people who never replied"
    lacking: list[str] = []  # metrics the users counted never made a row of
    never_cast = False  # "never posted": casts, unless "top level" follows
    casts_left_out = False  # "users with no casts", where a ranking leaves "never" unread
    never_said = False
    threads_counted = False  # "the number of threads dwr replied in"
    threads_named = False  # a word for threads read as the casts that start them
    cast_in = False  # "posted in", "active": casts in something, not casts started
    never_filters: list[str] = []  # "never got a reply": a filter negated
    # metrics named by a verb only to be left out ("without replying"): still named, so no
    # topic search reads "while not replying" as what people said
    set_aside: list[str] = []
    which_of = re.search(r"\bwhich (?:one )?of\b", text) is not None  # "which of dwr's casts"
    # "how many ppl shared a link? counting casts": a closing clause saying what is counted
    restated = _COUNTING.search(text)
    counts_rows = bool(restated and restated.group(1) in lexicon.METRIC_NOUNS)
    # "likes on posts by dwr": what dwr's casts received
    on_casts_by = re.search(
        r"\b(?:on|to) (?:\w+ )?(?:casts?|posts?) (?:(?:authored|written|posted|made) )?"
        r"(?:by|from) @?\w",
        text,
    )
    # "when was the first reply", "the time of jayce's last cast"
    asks_when = any(w in ("when", "timestamp", "time", "date") for w in words)
    asks_who = any(w in ("who", "whose", "which") for w in words)  # "who posted the last cast"
    ranked = any(
        w in lexicon.ORDER_DESC or w in lexicon.ORDER_ASC or w in lexicon.COMPARE for w in words
    )

    # "list the distinct authors": a listing, not a count
    listing = any(w in LISTING for w in words) and not any(w in lexicon.COUNT for w in words)

    unknown_at: list[int] = []  # where each unknown word stood
    plain_people = False  # "the people who …": users named without "per", "which" or a count
    mentioning = any(_metric_of(w) == "mentions" for w in words)
    user_seen: list[tuple[int, str, bool]] = []  # (where, name, left out) of each user named

    def name_of(i: int) -> tuple[str, bool, bool] | None:
        """The words naming the thread or cast whose noun is at ``i`` ("the everyday wallet
        thread", "briang's unlonely livestream thread", "ccarella's BuilderDAO #113 cast"),
        as a named-cast value, whether its author was named as left out and whether the
        cast is what the metric acts on ("replies to …'s cast"); None when no
        word the planner does not know stands right before it. Those words are understood
        now, and the author is no longer a user the question is about."""
        j = i - 1
        while j >= 0 and (j in unknown_at or words[j] in (QUOTED_TERM, HASHTAG_TERM)):
            j -= 1
        # tersely, the author named right before: "pcdkd rugby thread"
        owner_before = bool(user_seen) and user_seen[-1][0] == j >= 0
        if j == i - 1 or j < 0 or (words[j] not in NAMING and not owner_before):
            return None  # "did nobody_here post": a verb, not a named cast
        named = []
        for at in range(j + 1, i):
            if words[at] in (QUOTED_TERM, HASHTAG_TERM):
                # the nth placeholder is the nth quoted term or hashtag taken
                seen = sum(x in (QUOTED_TERM, HASHTAG_TERM) for x in words[:at])
                taken = placeholders[seen]
                conditions.remove(taken)
                named.append(taken.value if taken.filter == "term" else f"#{taken.value}")
            else:
                r.unknown.remove(words[at])
                unknown_at.remove(at)
                named.append(words[at])
        left_out, start = False, j
        owner_at = j - 1 if words[j] == "'s" else j
        if owner_at >= 0 and user_seen and user_seen[-1][0] == owner_at:
            _, owner, left_out = user_seen.pop()
            (excluded if left_out else users).remove(owner)
            named.insert(0, f"@{owner}")
            start = owner_at
        # "a response to jithinraj's cast 'What's your …'": the cast acted on
        to = start >= 1 and words[start - 1] in ("to", "on")
        return " ".join(named), left_out, to

    def people(word: str, how: str) -> bool:
        """A word for users introduced ``how``: True when they are counted ("how many
        users"); a grouping otherwise ("per user", "which users"), none when plain."""
        nonlocal plain_people
        if how == "distinct" and listing:
            how = "which"
        elif how in ("count", "distinct") or (distinct and how == "plain"):
            return True
        if how != "plain":
            groups.append(("user", how, word))
        plain_people = plain_people or how == "plain"
        return False

    for i, w in enumerate(words):
        prev = words[i - 1] if i else ""
        nxt = words[i + 1] if i + 1 < len(words) else ""
        negate = max(0, negate - 1)
        never = max(0, never - 1)
        name = w.lstrip("@")
        cast_in = cast_in or _casts_in_threads(words, i)
        if w in lexicon.NEVER:
            never, never_said = 4, True
            continue
        lacked = lexicon.METRIC_VERBS.get(w) or lexicon.METRIC_NOUNS.get(w)
        lacked = lacked or lexicon.AGENT_NOUNS.get(w) or ("replies" if w == "replied_to" else None)
        lacked = lacked or _kind_of_casts(words, i)
        if lacked and negate and _undone_by_people(words, i):
            # "users who did not reply", "profiles without casts": what they never did
            never, never_said, negate = 1, True, 0
        if never and lacked:
            if lacked == "casts":
                never_cast = True  # "never posted top level": what follows may narrow it
                continue
            lacking.append(lacked)
            never, never_cast = 0, False
            continue
        if never and lexicon.FILTER_WORDS.get(w) in KIND_FILTERS:
            lacking.append(KIND_FILTERS[lexicon.FILTER_WORDS[w]])
            never, never_cast = 0, False
            continue
        if never and w in lexicon.FILTER_WORDS:
            # "casts that never got a reply": not replied (of users, see below)
            conditions.append(Condition(lexicon.FILTER_WORDS[w], negated=True))
            never_filters.append(w)
            never = 0
            continue
        if w == "one" and prev == "which" and any(_names_casts(x) for x in words):
            groups.append(("cast", "which", w))  # "of the posts …, which one got reshared"
            which_one = True
            continue
        if w == "sharetoken":
            # the conditions named before the cast noun say what the whole is ("the share of
            # top-level casts that got replies": of top-level casts)
            share, share_mark, r.asks_number = True, len(conditions), True
            share_at = i
            continue
        if share and base_end is None and _names_casts(w):
            base_end, base_end_at = len(conditions), i
        if w in (QUOTED_TERM, HASHTAG_TERM):
            term_forced = term_next = False  # a quoted term or a hashtag, already taken
            if mention_as_term:
                # "how many casts mention 'gm'" or "#gm": casts with it, not @-mentions
                verbs = [v for v in verbs if v != "mentions"]
                nouns = [n for n in nouns if n != "mentions"]
                mention_as_term = False
            continue
        if nxt == HASHTAG_TERM and w in ("tag", "tagged", "tagging", "tags", "using", "with"):
            continue  # "posts tagged #ethdenver": the hashtag, not a mention
        if nxt == QUOTED_TERM and w in ("say", "says", "said", "saying"):
            continue  # "how many casts say 'web3'": the quoted term is what they say
        if term_forced and w not in lexicon.FUNCTION_WORDS:
            term_forced = term_next = False
            if w not in lexicon.GRAMMAR:
                conditions.append(Condition("term", w, negated=bool(negate)))
                continue
        if (
            mentioning
            and name not in ctx.users
            and not lexicon.known(name)
            and (w.startswith("@") or nxt in ("account", "handle"))
        ):
            # "@purple", "the purple account": a handle casts mention, with or without a
            # profile (mentions are the handles written in the text)
            users.append(name)
            user_seen.append((i, name, False))
            continue
        if (w.startswith("@") or not lexicon.known(w) or _user_slot(words, i, ctx)) and (
            name in ctx.users
        ):
            if negate:
                excluded.append(name)  # "excluding briang", "if we ignore briang"
                user_seen.append((i, name, True))
                negate = 0
                continue
            users.append(name)
            user_seen.append((i, name, False))
            user_at = i
            term_next = False
            # "replies to dwr", "directed at dwr", "dwr's casts were recast": dwr receives
            after = words[i + 2] if nxt == "'s" and i + 2 < len(words) else ""
            their_casts = _names_casts(after)
            if prev in ("to", "at") or their_casts:
                received = True
                owned = their_casts
            continue
        if (
            lexicon.DIMENSION_WORDS.get(w) in ("thread", "cast")
            or (w == "one" and any(lexicon.DIMENSION_WORDS.get(x) == "thread" for x in words))
        ) and (named := name_of(i)):
            # "not counting his livestream thread", "who recast ccarella's BuilderDAO cast",
            # "other than the livestream one"
            dim = "thread" if w == "one" else lexicon.DIMENSION_WORDS[w]
            value, left_out, acted_on = named
            which = "in_thread" if dim == "thread" else "named_cast"
            if dim == "cast" and acted_on:
                # the replies or reactions made to that cast: the made metric, on its target
                which, received, owned = "to_named_cast", False, False
            conditions.append(Condition(which, value, negated=bool(negate) or left_out))
            negate = 0
            continue
        if w in lexicon.MAKING and any(_metric_of(x) for x in words[i + 1 : i + 3]):
            continue  # "making 5 replies": the replies say what is made
        if (
            w == "like"
            and nxt in lexicon.WH_WORDS
            and prev not in lexicon.FIRST | lexicon.LAST | {"the", "a", "one", "each"}
        ):
            # "who was more active? like who posted more": a filler, not a like; after an
            # ordinal or an article it is the noun ("last like who": who made it)
            continue
        if w == "mean" and any(x in ("does", "do", "did") for x in words[:i]):
            r.unknown.append(w)  # "what does 'self-sovereign' mean": a verb, not an average
            unknown_at.append(i)
            continue
        if w in lexicon.AVERAGE or w in lexicon.MEDIAN:
            average = r.asks_number = True
            median = median or w in lexicon.MEDIAN
            continue
        if asks_when and moment is None and w in _STARTED:
            # "when did dwr start posting", "when did briang start the basketball thread":
            # the first time he did it ("start" of a thread stays its verb)
            moment, moment_noun = "first_cast_at", nxt
            r.asks_number = True
            if any(x.endswith("ing") and x in lexicon.METRIC_VERBS for x in (prev, nxt)):
                continue  # "when did recasting begin": the gerund says what
        # the noun after a kind of cast: "the last top-level cast", "the first image post"
        noun_at = i + 1
        while noun_at < len(words) - 1 and words[noun_at] in lexicon.FILTER_WORDS:
            noun_at += 1
        noun = words[noun_at] if noun_at < len(words) else ""
        if (w in lexicon.FIRST or w in lexicon.LAST) and (
            asks_when
            or (
                asks_who
                and (
                    noun in lexicon.CAST_WORDS
                    or nxt in lexicon.METRIC_NOUNS
                    or nxt == "one"
                    # "who was the most recent person to reshare"
                    or lexicon.DIMENSION_WORDS.get(nxt) == "user"
                    # "who was first to cast", "the last to reply": the one who did it then
                    or (nxt == "to" and i + 2 < len(words) and words[i + 2] in lexicon.METRIC_VERBS)
                )
            )
        ):
            # "when was the first …", "who posted the very last cast": a moment, not a filler
            moment = "first_cast_at" if w in lexicon.FIRST else "last_cast_at"
            moment_noun = nxt
            r.asks_number = True
            continue
        n = _number(w)
        if n is not None and (w.isdigit() or w not in lexicon.FILLER):
            if compare:
                having, compare = (compare, float(n)), None
                if did not in (None, "casts"):
                    having_of = did  # "recast 3 casts": the verb says what is counted
                elif owned or did:
                    # "with 2 casts", and after a verb of posting, which says no more than
                    # its noun ("wrote 2 replies")
                    having_of = _metric_of(nxt) if nxt else None
                else:
                    having_of = None
            else:
                numbers.append(n)
                if w == "one" and not (_names_casts(nxt) or nxt in lexicon.METRIC_NOUNS):
                    pronouns += 1  # "reply to one", "which one": no number of anything
                if prev in lexicon.QUESTION and lexicon.METRIC_NOUNS.get(nxt) == "casts":
                    groups.append(("cast", "which", w))  # "what 2 casts got the most likes"
                elif prev in lexicon.QUESTION and not (
                    nxt in lexicon.DIMENSION_WORDS or nxt in lexicon.METRIC_NOUNS
                ):
                    # "which three have the most followers"; "of the posts …, which three
                    # got": the three of what came before
                    groups.append((_antecedent(words[: i - 1]) or "user", "which", w))
            continue
        counted_before = i > 1 and _number(words[i - 2]) is not None and _metric_of(prev)
        if (
            w in lexicon.POSTFIX_COMPARE
            and numbers
            and (_number(prev) is not None or counted_before)
        ):
            # "two or more casts", "5 replies or more": the number before is the threshold
            pronouns -= words[i - (2 if counted_before else 1)] == "one" and pronouns > 0
            having = (lexicon.COMPARE[w], float(numbers.pop()))
            continue
        if w in lexicon.COMPARE:
            compare = lexicon.COMPARE[w]
            # whose count the threshold is: "users with at least 2 casts" (theirs), "who
            # posted more than 5 casts" (the verb's)
            owned = prev in ("with", "having")
            did = lexicon.METRIC_VERBS.get(prev)
            continue
        if w in lexicon.POST_NEGATION and prev in lexicon.METRIC_NOUNS:
            # "top posters, replies excluded": what came before is left out
            left_out = lexicon.METRIC_NOUNS[prev]
            if left_out in ("replies", "top_level_casts") and left_out in nouns:
                nouns.remove(left_out)
                conditions.append(
                    Condition("reply" if left_out == "replies" else "top_level", negated=True)
                )
                continue
        if w in lexicon.NEGATION:
            negate = 6 if w == "none" else 4  # "none of them is a reply"
            continue
        if w in lexicon.SELF:
            if negate:
                others, negate = True, 0
            elif (
                w in lexicon.SELF_ALONE
                or _to_self(prev, owned=w == "own_casts")  # "liked their own casts"
                or (prev in lexicon.POSSESSIVE and i > 1 and _to_self(words[i - 2], owned=True))
            ):
                # "replies to their own casts": the actor is the user ("replies vs his own
                # posts" sets the replies against his posts, not in reply to them)
                self_words = True
            continue  # else emphatic: "did vgr make himself"
        if w in lexicon.OTHERS:
            others = True
            if w.startswith("other_") and (prev in lexicon.COUNT_NOUN or prev in lexicon.DISTINCT):
                counted_users = True  # "how many different other accounts replied"
            continue
        if w in lexicon.OBJECT_PRONOUNS and prev in ("to", "at"):
            received = True  # "users ranked by the people replying to them"
            continue
        if w == "replied_to":
            verbs.append("replies")
            # "the most replied to users" received them; "replied to someone" or "to some
            # users" made them, whoever got them
            j = i + 1
            while j < len(words) and words[j] in _VAGUE_AMOUNT:
                j += 1
            after = words[j] if j < len(words) else ""
            someone = (
                after in _ANYONE
                or after in lexicon.OTHERS
                or (j > i + 1 and lexicon.DIMENSION_WORDS.get(after) == "user")
            )
            received = received or not someone
            continue
        if w in lexicon.AGENT_NOUNS:
            verbs.append(lexicon.AGENT_NOUNS[w])
            counted_users = people(w, _introducer(words, i, ctx)) or counted_users
            continue
        if w == "whose" and (
            prev in lexicon.CAST_WORDS
            or prev in lexicon.METRIC_NOUNS
            or prev == "of"
            or (lexicon.DIMENSION_WORDS.get(prev) == "user" and counted_users)
        ):  # "count the authors whose follower count exceeds 1000"
            continue  # "every cast whose date is …", "all of whose casts": a relative clause
        if w == "who" and (
            lexicon.DIMENSION_WORDS.get(prev) == "user" or _names_casts(prev) or prev in EVERYONE
        ):
            # "different users who wrote", "casts who are not replies": a relative clause
            continue
        if w == "who" and lexicon.DIMENSION_WORDS.get(prev) == "user":
            continue  # "different users who wrote": a relative clause
        if (
            w == "which"
            # "of the posts …, which three got the most answers": the number is how many
            and (
                verb := words[i + 2]
                if nxt != "one" and _number(nxt) is not None and i + 2 < len(words)
                else nxt
            )
            and (verb in lexicon.RECEIVED or verb in lexicon.METRIC_VERBS or verb in lexicon.BE)
            and (antecedent := _antecedent(words[:i]))
        ):
            # "among casts published …, which received the most recasts": which of them
            groups.append((antecedent, "which", w))
            continue
        if w in ("who", "whose"):
            groups.append(("user", "which", w))
            received = received or w == "whose"
            continue
        if w in lexicon.POSSESSIVE and nxt in lexicon.METRIC_NOUNS:
            received = True  # "their posts reshared": the subject owns the casts
            continue
        if w in lexicon.COUNT:
            if prev == "by" or (prev == "the" and i > 1 and words[i - 2] == "by"):
                order = order or "desc"  # "rank users by the number of …": a ranking
                continue
            r.asks_number = True
            count_asked = count_asked or not (
                prev in lexicon.ORDER_DESC or prev in lexicon.ORDER_ASC
            )
            continue
        if w in lexicon.ORDER_DESC or w in lexicon.ORDER_ASC:
            order = "desc" if w in lexicon.ORDER_DESC else "asc"
            if (
                w in LENGTH_ORDER
                and _names_casts(nxt)
                and not any(lexicon.DIMENSION_WORDS.get(x) == "thread" for x in words)
            ):
                # "the longest casts", "the shortest post": ranked by their length (a
                # thread's length is its casts)
                nouns.append("cast_length")
            continue
        if w in lexicon.COMPARATIVE:
            comparative = lexicon.COMPARATIVE[w]  # orders named users: "who cast more"
            continue
        if w in lexicon.DISTINCT:
            distinct = True
            continue
        if w in lexicon.RECEIVED and not (
            # "got posted" is a passive; "got replies" receives them
            w in lexicon.BE and nxt in lexicon.METRIC_VERBS and nxt not in lexicon.METRIC_NOUNS
        ):
            received = True
            continue
        if w in lexicon.BE:
            continue  # "got recast": the passive's auxiliary; the verb marks it received
        if w in lexicon.FILTER_WORDS and nxt == "'s":
            continue  # "the root's author": the root cast, not a filter on the casts
        if lexicon.FILTER_WORDS.get(w) == "reply" and _names_casts(nxt):
            # "parent casts": casts that have replies, or that start threads? Not said
            r.unknown.append(w)
            unknown_at.append(i)
            continue
        if (
            lexicon.FILTER_WORDS.get(w) in KIND_FILTERS
            and (at := _directed_at(words, i, verbs + nouns)) is not None
        ):
            # "replies to top-level casts", "recasts of original posts": what they went to
            top_level = lexicon.FILTER_WORDS[w] == "top_level"
            negated = bool(negate) or _negated_before(words, at)
            conditions.append(Condition("to_reply", negated=top_level != negated))
            negate, term_next = 0, False
            continue
        if w in lexicon.FILTER_WORDS and w not in lexicon.DIMENSION_WORDS:
            if (
                lexicon.FILTER_WORDS[w] == "has_link"
                and w.startswith("embed")
                and any(lexicon.FILTER_WORDS.get(x) == "has_image" for x in words)
            ):
                continue  # "a picture embedded": the image filter already says it
            conditions.append(Condition(lexicon.FILTER_WORDS[w], negated=bool(negate)))
            negate, term_next = 0, False
            continue
        if w in lexicon.DIMENSION_WORDS and w not in ("who", "whose"):
            dim = lexicon.DIMENSION_WORDS[w]
            if (
                dim == "user"
                and nxt.lstrip("@") in ctx.users
                and (nxt.startswith("@") or not lexicon.known(nxt))
                # "distinct authors pcdkd …": counted, the people are no name's title
                and _introducer(words, i, ctx) not in ("count", "distinct")
            ):
                continue  # "the account emmabwaldron": the user named next, not a grouping
            # "hourly", "daily" group by themselves
            how = "per" if w in lexicon.PER_ADJECTIVES else _introducer(words, i, ctx)
            # "the cast by billzh that received the most replies": past its author
            beyond = words[i + 3] if nxt in ("by", "from") and i + 3 < len(words) else nxt
            if (
                how == "plain"
                and beyond in ("with", "that", "which")
                and ranked
                and _number(prev) is None
            ):
                # "the cast with the most replies", "users with 10+ casts", "the cast that
                # drew the most replies" (after a number the word is what is counted: "at
                # least one cast with a link")
                how = "which"
            if w in lexicon.CAST_WORDS:
                if w in lexicon.METRIC_VERBS and lexicon.DIMENSION_WORDS.get(prev) == "user":
                    verbs.append("casts")  # "when did the most unique users cast": the verb
                    continue
                if how == "order" and any(d != "cast" for d, _, _ in groups):
                    nouns.append("casts")  # "the hour with most cast": the casts ranked
                    continue
                if how in ("which", "order", "per"):
                    groups.append(("cast", how, w))
                else:
                    nouns.append("casts")
                continue
            if (
                dim == "user"
                and nxt == "'s"
                and _names_casts(words[i + 2] if i + 2 < len(words) else "")
            ):
                received = True  # "which user's casts were recast": what their casts got
            if dim == "user":
                if people(w, how):
                    counted_users = True
                    if w in lexicon.AUTHOR_WORDS:
                        nouns.append("casts")  # "unique posters": people who cast
                continue  # a plain "people" is whoever acts: no restriction
            if dim == "channel" and how == "plain":
                conditions.append(Condition("channel", negated=bool(negate)))
                continue
            if (
                dim == "thread"
                and how == "plain"
                and w in ("thread", "conversation")
                and prev in ("the", "that", "this")
                and i > 1
                and words[i - 2] in ("in", "from", "of")
            ):
                # "how many casts in that thread": a thread the question does not name
                r.problem = f"the question does not say which {w} it means"
                return r
            if dim == "thread" and (how in ("plain", "count") or "top_level_casts" in verbs):
                # threads counted are the casts that start them
                if "top_level_casts" not in verbs:
                    nouns.append("top_level_casts")
                threads_counted = threads_counted or how == "count"
                threads_named = True
                continue
            if dim == "thread" and how == "distinct":
                threads_counted = True  # "how many distinct threads contain a reply by dwr"
                threads_named = True
                # the word says the threads are distinct, not the people named after them
                distinct = False
                nouns.append("top_level_casts")
                continue
            groups.append((dim, how, w))
            continue
        if (
            w in ("hashtag", "hashtags")
            and (not nxt or nxt in lexicon.FILLER or nxt in lexicon.FUNCTION_WORDS)
            and not any(c.filter == "hashtag" for c in conditions)
            and any(_names_casts(x) for x in words)
        ):
            # "casts that use a hashtag": casts carrying one (a hashtag named after the word
            # is a term: "the hashtag ethdenver")
            conditions.append(Condition("has_hashtag", negated=bool(negate)))
            negate = 0
            continue
        if (
            lexicon.METRIC_NOUNS.get(w) == "replies"
            and (at := _directed_at(words, i, verbs + nouns)) is not None
        ):
            # "replies to other replies", "recasts of replies", "recast replies": what the
            # replies or reactions named before went to
            negated = bool(negate) or _negated_before(words, at)
            conditions.append(Condition("to_reply", negated=negated))
            negate, term_next = 0, False
            continue
        if w in lexicon.METRIC_NOUNS:
            metric_name = lexicon.METRIC_NOUNS[w]
            if metric_name == "following" and (
                prev in lexicon.BE or lexicon.DIMENSION_WORDS.get(prev) == "user"
            ):
                follow_at = i  # "people are following dwr": the verb, dwr is followed
            if w in lexicon.OWN_PARTICIPLE and (
                prev in lexicon.BE
                or _inverted_passive(words, i, user_at)
                # "the most recast users" (not "first recast who": who did it)
                or (lexicon.DIMENSION_WORDS.get(nxt) == "user" and nxt not in ("who", "whose"))
            ):
                received = True  # "how many times was dwr recast": the verb, passive
            if negate and prev in lexicon.COUNT_NOUN:
                negate = 0  # "the people, not the number of replies": not what is counted
                continue
            if which_of and prev == "'s" and metric_name == "casts":
                groups.append(("cast", "which", w))  # "which of dwr's casts …"
                continue
            if owned and prev in lexicon.COPULA and w.endswith("s") and metric_name != "casts":
                # "how many of dwr's casts are replies": a plural noun after the copula says
                # what the casts are ("were recast", "got replies": what they received)
                received = owned = False
            if (
                metric_name == "replies"
                and negate
                and any(x in lexicon.SELF for x in words[i + 1 : i + 4])
            ):
                others, negate = True, 0  # "not counting his replies to himself"
            elif metric_name == "replies" and negate:
                conditions.append(Condition("reply", negated=True))
                negate = 0
            else:
                casts_left_out = casts_left_out or (metric_name == "casts" and bool(negate))
                nouns.append(metric_name)
            if w in lexicon.TERM_MARKERS:
                term_next = mention_as_term = True  # "mentions denver": a term
            continue
        if (
            w == "followed"
            and nxt == "by"
            and i + 2 < len(words)
            and words[i + 2].lstrip("@") in ctx.users
        ):
            verbs.append("following")  # "the accounts followed by dwr": whom dwr follows
            continue
        if w in lexicon.METRIC_VERBS:
            metric_name = lexicon.METRIC_VERBS[w]
            if metric_name == "following":
                follow_at = i
            if w in lexicon.TERM_MARKERS:
                term_next = True  # "mention denver": a term, unless a user follows
                mention_as_term = True
            if negate and w.endswith("ing") and metric_name in COMPLEMENT:
                # "who posted the most without replying", "top casters, not counting starting
                # threads": that kind of cast left out, as "without replies" leaves it out
                kind = next(f for f, m in KIND_FILTERS.items() if m == metric_name)
                conditions.append(Condition(kind, negated=True))
                set_aside.append(metric_name)
                negate = 0
                continue
            verbs.append(metric_name)
            if (
                metric_name != "casts"
                and not w.endswith("ing")  # "who was recasting the most": the progressive
                and (prev in lexicon.BE or _inverted_passive(words, i, user_at))
            ):
                received = True  # passive: "were recast", "was mentioned"
            if w.endswith("ed") and nxt in lexicon.DIMENSION_WORDS and metric_name != "casts":
                received = True  # a participle before its noun: "the most reshared authors"
            continue
        if w in lexicon.TERM_MARKERS:
            term_next = True
            term_forced = w in lexicon.STRONG_TERM_MARKERS
            continue
        if w == "or":
            # "a cast or reply" is any cast; "dwr or briang" names two users
            union = union or nxt in lexicon.METRIC_NOUNS or nxt in lexicon.METRIC_VERBS
            continue
        if (w in lexicon.PER or w in lexicon.EACH) and any(
            x in lexicon.SPANS for x in words[i + 1 : i + 3]
        ):
            r.problem = "a breakdown needs what it is by (per hour, per day, per user)"
            r.asks_number = True
            return r
        if term_next and w in lexicon.PLATFORM_NAMES:
            # the platform's name is filler ("casts on farcaster") but where a term stands it
            # is the term: "who mentions farcaster the most"
            conditions.append(Condition("term", w, negated=bool(negate)))
            if mention_as_term:
                verbs = [v for v in verbs if v != "mentions"]
                nouns = [n for n in nouns if n != "mentions"]
            term_next = mention_as_term = False
            continue
        if w in lexicon.FILLER or w in lexicon.EACH or w in lexicon.PER or w in lexicon.QUESTION:
            continue
        if term_next:
            conditions.append(Condition("term", w, negated=bool(negate)))
            if mention_as_term:
                verbs = [v for v in verbs if v != "mentions"]
                nouns = [n for n in nouns if n != "mentions"]
            term_next = mention_as_term = False
            continue
        if w in lexicon.ANY_SITE and (how := _introducer(words, i, ctx)) in (
            "which",
            "per",
            "each",
            "order",
        ):
            # "which site is linked most", "links per website": the domain links go to
            groups.append(("domain", how, w))
            continue
        if w in lexicon.ANY_SITE and any(
            lexicon.FILTER_WORDS.get(b) == "has_link" for b in words[max(0, i - 4) : i]
        ):
            continue  # "links to websites": a link goes to a site, so says nothing more
        if _names_site(words, i):
            conditions.append(Condition("site", w, negated=bool(negate)))
            negate = 0
            continue
        if w in lexicon.SITE_NOUNS and i > 0 and _names_site(words, i - 1):
            continue  # "a youtube video": the site said it
        r.unknown.append(w)
        unknown_at.append(i)
        before = [x for x in words[max(0, i - 3) : i] if x not in lexicon.FILLER]
        if r.by_unknown is None and before and before[-1] in lexicon.PER | lexicon.EACH:
            r.by_unknown = w  # "break down the casts by the client application"

    if never_cast:
        lacking.append("casts")  # "people who never posted"
    share_base = tuple(c.filter for c in conditions[share_mark:base_end]) if base_end else ()
    if share_at < user_at < base_end_at:
        # "what percentage of dwr's casts were posted after 3am": the user named in the
        # whole is whose casts the whole counts
        share_base = (*share_base, "user")
    sites = [c for c in conditions if c.filter == "site" and not c.negated]
    if sites:
        # "youtube.com or youtu.be links": one site filter, any of them; a link to a site is
        # a link, so has_link says nothing more
        conditions = [c for c in conditions if c not in sites and c.filter != "has_link"]
        conditions.append(Condition("site", ",".join(dict.fromkeys(c.value for c in sites))))
    posted = "casts" in verbs  # "casts posted 4-5am": the time may be the casts'
    r.counts = r.asks_number
    r.asks_number = r.asks_number or bool(order) or having is not None
    r.asks_number = r.asks_number or any(how in ("per", "each") for _, how, _ in groups)
    r.metrics = list(dict.fromkeys(verbs + nouns + set_aside))
    r.users = list(dict.fromkeys(users))
    if r.unknown:
        return r
    if set_aside and not verbs and not nouns and not any(w in lexicon.AUTHOR_WORDS for w in words):
        # "who is not replying the most": what is left out is named, what is counted is not
        # ("the top posters without replying" count casts)
        r.problem = f"the question names no metric but the {set_aside[0]} it leaves out"
        return r

    moment_of: Literal["first", "last"] | None = None
    if moment is not None:
        # "when was the first reply": the moment of the casts the nouns narrow down
        narrowing = {"replies": Condition("reply"), "top_level_casts": Condition("top_level")}
        named_now = list(dict.fromkeys(verbs + nouns))
        beyond = [n for n in named_now if n not in narrowing and n != "casts"]
        acted_on = any(c.filter == "to_named_cast" for c in conditions)
        if not beyond and (received or acted_on) and "replies" in named_now:
            # "when was the last reply to dwr": one dwr received; "the earliest response to
            # jithinraj's cast '…'": the replies to it
            beyond = ["replies"]
        if beyond and _names_casts(moment_noun):
            # "who liked the most recent cast": the cast is first or last, not the like
            r.problem = f"the {beyond[0]} of the first or last cast is not a query the layer has"
            return r
        if len(beyond) == 1:
            # "who did the last recast", "when did dwr get his first like": that metric's
            # first or last row
            moment_of = "first" if moment == "first_cast_at" else "last"
        elif beyond:
            r.problem = f"the question names more than one metric ({', '.join(beyond)})"
            return r
        else:
            conditions.extend(narrowing[n] for n in named_now if n in narrowing)
            verbs, nouns = [], [moment]
        names_user = any(lexicon.DIMENSION_WORDS.get(w) == "user" for w in words)
        if asks_who and not asks_when and names_user and all(d != "user" for d, _, _ in groups):
            groups.append(("user", "which", "who"))  # "the user who did the last recast"
        if any(d == "user" and how == "which" for d, how, _ in groups):
            order = "desc" if moment == "last_cast_at" else "asc"  # "who posted the last cast"
    users_with: tuple[tuple[str, bool], ...] = ()
    # people named by what they do are people too: "which repliers have no top-level casts"
    about_users = counted_users or any(
        lexicon.DIMENSION_WORDS.get(w) == "user" or w in lexicon.AGENT_NOUNS for w in words
    )
    if never_said and not (lacking or never_filters):
        r.problem = "the question says 'never' of nothing the layer counts"
        return r
    if about_users and never_filters:
        # "users who never posted a link" are not the authors of casts without one
        r.problem = f"users who never posted casts with a {never_filters[0]} are not a metric"
        return r
    if about_users and moment is None:
        # "people who only replied", "authors who never started a thread", "users who both
        # cast and recast": users with (or without) rows of a second metric
        sets = _user_sets(text, verbs + nouns, conditions, lacking, users)
        if isinstance(sets, str):
            r.problem = sets
            return r
        # ("the most followed account": a profile figure has no made and received)
        if sets is not None and received and any(layer.METRICS[m].received for m in verbs + nouns):
            # "users who both replied and were mentioned": which metric is received is
            # not read
            r.problem = "users told apart by a metric they received are not a query"
            return r
        if sets is not None:
            primary, conditions, users_with = sets
            verbs, nouns = [], [primary]
            if counted_users:
                count_over, counted_users = "user", False
                groups = [g for g in groups if g[0] != "user"]  # "the authors … who posted"
            elif not any(d == "user" and how != "plain" for d, how, _ in groups):
                groups.append(("user", "which", "users"))  # "authors with only replies"
    elif lacking:
        r.problem = f"'never' names no users ({', '.join(lacking)})"
        return r
    authors_each = False
    # ("at least one" is true of every group counted: "posts with at least one #hashtag")
    passing = having is not None and having not in ((">=", 1.0), (">", 0.0), (">=", 0.0))
    over = _counted_group(words) if passing and count_over is None else None
    if over is not None:
        # "how many threads got to more than 10 casts", "how many casts tag at least 2
        # people", "how many hours had over 100 casts": the groups counted are what the count
        # names, the threshold is on a figure of each (not on the people after the number)
        count_over, counted_users = over, False
        # "threads with 5 or more different people posting": the figure of each thread is
        # its distinct authors, not its casts
        authors_each = over != "cast" and _threshold_on_people(words)
        drop = {"thread": "top_level_casts", "cast": "casts"}.get(over)
        if drop in nouns:
            nouns.remove(drop)  # the counted word named the groups, not a metric
        groups = [g for g in groups if g[0] != over and g[0] != "user"]
    # The metric: a specific one beats plain casts (replies, recasts are casts too).
    named = list(dict.fromkeys(verbs + nouns))
    specific = [m for m in named if m != "casts"]
    if union and "casts" in named and set(specific) <= {"replies", "top_level_casts"}:
        specific = []  # "a cast or reply" is any cast
    if (kind := _kind_reacted_to(words, specific)) is not None:
        # "how many likes did replies get", "recasts that top-level casts got": the reactions
        # to casts of that kind, not a second metric
        conditions.append(Condition(next(f for f, m in KIND_FILTERS.items() if m == kind)))
        specific = [m for m in specific if m != kind]
    if "engagement" in specific:
        # "the most interaction (replies, recasts and likes together)": the parts it sums
        specific = [m for m in specific if m not in ENGAGEMENT_PARTS]
    parts = set(specific)
    if {"likes", "recasts"} <= parts <= {"likes", "recasts", "reactions"}:
        specific = ["reactions"]  # "likes and recasts", "reactions (likes and recasts)"
    elif (
        "replies" in parts
        and ("reactions" in parts or {"likes", "recasts"} <= parts)
        and parts <= ENGAGEMENT_PARTS
        and (received or any(d == "cast" for d, _, _ in groups))
    ):
        # "the cast that drew the most replies and reactions": what engagement sums, received
        # (replies and reactions a user made are two metrics)
        specific = ["engagement"]
    if "cast_length" in specific and set(specific) - {"cast_length"} <= set(COMPLEMENT):
        # "the average reply length": the length of those casts
        for kind in set(specific) - {"cast_length"}:
            filter_name = next(f for f, m in KIND_FILTERS.items() if m == kind)
            conditions.append(Condition(filter_name))
        specific = ["cast_length"]
    for general, narrow in (("reactions", "likes"), ("reactions", "recasts")):
        if general in specific and narrow in specific:
            specific.remove(general)
    if (
        threads_named
        and cast_in
        and specific == ["top_level_casts"]
        and "top_level_casts" not in verbs
    ):
        # "active threads by hour", "the users who posted in the most threads": the threads
        # the casts are in, not the casts that start them
        specific = ["threads"]
    if (
        threads_counted
        and specific == ["top_level_casts"]
        and not verbs
        and not users
        and not re.search(r"\bnew (?:threads?|conversations?)\b", text)
    ):
        # "how many threads are there", "the number of distinct conversations": every thread
        # the casts are in, also those whose root is older than the data (a thread started,
        # posted or new is its root cast)
        specific = ["threads"]
    if threads_counted and set(specific) == {"replies", "top_level_casts"}:
        # "how many threads did dwr reply in": the threads of those replies, not the ones
        # they started
        specific = ["threads"]
        conditions.append(Condition("reply"))
    among_doers = False
    figures = [m for m in specific if not _timed(m)]
    deeds = [m for m in specific if m not in figures]
    if (
        len(figures) == 1
        and len(deeds) == 1
        and not users_with
        and not users
        and order
        and _ranked_metric(text) == figures[0]
        and any(
            _metric_of(w) == deeds[0]
            and (w in lexicon.AGENT_NOUNS or (k > 0 and words[k - 1] in _WHO))
            for k, w in enumerate(words)
        )
    ):
        # "the recaster with the most followers", "of the people who recast, who has the
        # biggest following": a profile figure ranked among the users who did the other
        # (the casts named are what they did it to, "at least one" is true of them all)
        users_with, specific, among_doers = ((deeds[0], False),), figures, True
        if having in ((">=", 1.0), (">", 0.0)):
            having = None
        if not any(d == "user" and how != "plain" for d, how, _ in groups):
            groups = [g for g in groups if g[0] != "cast"]
            groups.append(("user", "which", "who"))
    # "how many followers does the top recaster have", "how many replies did the user with
    # the most followers write": two metrics, one ranking the users and one counted for the
    # one it puts first ("who is the top recaster, and how many followers …" also asks who)
    top_by = _ranked_metric(text) if len(specific) == 2 and order and count_asked else None
    if (
        top_by in specific
        and _one_person(words, numbers)
        and not (users or users_with or received)
        and all(d == "user" and word not in lexicon.WH_WORDS for d, _, word in groups)
    ):
        specific = [m for m in specific if m != top_by]
    else:
        top_by = None
    if len(specific) > 1:
        r.problem = f"the question names more than one metric ({', '.join(specific)})"
        return r
    metric_name = specific[0] if specific else ("casts" if named else None)
    bios = [c for c in conditions if c.filter == "has_bio"]
    if metric_name is None and bios and users and not bios[0].negated and not r.asks_number:
        # "what is dwr's bio", "bio of v": the bio itself, looked up
        metric_name, conditions = "bio", [c for c in conditions if c.filter != "has_bio"]
    elif bios and metric_name is None and order:
        # "who has the longest bio": a bio is text, looked up, not ranked
        r.problem = "a bio is a profile's text: it is looked up, not ranked"
        return r
    elif bios and (metric_name is None or (metric_name == "casts" and counted_users)):
        # "how many profiles have no bio", "authors without a bio": profiles are what has one
        # (of authors only, when the people counted are authors)
        metric_name = "profiles"
    if authors_each and metric_name in (None, "casts"):
        metric_name = "distinct_authors"
    if metric_name == "following" and user_at > follow_at >= 0:
        metric_name = "followers"  # "how many people follow dwr": dwr is followed
    group = _group(groups, order)
    if (
        group == ("cast", "user")
        and metric_name == "mentions"
        and any(d == "cast" and how == "which" for d, how, _ in groups)
    ):
        # "which cast mentions the most users": the people are what each cast is counted by
        group, counted_users = "cast", True
    if group is None and any(w in ("breakdown", "break_down", "distribution") for w in words):
        # "the distribution of casts": by what is not said, and a total is no breakdown
        r.problem = "a breakdown needs what it is by (per hour, per day, per user)"
        r.asks_number = True
        return r
    top_user = None
    one_person = _one_person(words, numbers)
    by_casts = order and metric_name not in (None, "casts") and _ranked_metric(text) == "casts"
    if by_casts and not one_person and metric_name in ("followers", "following"):
        # "the followers of the 3 most active posters": one figure per poster of a ranking
        r.problem = f"the {metric_name} of several users ranked by casts is not a query"
        return r
    if by_casts and one_person and order == "asc":
        # "the least active poster": many users tie at one cast, so none is the one
        r.problem = "the user a ranking puts last ties with many others"
        return r
    if by_casts and one_person:
        # "the follower count of the most active poster": the ranking picks the user, the
        # other metric is asked of them
        top_by = "casts"
    if top_by is not None:
        # a profile figure has no history: the time range is the asked metric's alone
        timed = _timed(top_by)
        if time_range is not None and not timed and not _timed(metric_name):
            # "the followers of the most followed user today": of two profile figures, the
            # time range would be dropped unsaid
            r.problem = f"{metric_name} and {top_by} are snapshots with no history: no time range"
            return r
        top_user = Query(
            top_by,
            "user",
            time_range=time_range if timed else None,
            order=order,  # type: ignore[arg-type]
            limit=1,
        )
        group, order, groups = None, None, []
        if not _timed(metric_name):
            # "the followers of today's top recaster": a profile figure has no history, so
            # the time range is the ranking's alone
            time_range = None
    # "users recast by 3+ different people", "who got recast by at least 3 distinct folks": a
    # threshold on the people who acted on each user's casts
    acted_on = received or any(
        _metric_of(w) in REACTORS and k + 1 < len(words) and words[k + 1] == "by"
        for k, w in enumerate(words)
    )
    if (
        metric_name in REACTORS
        and acted_on
        and counted_users
        and having is not None
        and not users
        and _threshold_on_people(words)
    ):
        metric_name, counted_users, received = f"{REACTORS[metric_name]}_received", False, False
        if group is None and count_asked:
            count_over = "user"  # "how many users were recast by 3+ people"
        elif group is None:
            group = "user"
    per_user = any(d == "user" and how in ("per", "each") for d, how, _ in groups)
    if (
        counted_users
        and having is not None
        and (group is None or (group == "user" and not per_user))
        and not (having[0] == ">=" and having[1] <= 1)
    ):
        # "how many authors posted fewer than 2 casts": the users passing the threshold
        # (counted users are not grouped by user too: "count the posters: users with 3+
        # casts" restates whom it counts)
        count_over, counted_users, group = "user", False, None
        metric_name = metric_name or "casts"
    if counted_users and counts_rows:
        counted_users = False  # the people were how it was asked; the rows are counted
    if counted_users:
        if metric_name in ("followers", "following", "profiles"):
            # "how many accounts does dwr follow": the accounts are what is counted; "how
            # many users have no bio": the profiles
            pass
        elif metric_name in (None, "casts") and (named or time_range or conditions or group):
            metric_name = "distinct_authors"  # "the hour with the most unique authors"
        elif metric_name == "replies" and (received or on_casts_by) and (users or group == "user"):
            metric_name = "repliers_received"  # "how many people replied to timdaub"
        elif metric_name in ("replies", "top_level_casts"):
            # "how many people replied": the distinct authors of those casts
            conditions.append(Condition("reply" if metric_name == "replies" else "top_level"))
            metric_name = "distinct_authors"
        elif metric_name in REACTORS and not received:
            metric_name = REACTORS[metric_name]  # "how many people recast": who did it
        elif metric_name == "mentions" and group == "cast":
            metric_name = "mentioned_users"  # "which cast tags the most people": per cast
        elif metric_name == "mentions" and not received and not users:
            # "how many different people tagged someone": the authors of casts that
            # mention anyone ("how many people were mentioned" counts the handles)
            conditions.append(Condition("has_mention"))
            metric_name = "distinct_authors"
        elif metric_name == "mentions" and not received and len(set(users)) == 1:
            # "how many users mentioned dwr": the authors of casts that mention him
            conditions.append(Condition("mentions_user", users[0]))
            metric_name, users = "distinct_authors", []
        elif metric_name is None:
            metric_name = "profiles"
        else:
            r.problem = f"counting users by {metric_name} is not a metric"
            return r
        if metric_name == "distinct_authors" and len(set(users)) == 1:
            # "how many people did dwr reply to": one author counted is 1; whom they acted
            # on is not a count the layer has
            r.problem = f"counting the users around one user ({users[0]}) is not a metric"
            return r
    if metric_name is None and group and (order or r.asks_number or group == "domain"):
        # "the busiest hour": activity is casts; "which domains did dwr link to": only casts
        # link
        metric_name = "casts"
    if metric_name is None and r.asks_number and conditions:
        metric_name = "casts"  # "how often was #x used": only casts have text and embeds
    if metric_name is None:
        r.problem = "the question names no metric"
        return r
    authors = ("casts" in named and not among_doers) or any(
        w in lexicon.AUTHOR_WORDS for w in words
    )
    if metric_name in ("followers", "following", "profiles") and authors:
        # "how many of the people who cast have over 1,000 followers", "the average
        # following of authors": authors only; "the most followed user with no casts": the
        # profiles that never cast
        left_out = casts_left_out and not any(w in lexicon.AUTHOR_WORDS for w in words)
        conditions.append(Condition("author", negated=left_out))
    m = layer.METRICS[metric_name]
    if group is None and order and m.ranks:
        group = m.ranks  # "the top 10 terms" ranks terms
    if order is None and comparative and group and group != "user":
        order = comparative  # "which day had more casts": the groups compared, most first
    if group is None and order and asks_when and moment is None and "hour" in m.dimensions:
        group = "hour"  # "when were people most active": the hour they were
    if group is None and order and plain_people and not asks_when and top_user is None:
        # "list the people who replied most often": a ranking of the people it names, not
        # one number ("when did people post the most" asks for a time)
        group = "user" if "user" in m.dimensions else None
    if on_casts_by and users:
        received = True
    if (
        average
        and group is None
        and (layer.counts_what_a_cast_got(m) or (received and m.received))
        and any(w in lexicon.CAST_WORDS or w[:-1] in lexicon.CAST_WORDS for w in words)
    ):
        group = "cast"  # "how many replies does a cast get on average": what each cast got
    names_cast = any(c.filter == "named_cast" for c in conditions)  # "the gm post got"
    if received and m.received and (users or group in ("user", "cast") or names_cast or top_user):
        m = layer.METRICS[m.received]
    if group == "cast" and m.name == "replies":
        m = layer.METRICS["replies_received"]  # replies per cast are the replies it got
    if count_over == "cast" and m.received:
        m = layer.METRICS[m.received]  # "casts with over 5 recasts": what each cast got
    if count_over == "cast" and m.name == "mentions":
        m = layer.METRICS["mentioned_users"]  # "casts that tag 2+ people": handles per cast
    if isinstance(group, tuple):
        r.problem = f"the question groups by more than one thing ({', '.join(group)})"
        return r
    if (
        m.name == "mentions"
        and group == "user"
        and (
            others or any(w in lexicon.AUTHOR_WORDS for w in words) or (not received and not users)
        )
    ):
        # mentions per user are per mentioned handle: the authors who mention others
        # ("who tags others the most", "authors with the most casts mentioning someone",
        # "who mentions people the most": a mention made, not received, had ranked the
        # handles) are ranked by their casts that mention anyone; "who was mentioned the
        # most" still ranks the handles
        m, others = layer.METRICS["casts"], False
        conditions = [*conditions, Condition("has_mention")]
    if (
        m.name == "mentions"
        and group is None
        and count_over is None
        and len(users) == 1
        and not share  # a share of such casts is below, its whole named
        and not any(w in lexicon.RECEIVED for w in words)  # "mentions did jayce get"
        and _mentioner(words, user_at)
    ):
        # "how many of jayce's posts tag someone", "how many mentions did jayce make": the
        # user's casts that mention anyone (the user had been read as the one mentioned)
        m, others = layer.METRICS["casts"], False
        conditions = [*conditions, Condition("has_mention")]
    if m.name == "mentions" and share and group is None:
        # "what percentage of casts mention someone": a share of casts is of casts, those
        # that mention anyone (the mentions themselves, one cast holding several, are no
        # part of the casts); the whole is the casts the question names ("of dwr's casts")
        m, others = layer.METRICS["casts"], False
        named = [c.filter for c in conditions] + (["user"] if users else [])
        share_base = tuple(dict.fromkeys(named))
        conditions = [*conditions, Condition("has_mention")]
    if m.name == "mentions" and others and group is None:
        others = False  # "posts that tag other users": whom a cast mentions is someone else
    ranked_one = [w for d, how, w in groups if d == group and how == "order"]
    extreme = None
    if (
        count_asked
        and order
        and isinstance(group, str)
        and ranked_one
        and not any(_plural(w) for w in ranked_one)
        # "…, and which hour was it": the group is asked for too, so the ranking lists it
        and not any(d == group and how == "which" for d, how, _ in groups)
        and not numbers
        and not average
        and count_over is None
        and top_user is None
        and moment is None
    ):
        # "how many casts are in the biggest thread", "the size of the largest thread": the
        # figure of the one group the ranking puts first, a number ("which thread is the
        # biggest" and "the top 3 threads" still list them)
        average, extreme = True, order
    if m.text and (r.asks_number or average or having) and not (users and group == "user"):
        # "how many display names", "the longest bio": a profile's text is no number
        r.problem = f"{m.name} is a profile's text: it is looked up, not counted or ranked"
        return r
    if m.text and not users and group != "user":
        # "what is the display name": whose is not said
        r.problem = f"the question does not say whose {m.name} it asks for"
        return r
    if m.mean:
        # "the average cast length": the metric is a mean already, so "average" asks for it
        # ("per user" groups it), not for a mean over groups
        if median:
            r.problem = f"the median of {m.name} is not a figure the layer has (its mean is)"
            return r
        if count_asked and not average:
            # "how many characters did dwr write": a total, not the mean length
            r.problem = f"{m.name} is a mean; a total of it is not a figure the layer has"
            return r
        if group == "cast" and any(d == "cast" and how == "per" for d, how, _ in groups):
            group = None  # "characters per cast": the mean over the casts is the figure
        if group not in (None, "cast") and order and not average:
            # "who wrote the longest cast": one cast's length, not a user's mean
            r.problem = f"{m.name} ranks casts; ranking {group}s by it needs 'on average'"
            return r
        # ("how many characters are in the longest cast": the largest cast's figure stays)
        average = extreme is not None
    average_over = None
    if average and group is None and m.source == "users":
        group = "user"  # "the average follower count of authors": a profile is one user
    if average:
        if group is None:
            r.problem = "an average needs what it is per (per user, per hour, per day)"
            return r
        average_over, group, order = group, None, None
    several = len(set(users)) > 1
    if several and m.name == "mentions" and _BOTH.search(text):
        # "casts mentioning both @noun40 and @purple": the casts naming every handle
        m, several = layer.METRICS["casts"], False
        conditions = [*conditions, *(Condition("term", f"@{u}") for u in dict.fromkeys(users))]
        users = []
    if several and which_one and group == "cast":
        group = None  # "between dwr and jayce, which one authored more casts": a user
    if several:
        # "dwr, jayce and ccarella": each named user's figure ("who cast more, X or Y": in
        # order, the most first)
        if group not in (None, "user") or average_over or count_over:
            r.problem = f"the question names more than one user ({', '.join(users)})"
            return r
        group, order = "user", order or comparative
        users = [",".join(dict.fromkeys(users))]
    if users and group == "user" and not several and m.name == "mentions" and not received:
        # "which users mentioned dwr", "who tagged dwr the most": the authors of the casts
        # that mention the user named, who is mentioned, not an author
        m = layer.METRICS["casts"]
        conditions = [Condition("mentions_user", users[0]), *conditions]
        users = []
    if (
        share
        and having is not None
        and (group is None or (group == "user" and not per_user))
        and count_over is None
        and _share_of_people(words)
    ):
        # "what share of the authors posted exactly one cast", "the percentage of repliers
        # who replied 5+ times": the users passing the threshold, out of those with any
        count_over, group = "user", None
    if users and count_over == "user" and group is None and not several:
        # "how many users replied to dwr more than twice": the repliers counted, by their
        # replies to dwr; "how many users did dwr reply to more than twice": the users his
        # replies went to. Grouped by the user named, either was a count of one group.
        made = next((x for x in layer.METRICS.values() if x.received == m.name), None)
        if m.name == "mentions":
            # "how many users mentioned dwr more than once": authors, by their casts that
            # mention him
            m, conditions = (
                layer.METRICS["casts"],
                [Condition("mentions_user", users[0]), *conditions],
            )
            users = []
        elif made is not None and made.to is not None:
            m, conditions = made, [Condition("to_user", users[0]), *conditions]
            users = []
        elif m.to is not None and "to_user" in m.dimensions:
            count_over = "to_user"
        else:
            r.problem = "a count of users restricted to one user is not a query the layer has"
            return r
    if users and group == "user" and not several:
        made = next((x for x in layer.METRICS.values() if x.received == m.name), None)
        # the user receives when named as such: "replied to X", "on X's posts" (in "whose
        # casts did X recast", X is the one who recast)
        before = words[user_at - 1] if user_at > 0 else ""
        receives = (
            before in ("to", "on", "at")
            or before.endswith("_to")  # "replied_to"
            # "the top recaster of dwr": whom the agent acted on
            or (before == "of" and user_at > 1 and words[user_at - 2] in lexicon.AGENT_NOUNS)
            or (user_at + 1 < len(words) and words[user_at + 1] == "'s")
            or bool(on_casts_by)  # "responses to casts by X"
            or _reacted_to(words, user_at)  # "who recast dwr the most"
        )
        if made is None and m.to is not None:
            made = m  # "the top recaster of dwr": the metric named is already the one made
        actor = made or m
        if not receives and "to_user" in actor.dimensions:
            # "whose casts did greg recast", "which users did dwr reply to": the users the
            # named user acted on
            m, group = actor, "to_user"
        elif made is None or made.to is None or not receives:
            r.problem = "a ranking of users restricted to one user is not a query the layer has"
            return r
        else:
            # "who replied to jithinraj the most": the repliers ranked, their replies to him
            m, users = made, []
            conditions = [Condition("to_user", r.users[0]), *conditions]
    conditions = [Condition("user", users[0]), *conditions] if users else conditions
    conditions += [Condition("user", name, negated=True) for name in dict.fromkeys(excluded)]
    if others and m.name in ("followers", "following"):
        others = False  # "follow the most other accounts": whom one follows is someone else
    if others:
        conditions.append(Condition("others"))
    elif self_words:
        conditions.append(Condition("others", negated=True))
    if having is not None and having[0] == ">=" and having[1] <= 1 and group is None:
        having = None  # "at least one cast": true of everyone counted
    if having is not None and group is None and count_over is None:
        r.problem = "a threshold needs something to compare (e.g. users)"
        return r
    if (
        having is not None
        and having_of in _OWN_COUNTS
        and m.name.removesuffix("_received") in _OWN_COUNTS
        and having_of != m.name.removesuffix("_received")
    ):
        # "the author with exactly 1 cast with the most followers", "how many users with at
        # least 2 casts posted replies": a threshold on one count is no threshold on another
        # (_among_reading reads the two apart where the question's shape lets it)
        r.problem = f"the threshold on {having_of} is not one on {m.name}"
        return r
    plural_casts = any(lexicon.METRIC_NOUNS.get(w) == "casts" and w.endswith("s") for w in words)
    if order and group is None and "cast" in m.dimensions and m.name != "casts" and plural_casts:
        group = "cast"  # "the most popular casts": the casts ranked by it
        if m.name == "replies":
            # "which casts got the most replies": the replies each cast got (by their own
            # hash, each reply counted itself once)
            m = layer.METRICS["replies_received"]
    kinds = {c.filter for c in conditions if c.filter in KIND_FILTERS and not c.negated}
    if m.name in ("replies", "replies_received") and kinds == {"top_level"} and received:
        # "how many replies did the top-level casts get": no reply is top-level, so the kind
        # is of the casts that got them, the casts the replies went to
        conditions = [
            Condition("to_reply", negated=True) if c.filter == "top_level" else c
            for c in conditions
        ]
        kinds = set()
    if (m.name, kinds) in (("replies", {"top_level"}), ("top_level_casts", {"reply"})):
        # "how many replies did the top-level casts get": replies are no top-level casts, and
        # the kind of cast a reply went to is not a filter the layer has
        r.problem = f"{m.name} that are {kinds.pop()} casts are none: what they went to is not read"
        return r
    if order and group is None and top_user is None and moment_of is None and not average:
        # "what are the top casts": a ranking of nothing is one total, which it did not ask
        r.problem = "a ranking needs what it ranks (users, hours, days, casts)"
        return r
    if m.name == "casts" and group == "cast" and order:
        # "which cast performed best": every cast is one cast, so the ranking says nothing;
        # what it would rank by (replies, recasts, engagement) is not said
        r.problem = "ranking casts needs what they are ranked by (replies, recasts, reactions)"
        return r
    # "the most recast cast posted 4-5am", "posts that went up between 4 and 5, which one got
    # reshared": the time range says when the casts ranked were posted
    cast_time = bool(time_range and group == "cast" and posted and m.cast not in (None, "t.hash"))
    limit = None
    if group and order:
        limit = min(numbers[0], MAX_TOP_N) if numbers else DEFAULT_TOP_N
    elif len(numbers) > pronouns:
        # a number that is neither a threshold nor how many to list ("users who posted
        # between two and five casts", "users with one cast") says something the query
        # would leave out ("one" is also a pronoun: "start a new thread rather than reply to
        # one")
        r.problem = f"the number {numbers[0]} is not a threshold or a count to list"
        return r
    if group and having and not order:
        order = "desc"
    r.query = Query(
        m.name,
        group,
        tuple(dict.fromkeys(conditions)),  # "a link or URL" says the link once
        time_range,
        order,  # type: ignore[arg-type]
        limit,
        having,  # type: ignore[arg-type]
        average_over,
        median,
        count_over,
        share,
        share_base,
        users_with,
        moment_of,
        cast_time,
        top_user,
        extreme=extreme,
    )
    return r


def _mentioner(words: list[str], user_at: int) -> bool:
    """Whether the user at ``user_at`` is the one who mentions, a word of mentioning after
    them: "jayce's posts tag", "did jayce post … that mention", "casts by jayce mention",
    "mentions did jayce make"; not "casts that mention jayce", whom they mention."""
    if user_at < 0:
        return False
    after = words[user_at + 1 :]
    owner = bool(after) and after[0] == "'s"
    subject = user_at > 0 and words[user_at - 1] in ("did", "does", "do", "has", "have", "by")
    # "jayce - how many casts where he mentioned someone": the user named, then "he" mentions
    said_again = any(
        w in ("he", "she", "they") and _metric_of(x) == "mentions"
        for w, x in itertools.pairwise(words)
    )
    return (owner or subject or said_again) and any(_metric_of(w) == "mentions" for w in words)


# Words that open a relative clause about people: "the users who recast".
_WHO = frozenset(["who", "that"])
# Everyone, before a relative clause that says who: "the followers of everyone who posted".
# Metrics whose rows are directed at a cast, which may be a reply or a top-level cast.
DIRECTED = frozenset(["replies", "reactions", "recasts", "likes"])
# Words between a preposition and the cast it names: "to another reply", "on the replies".
_TARGET_DETERMINERS = frozenset(
    ["a", "an", "the", "another", "other", "any", "some", "his", "her", "their", "its"]
)


def _directed_at(words: list[str], i: int, named: list[str]) -> int | None:
    """Where the words start that make the word at ``i`` (a reply, a top-level cast) name
    what a metric named before it is directed at: "to", "on", "of" or the metric's verb
    before it ("replies to other replies", "recasts on top-level casts", "recast replies",
    "answer another reply"); None when they do not."""
    if not any(m in DIRECTED for m in named):
        return None
    j = i - 1
    while j >= 0 and words[j] in _TARGET_DETERMINERS:
        j -= 1
    if j < 0:
        return None
    before = words[j]
    # "recast replies", "answer another reply": the verb's object
    # (a noun of the same metric is no verb: "…are replies (replies / all casts)")
    reacted = lexicon.METRIC_VERBS.get(before) in DIRECTED and (
        before not in lexicon.METRIC_NOUNS
        or (j == i - 1 and lexicon.METRIC_NOUNS[before] != _metric_of(words[i]))
    )
    # "recasts of replies", "were of replies"; not "the count of replies"
    of = (
        before == "of"
        and j > 0
        and (_metric_of(words[j - 1]) in DIRECTED or words[j - 1] in lexicon.COPULA)
    )
    return j if before in ("to", "on", "replied_to") or of or reacted else None


def _negated_before(words: list[str], j: int) -> bool:
    """Whether a negation stands just before the words at ``j`` ("rather than directly to a
    top-level cast", "not to replies"), filler aside."""
    before = [w for w in words[max(0, j - 3) : j] if w not in lexicon.FILLER]
    return bool(before) and before[-1] in lexicon.NEGATION


# A negation before what people did says they never did it: "users who didn't reply",
# "people with no recasts", "profiles without any casts".
_DEED_NEGATION = frozenset(["not", "don't", "doesn't", "didn't"])
_NOUN_NEGATION = frozenset(["without", "no"])
# Words between a negation and what it negates: "did not ever post", "without a single reply".
_NEGATED_FILLER = frozenset(["any", "a", "single", "even", "ever", "yet"])
# Words between the people and "without" or "no": "users who have no replies".
_HAVING = frozenset(["with", "who", "that", "have", "has", "had", "having"])


def _undone_by_people(words: list[str], i: int) -> bool:
    """Whether the metric word at ``i`` is negated as a deed of people: a verb after "not"
    ("didn't") whose subject is a word for users ("people who did not post"), or a noun
    right after "without" or "with no" said of users ("authors without replies"). Not
    "which users posted most, excluding replies" or "top posters without replies", where the
    replies are left out of the casts ranked."""
    w = words[i]
    before = [x for x in words[:i] if x not in _NEGATED_FILLER]
    if len(before) < 2:
        return False
    negation = before[-1]
    if negation in _DEED_NEGATION and (w in lexicon.METRIC_VERBS or w == "replied_to"):
        # the subject: the nearest word for users or casts before the negation
        for x in reversed(before[:-1]):
            if _names_casts(x) or x in lexicon.METRIC_NOUNS:
                return False
            if lexicon.DIMENSION_WORDS.get(x) == "user" and x not in ("who", "whose"):
                return True
        return False
    if negation == "without" and w in lexicon.METRIC_VERBS and w.endswith("ing"):
        # "users who recast without ever posting": the gerund is a deed of the people the
        # question is about, past what they did do ("recast casts without posting")
        if any(x in lexicon.ORDER_DESC or x in lexicon.ORDER_ASC for x in words):
            return False
        return any(
            lexicon.DIMENSION_WORDS.get(x) == "user" and x not in ("who", "whose")
            for x in before[:-1]
        )
    if negation in _NOUN_NEGATION and (
        w in lexicon.METRIC_NOUNS or w in lexicon.AGENT_NOUNS or _kind_of_casts(words, i)
    ):
        if any(x in lexicon.ORDER_DESC or x in lexicon.ORDER_ASC for x in words):
            return False
        owner = [x for x in before[:-1] if x not in _HAVING]
        # people named by what they do are people too: "recasters with no casts"
        return bool(owner) and (
            lexicon.DIMENSION_WORDS.get(owner[-1]) == "user" or owner[-1] in lexicon.AGENT_NOUNS
        )
    return False


def _kind_of_casts(words: list[str], i: int) -> str | None:
    """The metric a kind word at ``i`` names with the word for casts after it ("top-level
    casts", "original posts": top_level_casts), or None: what people lack in "repliers with
    no top-level casts", as in "repliers with no casts"."""
    kind = KIND_FILTERS.get(lexicon.FILTER_WORDS.get(words[i], ""))
    return kind if kind and i + 1 < len(words) and _names_casts(words[i + 1]) else None


# Words for what people did in threads rather than started: "active threads", "threads with
# activity".
_ACTIVITY = frozenset(["active", "activity"])


def _casts_in_threads(words: list[str], i: int) -> bool:
    """Whether the word at ``i`` says casts were made in threads, not that threads were
    started: activity ("active threads", "threads had activity"), or a verb of casting
    before "in" and the threads ("posted in the most distinct threads", "taking part in
    different threads") or closing the question ("threads people were casting in?")."""
    w = words[i]
    if _metric_of(w) != "casts":
        return False
    if w in _ACTIVITY:
        return True
    if i + 1 >= len(words) or words[i + 1] not in ("in", "within"):
        return False
    skipped = lexicon.FUNCTION_WORDS | lexicon.DISTINCT | lexicon.ORDER_DESC | lexicon.COUNT
    after = next((x for x in words[i + 2 :] if x not in skipped and _number(x) is None), "")
    return after == "" or lexicon.DIMENSION_WORDS.get(after) == "thread"


def _counted_group(words: list[str]) -> str | None:
    """The groups a count names, when a threshold is on them and they are not users: "how
    many threads …" → "thread", "number of casts …" → "cast", "how many hours …" → "hour";
    tersely, "casts with at least 2 mentions" → "cast". None when the count names users, a
    metric other than casts, or nothing, or when users stand between the groups and the
    threshold ("how many casts by users with over 1000 followers": the users pass it)."""
    at = None
    if words and lexicon.METRIC_NOUNS.get(words[0]) == "casts" and words[0].endswith("s"):
        at, over = 0, "cast"  # tersely, how many, as "casts w/ pics" is
    for i, w in enumerate(words[:-1]):
        if at is not None:
            break
        if w not in lexicon.COUNT_NOUN:
            continue
        at = next((j for j in range(i + 1, len(words)) if words[j] not in lexicon.DISTINCT), i)
        # "how many top-level casts got 5+ replies", "how many original posts …": the kind
        # of cast stands before the noun that names the groups
        while at + 1 < len(words) and lexicon.FILTER_WORDS.get(words[at]) == "top_level":
            at += 1
        nxt = words[at]
        if lexicon.METRIC_NOUNS.get(nxt) == "casts" or nxt in lexicon.CAST_WORDS:
            over = "cast"
        elif (dim := lexicon.DIMENSION_WORDS.get(nxt)) in ("thread", "hour", "day", "channel"):
            over = dim
        else:
            return None
    if at is None:
        return None
    threshold = next(
        (j for j in range(at + 1, len(words)) if words[j] in lexicon.COMPARE), len(words)
    )
    if any(lexicon.DIMENSION_WORDS.get(x) == "user" for x in words[at + 1 : threshold]):
        return None
    return over


def _threshold_on_people(words: list[str]) -> bool:
    """Whether the threshold of a count of groups is a number of people: "how many threads
    have at least 5 different people", "threads with 5 or more authors"."""
    at = next((i for i, w in enumerate(words) if w in lexicon.COMPARE or w.isdigit()), None)
    if at is None:
        return False
    for w in words[at:]:
        if w in lexicon.COMPARE or w in lexicon.DISTINCT or _number(w) is not None:
            continue
        # "3+ distinct recasters": people named by what they do are people too
        user_word = lexicon.DIMENSION_WORDS.get(w) == "user" and w not in ("who", "whose")
        return user_word or w in lexicon.AGENT_NOUNS
    return False


# What stands before a SELF word (or its possessive) that says the user acted on their own.
_TO_SELF = frozenset(["to", "on", "under"])


def _to_self(word: str, owned: bool = False) -> bool:
    """Whether ``word`` directs an act at what follows: "to", "on", "under", or a verb the
    tokenizer joined to its "to" ("replied_to themselves"); before a possessive (``owned``)
    also the verb of an act done to someone's cast ("liked their own casts", "recast his own
    posts"; "replies themselves" is no act on them)."""
    directed = lexicon.METRIC_VERBS.get(word) if owned else None
    return (
        word in _TO_SELF
        or word.endswith("_to")
        or (directed is not None and layer.METRICS[directed].to is not None)
    )


def _plural(word: str) -> bool:
    """Whether a word for groups names several ("threads", "people"), not one ("thread")."""
    return word.endswith("s") or word in ("people", "ppl", "crowd")


# A clause closing a question that says what it counts: "…? counting casts", "…, just
# counting posts" (not "not counting replies", which leaves them out).
_COUNTING = re.compile(r"[?.!;,:]\s*(?:just\s+|only\s+)?counting\s+(?:the\s+)?(\w+)\s*[?.!]*$")
# What stands before the words naming a thread or cast: "the everyday wallet thread", "his
# livestream thread", "ccarella's BuilderDAO cast".
NAMING = frozenset(["the", "that", "this", "his", "her", "their", "its", "'s"])
# "the thread rooted at the cast 'gm'" → "'gm' thread": the quote before the noun it names
_ROOTED = re.compile(
    r"\b(threads?|conversations?)\s+(?:that\s+)?(?:rooted|started|starting|beginning|began|"
    r"begins|starts)\s+(?:at|with|from|by)\s+(?:the\s+)?(?:cast\s+)?(\"[^\"]+\"|'[^']+')"
)
_QUOTE_AFTER = re.compile(r"\b(cast|post|message|thread|conversation)\s+(\"[^\"]+\"|'[^']+')")
# Requests for the rows themselves: "list the distinct authors whose …" names them.
LISTING = frozenset(["list", "show", "name", "display"])
# The two kinds of casts: a user's casts are only replies when they started no thread.
KIND_FILTERS = {"reply": "replies", "top_level": "top_level_casts"}
REACTION_METRICS = frozenset(["likes", "recasts", "reactions"])


def _kind_reacted_to(words: list[str], specific: list[str]) -> str | None:
    """The kind of cast (replies, top-level casts; KIND_FILTERS) whose reactions ``words``
    count when they name a reaction metric and that kind as the casts that got them, or None:
    the kind after the reactions, with a verb of getting after it ("how many likes did
    replies get") or "on"/"to" before it ("likes on replies"). Two metrics joined ("likes and
    replies") stay two."""
    reactions = [m for m in specific if m in REACTION_METRICS]
    kinds = [m for m in specific if m in KIND_FILTERS.values()]
    if len(specific) != 2 or len(reactions) != 1 or len(kinds) != 1:
        return None
    at = {m: [k for k, w in enumerate(words) if _metric_of(w) == m] for m in specific}
    if not at[reactions[0]] or not at[kinds[0]]:
        return None
    first, kind_at = at[reactions[0]][0], at[kinds[0]][0]
    between = words[first + 1 : kind_at]
    if kind_at < first or any(w in ("and", "or", "vs", "versus", "plus", ",") for w in between):
        return None
    after = words[kind_at + 1 : kind_at + 3]
    if any(w in lexicon.RECEIVED for w in after) or (between and between[-1] in ("on", "to")):
        return kinds[0]
    return None


COMPLEMENT = {"replies": "top_level_casts", "top_level_casts": "replies"}
# Not "only" beside the people it restricts: "authors only", "only the authors" are whom a
# figure is over, not what they alone did.
_ONLY = re.compile(r"\b(?:only|solely|exclusively|nothing but|all of (?:whose|their))\b")
_PEOPLE_ONLY = re.compile(
    rf"\b(?:{_PEOPLE}),? only\b(?=\s*(?:[,.;:?!]|$))|\bonly (?:the )?(?:{_PEOPLE})\b"
)
_BOTH = re.compile(r"\b(?:both|and also|as well as|at the same time)\b")


def _user_sets(
    text: str,
    named: list[str],
    conditions: list[Condition],
    lacking: list[str],
    users: list[str],
) -> tuple[str, list[Condition], tuple[tuple[str, bool], ...]] | str | None:
    """Users told apart by what else they did: (the metric counted per user, the conditions
    left, users_with) or None when the question does not say. "people who only replied":
    replies by users with no top-level cast; "authors who never replied": casts by users
    with no reply; "users who both cast and recast": casts by users with a recast. A string
    says why the words do not make such a query."""
    kinds = [c for c in conditions if c.filter in KIND_FILTERS]
    rest = [c for c in conditions if c.filter not in KIND_FILTERS]
    # "never started their own thread": the thread is what they never started
    positive = list(
        dict.fromkeys(
            m
            for m in [m for m in named if m in COMPLEMENT]
            + [KIND_FILTERS[c.filter] for c in kinds if not c.negated]
            if m not in lacking
        )
    )
    negative = list(dict.fromkeys(lacking + [KIND_FILTERS[c.filter] for c in kinds if c.negated]))
    others = [m for m in dict.fromkeys(named) if m not in COMPLEMENT and m != "casts"]
    only = _ONLY.search(_PEOPLE_ONLY.sub(" ", text)) is not None
    if only and others and not positive and not lacking:
        # "people who only liked casts": liked and did nothing else, which is not composed
        return f"users who only made {others[0]} are not a metric"
    if only and rest:
        # "users who posted only images": every cast of theirs has one, which the layer
        # does not compose
        return f"users all of whose casts match {rest[0].filter} are not a metric"
    if only and len(positive) == 1 and not negative and not others:
        negative = [COMPLEMENT[positive[0]]]  # "only replied": never started a thread
    # "both" of two users ("casts mentioning both dwr and v") is not of two metrics
    both = _BOTH.search(text) and len(set(named)) == 2 and len(set(users)) < 2
    if (lacking or (only and negative) or both) and users:
        return "users with or without another metric, for a named user, is not a metric"
    snapshot = any(not _timed(m) for m in [*named, *lacking])
    # "the most followed user who never posted": the figure ranks the users told apart
    ranked = _ranked_metric(text) in named and not both and not only
    if snapshot and (lacking or both) and not ranked:
        return "a profile figure tells no users apart by what they did"
    if lacking or (only and negative):
        if set(positive) & set(negative):
            return f"the question says both {positive[0]} and no {positive[0]}"
        if len(positive) > 1 or len(others) > 1:
            return "the question names more than one metric for the users"
        # "people who never posted": every profile is someone who could have
        cast = "casts" if "casts" in named and "casts" not in lacking else "profiles"
        primary = positive[0] if positive else (others[0] if others else cast)
        return primary, rest, tuple((m, True) for m in negative)
    metrics = list(dict.fromkeys(named))
    if both:
        # "both posted and recast": the users of the first with a row of the second
        primary = "casts" if "casts" in metrics else metrics[0]
        other = next(m for m in metrics if m != primary)
        if primary == "casts" and other in COMPLEMENT:
            # "both posted and replied": casting set against replying is starting threads
            # (every user who replied has cast; "both" says the two are apart)
            kind = next(f for f, m in KIND_FILTERS.items() if m == COMPLEMENT[other])
            conditions = [*conditions, Condition(kind)]
        return primary, conditions, ((other, False),)
    return None


# "casts that got no replies", "posts with at least one reply", "unanswered casts": whether
# the casts drew replies is a condition on them (the filter "replied"), not the replies
# counted. Only after a word for casts: "how many replies did dwr get" counts replies.
_REPLY = r"(?:repl(?:y|ies)|responses?|comments?|answers?)"
_GOT = (
    r"(?:(?:that|which|who)\s+)?(?:got|get|gets|getting|received|receive|receives|receiving|"
    r"drew|draw|draws|had|has|have|having|attracted|with|without)"
)
_NO_REPLY = re.compile(
    rf"\b(?:{_GOT}\s+(?:no|zero|0|not a single|not any)\s+{_REPLY}\b(?:\s+at all)?|"
    rf"(?:that|which)\s+(?:nobody|no one|no-one)\s+(?:replied|responded|answered)\s+to\b|"
    r"unanswered|unreplied)"
)
_SOME_REPLY = re.compile(
    rf"\b{_GOT}\s+(?:(?:at least one|at least 1|one or more|1 or more|any|a|some)\s+{_REPLY}|"
    rf"(?:one|1) {_REPLY} or more|{_REPLY})\b"
    r"(?!\s+from\b)"  # "got replies from the most people": the repliers count
    # and the passive: "casts that got replied to", "posts that were answered" (not "…
    # replied to by dwr", the casts dwr replied to, nor "got replied to the most", a ranking)
    r"|\b(?:got|get|gets|were|was|been|being)\s+(?:replied|responded|answered)(?:\s+to)?\b"
    r"(?!(?:\s+to)?\s+(?:by|(?:the\s+)?(?:most|more|least|less|fewest))\b)"
)
_CAST_NOUN = re.compile(r"\b(?:casts?|posts?|messages?|threads?|ones)\b")
# A reply is a cast that can be replied to as well, but only right before: "replies that got
# replies" (in "how many replies did casts with replies get", the casts had them).
_REPLIABLE = re.compile(rf"{_CAST_NOUN.pattern}|\b{_REPLY}(?:\s+(?:that|which|themselves))?\s*$")
# The same for recasts: "casts that got recast at least once", "posts with a reshare",
# "top-level casts that were never recast" (see _replies_as_condition)
_RECAST = r"(?:recasts?|reshares?)"
_ONCE_OR_MORE = r"(?:\s+(?:at least once|at least one time|one or more times|1 or more times))?"
_NO_RECAST = re.compile(
    rf"\b{_GOT}\s+(?:no|zero|0|not a single|not any)\s+{_RECAST}\b|"
    r"\b(?:were|was|been|got)\s+never\s+(?:recast|recasted|reshared)\b"
)
_SOME_RECAST = re.compile(
    rf"\b{_GOT}\s+(?:(?:at least one|at least 1|one or more|1 or more|any|a|some)\s+{_RECAST}|"
    rf"(?:one|1) {_RECAST} or more|{_RECAST})\b(?!\s+from\b)"
    r"|\b(?:got|get|gets|were|was|been|being)\s+(?:recast|recasted|reshared)\b"
    + _ONCE_OR_MORE
    + r"(?!\s+by\b)"
)
_RECASTABLE = re.compile(rf"{_CAST_NOUN.pattern}|\b{_REPLY}\b")
# A ranking or comparison of what casts got stays a metric: "whose casts got recast the most",
# "the largest number of times" ("at least once" and "one or more" are read as phrases,
# thresholds every recast cast passes)
_RANKS_WHAT_CASTS_GOT = lexicon.ORDER_DESC | lexicon.ORDER_ASC | {"more", "less"}


# "A divided by B", "(A / B)", "the ratio of A to B", "the A-to-B ratio": the two sides
# between the clause marks around them.
_RATIO = (
    re.compile(r"(?:^|[,(;:]|\bi\.?e\.?|\bie\b)\s*([^,(;:]+?)\s+(?:divided by|/|÷)\s+([^,);:?]+)"),
    re.compile(r"\bratio (?:of|between) ([^,;:?]+?) (?:to|and) ([^,);:?]+)"),
    re.compile(r"(?:^|[,(;:]|\bthe\b)\s*([a-z0-9 -]+?)[ -]to[ -]([a-z0-9 -]+?) ratio\b"),
    # "replies per recast": per a metric's noun, not a dimension's (see _ratio_reading)
    re.compile(r"(?:^|[,(;:])\s*([^,(;:]+?)\s+per\s+([^,);:?]+)"),
)


_CLOSING_USER = re.compile(r"\s+(?:for|of|by|from)\s+(@?[\w.-]+)\s*$")


def _ratio_reading(q: str, ctx: Context, tr: TimeRange | None) -> Query | str | None:
    """The ratio a question states, as a query (the first side's figure with ``ratio_to``
    the second's), a string saying why its words make none, or None when it states none.
    Each side must read as one ungrouped figure, and the words around them must all be
    understood ("replies per top-level cast on average (total replies / total top-level
    casts)" restates it)."""
    match = next((m for p in _RATIO if (m := p.search(q))), None)
    if match is None or "sharetoken" in q:
        return None  # "(replies / all casts x 100)" of a percentage is that percentage
    if match.re is _RATIO[-1]:
        after = tokens(match.group(2))
        if not after or after[0] in lexicon.DIMENSION_WORDS or after[0] not in lexicon.METRIC_NOUNS:
            return None  # "casts per hour", "replies per cast": a grouping
    # "the ratio of followers to following for dwr": a user closing the second side is the
    # whole ratio's, as one opening the first is ("dwr's …")
    second, closing = match.group(2), []
    if (tail := _CLOSING_USER.search(second)) and tail.group(1).lstrip("@") in ctx.users:
        second, closing = second[: tail.start()], [tail.group(1).lstrip("@")]
    sides = [read(side, ctx, tr) for side in (match.group(1), second)]
    if closing and sides[0].users:
        return "the ratio names a user on each side and another after it"
    if any(side.query is None for side in sides):
        return None  # "ai / chatgpt", "dwr / jayce": a slash between words, not figures
    if match.re is _RATIO[-1] and any(side.users for side in sides):
        # "how many replies per recast did dwr get": whose each side is, is not said
        return "a ratio said with 'per' and a user is not read: say 'A divided by B'"
    for side in sides:
        if side.query.group_by or side.query.average_over:  # type: ignore[union-attr]
            return f"{match.group(0).strip()!r} is not a ratio of two figures the layer has"
    around = read(q[: match.start()] + " " + q[match.end() :], ctx, tr)
    if around.unknown:
        return f"the words {', '.join(repr(w) for w in around.unknown)} are not understood"
    above, below = (side.query for side in sides)
    assert above is not None and below is not None
    # "the likes-to-recasts ratio for dwr": the user around is each side's; "dwr's replies
    # divided by his casts": "his" is the user of the other side
    scope = [Condition("user", u) for u in (*around.users, *closing)]
    for side, other, text in ((0, 1, match.group(1)), (1, 0, match.group(2))):
        names = sides[side].users
        if not names and re.search(r"\b(?:his|her|their|its)\b", text):
            names = sides[other].users
        extra = [Condition("user", u) for u in names if u not in sides[side].users]
        query = above if side == 0 else below
        query = dataclasses.replace(query, conditions=(*scope, *extra, *query.conditions))
        above, below = (query, below) if side == 0 else (above, query)
    return dataclasses.replace(above, ratio_to=below)


# One profile figure above another, for each user: "follow more accounts than they have
# followers", "following > followers", "have more followers than they follow" (the figure
# named first, then the one it exceeds).
_FOLLOWERS = r"follower(?:s|\s+count)"
_FOLLOWING = r"(?:following(?:\s+count)?|follow(?:s|ing)?\s+(?:them|him|her))"
_EXCEEDS = (
    (
        re.compile(
            rf"\bfol{{1,2}}ow(?:s|ing)?\s+more\s+(?:other\s+)?(?:(?:{_PEOPLE})\s+)?than\s+"
            rf"(?:(?:they|he|she)\s+(?:have|has|had)\s+|(?:their\s+)?)?(?:{_FOLLOWERS}|"
            rf"(?:{_PEOPLE}\s+)?{_FOLLOWING})\b"
        ),
        "following",
        "followers",
    ),
    (
        re.compile(
            rf"\bfollowing(?:\s+count)?\s*(?:>|exceeds|(?:is\s+)?(?:more|greater|higher)\s+"
            rf"than)\s*(?:their\s+)?{_FOLLOWERS}\b"
        ),
        "following",
        "followers",
    ),
    (
        re.compile(
            rf"\bmore\s+{_FOLLOWERS}\s+than\s+(?:(?:they|he|she)\s+)?"
            r"(?:follow|follows|following)\b(?:\s+(?:accounts|people|users))?"
        ),
        "followers",
        "following",
    ),
)


def _exceeding_reading(q: str, ctx: Context, tr: TimeRange | None) -> Query | str | None:
    """The users whose one profile figure is above another ("how many posters follow more
    people than they have followers"), as a query: counted when the question counts, else
    listed; only authors when it names them. A string says why the words around make no such
    query; None when the question compares no two figures."""
    found = next(((m, a, b) for p, a, b in _EXCEEDS if (m := p.search(q))), None)
    if found is None:
        return None
    match, figure, other = found
    around = read(q[: match.start()] + " " + q[match.end() :], ctx, tr)
    if around.unknown:
        return f"the words {', '.join(repr(w) for w in around.unknown)} are not understood"
    if around.users or tr is not None:
        return "a comparison of two profile figures is of every user, with no time range"
    words = tokens(q[: match.start()] + " " + q[match.end() :])
    authors = any(w in lexicon.AUTHOR_WORDS for w in words) or "casts" in around.metrics
    conditions = (Condition("author"),) if authors else ()
    if around.counts:
        return Query(figure, conditions=conditions, count_over="user", exceeds=other)
    return Query(figure, "user", conditions=conditions, exceeds=other)


# The comparisons said before their number ("more than 5", "at least two"), as words
_PREFIX_COMPARE = "|".join(
    sorted(
        (
            w.replace("_", " ")
            for w in lexicon.COMPARE
            if w not in lexicon.POSTFIX_COMPARE and not w.startswith("exceed")
        ),
        key=len,
        reverse=True,
    )
)
# "by authors with over 1,000 followers", "from accounts that have at least 500 following",
# "among users with 10 or more casts": the people whose figure passes a threshold, after a
# preposition that makes them the authors (or actors) of what the rest of the question counts,
# or after a word that asks about them (_KEEPS_PEOPLE)
_AMONG = re.compile(
    # "of the users who …" (partitive), not "number of users with …" (the users counted);
    # after a profile figure, "of" says whose ("avg followers of ppl with 2+ casts")
    # "the most followed user who posted at least 3 casts": a ranking said before the people;
    # "the author with exactly 1 cast with the most followers", "how many followers do users
    # with 3+ casts have", "users with 2+ casts by followers": the people named first
    r"(?:^|\b(?:by|from|among|amongst|which|what|the|do|does|did|many|of(?=\s+(?:the|all|those)\b)"
    rf"|(?:{_RANKING}|{_RANKING_ASC})(?:\s+(?!(?:the|all|those)\b)[a-z]+)?"
    r"|(?:(?<=followers )|(?<=following )|(?<=follower count )|(?<=following count ))of)\s+)"
    rf"(?:(?:the|all|those)\s+)?(((?:{_PEOPLE}|{_AGENTS})\s+)"
    rf"(?:with|who|that|having)\b(?:\s+[a-z']+){{0,3}}?\s+((?:(?:{_PREFIX_COMPARE})\s+)?\d+"
    r"(?:\s+or\s+(?:more|fewer|less))?\s+[a-z]+(?:\s+count)?))\b"
)


# Counts a person has, each its own: a threshold on one is never one on another.
_OWN_COUNTS = frozenset(
    [
        "casts",
        "replies",
        "top_level_casts",
        "recasts",
        "likes",
        "reactions",
        "followers",
        "following",
    ]
)
# Words before the people that ask about them ("which user", "the author", "do users", "how
# many users", "the most followed user"): the people stay when their threshold is cut out
_KEEPS_PEOPLE = (
    frozenset(["which", "what", "the", "do", "does", "did", "many"])
    | lexicon.ORDER_DESC
    | lexicon.ORDER_ASC
)


# A threshold said in words: "exactly one cast", "at least two replies", "a single cast".
_NUMBER_WORDS = "|".join(sorted(lexicon.NUMBERS, key=len, reverse=True))
_WORD_THRESHOLD = re.compile(
    rf"\b(?:({_PREFIX_COMPARE})\s+({_NUMBER_WORDS})|(?:a single|only one|just one))(?=\s+[a-z])"
)


# A count said as a compound adjective of the people: "the single-post author", "one-cast
# users", "3-reply accounts" are the people with exactly that many
_COMPOUND_THRESHOLD = re.compile(
    rf"\b(single|{_NUMBER_WORDS}|\d+)-([a-z]+)\s+((?:{_PEOPLE}|{_AGENTS})\b)"
)


def _compound_threshold(m: re.Match[str]) -> str:
    """``_COMPOUND_THRESHOLD``'s match as "<people> with exactly <n> <metric>", or unchanged
    when the noun names no metric."""
    count, noun, people = m.groups()
    metric = lexicon.METRIC_NOUNS.get(noun)
    if metric is None:
        return m.group(0)
    n = 1 if count == "single" else int(count) if count.isdigit() else lexicon.NUMBERS[count]
    return f"{people} with exactly {n} {metric}"


def _threshold_digits(m: re.Match[str]) -> str:
    if m.group(1) is None:
        return "exactly 1"  # "a single cast", "only one cast"
    return f"{m.group(1)} {lexicon.NUMBERS[m.group(2)]}"


# The people named by what they did, as the people with at least that many of it: "users who
# recast at least once", "people that replied more than 3 times", "ppl who recast stuff",
# "across all recasters" (the threshold reading of _AMONG then takes them)
_TIMES = {"once": 1, "twice": 2, "thrice": 3}
# The profile figures asked of people named by an agent noun ("the followers of recasters")
PROFILE_FIGURES = frozenset(["followers", "following"])
_DEED_THRESHOLD = re.compile(
    # "who only posted once": exactly once
    rf"\b((?:{_PEOPLE}|{_AGENTS})\s+)(?:who|that)\s+(?:have\s+|has\s+|ever\s+|only\s+|just\s+)*"
    r"([a-z]+)\s+"
    rf"(?:((?:{_PREFIX_COMPARE})\s+)?"
    r"(once|twice|thrice|(\d+)\s+times)|(?:stuff|things|anything|something|at all)\b)"
)
_AGENTS_PLURAL = "|".join(sorted(w for w in lexicon.AGENT_NOUNS if w.endswith("s")))
_AMONG_AGENTS = re.compile(
    rf"\b(?:of|among|amongst|across)\s+(?:all\s+(?:the\s+)?|the\s+|those\s+)?"
    rf"({_AGENTS_PLURAL})\b"
)


def _deed_threshold(m: re.Match[str]) -> str:
    """``_DEED_THRESHOLD``'s match as "<people> with <comparison> <n> <metric>", or unchanged
    when its verb names no metric."""
    people, verb, compare, times, number = m.groups()
    metric = lexicon.METRIC_VERBS.get(verb)
    if metric is None or metric not in lexicon.METRIC_NOUNS:
        return m.group(0)
    if times is None:  # "who recast stuff": at all
        compare, count = "at least ", 1
    else:
        count = int(number) if number else _TIMES[times]
        compare = compare or "exactly "
    return f"{people}with {compare}{count} {metric}"


def _among_reading(q: str, ctx: Context, tr: TimeRange | None) -> Reading | None:
    """The reading of a question whose metric is restricted to the users passing a threshold
    on one of their figures ("how many casts came from accounts with more than 1000
    followers", "top repliers among users with at least 500 following", "the most followed
    user who posted at least 3 casts"): the rest of the question's query, of those users
    only. None when the question names no such people, the
    clause reads as no threshold on users, or the rest is no query of a metric about users
    other than their profiles ("how many users with over 1000 followers" keeps its reading)."""
    q = _WORD_THRESHOLD.sub(_threshold_digits, q)
    q = _DEED_THRESHOLD.sub(_deed_threshold, q)
    agents = _AMONG_AGENTS.sub(
        lambda m: f"among users with at least 1 {lexicon.AGENT_NOUNS[m.group(1)]}", q
    )
    q, by_agents = agents, agents != q
    match = _AMONG.search(q)
    if match is None:
        return None
    # "users who have over 1000 followers" reads as "users with over 1000 followers"; a verb
    # that names the figure stays ("people that are following more than 500 accounts")
    people = read(match.group(1), ctx, None).query
    people = people or read(match.group(2) + "with " + match.group(3), ctx, None).query
    if people is None or people.group_by != "user" or people.having is None:
        return None
    # "which user with exactly 1 cast has the most followers": the people asked about stay
    # ("which user has the most followers"), only the threshold on them goes; so when
    # nothing stands before them. After "by", "from", "among" or "of" they only say whose
    # the rest is, and go with the clause.
    lead = match.group(0)[: match.start(1) - match.start()].split()
    kept = " ".join(["", *lead, match.group(2)]) if not lead or lead[0] in _KEEPS_PEOPLE else " "
    around = read(q[: match.start()] + kept + q[match.end() :], ctx, tr)
    stand_in = _stand_in(ctx) if lead and lead[0] in ("by", "from") else None
    if stand_in is not None:
        # "likes received by users with one cast": read with a user in the people's place,
        # the metric is theirs as that user's ("likes received by X" is likes_received;
        # cut out, "total likes received" had read as the likes they made)
        alone = Condition("user", stand_in)
        named = read(f"{q[: match.start()]} {lead[0]} {stand_in} {q[match.end() :]}", ctx, tr)
        if named.query is not None and alone in named.query.conditions:
            conditions = tuple(c for c in named.query.conditions if c != alone)
            named.query = dataclasses.replace(named.query, conditions=conditions)
            around = named
    query = around.query
    # A profile figure among users passing a threshold on a profile figure is one reading
    # already ("users with over 1000 followers"); among users passing one on what they did
    # ("among users who posted exactly one cast, who has the most followers") it is not.
    if query is None or (
        layer.METRICS[query.metric].source == "users"
        and layer.METRICS[people.metric].source == "users"
    ):
        return None
    if layer.METRICS[query.metric].user is None or (
        query.metric in ("profiles", "distinct_authors")
        and not query.conditions
        and query.group_by is None
    ):
        # "how many users with 3+ casts", "how many repeat posters": the people counted are
        # the people themselves, which the word-by-word reading counts (a count of profiles
        # would miss any of them with no profile)
        return None
    if query.having is not None and query.metric == people.metric:
        return None  # "the repeat casters: accounts with 2+ casts": one threshold, read
    if by_agents and query.metric not in PROFILE_FIGURES:
        # "the crowd of repliers" is the repliers themselves, read as such; "the followers of
        # recasters" is a figure of theirs
        return None
    people = dataclasses.replace(people, order=None, limit=None, total=False)
    around.query = dataclasses.replace(query, among=people)
    return around


# "the user whose casts got the most recasts", "the account who posted the most links",
# "whoever got recast the most": one person, the first of a ranking of users
_ONE_PERSON = "|".join(
    sorted(w for w in layer.DIMENSIONS["user"].words if w in lexicon.ONE_OF_PEOPLE)
)
_TOP_PERSON = re.compile(rf"\b(?:the (?:{_ONE_PERSON}|one) (who|whose|that|with)\b|whoever\b)")
_RANKED = re.compile(
    rf"\b(?:{'|'.join(sorted(lexicon.ORDER_DESC | lexicon.ORDER_ASC))}|most|fewest|least)\b"
)
_PRONOUN = re.compile(r"\b(?:they|he|she|them|him|her)\b")


def _read_at(text: str, ctx: Context, tr: TimeRange | None) -> Reading:
    """``read`` with the question's time range ``tr``, or without it when ``text`` reads as a
    profile figure, which has no history (in a question of two parts, the time range is the
    other part's)."""
    reading = read(text, ctx, tr)
    if tr is not None and (reading.query is None or not _timed(reading.query.metric)):
        untimed = read(text, ctx, None)
        if untimed.query is not None and not _timed(untimed.query.metric):
            return untimed
    return reading


def _compiles(query: Query) -> bool:
    """Whether the layer compiles ``query`` (it refuses a filter its metric cannot take)."""
    try:
        layer.compile_sql(query)
    except LayerError:
        return False
    return True


def _timed(metric: str) -> bool:
    """Whether the rows of ``metric`` have a time (a profile figure's do not)."""
    return layer.SOURCES[layer.METRICS[metric].source].time is not None


def _stand_in(ctx: Context) -> str | None:
    """A username the planner reads only as that user (letters only, no word of its own), to
    stand in the place of a person a question describes; None when there is none."""
    english = lexicon.english_words()
    return next(
        (
            u
            for u in sorted(ctx.users)
            if u.isalpha() and len(u) >= 3 and not lexicon.known(u) and u not in english
        ),
        None,
    )


def _top_user_reading(q: str, ctx: Context, tr: TimeRange | None) -> Reading | None:
    """The reading of a question asking a figure of one person it describes by a ranking
    ("how many followers does the user whose casts got the most recasts have", "whoever
    shared the most links, how many accounts do they follow"): the question read with a
    user in that person's place, restricted to the user the ranking puts first
    (``Query.top_user``). The description is the shortest clause after the person that
    reads as a ranking of users and leaves a question that reads as a figure of one user
    (the longest took the question's own verb: "… the most followers post"). None when
    there is no such person or no such pair of readings."""
    match = _TOP_PERSON.search(q)
    stand_in = _stand_in(ctx) if match else None
    if match is None or stand_in is None:
        return None
    relative = match.group(1) or ""
    head, tail = q[: match.start()], q[match.end() :]
    ends = [m.end() for m in re.finditer(r"[^\s,;]+", tail)]
    for end in ends:
        clause, after = tail[:end], tail[end:]
        if not _RANKED.search(clause):
            continue
        ranked = _read_at(f"which user {relative} {clause}", ctx, tr)
        ranking = ranked.query
        # "the user with the fewest followers": many users tie for last, so none is the one.
        # The clause names what ranks them ("the user with the most", then "followers").
        if (
            ranking is None
            or not ranked.metrics
            or ranking.group_by != "user"
            or ranking.order != "desc"
            or ranking.having is not None
        ):
            continue
        if head.strip() or not after.lstrip().startswith(","):
            rest = f"{head}{stand_in}{after}"
        else:
            # "whoever shared the most links, how many accounts do they follow": the
            # pronoun after the fronted clause is the person
            rest, found = _PRONOUN.subn(stand_in, after.lstrip(" ,"), count=1)
            if not found:
                continue
        around = _read_at(rest, ctx, tr)
        query = around.query
        if query is None or query.group_by is not None or query.top_user is not None:
            continue
        if tr is not None and query.time_range is None and ranking.time_range is None:
            continue  # a time range of two profile figures, which have no history
        person = Condition("user", stand_in)
        if [c for c in query.conditions if c.filter == "user"] != [person]:
            continue
        composed = dataclasses.replace(
            query,
            conditions=tuple(c for c in query.conditions if c != person),
            top_user=dataclasses.replace(ranking, limit=1, total=False),
        )
        if not _compiles(composed):
            continue  # the clause cut short, its rest read as a filter the figure cannot take
        around.query = composed
        around.users = [u for u in around.users if u != stand_in]
        return around
    return None


_HOW_OFTEN = re.compile(
    rf"\b({'|'.join(map(re.escape, lexicon.HOW_OFTEN))})\s+"
    rf"({'|'.join(sorted(lexicon.AUTHOR_WORDS | set(lexicon.AGENT_NOUNS)))})\b"
)


def _how_often(match: re.Match[str]) -> str:
    """ "repeat posters" → "posters with at least 2 casts", "one-time repliers" → "repliers
    with exactly 1 replies": the people, then how many of what they are named for."""
    how, people = match.groups()
    return f"{people} with {lexicon.HOW_OFTEN[how]} {lexicon.AGENT_NOUNS.get(people, 'casts')}"


# "like" as a hedge or a discourse marker, not the reaction: where a clause starts (the
# question's start, after a mark or another discourse marker: "so like") and before a
# determiner, a pronoun or a wh-word ("…? like the most active accounts", "like how many
# casts r in it"), or before a verb that restates what is asked ("…? like tag a user",
# "…, like posted their own stuff"): the reaction, a verb itself, takes no verb after it.
# "which users like the most casts" has a subject before it, and "like count" a noun after
# it: the reaction. (Verbs that are nouns too, "replies", "post", can be what is liked.)
_RESTATING_VERBS = "|".join(
    sorted(
        w
        for w, m in lexicon.METRIC_VERBS.items()
        if m != "likes" and w not in lexicon.METRIC_NOUNS and re.fullmatch(r"[a-z]+", w)
    )
)
_HEDGE_LIKE = re.compile(
    r"(^|[?!.,;:]|\b(?:so|ok|okay|um|uh|yeah|hmm)\b)\s*like,?\s+"
    r"(?=(?:the|a|an|who|whose|what|which|how|when|where|i|we|you|they|he|she|it|just|maybe|"
    rf"more|around|roughly|number of|{_RESTATING_VERBS})\b)"
    # after a question's end, the question said again in other words ("what % of posts r
    # replies? like responses vs everything"), unless it names the likes' figure (or the
    # question is about likes: see plan)
    r"|([?!])\s*like,?\s+(?!(?:counts?|numbers?|totals?|ratios?|button|buttons|ones|those"
    r"|these|them|it|this|that)\b)"
)
# "like" after a comma and before a short list is "such as": "the weather, like cold or snow"
# gives examples ("…, like count" and "…, like dwr's casts" stay the reaction). Read as a
# query, "such" is a word the planner does not know; in a topic, the examples are its items.
# Without the comma, after a plural noun that names no people ("other apps like discord or
# bluesky", "wallets like metamask and rainbow") the list is examples too; after people
# ("users like casts or replies") "like" is the reaction they make.
_EXAMPLES_LIKE = re.compile(
    r"(?:,|\b([a-z]+s))\s*like\s+(?=[\w'-]+(?:\s+[\w'-]+)?,?\s+(?:or|and)\s)"
)
_PEOPLE_WORD = re.compile(rf"(?:{_PEOPLE}|{_AGENTS})")


def _such_as(match: re.Match[str]) -> str:
    """``_EXAMPLES_LIKE``'s match as "…, such as ", or unchanged after a word for people."""
    noun = match.group(1)
    if noun and _PEOPLE_WORD.fullmatch(noun):
        return match.group(0)
    return f"{noun or ''}, such as "


# Pressing a reaction's button is making the reaction: "hitting the recast button", "who
# clicks the like button most". "buton" is the same word with a letter dropped, as the typo
# rule reads the catalogue's words (which "button" is not).
_BUTTON = re.compile(
    r"\b(?:hit|hits|hitting|press|presses|pressed|pressing|click|clicks|clicked|clicking|tap|"
    r"taps|tapped|tapping|smash|smashes|smashed|smashing|push|pushes|pushed|pushing)"
    r"(?: on)? (?:the |that |a )?(\w+) but+ons?\b"
)
# A thread's size or length is the number of casts in it (a cast's length is its characters:
# the metric cast_length): "the size of the largest thread", "the length of the livestream
# thread", "how long is the longest thread".
_THREAD = r"(?:threads?|conversations?)\b"
_THREAD_SIZE = re.compile(rf"\b(?:size|length)s? of (?=(?:[\w@'.-]+ ){{0,3}}{_THREAD})")
_HOW_LONG = re.compile(rf"\bhow long (?:is|was|are|were) ((?:[\w@'.-]+ ){{0,3}}{_THREAD})")
# A cast's length is the characters of its text: "how long are casts", "how long r dwr's posts"
# ask for their mean length (not a duration: "how long was dwr active" stays unread).
_HOW_LONG_CASTS = re.compile(
    r"\bhow long (?:is|was|are|were|r) ((?:the |a |an |[\w@.-]+'s )?(?:(?:typical|average|"
    r"usual|normal) )?(?:casts?|posts?|messages?|replies|reply)\b)"
)
# Ranking words that rank casts by their length when they stand before a word for casts.
LENGTH_ORDER = frozenset(["longest", "shortest"])
_HEADED = re.compile(r"^([^-–—:?]{2,40}?)\s*[-–—:]\s+(.*\b(?:it|this|that)\b.*)$")


def _pronoun_topic(q: str, ctx: Context) -> str:
    """ "web3 - how many casts say it": a topic set before a dash, which the question after
    it names by a pronoun, written as a quoted term in the pronoun's place. Only when every
    word of the head is one the planner does not know (a topic, not "dwr:" or "casts -")."""
    m = _HEADED.match(q)
    if m is None:
        return q
    head = tokens(m.group(1))
    if not head or any(lexicon.known(w) or w.lstrip("@") in ctx.users for w in head):
        return q
    tail = re.sub(r"\b(?:it|this|that)\b", f"'{' '.join(head)}'", m.group(2), count=1)
    return tail


# A negation before the question's own metric said again with its author: "replies per hour,
# excluding replies written by briang", "casts per hour without the casts by dwr". What is
# left out is the author's share of that metric, so the negation is of the author; read
# word by word it fell on the noun ("not a reply") and the author counted positively.
_NEGATED_OWN_METRIC = re.compile(
    r"\b(excluding|exclude|without|except(?: for)?|not counting|ignoring|leaving out|minus)"
    r"\s+(?:the\s+|any\s+|all\s+)?([a-z]+)\s+"
    r"(?:(?:written|posted|made|sent|cast|authored|done|shared)\s+)?(?:by|from)\s+"
    + USER
    + r"(?=\W|$)"
)


def _negated_author(q: str, ctx: Context) -> tuple[str, str | None]:
    """``q`` with "<negation> <the metric asked about> by <user>" written as "<negation>
    <user>" when the noun names the metric a word before the negation names, and the user
    is known; and why the question cannot be read, or None. Another metric after the
    negation ("how many casts, excluding replies by briang") cannot be read: leaving one
    author's replies out of all casts is no query of the layer, and read word by word it
    became briang's casts that are not replies."""
    m = _NEGATED_OWN_METRIC.search(q)
    if m is None or m.group(3) not in ctx.users:
        return q, None
    said = lexicon.METRIC_NOUNS.get(m.group(2))
    asked = {
        lexicon.METRIC_NOUNS.get(w) or lexicon.METRIC_VERBS.get(w)
        for w in tokens(q[: m.start()], ctx.users)
    } - {None}
    if said is None or not asked:
        return q, None
    if said not in asked:
        return q, (
            f"leaving out {m.group(3)}'s {m.group(2)} from {', '.join(sorted(asked))} is not a "
            f"query of the layer: it leaves out a user, or {m.group(2)}, not both at once"
        )
    return f"{q[: m.start()]}{m.group(1)} {m.group(3)}{q[m.end() :]}", None


# A list of the people who did something asks which people, as "which users …" does: "list
# the users who replied to dwr", "I need the list of accounts that recast dwr's posts" (read
# word by word, the people were filler and the answer was the count).
_LIST_OF_PEOPLE = re.compile(
    r"(?:\b(?:i need|i want|give me|show me|get me|pull)\s+)?\b(?:a\s+|the\s+)?"
    rf"(?:list|lists|names)\s+(?:of\s+)?(?:the\s+|all\s+(?:the\s+)?)?({_PEOPLE}|{_AGENTS})"
    r"\s+(?:who|that)\s+"
)


def _replies_as_condition(q: str) -> str:
    """``q`` with "got no replies" written as "no castreplied" and "got replies" as
    "castreplied" (the replied filter's token) where a word for casts comes before; the same
    for recasts ("castrecast", the recast filter's token) unless the question ranks."""

    def swap(pattern: re.Pattern[str], token: str, text: str, nouns=_CAST_NOUN) -> str:
        match = pattern.search(text)
        if match is None:
            return text
        # "unanswered casts": the adjective says it of the casts after it
        where = text if match.group(0) in ("unanswered", "unreplied") else text[: match.start()]
        if not nouns.search(where):
            return text
        negated = "without" in match.group(0).split()[:3] and not token.startswith("no ")
        token = f"no {token}" if negated else token
        return text[: match.start()] + f" {token} " + text[match.end() :]

    q = swap(_NO_REPLY, "no castreplied", q, _REPLIABLE)
    q = swap(_SOME_REPLY, "castreplied", q, _REPLIABLE)
    if any(w in _RANKS_WHAT_CASTS_GOT for w in tokens(q)):
        return q
    # a reply is a cast that can be recast: "how many replies got reshared"
    q = swap(_NO_RECAST, "no castrecast", q, _RECASTABLE)
    return swap(_SOME_RECAST, "castrecast", q, _RECASTABLE)


# A question asking whose profile a display name is, once the name is written as the
# @username: "what is the username of @dwr", "which account is @dwr", "who is @dwr".
_WHO_GOES_BY = re.compile(
    r"(?:(?:what|which)(?:'s| is| was)? (?:the )?(?:user ?name|handle|account|profile|user)"
    r" (?:of|for|behind|belonging to)"
    r"|who(?:'s| is| was)"
    r"|(?:which|what) (?:user|account|profile|handle)(?:'s| is| was| has| uses| goes by)?"
    r"(?: the)?(?: display[ _]name| name)?(?: of)?"
    r"|whose (?:display[ _])?name is) @(?P<user>[\w.-]+)"
)


def _display_names_as_users(question: str, q: str, ctx: Context) -> str:
    """``q`` (the lower-cased ``question``) with each display name the question writes as a
    proper name (every word capitalized: "Varun Srinivasan", not "who is") written as the
    @username."""
    lowered = question.lower()
    for name in sorted(ctx.display_names, key=len, reverse=True):
        if name not in lowered:
            continue
        pattern = rf"(?<![\w@]){re.escape(name)}(?!\w)"
        spans = [question[m.start() : m.end()] for m in re.finditer(pattern, lowered)]
        if any(all(w[0].isupper() for w in span.split() if w[0].isalpha()) for span in spans):
            q = re.sub(pattern, f"@{ctx.display_names[name]}", q)
    return q


# "the rugby league thread of pcdkd": a thread or cast named by its words, then its author
_NAMED_OF = re.compile(
    r"\b(the|that|this)\s+((?:[\w'.-]+\s+){1,4}?)(threads?|conversations?|casts?|posts?)"
    r"\s+of\s+@?([a-z0-9][a-z0-9_.-]*)"
)


def _owner_first(match: re.Match[str], ctx: Context) -> str:
    """ "the rugby league thread of pcdkd" → "pcdkd's rugby league thread", the form the
    reader takes a named thread or cast in, when the name is a known user and every word
    naming the thread is one the planner does not know (as ``read`` names threads); the
    match unchanged otherwise ("the top thread of dwr" ranks)."""
    _, naming, noun, name = match.groups()
    if name not in ctx.users or any(lexicon.known(w) for w in tokens(naming)):
        return match.group(0)
    return f"{name}'s {naming}{noun}"


# A link going to its site, as a relative clause or a participle: "a link which is going to
# twitter.com", "urls pointing at github.com" → "a link to twitter.com", "urls to github.com".
_LINK_MOTION = re.compile(
    r"\b(links?|urls?|hyperlinks?)\s+(?:(?:which|that)\s+(?:(?:is|are|was|were)\s+)?)?"
    rf"(?:{'|'.join(sorted(lexicon.LINK_MOTION))})\s+(?:to|at|towards)\b"
)
_HOST = re.compile(r"^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}$")


def _names_site(words: list[str], i: int) -> bool:
    """Whether the word at ``i`` names a site links go to: a host name ("youtube.com"), a
    name before a link word ("youtube links", "a youtube video") or after "links to"."""
    w = words[i]
    if _HOST.match(w) and not w.replace(".", "").isdigit():
        return True
    if not re.fullmatch(r"[a-z0-9-]+", w) or w in lexicon.FILLER:
        return False
    nxt = words[i + 1] if i + 1 < len(words) else ""
    before = words[max(0, i - 3) : i]
    return nxt in lexicon.SITE_NOUNS or (
        bool(before)
        and before[-1] in ("to", "from", "on")
        and any(lexicon.FILTER_WORDS.get(b) == "has_link" for b in before)
    )


# What engagement sums, named beside it.
ENGAGEMENT_PARTS = frozenset(
    ["replies", "recasts", "likes", "reactions"]
    + [f"{m}_received" for m in ("replies", "recasts", "likes", "reactions")]
)
# The users who gave a kind of reaction, counted ("how many different people reshared").
REACTORS = {"reactions": "reactors", "recasts": "recasters", "likes": "likers"}


_SET_OF_PEOPLE = re.compile(rf"^(?:(?:all|the|any)\s+)*(?:{_PEOPLE}|{_AGENTS})\b")


def _names_a_set(q: str, query: Query) -> bool:
    """Whether ``q`` only names a set of people by a condition, as a noun phrase opening the
    question without asking for a list, a ranking or a count ("users with 3+ casts",
    "authors who only replied", "profiles w/o any casts"): the answer says how many there
    are, then who. Not "which users …", "list the users …", "top posters with …"."""
    if query.group_by != "user" or query.limit is not None:
        return False
    if not (query.having or query.users_with or query.exceeds):
        return False
    if query.average_over or query.count_over or query.moment or query.top_user:
        return False
    return bool(_SET_OF_PEOPLE.match(q.strip()))


def _group(groups: list[tuple[str, str, str]], order: str | None) -> str | tuple[str, ...] | None:
    """The one dimension a question groups by; a tuple when it names several."""
    chosen = {d for d, how, _ in groups if how != "plain" or order}
    if not chosen:
        return None
    if len(chosen) > 1:
        return tuple(sorted(chosen))
    return chosen.pop()


def _say(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describer(query: Query) -> Callable[[Rows], str]:
    """The answer sentence for a query's rows: the number, or the groups in order."""
    what = query.describe()

    def describe(rows: Rows) -> str:
        if not rows:
            return f"Nothing matches ({what})."
        if query.group_by is None:
            return f"{_say(next(iter(rows[0].values())))} ({what})."
        skip = 1 if query.total else 0  # the number of groups, the same in every row
        shown = "; ".join(
            f"{_say(v[0]) if v[0] is not None else 'none'}: {_say(v[1])}"
            for v in (list(r.values())[skip:] for r in rows[:20])
        )
        more = f"; … {len(rows) - 20} more" if len(rows) > 20 else ""
        if query.total:
            return f"{_say(next(iter(rows[0].values())))} ({what}): {shown}{more}."
        return f"{what}: {shown}{more}."

    return describe


def _reading_typos_as(
    describe: Callable[[Rows], str], corrected: Mapping[str, str]
) -> Callable[[Rows], str]:
    """``describe``, its sentence saying which words were read as typos of which."""
    if not corrected:
        return describe
    said = ", ".join(f"{typo!r} as {word!r}" for typo, word in corrected.items())
    return lambda rows: f"{describe(rows)} (Read {said}.)"


def _outside_data(tr: TimeRange, ctx: Context) -> bool:
    return tr.start > ctx.now or (ctx.first is not None and tr.end <= ctx.first)


def _unknown_author(q: str, ctx: Context, unknown: Sequence[str]) -> str | None:
    """A name standing where an author would ("what did X say about", "posts by X about",
    tersely "X casts" or "posts by X") that is no user in the data; None when there is none.
    ``unknown``: the words the planner did not understand (a terse name must be one)."""
    # "did X say", "has X written about", "casts by X about": X is named as the author. Not
    # "casts from newcomers posting …", where the participle describes a group of people.
    # "what the user X wrote", "what did the account X say": X named as a user
    # ("who has posted about …": "has" is the verb's auxiliary, no name stands after it)
    named = r"(?:the\s+(?:user|account|author)\s+)"
    m = re.search(
        rf"\b(?:(?:did|does|has)\s+{named}?|{named})(?!{TOPIC_VERBS}\s){USER}\s+"
        rf"(?:{TOPIC_VERBS}|about)\b",
        q,
    ) or re.search(rf"\b(?:by|from)\s+{USER}\s+(?:about|on|regarding)\b", q)
    if m:
        name = m.group(1)
        # "users ranked by posts about X": a metric word is what is counted, never a name
        generic = (
            lexicon.FILLER
            | set(lexicon.DIMENSION_WORDS)
            | set(lexicon.METRIC_NOUNS)
            | lexicon.OTHERS
        )
        return None if name in ctx.users or name in generic else name
    # Terse means the whole question: "Surface casts that discuss AI" starts with a verb.
    m = re.search(rf"^{USER}(?:'s)?\s+(?:casts|posts)[?.!]*$|\b(?:by|from)\s+{USER}[?.!]*$", q)
    name = m and (m.group(1) or m.group(2))
    if m and m.group(1) and not re.search(r"^@|[0-9_.]", m.group(0)):
        return None  # "nft casts", "moon posts": a plain word before casts is their topic
    return name if name and name in unknown else None


def _terse_author(q: str, ctx: Context) -> tuple[str, str] | None:
    """(username, topic) of a terse search naming its author first or last ("willbamberg
    dancing", "ux improvements @dwr"); None when neither end is a known user (a word the
    planner knows is one only with "@")."""
    first = re.match(rf"^{USER}\s+(\S.*)$", q)
    last = re.match(rf"^(.*\S)\s+{USER}[?.!]*$", q)
    ends = ([first.groups()] if first else []) + ([last.groups()[::-1]] if last else [])
    for name, topic in ends:
        if name in ctx.users and (f"@{name}" in q.split() or not lexicon.known(name)):
            return name, _clean_topic(topic)
    return None


# A figure or detail said as the people's own: "the email addresses of the top posters",
# "the locations of users who talked about nfts", "the repliers' phone numbers" (not "users who
# talked about email", where the word is what they said)
_NOT_HELD = "|".join(sorted(lexicon.NOT_HELD, key=len, reverse=True))
_PROPERTY_OF_PEOPLE = re.compile(
    rf"\b({_NOT_HELD})(?:e?s)?(?:\s+[a-z]+)?\s+of\s+(?:[\w@'-]+\s+){{0,4}}?"
    rf"(?:{_PEOPLE}|{_AGENTS})\b"
    rf"|\b(?:{_PEOPLE}|{_AGENTS})(?:'s|')\s+(?:[a-z]+\s+)?({_NOT_HELD})(?:e?s)?\b"
)


def _property_not_held(q: str) -> str | None:
    """The word of ``q`` naming a property of the people it asks about that the profiles do
    not hold ("email" in "the emails of the ppl who posted the most"), singular, or None."""
    m = _PROPERTY_OF_PEOPLE.search(q)
    return (m.group(1) or m.group(2)) if m else None


# Who follows whom: a profile holds how many follow the user and how many the user follows,
# not those accounts, and no public table holds the follow edges. A question asking for the
# accounts (who, which, a list), or for their history, is refused: the count in their place
# or casts searched for the words would answer another question.
_FOLLOW_WORDS = frozenset(
    word
    for name in ("followers", "following")
    for word in (*layer.METRICS[name].nouns, *layer.METRICS[name].verbs)
) | {"follows", "followed", "follower"}
# Asking for the accounts: "who …" or "which …" opening the question (not "everybody who
# cast"), "show me who", a list or the names.
_ASKS_WHO = re.compile(
    r"^(?:who|whom|which)\b|\b(?:show|tell|give|find)(?: me| us)? (?:who|whom|which)\b"
    r"|\b(?:list|lists|names?)\b"
)
_DOES_FOLLOW = re.compile(rf"\bdo(?:es)?\s+@?{USER}\s+follow\b")
# A figure of the accounts, which the profiles do hold: a count, a ranking, a comparison, an
# average, a threshold ("which users have over 1,000 followers").
_FIGURE_WORDS = (
    lexicon.COUNT
    | lexicon.ORDER_DESC
    | lexicon.ORDER_ASC
    | lexicon.AVERAGE
    | lexicon.MEDIAN
    | frozenset(lexicon.COMPARATIVE)
    | frozenset(lexicon.COMPARE)
    | {"than", "between", "ratio", "share", "percent", "percentage", "combined", "top"}
)
_HISTORY = re.compile(
    r"\b(?:growth|grew|grow|grown|gain|gained|gaining|gains|lost|lose|losing|change|changed|"
    r"changes|history|historical|over time|trend|trends|month-by-month|monthly|weekly)\b"
)


_NETWORKS = "|".join(sorted(lexicon.OTHER_NETWORKS, key=len, reverse=True))
# What happens on another network, said of it: "trending on twitter", "followers on
# instagram", "instagram likes", "tiktok's most viral". A topic that names the network ("casts
# about twitter", "who mentions twitter") is about casts and stays a search.
_ELSEWHERE = re.compile(
    r"\b(?:trending|trended|trends?|viral|popular|happening|going on|tweeted|tweets?|posted|"
    r"posts?|followers?|following|follows?|likes?|liked|views?|subscribers?)\s+(?:on|in|over on)"
    rf"\s+(?:the\s+)?({_NETWORKS})\b"
    rf"|\b({_NETWORKS})(?:'s)?\s+(?:trends?|trending|followers?|likes?|posts?|views?|"
    r"subscribers?|users|accounts?|feed|timeline)\b"
)


def _elsewhere(q: str) -> str | None:
    """Why ``q`` asks about another network than Farcaster, or None: what trends, who
    follows or what is liked on Twitter, Instagram, … (``lexicon.OTHER_NETWORKS``), said of
    that network ("trending on twitter", "instagram likes"). Only the words before a topic
    the question introduces by "about" and the like count: "casts about twitter" are casts."""
    intro = re.search(r"\b(?:about|regarding|concerning|discussing|mentioning)\b", q)
    found = _ELSEWHERE.search(q[: intro.start()] if intro else q)
    if found is None:
        return None
    network = (found.group(1) or found.group(2)).capitalize()
    return (
        f"the data holds Farcaster's events only, nothing that happened on {network}: casts, "
        "likes, recasts and profiles of Farcaster users (casts that talk about "
        f"{network} can be searched: 'casts about {network.lower()}')"
    )


# Looking at a profile, which no event records: "who looked at dwr's profile page", "how
# many profile views did dwr get", "who visited my profile".
_PROFILE_VISIT = re.compile(
    r"\b(?:visit(?:s|ed|ing|ors?)?|view(?:s|ed|ing|ers?)?|look(?:s|ed|ing)? at"
    r"|check(?:s|ed|ing)? out|stalk(?:s|ed|ing)?)\s+(?:[\w@'.-]+\s+){0,2}profiles?\b"
    r"|\bprofile (?:page )?(?:visit|view)(?:s|ors?|ers?)?\b"
)


def _relation_not_held(q: str, ctx: Context) -> str | None:
    """Why ``q`` asks about acts between accounts that the data does not hold, or None: one
    account blocking, muting or unfollowing another (``lexicon.ACTS_NOT_HELD``, misspelt by
    one edit too), which accounts follow a user or which a user follows, or how a follower
    count changed. Only the words before a topic the question introduces count: "who talked
    about getting blocked" asks about casts."""
    intro = _INTRODUCER.search(q)
    head = q[: intro.start()] if intro else q
    words = tokens(head, ctx.users)
    acts = [act for word in words if word not in ctx.users and (act := lexicon.act_not_held(word))]
    if _PROFILE_VISIT.search(head):
        acts.append("profile visits or views")  # "who looked at dwr's profile page"
    if acts:
        return (
            f"the data holds no {' or '.join(dict.fromkeys(acts))}: its events are casts, "
            "likes, recasts and profiles, and no table records one account blocking, muting, "
            "unfollowing or viewing another (`ozi metrics` lists what it knows)"
        )
    follow = [
        w
        for w in words
        if w not in ctx.users
        and (w in _FOLLOW_WORDS or lexicon.correction(w, ctx.users) in _FOLLOW_WORDS)
    ]
    if not follow:
        return None
    held = (
        "profiles hold how many accounts follow each user and how many each follows, as of "
        "the newest profile snapshot"
    )
    if _HISTORY.search(head):
        return f"the data holds no history of follower counts: {held}"
    figure = any(w in _FIGURE_WORDS or w.isdigit() for w in words)
    if not figure and (_ASKS_WHO.search(head) or _DOES_FOLLOW.search(head)):
        return f"the data holds no record of who follows whom: {held}, not the accounts"
    return None


def _not_held(word: str, tried: list[str]) -> Plan:
    return Plan(
        "unanswered",
        "layer",
        tried=tried,
        final=True,
        note=f"the data holds no {word!r} property of a user: profiles hold a username, "
        "display name, bio, picture and follower counts (`ozi metrics` lists what it knows)",
    )


def _refusal(reading: Reading, tried: list[str]) -> Plan:
    if reading.unknown:
        words = ", ".join(repr(w) for w in dict.fromkeys(reading.unknown))
        note = (
            f"the question asks for a number and these words are not in the planner's "
            f"vocabulary: {words} (`ozi metrics` lists what it knows)"
        )
    else:
        note = reading.problem or "the question asks for a number the layer has no metric for"
    return Plan("unanswered", "layer", tried=tried, note=note)


# A parenthesis right after leaving a user out: "leaving briang out (his livestream skews
# everything)", "excluding @dwr (too many casts)".
_EXCLUSION_REASON = re.compile(
    r"\b((?:leaving|leave|excluding|exclude|not counting|ignoring|without|except(?: for)?)\s+"
    r"@?[\w.-]+(?:\s+out)?)\s*\(([^()]*)\)"
)


def _without_reason(match: re.Match[str], ctx: Context) -> str:
    """The exclusion without its parenthesis when the parenthesis says why a user is left
    out: the user is one the data knows, and no word in it is one the planner reads (a
    metric, a filter, grammar or a user: "excluding dwr (and v)" or "(replies too)" say
    what is left out, and stay)."""
    left_out = match.group(1).split()[-2 if match.group(1).endswith(" out") else -1]
    words = tokens(match.group(2), ctx.users)
    reads = any(
        (lexicon.known(w) and w not in lexicon.FILLER) or w in ctx.users or _number(w) is not None
        for w in words
    )
    if left_out.lstrip("@") not in ctx.users or reads:
        return match.group(0)
    return match.group(1)


# Round numbers said in thousands: "5k", "1.5k", "five thousand", "a thousand".
_THOUSANDS = re.compile(
    rf"\b(\d+(?:\.\d+)?)k\b|\b(a|\d+|{'|'.join(w for w in lexicon.NUMBERS if w.isalpha())})"
    r" thousand\b"
)


def _in_units(match: re.Match[str]) -> str:
    figure = match.group(1) or match.group(2)
    if figure == "a":
        return "1000"
    number = float(figure) if figure[0].isdigit() else lexicon.NUMBERS[figure]
    return f"{round(number * 1000)}"


# A comparison written as a symbol before a number: ">=5000 followers", "> 10 casts". Only
# before a number: "following > followers" compares two metrics, which stays a symbol.
SYMBOL_COMPARE = {">=": "at least", "=>": "at least", "<=": "at most", ">": "more than"}
SYMBOL_COMPARE["<"] = "fewer than"
_SYMBOL_COMPARE = re.compile(r"(>=|=>|<=|>|<)\s*(?=\d)")


# A range of a count: "between 1000 and 5000 followers", "from 3 to 5 casts", "1000-5000
# followers", "between 2 and 4 top-level casts". Read as hours, "between 3 and 5 casts" had
# counted the casts from 03:00 to 05:00.
_COUNT_RANGE = re.compile(
    r"\b(?:between\s+(\d+)\s+and\s+(\d+)|from\s+(\d+)\s+to\s+(\d+)|(?<![\d:-])(\d+)\s*-\s*(\d+))"
    r"(\s+(?!(?:am|pm|utc|gmt)\b)[a-z-]+)?\s+([a-z]+)\b"
)
# ... or after the figure: "whose follower count is between 1000 and 5000"
_COUNT_RANGE_AFTER = re.compile(
    # a count or a copula between: "how many casts between 3 and 5" stays hours
    r"\b([a-z]+)( counts?(?: is| are| was| were| of)? | (?:is|are|was|were) )between (\d+) and "
    r"(\d+)\b"
    r"(?!\s*(?:am|pm|utc|gmt|o'clock|:))"
)
_RANGE_THRESHOLD = re.compile(r"\bat least (\d+) and at most (\d+)\b")


def _count_range(m: re.Match[str]) -> str:
    """``_COUNT_RANGE``'s match as "at least <low> and at most <high> <noun>" when the noun is
    a metric's and the range goes up (``_range_reading`` reads it), else unchanged."""
    low, high = (int(n) for n in (g for g in m.groups()[:6] if g is not None))
    adjective, noun = m.group(7) or "", m.group(8)
    if not _metric_noun(noun) or low > high:
        return m.group(0)
    return f"at least {low} and at most {high}{adjective} {noun}"


def _count_range_after(m: re.Match[str]) -> str:
    """``_COUNT_RANGE_AFTER``'s match with the range as ``_count_range`` writes it."""
    noun, joint, low, high = m.groups()
    if not _metric_noun(noun) or int(low) > int(high):
        return m.group(0)
    return f"{noun}{joint}at least {low} and at most {high}"


def _metric_noun(word: str) -> bool:
    """Whether ``word`` names a metric, written right or one edit away ("folowers")."""
    return word in lexicon.METRIC_NOUNS or lexicon.correction(word, ()) in lexicon.METRIC_NOUNS


def _range_reading(q: str, ctx: Context, tr: TimeRange | None) -> Reading | None:
    """The reading of a range of a count of each user's ("how many profiles have between 1000
    and 5000 followers", "which users posted 3-5 casts"): the question with the range's
    lower end as its threshold, among the users at or under its upper end (``Query.among``).
    A range of something else (each cast's replies) is refused: one end alone would answer
    another question. None when the question holds no range."""
    m = _RANGE_THRESHOLD.search(q)
    if m is None:
        return None
    low, high = int(m.group(1)), int(m.group(2))
    reading = read(f"{q[: m.start()]}at least {low}{q[m.end() :]}", ctx, tr)
    query = reading.query
    if query is None and (reading.unknown or reading.problem):
        return reading  # words to correct, or a refusal of its own
    if (
        query is None
        or query.having != (">=", float(low))
        or query.among is not None
        or "user" not in (query.group_by, query.count_over)
        or layer.METRICS[query.metric].user is None
    ):
        return Reading(
            asks_number=True,
            problem=f"a range from {low} to {high} is read only of each user's figures",
        )
    upper = Query(
        query.metric,
        "user",
        conditions=query.conditions,
        time_range=query.time_range,
        having=("<=", float(high)),
    )
    reading.query = dataclasses.replace(query, among=upper)
    return reading


def _read_whole(rest: str, ctx: Context, tr: TimeRange | None) -> Reading:
    """``read`` of the question's words (time range taken out), or one of the readings that
    compose a query from two: a range of a count, a metric among users passing a threshold,
    a figure of the user a ranking puts first, two figures at once."""
    # "the single-post author", "one-cast users": the people with exactly that many
    rest = _COMPOUND_THRESHOLD.sub(_compound_threshold, rest)
    reading = _range_reading(rest, ctx, tr) or read(rest, ctx, tr)
    # "casts by authors with over 1,000 followers": the casts, of those authors only
    reading = _among_reading(rest, ctx, tr) or reading
    # "the followers of the user whose casts got the most recasts": of that user only (read
    # word by word, "how many casts did the user with the most followers post" ranked users
    # by their followers)
    if reading.query is None or reading.query.top_user is None or not _compiles(reading.query):
        reading = _top_user_reading(rest, ctx, tr) or reading
    # Readings of two figures at once, which the metric-by-metric reading cannot compose:
    # "all replies divided by the number of top-level casts" (a ratio), "how many authors
    # follow more accounts than follow them" (two figures of each user; wins over a ratio)
    for two_figures in (_ratio_reading, _exceeding_reading):
        if (found := two_figures(rest, ctx, tr)) is not None:
            reading = Reading(
                query=found if isinstance(found, Query) else None,
                asks_number=True,
                counts=True,
                problem=found if isinstance(found, str) else None,
            )
    return _share_of_the_top(_among_the_active(rest, reading))


def _share_of_the_top(reading: Reading) -> Reading:
    """``reading`` with a share of a ranking's first users read as one figure: "what
    percentage of all casts were posted by the five most active users" is the casts of the
    five users with the most casts out of all casts (``Query.among``, ties at the edge broken
    by name, as the ranking lists them). A share grouped by user had no whole to divide by."""
    q = reading.query
    if (
        q is None
        or not q.share
        or q.group_by != "user"
        or q.order is None
        or q.limit is None
        or q.having is not None
        or layer.METRICS[q.metric].user is None
    ):
        return reading
    top = Query(q.metric, "user", q.conditions, q.time_range, order=q.order, limit=q.limit)
    reading.query = dataclasses.replace(q, group_by=None, order=None, limit=None, among=top)
    return reading


# The verbs of casting: "users who posted after 4am", "accounts that cast from 04:00 on",
# "people active since 5am".
_CAST_VERB = re.compile(r"\b(?:posted|posting|posts|post|cast|casted|casting|casts|active)\b")


def _among_the_active(rest: str, reading: Reading) -> Reading:
    """``reading`` with a profile figure's time range read as when its users cast: "among
    users who posted after 4am, which three have the most followers" ranks by followers the
    users with a cast in that range (``Query.among``). A profile figure is a snapshot with no
    history, so the range can say nothing else; without a verb of casting the question is
    left as read (and refused: "who had the most followers at 4am")."""
    q = reading.query
    if (
        q is None
        or q.time_range is None
        or q.among is not None
        or q.group_by != "user"
        or layer.SOURCES[layer.METRICS[q.metric].source].time is not None
        or not _CAST_VERB.search(rest)
    ):
        return reading
    active = Query("casts", "user", time_range=q.time_range)
    reading.query = dataclasses.replace(q, time_range=None, among=active)
    return reading


ORDINAL_WORDS = {
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
# "the second most active hour", "who posted the 3rd most casts", "the 2nd-highest": a place
# in a ranking, said before the word that ranks (digits there are no day of the month)
_ORDINAL_RANK = re.compile(
    rf"\b(?:(?P<word>{'|'.join(ORDINAL_WORDS)})|(?P<digits>\d{{1,2}})(?:st|nd|rd|th))[\s-]+"
    rf"(?=(?:{'|'.join(sorted(lexicon.ORDER_DESC | lexicon.ORDER_ASC))}|[a-z]+est)\b)"
)


def ordinal_rank(q: str) -> tuple[str, int | None]:
    """``q`` without the one ordinal placing a group in a ranking ("the third most replied
    cast" → "the most replied cast"), and that place (3); (``q``, None) when there is none,
    or more than one. Pure."""
    found = list(_ORDINAL_RANK.finditer(q))
    if len(found) != 1:
        return q, None
    m = found[0]
    place = ORDINAL_WORDS[m.group("word")] if m.group("word") else int(m.group("digits"))
    if place < 2:
        return q, None  # "the 1st most": the first, as without it
    return q[: m.start()] + q[m.end() :], place


def _tags(m: re.Match[str], q: str, ctx: Context) -> str:
    """ "tags" as "mentions" when whom is tagged follows it: people, "@", or a known user's
    name ("who tags dwr"); else as written ("which tags are used most")."""
    rest = q[m.end() :]
    whom = re.match(r"[a-z0-9_.-]+", rest)
    if (whom and whom.group(0) in ctx.users) or re.match(
        rf"(?:(?:other|another|the|some|more|most)\s+){{0,2}}(?:{_PEOPLE}|someone|somebody|anyone"
        r"|anybody|others|@)",
        rest,
    ):
        return "mentions "
    return m.group(0)


def _respelled(text: str, fixes: dict[str, str]) -> str:
    """``text`` with each whole word that ``fixes`` names replaced by its reading. Pure."""
    return re.sub(r"\b[a-z]+\b", lambda m: fixes.get(m.group(0), m.group(0)), text)


_SHARE_WHOLE = re.compile(
    r"(?:percent(?:age)?|%|share|proportion|fraction|pct)\s+of\s+(?:all\s+)?(?:the\s+)?"
    r"([a-z]+)\b"
)


# A verb that says what the part's rows did, after the whole they are counted in: "what
# percent of all the posts were made between 3 and 4", "… of all casts happened 3-4am".
_PREDICATE_VERB = re.compile(
    r"\b(?:were|was|is|are|got|happen(?:ed|s)?|happend|occurred|came|fell|landed)\b"
)


def _range_in_predicate(q: str, range_at: int) -> bool:
    """Whether the time range starting at ``range_at`` in ``q`` (a share's question, its share
    words made "sharetoken") is said of the part, after a verb that follows the whole ("what
    % of all casts were posted 3-4am": of all casts), not in the whole ("what share of casts
    after 3am were replies": of the casts after 3am)."""
    start = q.find("sharetoken")
    return 0 <= start < range_at and bool(_PREDICATE_VERB.search(q[start:range_at]))


def share_whole(question: str) -> str | None:
    """The metric the whole of a share counts as the question names it: "what % of all the
    recasts were dwr's" → "recasts", "% of posts that are replies" → "casts"; None when the
    word after "of" names no metric ("the share of dwr's …"). Pure."""
    m = _SHARE_WHOLE.search(question)
    if m is None:
        return None
    word = m.group(1)
    if _names_casts(word):
        return "casts"
    return lexicon.METRIC_NOUNS.get(word)


def _without_purpose(q: str, ctx: Context) -> str:
    """``q`` without the purpose said before it ("for a creator profile, what's …", "quick
    check: how many …", "for a report on overnight activity I need …"): the asker's reason
    for asking, whose words are no part of what is asked. A purpose that names a known user
    ("for a short bio of timdaub, what follower count does his profile show") may say whom
    the question is about: the user stays, before the question ("timdaub, what …")."""
    m = lexicon.PURPOSE.match(q)
    if m is None:
        return q
    named = [w for w in tokens(m.group(0)) if w.lstrip("@") in ctx.users]
    rest = q[m.end() :].strip()
    return f"{' and '.join(dict.fromkeys(named))}, {rest}" if named else rest


def _restatements(q: str, ctx: Context) -> str:
    """``q`` (lower case) with chat shorthand written out and what the asker says again, or
    rules out, taken away: "top lvl", "atleast", "cnt", "he @'d", "half past midnight"; "I
    mean …", "I want people, not posts", "(replies count)", "counting her replies too", an
    image "(an i.imgur.com embed or an image file)", "not the recasts his own casts
    received", "in the users table", "not only the ones who posted". Each had been read as
    words of the question: unknown, a mean, a filter or the other direction. Pure."""
    q = re.sub(r"\btop[\s-]?lvl\b", "top-level", q)  # chat: "top lvl casts"
    q = re.sub(r"\batleast\b", "at least", q)  # chat: "atleast once"
    if "cnt" not in ctx.users:
        q = re.sub(r"(?<![\w@])cnt(s?)\b", r"count\1", q)  # chat: "recast cnt 2-3am"
    # "… started a new thread? I mean posted something that wasn't a reply": the asker
    # saying it again, not a mean
    q = re.sub(r"(?:^|(?<=[\s,.;:?!]))i (?:just )?mean,?\s", "", q)
    # "…, and I want people, not posts": what is counted, said again against the casts
    q = re.sub(
        r"[,;]?\s*(?:and\s+)?(?:(?:i|we)\s+(?:want|need|mean)\s+|count(?:ing)?\s+)?(?:the\s+)?"
        r"(?:people|users|accounts|authors|ppl|posters),?\s+not\s+(?:the\s+)?"
        r"(?:posts|casts|messages|msgs)\b",
        "",
        q,
    )
    # "(replies count)": replies are among the casts counted
    q = re.sub(r"\(\s*repl(?:ies|ys) (?:count|included|too|as well)\s*\)", " replies included", q)
    # "half past midnight": the clock reading of the half hour after it
    q = re.sub(
        r"\b(half|quarter) past midnight\b",
        lambda m: "12:30am" if m.group(1) == "half" else "12:15am",
        q,
    )
    q = re.sub(r"(?<!\w)@(?:'d|-?ed)\b", "mentioned", q)  # chat: "he @'d someone"
    # "a cast with an image (an i.imgur.com embed or an image file)": what the kind of cast
    # is, said again in brackets; its words had been read as one more filter (imgur only)
    q = re.sub(
        r"\b((?:image|picture|pic|photo|link|url)s?)\s*\((?:an?|e\.g\.|i\.e\.|eg|ie)\s[^()]*\)",
        r"\1",
        q,
    )
    # "posts per day, counting her replies too": her replies among the casts ("counting
    # replies" alone says what is counted: "how many people replied? counting replies")
    q = re.sub(
        r"(?<!not )\bcounting ((?:his|her|their) repl(?:ies|ys)"
        r"|repl(?:ies|ys)(?= (?:too|also|as well)\b))",
        r"including \1",
        q,
    )
    # "the recasts dwr made himself, not the recasts his own casts received": the other
    # direction, said to rule it out, is no part of the question
    q = re.sub(
        r"[,;]?\s*(?:and\s+)?(?:not|rather than|as opposed to|instead of)\s+(?:the\s+)?"
        r"(?:ones?|recasts?|replies|likes|reactions|mentions)\s+(?:that\s+)?"
        r"(?:his|her|their|its)\s+(?:own\s+)?(?:casts?|posts?|messages?)\s+"
        r"(?:received|got|drew|get)\b",
        "",
        q,
    )
    # "all user profiles in the users table": the table that holds them, which says no more
    q = re.sub(
        r"\s*\b(?:in|from) the (?:users|casts|reactions|profiles) (?:table|snapshot)\b", "", q
    )
    # "average followers per profile, not only the ones who posted", "including those that
    # never cast": every profile, said against the authors; the verb of casting had made it
    # the authors' average
    q = re.sub(
        r",?\s*(?:and\s+)?(?:not (?:just|only)|including|incl\.?|even)\s+"
        r"(?:(?:the|those|ones|ppl|people|users|accounts|profiles)\s+)+(?:who|that)\s+"
        r"(?:have\s+|has\s+|had\s+)?(?:never\s+|not\s+|didn't\s+|did not\s+)?"
        r"(?:posted|post|cast|casted)\b(?:\s+anything)?",
        "",
        q,
    )
    return q


def plan(question: str, ctx: Context) -> Plan:
    """Read ``question`` and plan it. Always returns a Plan.

    Analytic: every word is understood and composes into one query over the semantic layer
    (``plan.query``; ``plan.sql`` is its SQL). Semantic or hybrid: the question asks what
    casts say about a topic. Unanswered (``plan.note`` says why): it asks for a number or a
    ranking and some words are not understood (named in the note), the words do not make one
    query, or its time range lies outside the data.
    """
    return _plan(question, ctx, {})


def _plan(question: str, ctx: Context, typos: Mapping[str, str]) -> Plan:
    """``plan``, the question's words ``typos`` (typo → word) already respelled in it."""
    q = " ".join(question.lower().replace("’", "'").split())
    spoken = q
    # "the frist pic", "what pecentage": typos of the words read by pattern, read first
    early = {
        w: fix
        for w in set(re.findall(r"[a-z]+", q))
        if (fix := lexicon.pattern_correction(w, ctx.users))
    }
    q = _respelled(q, early) if early else q
    # "how much of all the posts is briang": a share of them, not briang's count
    q = re.sub(r"\bhow much of (?=(?:all|every|the)\b)", "what share of ", q)
    # "replies per hour but w/o briang": the "but" before what is left out says nothing more
    q = re.sub(r"\bbut (?=(?:without|w/o|except|excluding|not counting|leaving out)\b)", "", q)
    # "what share of every reply": of all of them (it had been of the user's own casts)
    q = re.sub(r"\b(share|percentage|percent|proportion|fraction|%) of every\b", r"\1 of all", q)
    # chat: "need the #s" are the numbers (not after "hashtag": "the hashtag #s")
    q = re.sub(r"(?<![\w#])(?<!hashtag )(?<!tag )#'?s\b", "numbers", q)
    asked = q  # as asked: the rewrites below may say a share's whole in other words
    # "greg recast a few posts - whose were they?", "dwr replied to some people. who?": a
    # statement, then who or whose its rows were, asked of it ("whose: greg recast …"); the
    # statement alone had been read as a count of its rows
    q = re.sub(
        r"^(?P<said>[^?]*[a-z0-9][^?]*?)\s*(?:[-–—,;:]|\.+)\s*(?P<wh>whose|who|whom)"
        r"(?:\s+(?:were|was|are|is)\s+(?:they|them|those|these|it|that))?\s*[?!.]*$",
        r"\g<wh>: \g<said>",
        q,
    )
    q = re.sub(r"(?<=\d)\s*[–—]\s*(?=\d)", "-", q)  # "3–4am", "03:00—04:00"
    q = re.sub(r"\b(between|from) the hours? of\b", r"\1", q)  # "between the hours of 3 and 4"
    # "on the subject of wallets", "with regard to AI": about
    # "casts re jobs", "who posts most re: careers": regarding (not the "re" of "re-cast")
    q = re.sub(r"(?<![\w'-])re:?(?=\s+[a-z])", "about", q)  # not "we're", "they're"
    q = re.sub(r"(?<![\w-])(?:abt|'?bout)(?=\s+[\w@#\"'])", "about", q)  # chat: "casts abt nfts"
    q = re.sub(r"\b(mid|to)?nite\b", lambda m: f"{m.group(1) or ''}night", q)  # chat: "midnite"
    # "name the top two authors": at a sentence's start, the verb (list), not a user's name
    q = re.sub(r"(?:^|(?<=[.?!;:] ))name (?=(?:the|all|every|each|top|\d+)\b)", "list ", q)
    # chat: "the 1st hr", "per hr", "24 hrs" (a user named hr keeps the name)
    if "hr" not in ctx.users:
        q = re.sub(r"(?<![\w@])hr(s?)\b", r"hour\1", q)
    # "dwr's 1st post": the first (a day of the month is "the 1st" or "march 1st")
    q = re.sub(
        r"\b1st (?=(?:cast|post|reply|recast|like|reaction|message|comment|follow|hour|time)s?\b)",
        "first ",
        q,
    )
    q, rank = ordinal_rank(q)  # "the second most active hour"
    q = re.sub(r"\b(?:wat|wut|wot)\b", "what", q)  # chat: "wat time was …"
    q = _restatements(q, ctx)
    q = re.sub(r"\b(?:btwn|betw|bw)\b", "between", q)  # chat: "btwn 3-4am"
    # "what share of all 888 casts": the whole's size said beside it is no threshold (the
    # answer states the whole it counted)
    q = re.sub(
        r"((?:\b(?:share|percent(?:age)?|proportion|fraction)|%)\s+of\s+(?:all\s+)?(?:the\s+)?)"
        r"\d[\d,]*\s+(?=(?:casts|posts|replies|recasts|likes|reactions)\b)",
        r"\1",
        q,
    )
    # "who's always @-ing people": who does it the most
    q = re.sub(r"\b(who(?:'s| is| are)?) always ([a-z@-]+ing\b[^?.!,;]*)", r"\1 \2 the most", q)
    # "@-ing people", "who @s others": mentioning; "who tags other users": mentions, when
    # whom follows ("tag", "tagged" and "tagging" are the metric's verbs already; "which tags"
    # alone are no mentions)
    q = re.sub(r"(?<![\w@])@-?ing\b", "mentioning", q)
    q = re.sub(r"(?<![\w@])@-?'?d\b", "mentioned", q)  # "the ppl who @'d him"
    q = re.sub(r"(?<![\w@])@s\b", "mentions", q)
    q = re.sub(r"(?<![\w@])@(?=\s)", "mention", q)
    q = re.sub(r"\btags\s+(?=[a-z0-9_.@-]+)", lambda m: _tags(m, q, ctx), q)
    # "the biggest reaction from people", "likes from users": from anyone, which a figure
    # received counts anyway ("from users who …", "from others" still say whom)
    q = re.sub(
        r"\s*\bfrom (?:people|users|folks|everyone|everybody|anyone|accounts|the community)\b"
        r"(?!\s+(?:who|that|which|with|having|whose|in|of|on|at|named|called|like)\b)",
        "",
        q,
    )
    # "the most prolific responders in the conversations": replies are in threads anyway
    q = re.sub(
        r"\b((?:repl|respon)[a-z]*)\s+in (?:the )?(?:conversations|threads|convos|discussions)\b",
        r"\1",
        q,
    )
    # "users who posted at least one cast", "everyone who cast in the sample": the authors
    # (a threshold of one cast is being one; "users who posted about X" stays as it is)
    q = re.sub(
        r"\b(?:users|people|ppl|accounts|profiles|everyone|everybody|anyone|those)\s+"
        r"(?:who|that)\s+(?:have\s+|has\s+|ever\s+)?(?:posted|cast|casted|wrote|authored)"
        r"(?:\s+at least (?:one|1|a single|once)(?:\s+(?:cast|post|message)s?)?"
        r"|(?:\s+anything)?\s+(?:in|within) the (?:sample|data(?:set)?)"
        r"|(?=\s*(?:[,.?!;]|$)))",
        "authors",
        q,
    )
    # "who replied to the most different people", "how many distinct users did dwr reply
    # to": the users a user's replies went to (reply_reach), where the people counted were
    # read as the repliers
    people_words = (
        r"(?:(?:different|distinct|unique|other|separate)\s+)?"
        r"(?:people|users|accounts|ppl|folks|posters|authors)"
    )
    q = re.sub(
        r"\b(?:repl(?:y|ies|ied|ying)|respond(?:s|ed|ing)?|answer(?:s|ed|ing)?) to (?:the )?"
        r"(?:most|largest number of|highest number of|greatest number of|biggest number of"
        rf"|widest range of|widest variety of)\s+(?:of\s+)?{people_words}\b",
        "had the most reply_reach",
        q,
    )
    q = re.sub(
        rf"\bhow many {people_words} (?:did|has|have) ([\w@.-]+) "
        r"(?:repl(?:y|ied)|respond(?:ed)?|answer(?:ed)?) to\b"
        # a threshold after it counts replies per user: "how many users did dwr reply to
        # more than twice" are the users with 3+ of his replies, not all he replied to
        r"(?![^?.]*\b(?:twice|thrice|times|more than|at least|fewer than|less than|exactly"
        r"|or more)\b)",
        r"how many reply_reach did \1 have",
        q,
    )
    # "…? he skews evrything", "…?? he replys to himself nonstop": a remark about the person
    # the question names, after the question, asks nothing more
    q = re.sub(
        r"\?+\s*(?:he|she|they|he's|she's|they're|hes|shes|theyre|his|her|their)\b[^?]*$",
        "?",
        q,
    )
    # "leaving briang out of the calculation", "if u leave out briang": left out of what is
    # computed, which is the question's own figure
    q = re.sub(
        r"\bout of (?:the |this |that )?(?:calculation|calc|average|avg|mean|count|counts|numbers?"
        r"|stats|statistics|totals?|math|figures?|results?)\b",
        "out",
        q,
    )
    q = re.sub(r"\bif (?:you|u|we|i) (leave|exclude|ignore|drop)\b", r"\1", q)
    # "users who mentioned dwr in at least one of their casts": in any, as the verb says
    q = re.sub(
        r"\s*\bin (?:at least )?(?:one|1|any) of (?:their|his|her|its) (?:own )?"
        r"(?:casts|posts|messages)\b",
        "",
        q,
    )
    # "the main feed": casts outside every channel; said against a channel ("posts in a
    # channel rather than the main feed") it restates the channel
    q = re.sub(
        r",?\s*\b(?:rather than|instead of|as opposed to|and not|but not|not)\s+(?:in |on )?"
        r"(?:the )?main feed\b",
        lambda m: "" if "channel" in q else " in a channel",
        q,
    )
    q = re.sub(r"\b(?:in|on|to|into) (?:the )?main feed\b", "not in a channel", q)
    q = re.sub(r"\boutside (?:of )?(?:a |any |all |the )?channels?\b", "not in a channel", q)
    q = re.sub(
        r"\b(?:on|about) the (?:subject|topic|matter) of\b|\bwith (?:regard|respect) to\b"
        r"|\bin relation to\b|\bas regards\b",
        "about",
        q,
    )
    q = _without_purpose(q, ctx)
    for courtesy in lexicon.COURTESIES:
        q = re.sub(courtesy, " ", q).strip()  # "I'd like to know …", "… thanks!"
    q = re.sub(r"\b(\d{1,3}),(\d{3})\b", r"\1\2", q)  # "1,000 followers"
    q = _THOUSANDS.sub(_in_units, q)  # "5k followers", "five thousand followers": 5000
    q = _SYMBOL_COMPARE.sub(lambda m: f" {SYMBOL_COMPARE[m.group(1)]} ", q)  # ">=5000"
    # "between 1000 and 5000 followers", "3-5 casts": a range of a count, not of hours
    q = _COUNT_RANGE.sub(_count_range, q)
    q = _COUNT_RANGE_AFTER.sub(_count_range_after, q)
    q = re.sub(r"\b(top|bottom)(\d+)\b", r"\1 \2", q)  # "top3 posters"
    # typed without the apostrophe, "dont count replies" is "don't"
    q = re.sub(r"\b(don|doesn|didn|isn|aren|wasn|weren)t\b", r"\1't", q)
    q = re.sub(r"\bwhos\b", "who's", q)  # "whos the most followed account"
    q = re.sub(r"\b(?:do not|don't) count\b", "not counting", q)  # "don't count replies"
    q = re.sub(r"\b(?:do not|don't) include\b", "not including", q)
    q = re.sub(r"\bw/?(?=\s)", "with", q)  # "users w 3+ casts", "casts w/ pics"
    # A zero of a profile figure said in words: "profiles that follow nobody", "don't follow
    # anybody at all", "follow zero other accounts", "have no followers": exactly 0 (a
    # profile figure is a number, not something done or not)
    q = re.sub(
        rf"\b(?:do not|does not|did not|don't|doesn't|didn't) (follows?|following)\s+"
        rf"(?:anybody|anyone|any (?:other )?(?:{_PEOPLE})\b)(?: at all)?",
        r"\1 exactly 0 accounts",
        q,
    )
    q = re.sub(
        rf"\bfol{{1,2}}ow(s|ing)?\s+(?:nobody|no one|no-one|(?:0|zero|no) (?:other )?"
        rf"(?:{_PEOPLE})\b)(?: at all)?",  # "folowing 0 accounts" typed tersely too
        lambda m: f"follow{m.group(1) or ''} exactly 0 accounts",
        q,
    )
    q = re.sub(r"\b(have|has|with) (?:0|zero|no) followers\b", r"\1 exactly 0 followers", q)
    # a participle after the people, a relative clause cut short: "profiles following 0
    # accounts", "accounts followed by over 5000 people", "users having 3+ followers"
    q = re.sub(
        rf"\b((?:{_PEOPLE}|{_AGENTS}) )(fol{{1,2}}owing|fol{{1,2}}owed by|having)\s+(?=(?:exactly "
        r"|at least |at most |more than |fewer than |less than |over |under )?\d)",
        lambda m: (
            m.group(1)
            + (
                "that have "
                if m.group(2) == "having"
                else "that are followed by "
                if m.group(2).endswith(" by")
                else "that are following "
            )
        ),
        q,
    )
    # tersely, "profiles at least 5000 followers": the people with that many
    q = re.sub(
        rf"\b((?:{_PEOPLE})\s+)(?=(?:at least|at most|more than|fewer than|over|under)\s+\d)",
        r"\1with ",
        q,
    )
    q = re.sub(r"\b(\d+)\+", r"at least \1", q)  # "10+ casts"
    # "threads that involved five or more people", "convos involving 3+ authors": a number
    # of people a thread holds, as "included"
    q = re.sub(
        r"\binvolv(?:e|es|ed|ing)\s+(?=(?:exactly |at least |at most |more than |fewer than "
        rf"|less than |over |under )?(?:\d|(?:{'|'.join(lexicon.NUMBERS)})\b))",
        "included ",
        q,
    )
    # tersely, "users who only reply count": the count closing it is of the people (or the
    # threads) it opens with, as "how many users who only reply" ("dwr replies count" counts
    # replies already)
    q = re.sub(
        rf"^((?:{_PEOPLE}|{_AGENTS}|threads|conversations|convos)\b.*?)\s+"
        r"(?:count|number|total|tally)"
        r"\s*[?.!]*$",
        r"how many \1",
        q,
    )
    q = re.sub(r"\bmultiple\b", "at least 2", q)
    q = re.sub(r"\bw/o\b", "without", q)  # "profiles w/o casts"
    q = re.sub(r"\bnum\b", "number", q)  # chat: "num of users"
    q = re.sub(r"\b(?:pct|perc)\b", "percent", q)  # chat: "share of links pct"
    # "the share of casts with links in percent": the unit of a share already asked for
    q = re.sub(
        r"^(.*\b(?:share|proportion|fraction|percentage|percent) of\b.*?)\s+"
        r"(?:in |as (?:a )?)?percent(?:age)?\s*([?.!]*)$",
        r"\1\2",
        q,
    )
    q = re.sub(r"(?:^|(?<=\s))#\s+(?:of\s+)?", "number of ", q)  # "by # of threads"
    # "did not cast even once": never, which the negation says of the deed alone
    q = re.sub(
        r"((?:\bnot|n't|\bnever)\s+[a-z]+)\s+(?:even\s+)?(?:once|one time|a single time)\b",
        r"\1",
        q,
    )
    q = _NAMED_OF.sub(lambda m: _owner_first(m, ctx), q)  # "the wallet thread of dwr"
    q = _LINK_MOTION.sub(r"\1 to", q)  # "a link which is going to twitter.com"
    # "who shares the most pics": after its subject, "shares" is the verb (posting), not the
    # noun ("how many shares did dwr get" are reshares, and stay unknown)
    q = re.sub(
        rf"\b(who|(?:which|what) (?:{_PEOPLE})|(?:{_PEOPLE}) (?:who|that))\s+shares\b",
        r"\1 share",
        q,
    )
    q = _EXCLUSION_REASON.sub(
        lambda m: _without_reason(m, ctx), q
    )  # "casts with multiple mentions": more than one
    q = re.sub(r"\b(?:only|just|exactly) once\b", "exactly 1 times", q)  # "cast only once"
    q = re.sub(r"\b(?:only|just) (\w+) once\b", r"\1 exactly 1 times", q)  # "only cast once"
    # "users with only one cast", "just two replies": a number of them exactly
    q = re.sub(r"\b(?:only|just) (?=(?:one|two|three|four|five|a single|\d+) \w)", "exactly ", q)
    q = re.sub(r"\bexactly a single\b", "exactly 1", q)
    q = re.sub(r"\b(?:whether )?(?:a )?repl(?:y|ies) or not\b", "replies_included", q)
    q = re.sub(r"\btime of (?:the )?(?:day|night)\b", "hour", q)  # "what time of night"
    q = re.sub(r"\bhours? of (?:the )?day\b", "hour", q)  # "at which hour of the day": hours
    # "farcaster itself", "the thread itself": an intensifier (not "replied to itself")
    q = re.sub(r"(?<!\bto)(?<!\bon)(?<!\bat) itself\b", "", q)
    # "… the most? like the most active accounts"; after a question about likes, "? like
    # replies" goes on with them (the likes of replies)
    q = _HEDGE_LIKE.sub(
        lambda m: (
            m.group(0)
            if m.group(2) and re.search(r"\blik(?:e|es|ed|ing)\b", q[: m.start()])
            else (m.group(1) or m.group(2) or "") + " "
        ),
        q,
    )
    q = _EXAMPLES_LIKE.sub(_such_as, q)  # "…, like cold or snow": examples, not likes
    q = _BUTTON.sub(r"\1", q)  # "hitting the recast button": recasting
    q = _THREAD_SIZE.sub("number of casts in ", q)  # "the size of the largest thread"
    # "the average thread size", "avg thread length": casts per thread (a thread's length is
    # its casts, as in "the longest thread")
    q = re.sub(
        r"\b(thread|conversation|convo) (?:size|length)s?\b",
        lambda m: f"number of casts per {m.group(1)}",
        q,
    )
    q = _HOW_LONG.sub(r"how many casts are in \1", q)  # "how long is the longest thread"
    q = _HOW_LONG_CASTS.sub(r"the average length of \1", q)  # "how long are casts"
    # "spread out over the night": over the span the data covers, grouped by what the
    # question names ("number per hour"); a spread by nothing is refused as a breakdown is
    q = re.sub(
        r"\b(?:spread|distributed) (?:out )?(?:over|across|through(?:out)?) (?:the )?"
        r"(?:night|evening|morning|day|period|sample|data(?:set)?|time)\b",
        " distribution ",
        q,
    )
    # "what percentage of casts are replies", "% of casts", "as a percentage": a share
    q = re.sub(
        r"\b(?:percent(?:age)?|proportion|fraction|pct|share)\s+of\b|%\s*of\b", " sharetoken of", q
    )
    q = re.sub(r"\b(?:as|in) (?:a )?(?:percent(?:age)?|%)", " sharetoken ", q)
    if "sharetoken" in q:
        q = re.sub(r"\s(?:x|\*) ?100\b", " ", q)  # "(replies / all casts x 100)"
    # "how dwr's posting was spread over the hours": per hour
    q = re.sub(r"\b(?:spread|distributed) (?:out )?(?:over|across) (?:the )?", "per ", q)
    # "the posts that talk about ChatGPT by name": the word itself, a term
    q = re.sub(
        r"\b(?:(?:talk|talks|talked|talking|write|writes|wrote|speak|speaks|spoke)\s+about"
        r"|(?:refer|refers|referred|referring)\s+to|(?:mention|mentions|mentioned|mentioning))"
        r"\s+([^,?.!;'\"]+?)\s+by name\b",
        r"mention '\1'",
        q,
    )
    # "the most ENS mentions by user": a word no user and no word of the planner, before
    # "mentions", is the term mentioned (a handle's mentions stay the handle's: "dwr mentions")
    q = re.sub(
        r"(?<![\w@'.-])([a-z][a-z0-9]*) mentions\b",
        lambda m: (
            m.group(0)
            if m.group(1) in ctx.users
            or lexicon.known(m.group(1))
            or _number(m.group(1)) is not None
            else f"mentions of '{m.group(1)}'"
        ),
        q,
    )
    # "which domain wins", "what hour came out on top": the one a ranking puts first
    q = re.sub(
        r"\b((?:which|what) ([a-z]+)) (?:wins|won|comes out on top|came out on top)\b",
        lambda m: (
            f"{m.group(1)} is top"
            if m.group(2) in lexicon.DIMENSION_WORDS or m.group(2) in lexicon.ANY_SITE
            else m.group(0)
        ),
        q,
    )
    # "recasts of casts that are replies": of replies (the kind of cast is what they are)
    q = re.sub(
        r"\b(?:casts?|posts?|messages?) (?:that|which) (?:are|is|were|was) (?:themselves )?"
        r"(repl(?:y|ies)|top-level|top level|original)\b",
        r"\1",
        q,
    )
    # "profiles with an empty bio", "a blank bio": no bio
    q = re.sub(r"\b(?:an? )?(?:empty|blank|missing) (bios?|biograph(?:y|ies))\b", r"no \1", q)
    q = _HOW_OFTEN.sub(_how_often, q)  # "repeat posters": posters with at least 2 casts
    # "the top gm-ers", "biggest nft-ers": an agent noun made of a topic names the people who
    # post about it
    q = re.sub(r"\b([a-z0-9]+)-ers\b", r"people posting about \1", q)
    for idiom, plain in lexicon.IDIOMS.items():
        q = re.sub(idiom, plain, q)
    # "who says thanks the most on here", "top posters around here", "on this app": the place
    # every cast of the data is in, no topic of them (nor is the network's name closing the
    # question: "who says gm the most on farcaster")
    q = re.sub(
        r"\s*\b(?:(?:on|around|in) here|(?:on|in) (?:this|the) (?:app|platform|site|network)"
        r"|on (?:farcaster|warpcast)(?=\s*[?.!]*$))\b",
        "",
        q,
    )
    # "casts where ppl are thanking someone", "posts in which users were complaining": what
    # the people are doing in the casts is what the casts are about
    q = re.sub(
        rf"\b(casts?|posts?|messages?) (?:where|in which|wherein) (?:(?:{_PEOPLE}|someone|"
        r"somebody|they|he|she)\s+)(?:is|are|was|were)\s+(?=[a-z]+ing\b)",
        r"\1 about ",
        q,
    )
    q = _pronoun_topic(q, ctx)
    q, unreadable = _negated_author(q, ctx)
    q = _LIST_OF_PEOPLE.sub(lambda m: f"which {m.group(1)} ", q)
    q = _replies_as_condition(q)
    q = _display_names_as_users(question, q, ctx)
    if (who := _WHO_GOES_BY.fullmatch(q.strip(" ?.!"))) and not re.search(
        rf"(?<![\w.-]){re.escape(who.group('user'))}(?![\w.-])", asked
    ):
        # "which user is Dan Romero", "the username of Varun Srinivasan": the profile whose
        # display name the question wrote (as a proper name) is looked up
        lookup = Query("display_name", "user", (Condition("user", who.group("user")),))
        return Plan(
            "analytic",
            "layer",
            sql=layer.compile_sql(lookup),
            describe=describer(lookup),
            tried=["layer"],
            query=lookup,
        )
    q = re.sub(r"\s*/\s*(hour|day|user|author|person|thread)\b", r" per \1", q)  # "casts/hour"
    q = written_clock(q)  # "half past three" → "3:30"
    q = written_dates(q, ctx.now)  # "2023-03-04T03:00Z" → "03:00 utc on 2023-03-04"
    found = find_time_range(q, ctx.now, ctx.first)
    tr = found[0] if found else None
    rest = q if not found else q[: found[1][0]] + " " + q[found[1][1] :]
    if found:
        rest = without_rough_times(rest, found[0])  # "…, around midnight"
        rest = without_restated_range(rest, found[0])  # "… (00:00 to 01:00 UTC)"
        rest = without_back_reference(rest)  # "… most casts that day"
    reading = _read_whole(rest, ctx, tr)
    corrected: dict[str, str] = {**typos, **early}
    if reading.query is None and reading.unknown:
        # "more folowers: greg or mk": a typo of a catalogue word is read as that word, but
        # only when the whole question then reads as one query; else the word stays unknown
        # and the refusal names it as written
        fixes = {w: fix for w in reading.unknown if (fix := lexicon.correction(w, ctx.users))}
        if fixes:
            fixed = _respelled(rest, fixes)
            again = _read_whole(fixed, ctx, tr)
            if again.query is not None:
                reading, corrected = again, {**corrected, **fixes}
            elif not typos:
                # "what % of posters onyl cast once": the word mistyped is one a rewrite
                # above reads ("only cast once"), so the question is read again from the
                # start, respelled (once)
                again_whole = _plan(_respelled(spoken, fixes), ctx, fixes)
                if again_whole.kind == "analytic":
                    return again_whole
    tried = ["layer"]
    if unreadable is not None:
        return Plan("unanswered", "layer", tried=tried, time_range=tr, note=unreadable)
    # "who got blocked the most", "which accounts follow dwr": acts between accounts that no
    # table records, refused before a count of something else or a search of casts answers
    if (unheld := _relation_not_held(rest, ctx) or _elsewhere(rest)) is not None:
        return Plan("unanswered", "layer", tried=tried, time_range=tr, note=unheld, final=True)
    # Every word understood and composing into one query: a query, even when asked tersely
    # ("casts w/ pics", "replies to dwr"); its sources list the casts behind the number.
    if reading.query is not None:
        if tr is not None and _outside_data(tr, ctx):
            first = f"{ctx.first:%Y-%m-%d %H:%M}" if ctx.first else "?"
            return Plan(
                "unanswered",
                "layer",
                time_range=tr,
                tried=tried,
                note=f"the data holds events from {first} to {ctx.now:%Y-%m-%d %H:%M} UTC; "
                f"{tr.label} is outside it, and a count there would present missing data as "
                "zero",
                final=True,
            )
        if reading.query.share:
            # "what % of all recasts were dwr's": of all recasts, as asked ("casts that are
            # replies" has become "replies" by then)
            reading.query = dataclasses.replace(
                reading.query,
                share_of=share_whole(asked),
                part_time=found is not None and _range_in_predicate(q, found[1][0]),
            )
        if rank is not None:  # the layer refuses a place in a ranking of nothing
            reading.query = dataclasses.replace(reading.query, rank=rank, limit=None)
        elif _names_a_set(rest, reading.query):
            # "users w 3+ top level casts": how many there are, and who
            reading.query = dataclasses.replace(reading.query, total=True)
        try:
            sql = layer.compile_sql(reading.query)
            sources = layer.sources_sql(reading.query)
        except LayerError as err:
            return Plan("unanswered", "layer", tried=tried, note=str(err))
        return Plan(
            "analytic",
            "layer",
            sql=sql,
            sources_sql=sources,
            time_range=tr,
            describe=_reading_typos_as(describer(reading.query), corrected),
            tried=tried,
            query=reading.query,
        )
    # "the email addresses of the ppl who posted the most": a property of the people asked
    # about that no profile holds, refused before their casts are searched for it as a topic
    if (lacking := _property_not_held(rest)) and lacking in reading.unknown + [
        w.removesuffix("s") for w in reading.unknown
    ]:
        return _not_held(lacking, tried)
    # "Which users cast most often about music? Return their counts": people ranked by casts
    # on a topic the question introduces, even when it asks for the counts too
    other_metric = any(m != "casts" for m in reading.metrics)
    if other_metric and (talked := _TALKED_ABOUT.search(q)):
        # "which users talked about followers and likes the most": the metrics' words are
        # what was talked about, not what ranks the users ("who got the most likes")
        other_metric = any(
            _metric_of(w) not in (None, "casts") for w in tokens(q[: talked.start()], ctx.users)
        )
    if reading.counts and reading.unknown and not other_metric:
        tried.append("hybrid_topic_users")
        if (ranked := hybrid_topic_users(q, ctx, tr)) is not None:
            ranked.tried = tried
            return ranked
    if reading.counts and (reading.unknown or reading.problem):
        # a count the words name but the layer cannot compose is refused, not searched
        return _refusal(reading, tried)
    if name := _unknown_author(q, ctx, reading.unknown):
        return Plan(
            "unanswered", "semantic_topic", tried=tried, note=f"there is no user named {name!r}"
        )
    # "Who has the most followers on Twitter?" ranks by a metric, not by a topic of casts
    for rule in (hybrid_topic_users, semantic_topic):
        if rule is hybrid_topic_users and (other_metric or rule.__name__ in tried):
            continue
        tried.append(rule.__name__)
        result = rule(q, ctx, tr)
        if result is not None:
            result.tried = tried
            return result
    tried.append("ranked_topic_users")
    if (ranked := ranked_topic_users(q, reading, tr)) is not None:
        ranked.tried = tried
        return ranked
    if reading.asks_number or NUMBER_WORDS.search(_MEAN_VERB.sub(" ", q)):
        return _refusal(reading, tried)
    # "dwr eth balance", "the account creation date of ccarella": a property of a user the
    # profiles do not hold, not a topic to search for
    # "which accounts are verified", "users with a verified badge": the same of the users a
    # question asks about, named or not
    about_users = reading.users or any(
        lexicon.DIMENSION_WORDS.get(w) == "user" for w in tokens(rest, ctx.users)
    )
    if about_users and (lacking := [w for w in reading.unknown if w in lexicon.NOT_HELD]):
        return _not_held(lacking[0], tried)
    # "casts by device", "break the casts down by client app": a grouping the layer lacks
    if reading.by_unknown and reading.metrics:
        return Plan(
            "unanswered",
            "layer",
            tried=tried,
            note=f"the layer cannot group by {reading.by_unknown!r}: it groups by user, hour, "
            "day, channel, thread and cast (`ozi metrics` lists what it knows)",
        )
    # "views on dwr's casts": a known user's casts measured by something the layer lacks
    if reading.unknown and reading.users and reading.metrics:
        return _refusal(reading, tried)
    # Anything else is a search: the casts closest in meaning to the whole question; tersely
    # beside a known user's name, that user's casts.
    author, search = _terse_author(q, ctx) or (None, _clean_topic(q))
    by = f" by {author}" if author else ""
    return Plan(
        "semantic",
        "semantic_fallback",
        search=search or _clean_topic(q),
        time_range=tr,
        fid=ctx.users[author] if author else None,
        tried=tried,
        describe=lambda rows: f"Casts{by} closest in meaning to the question{_suffix(tr)}",
    )
