"""The semantic layer: one declarative catalogue of what people can ask about Farcaster, and
its compiler to SQL over the public tables.

The catalogue has three parts, each entry naming the words people use for it:

* **metrics**: a number computed over a source (``casts``, ``reactions``, ``users``,
  ``cast_engagement``, or the mentions derived from casts), e.g. ``replies`` = count of casts
  that have a parent. A metric says which user it is about (the author, the replied-to user,
  the recast user, the mentioned user) and which cast, so "per user" and "per cast" mean the
  right thing for each.
* **dimensions**: what a metric can be grouped by (user, hour, day, channel, thread, cast).
* **filters**: conditions on the metric's rows (user, term, hashtag, reply or not, has link,
  has image, channel, from other users); a time range applies to the metric's own time column.

A ``Query`` picks one metric, at most one dimension, filters, a time range, an order, a limit
and a threshold; ``compile_query`` builds its SELECT as a sqlglot syntax tree (values are
literals in the tree, never spliced text). The offline planner, the LLM planner's prompt
(whose queries this module compiles too), `ozi metrics` and the README read this one
catalogue: adding a metric is adding one entry.

Pure: no I/O. Every statement compiled here still goes through the SQL guard before it runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import sqlglot
from sqlglot import exp

from ozi_assets.questions.timerange import TimeRange

DIALECT = "duckdb"


class LayerError(ValueError):
    """A query the layer cannot compile: unknown metric, or a dimension or filter the metric
    does not have. The message says which, in words a person can act on."""


@dataclass(frozen=True)
class Source:
    """Rows a metric counts: a public table (or a query over one), aliased ``t``.

    ``user`` is the username of the row's actor as a SQL expression over ``t``; ``text`` the
    cast text, when the rows are casts (term and hashtag filters need it).
    """

    name: str
    sql: str  # a table name, or a SELECT over public tables
    time: str | None  # TIMESTAMPTZ column of t; None: the source has no history
    text: str | None = None
    casts: bool = False  # each row is (or names) a cast: hash, fid, username, timestamp, text
    # What a row is directed at (the cast replied to, the cast reacted to) is a reply, or a
    # top-level cast: conditions over t, None when the rows are directed at no cast.
    to_reply: str | None = None
    to_top_level: str | None = None


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        # A reply's parent is a reply when it is not the thread's root: known from the reply
        # itself, also when the parent was posted before the data begins.
        Source(
            "casts",
            "casts",
            't."timestamp"',
            text="t.text",
            casts=True,
            to_reply="t.parent_hash <> t.thread_hash",
            to_top_level="t.parent_hash = t.thread_hash",
        ),
        # A reaction's target is known to be a reply or not only when it is in the data.
        Source(
            "reactions",
            "reactions",
            't."timestamp"',
            to_reply="t.target_hash IN (SELECT c.hash FROM casts AS c WHERE c.is_reply)",
            to_top_level="t.target_hash IN (SELECT c.hash FROM casts AS c WHERE NOT c.is_reply)",
        ),
        Source("users", "users", None),
        Source("cast_engagement", "cast_engagement", 't."timestamp"'),
        # The aggregate's per-window top terms: a ranking of terms, not every word's count.
        Source("top_terms", "top_terms", "t.window_start"),
        # One row per (cast, @handle written in its text). Handles, not the mentions list:
        # some mentioned accounts (e.g. @purple) have no profile to resolve a fid to a name.
        # But only in casts whose message lists mentioned fids: the protocol records a
        # mention of a Farcaster user there, so an @name of another platform ("find me on
        # clubhouse.com/@name", "the @JournoDAO crew" with no fid) is no mention. An @ inside
        # a word or a URL path starts no handle.
        Source(
            "mentions",
            'SELECT c.hash, c.fid, c.username, c.text, c."timestamp", '
            "len(list_distinct(c.mentions)) AS mentioned_fids, "
            "lower(unnest(regexp_extract_all(c.text, "
            "'(^|[^A-Za-z0-9_/.])@([A-Za-z0-9][A-Za-z0-9_-]*)', 2))) "
            "AS handle FROM casts AS c WHERE len(c.mentions) > 0",
            't."timestamp"',
            text="t.text",
            casts=True,
        ),
    )
}


@dataclass(frozen=True)
class Metric:
    """One number people ask for.

    ``measure`` is the aggregate over ``t`` (the source's rows); ``where`` the condition that
    defines the metric, if any. ``user`` is the username the metric is about (``u.username``
    joins ``users`` on ``user_fid``); ``cast`` the hash of the cast it is about; ``others``
    the condition "the actor is not the user it is about" (replies to someone else).
    ``nouns`` and ``verbs`` are the field's words for it, read by the offline planner.
    """

    name: str
    description: str
    source: str
    measure: str
    where: str | None = None
    user: str | None = "t.username"
    user_fid: str | None = None  # join users on this fid column for u.username
    cast: str | None = None
    others: str | None = None
    nouns: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    received: str | None = None  # the metric this one becomes when it is received, not made
    to: str | None = None  # the fid the action is directed at (replied to, reacted to)
    to_cast: str | None = None  # the hash of the cast the action is directed at
    ranks: str | None = None  # the dimension "top N <metric>" ranks when none is named
    # The measure is itself a mean over the rows (the mean length of casts): "average" asks
    # for it as it is, and it is no count to total or take a share of.
    mean: bool = False
    # The measure is a profile's text (a display name, a bio), not a number: asked of the
    # users a question names, or per user, never totalled, ranked or compared.
    text: bool = False
    dimensions: tuple[str, ...] = ("user", "hour", "day")
    filters: tuple[str, ...] = ("user",)


@dataclass(frozen=True)
class Dimension:
    """A way to group a metric. ``expr`` uses ``{time}``, ``{user}`` or ``{cast}`` (the
    metric's own columns) or columns of ``t``."""

    name: str
    description: str
    expr: str
    words: tuple[str, ...]
    # A list per row of the source whose distinct items are its groups (a cast links to
    # several domains): grouped by it, each row counts once in each of its groups, and a row
    # with an empty list in none. ``expr`` then reads the item as ``t.<name>``.
    rows: str | None = None


@dataclass(frozen=True)
class Filter:
    """A condition on a metric's rows. ``condition`` may use ``{value}`` (a literal built
    from the filter's value), ``{text}``, ``{user}`` and ``{others}``; ``negated`` is the
    condition for "not ..." (None: it cannot be negated)."""

    name: str
    description: str
    condition: str
    negated: str | None = None
    words: tuple[str, ...] = ()
    takes_value: bool = False


# What a cast is, in itself: a metric whose rows are not casts but are about one (reactions,
# a cast's engagement) takes these as conditions on that cast ("recasts that casts with an
# image got", "likes on casts in channels").
CAST_PROPERTY_FILTERS = (
    "term",
    "mentions_user",
    "hashtag",
    "reply",
    "top_level",
    "has_link",
    "site",
    "has_hashtag",
    "has_image",
    "channel",
    "has_mention",
)
# …and a cast metric's rows, also by who posted them and what happened to them.
CAST_METRIC_FILTERS = (
    "user",
    *CAST_PROPERTY_FILTERS,
    "replied",
    "recast",
    "in_thread",
    "named_cast",
    "to_reply",
)
CAST_DIMENSIONS = ("user", "hour", "day", "channel", "thread", "cast")
# The casts themselves (not what they reply to) also group by the domains they link to.
OWN_CAST_DIMENSIONS = (*CAST_DIMENSIONS, "domain")
# Every reaction metric, given or received: about a cast (its target) and excluding self-reactions
# on request.
REACTION_DIMENSIONS = ("user", "hour", "day", "cast")
# Reactions made also group by whose casts they went to.
MADE_REACTION_DIMENSIONS = (*REACTION_DIMENSIONS, "to_user")
REACTION_FILTERS = ("user", "others", "named_cast", "to_reply")
# Reactions made also say whose casts they went to ("who recast dwr the most"); received
# ones are already about that user.
MADE_REACTION_FILTERS = (*REACTION_FILTERS, "to_user", "to_named_cast")
REACTION_CAST = "t.target_hash"
REACTION_OTHERS = "t.fid <> t.target_fid"
REPLIED_TO = "u.username"
# The people who react, by what they did: (metric name, verb, condition on reactions).
REACTOR_KINDS = (
    ("reactors", "liked or recast", None),
    ("recasters", "recast", "t.reaction_type = 'recast'"),
    ("likers", "liked", "t.reaction_type = 'like'"),
)


def received_reactions(
    name: str, description: str, measure: str, where: str | None = None
) -> Metric:
    """A metric of the reactions a user's casts (or a cast) received: about the casts'
    author, grouped and filtered as every reaction metric is."""
    return Metric(
        name,
        description,
        "reactions",
        measure,
        where=where,
        user=REPLIED_TO,
        user_fid="t.target_fid",
        cast=REACTION_CAST,
        others=REACTION_OTHERS,
        dimensions=REACTION_DIMENSIONS,
        filters=REACTION_FILTERS,
    )


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "casts",
            "casts posted, replies included",
            "casts",
            "count(*)",
            cast="t.hash",
            nouns=(
                "cast",
                "casts",
                "post",
                "posts",
                "message",
                "messages",
                "msg",  # tersely, "jayce msgs 2-4am"
                "msgs",
                "activity",
                "content",
                "stuff",
            ),
            verbs=(
                "cast",
                "casted",
                "casting",
                "casts",
                "post",
                "posted",
                "posting",
                "posts",
                "write",
                "wrote",
                "writing",
                "written",
                "authored",
                "prolific",  # "the most prolific casters"
                "publish",
                "published",
                "publishes",
                "publishing",
                "share",
                "shared",
                "sharing",
                "active",
                "made",
                "make",
                # taking part in a conversation is casting in it ("take part" is read as
                # "participate")
                "participate",
                "participated",
                "participates",
                "participating",
                "send",  # "casts sent by dwr"
                "sent",
                "sending",
                "sends",
                "talkative",  # "the most talkative user"
                "chatty",
            ),
            dimensions=OWN_CAST_DIMENSIONS,
            filters=CAST_METRIC_FILTERS,
        ),
        Metric(
            "replies",
            "casts that reply to another cast",
            "casts",
            "count(*)",
            where="t.is_reply",
            cast="t.hash",
            others="t.fid <> t.parent_fid",
            # "answers" a noun too ("not counting his answers"), not "answer" ("the answer")
            nouns=("reply", "replies", "response", "responses", "comment", "comments", "answers"),
            verbs=(
                "reply",
                "replied",
                "replying",
                "replies",
                "respond",
                "responded",
                "comment",
                "commented",
                "answer",  # "casts that answer another cast"
                "answered",
                "answering",
                "answers",
            ),
            received="replies_received",
            to="t.parent_fid",
            to_cast="t.parent_hash",
            dimensions=(*OWN_CAST_DIMENSIONS, "to_user"),
            filters=(*CAST_METRIC_FILTERS, "others", "to_user", "to_named_cast"),
        ),
        Metric(
            "top_level_casts",
            "casts that start a thread (not replies)",
            "casts",
            "count(*)",
            where="NOT t.is_reply",
            cast="t.hash",
            verbs=("start", "started", "starting", "starts"),  # start a thread
            dimensions=OWN_CAST_DIMENSIONS,
            filters=CAST_METRIC_FILTERS,
        ),
        Metric(
            "replies_received",
            "direct replies to a user's casts (or to a cast), self-replies included",
            "casts",
            "count(*)",
            where="t.is_reply",
            user=REPLIED_TO,
            user_fid="t.parent_fid",
            cast="t.parent_hash",
            others="t.fid <> t.parent_fid",
            dimensions=CAST_DIMENSIONS,
            filters=(*CAST_METRIC_FILTERS, "others"),
        ),
        Metric(
            "threads",
            "distinct threads the casts are in (by their root cast)",
            "casts",
            "count(DISTINCT t.thread_hash)",
            dimensions=("user", "hour", "day", "channel"),
            filters=CAST_METRIC_FILTERS,
        ),
        Metric(
            "distinct_authors",
            "distinct users who cast (fids)",
            "casts",
            "count(DISTINCT t.fid)",
            # "users who replied to their own casts": authors of replies to themselves
            others="t.fid <> t.parent_fid",
            dimensions=("hour", "day", "channel", "thread", "domain"),
            filters=(*CAST_METRIC_FILTERS, "others"),
        ),
        Metric(
            "reactions",
            "reactions given: likes and recasts",
            "reactions",
            "count(*)",
            cast=REACTION_CAST,
            others=REACTION_OTHERS,
            nouns=("reaction", "reactions", "engagements"),
            verbs=("react", "reacted", "reacting"),
            received="reactions_received",
            to="t.target_fid",
            to_cast=REACTION_CAST,
            dimensions=MADE_REACTION_DIMENSIONS,
            filters=MADE_REACTION_FILTERS,
        ),
        Metric(
            "recasts",
            "recasts given (reshares)",
            "reactions",
            "count(*)",
            where="t.reaction_type = 'recast'",
            cast=REACTION_CAST,
            others=REACTION_OTHERS,
            # amplifying a cast is resharing it: "who gets amplified", "when amplification
            # peaked"
            nouns=("recast", "recasts", "reshare", "reshares", "amplification"),
            verbs=(
                "recast",
                "recasted",
                "recasting",
                "reshare",
                "reshared",
                "resharing",
                "boost",  # "boosted somebody's cast"
                "boosted",
                "boosting",
                "boosts",
                "amplify",
                "amplified",
                "amplifies",
                "amplifying",
            ),
            received="recasts_received",
            to="t.target_fid",
            to_cast=REACTION_CAST,
            dimensions=MADE_REACTION_DIMENSIONS,
            filters=MADE_REACTION_FILTERS,
        ),
        Metric(
            "likes",
            "likes given",
            "reactions",
            "count(*)",
            where="t.reaction_type = 'like'",
            cast=REACTION_CAST,
            others=REACTION_OTHERS,
            nouns=("like", "likes", "heart", "hearts"),
            verbs=("like", "liked", "liking", "hearted"),
            received="likes_received",
            to="t.target_fid",
            to_cast=REACTION_CAST,
            dimensions=MADE_REACTION_DIMENSIONS,
            filters=MADE_REACTION_FILTERS,
        ),
        received_reactions(
            "reactions_received",
            "likes and recasts received by a user's casts (or by a cast)",
            "count(*)",
        ),
        received_reactions(
            "recasts_received",
            "recasts of a user's casts (or of a cast)",
            "count(*)",
            "t.reaction_type = 'recast'",
        ),
        received_reactions(
            "likes_received",
            "likes of a user's casts (or of a cast)",
            "count(*)",
            "t.reaction_type = 'like'",
        ),
        Metric(
            "mentions",
            "casts that @-mention a user (by the @handle in the text)",
            "mentions",
            "count(DISTINCT t.hash)",
            user="t.handle",
            cast="t.hash",
            nouns=("mention", "mentions"),
            verbs=(
                "mention",
                "mentioned",
                "mentioning",
                "mentions",
                "tag",
                "tagged",
                "tagging",
                "reference",  # "casts that reference dwr with an @"
                "references",
            ),
            dimensions=("user", "hour", "day"),
            filters=("user", "term", "hashtag", "reply", "top_level"),
        ),
        Metric(
            "mentioned_users",
            # by the message's list: a cast's @names of other platforms ("@nounsdao" of
            # Twitter beside two Farcaster accounts) are in its text, not in its list
            "distinct users a cast @-mentions (the accounts its message lists as mentioned)",
            "mentions",
            "max(t.mentioned_fids)",
            user=None,
            cast="t.hash",
            dimensions=("cast",),
            filters=("term", "hashtag", "reply", "top_level"),
        ),
        Metric(
            "engagement",
            "replies + recasts + likes a cast received in the stream",
            "cast_engagement",
            "sum(t.replies_seen + t.recasts_seen + t.likes_seen)",
            where='t."timestamp" IS NOT NULL',  # the cast itself is in the stream
            user="u.username",
            user_fid="t.fid",
            cast="t.hash",
            nouns=(
                "engagement",
                "engaging",
                "popular",
                "popularity",
                "interaction",
                "interactions",
            ),
            dimensions=("user", "cast"),
            filters=("user",),
        ),
        Metric(
            "followers",
            "follower count (the newest profile snapshot; no history): a user's, or the sum "
            "over the users asked about",
            "users",
            # A sum, not a max: a user is one row of users, so per user it is their count, and
            # "the combined followers of everyone who posted" is the total, never the largest.
            "sum(t.follower_count)",
            nouns=("follower", "followers", "follower_count", "audience"),
            verbs=("followed",),
            dimensions=("user",),
            filters=("user", "author", "has_bio"),
        ),
        # "how many different people recast": the actors, not their reactions
        *(
            Metric(
                name,
                f"distinct users who {verb}",
                "reactions",
                "count(DISTINCT t.fid)",
                where=where,
                cast=REACTION_CAST,
                others=REACTION_OTHERS,  # "how many users liked their own casts"
                dimensions=("hour", "day", "cast"),
                filters=("others", "to_reply"),
            )
            for name, verb, where in REACTOR_KINDS
        ),
        # "users recast by 3+ different people": the actors, per user whose casts they acted on
        *(
            received_reactions(
                f"{name}_received",
                f"distinct users who {verb} a user's casts (or a cast), the user included",
                "count(DISTINCT t.fid)",
                where,
            )
            for name, verb, where in REACTOR_KINDS
        ),
        Metric(
            "first_cast_at",
            "when the earliest cast was posted (UTC)",
            "casts",
            'min(t."timestamp")',
            dimensions=("user", "day", "thread"),
            filters=CAST_METRIC_FILTERS,
        ),
        Metric(
            "last_cast_at",
            "when the latest cast was posted (UTC)",
            "casts",
            'max(t."timestamp")',
            dimensions=("user", "day", "thread"),
            filters=CAST_METRIC_FILTERS,
        ),
        Metric(
            "following",
            "accounts followed (the newest profile snapshot; no history): by a user, or the "
            "sum over the users asked about",
            "users",
            "sum(t.following_count)",
            nouns=("following", "followings", "follows"),
            verbs=("follow", "following"),
            dimensions=("user",),
            filters=("user", "author", "has_bio"),
        ),
        Metric(
            "term_uses",
            "uses of a term in casts, from the aggregate of each window's top terms",
            "top_terms",
            "sum(t.uses)",
            where="t.kind = 'term'",
            user=None,
            nouns=("terms", "topics", "keywords"),
            dimensions=("term",),
            filters=(),
            ranks="term",
        ),
        Metric(
            "hashtag_uses",
            "uses of a #hashtag, from the aggregate of each window's top hashtags",
            "top_terms",
            "sum(t.uses)",
            where="t.kind = 'hashtag'",
            user=None,
            nouns=("hashtags",),
            dimensions=("term",),
            filters=(),
            ranks="term",
        ),
        Metric(
            "profiles",
            "users with a profile in the data",
            "users",
            "count(*)",
            dimensions=("user",),  # "people who never posted": profiles, per user
            filters=("author", "has_bio"),
        ),
        # A profile's own words, looked up by username ("dwr's display name", "the bio of v");
        # a user is one row of users, so the aggregate is that row's value.
        *(
            Metric(
                name,
                description,
                "users",
                f"min(t.{name})",
                nouns=nouns,
                text=True,
                dimensions=("user",),
                filters=("user", "author", "has_bio"),
            )
            for name, description, nouns in (
                (
                    "display_name",
                    "a user's display name (the newest profile snapshot), asked of named users "
                    "or per user",
                    ("display_name", "display_names"),
                ),
                (
                    "bio",
                    "a user's bio, the profile's self-description (the newest profile "
                    "snapshot; '' when empty), asked of named users or per user",
                    (),  # "bio" is the has_bio filter's word; the planner reads it as this
                ),
            )
        ),
        Metric(
            "cast_length",
            "the mean length of the casts' text, in characters (2 decimals; per cast: its length)",
            "casts",
            "round(avg(length(t.text)), 2)",
            cast="t.hash",
            nouns=("length", "lengths", "characters", "character", "chars", "char"),
            mean=True,
            dimensions=OWN_CAST_DIMENSIONS,
            filters=CAST_METRIC_FILTERS,
        ),
        # The other way round: whom a user's replies went to ("who replied to the most
        # different people"); the planner's word for it is reply_reach (see plan).
        Metric(
            "reply_reach",
            "distinct other users a user replied to (the authors of the casts replied to; a "
            "parent from before the data counts by its fid)",
            "casts",
            "count(DISTINCT t.parent_fid)",
            where="t.is_reply AND t.parent_fid <> t.fid",  # "different people": not oneself
            cast="t.hash",
            nouns=("reply_reach",),
            dimensions=("user", "hour", "day"),
            filters=("user",),
        ),
        Metric(
            "repliers_received",
            "distinct users who replied to a user's casts (or to a cast), the user included",
            "casts",
            "count(DISTINCT t.fid)",
            where="t.is_reply",
            user=REPLIED_TO,
            user_fid="t.parent_fid",
            cast="t.parent_hash",
            others="t.fid <> t.parent_fid",
            dimensions=("user", "hour", "day", "cast"),
            filters=("user", "others"),
        ),
    )
}

DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension(
            "user",
            "the user the metric is about (several: comma-separated, any of them)",
            "{user}",
            (
                "user",
                "users",
                "author",
                "authors",
                "account",
                "accounts",
                "people",
                "person",
                "persons",
                "member",
                "members",
                "handle",
                "handles",
                "username",
                "usernames",
                "caster",
                "casters",
                "poster",
                "posters",
                "sharer",  # "the top link sharers": who posted them
                "sharers",
                "participant",
                "participants",
                "folks",
                "ppl",
                "acct",  # chat: "how many accts does dwr follow"
                "accts",
                "crowd",  # "how big the crowd is": the people
                "creator",
                "creators",
                "fid",
                "fids",
                "guy",  # "the guy who posted the most"
                "guys",
                "profile",
                "profiles",
                "who",
                "whose",
            ),
        ),
        Dimension("term", "a term or hashtag", "t.term", ()),
        Dimension(
            "hour",
            "UTC hour",
            "date_trunc('hour', {time})",
            ("hour", "hours", "hourly", "hr", "hrs"),
        ),
        # a calendar date, not the timestamp of its midnight: "2023-03-03"
        Dimension(
            "day",
            "UTC day (a date)",
            "CAST(timezone('UTC', {time}) AS DATE)",
            ("day", "days", "daily"),
        ),
        Dimension(
            "channel", "channel (the cast's parent URL)", "t.parent_url", ("channel", "channels")
        ),
        Dimension(
            "thread",
            "thread (the hash of its root cast)",
            "t.thread_hash",
            ("thread", "threads", "conversation", "conversations", "convo", "convos"),
        ),
        Dimension(
            "cast",
            "the cast the metric is about (its hash)",
            "{cast}",
            ("cast", "post", "message", "hash"),  # "return its hash"
        ),
        # the host of each URL a cast embeds ("www." and any port left out): "which domain is
        # linked most", "links per site"
        Dimension(
            "domain",
            "web domain a cast links to (the host of a URL in its embeds, www. dropped); a cast "
            "linking several domains is in each, one without links in none",
            "t.domain",
            ("domain", "domains", "hostname", "hostnames"),
            rows="list_distinct([d FOR d IN [regexp_extract(lower(e), "
            r"'^(?:[a-z][a-z0-9+.-]*://)?(?:www\.)?([^/?#:]+)', 1) FOR e IN t.embeds] "
            "IF d <> ''])",
        ),
        # "whose casts did greg recast", "which users did dwr reply to"
        Dimension(
            "to_user",
            "the user the action is directed at: whose cast was replied to or reacted to",
            "v.username",
            (),
        ),
    )
}

# A cast's text and embedded URLs, lower-cased: where a link to a site can stand.
LINKED_TEXT = "lower(concat_ws(' ', t.text, array_to_string(t.embeds, ' ')))"
# Sites known by more than one host (short links, a renamed domain).
SITE_HOSTS = {"youtube": ("youtu.be",), "twitter": ("x.com", "t.co"), "x": ("twitter.com",)}
IMAGE = r"i\.imgur\.com|\.(png|jpe?g|gif|webp)(\?|$)"
# The casts a value names: each of its words is in the text (a curly apostrophe read as a
# straight one, as the planner reads questions), a word "@name" is the author.
NAMED_CASTS = (
    "SELECT r.hash FROM casts AS r WHERE list_bool_and([CASE WHEN starts_with(w, '@') "
    "THEN lower(r.username) = substr(w, 2) "
    "ELSE contains(replace(lower(r.text), '\u2019', ''''), w) END "
    "FOR w IN string_split({value}, ' ')])"
)
FILTERS: dict[str, Filter] = {
    f.name: f
    for f in (
        Filter(
            "user",
            "the user the metric is about (several: comma-separated, any of them)",
            "{user} = {value}",
            "{user} <> {value}",  # "leaving briang out"
            takes_value=True,
        ),
        Filter(
            "term",
            "the text contains a word (case-insensitive; a word of three letters or fewer as a "
            "whole word: 'gm' is not in 'paradigm')",
            "regexp_matches(lower({text}), {value})",
            "NOT regexp_matches(lower({text}), {value})",
            takes_value=True,
        ),
        Filter(
            "mentions_user",
            "the cast @-mentions the user (the @handle in its text, in a cast whose message "
            "lists mentions, as the mentions metric reads them)",
            "len(t.mentions) > 0 AND regexp_matches(lower({text}), {value})",
            "NOT (len(t.mentions) > 0 AND regexp_matches(lower({text}), {value}))",
            takes_value=True,
        ),
        Filter(
            "hashtag",
            "the text carries a #hashtag",
            "regexp_matches({text}, {value})",
            "NOT regexp_matches({text}, {value})",
            takes_value=True,
        ),
        Filter(
            "reply",
            "the cast is a reply",
            "t.is_reply",
            "NOT t.is_reply",
            ("parent", "parents"),  # "casts with no parent"
        ),
        Filter(
            "top_level",
            "the cast starts a thread (is not a reply)",
            "NOT t.is_reply",
            "t.is_reply",
            (
                "top-level",
                "toplevel",
                "original",
                "originals",
                "root",
                "standalone",
                "stand-alone",
                "thread-starting",  # "thread-starting posts"
            ),
        ),
        Filter(
            "has_link",
            "the cast embeds a URL (Warpcast lists every URL in embeds)",
            "len(t.embeds) > 0",
            "len(t.embeds) = 0",
            (
                "link",
                "links",
                "hyperlink",
                "hyperlinks",
                "url",
                "urls",
                "embed",
                "embeds",
                "embedded",
                "address",  # "a web address"
                "addresses",
                "linking",  # "casts linking github.com"
                "linked",
            ),
        ),
        Filter(
            "to_user",
            "the user the action is directed at: whom a reply replies to, whose cast a reaction "
            "reacts to",
            "{to} = (SELECT fid FROM users WHERE lower(username) = {value})",
            "{to} <> (SELECT fid FROM users WHERE lower(username) = {value})",
            takes_value=True,
        ),
        Filter(
            "has_hashtag",
            "the text carries a #hashtag (a # and a letter: '#5' is a number)",
            r"regexp_matches({text}, '(^|[^\w&])#[A-Za-z]')",
            r"NOT regexp_matches({text}, '(^|[^\w&])#[A-Za-z]')",
        ),
        Filter(
            "author",
            "the user cast at least once in the data (an author, not only a profile)",
            "EXISTS (SELECT 1 FROM casts AS c WHERE c.fid = t.fid)",
            "NOT EXISTS (SELECT 1 FROM casts AS c WHERE c.fid = t.fid)",
        ),
        Filter(
            "replied",
            "the cast got at least one direct reply (self-replies included)",
            "EXISTS (SELECT 1 FROM casts AS r WHERE r.parent_hash = t.hash)",
            "NOT EXISTS (SELECT 1 FROM casts AS r WHERE r.parent_hash = t.hash)",
            ("castreplied",),  # the planner's token for "got replies", "with no replies"
        ),
        Filter(
            "recast",
            "the cast was recast at least once (self-recasts included)",
            "EXISTS (SELECT 1 FROM reactions AS r WHERE r.target_hash = t.hash "
            "AND r.reaction_type = 'recast')",
            "NOT EXISTS (SELECT 1 FROM reactions AS r WHERE r.target_hash = t.hash "
            "AND r.reaction_type = 'recast')",
            ("castrecast",),  # the planner's token for "got recast", "with no reshares"
        ),
        Filter(
            "site",
            "the cast links to a site: a URL in its text or embeds on the site's host "
            "(youtube: youtube.com, youtu.be; twitter: twitter.com, x.com)",
            f"regexp_matches({LINKED_TEXT}, {{value}})",
            f"NOT regexp_matches({LINKED_TEXT}, {{value}})",
            takes_value=True,
        ),
        Filter(
            "has_image",
            "the cast embeds an image",
            f"list_bool_or([regexp_matches(lower(e), '{IMAGE}') FOR e IN t.embeds])",
            f"NOT coalesce(list_bool_or([regexp_matches(lower(e), '{IMAGE}') "
            "FOR e IN t.embeds]), false)",
            (
                "image",
                "images",
                "photo",
                "photos",
                "picture",
                "pictures",
                "gif",
                "gifs",
                "img",
                "imgs",
                "pic",
                "pics",
            ),
        ),
        Filter(
            "channel",
            "the cast was posted in a channel (has a parent URL)",
            "t.parent_url IS NOT NULL",
            "t.parent_url IS NULL",
            ("channel", "channels", "parent_url"),
        ),
        Filter(
            "in_thread",
            "the cast is in the thread whose root cast holds every word of the value (case-"
            "insensitive; a word '@name' is the root's author): 'the everyday wallet thread'",
            f"t.thread_hash IN ({NAMED_CASTS})",
            f"NOT t.thread_hash IN ({NAMED_CASTS})",  # "apart from the livestream thread"
            takes_value=True,
        ),
        Filter(
            "named_cast",
            "the cast the metric is about holds every word of the value (a word '@name' is its "
            "author): 'ccarella's BuilderDAO cast'",
            f"{{cast}} IN ({NAMED_CASTS})",
            f"NOT {{cast}} IN ({NAMED_CASTS})",
            takes_value=True,
        ),
        Filter(
            "to_named_cast",
            "the cast the action is directed at (replied to, reacted to) holds every word of the "
            "value (a word '@name' is its author): 'replies to jithinraj's wallet cast'",
            f"{{to_cast}} IN ({NAMED_CASTS})",
            f"NOT {{to_cast}} IN ({NAMED_CASTS})",
            takes_value=True,
        ),
        Filter(
            "has_mention",
            "the cast @-mentions at least one user (its mentions list)",
            "len(t.mentions) > 0",
            "len(t.mentions) = 0",
        ),
        Filter(
            "has_bio",
            "the profile has a bio (not empty)",
            "coalesce(trim(t.bio), '') <> ''",
            "coalesce(trim(t.bio), '') = ''",
            ("bio", "bios", "biography", "biographies"),
        ),
        Filter(
            "to_reply",
            "what the cast or reaction is directed at is a reply: a reply to a reply (its parent "
            "is not its thread's root), a reaction to a reply in the data; negated: directed at "
            "a top-level cast",
            "{to_reply}",
            "{to_top_level}",
            ("nested",),  # "nested replies"
        ),
        Filter(
            "others",
            "the actor is someone other than the user the metric is about",
            "{others}",
            "NOT ({others})",  # "replies to their own casts": the actor is that user
            ("others",),
        ),
    )
}

Order = Literal["desc", "asc"]
Comparison = Literal[">", ">=", "<", "<=", "="]


@dataclass(frozen=True)
class Condition:
    """One filter of a query: the filter's name, its value (for user, term, hashtag) and
    whether it is negated ("not replies")."""

    filter: str
    value: str | None = None
    negated: bool = False


@dataclass(frozen=True)
class Query:
    """A question in the layer's terms. ``limit`` None: every group; ``having`` keeps groups
    whose metric compares to a number ("more than 10 casts")."""

    metric: str
    group_by: str | None = None
    conditions: tuple[Condition, ...] = ()
    time_range: TimeRange | None = None
    order: Order | None = None
    limit: int | None = None
    having: tuple[Comparison, float] | None = None
    average_over: str | None = None  # "on average per user": the mean of the metric's groups
    median: bool = False  # with average_over: the median of the groups, not their mean
    count_over: str | None = None  # "how many users posted > 10 casts": groups passing
    # "what percentage of casts are replies": the metric as a percentage of its source's count
    # under the conditions in ``base`` (filter names: who and whose casts are counted)
    share: bool = False
    base: tuple[str, ...] = ()
    # Grouped by user: only the users who have (False) or have not (True) a row of each named
    # metric ("people who cast and also recast", "authors who never replied")
    users_with: tuple[tuple[str, bool], ...] = ()
    # "the last recast", "who liked first": the time of the metric's first or last row (in
    # its groups), not their count
    moment: Literal["first", "last"] | None = None
    # the time range is when the cast the metric is about was posted ("the most recast cast
    # posted 4-5am"), not when its rows happened
    cast_time: bool = False
    # "the follower count of the most active poster": only the user this query (grouped by
    # user, ranked, limit 1) puts first
    top_user: Query | None = None
    # "casts by authors with over 1,000 followers": only the rows whose user is one of this
    # query's groups (grouped by user, with a threshold on a figure of each user)
    among: Query | None = None
    # "all replies divided by the number of top-level casts": this query's figure over that
    # one's (both ungrouped)
    ratio_to: Query | None = None
    # with average_over: the largest ("desc") or smallest ("asc") group's figure, not their
    # mean ("how many casts are in the biggest thread": the first thread's count, one number)
    extreme: Order | None = None
    # grouped by user: only the users whose figure is above their figure of this metric of the
    # same source ("authors who follow more accounts than follow them": following above
    # followers)
    exceeds: str | None = None
    # grouped: how many groups there are as well as which, their number first in every row
    # ("users with 3+ casts", a set named without asking for a list or a count)
    total: bool = False
    # grouped and ordered: only the group at this place of the ordering, 1 the first ("the
    # second most active hour": 2), and the groups tied with it; ``limit`` is then unused
    rank: int | None = None
    # with share: the metric the whole counts when the question names one of the part's own
    # source ("what % of all recasts were dwr's": recasts); None: the source's rows (casts,
    # reactions)
    share_of: str | None = None
    # with share: the time range sets the part apart and the whole has none ("what percent of
    # all the posts were made between 3 and 4": of all posts, not of those from 3 to 4)
    part_time: bool = False

    def whole_metric(self) -> str | None:
        """The metric a share's whole counts: ``share_of`` when it counts the part's source
        (and, when it is the part's own metric, a filter sets the part apart: "the share of
        replies" alone is of all casts), else the source's rows (SHARE_BASE); None when the
        source has no whole."""
        source = metric(self.metric).source
        named = self.share_of
        # ("of replies, the top 3 repliers' share": their users set the part apart too)
        apart = named != self.metric or self.conditions or self.among is not None
        if named and metric(named).source == source and apart:
            return named
        return SHARE_BASE.get(source)

    def _filters(self) -> list[str]:
        return [
            f"{'not ' if c.negated else ''}{c.filter}{f' = {c.value}' if c.value else ''}"
            for c in self.conditions
        ]

    def describe(self) -> str:
        """The query in words, e.g. "replies_received by user, top 5, where user = dwr"."""
        parts = [f"{self.moment} {self.metric} at" if self.moment else self.metric]
        if self.ratio_to:
            parts = [
                f"({', '.join(p for p in [self.metric, *self._filters()])}) divided by "
                f"({self.ratio_to.describe()})"
            ]
            return ", ".join([*parts, *([self.time_range.label] if self.time_range else [])])
        if self.average_over:
            statistic = {"desc": "largest", "asc": "smallest"}.get(self.extreme or "")
            statistic = statistic or ("median" if self.median else "average")
            parts.append(f"{statistic} per {self.average_over}")
        if self.count_over:
            parts.append(f"count of {self.count_over}s")
        if self.share and self.count_over:
            parts.append(f"as a percentage of the {self.count_over}s with any")
        elif self.share:
            whole = self.whole_metric() or "?"
            within = f" where {', '.join(self.base)}" if self.base else ""
            if whole == self.metric and not self.base:
                whole = f"all {whole}"  # the part's filters set it apart (see _share)
            parts.append(f"as a percentage of {whole}{within}")
        if self.group_by:
            parts.append(f"{'how many and which, ' if self.total else ''}by {self.group_by}")
        for other, without in self.users_with:
            parts.append(f"users {'without' if without else 'with'} {other}")
        if self.having:
            parts.append(f"with {self.metric} {self.having[0]} {self.having[1]:g}")
        if self.exceeds:
            parts.append(f"with {self.metric} > {self.exceeds}")
        if self.order and self.rank:
            parts.append(f"#{self.rank} of the {'top' if self.order == 'desc' else 'bottom'}")
        elif self.order:
            parts.append(("top" if self.order == "desc" else "bottom") + f" {self.limit or ''}")
        for c in self.conditions:
            value = f" = {c.value}" if c.value is not None else ""
            parts.append(f"{'not ' if c.negated else ''}{c.filter}{value}")
        if self.top_user:
            # the ranking's own time range, when it is not the whole query's
            when = self.top_user.time_range if not self.time_range else None
            only = ", ".join(
                f"{'not ' if c.negated else ''}{c.filter}{f' = {c.value}' if c.value else ''}"
                for c in self.top_user.conditions
            )
            parts.append(
                f"of the user first by {self.top_user.metric}{f' ({only})' if only else ''}"
                f"{f' {when.label}' if when else ''}"
            )
        if self.among and self.among.having:
            op, number = self.among.having
            parts.append(f"of users with {self.among.metric} {op} {number:g}")
        elif self.among and self.among.limit is not None:
            end = "top" if self.among.order != "asc" else "bottom"
            parts.append(f"of the {end} {self.among.limit} users by {self.among.metric}")
        elif self.among and self.among.time_range:
            parts.append(f"of users with {self.among.metric} {self.among.time_range.label}")
        if self.time_range:
            posted = "casts posted " if self.cast_time else ""
            parts.append(posted + self.time_range.label)
        return ", ".join(p.strip() for p in parts)


@cache
def _parse(sql: str) -> exp.Expr:
    return sqlglot.parse_one(sql, dialect=DIALECT)


def _expr(template: str, **parts: exp.Expr | str | None) -> exp.Expr:
    """``template`` with ``{name}`` slots replaced by expressions. Slots are filled with
    placeholder columns first and swapped for the real trees after parsing, so a value can
    never change the statement's shape."""
    placeholders = {name: f"__slot_{name}" for name in parts}
    tree = _parse(template.format(**placeholders)).copy()

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name.startswith("__slot_"):
            value = parts[node.name.removeprefix("__slot_")]
            if value is None:
                raise LayerError(f"{template!r} needs {node.name.removeprefix('__slot_')}")
            return _parse(value).copy() if isinstance(value, str) else value.copy()
        return node

    return tree.transform(swap)


def site_pattern(site: str) -> str:
    """The regular expression for a URL on ``site``: a host name ("youtube.com") or a site's
    name ("youtube": any host whose name is it, e.g. www.youtube.com, m.youtube.com, plus the
    site's other hosts in SITE_HOSTS), with or without the scheme; several, comma-separated,
    for a URL on any of them."""
    names = []
    for one in site.lower().split(","):  # several sites: a URL on any of them
        one = one.strip().removeprefix("www.")
        names += [one, *SITE_HOSTS.get(one, ())]
    names = list(dict.fromkeys(names))
    hosts = "|".join(
        re.escape(n) if "." in n else rf"{re.escape(n)}(?:\.[a-z]{{2,}})+" for n in names
    )
    return rf"(?:^|[^a-z0-9.-])(?:[a-z0-9-]+\.)*(?:{hosts})(?:[/?#:\s]|$)"


# Terms this short are whole words: as substrings they stand inside unrelated words ("ai"
# in "said", "gm" in "paradigm", "eth" in "together"). Longer ones match inside words, so
# "invite" finds "invites" and "denver" finds "ETHDenver".
SHORT_TERM = 3


def term_pattern(term: str) -> str:
    """The regular expression for a term in lower-cased text: the term's words as written
    (spaces collapsed, every character literal), bounded as a whole word when it is
    SHORT_TERM characters or fewer and starts and ends with a letter or digit."""
    words = " ".join(term.lower().split())
    pattern = re.escape(words)
    if len(words) <= SHORT_TERM and words[:1].isalnum() and words[-1:].isalnum():
        return rf"\b{pattern}\b"
    return pattern


def _value_literal(condition: Condition) -> exp.Expr:
    value = condition.value or ""
    if condition.filter == "site":
        return exp.Literal.string(site_pattern(value))
    if condition.filter == "term":
        return exp.Literal.string(term_pattern(value))
    if condition.filter in ("in_thread", "named_cast", "to_named_cast"):
        return exp.Literal.string(" ".join(value.lower().split()))
    if condition.filter == "hashtag":
        return exp.Literal.string(rf"(?i)#{re.escape(value.lstrip('#'))}\b")
    if condition.filter == "mentions_user":
        # the handle as the mentions source extracts it: after no word character, "/" or
        # "." (not an e-mail or a URL path), and whole
        handle = re.escape(value.lstrip("@").lower())
        return exp.Literal.string(rf"(^|[^a-z0-9_/.])@{handle}([^a-z0-9_-]|$)")
    return exp.Literal.string(value.lstrip("@").lower())


def metric(name: str) -> Metric:
    """The catalogue entry ``name``; raises LayerError for a name not in it."""
    try:
        return METRICS[name]
    except KeyError:
        raise LayerError(f"no metric named {name!r}; `ozi metrics` lists them") from None


def _where(query: Query, m: Metric, source: Source) -> list[exp.Expr]:
    conditions = [_parse(m.where).copy()] if m.where else []
    for c in query.conditions:
        f = FILTERS[c.filter]
        template = f.negated if c.negated else f.condition
        if template is None:
            raise LayerError(f"the filter {c.filter} cannot be negated")
        if c.filter not in m.filters and _about_a_cast(m, c.filter):
            conditions.append(_on_its_cast(m, c, template))
            continue
        if c.filter not in m.filters:
            raise LayerError(f"{m.name} cannot be filtered by {c.filter}")
        if m.where and (f.condition if c.negated else f.negated) == m.where:
            # "replies received by top-level casts": the rows counted are replies, which are
            # never top-level; the filter would make every count 0, whatever the data
            kind = f"not {c.filter}" if c.negated else c.filter
            raise LayerError(
                f"{m.name} counts rows that are never {kind}; whether the casts they went to "
                f"are is not a filter the layer has"
            )
        if c.filter == "user" and "," in (c.value or ""):
            # several users ("dwr, jayce and ccarella"): usernames never hold a comma
            names = [exp.Literal.string(n.strip().lstrip("@").lower()) for n in c.value.split(",")]
            among = exp.In(this=_parse(m.user or "NULL").copy(), expressions=names)
            conditions.append(exp.Not(this=among) if c.negated else among)
            continue
        conditions.append(
            _expr(
                template,
                value=_value_literal(c) if f.takes_value else None,
                text=source.text,
                user=m.user,
                others=m.others,
                to=m.to,
                cast=m.cast,
                to_cast=m.to_cast,
                to_reply=source.to_reply,
                to_top_level=source.to_top_level,
            )
            if "{" in template
            else _parse(template).copy()
        )
    if query.top_user is not None:
        top = query.top_user
        if top.group_by != "user" or top.limit != 1 or top.order is None:
            raise LayerError("the top user is the first of a ranking of users (limit 1)")
        first = exp.select("username").from_(compile_query(top).subquery("top_user"))
        conditions.append(
            exp.EQ(this=_parse(m.user or "NULL"), expression=exp.Subquery(this=first))
        )
    if query.among is not None:
        among = query.among
        if among.group_by != "user" or m.user is None:
            raise LayerError("only a metric about users is restricted to a group of users")
        users = exp.select("username").from_(compile_query(among).subquery("among"))
        within = exp.In(this=_parse(m.user).copy(), query=exp.Subquery(this=users))
        conditions.append(within)
    if query.time_range:
        if source.time is None:
            raise LayerError(f"{m.name} is a snapshot with no history: it has no time range")
        start, end = query.time_range.start, query.time_range.end
        column = _parse('c."timestamp"' if query.cast_time else source.time)
        within = exp.and_(
            exp.GTE(this=column.copy(), expression=_timestamp(start.isoformat())),
            exp.LT(this=column.copy(), expression=_timestamp(end.isoformat())),
        )
        if query.cast_time:
            if m.cast is None:
                raise LayerError(f"{m.name} is about no cast whose time could be asked")
            posted = exp.select("c.hash").from_("casts AS c").where(within)
            within = exp.In(this=_parse(m.cast).copy(), query=exp.Subquery(this=posted))
        conditions.append(within)
    return conditions


def _about_a_cast(m: Metric, name: str) -> bool:
    """Whether ``name`` is a property of the cast ``m``'s rows are about, though the rows are
    no casts (a reaction, a cast's engagement)."""
    return name in CAST_PROPERTY_FILTERS and m.cast is not None and not SOURCES[m.source].casts


def _on_its_cast(m: Metric, c: Condition, template: str) -> exp.Expr:
    """``c`` (whose SQL is ``template``) as a condition on the cast ``m``'s row is about: that
    cast is among the casts passing it."""
    casts = SOURCES["casts"]
    inner = (
        _expr(
            template,
            value=_value_literal(c) if FILTERS[c.filter].takes_value else None,
            text=casts.text,
        )
        if "{" in template
        else _parse(template).copy()
    )
    passing = exp.select("t.hash").from_("casts AS t").where(inner)
    return exp.In(this=_parse(m.cast or "NULL").copy(), query=exp.Subquery(this=passing))


def _timestamp(iso: str) -> exp.Expr:
    return exp.Cast(this=exp.Literal.string(iso), to=exp.DataType.build("TIMESTAMPTZ"))


def _from(m: Metric, source: Source, needs_user: bool, to_user: bool = False) -> exp.Select:
    table: exp.Expr
    if source.sql.lstrip().upper().startswith("SELECT"):
        table = exp.Subquery(this=_parse(source.sql).copy(), alias=exp.TableAlias(this="t"))
    else:
        table = exp.Table(this=exp.to_identifier(source.sql), alias=exp.TableAlias(this="t"))
    select = exp.Select().from_(table)
    if needs_user and m.user_fid:
        select = select.join(
            exp.Table(this=exp.to_identifier("users"), alias=exp.TableAlias(this="u")),
            on=_expr("u.fid = {fid}", fid=m.user_fid),
            join_type="LEFT",
        )
    if to_user:
        # the user the action went to, by the fid it names
        select = select.join(
            exp.Table(this=exp.to_identifier("users"), alias=exp.TableAlias(this="v")),
            on=_expr("v.fid = {fid}", fid=m.to),
            join_type="LEFT",
        )
    return select


def _spread(source: Source, d: Dimension) -> Source:
    """``source`` with one row per row and distinct item of ``d.rows``, the item as
    ``t.<d.name>``."""
    rows = source.sql if source.sql.lstrip().upper().startswith("SELECT") else None
    table = f"({rows})" if rows else source.sql
    spread = f"SELECT t.*, unnest({d.rows}) AS {d.name} FROM {table} AS t"
    return dataclasses.replace(source, sql=spread)


# A threshold's comparison as SQL: HAVING on a group's figure, or counting the groups past it.
_COMPARISON = {">": exp.GT, ">=": exp.GTE, "<": exp.LT, "<=": exp.LTE, "=": exp.EQ}


def compile_query(query: Query) -> exp.Select:
    """The SELECT computing ``query`` over the public tables, as a sqlglot tree.

    Columns: the dimension first (named after it: ``username`` for user, ``hour``, ``day``,
    ``channel``, ``thread_hash``, ``hash``) when grouped, then the metric (named after it).
    Groups are ordered by the metric (``order``) or else by the dimension; ties break on the
    dimension. Raises LayerError for a metric, dimension or filter the catalogue lacks.
    """
    m = metric(query.metric)
    source = SOURCES[m.source]
    if query.rank is not None and (
        query.group_by is None
        or not query.order
        or query.share
        or query.ratio_to is not None
        or query.count_over is not None
        or query.average_over is not None
    ):
        raise LayerError("a place in a ranking (the second most …) needs a ranking of groups")
    if m.text and (
        query.order
        or query.having
        or query.average_over
        or query.count_over
        or query.share
        or query.ratio_to
        or query.moment
        or query.exceeds
        or not (query.group_by == "user" or any(c.filter == "user" for c in query.conditions))
    ):
        raise LayerError(f"{m.name} is a profile's text, looked up for named users or per user")
    if query.share and query.count_over is not None:
        return _share_of_groups(query, m)
    if query.share:
        return _share(query, m)
    if query.ratio_to is not None:
        return _ratio(query)
    if query.count_over is not None:
        # How many groups pass the threshold ("how many users posted fewer than 2 casts").
        count = exp.func("count", exp.Star())
        return _over_groups(query, query.count_over, count, f"{query.count_over}s")
    if query.average_over is not None:
        # The mean (or median) over the groups that have rows ("casts per author": authors
        # who cast).
        statistic = "median" if query.median else "average"
        function = "median" if query.median else "avg"
        if query.extreme is not None:
            statistic = "largest" if query.extreme == "desc" else "smallest"
            function = "max" if query.extreme == "desc" else "min"
        name = f"{statistic}_{m.name}_per_{query.average_over}"
        if (
            query.average_over == "cast"
            and counts_what_a_cast_got(m)
            and query.extreme is None
            and all(_names_the_casts_author(c, m) for c in query.conditions)
        ):
            return _over_every_cast(query, m, function, name)
        mean = exp.func(function, exp.column(m.name))
        return _over_groups(query, query.average_over, mean, name)
    if query.group_by is not None and query.group_by not in m.dimensions:
        raise LayerError(f"{m.name} cannot be grouped by {query.group_by}")
    if query.group_by is not None and DIMENSIONS[query.group_by].rows:
        source = _spread(source, DIMENSIONS[query.group_by])
    if query.users_with and query.group_by != "user":
        raise LayerError("users with or without another metric need a figure per user")
    needs_user = query.group_by == "user" or any(c.filter == "user" for c in query.conditions)
    needs_user = needs_user or query.top_user is not None or query.among is not None
    select = _from(m, source, needs_user, to_user=query.group_by == "to_user")
    measure = _parse(m.measure).copy()
    value_name = m.name
    if query.moment is not None:
        if source.time is None or query.having:
            raise LayerError(f"{m.name} has no first or last time the layer can compare")
        measure = exp.func("min" if query.moment == "first" else "max", _parse(source.time))
        value_name = f"{query.moment}_{m.name}_at"
    where = _where(query, m, source)
    if where:
        select = select.where(exp.and_(*where))
    if query.group_by is None:
        return select.select(exp.alias_(measure, value_name))
    d = DIMENSIONS[query.group_by]
    key = _expr(d.expr, time=source.time, user=m.user, cast=m.cast)
    key_name = {"user": "username", "cast": "hash", "thread": "thread_hash"}.get(d.name, d.name)
    key_name = "to_username" if d.name == "to_user" else key_name
    if query.total:
        # after grouping and HAVING, so the groups that pass, before any LIMIT
        total = exp.Window(this=exp.func("count", exp.Star()))
        select = select.select(exp.alias_(total, f"{d.name}s"))  # users, casts, hours
    select = select.select(exp.alias_(key, key_name), exp.alias_(measure, value_name))
    # by the expression, not the alias: the alias may also name a column of t or u
    select = select.group_by(key.copy())
    if d.name in ("user", "to_user", "cast", "thread", "channel"):
        # a row without a user, cast, thread or channel is not a group anyone asked about
        select = select.where(exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))
    for other, without in query.users_with:
        select = select.where(_users_of(key, other, without, query))
    if query.having:
        op, number = query.having
        cls = _COMPARISON[op]
        select = select.having(cls(this=_parse(m.measure).copy(), expression=_number(number)))
    if query.exceeds:
        other = metric(query.exceeds)
        if other.source != m.source or d.name != "user":
            raise LayerError(f"{m.name} and {other.name} are not two figures of each user")
        select = select.having(
            exp.GT(this=_parse(m.measure).copy(), expression=_parse(other.measure).copy())
        )
    value_col, key_col = exp.column(value_name), exp.column(key_name)
    if query.order or query.having:
        desc = query.order != "asc"
        select = select.order_by(
            exp.Ordered(this=value_col, desc=desc, nulls_first=False),
            exp.Ordered(this=key_col, desc=False),
        )
    else:
        select = select.order_by(exp.Ordered(this=key_col, desc=False))
    if query.rank is not None:
        # Every group tied with the one at that place: "the 5th most" names both users of
        # a tie at 16 casts, where one of them alone, picked by name, would hide the other
        place = select.copy().limit(1).offset(max(query.rank, 1) - 1)
        figure = exp.select(value_col.copy()).from_(place.subquery("place"))
        return (
            exp.select(exp.Star())
            .from_(select.subquery("ranked"))
            .where(exp.EQ(this=value_col.copy(), expression=exp.Subquery(this=figure)))
            .order_by(exp.Ordered(this=key_col.copy(), desc=False))
        )
    if query.limit is not None:
        select = select.limit(query.limit)
    return select


def _users_of(key: exp.Expr, other: str, without: bool, query: Query) -> exp.Expr:
    """``key`` (a username) is (``without``: is not) among the users with a row of the metric
    ``other`` in ``query``'s time range; their own filters do not apply to it."""
    users = compile_query(Query(other, "user", time_range=query.time_range))
    names = exp.select("username").from_(users.subquery("w"))
    among = exp.In(this=key.copy(), query=exp.Subquery(this=names))
    return exp.Not(this=among) if without else among


def counts_what_a_cast_got(m: Metric) -> bool:
    """Whether ``m``'s rows are things a cast received (replies to it, reactions to it), so
    a cast can have none of them."""
    return m.cast in ("t.parent_hash", REACTION_CAST)


def _over_every_cast(query: Query, m: Metric, function: str, name: str) -> exp.Select:
    """The mean (or median, by ``function``) of what each cast received (replies,
    reactions) over every cast in the time range, those that received none as 0: "how many
    replies does a cast get on average" is over all casts, not over the replied ones."""
    if query.group_by is not None:
        raise LayerError("a figure over each cast cannot be grouped again")
    groups = dataclasses.replace(query, group_by="cast", average_over=None, median=False)
    # "per cast of dwr": dwr's casts are the ones averaged over
    casts = compile_query(Query("casts", "cast", query.conditions, time_range=query.time_range))
    received = exp.func("coalesce", exp.column(m.name, "g"), exp.Literal.number(0))
    return (
        exp.select(exp.alias_(exp.func(function, received), name))
        .from_(casts.subquery("c"))
        .join(
            compile_query(groups).subquery("g"),
            on=exp.EQ(this=exp.column("hash", "g"), expression=exp.column("hash", "c")),
            join_type="left",
        )
    )


def _names_the_casts_author(condition: Condition, m: Metric) -> bool:
    """Whether ``condition`` is the author of the casts ``m`` is about (the user whose casts
    were replied to or reacted to), which the casts averaged over take as theirs too."""
    return condition.filter == "user" and m.user_fid in ("t.parent_fid", "t.target_fid")


def _over_groups(query: Query, dimension: str, aggregate: exp.Expr, name: str) -> exp.Select:
    """``aggregate`` (named ``name``) over the rows of ``query`` grouped by ``dimension``."""
    if query.group_by is not None:
        raise LayerError(f"a figure over each {dimension} cannot be grouped again")
    groups = dataclasses.replace(
        query,
        group_by=dimension,
        average_over=None,
        median=False,
        extreme=None,
        count_over=None,
        order=None,
        limit=None,
    )
    return exp.select(exp.alias_(aggregate, name)).from_(compile_query(groups).subquery("g"))


# The count a share is a part of, by the metric's source.
SHARE_BASE = {"casts": "casts", "reactions": "reactions"}
# Filters that say whose rows are counted, so a share keeps them in its whole: "what
# percentage of jayce's casts are replies" is out of jayce's casts.
SCOPE_FILTERS = frozenset(["user", "to_user", "others"])


def _share(query: Query, m: Metric) -> exp.Select:
    """``query``'s figure as a percentage (0-100, two decimals) of the count of its source's
    rows under the scope filters, the time range and the filters named in ``query.base``."""
    base_metric = query.whole_metric()
    if base_metric is None or m.mean or query.group_by or query.average_over or query.count_over:
        raise LayerError(f"{m.name} has no share of a whole the layer counts")
    part = dataclasses.replace(query, share=False, base=(), share_of=None, part_time=False)
    # The whole keeps whose rows are counted ("what percentage of jayce's casts are replies":
    # of jayce's casts), unless the part counts the whole's own metric: then a user is what
    # sets the part apart ("what share of all casts did briang write": of all casts), and a
    # whole that kept the user would be the part itself, 100% whatever the data.
    scope = SCOPE_FILTERS if query.metric != base_metric else frozenset()
    whole = Query(
        base_metric,
        conditions=tuple(
            c for c in query.conditions if c.filter in scope or c.filter in query.base
        ),
        time_range=None if query.part_time else query.time_range,
    )
    if (
        query.metric == base_metric
        and set(whole.conditions) == set(query.conditions)
        and whole.time_range == query.time_range
        and query.among is None  # "casts by the top 5 posters": the part is theirs alone
    ):
        raise LayerError(f"a share of {base_metric} in {base_metric} themselves is always 100%")
    ratio = exp.Div(
        this=exp.Mul(
            this=exp.Literal.number("100.0"),
            expression=exp.Subquery(this=compile_query(part)),
        ),
        expression=exp.func("nullif", exp.Subquery(this=compile_query(whole)), _number(0)),
    )
    return exp.select(exp.alias_(exp.func("round", ratio, _number(2)), "percent"))


def _share_of_groups(query: Query, m: Metric) -> exp.Select:
    """The percentage (0-100, two decimals) of the groups of ``query.count_over`` that pass
    ``query.having``, of the groups with any of ``query``'s rows: "what share of authors
    posted exactly one cast" is of the users with a cast (the groups a count can see).
    Raises LayerError without a threshold, or for one a group with none would pass ("what
    share of users never replied" needs every user, which those rows do not hold)."""
    if query.having is None:
        raise LayerError("a share of groups needs the threshold they pass")
    op, number = query.having
    zero_passes = {">": number < 0, ">=": number <= 0, "<": number > 0, "<=": number >= 0}
    if zero_passes.get(op, number == 0):
        raise LayerError(
            f"a share of {query.count_over}s with {m.name} {op} {number:g} needs the ones with none"
        )
    groups = dataclasses.replace(
        query,
        share=False,
        base=(),
        share_of=None,
        count_over=None,
        group_by=query.count_over,
        having=None,
        order=None,
        limit=None,
    )
    cls = _COMPARISON[op]
    passing = exp.func("count_if", cls(this=exp.column(m.name), expression=_number(number)))
    ratio = exp.Div(
        this=exp.Mul(this=exp.Literal.number("100.0"), expression=passing),
        expression=exp.func("nullif", exp.func("count", exp.Star()), _number(0)),
    )
    percent = exp.alias_(exp.func("round", ratio, _number(2)), "percent")
    return exp.select(percent).from_(compile_query(groups).subquery("g"))


def _ratio(query: Query) -> exp.Select:
    """``query``'s figure divided by ``query.ratio_to``'s (four decimals; NULL when the
    divisor is 0); both ungrouped figures, each with its own filters."""
    below = query.ratio_to
    assert below is not None
    above = dataclasses.replace(query, ratio_to=None)
    for part in (above, below):
        if part.group_by or part.average_over or part.count_over or part.share or part.ratio_to:
            raise LayerError("a ratio is of two single figures (no grouping)")
    ratio = exp.Div(
        this=exp.Cast(
            this=exp.Subquery(this=compile_query(above)), to=exp.DataType.build("DOUBLE")
        ),
        expression=exp.func("nullif", exp.Subquery(this=compile_query(below)), _number(0)),
    )
    return exp.select(exp.alias_(exp.func("round", ratio, _number(4)), "ratio"))


def _number(value: float) -> exp.Expr:
    return exp.Literal.number(int(value) if float(value).is_integer() else value)


def compile_sql(query: Query) -> str:
    """``compile_query`` rendered as DuckDB SQL text."""
    return compile_query(query).sql(dialect=DIALECT)


SOURCE_COLUMNS = ("hash", "fid", "username", "timestamp", "text")


def sources_sql(query: Query) -> str | None:
    """SQL listing the casts behind an ungrouped count of casts (newest first, columns
    ``hash, fid, username, timestamp, text``), for an answer's sources; None when the metric
    does not count casts or the query is grouped (its rows are the evidence then)."""
    m = metric(query.metric)
    source = SOURCES[m.source]
    if query.group_by is not None or not source.casts:
        return None
    needs_user = any(c.filter == "user" for c in query.conditions)
    needs_user = needs_user or query.top_user is not None or query.among is not None
    select = _from(m, source, needs_user)
    where = _where(query, m, source)
    if where:
        select = select.where(exp.and_(*where))
    columns = [exp.column(c, table="t", quoted=c == "timestamp") for c in SOURCE_COLUMNS]
    select = select.select(*columns).distinct()
    newest = exp.column("timestamp", table="t", quoted=True)
    select = select.order_by(exp.Ordered(this=newest, desc=True))
    return select.sql(dialect=DIALECT)


def _received_words(name: str) -> str:
    made = [m for m in METRICS.values() if m.received == name]
    if not made:
        return ""
    return f"the words of {made[0].name} with received, got, drew, whose, replied-to, or passive"


def catalogue() -> Mapping[str, Sequence[Mapping[str, str]]]:
    """The catalogue as plain rows, for `ozi metrics` and the LLM prompt: ``{"metrics":
    [{"name", "description", "words", "dimensions", "filters"}], "dimensions": [{"name",
    "description", "words"}], "filters": [{"name", "description", "words"}]}``."""
    return {
        "metrics": [
            {
                "name": m.name,
                "description": m.description,
                "source": m.source,
                "words": ", ".join(dict.fromkeys((*m.nouns, *m.verbs))) or _received_words(m.name),
                "dimensions": ", ".join(m.dimensions),
                "filters": ", ".join(m.filters),
            }
            for m in METRICS.values()
        ],
        "dimensions": [
            {"name": d.name, "description": d.description, "words": ", ".join(d.words)}
            for d in DIMENSIONS.values()
        ],
        "filters": [
            {"name": f.name, "description": f.description, "words": ", ".join(f.words)}
            for f in FILTERS.values()
        ],
    }


__all__ = [
    "DIMENSIONS",
    "FILTERS",
    "METRICS",
    "Condition",
    "LayerError",
    "Query",
    "catalogue",
    "compile_query",
    "compile_sql",
    "sources_sql",
]
