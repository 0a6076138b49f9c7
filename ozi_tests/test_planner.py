"""The offline planner and time ranges, as pure functions (no data, no model)."""

from datetime import UTC, datetime, timedelta

import pytest

from ozi_assets.questions import layer, lexicon
from ozi_assets.questions.layer import (
    METRICS,
    Condition,
    LayerError,
    Query,
    compile_sql,
    sources_sql,
)
from ozi_assets.questions.llm import grounding_error
from ozi_assets.questions.planner import Context, _without_purpose, literal, plan
from ozi_assets.questions.timerange import parse_time_range
from ozi_resources.sql_guard import guard
from ozi_resources.warehouse import PUBLIC_TABLES

NOW = datetime(2023, 3, 4, 6, 0, 27, tzinfo=UTC)
CTX = Context(users={"dwr": 3, "briang": 548, "v": 2}, now=NOW)


def reading_of(question: str) -> str:
    """The query the planner reads ``question`` as, in words (fails when it reads none)."""
    p = plan(question, CTX)
    assert p.query is not None, p.note
    return p.query.describe()


@pytest.mark.parametrize(
    ("question", "kind", "rule"),
    [
        ("How many casts did dwr post?", "analytic", "layer"),
        ("How many recasts did dwr make?", "analytic", "layer"),
        ("How many replies did @briang get today?", "analytic", "layer"),
        ("Who are the top 5 authors by number of casts?", "analytic", "layer"),
        ("Who posted the most?", "analytic", "layer"),
        ("Who got the most replies?", "analytic", "layer"),
        ("Casts per hour", "analytic", "layer"),
        ("Which hour was busiest?", "analytic", "layer"),
        ("How many casts mention denver?", "analytic", "layer"),
        ("How many users are there?", "analytic", "layer"),
        ("What are people saying about ETHDenver?", "semantic", "semantic_topic"),
        ("Which users talked about invites the most?", "hybrid", "hybrid_topic_users"),
        ("Who talked about Denver?", "hybrid", "hybrid_topic_users"),
        ("gm frens", "semantic", "semantic_fallback"),
        ("What is the average length of a cast?", "analytic", "layer"),
        ("What is the average view count of a cast?", "unanswered", "layer"),
        # a name that is no user is a word the planner does not know: refused, not a total
        ("How many casts did nobody_here post?", "unanswered", "layer"),
        ("What did nobody_here say about invites?", "unanswered", "semantic_topic"),
    ],
)
def test_classification(question, kind, rule):
    p = plan(question, CTX)
    assert (p.kind, p.rule) == (kind, rule)


def test_every_planned_sql_passes_the_guard():
    questions = [
        "How many casts did dwr post?",
        "How many replies did dwr receive?",
        "How many likes did dwr get in the last 7 days?",
        "Top 3 users by recasts received",
        "Who got the most replies today?",
        "Casts per hour between 01:00 and 03:00 UTC on March 4, 2023",
        "Which user was mentioned the most?",
        "Which cast got the most reactions?",
        "How many casts contain a link?",
        "How many casts between 03:00 and 04:00 UTC on March 4, 2023?",
    ]
    for question in questions:
        p = plan(question, CTX)
        assert p.sql, question
        guard(p.sql, PUBLIC_TABLES)


def test_user_values_are_quoted_not_spliced():
    # The value is the username the data knows, written into the tree as a string literal.
    p = plan("How many casts did dwr post?", Context(users={"dwr": 3}, now=NOW))
    assert p.sql is not None and "username = 'dwr'" in p.sql
    p = plan("How many casts did vitalik.eth post?", Context(users={"vitalik.eth": 5}, now=NOW))
    assert p.sql is not None and "username = 'vitalik.eth'" in p.sql
    # a value with a quote in it cannot break out of the literal
    assert literal("o'brien") == "'o''brien'"


def test_a_question_about_someone_unreadable_is_not_answered_with_a_total():
    p = plan("How many casts did o'brien post?", CTX)
    assert p.kind == "unanswered" and p.sql is None


def test_hybrid_sql_uses_the_hits():
    p = plan("Which users talked about invites the most?", CTX)
    assert p.search == "invites" and p.hybrid_sql is not None
    sql = p.hybrid_sql(["0xabc", "0xdef"])
    assert "'0xabc', '0xdef'" in sql
    guard(sql, PUBLIC_TABLES)


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        (
            "between 03:00 and 04:00 utc on march 4, 2023",
            datetime(2023, 3, 4, 3, tzinfo=UTC),
            datetime(2023, 3, 4, 4, tzinfo=UTC),
        ),
        ("on 2023-03-03", datetime(2023, 3, 3, tzinfo=UTC), datetime(2023, 3, 4, tzinfo=UTC)),
        ("casts today", datetime(2023, 3, 4, tzinfo=UTC), datetime(2023, 3, 5, tzinfo=UTC)),
        ("yesterday", datetime(2023, 3, 3, tzinfo=UTC), datetime(2023, 3, 4, tzinfo=UTC)),
        # a clock time without a date: the newest event's day (NOW is 06:00 on March 4),
        # or the day before when that day's has not come yet
        (
            "between 02:00 and 03:00",
            datetime(2023, 3, 4, 2, tzinfo=UTC),
            datetime(2023, 3, 4, 3, tzinfo=UTC),
        ),
        (
            "between 11pm and 1am",
            datetime(2023, 3, 3, 23, tzinfo=UTC),
            datetime(2023, 3, 4, 1, tzinfo=UTC),
        ),
        (
            "from 11:45pm to 12:15am",
            datetime(2023, 3, 3, 23, 45, tzinfo=UTC),
            datetime(2023, 3, 4, 0, 15, tzinfo=UTC),
        ),
        (
            "in the 23:00 hour",
            datetime(2023, 3, 3, 23, tzinfo=UTC),
            datetime(2023, 3, 4, tzinfo=UTC),
        ),
        (
            "the first half hour after 10pm",
            datetime(2023, 3, 3, 22, tzinfo=UTC),
            datetime(2023, 3, 3, 22, 30, tzinfo=UTC),
        ),
        # a date written beside the clock time is kept, whether it has come or not
        (
            "between 23:00 and 23:30 on march 4",
            datetime(2023, 3, 4, 23, tzinfo=UTC),
            datetime(2023, 3, 4, 23, 30, tzinfo=UTC),
        ),
        # "after" ends with that day, or with the newest event when the question says so
        ("after 5am", datetime(2023, 3, 4, 5, tzinfo=UTC), datetime(2023, 3, 5, tzinfo=UTC)),
        (
            "from 05:00 utc until the end of the sample",
            datetime(2023, 3, 4, 5, tzinfo=UTC),
            NOW + timedelta(microseconds=1),
        ),
        (
            "since 4am up to now",
            datetime(2023, 3, 4, 4, tzinfo=UTC),
            NOW + timedelta(microseconds=1),
        ),
        (
            "after 4am until the end of the day",
            datetime(2023, 3, 4, 4, tzinfo=UTC),
            datetime(2023, 3, 5, tzinfo=UTC),
        ),
    ],
)
def test_time_ranges(question, start, end):
    tr = parse_time_range(question, NOW)
    assert tr is not None and tr.start == start
    if end is not None:
        assert tr.end == end


def test_last_n_days_counts_back_from_the_newest_event():
    tr = parse_time_range("in the last 7 days", NOW)
    assert tr is not None
    assert tr.start == datetime(2023, 2, 25, 6, 0, 27, tzinfo=UTC)
    assert tr.start < NOW < tr.end
    assert parse_time_range("how many casts did dwr post", NOW) is None


def test_grounding_rejects_values_copied_from_examples():
    assert grounding_error(
        "Who are the top 5 authors?", "SELECT count(*) FROM casts WHERE username = 'dwr'", None
    )
    assert (
        grounding_error("How many casts did dwr post?", "SELECT 1 WHERE 'dwr' = 'dwr'", None)
        is None
    )
    assert grounding_error("What about ETHDenver?", None, "zora")
    assert grounding_error("What about ETHDenver?", None, "ETHDenver") is None


def test_a_search_can_be_restricted_to_one_author():
    p = plan("What did dwr say about invites?", CTX)
    assert (p.kind, p.search, p.fid) == ("semantic", "invites", 3)
    p = plan("Casts by @briang about farcaster", CTX)
    assert (p.kind, p.search, p.fid) == ("semantic", "farcaster", 548)
    p = plan("What are people saying about ETHDenver?", CTX)
    assert p.fid is None


# --- the semantic layer and the composition of questions over it -------------------------

CTX_SPAN = Context(
    users={"dwr": 3, "briang": 548, "pcdkd": 8},
    now=NOW,
    first=datetime(2023, 3, 3, 23, 45, 30, tzinfo=UTC),
)


def _query(question: str) -> Query:
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None, (question, p.note)
    return p.query


@pytest.mark.parametrize(
    ("question", "metric", "group_by", "filters"),
    [
        # the same metric, worded differently
        ("How many casts are there?", "casts", None, set()),
        ("Count every post that was published.", "casts", None, set()),
        ("How many recasts were there in total?", "recasts", None, set()),
        ("How many times did someone reshare a cast?", "recasts", None, set()),
        ("How many distinct users posted casts?", "distinct_authors", None, set()),
        # modifiers compose with any metric
        (
            "How many top-level casts were there, not counting replies?",
            "casts",
            None,
            {("top_level", False), ("reply", True)},
        ),
        ("How many casts contain a link?", "casts", None, {("has_link", False)}),
        (
            "How many replies by dwr have no link?",
            "replies",
            None,
            {("user", False), ("has_link", True)},
        ),
        ("How many casts mention denver?", "casts", None, {("term", False)}),
        ("How many casts mention dwr?", "mentions", None, {("user", False)}),
        # made versus received
        ("How many replies did dwr receive?", "replies_received", None, {("user", False)}),
        ("How many casts did dwr recast?", "recasts", None, {("user", False)}),
        # grouping words
        ("How many casts did pcdkd post per hour?", "casts", "hour", {("user", False)}),
        ("Hourly replies", "replies", "hour", set()),
        ("Which cast got the most reactions?", "reactions_received", "cast", set()),
        ("Which thread has the most casts?", "casts", "thread", set()),
        ("Whose casts were recast the most?", "recasts_received", "user", set()),
        ("Which users posted more than 10 casts?", "casts", "user", set()),
    ],
)
def test_questions_compose_from_the_lexicon(question, metric, group_by, filters):
    q = _query(question)
    assert (q.metric, q.group_by) == (metric, group_by)
    assert {(c.filter, c.negated) for c in q.conditions} == filters


def test_per_hour_is_a_grouping_not_a_total():
    q = _query("How many casts did pcdkd post per hour?")
    assert q.group_by == "hour" and q.order is None and q.limit is None


def test_rankings_take_their_size_and_direction_from_the_question():
    q = _query("Which 3 users wrote the most top-level casts?")
    assert (q.group_by, q.order, q.limit) == ("user", "desc", 3)
    q = _query("Top five people by replies received from someone else")
    assert (q.metric, q.limit) == ("replies_received", 5)
    assert Condition("others") in q.conditions
    q = _query("Who cast at least 11 times?")
    assert q.having == (">=", 11.0) and q.limit is None


def test_time_words_are_read_as_a_range_not_as_users():
    p = plan("How many casts were posted between 03:00 and 04:00 UTC on March 4, 2023?", CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None
    assert p.time_range is not None and p.time_range.start == datetime(2023, 3, 4, 3, tzinfo=UTC)
    assert p.query.conditions == ()


@pytest.mark.parametrize(
    "question",
    [
        "how many casts from 2:45am to 3:15am utc, around 3am",
        "how many casts were sent in the half hour around 3am (02:45 to 03:15)?",
        "number of casts 02:45 until 03:15, close to 3 am",
    ],
)
def test_a_rough_time_beside_the_exact_range_describes_it(question):
    """A time said roughly ("around 3am") within the range the question states exactly is
    the same range; "02:45 to 03:15" is a range without "from", as both ends are clock times."""
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None and p.query.conditions == ()
    assert p.time_range is not None
    assert (p.time_range.start, p.time_range.end) == (
        datetime(2023, 3, 4, 2, 45, tzinfo=UTC),
        datetime(2023, 3, 4, 3, 15, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "question",
    [
        "how many casts around 3am",  # no exact range: the rough time is not read
        "how many casts from 2:45am to 3:15am, around 5am",  # outside the range it names
    ],
)
def test_a_rough_time_alone_or_outside_the_range_is_not_answered(question):
    p = plan(question, CTX_SPAN)
    assert p.kind == "unanswered" and p.sql is None


@pytest.mark.parametrize(
    ("question", "read"),
    [
        ("how mnay casts did dwr post", "how many casts did dwr post"),
        ("waht are the top 3 casters", "what are the top 3 casters"),
        # four letters, one left out of a catalogue word: typed too fast
        ("how many rply did dwr write", "how many reply did dwr write"),
        ("who posted more lnks, dwr or pcdkd", "who posted more links, dwr or pcdkd"),
        # a word a rewrite reads before the catalogue does ("only cast once"): the whole
        # question is read again, respelled
        ("what % of posters onyl cast once", "what % of posters only cast once"),
    ],
)
def test_a_short_word_mistyped_is_read_as_the_word(question, read):
    p, meant = plan(question, CTX_SPAN), plan(read, CTX_SPAN)
    assert p.kind == meant.kind == "analytic" and p.sql == meant.sql


def test_a_short_word_one_letter_off_stays_unknown():
    # "mans" is one letter from "many" but no swap of two of its letters: not read as it
    p = plan("how mans casts did dwr post", CTX_SPAN)
    assert p.kind == "unanswered" and "'mans'" in (p.note or "")


def test_a_layout_or_an_imperative_asks_for_nothing_more():
    """ "side by side" lays the rows out; "Name the top two …" at a sentence's start is the
    verb, not a user called "name"."""
    p = plan("Can you pull the cast counts for dwr vs pcdkd side by side?", CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None and p.query.group_by == "user"
    assert [(c.filter, c.value) for c in p.query.conditions] == [("user", "dwr,pcdkd")]
    p = plan("Who got the most replies? Name the top two.", CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None and p.query.limit == 2


@pytest.mark.parametrize(
    ("question", "dimension", "place"),
    [
        ("what was the second most active hour", "hour", 2),
        ("who posted the 3rd most casts", "user", 3),
        ("who was the 2nd-highest poster", "user", 2),
        ("which cast got the fourth most replies?", "cast", 4),
        ("who has the second fewest followers", "user", 2),
    ],
)
def test_an_ordinal_before_a_ranking_word_is_a_place_in_the_ranking(question, dimension, place):
    """ "the third most": the group at that place of the ranking (LIMIT 1 OFFSET 2), with
    any tied with it; "3rd" there is no day of the month."""
    query = _query(question)
    assert (query.group_by, query.rank, query.time_range) == (dimension, place, None)
    assert query.order is not None
    assert f"LIMIT 1 OFFSET {place - 1}) AS place)" in layer.compile_sql(query)


def test_a_place_in_a_ranking_of_nothing_is_refused():
    p = plan("how many casts did dwr post, the third most?", CTX_SPAN)
    assert p.kind == "unanswered" and p.sql is None
    with pytest.raises(LayerError, match="needs a ranking"):
        layer.compile_sql(Query("casts", rank=2, order="desc"))


def test_an_ordinal_day_of_the_month_stays_a_date():
    for question in ("how many casts on the 3rd", "how many casts on march 3rd"):
        query = _query(question)
        assert query.rank is None and query.time_range is not None
        assert query.time_range.start == datetime(2023, 3, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("chat", "spelled_out"),
    [
        ("wat time was dwr's 1st post", "what time was dwr's first post"),
        ("wut time was dwr's 1st reply", "what time was dwr's first reply"),
        ("who's always @-ing people?", "who mentions people the most?"),
        ("who @s people the most", "who mentions people the most"),
        ("who tags other users the most", "who mentions other users the most"),
        ("how many casts tagged dwr", "how many casts mentioned dwr"),
        ("who is always replying to dwr", "who replies to dwr the most"),
        ("how many casts went to the main feed", "how many casts were not in a channel"),
        ("how many casts were posted outside of channels", "how many casts not in a channel"),
        (
            "count the posts made inside a channel rather than the main feed",
            "count the posts made inside a channel",
        ),
        (
            "what % of posts r replies? like responses vs evrything",
            "what percentage of casts are replies",
        ),
        ("which cast got the most likes from people", "which cast got the most likes"),
        ("top 3 most prolific responders in the conversations", "top 3 repliers"),
    ],
)
def test_chat_and_feed_words_read_as_the_plain_question(chat, spelled_out):
    """Chat's "wat", "1st", "@-ing", "always …ing" (the most), "tag" someone (a mention),
    "the main feed" (outside every channel), a question said again after its "?", likes
    "from people" (anyone's) and responders "in the conversations" (where replies are)."""
    p, meant = plan(chat, CTX_SPAN), plan(spelled_out, CTX_SPAN)
    assert p.kind == meant.kind == "analytic", (p.note, meant.note)
    assert p.sql == meant.sql


def test_tags_without_whom_is_not_a_mention():
    p = plan("which tags are used most", CTX_SPAN)
    assert p.query is None or "mention" not in p.query.describe()


@pytest.mark.parametrize(
    "question",
    [
        "How many top-level casts got at least 3 replies?",
        "how many original posts received 3+ responses",
        "the number of thread-starting casts that drew three or more replies",
    ],
)
def test_a_threshold_on_the_replies_top_level_casts_received(question):
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None
    assert p.query.metric == "replies_received" and p.query.count_over == "cast"
    assert p.query.having is not None and p.query.having[1] == 3
    assert [(c.filter, c.negated) for c in p.query.conditions] == [("to_reply", True)]


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("How many casts did pcdkd post about rugby per hour?", ["about", "rugby"]),
        ("How many tweets did dwr post?", ["tweets"]),
        ("How many casts got translated?", ["translated"]),
    ],
)
def test_a_word_not_understood_is_named_and_nothing_is_answered(question, words):
    p = plan(question, CTX_SPAN)
    assert p.kind == "unanswered" and p.sql is None
    assert p.note is not None and all(repr(w) in p.note for w in words)


def test_a_time_range_outside_the_data_is_refused_not_zero():
    p = plan("How many casts were posted on January 15, 2022?", CTX_SPAN)
    assert p.kind == "unanswered" and "outside" in (p.note or "")
    p = plan("Who posted the most casts in December 2022?", CTX_SPAN)
    assert p.kind == "unanswered"


def test_two_metrics_are_refused_and_several_users_get_a_row_each():
    assert plan("How many likes and replies did dwr get?", CTX_SPAN).kind == "unanswered"
    each = plan("How many casts did dwr and briang post?", CTX_SPAN).query
    assert each is not None and each.group_by == "user" and each.order is None
    assert each.conditions == (Condition("user", "dwr,briang"),)
    sql = compile_sql(each)
    assert "IN ('dwr', 'briang')" in sql
    guard(sql, PUBLIC_TABLES)
    # a comparative between named users orders them, the most first (or the fewest)
    more = plan("who has more followers, dwr or briang?", CTX_SPAN).query
    assert more is not None and (more.metric, more.group_by, more.order) == (
        "followers",
        "user",
        "desc",
    )
    fewer = plan("did dwr or briang write fewer replies", CTX_SPAN).query
    assert fewer is not None and (fewer.metric, fewer.order) == ("replies", "asc")
    # several users in a figure over groups is not a query the layer has
    assert plan("average casts per hour for dwr and briang", CTX_SPAN).kind == "unanswered"


def test_a_name_with_a_quote_among_several_users_stays_a_literal():
    sql = compile_sql(Query("casts", "user", (Condition("user", "dwr,o'brien"),)))
    assert "IN ('dwr', 'o''brien')" in sql
    guard(sql, PUBLIC_TABLES)


def test_the_layer_compiles_each_metric_to_guarded_sql():
    for name, m in METRICS.items():
        queries = [Query(name)] + [Query(name, d, order="desc", limit=3) for d in m.dimensions]
        if m.text:  # a profile's text is looked up for named users, or per user
            queries = [Query(name, conditions=(Condition("user", "dwr"),)), Query(name, "user")]
        for q in queries:
            sql = compile_sql(q)
            assert f"AS {name}" in sql
            guard(sql, PUBLIC_TABLES)
            if (s := sources_sql(q)) is not None:
                guard(s, PUBLIC_TABLES)


def test_the_layer_writes_values_as_literals():
    sql = compile_sql(Query("casts", conditions=(Condition("term", "it's 50%"),)))
    assert r"'it''s\ 50%'" in sql  # quoted, and every character of the term literal
    sql = compile_sql(Query("casts", conditions=(Condition("hashtag", "eth(denver"),)))
    assert r"#eth\(denver" in sql
    guard(sql, PUBLIC_TABLES)


def test_the_layer_refuses_what_a_metric_does_not_have():
    with pytest.raises(LayerError, match="cannot be grouped by thread"):
        compile_sql(Query("recasts", "thread"))
    with pytest.raises(LayerError, match="cannot be filtered by has_link"):
        compile_sql(Query("followers", conditions=(Condition("has_link"),)))
    with pytest.raises(LayerError, match="no history"):
        compile_sql(Query("followers", time_range=parse_time_range("today", NOW)))
    with pytest.raises(LayerError, match="no metric named"):
        compile_sql(Query("tweets"))


def test_the_layer_computes_what_its_catalogue_says():
    """The compiled SQL run on a small table: counts, groups, filters and thresholds."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('0x1', 3, 'dwr', 'gm https://a.b', TIMESTAMPTZ '2023-03-04 01:10:00+00', NULL, NULL,"
        " '0x1', NULL, [2]::BIGINT[], ['https://a.b'], false), "
        "('0x2', 2, 'v', 'hi @dwr', TIMESTAMPTZ '2023-03-04 01:20:00+00', '0x1', 3, '0x1', NULL,"
        " [3]::BIGINT[], []::VARCHAR[], true), "
        "('0x3', 3, 'dwr', 'thanks', TIMESTAMPTZ '2023-03-04 02:05:00+00', '0x2', 2, '0x1', NULL,"
        " []::BIGINT[], ['https://i.imgur.com/x.png'], true)) "
        'AS t(hash, fid, username, text, "timestamp", parent_hash, parent_fid, thread_hash, '
        "parent_url, mentions, embeds, is_reply)"
    )
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (3, 'dwr', 10), (2, 'v', 20)) "
        "AS t(fid, username, follower_count)"
    )

    def run(q: Query) -> list[tuple]:
        return con.execute(compile_sql(q)).fetchall()

    assert run(Query("casts")) == [(3,)]
    assert run(Query("replies")) == [(2,)]
    assert run(Query("top_level_casts")) == [(1,)]
    assert run(Query("distinct_authors")) == [(2,)]
    assert run(Query("casts", conditions=(Condition("has_link"),))) == [(2,)]
    assert run(Query("casts", conditions=(Condition("has_image"),))) == [(1,)]
    assert run(Query("casts", conditions=(Condition("has_link", negated=True),))) == [(1,)]
    assert run(Query("mentions", conditions=(Condition("user", "dwr"),))) == [(1,)]
    assert run(Query("replies_received", "user", order="desc", limit=5)) == [("dwr", 1), ("v", 1)]
    assert [r[1] for r in run(Query("casts", "hour"))] == [2, 1]
    assert run(Query("casts", "user", having=(">", 1))) == [("dwr", 2)]
    assert run(Query("followers", "user", order="desc", limit=1)) == [("v", 20)]
    assert run(Query("casts", "thread", order="desc", limit=1)) == [("0x1", 3)]
    # the largest or smallest group's figure, one number: dwr's 2 casts, v's 1
    assert run(Query("casts", average_over="user", extreme="desc")) == [(2,)]
    assert run(Query("casts", average_over="user", extreme="asc")) == [(1,)]
    # what a cast received, averaged over every cast: 0x1 and 0x2 got a reply each, 0x3 none
    (mean,) = run(Query("replies_received", average_over="cast"))[0]
    assert mean == pytest.approx(2 / 3)
    by_dwr = Query("replies_received", conditions=(Condition("user", "dwr"),), average_over="cast")
    assert run(by_dwr) == [(0.5,)]  # dwr's two casts, 0x2 replied to once, 0x3 never


# -- the LLM planner's queries over the layer (the model's reply is the input; no model here) --


def test_a_model_query_becomes_a_layer_query():
    from ozi_assets.questions.llm import query_from_json

    q = query_from_json(
        {
            "metric": "casts",
            "group_by": "user",
            "filters": [{"filter": "has_link", "negated": True}],
            "since": "2023-03-04T03:00:00Z",
            "until": "2023-03-04T04:00:00Z",
            "order": "desc",
            "limit": 5,
        },
        CTX,
    )
    assert (q.metric, q.group_by, q.order, q.limit) == ("casts", "user", "desc", 5)
    assert q.conditions == (Condition("has_link", None, True),)
    assert q.time_range is not None
    assert q.time_range.start == datetime(2023, 3, 4, 3, tzinfo=UTC)
    assert q.time_range.end == datetime(2023, 3, 4, 4, tzinfo=UTC)
    guard(compile_sql(q), PUBLIC_TABLES)  # compiles to SQL the guard accepts


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"metric": "posts"}, "no metric 'posts'"),
        ({"metric": "casts", "group_by": "planet"}, "no dimension 'planet'"),
        ({"metric": "casts", "filters": [{"filter": "mood", "value": "x"}]}, "no filter 'mood'"),
        ({"metric": "casts", "limit": 0}, '"limit"'),
        ({"metric": "casts", "limit": "five"}, '"limit"'),
        ({"metric": "casts", "order": "up"}, '"order"'),
        ({"metric": "casts", "extreme": "desc"}, '"extreme" needs "average_over"'),
        ({"metric": "casts", "average_over": "user", "extreme": "max"}, '"extreme"'),
        ({"metric": "casts", "since": "yesterday"}, '"since"'),
        ({"metric": "casts", "since": "2023-03-04T04:00Z", "until": "2023-03-04T03:00Z"}, "after"),
        ([1, 2], '"query" must be an object'),
    ],
)
def test_a_malformed_model_query_is_refused_with_the_reason(reply, message):
    from ozi_assets.questions.llm import query_from_json

    with pytest.raises(ValueError, match=message):
        query_from_json(reply, CTX)


def test_a_model_query_filtering_on_a_value_the_question_never_named_is_not_grounded():
    from ozi_assets.questions.llm import query_from_json, query_grounding_error

    copied = query_from_json(
        {"metric": "casts", "filters": [{"filter": "user", "value": "dwr"}]}, CTX
    )
    assert query_grounding_error("How many casts did briang post?", copied)
    assert query_grounding_error("How many casts did @dwr post?", copied) is None


HOUR = {"since": "2023-03-04T04:00:00Z", "until": "2023-03-04T05:00:00Z"}
TOP_POSTER = Query("casts", "user", order="desc", limit=1)


@pytest.mark.parametrize(
    ("reply", "query"),
    [
        (
            {"metric": "casts", "average_over": "user", "median": True},
            Query("casts", average_over="user", median=True),
        ),
        (
            {"metric": "casts", "count_over": "user", "having": [">=", 3]},
            Query("casts", count_over="user", having=(">=", 3.0)),
        ),
        (
            {"metric": "mentioned_users", "count_over": "cast", "having": [">=", 2]},
            Query("mentioned_users", count_over="cast", having=(">=", 2.0)),
        ),
        (
            {"metric": "casts", "count_over": "thread", "having": [">", 10]},
            Query("casts", count_over="thread", having=(">", 10.0)),
        ),
        (
            {
                "metric": "replies",
                "filters": [{"filter": "user", "value": "dwr"}, {"filter": "has_link"}],
                "share": True,
                "base": ["has_link"],
            },
            Query(
                "replies",
                conditions=(Condition("user", "dwr"), Condition("has_link")),
                share=True,
                base=("has_link",),
            ),
        ),
        (
            {
                "metric": "casts",
                "group_by": "user",
                "users_with": [{"metric": "recasts"}, {"metric": "replies", "without": True}],
            },
            Query("casts", "user", users_with=(("recasts", False), ("replies", True))),
        ),
        (
            {"metric": "casts", "moment": "last", "filters": [{"filter": "user", "value": "v"}]},
            Query("casts", conditions=(Condition("user", "v"),), moment="last"),
        ),
        (
            {
                "metric": "followers",
                "top_user": {"metric": "casts", "group_by": "user", "order": "desc", "limit": 1},
            },
            Query("followers", top_user=TOP_POSTER),
        ),
        (
            {"metric": "replies", "ratio_to": {"metric": "top_level_casts"}},
            Query("replies", ratio_to=Query("top_level_casts")),
        ),
        (
            {
                "metric": "replies",
                "group_by": "to_user",
                "filters": [{"filter": "in_thread", "value": "everyday wallet"}],
            },
            Query("replies", "to_user", conditions=(Condition("in_thread", "everyday wallet"),)),
        ),
        (
            {"metric": "casts", "filters": [{"filter": "has_mention", "negated": True}]},
            Query("casts", conditions=(Condition("has_mention", None, True),)),
        ),
    ],
)
def test_a_model_query_may_use_every_field_the_offline_planner_uses(reply, query):
    from ozi_assets.questions.llm import query_from_json

    assert query_from_json(reply, CTX) == query
    guard(compile_sql(query), PUBLIC_TABLES)


def test_a_model_query_may_ask_when_casts_were_posted():
    from ozi_assets.questions.llm import query_from_json

    q = query_from_json(
        {
            "metric": "recasts_received",
            "group_by": "cast",
            "order": "desc",
            "limit": 1,
            "cast_time": True,
            **HOUR,
        },
        CTX,
    )
    assert (
        q.cast_time and q.time_range and q.time_range.start == datetime(2023, 3, 4, 4, tzinfo=UTC)
    )
    assert "casts posted between" in q.describe()
    guard(compile_sql(q), PUBLIC_TABLES)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        # a misspelt field is refused, never ignored (the median would silently be a mean)
        ({"metric": "casts", "average_over": "user", "medain": True}, "unknown fields: medain"),
        ({"metric": "casts", "average_over": "user", "median": "yes"}, '"median" must be true'),
        ({"metric": "casts", "median": True}, '"median" needs "average_over"'),
        ({"metric": "casts", "count_over": "planet"}, "no dimension 'planet' for \"count_over\""),
        ({"metric": "casts", "group_by": "user", "having": ">10"}, '"having" must be'),
        ({"metric": "casts", "group_by": "user", "having": ["~", 10]}, '"having" must be'),
        ({"metric": "casts", "group_by": "user", "having": [">", "ten"]}, '"having" must be'),
        ({"metric": "casts", "group_by": "user", "having": [">", True]}, '"having" must be'),
        ({"metric": "replies", "base": ["has_link"]}, "filters the query does not have"),
        (
            {"metric": "replies", "filters": [{"filter": "has_link"}], "base": ["has_link"]},
            '"base" needs "share"',
        ),
        ({"metric": "replies", "share": 1}, '"share" must be true'),
        ({"metric": "casts", "group_by": "user", "users_with": [{"metric": "tweets"}]}, "tweets"),
        (
            {
                "metric": "casts",
                "group_by": "user",
                "users_with": [{"metric": "replies", "never": True}],
            },
            '"users_with" items',
        ),
        ({"metric": "casts", "moment": "middle"}, '"moment"'),
        ({"metric": "casts", "cast_time": True}, '"cast_time" needs'),
        ({"metric": "followers", "top_user": {"metric": "casts"}}, '"top_user" must rank'),
        ({"metric": "followers", "top_user": "briang"}, '"query" must be an object'),
        (
            {"metric": "replies", "ratio_to": {"metric": "casts", "ratio_to": {"metric": "casts"}}},
            "nested query cannot",
        ),
        ({"metric": "casts", "filters": {"filter": "has_link"}}, '"filters" must be a list'),
        ({"metric": "casts", "filters": [{"filter": "has_link", "value": "x"}]}, "takes no value"),
        ({"metric": "casts", "filters": [{"filter": "user"}]}, "filter user needs a value"),
        ({"metric": "casts", "filters": [{"filter": "user", "value": True}]}, "must be text"),
        ({"metric": "casts", "filters": [{"filter": "user", "value": " "}]}, "must be text"),
        (
            {"metric": "casts", "filters": [{"filter": "has_link", "negated": "no"}]},
            '"negated" of filter has_link',
        ),
        ({"metric": "casts", "filters": [{"filter": "reply", "not": True}]}, "unknown fields: not"),
        ({"metric": "casts", "limit": True}, '"limit"'),
    ],
)
def test_a_malformed_newer_field_is_refused_in_one_line(reply, message):
    from ozi_assets.questions.llm import query_from_json

    with pytest.raises(ValueError, match=message) as refused:
        query_from_json(reply, CTX)
    assert "\n" not in str(refused.value)


def test_a_model_query_is_grounded_in_every_part_of_the_question():
    from ozi_assets.questions.llm import query_from_json, query_grounding_error

    def grounded(question, reply):
        return query_grounding_error(question, query_from_json(reply, CTX)) is None

    ranked_in = {
        "metric": "followers",
        "top_user": {
            "metric": "casts",
            "group_by": "user",
            "order": "desc",
            "limit": 1,
            "filters": [{"filter": "term", "value": "gm"}],
        },
    }
    assert grounded("Followers of whoever wrote gm the most?", ranked_in)
    assert not grounded("Followers of whoever posted the most?", ranked_in)
    ratio = {
        "metric": "casts",
        "filters": [{"filter": "user", "value": "dwr"}],
        "ratio_to": {"metric": "casts", "filters": [{"filter": "user", "value": "v"}]},
    }
    assert not grounded("dwr's casts over briang's?", ratio)
    several = {"metric": "casts", "filters": [{"filter": "user", "value": "dwr, v"}]}
    assert grounded("How many casts did dwr and v post together?", several)
    assert not grounded("How many casts did dwr and briang post together?", several)
    thread = {"metric": "casts", "filters": [{"filter": "in_thread", "value": "everyday @dwr"}]}
    assert grounded("Casts in dwr's thread about his everyday carry", thread)
    assert not grounded("Casts in dwr's wallet thread", thread)


def test_the_model_reads_the_layer_catalogue():
    from ozi_assets.questions.layer import METRICS
    from ozi_assets.questions.llm import layer_prompt

    prompt = layer_prompt()
    assert all(f"- {name}:" in prompt for name in METRICS)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # who follows whom: the user before the verb follows, the user after it is followed
        ("How many accounts does dwr follow?", "following, user = dwr"),
        ("How many people follow dwr?", "followers, user = dwr"),
        # "non-" negates what it is attached to
        ("How many non-reply casts did dwr post?", "casts, user = dwr, not reply"),
        # after "the word" the next word is the term, even one the planner knows otherwise
        ("How many casts contain the word data?", "casts, term = data"),
        # "got" as the passive's auxiliary
        ("Whose casts got recast the most?", "recasts_received, by user, top 10"),
        # a thread's length is its casts
        ("Which thread is the longest?", "casts, by thread, top 10"),
        # counting distinct people per group
        ("Which hour had the most unique authors?", "distinct_authors, by hour, top 10"),
        ("Which thread had the most distinct participants?", "distinct_authors, by thread, top 10"),
        # "how many replies were …": the count is of the replies, not of the people
        ("How many replies were people replying to their own casts?", "replies, not others"),
        ("When was the earliest cast posted?", "first_cast_at"),
        ("When did dwr post his most recent reply?", "last_cast_at, user = dwr, reply"),
        ("How many casts brought up twitter?", "casts, term = twitter"),
    ],
)
def test_readings(question, reading):
    assert reading_of(question) == reading


def test_a_group_named_with_a_participle_is_not_an_unknown_author():
    # "from X about" names an author; "from newcomers posting …" describes people
    assert plan("What did nobody_here say about invites?", CTX).kind == "unanswered"
    assert plan("find casts from newcomers posting their first cast", CTX).kind == "semantic"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("Who are the top 3 repliers?", "replies, by user, top 3"),
        ("Top 5 recasters", "recasts, by user, top 5"),
        ("How many people replied?", "distinct_authors, reply"),
        ("How many casts have a web link?", "casts, has_link"),
    ],
)
def test_agent_nouns_and_people_who_did_it(question, reading):
    assert reading_of(question) == reading


def test_an_average_is_the_mean_over_the_groups_it_names():
    p = plan("On average, how many casts did each author post?", CTX)
    assert p.query is not None and p.query.describe() == "casts, average per user"
    assert p.sql is not None and "AVG(casts)" in p.sql
    guard(p.sql, PUBLIC_TABLES)
    assert plan("average number of replies per hour", CTX).query.average_over == "hour"
    # an average of nothing in particular is refused, not answered as a total
    assert plan("What are the average casts?", CTX).kind == "unanswered"


@pytest.mark.parametrize(
    "question",
    [
        "On average, how many replies does a cast get?",
        "how many replies does each cast receive on average",
        "avg number of replies per post",
    ],
)
def test_an_average_of_what_a_cast_got_is_over_every_cast(question):
    p = plan(question, CTX)
    assert p.query is not None and p.query.describe() == "replies_received, average per cast"
    assert p.sql is not None and "COALESCE" in p.sql  # a cast nobody replied to counts as 0


@pytest.mark.parametrize(
    ("question", "kind", "search"),
    [
        # people ranked by what they did, in words the layer does not know: a topic of casts
        ("Who welcomed new users the most?", "hybrid", "welcomed new users"),
        ("Which people greeted newcomers most often?", "hybrid", "greeted newcomers"),
        ("Top 3 accounts hyping NFTs", "hybrid", "hyping nfts"),
        # a ranking by a metric the layer has, with a word it does not know: refused
        ("Who has the most followers on Twitter?", "unanswered", None),
        ("Who got the most replies from bots?", "unanswered", None),
    ],
)
def test_people_ranked_by_what_they_did(question, kind, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == (kind, search), p.note


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("How many of dwr's casts are replies?", "replies, user = dwr"),
        # the casts counted, those that drew a reply or a recast (not the replies or
        # recasts they drew)
        ("How many of dwr's casts were recast?", "casts, user = dwr, recast"),
        ("How many of dwr's casts got replies?", "casts, user = dwr, replied"),
        ("How many recasts did dwr's casts get?", "recasts_received, user = dwr"),
    ],
)
def test_what_a_users_casts_are_against_what_they_got(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # terse questions whose every word is understood are queries
        ("replies to dwr", "replies_received, user = dwr"),
        ("casts w/ pics", "casts, has_image"),
        ("casts/hour", "casts, by hour"),
        ("users with 10+ casts", "casts, how many and which, by user, with casts >= 10, top"),
        # negations and inclusions in other words
        ("How many casts aren't replies?", "casts, not reply"),
        ("hourly count of messages, replies included", "casts, by hour"),
        # synonyms of metrics, people and filters
        ("total hearts?", "likes"),
        ("how many different folks cast something?", "distinct_authors"),
        ("unique posters", "distinct_authors"),
        ("Count the responses authored by dwr", "replies, user = dwr"),
        ("How many casts carry a web address?", "casts, has_link"),
        ("How many casts have a picture embedded?", "casts, has_image"),
        # received: a participle before its noun, what a user's stuff got
        ("most reshared authors, top 3", "recasts_received, by user, top 3"),
        ("how many times did dwr's stuff get reshared?", "recasts_received, user = dwr"),
        # a dimension named by "with" or "that" in a ranking
        ("the cast that drew the most replies", "replies_received, by cast, top 10"),
        ("Count every cast whose UTC date is 2023-03-04", "casts, on 2023-03-04 (UTC)"),
        ("the mean number of casts per distinct author", "casts, average per user"),
        ("casts on the 4th", "casts, on 2023-03-04 (UTC)"),
    ],
)
def test_wordings_of_the_same_queries(question, reading):
    assert reading_of(question) == reading


def test_month_and_year_without_in_is_a_range():
    ctx = Context(users=CTX.users, now=NOW, first=datetime(2023, 3, 3, 23, 45, tzinfo=UTC))
    p = plan("casts feb 2023", ctx)
    assert p.kind == "unanswered" and "outside" in (p.note or "")


def test_ranking_by_the_number_of_casts_on_a_topic_is_a_topic_ranking():
    p = plan("Rank accounts by the number of welcome messages they posted", CTX)
    assert p.kind == "hybrid"


@pytest.mark.parametrize(
    ("question", "note"),
    [
        ("satoshi_nakamoto casts", "no user named 'satoshi_nakamoto'"),
        ("posts by nobody_here", "no user named 'nobody_here'"),
        ("views on dwr's casts", "'views'"),
    ],
)
def test_terse_questions_about_what_the_data_lacks_are_refused(question, note):
    p = plan(question, CTX)
    assert p.kind == "unanswered" and note in (p.note or "")
    # a terse question naming no user and no metric is still a search, and so is a longer
    # one whose first word is a verb
    assert plan("gm frens", CTX).kind == "semantic"
    assert plan("Surface casts that discuss AI models.", CTX).kind == "semantic"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("How many authors posted fewer than 2 casts?", "casts, count of users, with casts < 2"),
        ("top 3 posters if we ignore briang", "casts, by user, top 3, not user = briang"),
        ("total hearts on posts by dwr?", "likes_received, user = dwr"),
        (
            "Which of dwr's casts had the most engagement?",
            "engagement, by cast, top 10, user = dwr",
        ),
        ("hours with over a hundred posts?", "casts, by hour, with casts > 100, top"),
        # "himself" is emphatic unless it is what the replies are to
        ("How many recasts did dwr make himself?", "recasts, user = dwr"),
        (
            "How many replies did dwr get, not counting himself?",
            "replies_received, user = dwr, others",
        ),
        ("Which 3 accounts are @mentioned in the most casts?", "mentions, by user, top 3"),
        ("which 5 hours had most posts? biggest first", "casts, by hour, top 5"),
        (
            "for every hour, the number of different users who wrote casts",
            "distinct_authors, by hour",
        ),
    ],
)
def test_more_wordings(question, reading):
    assert reading_of(question) == reading


def test_a_count_of_users_passing_a_threshold_compiles():
    p = plan("How many users posted more than 10 casts?", CTX)
    assert p.sql is not None and p.sql.startswith("SELECT COUNT(*) AS users FROM (")
    guard(p.sql, PUBLIC_TABLES)


def test_a_topic_named_before_the_subject():
    assert plan("eth denver - who posted about it most", CTX).search == "eth denver"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the moment of the first or last cast, asked with "time" or of "who"
        ("What is the timestamp of the most recent cast by dwr?", "last_cast_at, user = dwr"),
        ("dwr last cast time", "last_cast_at, user = dwr"),
        ("who posted the very last cast", "last_cast_at, by user, top 10"),
        ("which user wrote the earliest reply?", "first_cast_at, by user, bottom 10, reply"),
        # people counted by the reactions they gave
        ("how many different people recast something?", "recasters"),
        ("number of unique likers", "likers"),
        # a link to a site, named or by host, in text or embeds
        ("casts w/ youtube links", "casts, site = youtube"),
        ("how many posts link to github.com?", "casts, site = github.com"),
        # thresholds written with words and separators
        (
            "users with more than a thousand followers",
            "followers, how many and which, by user, with followers > 1000, top",
        ),
        (
            "users whose follower count exceeds 1,000",
            "followers, how many and which, by user, with followers > 1000, top",
        ),
        # asides and requests ask for nothing
        ("quick one - how many casts did dwr post? curious", "casts, user = dwr"),
    ],
)
def test_more_ways_of_asking_read_as_one_query(question, reading):
    got = plan(question, CTX_SPAN)
    assert got.kind == "analytic", got.note
    assert got.query is not None and got.query.describe() == reading
    guard(got.sql, PUBLIC_TABLES)


def test_a_site_filter_finds_links_in_text_and_embeds_on_any_of_its_hosts():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('a', 'watch https://www.youtube.com/watch?v=1', []::VARCHAR[]), "
        "('b', 'short youtu.be/abc link', []::VARCHAR[]), "
        "('c', 'i love youtube', []::VARCHAR[]), "
        "('d', 'embed only', ['https://m.youtube.com/x']), "
        "('e', 'https://notyoutube.com/x', []::VARCHAR[])) AS v(hash, text, embeds)"
    )
    sql = compile_sql(Query("casts", conditions=(Condition("site", "youtube"),)))
    assert con.execute(sql).fetchone() == (3,)
    sql = compile_sql(Query("casts", conditions=(Condition("site", "youtube.com,youtu.be"),)))
    assert con.execute(sql).fetchone() == (3,)


def test_a_user_property_the_data_lacks_is_refused_not_searched():
    for question in ("dwr eth balance", "Return the account creation date of the user dwr."):
        got = plan(question, CTX_SPAN)
        assert got.kind == "unanswered" and "the data holds no" in (got.note or "")
    # a topic of a user's casts is still a search
    assert plan("what did dwr say about his wallet balance", CTX_SPAN).kind == "semantic"


def test_who_ranked_on_a_topic_with_their_counts_is_a_topic_ranking():
    got = plan(
        "Which users cast most often about music? Return usernames with their counts.", CTX_SPAN
    )
    assert (got.kind, got.search) == ("hybrid", "music")
    got = plan("Identify the author with the most casts about fonts", CTX_SPAN)
    assert (got.kind, got.search) == ("hybrid", "fonts")


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("How many top-level casts got no replies at all?", "casts, top_level, not replied"),
        ("original posts with zero replies, how many", "casts, top_level, not replied"),
        ("How many casts with a link received at least one reply?", "casts, has_link, replied"),
        ("how many unanswered casts did dwr post", "casts, user = dwr, not replied"),
        # replies counted stay the metric
        ("which cast got the most replies", "replies_received, by cast, top 10"),
        ("how many replies did dwr's casts get", "replies_received, user = dwr"),
    ],
)
def test_whether_casts_drew_replies_is_a_condition_on_them(question, reading):
    assert _query(question).describe() == reading


def test_the_replied_filter_counts_casts_by_their_direct_replies():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('a', NULL, false), ('b', 'a', true), ('c', 'b', true), ('d', NULL, false)) "
        "AS v(hash, parent_hash, is_reply)"
    )
    replied = (Condition("replied"),)
    assert con.execute(compile_sql(Query("casts", conditions=replied))).fetchone() == (2,)
    lonely = (Condition("top_level"), Condition("replied", negated=True))
    assert con.execute(compile_sql(Query("casts", conditions=lonely))).fetchone() == (1,)


def test_a_display_name_written_as_a_proper_name_names_its_user():
    ctx = Context(
        users={"v": 2, "dwr": 3},
        now=NOW,
        display_names={"varun srinivasan": "v", "who is": "dwr"},
    )
    assert plan("Varun Srinivasan follower count?", ctx).query.describe() == "followers, user = v"
    # lower case, a display name that is plain words is not read as a name
    assert "user = dwr" not in (plan("who is the top poster?", ctx).query.describe())


@pytest.mark.parametrize(
    "question",
    [
        "Who is Varun Srinivasan?",
        "What is the username of Varun Srinivasan?",
        "which account is Varun Srinivasan",
        "Which user has the display name Varun Srinivasan?",
        "whose display name is Varun Srinivasan",
    ],
)
def test_whose_profile_a_display_name_is_is_looked_up(question):
    """A display name asked about is looked up: its user and display name (it had been a
    search of casts for the name's words)."""
    ctx = Context(users={"v": 2, "dwr": 3}, now=NOW, display_names={"varun srinivasan": "v"})
    p = plan(question, ctx)
    assert p.kind == "analytic" and p.query is not None, p.note
    assert p.query.describe() == "display_name, by user, user = v"


def test_who_a_username_is_is_no_display_name_lookup():
    ctx = Context(users={"v": 2, "dwr": 3}, now=NOW, display_names={"varun srinivasan": "v"})
    assert plan("who is dwr", ctx).query is None


def test_display_names_are_those_one_user_has_of_two_words_or_more():
    import duckdb

    from ozi_assets.questions.engine import display_names

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES "
        "('v', 'Varun Srinivasan'), ('dwr', 'Dan'), ('a', 'Same Name'), ('b', 'same name'), "
        "(NULL, 'No Username')) AS t(username, display_name)"
    )
    assert display_names(con) == {"varun srinivasan": "v"}


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("How many new threads were started (casts with no parent)?", "top_level_casts, not reply"),
        ("What's the number of casts that answer another cast?", "replies"),
        ("What is the total number of recasts across all hours?", "recasts"),
        ("Number of casts that reference the user dwr with an @", "mentions, user = dwr"),
        (
            "Top three people by original posts, replies excluded",
            "casts, by user, top 3, top_level, not reply",
        ),
        ("How big is @dwr's audience, in followers?", "followers, user = dwr"),
        ("how many people cast only once", "casts, count of users, with casts = 1"),
        (
            "how many users have exactly one cast, reply or not",
            "casts, count of users, with casts = 1",
        ),
        (
            "What post got the most interaction (replies, recasts and likes together)?",
            "engagement, by cast, top 10",
        ),
    ],
)
def test_more_words_for_what_the_layer_has(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("what time of night were people recasting the most?", "recasts, by hour, top 10"),
        ("how was dwr's posting spread over the hours?", "casts, by hour, user = dwr"),
    ],
)
def test_hours_named_by_the_time_of_day_or_a_spread(question, reading):
    assert _query(question).describe() == reading


def test_an_exact_count_compiles_to_equality():
    sql = compile_sql(Query("casts", "user", having=("=", 1), order="desc"))
    assert "HAVING COUNT(*) = 1" in sql
    guard(sql, PUBLIC_TABLES)


@pytest.mark.parametrize(
    ("question", "search"),
    [
        ("Which accounts posted the most welcome messages to newcomers?", "welcome to newcomers"),
        ("Rank accounts by the number of welcome messages they posted.", "welcome"),
        ("Top posters on the Purple DAO topic", "purple dao"),
        ("Which users posted the most good-morning casts?", "good morning"),
        # tersely, the topic between the ranking and the people
        ("top music poster", "music"),
        ("top wallet talker", "wallet"),
        # an item of a listed topic is the topic's own, though it is a word for casting
        (
            "which users discussed painting, writing or drawing most",
            "painting or writing or drawing",
        ),
        ("who talked the most about sharing and posting", "sharing and posting"),
        ("top posters on farcaster or lens", "farcaster or lens"),
        # a list item that names nothing goes with its conjunction
        ("who posted most about nfts and stuff", "nfts"),
        # "like" before a short list after a noun gives examples, with or without a comma
        ("who posts most about sports like rugby or cricket", "sports or rugby or cricket"),
        ("who talked most about games, like chess and go", "games or chess and go"),
    ],
)
def test_a_topic_ranking_searches_the_topic_not_how_it_was_cast(question, search):
    got = plan(question, CTX_SPAN)
    assert (got.kind, got.search) == ("hybrid", search), got.note


def test_like_before_a_list_after_people_is_the_reaction():
    # "accounts like posts or replies": what they like, not examples of accounts
    got = plan("which accounts like posts or replies the most", CTX_SPAN)
    assert got.kind == "unanswered" and "likes" in (got.note or ""), got.note


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # self-replies left out are "others", not "no replies"
        (
            "How many replies did dwr get from other people, not counting his replies to himself?",
            "replies_received, user = dwr, others",
        ),
        (
            "Count posts published in the hour starting at 03:00 UTC",
            "casts, in the hour from 2023-03-04 03:00 UTC",
        ),
        ("Number of posts tagged #ethdenver", "casts, hashtag = ethdenver"),
        ("In how many casts does the word 'ChatGPT' appear?", "casts, term = chatgpt"),
        ("distinct people who replied to dwr", "repliers_received, user = dwr"),
        # people who cast, counted by a profile figure: authors only
        (
            "how many of the people who cast something have more than a thousand followers?",
            "followers, count of users, with followers > 1000, author",
        ),
    ],
)
def test_readings_that_gave_wrong_numbers(question, reading):
    assert _query(question).describe() == reading


def test_the_author_filter_keeps_profiles_that_cast():
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE casts AS SELECT * FROM (VALUES (1), (1), (2)) AS v(fid)")
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'a', 5000), (2, 'b', 10), "
        "(3, 'c', 9000)) AS v(fid, username, follower_count)"
    )
    q = Query("followers", None, (Condition("author"),), having=(">", 1000), count_over="user")
    assert con.execute(compile_sql(q)).fetchone() == (1,)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # people ranked by what they directed at one user
        ("who replied to dwr the most", "replies, by user, top 10, to_user = dwr"),
        (
            "Which person left the most comments on dwr's posts?",
            "replies, by user, top 10, to_user = dwr",
        ),
        ("who recast dwr's casts the most", "recasts, by user, top 10, to_user = dwr"),
        # any hashtag, by the word or written as one
        ("how many casts use a hashtag", "casts, has_hashtag"),
        ("How many posts had at least one #hashtag in them?", "casts, has_hashtag"),
        ("How many casts use the #ETHDenver hashtag?", "casts, hashtag = ethdenver"),
        ("how many people posted more than once?", "casts, count of users, with casts > 1"),
    ],
)
def test_actions_directed_at_a_user_and_any_hashtag(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # dwr recast them: ranking those who recast dwr would answer another question
        ("whose casts did dwr recast", "recasts, by to_user, user = dwr"),
        (
            "list the distinct authors whose casts were recast by the user dwr",
            "recasts, by to_user, user = dwr",
        ),
        ("whose posts did briang like", "likes, by to_user, user = briang"),
        ("who did dwr reply to the most", "replies, by to_user, top 10, user = dwr"),
        ("which users did dwr reply to", "replies, by to_user, user = dwr"),
        # the other way round: dwr receives
        ("who replied to dwr the most", "replies, by user, top 10, to_user = dwr"),
    ],
)
def test_whose_casts_a_user_recast_is_not_who_recast_the_user(question, reading):
    assert _query(question).describe() == reading


def test_the_users_acted_on_group_by_the_target_fid():
    sql = compile_sql(Query("recasts", "to_user", (Condition("user", "dwr"),)))
    assert "LEFT JOIN users AS v ON v.fid = t.target_fid" in sql
    guard(sql, PUBLIC_TABLES)
    with pytest.raises(LayerError):  # a reaction received is already about its target
        compile_sql(Query("recasts_received", "to_user"))
    # a ranking of one user's users the layer cannot say is still refused
    assert plan("which users did dwr follow the most", CTX_SPAN).kind == "unanswered"


def test_the_to_user_and_has_hashtag_filters_on_rows():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(fid, username)"
    )
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('x', 2, 'b', 1, true, 'reply #tag'), ('y', 2, 'b', 1, true, 'item #5'), "
        "('z', 1, 'a', 2, true, 'back at you')) "
        "AS v(hash, fid, username, parent_fid, is_reply, text)"
    )
    sql = compile_sql(Query("replies", "user", (Condition("to_user", "a"),), order="desc"))
    assert con.execute(sql).fetchall() == [("b", 2)]
    assert con.execute(
        compile_sql(Query("casts", None, (Condition("has_hashtag"),)))
    ).fetchone() == (1,)


@pytest.mark.parametrize(
    ("question", "reading", "base"),
    [
        ("% of casts that are replies", "replies, as a percentage of casts", ()),
        (
            "What percentage of the casts authored by dwr are replies?",
            "replies, as a percentage of casts, user = dwr",
            (),
        ),
        (
            "what share of top-level casts got replies",
            "casts, as a percentage of casts where top_level, top_level, replied",
            ("top_level",),
        ),
        ("percentage of casts with a link", "casts, as a percentage of all casts, has_link", ()),
        # a user's share of all casts: the user sets the part apart, the whole is every cast
        (
            "what percent of the posts did dwr write",
            "casts, as a percentage of all casts, user = dwr",
            (),
        ),
        (
            "dwr's share of all casts in percent",
            "casts, as a percentage of all casts, user = dwr",
            (),
        ),
    ],
)
def test_a_percentage_is_a_share_of_its_whole(question, reading, base):
    query = _query(question)
    assert (query.describe(), query.base) == (reading, base)


def test_a_share_keeps_whose_casts_and_the_named_whole_in_its_denominator():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS v(fid, username)"
    )
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('p', 1, 'a', NULL, false), ('q', 1, 'a', 'p', true), ('r', 1, 'a', 'p', true), "
        "('s', 2, 'b', NULL, false)) AS v(hash, fid, username, parent_hash, is_reply)"
    )
    everyone = Query("replies", share=True)
    assert con.execute(compile_sql(everyone)).fetchone() == (50.0,)
    of_a = Query("replies", conditions=(Condition("user", "a"),), share=True)
    assert con.execute(compile_sql(of_a)).fetchone() == (66.67,)
    answered = Query(
        "casts",
        conditions=(Condition("top_level"), Condition("replied")),
        share=True,
        base=("top_level",),
    )
    assert con.execute(compile_sql(answered)).fetchone() == (50.0,)
    guard(compile_sql(answered), PUBLIC_TABLES)
    # a's share of all casts: 3 of 4 (a whole of a's own casts would be 100% whatever the data)
    by_a = Query("casts", conditions=(Condition("user", "a"),), share=True)
    assert con.execute(compile_sql(by_a)).fetchone() == (75.0,)
    with pytest.raises(LayerError, match="always 100%"):
        compile_sql(Query("casts", share=True))
    with pytest.raises(LayerError):
        compile_sql(Query("replies", "hour", share=True))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("Total posts published by the account dwr, replies included?", "casts, user = dwr"),
        ("Of the posts after 4am UTC, which one got reshared the most?", None),
        ("List the three profiles that follow the most accounts, in descending order", None),
    ],
)
def test_a_user_named_after_its_noun_and_which_one_of_the_casts(question, reading):
    query = _query(question)
    if reading is not None:
        assert query.describe() == reading
    elif "which one" in question:
        assert query.group_by == "cast"
    else:
        assert (query.group_by, query.order, query.limit) == ("user", "desc", 3)


def test_a_count_the_layer_cannot_compose_is_refused_not_searched():
    for question in (
        "which authors mention dwr the most",
        "replies per original post on average",
    ):
        assert plan(question, CTX_SPAN).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the people replying are counted; the users ranked receive the replies
        (
            "top 3 users by number of different people replying to them",
            "repliers_received, by user, top 3",
        ),
        (
            "whose posts got comments from the most different people?",
            "repliers_received, by user, top 10",
        ),
        (
            "which users got replies from the most distinct accounts",
            "repliers_received, by user, top 10",
        ),
        (
            "rank users by the number of distinct other accounts that replied to their casts",
            "repliers_received, by user, top 10, others",
        ),
        (
            "how many unique people responded to casts written by dwr",
            "repliers_received, user = dwr",
        ),
        (
            "how many different folks commented on dwr's posts? not the number of replies",
            "repliers_received, user = dwr",
        ),
        (
            "number of people who replied to briang, not the count of replies",
            "repliers_received, user = briang",
        ),
        # "got replies" without "from" still says which casts drew some
        ("whose posts got replies", "casts, by user, replied"),
    ],
)
def test_distinct_repliers_are_counted_for_the_user_replied_to(question, reading):
    assert _query(question).describe() == reading


def test_the_users_one_user_replied_to_are_counted_not_as_one():
    # the distinct authors of dwr's replies would be 1: the users dwr replied to are asked
    for question in (
        "how many people did dwr reply to",
        "how many different people did dwr reply to?",
    ):
        assert _query(question).describe() == "reply_reach, user = dwr"


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        ("casts between half past two and half past three", (2, 30), (3, 30)),
        ("posts from quarter past three to half past three (utc)", (3, 15), (3, 30)),
        ("casts between a quarter to three and three o'clock", (2, 45), (3, 0)),
        ("casts between ten past one and 20 minutes to two", (1, 10), (1, 40)),
        ("how many casts from two to three am", (2, 0), (3, 0)),
        ("casts between one and two utc", (1, 0), (2, 0)),
        # a length from a clock time
        ("reshares in the first half hour after 4am utc", (4, 0), (4, 30)),
        ("recasts in the 20 minutes after 2:10am", (2, 10), (2, 30)),
        ("casts in the hour following two am", (2, 0), (3, 0)),
        ("likes in the first 15 minutes from 5am", (5, 0), (5, 15)),
        # the length written beside a range says nothing more
        ("casts timestamped within the fifteen-minute window 03:15-03:30 utc", (3, 15), (3, 30)),
        ("casts in the quarter hour from quarter past three to half past three", (3, 15), (3, 30)),
        # digits and "to" stay a range of hours
        ("which account posted the most from 4 to 5 am utc", (4, 0), (5, 0)),
    ],
)
def test_clock_times_in_words(question, start, end):
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.time_range is not None, p.note
    day = datetime(2023, 3, 4, tzinfo=UTC)
    assert (p.time_range.start, p.time_range.end) == (
        day.replace(hour=start[0], minute=start[1]),
        day.replace(hour=end[0], minute=end[1]),
    )


@pytest.mark.parametrize(
    "question",
    [
        # a moment is no range, and its digits are not the numbers 7 and 30
        "how many casts were there at half past seven",
        "how many casts at 4:15",
        # numbers that are neither a threshold nor how many to list
        "how many users posted between two and five casts",
        "how many replies did dwr get on his 2 casts",
    ],
)
def test_times_and_numbers_the_query_would_drop_are_refused(question):
    assert plan(question, CTX_SPAN).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("median casts per author", "casts, median per user"),
        ("whats the median number of posts per person?", "casts, median per user"),
        (
            "Compute the median of the per-author cast counts (replies included)",
            "casts, median per user",
        ),
        (
            "what is the typical number of replies per thread, as a median",
            "replies, median per thread",
        ),
        ("median recasts per hour between 01:00 and 03:00", None),
        # a profile is one user: its average needs no "per"
        ("avg follower count of authors", "followers, average per user, author"),
        ("median follower count of people who posted", "followers, median per user, author"),
    ],
)
def test_medians_and_averages_over_users(question, reading):
    query = _query(question)
    if reading is not None:
        assert query.describe() == reading
    else:
        assert (query.metric, query.average_over, query.median) == ("recasts", "hour", True)


def test_a_median_compiles_over_the_groups():
    sql = compile_sql(Query("casts", average_over="user", median=True))
    assert sql.startswith("SELECT MEDIAN(casts) AS median_casts_per_user FROM (SELECT")
    guard(sql, PUBLIC_TABLES)


def test_a_median_of_nothing_in_particular_is_refused():
    for question in ("median casts", "what's the median cast"):
        assert plan(question, CTX_SPAN).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # both: the users of one metric with a row of the other
        (
            "number of users who both posted and recasted",
            "casts, count of users, users with recasts",
        ),
        (
            "how many people wrote at least one cast and also boosted somebody's cast?",
            "casts, count of users, users with recasts",
        ),
        (
            "count the accounts that appear both as cast authors and as recasters",
            "casts, count of users, users with recasts",
        ),
        (
            "users who both liked and recast",
            "likes, how many and which, by user, users with recasts",
        ),
        # casting set against replying is starting threads: every replier has cast
        (
            "number of accounts that both posted and answered someone",
            "casts, count of users, users with replies, top_level",
        ),
        (
            "users who both commented and posted",
            "casts, how many and which, by user, users with replies, top_level",
        ),
        # only one kind of cast: never the other
        (
            "how many people only ever commented and never started their own thread?",
            "replies, count of users, users without top_level_casts",
        ),
        (
            "count the distinct authors all of whose casts are replies",
            "replies, count of users, users without top_level_casts",
        ),
        (
            "how many users posted nothing but top-level casts, i.e. none of them is a reply",
            "top_level_casts, count of users, users without replies",
        ),
        (
            "authors who only replied",
            "replies, how many and which, by user, users without top_level_casts",
        ),
        # never
        (
            "how many users posted but never recast anything",
            "casts, count of users, users without recasts",
        ),
        ("how many people never posted", "profiles, count of users, users without casts"),
        ("how many casts never got a reply", "casts, not replied"),
    ],
)
def test_users_told_apart_by_what_else_they_did(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    "question",
    [
        "how many users never replied to dwr",  # whom they replied to is not kept
        "how many users posted only images",  # every cast of theirs: not composed
        "how many users never posted a link",  # not the authors of casts without one
        "how many users both posted and followed",  # a profile figure is no action
        "how many casts did dwr never",  # never of nothing
    ],
)
def test_user_sets_the_layer_cannot_compose_are_refused(question):
    assert plan(question, CTX_SPAN).kind == "unanswered"


def test_users_with_another_metric_compile_to_a_subquery():
    sql = compile_sql(Query("casts", count_over="user", users_with=(("replies", True),)))
    assert "NOT t.username IN (SELECT username FROM (SELECT" in sql
    guard(sql, PUBLIC_TABLES)
    with pytest.raises(LayerError):
        compile_sql(Query("casts", "hour", users_with=(("replies", True),)))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("who did the last recast", "last recasts at, by user, top 10"),
        (
            "Who was the most recent person to reshare something?",
            "last recasts at, by user, top 10",
        ),
        ("Identify the user who performed the latest recast", "last recasts at, by user, top 10"),
        ("who was the first person to like a cast", "first likes at, by user, bottom 10"),
        ("when was the last like", "last likes at"),
        ("when did dwr get his first like", "first likes_received at, user = dwr"),
        # casts keep their own moment metrics
        ("when was the first reply", "first_cast_at, reply"),
        ("who posted the last cast", "last_cast_at, by user, top 10"),
        # "when did X start": the first time (had been a count of top-level casts, or refused)
        ("when did dwr start posting", "first_cast_at, user = dwr"),
        ("when did recasting begin", "first recasts at"),
        ("when did people start replying to dwr", "first replies_received at, user = dwr"),
    ],
)
def test_the_first_or_last_row_of_any_metric(question, reading):
    assert _query(question).describe() == reading


def test_a_moment_of_two_metrics_or_of_a_profile_is_refused():
    assert plan("when was the last like or recast dwr got", CTX_SPAN).kind == "unanswered"
    with pytest.raises(LayerError):
        compile_sql(Query("followers", "user", moment="last"))
    sql = compile_sql(Query("recasts", "user", order="desc", limit=1, moment="last"))
    assert 'MAX(t."timestamp") AS last_recasts_at' in sql
    guard(sql, PUBLIC_TABLES)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the authors who mention others: their casts that mention anyone
        ("top 3 users who tag others the most", "casts, by user, top 3, has_mention"),
        ("who mentions other people the most", "casts, by user, top 10, has_mention"),
        (
            "List the three authors with the highest number of casts mentioning another user",
            "casts, by user, top 3, has_mention",
        ),
        ("which posters mention users the most", "casts, by user, top 10, has_mention"),
        # the mentioned user is still the one mentions are about
        ("which user was mentioned the most", "mentions, by user, top 10"),
    ],
)
def test_the_authors_who_mention_others(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("number of threads dwr replied in", "threads, user = dwr, reply"),
        (
            "How many distinct threads contain at least one reply authored by dwr?",
            "threads, user = dwr, reply",
        ),
        ("in how many conversations did dwr reply", "threads, user = dwr, reply"),
        ("how many different threads did briang comment in", "threads, user = briang, reply"),
        ("how many threads had a reply from dwr", "threads, user = dwr, reply"),
        # threads counted alone are the casts that start them
        ("how many threads did dwr start", "top_level_casts, user = dwr"),
        # every thread the casts are in, also one whose root is older than the data
        ("how many threads are there", "threads"),
    ],
)
def test_the_threads_a_user_replied_in(question, reading):
    assert _query(question).describe() == reading


def test_threads_with_another_metric_are_refused():
    assert plan("how many threads did dwr like", CTX_SPAN).kind == "unanswered"


@pytest.mark.parametrize(
    "question",
    [
        "casts by device iphone vs android",
        "Break down the casts by the client application used to publish them.",
        "replies per language",
        "likes broken down by country",
    ],
)
def test_a_grouping_the_layer_lacks_is_refused_not_searched(question):
    p = plan(question, CTX_SPAN)
    assert p.kind == "unanswered", p


def test_a_plain_word_before_casts_is_a_topic_and_a_handle_is_a_user():
    for question in ("nft casts", "moon posts"):
        assert plan(question, CTX_SPAN).kind == "semantic"
    assert plan("satoshi_nakamoto casts", CTX_SPAN).kind == "unanswered"
    assert _query("dwr casts").describe() == "casts, user = dwr"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a thread named by the words of its first cast, and by its author
        (
            "how many people in the everyday wallet thread",
            "distinct_authors, in_thread = everyday wallet",
        ),
        (
            'Count the authors in the thread rooted at the cast "What\'s your everyday wallet?"',
            "distinct_authors, in_thread = what's your everyday wallet?",
        ),
        ("how many replies did the gm thread get", "replies, in_thread = gm"),
        # leaving one thread out
        (
            "Not counting his livestream thread, how many casts did briang post?",
            "casts, user = briang, not in_thread = livestream",
        ),
        (
            "Apart from briang's unlonely livestream thread, which thread is the longest?",
            "casts, by thread, top 10, not in_thread = @briang unlonely livestream",
        ),
        (
            "biggest conversation thread other than the livestream one?",
            "casts, by thread, top 10, not in_thread = livestream",
        ),
        # a cast named by its words and its author
        (
            "who recast dwr's BuilderDAO #113 cast",
            "recasts, by user, named_cast = @dwr builderdao #113",
        ),
        (
            "how many replies did briang's unlonely livestream post get",
            "replies_received, named_cast = @briang unlonely livestream",
        ),
        ("how many likes did dwr's farcaster invites post get", None),
    ],
)
def test_a_thread_or_cast_named_by_its_words(question, reading):
    if reading is None:
        assert plan(question, CTX_SPAN).kind == "unanswered"  # "farcaster" is no topic word
    else:
        assert _query(question).describe() == reading


def test_a_verb_after_an_unknown_name_is_no_named_cast():
    # "post" is the verb here: the unknown name is refused, not taken for a cast's words
    for name in ("nobody_here", "elonmusk"):
        p = plan(f"How many casts did {name} post?", CTX_SPAN)
        assert p.kind == "unanswered" and name in (p.note or "")


def test_named_casts_match_every_word_and_the_author():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('r1', 'briang', 'unlonely meetup livestream!', 'r1', 1), "
        "('r2', 'timdaub', 'watching the livestream', 'r2', 2), "
        "('c1', 'dwr', 'nice', 'r1', 3)) AS v(hash, username, text, thread_hash, fid)"
    )

    def run(value, negated=False):
        q = Query("casts", conditions=(Condition("in_thread", value, negated),))
        return con.execute(compile_sql(q)).fetchone()[0]

    assert run("livestream") == 3
    assert run("@briang unlonely livestream") == 2
    assert run("@briang livestream", negated=True) == 1
    assert run("unlonely nothing") == 0


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # "which N" without a noun ranks users; with "casts", casts
        (
            "Among the people who posted, which three have the most followers?",
            "followers, by user, top 3, author",
        ),
        ("which five posted the most", "casts, by user, top 5"),
        ("what 2 casts got the most likes", "likes_received, by cast, top 2"),
        ("which 3 hours had the most casts", "casts, by hour, top 3"),
        # the cast named past its author, and its hash asked for
        (
            "Identify the cast by dwr that received the most replies and return its hash",
            "replies_received, by cast, top 10, user = dwr",
        ),
        # words that say nothing more
        (
            "count the casts with a link to youtube, whether in the text or as an embed",
            "casts, site = youtube",
        ),
        ("among the full hours, which hour had the fewest casts", "casts, by hour, bottom 10"),
        ("distinct users per hour, replies also count", "distinct_authors, by hour"),
    ],
)
def test_small_words_of_rankings(question, reading):
    assert _query(question).describe() == reading


def test_a_day_is_a_date():
    sql = compile_sql(Query("casts", "day"))
    assert "CAST(TIMEZONE('UTC', t.\"timestamp\") AS DATE) AS day" in sql
    guard(sql, PUBLIC_TABLES)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "most recast cast posted 4-5am utc",
            "recasts, by cast, top 10, casts posted between 2023-03-04 04:00 and "
            "2023-03-04 05:00 UTC",
        ),
        (
            "Of the posts that went up between 4am and 5am UTC, which one got reshared the most?",
            "recasts_received, by cast, top 10, casts posted between 2023-03-04 04:00 and "
            "2023-03-04 05:00 UTC",
        ),
        (
            "Among casts published from 04:00 to 05:00 UTC, which received the most likes?",
            "likes_received, by cast, top 10, casts posted between 2023-03-04 04:00 and "
            "2023-03-04 05:00 UTC",
        ),
        # without a verb of posting the range is when the likes happened
        (
            "which cast got the most likes between 4 and 5am",
            "likes_received, by cast, top 10, between 2023-03-04 04:00 and 2023-03-04 05:00 UTC",
        ),
        ("among users, which posted the most", "casts, by user, top 10"),
    ],
)
def test_a_time_range_of_the_casts_ranked(question, reading):
    assert _query(question).describe() == reading


def test_the_time_of_the_casts_compiles_to_their_posting_time():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES ('a', TIMESTAMPTZ '2023-03-04 04:30:00+00'), "
        "('b', TIMESTAMPTZ '2023-03-04 03:30:00+00')) AS v(hash, \"timestamp\")"
    )
    con.execute(
        "CREATE TABLE reactions AS SELECT * FROM (VALUES ('a', 'recast', TIMESTAMPTZ "
        "'2023-03-04 05:30:00+00'), ('b', 'recast', TIMESTAMPTZ '2023-03-04 04:30:00+00')) "
        'AS v(target_hash, reaction_type, "timestamp")'
    )
    tr = parse_time_range("between 04:00 and 05:00 utc on march 4, 2023", NOW)
    by_cast = Query("recasts", "cast", time_range=tr, order="desc", limit=5, cast_time=True)
    assert con.execute(compile_sql(by_cast)).fetchall() == [("a", 1)]
    by_reaction = Query("recasts", "cast", time_range=tr, order="desc", limit=5)
    assert con.execute(compile_sql(by_reaction)).fetchall() == [("b", 1)]
    with pytest.raises(LayerError):
        compile_sql(Query("followers", "user", time_range=tr, cast_time=True))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "follower count of the most active poster",
            "followers, author, of the user first by casts",
        ),
        (
            "the guy who posted the most — how many followers has he got?",
            "followers, author, of the user first by casts",
        ),
        (
            "Report the follower count of the author with the highest number of casts",
            "followers, author, of the user first by casts",
        ),
        (
            "how many likes did the most active poster get",
            "likes_received, of the user first by casts",
        ),
        # the ranking is of the figure asked: no nesting
        ("which user has the most followers", "followers, by user, top 10"),
        ("who recast dwr's casts the most", "recasts, by user, top 10, to_user = dwr"),
    ],
)
def test_a_figure_of_the_user_a_ranking_puts_first(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the person described by a relative clause of any metric, the figure asked of them
        (
            "How many followers does the user whose casts got the most likes have?",
            "followers, of the user first by likes_received",
        ),
        (
            "what's the follower count of whoever replied the most?",
            "followers, of the user first by replies",
        ),
        (
            "whoever posted the most casts with a link, how many accounts do they follow?",
            "following, of the user first by casts (has_link)",
        ),
        # word by word, this ranked users by their followers
        (
            "how many casts did the user with the most followers post?",
            "casts, of the user first by followers",
        ),
        ("how many accts does dwr follow", "following, user = dwr"),
    ],
)
def test_a_figure_of_the_person_a_clause_ranks_first(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # people named by what they did, with how often, in a verb
        (
            "average following of people who replied at least twice",
            "following, average per user, of users with replies >= 2",
        ),
        (
            "how many casts came from users who liked more than 5 times",
            "casts, of users with likes > 5",
        ),
        # ... or at all ("who recast stuff"), or by an agent noun
        (
            "median followers of ppl who recast stuff",
            "followers, median per user, of users with recasts >= 1",
        ),
        (
            "mean followers among all likers",
            "followers, average per user, of users with likes >= 1",
        ),
        # the threshold is on the casts, not on the followers (read as followers >= 3 before)
        ("total followers of users with at least 3 casts", "followers, of users with casts >= 3"),
        # the people themselves stay a count of them
        ("how big was the crowd of repliers?", "distinct_authors, reply"),
    ],
)
def test_a_figure_of_the_people_who_did_something(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "how many accounts have from 200 to 800 followers",
            "followers, count of users, with followers >= 200, of users with followers <= 800",
        ),
        (
            "which users posted 4-6 casts",
            "casts, by user, with casts >= 4, top, of users with casts <= 6",
        ),
        (
            "number of users whose following count is between 50 and 70",
            "following, count of users, with following >= 50, of users with following <= 70",
        ),
        # read as hours, this counted the casts from 02:00 to 07:00
        (
            "how many users wrote between 2 and 7 replies",
            "replies, count of users, with replies >= 2, of users with replies <= 7",
        ),
        # no count after the range: hours still
        (
            "how many casts between 3 and 5",
            "casts, between 2023-03-04 03:00 and 2023-03-04 05:00 UTC",
        ),
    ],
)
def test_a_range_of_a_count_is_two_thresholds_not_hours(question, reading):
    assert _query(question).describe() == reading


def test_a_range_of_each_casts_count_is_refused_not_cut_to_one_end():
    got = plan("how many casts got between 3 and 5 likes", CTX_SPAN)
    assert got.query is None and "range from 3 to 5" in (got.note or "")


def test_a_typo_one_edit_from_words_of_one_meaning_is_read_as_that_meaning():
    # "recast" and "recasts" name one metric: the typo is read, the swapped letters taken
    assert lexicon.correction("recats", {}) == "recast"
    assert lexicon.correction("likse", {}) == "likes"
    # "links" and "likes" mean different things: still unknown, never guessed
    assert lexicon.correction("lieks", {}) is None
    # one edit from "followers" (a letter left out) and "follows" (a letter added): the
    # letter left out is read first
    assert lexicon.correction("followrs", {}) == "followers"
    # a misspelt word of no meaning is read as such and ignored, not named as unknown
    assert lexicon.correction("happend", {}) in lexicon.FILLER
    assert reading_of("how many reshares happend each day") == "recasts, by day"


@pytest.mark.parametrize(
    "question",
    [
        # many users tie for the fewest followers: none is the one
        "How many replies did the user with the fewest followers get?",
        # two profile figures have no time range between them
        "How many followers does the user with the most following have today?",
    ],
)
def test_a_person_a_clause_cannot_pick_is_not_answered(question):
    assert plan(question, CTX_SPAN).query is None


@pytest.mark.parametrize(
    ("question", "kind", "search"),
    [
        # an auxiliary between "who" and the verb asks what "who posted about" asks
        ("who's been posting about the hackathon?", "hybrid", "hackathon"),
        ("who was talking about music", "hybrid", "music"),
        ("who has written about rust lately", "hybrid", "rust"),
        ("who have been discussing climbing", "hybrid", "climbing"),
        # a form of "be" before a participle is a passive, said of others: no authors ranked
        ("who was mentioned in casts about the hackathon", "semantic", "the hackathon"),
    ],
)
def test_who_with_an_auxiliary_before_the_verb_ranks_authors(question, kind, search):
    got = plan(question, CTX)
    assert (got.kind, got.search) == (kind, search), got.note


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a person named by what they do, ranked by it: the figure is asked of the first
        (
            "how many followers does the top recaster have",
            "followers, of the user first by recasts",
        ),
        ("follower count of the biggest liker?", "followers, of the user first by likes"),
        (
            # ("prolific" is said of replying here, not of casting)
            "how many accounts does the most prolific replier follow",
            "following, author, of the user first by replies",
        ),
        # and the other way round: a deed counted for the user a profile figure puts first
        (
            "how many recasts did the account with the most followers make",
            "recasts, of the user first by followers",
        ),
        # a profile figure has no history: the time range is the ranking's
        (
            "how many followers does yesterday's top replier have",
            "followers, of the user first by replies yesterday (2023-03-03 UTC)",
        ),
    ],
)
def test_a_figure_of_the_user_another_metric_puts_first(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    "question",
    [
        # several people ranked, each with a figure: not one number
        "how many followers do the top 3 recasters have",
        # who is first is asked as well as their figure
        "who is the top recaster, and how many followers do they have",
        # which user leads on both: two rankings, not one nested in the other
        "which user has the most followers and the most recasts",
    ],
)
def test_two_metrics_not_nested_in_one_ranking_are_refused(question):
    p = plan(question, CTX)
    assert p.kind == "unanswered"
    assert "more than one metric" in (p.note or "")


def test_the_user_first_by_another_metric_compiles_to_their_figure():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'ann', 10, 3), (2, 'bob', 99, 4)) "
        "AS v(fid, username, follower_count, following_count)"
    )
    con.execute(
        "CREATE TABLE reactions AS SELECT * FROM (VALUES ('ann', 'recast'), ('ann', 'recast'), "
        "('bob', 'recast'), ('bob', 'like')) AS v(username, reaction_type)"
    )
    p = plan("how many followers does the top recaster have", CTX)
    assert p.sql is not None
    assert con.execute(p.sql).fetchall() == [(10,)]


def test_the_followers_of_several_top_posters_are_refused():
    p = plan("how many followers do the 3 most active posters have", CTX_SPAN)
    assert p.kind == "unanswered"
    with pytest.raises(LayerError):
        compile_sql(Query("followers", top_user=Query("casts", "user")))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "What is the average number of replies per top-level cast, i.e. all replies divided "
            "by the number of top-level casts?",
            "(replies) divided by (casts, top_level)",
        ),
        (
            "replies per original post on average (total replies / total top-level casts)",
            "(replies) divided by (casts, top_level)",
        ),
        ("ratio of likes to recasts", "(likes) divided by (recasts)"),
        (
            "what's the likes-to-recasts ratio for dwr",
            "(likes, user = dwr) divided by (recasts, user = dwr)",
        ),
        (
            "dwr's replies divided by his casts",
            "(replies, user = dwr) divided by (casts, user = dwr)",
        ),
        ("dwr's replies divided by all casts", "(replies, user = dwr) divided by (casts)"),
        # a user closing the second side is the whole ratio's (it had been the second's only)
        (
            "ratio of followers to following for dwr",
            "(followers, user = dwr) divided by (following, user = dwr)",
        ),
        (
            "the ratio of replies to casts by dwr",
            "(replies, user = dwr) divided by (casts, user = dwr)",
        ),
    ],
)
def test_a_ratio_of_two_figures(question, reading):
    assert _query(question).describe() == reading


def test_a_ratio_with_words_not_understood_is_refused():
    for question in ("likes divided by the number of bananas", "ratio of likes to recasts on lens"):
        assert plan(question, CTX_SPAN).kind == "unanswered"
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES (true), (true), (false)) AS v(is_reply)"
    )
    ratio = Query("replies", ratio_to=Query("top_level_casts"))
    assert con.execute(compile_sql(ratio)).fetchone() == (2.0,)
    # a divisor of 0 (no top-level cast at all) gives NULL, not a division error
    con.execute("DELETE FROM casts WHERE NOT is_reply")
    assert con.execute(compile_sql(ratio)).fetchone() == (None,)
    # rows that can never pass their filter ("replies that are not replies") are refused,
    # not counted as 0
    with pytest.raises(LayerError, match="never not reply"):
        compile_sql(Query("replies", conditions=(Condition("reply", negated=True),)))
    with pytest.raises(LayerError, match="never top_level"):
        compile_sql(Query("replies_received", conditions=(Condition("top_level"),)))
    with pytest.raises(LayerError):
        compile_sql(Query("replies", ratio_to=Query("casts", "hour")))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "Count the distinct casting authors whose follower_count exceeds 1,000.",
            "followers, count of users, with followers > 1000, author",
        ),
        ("which three ppl follow the most other accounts?", "following, by user, top 3"),
        # a slash between topic words is no ratio
        ("how many casts mention 'ai' / 'chatgpt'", None),
    ],
)
def test_authors_whose_and_whom_one_follows(question, reading):
    p = plan(question, CTX_SPAN)
    if reading is None:
        assert p.query is None or p.query.ratio_to is None
    else:
        assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a topic set before a dash and named after it by a pronoun
        ("web3 - how many casts say it", "casts, term = web3"),
        ("zora: how many posts mention it?", "casts, term = zora"),
        ("how many casts said 'gm'", "casts, term = gm"),
        # a known word or user before the dash is no topic
        ("dwr: how many casts did he post", "casts, user = dwr"),
    ],
)
def test_a_topic_named_by_a_pronoun(question, reading):
    assert _query(question).describe() == reading


def test_mean_as_a_verb_is_no_average():
    p = plan("what does 'self-sovereign' even mean? did anybody explain it?", CTX_SPAN)
    assert p.kind == "semantic"
    assert _query("what is the mean number of casts per user").describe() == (
        "casts, average per user"
    )


def test_a_quoted_term_or_hashtag_after_mention_is_text_not_an_at_mention():
    assert _query("how many casts mention 'gm'").describe() == "casts, term = gm"
    assert _query("how many casts mention #ethdenver").describe() == "casts, hashtag = ethdenver"
    assert _query("how many casts mention dwr").describe() == "mentions, user = dwr"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("when was the last reply to dwr", "last replies_received at, user = dwr"),
        ("when was dwr's last reply", "last_cast_at, user = dwr, reply"),
        (
            "how many users replied but never liked anything",
            "replies, count of users, users without likes",
        ),
        (
            "how many users posted both replies and top-level casts",
            "casts, count of users, users with replies, top_level",
        ),
    ],
)
def test_moments_and_user_sets_of_other_wordings(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    "question",
    [
        "who liked the most recent cast",  # the cast is the last one, not the like
        "how many people only liked casts",  # liked and did nothing else: not composed
    ],
)
def test_moments_and_user_sets_the_layer_cannot_say_are_refused(question):
    assert plan(question, CTX_SPAN).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the cast acted on, named by its words after the noun: the replies or likes made to it
        (
            "Who posted the earliest response to dwr's cast \"What's your everyday wallet?\"",
            "first replies at, by user, bottom 10, "
            "to_named_cast = @dwr what's your everyday wallet?",
        ),
        ("when was the first reply to the gm cast", "first replies at, to_named_cast = gm"),
        (
            "how many replies did dwr's wallet cast get",
            "replies_received, named_cast = @dwr wallet",
        ),
        ("who liked dwr's 'gm' cast", "likes, by user, named_cast = @dwr gm"),
    ],
)
def test_the_cast_acted_on_named_by_its_words(question, reading):
    assert _query(question).describe() == reading


def test_a_named_cast_acted_on_compiles_to_its_hash():
    q = Query("replies", "user", (Condition("to_named_cast", "@dwr wallet"),))
    sql = compile_sql(q)
    assert "t.parent_hash IN (SELECT r.hash FROM casts AS r" in sql
    guard(sql, PUBLIC_TABLES)
    with pytest.raises(LayerError):  # the first cast's time has no cast acted on
        compile_sql(Query("first_cast_at", conditions=(Condition("to_named_cast", "gm"),)))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # every handle in one cast
        ("casts mentioning both @dwr and @purple", "casts, term = @dwr, term = @purple"),
        (
            "Count the casts in which both the dwr account and the purple account are mentioned.",
            "casts, term = @dwr, term = @purple",
        ),
        (
            "how many casts tag dwr and briang at the same time",
            "casts, term = @dwr, term = @briang",
        ),
        # a handle with no profile is still one casts mention
        ("how many casts mention @purple", "mentions, user = purple"),
        # without "both", each user's own count
        ("how many casts mention dwr and briang", "mentions, by user, user = dwr,briang"),
    ],
)
def test_casts_mentioning_several_handles_at_once(question, reading):
    assert _query(question).describe() == reading


def test_a_handle_with_no_profile_is_no_author():
    # "@purple" is a handle casts mention; as an author it is no user in the data
    assert plan("how many casts did @purple post", CTX_SPAN).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("replies per recast", "(replies) divided by (recasts)"),
        ("casts per like", "(casts) divided by (likes)"),
        # per a dimension's word it is still a grouping
        ("casts per hour", "casts, by hour"),
        ("likes per cast on average", "likes, average per cast"),
    ],
)
def test_per_a_metric_is_a_ratio_and_per_a_dimension_a_grouping(question, reading):
    assert _query(question).describe() == reading


def test_rankings_and_ratios_that_name_no_one_figure_are_refused():
    for question in (
        "how many replies per recast did dwr get",  # whose each side is, is not said
        "followers of the least active poster",  # many tie at one cast
    ):
        assert plan(question, CTX_SPAN).kind == "unanswered"


def test_a_thread_the_question_does_not_name_is_refused():
    for question in ("how many casts in that thread", "how many replies were in the conversation"):
        p = plan(question, CTX_SPAN)
        assert p.kind == "unanswered" and "which" in (p.note or "")
    assert _query("how many people in the gm thread").describe() == (
        "distinct_authors, in_thread = gm"
    )


@pytest.mark.parametrize(
    "question",
    [
        "daily cast counts for march 3rd and march 4th",
        "how many casts from 2023-03-03 to 2023-03-04",
        "casts between 3 March and 4 March 2023",
    ],
)
def test_two_whole_dates_are_one_range(question):
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.time_range is not None, p.note
    assert (p.time_range.start, p.time_range.end) == (
        datetime(2023, 3, 3, tzinfo=UTC),
        datetime(2023, 3, 5, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        ("how many casts since march 3", datetime(2023, 3, 3, tzinfo=UTC), None),
        ("how many casts after 2023-03-03", datetime(2023, 3, 4, tzinfo=UTC), None),
        ("how many casts before 4 March 2023", None, datetime(2023, 3, 4, tzinfo=UTC)),
        # "from" one date is that day
        ("casts from March 4", datetime(2023, 3, 4, tzinfo=UTC), datetime(2023, 3, 5, tzinfo=UTC)),
    ],
)
def test_a_date_after_since_or_before_is_no_clock_time(question, start, end):
    p = plan(question, CTX_SPAN)
    assert p.time_range is not None, p.note
    if start is not None:
        assert p.time_range.start == start
    if end is not None:
        assert p.time_range.end == end
    else:
        assert p.time_range.end > NOW  # to the newest event, included


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # "only one", "just two": exactly that many
        ("users with only one cast", "casts, how many and which, by user, with casts = 1, top"),
        ("how many users only cast once", "casts, count of users, with casts = 1"),
        ("how many users have just two casts", "casts, count of users, with casts = 2"),
        # a word for authors after a ranking word ranks by casts
        (
            "how many replies did the top poster receive",
            "replies_received, of the user first by casts",
        ),
        ("how many likes did the top caster get", "likes_received, of the user first by casts"),
    ],
)
def test_exact_counts_and_the_top_poster(question, reading):
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    "question",
    [
        "how many users have one cast",  # "one" of a noun is a number the query must use
        "how many users both replied and were mentioned",  # which is received is not read
    ],
)
def test_numbers_and_received_user_sets_not_read_are_refused(question):
    assert plan(question, CTX_SPAN).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("Count the posts that talk about ChatGPT by name.", "casts, term = chatgpt"),
        ("how many casts wrote about purple dao by name", "casts, term = purple dao"),
        ("who talked about zora by name the most", "casts, by user, top 10, term = zora"),
    ],
)
def test_a_topic_named_by_name_is_a_term(question, reading):
    assert _query(question).describe() == reading
    # without "by name" a count of casts about a topic is not a term count: refused
    assert plan("how many casts talk about zora", CTX_SPAN).kind == "unanswered"


# -- typos, plain people ranked, thresholds after their number, how-often adjectives --------


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # one letter missing, swapped or extra in a catalogue word of five letters or more
        ("How many folowers does briang have?", "followers, user = briang"),
        ("Who got the most relpies?", "replies_received, by user, top 10"),
        ("top 3 recsaters", "recasts, by user, top 3"),
        # a quoted or marked term is what the casts say, never corrected
        ("How many casts from dwr mention mints?", "casts, user = dwr, term = mints"),
    ],
)
def test_a_typo_of_a_catalogue_word_is_read_as_that_word(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        # an English word one letter from a catalogue word is the word it is, not a typo:
        # "hiking" is no "liking", "biking" no "liking", "viking" no "liking"
        ("most active user on hiking", "hiking"),
        ("most active poster on biking", "biking"),
        ("who is most active on viking", "viking"),
        ("most prolific author on hiking", "hiking"),
    ],
)
def test_an_english_word_is_never_read_as_a_typo_of_a_catalogue_word(question, topic):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("hybrid", topic), p.note


def test_only_words_no_dictionary_knows_are_typos():
    # near misses: the misspellings stay corrected (no English word), and an English word
    # still reads as an inflection of a catalogue word ("reacts" as "react")
    assert reading_of("most active user on likng") == "likes, of the user first by casts"
    assert reading_of("How many folowers does briang have?") == "followers, user = briang"
    assert lexicon.correction("reacts", {}) == "react"
    assert lexicon.correction("hiking", {}) is None
    # an English word with no reading of its own is refused and named, not guessed at
    p = plan("How many relies did dwr get?", CTX)
    assert p.kind == "unanswered" and "'relies'" in (p.note or "")


def test_the_answer_says_which_typo_it_read_as_which_word():
    p = plan("How many folowers does briang have?", CTX)
    assert "'folowers' as 'followers'" in p.describe([{"followers": 548}])
    p = plan("How many followers does briang have?", CTX)
    assert "Read" not in p.describe([{"followers": 548}])


@pytest.mark.parametrize(
    ("question", "named"),
    [
        # "minutes" is no catalogue word: "minuts" is not read as "minus" (a grammar word)
        ("How many minuts did dwr post?", "'minuts'"),
        # two catalogue words one edit away (reactions, reactors): ambiguous, so refused
        ("How many reactons did dwr make?", "'reactons'"),
        # three letters: too short to tell a typo from another word
        ("How many lks did dwr get?", "'lks'"),
    ],
)
def test_a_word_that_is_no_clear_typo_is_refused_and_named(question, named):
    p = plan(question, CTX)
    assert p.kind == "unanswered" and named in (p.note or "")


def test_a_username_is_never_read_as_a_typo():
    ctx = Context(users={"poasts": 7, "dwr": 3}, now=NOW)
    assert plan("How many casts did poasts write?", ctx).query == Query(
        "casts", conditions=(Condition("user", "poasts"),)
    )
    # one edit from that username is no typo of it: usernames are not the vocabulary
    p = plan("How many casts did poastss write?", ctx)
    assert p.kind == "unanswered" and "'poastss'" in (p.note or "")


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the people a ranking names, without "which" or "per", are what it ranks
        ("Show me the accounts that reshared the most", "recasts, by user, top 10"),
        ("the people who replied to briang the most", "replies, by user, top 10, to_user = briang"),
        ("Identify the members who posted most frequently", "casts, by user, top 10"),
        # near miss: a plain "people" without a ranking is whoever acts, not a grouping
        ("How many replies did people post?", "replies"),
    ],
)
def test_plain_people_with_a_ranking_are_ranked(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many users wrote 4 or more casts", "casts, count of users, with casts >= 4"),
        ("which authors posted 3 or fewer replies", "replies, by user, with replies <= 3, top"),
        ("How many authors posted two or more times", "casts, count of users, with casts >= 2"),
    ],
)
def test_a_comparison_after_its_number_is_a_threshold(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many repeat posters", "casts, count of users, with casts >= 2"),
        ("list repeat casters", "casts, by user, with casts >= 2, top"),
        ("rank the one-time repliers", "replies, by user, with replies = 1, top 10"),
    ],
)
def test_how_often_adjectives_before_people_are_thresholds(question, reading):
    assert reading_of(question) == reading


def test_how_often_adjectives_before_a_word_naming_no_metric_are_refused():
    # "repeat users" could be users who came back: no metric says what is repeated
    p = plan("how many repeat users", CTX)
    assert p.kind == "unanswered" and "'repeat'" in (p.note or "")


# A username that is also a filler word ("rn": right now), and one that is a function word.
FILLER_NAMES = Context(users={"rn": 11, "dwr": 3, "briang": 548, "by": 12}, now=NOW)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("How many replies did rn write?", "replies, user = rn"),
        ("count rn's casts", "casts, user = rn"),
        ("Who replied more: rn or briang?", "replies, by user, top 10, user = rn,briang"),
        ("recasts by rn", "recasts, user = rn"),
        ("how many responses to rn were there", "replies_received, user = rn"),
        ("casts tagging rn", "mentions, user = rn"),
        ("rn reply count", "replies, user = rn"),
        # "up to rn" is "until now": no metric's "to"
        ("How many casts were posted up to rn?", "casts"),
        # where no user stands, the word is still filler: "posted rn" is "posted right now"
        ("How many casts were posted rn?", "casts"),
        # a function word is never a name, even when someone is called that
        ("casts by hour", "casts, by hour"),
    ],
)
def test_a_username_that_is_a_filler_word_is_read_where_a_user_stands(question, reading):
    p = plan(question, FILLER_NAMES)
    assert p.query is not None, p.note
    assert p.query.describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # joining a conversation is replying in it
        ("how many threads did briang chime in", "threads, user = briang, reply"),
        ("who chimed in the most", "replies, by user, top 10"),
        (
            "In how many distinct conversations did v jump in with a response?",
            "threads, user = v, reply",
        ),
    ],
)
def test_jumping_or_chiming_in_is_replying(question, reading):
    assert reading_of(question) == reading


def test_a_jump_that_is_no_reply_leaves_its_other_words_unknown():
    p = plan("how many casts jump in price", CTX)
    assert p.kind == "unanswered" and "'price'" in (p.note or "")


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("How many casts did m-j-r post?", "casts, user = m-j-r"),
        ("replies to @m-j-r", "replies_received, user = m-j-r"),
        # a hyphenated word that names nobody is still split into its words
        ("How many non-reply casts did dwr post?", "casts, user = dwr, not reply"),
    ],
)
def test_a_hyphenated_username_stays_one_word(question, reading):
    ctx = Context(users={"m-j-r": 8, "dwr": 3}, now=NOW)
    p = plan(question, ctx)
    assert p.query is not None, p.note
    assert p.query.describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a big following is an audience: followers
        ("which account has the largest following?", "followers, by user, top 10"),
        # near miss: following someone is still the accounts a user follows
        ("who is following the most accounts", "following, by user, top 10"),
        # casts are sent, and chatty or talkative people cast
        ("number of posts briang sent", "casts, user = briang"),
        ("top 3 most talkative accounts", "casts, by user, top 3"),
        # a specific metric still beats casts: likes sent are likes given
        ("how many likes did dwr send", "likes, user = dwr"),
    ],
)
def test_more_words_for_casting_and_for_an_audience(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the users counted, restated after a colon: still one count of users
        (
            "count the authors: people with at least 3 replies",
            "replies, count of users, with replies >= 3",
        ),
        (
            "count the repeat casters: accounts with 2 or more casts",
            "casts, count of users, with casts >= 2",
        ),
    ],
)
def test_counted_users_restated_after_a_colon_are_counted_once(question, reading):
    assert reading_of(question) == reading


def test_counted_users_grouped_per_user_are_still_refused():
    p = plan("how many users per user posted more than 3 casts", CTX)
    assert p.kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("reply leaders", "replies, by user, top 10"),
        ("the recast leaderboard", "recasts, by user, top 10"),
    ],
)
def test_leaders_of_a_metric_are_its_top_users(question, reading):
    assert reading_of(question) == reading


def test_leaders_of_something_are_no_ranking():
    # the leaders of a DAO lead it; no metric ranks them
    p = plan("who are the leaders of the builderdao", CTX)
    assert p.kind != "analytic" and p.rule != "ranked_topic_users"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a tally names what it counts, as "count" does
        ("tally the casters with at least 2 casts", "casts, count of users, with casts >= 2"),
        # near miss: a tally per group is still each group's figure
        ("tally up the recasts by user", "recasts, by user"),
    ],
)
def test_a_tally_counts_what_it_names(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("term", "hits"),
    [
        # three letters or fewer: a whole word, not a piece of another
        ("gm", ["gm frens"]),
        ("AI", ["AI is here", "the ai, again"]),
        # longer: inside words too, so forms and compounds are found
        ("invite", ["invites are out"]),
        ("denver", ["ETHDenver!"]),
        # every character is literal
        ("c++", ["c++ or rust"]),
    ],
)
def test_a_short_term_is_a_whole_word_and_a_longer_one_any_part(term, hits):
    import duckdb

    con = duckdb.connect()
    texts = [
        "paradigm shift",
        "gm frens",
        "she said hello",
        "AI is here",
        "the ai, again",
        "invites are out",
        "ETHDenver!",
        "c++ or rust",
    ]
    con.execute("CREATE TABLE casts (text VARCHAR)")
    con.executemany("INSERT INTO casts VALUES (?)", [[t] for t in texts])
    where = compile_sql(Query("casts", conditions=(Condition("term", term),))).split("WHERE")[1]
    found = con.execute(f"SELECT text FROM casts AS t WHERE {where}").fetchall()
    assert sorted(r[0] for r in found) == sorted(hits)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # courtesies around a question ask for nothing by themselves
        ("I'd like to know the total count of casts.", "casts"),
        ("I would like to know how many casts there are.", "casts"),
        ("i want to know how many recasts there were", "recasts"),
        ("I'm wondering how many replies there are.", "replies"),
        ("Would you mind telling me how many likes there were?", "likes"),
        ("Any idea how many casts contain a link?", "casts, has_link"),
        ("Please state the total number of casts recorded.", "casts"),
        ("Kindly provide the number of distinct posters in the dataset.", "distinct_authors"),
        ("Hello! How many casts are there?", "casts"),
        ("How many casts are there? Thanks.", "casts"),
        ("How many casts exist in this data set, roughly?", "casts"),
        ("How many posts are dated March 4th?", "casts, on 2023-03-04 (UTC)"),
        ("I'd like to see pcdkd's hourly cast counts.", "casts, by hour, user = pcdkd"),
        # near miss: the likes asked for after the courtesy are still likes
        ("I would like to know how many likes there were.", "likes"),
    ],
)
def test_courtesies_around_a_question_are_not_read(question, reading):
    ctx = Context(users={**CTX.users, "pcdkd": 15}, now=NOW)
    p = plan(question, ctx)
    assert p.query is not None, p.note
    assert p.query.describe() == reading


@pytest.mark.parametrize(
    ("question", "kind", "search"),
    [
        # a greeting is one only with its punctuation: "good morning casts" are gm casts
        ("good morning casts: who posted the most?", "hybrid", "good morning"),
        # thanks said in the question, not around it, is its topic
        ("Who said thanks the most?", "hybrid", "thanks"),
        # a word that may change the question is still refused
        ("How many casts are available?", "unanswered", None),
    ],
)
def test_courtesy_words_inside_a_question_keep_their_meaning(question, kind, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == (kind, search), p.note


HOUR_3 = "between 2023-03-04 03:00 and 2023-03-04 04:00 UTC"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a date and its time written together, ISO 8601 included
        (
            "How many casts were posted from 2023-03-04T03:00Z to 2023-03-04T04:00Z?",
            "casts, " + HOUR_3,
        ),
        ("casts between 2023-03-04T03:00:00Z and 2023-03-04T04:00:00Z", "casts, " + HOUR_3),
        ("How many casts between 2023-03-04 03:00 and 2023-03-04 04:00?", "casts, " + HOUR_3),
        (
            "casts from 2023-03-03 23:00 to 2023-03-04 01:00",
            "casts, between 2023-03-03 23:00 and 2023-03-04 01:00 UTC",
        ),
        ("casts after 2023-03-04 05:00 UTC", "casts, from 2023-03-04 05:00 UTC to that day's end"),
        ("How many casts were posted between 03:00:00 and 04:00:00 UTC?", "casts, " + HOUR_3),
        # the part of the day as am or pm
        ("How many casts were posted between 3 and 4 in the morning?", "casts, " + HOUR_3),
        # a date written before its time range, or apart from it
        (
            "How many casts were posted on March 4th, 2023 between 03:00 and 04:00 UTC?",
            "casts, " + HOUR_3,
        ),
        ("How many casts were posted 2023-03-04 between 03:00 and 04:00?", "casts, " + HOUR_3),
        ("On March 4, how many casts were posted between 3am and 4am?", "casts, " + HOUR_3),
        ("Number of casts between 03:00 and 04:00 UTC on the 4th", "casts, " + HOUR_3),
        (
            "How many casts did dwr post on the 4th between 3 and 4am?",
            "casts, user = dwr, " + HOUR_3,
        ),
        ("How many casts took place between 3 and 4 o'clock UTC?", "casts, " + HOUR_3),
        # whole days are still whole days
        (
            "how many casts from 2023-03-03 to 2023-03-04",
            "casts, from 2023-03-03 to 2023-03-04 (UTC, whole days)",
        ),
    ],
)
def test_dates_and_times_written_many_ways(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    "question",
    [
        # two questions, each with its own time: the date is not the clock's
        "How many casts were posted on March 3 and how many after 5am?",
        # a range of more than a day with times is not read as one of less
        "How many casts between 2023-03-03 01:00 and 2023-03-04 02:00?",
        # a clock time that is no range
        "How many casts were posted on March 4th at 3am?",
    ],
)
def test_dates_and_times_that_make_no_one_range_are_refused(question):
    assert plan(question, CTX).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a volume of casts is their number
        ("What was the cast volume per hour?", "casts, by hour"),
        ("What is the total volume of replies?", "replies"),
        # individual users are distinct ones; standalone casts start threads
        ("How many individual users cast?", "distinct_authors"),
        ("How many standalone casts were posted?", "casts, top_level"),
        # every link goes to another site
        ("How many casts include an external link?", "casts, has_link"),
        ("How many casts contain links to websites?", "casts, has_link"),
        # near miss: a site that is named is still that site
        ("How many casts link to youtube?", "casts, site = youtube"),
        # likes and recasts together are reactions; with replies, what a cast drew is engagement
        ("Which cast had the most likes and recasts?", "reactions, by cast, top 10"),
        ("How many reactions (likes and recasts) were there?", "reactions"),
        ("How many replies and reactions did dwr get?", "engagement, user = dwr"),
        # an inverted passive: dwr was recast, so dwr's casts received them
        ("How many times was dwr recast?", "recasts_received, user = dwr"),
        ("How many times did dwr recast?", "recasts, user = dwr"),
        # the accounts followed by a user are whom the user follows
        ("Number of accounts followed by dwr", "following, user = dwr"),
        ("How many people is dwr followed by?", "followers, user = dwr"),
        # how many times people did something counts the times, not the people
        ("How many times did people reply to dwr?", "replies_received, user = dwr"),
        ("How many people replied to dwr?", "repliers_received, user = dwr"),
        # whom a cast mentions is someone else
        ("how many posts tag other users?", "mentions"),
    ],
)
def test_other_words_for_common_metrics(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "word"),
    [
        # casts with replies, or casts that start threads? Not said
        ("How many parent casts are there?", "parent"),
        # replies and reactions a user made are two metrics, not what a cast drew
        ("How many replies and reactions did dwr make?", None),
    ],
)
def test_words_for_common_metrics_that_say_too_little_are_refused(question, word):
    p = plan(question, CTX)
    assert p.kind == "unanswered"
    if word:
        assert repr(word) in (p.note or "")


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("Between the hours of 3 and 4 UTC, how many casts were posted?", "casts, " + HOUR_3),
        ("How many casts were posted within the 03:00–04:00 UTC window?", "casts, " + HOUR_3),
        ("Count casts with timestamps between 03:00 and 04:00 UTC.", "casts, " + HOUR_3),
        ("How many separate accounts posted?", "distinct_authors"),
        ("How many root-level casts?", "casts, top_level"),
        ("What is the most engaged-with cast?", "engagement, by cast, top 10"),
        ("Which cast sparked the most replies?", "replies_received, by cast, top 10"),
        ("Who is the most prolific replier?", "replies, by user, top 10"),
        ("Casts per calendar day", "casts, by day"),
        ("How many casts on each date?", "casts, by day"),
        ("What time of day saw the most casts?", "casts, by hour, top 10"),
        # "when" with a ranking asks for the hour
        ("When were people most active?", "casts, by hour, top 10"),
        # near miss: "when" with the first or last is a moment
        ("When did dwr post his first cast?", "first_cast_at, user = dwr"),
        ("What is the date of the first cast?", "first_cast_at"),
        # people following a user are the user's followers; the user following, whom they follow
        ("How many people are following dwr?", "followers, user = dwr"),
        ("How many accounts is dwr following?", "following, user = dwr"),
    ],
)
def test_more_wordings_of_common_intents(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "search"),
    [
        ("What are people talking about regarding AI?", "ai"),
        ("Show casts related to rugby league.", "rugby league"),
    ],
)
def test_a_topic_after_a_second_introducer(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("semantic", search)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a user's casts, with the possessive written any way, got what they got
        ("Which user's casts were recast the most?", "recasts_received, by user, top 10"),
        ("Which users' casts were recast the most?", "recasts_received, by user, top 10"),
        # near miss: the users who recast made the recasts
        ("Which users recast the most?", "recasts, by user, top 10"),
        # non-native wordings: "who" after casts relates to them; "most cast" ranks casts
        ("give number of casts who are not reply", "casts, not reply"),
        ("what is hour with most cast?", "casts, by hour, top 10"),
        ("What number of casts belong to pcdkd?", "casts, user = pcdkd"),
        # near miss: "which cast" still names a cast
        ("which cast got most replies?", "replies_received, by cast, top 10"),
    ],
)
def test_possessives_and_non_native_wordings(question, reading):
    ctx = Context(users={**CTX.users, "pcdkd": 15}, now=NOW)
    p = plan(question, ctx)
    assert p.query is not None, p.note
    assert p.query.describe() == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # "cast" after people is what they did
        ("When did the largest number of unique users cast?", "distinct_authors, by hour, top 10"),
        ("Which user cast the most?", "casts, by user, top 10"),
        # near miss: "which cast" still names one
        ("Which cast got the most replies?", "replies_received, by cast, top 10"),
    ],
)
def test_cast_after_people_is_the_verb(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("Who are the three most recast users?", "recasts_received, by user, top 3"),
        # near miss: users who recast made the recasts
        ("Who recast the most users?", "recasts, by user, top 10"),
        ("Which day had more casts?", "casts, by day, top 10"),
        # near miss: "more than" is a threshold
        ("Which hours had more than 100 casts?", "casts, by hour, with casts > 100, top"),
        ("Who were the most frequent posters?", "casts, by user, top 10"),
        ("Most interacted-with cast?", "engagement, by cast, top 10"),
        (
            "How many casts in the final hour of the data?",
            "casts, in the last 1 hour (to 2023-03-04 06:00 UTC, the newest data)",
        ),
    ],
)
def test_rankings_and_ranges_in_other_words(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "kind", "search"),
    [
        ("Who wrote most on the subject of wallets?", "hybrid", "wallets"),
        ("Who were the top Denver posters?", "hybrid", "denver"),
        ("Summarize the conversation about Purple.", "semantic", "purple"),
        ("What's the chatter about rugby league?", "semantic", "rugby league"),
    ],
)
def test_topics_introduced_in_other_words(question, kind, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == (kind, search)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # formal requests and totals said other ways
        ("Return the hourly distribution of casts.", "casts, by hour"),
        ("Enumerate the casts per hour for dwr.", "casts, by hour, user = dwr"),
        ("How many replies are present in the dataset?", "replies"),
        ("How many replies can be found in the data?", "replies"),
        ("How many recasts are there, all told?", "recasts"),
        ("What's the sum of all recasts?", "recasts"),
        ("what's the grand total of casts?", "casts"),
        # one filter said twice is said once
        ("How many casts contain a link or URL?", "casts, has_link"),
    ],
)
def test_formal_requests_and_totals(question, reading):
    assert reading_of(question) == reading


def test_a_breakdown_by_nothing_is_refused_not_a_total():
    p = plan("What is the distribution of casts?", CTX)
    assert p.kind == "unanswered" and "breakdown" in (p.note or "")


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("pcdkd casts 3am to 4am", "casts, user = pcdkd, " + HOUR_3),
        ("How many casts were posted up to 1am?", "casts, before 2023-03-04 01:00 UTC"),
        ("How many casts were posted on Saturday, March 4?", "casts, on 2023-03-04 (UTC)"),
        ("How many casts were posted on Sat 4 Mar 2023?", "casts, on 2023-03-04 (UTC)"),
        ("How many casts were posted on 2023/03/04?", "casts, on 2023-03-04 (UTC)"),
        ("How many casts were posted on the fourth of March?", "casts, on 2023-03-04 (UTC)"),
        ("How many casts did pcdkd post March fourth?", "casts, user = pcdkd, on 2023-03-04 (UTC)"),
        (
            "How many casts from 11pm on March 3 to 1am on March 4?",
            "casts, between 2023-03-03 23:00 and 2023-03-04 01:00 UTC",
        ),
    ],
)
def test_more_ways_of_writing_a_date_or_a_range(question, reading):
    ctx = Context(users={**CTX.users, "pcdkd": 15}, now=NOW)
    p = plan(question, ctx)
    assert p.query is not None, p.note
    assert p.query.describe() == reading


@pytest.mark.parametrize(
    "question",
    [
        # a weekday that is not the date's: which of the two was meant is not said
        "How many casts were posted on Friday, March 4?",
        # day and month in either order: not read
        "How many casts were posted on 3/4?",
    ],
)
def test_dates_that_contradict_or_are_ambiguous_are_refused(question):
    assert plan(question, CTX).kind == "unanswered"


def test_two_numbers_with_to_are_no_clock_range():
    p = plan("Which users posted 2 to 3 casts?", CTX)
    assert p.time_range is None


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # addressed to a user is directed at them, not a typo of the link word "addresses"
        ("How many replies were addressed to dwr?", "replies_received, user = dwr"),
        ("How many replies did dwr's posts attract?", "replies_received, user = dwr"),
        (
            "How many replies did briang post to his own casts?",
            "replies, user = briang, not others",
        ),
        ("Number of followers in dwr's follower base", "followers, user = dwr"),
        # near miss: a web address is still a link
        ("How many casts have a web address?", "casts, has_link"),
    ],
)
def test_replies_to_a_user_and_followers_in_other_words(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "kind", "search"),
    [
        # where it was said is every cast's: not part of the topic
        ("What are people saying about Denver in this dataset?", "semantic", "denver"),
        ("Could you find casts about wallets for me?", "semantic", "wallets"),
        ("Casts about Purple DAO, please", "semantic", "purple dao"),
        # "what people said" without a ranking is what they said
        ("Please show me what people said about invites.", "semantic", "invites"),
        # near miss: with a ranking it ranks the people
        ("What people talked about Denver the most?", "hybrid", "denver"),
    ],
)
def test_a_topic_without_where_or_how_it_was_asked(question, kind, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == (kind, search)


@pytest.mark.parametrize(
    ("question", "problem"),
    [
        # every cast is one cast: a ranking of casts by casts says nothing
        ("Which cast performed best?", "ranking casts needs"),
        # a ranking of nothing would be one total
        ("What are the top casts?", "a ranking needs what it ranks"),
    ],
)
def test_rankings_that_rank_nothing_are_refused_not_a_total(question, problem):
    p = plan(question, CTX)
    assert p.kind == "unanswered" and problem in (p.note or "")


def test_a_ranking_by_what_casts_got_still_ranks_them():
    assert reading_of("Which cast got the most replies?") == "replies_received, by cast, top 10"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # plural casts ranked by what they got are the casts ranked
        ("What were the most popular casts?", "engagement, by cast, top 10"),
        ("What were dwr's most popular casts?", "engagement, by cast, top 10, user = dwr"),
        # two users compared with "which one" are users, not casts
        (
            "Between dwr and briang, which one authored the greater number of casts?",
            "casts, by user, top 10, user = dwr,briang",
        ),
    ],
)
def test_what_a_ranking_ranks_when_it_names_casts_or_users(question, reading):
    assert reading_of(question) == reading


def test_popular_casts_on_a_day_outside_the_data_are_refused():
    ctx = Context(users=CTX.users, now=NOW, first=datetime(2023, 3, 3, 23, 45, tzinfo=UTC))
    p = plan("What were the most popular casts on March 10, 2023?", ctx)
    assert p.kind == "unanswered" and "outside" in (p.note or "")


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("ok so who got the most replies??", "replies_received, by user, top 10"),
        ("lol how many recasts tho", "recasts"),
        ("how many casts r replies", "replies"),
        ("number of casts per hr", "casts, by hour"),
    ],
)
def test_chatty_wordings(question, reading):
    assert reading_of(question) == reading


def test_a_chatty_word_that_is_a_username_stays_the_user():
    p = plan("how many casts did r post?", Context(users={"r": 7}, now=NOW))
    assert p.query is not None and p.query.describe() == "casts, user = r"


@pytest.mark.parametrize(
    "question", ["which casts got the most replies", "top 3 posts by replies", "most replied posts"]
)
def test_casts_ranked_by_replies_are_ranked_by_the_replies_they_got(question):
    # by the replies' own hash, every reply was a cast with one reply
    assert _query(question).metric == "replies_received"


def test_the_replies_top_level_casts_got_are_replies_to_them():
    # not replies that are top-level (which are none): the replies that went to them
    assert reading_of("How many replies did the top level casts get?") == "replies, not to_reply"
    # ranked by the casts that got them
    assert reading_of("which root casts got the most replies") == (
        "replies_received, by cast, top 10, not to_reply"
    )
    # without a verb of receiving, replies that are top-level are none: refused
    p = plan("how many replies are top-level casts", CTX)
    assert p.kind == "unanswered" and "top_level" in (p.note or "")
    # near miss: top-level casts without their replies are still counted
    assert reading_of("How many top-level casts, not counting replies?") == (
        "casts, top_level, not reply"
    )


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # hedges and discourse markers qualify how a question is asked, not what it asks
        (
            "just wondering how big the crowd was, how many distinct users cast anything?",
            "distinct_authors",
        ),
        ("how many actual replies did dwr get", "replies_received, user = dwr"),
        ("so who replied most? like who was the most active replier", "replies, by user, top 10"),
        # after an ordinal or an article "like" is the reaction, not a hedge
        ("latest like who", "last likes at, by user, top 10"),
        ("the first like: who made it?", "first likes at, by user, bottom 10"),
        ("ok so like how many replies were there", "replies"),
        ("who are the top posters, like the top 3", "casts, by user, top 3"),
        # before a verb "like" restates what is asked: the reaction takes no verb after it
        ("how many posts mention someone? like tag an account", "mentions"),
        (
            "who reshares the most, like boosted other people's casts",
            "recasts, by user, top 10, others",
        ),
        # a noun after it can be what is liked
        ("who likes posts the most? like replies", "likes, by user, top 10, to_reply"),
        # a size asked is a number
        ("how big was the crowd of repliers?", "distinct_authors, reply"),
        ("how big is dwr's audience?", "followers, user = dwr"),
        # the span the data covers is what every figure is over
        ("how many replies were posted in the period covered by the sample?", "replies"),
        (
            "how many casts did dwr post in the period between 3 and 4am?",
            "casts, user = dwr, between 2023-03-04 03:00 and 2023-03-04 04:00 UTC",
        ),
        # a cast is new when posted: "new casts" are the casts, a range says when
        (
            "how many new casts were there after 5am?",
            "casts, from 2023-03-04 05:00 UTC to that day's end",
        ),
        # pressing a reaction's button is making it
        ("who hit the like button the most?", "likes, by user, top 10"),
        ("who's clicking the reply button most often", "replies, by user, top 10"),
        # near misses: "like" with a subject before it, or a noun after it, is the reaction
        ("which users like the most casts?", "likes, by user, top 10"),
        ("like count per user", "likes, by user"),
        ("which users recast and like the most casts?", "reactions, by user, top 10"),
        # "hour of the day" is the hour, not a day and an hour
        ("at which hour of the day did dwr post the most?", "casts, by hour, top 10, user = dwr"),
        ("hours of the day by number of replies", "replies, by hour, top 10"),
        # spread over the night, grouped by what the question names
        ("how were dwr's casts spread over the night, per hour", "casts, by hour, user = dwr"),
        # kicking off a thread is starting it
        (
            "On March 4, who kicked off the most threads?",
            "top_level_casts, by user, top 10, on 2023-03-04 (UTC)",
        ),
        ("how many threads did dwr kick off?", "top_level_casts, user = dwr"),
    ],
)
def test_hedges_filler_and_synonyms_of_chatty_questions(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a thread's size or length is its casts, root included; asked as a number, the
        # figure of the one thread the ranking puts first
        ("how many casts, root included, are in the biggest thread?", "casts, largest per thread"),
        ("how long is the longest conversation?", "casts, largest per thread"),
        ("how big is the biggest thread?", "casts, largest per thread"),
        ("how many posts did the most prolific poster make?", "casts, largest per user"),
        ("what is the length of the biggest thread", "casts, largest per thread"),
        (
            "How many casts are in the biggest thread, not counting the root?",
            "casts, largest per thread, not top_level",
        ),
        ("how many likes did the most liked cast get?", "likes_received, largest per cast"),
        ("how many casts did the busiest hour have?", "casts, largest per hour"),
        # near misses: asked which, or several, the groups are listed
        ("which thread is the longest?", "casts, by thread, top 10"),
        (
            "How many casts did the busiest hour have, and which hour was it?",
            "casts, by hour, top 10",
        ),
        ("what is the size of the top 3 threads?", "casts, by thread, top 3"),
        ("Which hour had the highest number of casts?", "casts, by hour, top 10"),
    ],
)
def test_the_size_of_the_first_group_of_a_ranking(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "word"),
    [
        # the unknown word changes the meaning: refused, not answered without it
        ("how many new users joined?", "new"),
        ("how long was dwr active?", "long"),
        ("What is the average reading time of a cast?", "reading"),
    ],
)
def test_words_that_change_the_meaning_are_still_refused(question, word):
    p = plan(question, CTX)
    assert p.kind == "unanswered" and repr(word) in (p.note or "")


@pytest.mark.parametrize(
    "question",
    [
        "how were casts distributed across the night?",
        # a span is filler as the span the data covers, but "per period" groups by nothing
        "casts per period",
        "how many casts did dwr post in each time window?",
    ],
)
def test_a_spread_or_grouping_by_a_span_is_refused_as_a_breakdown(question):
    p = plan(question, CTX)
    assert p.kind == "unanswered" and "breakdown" in (p.note or "")


def test_the_largest_group_figure_compiles_to_one_number():
    sql = plan("size of the largest thread", CTX).sql or ""
    assert sql.startswith("SELECT MAX(casts)") and "GROUP BY t.thread_hash" in sql


@pytest.mark.parametrize(
    ("question", "search", "fid"),
    [
        # a search keeps its author however tersely or formally it is named
        ("briang livestream", "livestream", 548),
        ("@dwr onboarding", "onboarding", 3),
        ("onboarding ideas @dwr", "onboarding ideas", 3),
        ("dwr's casts about invites", "invites", 3),
        ("What did the account briang write about music?", "music", 548),
        ("Summarize what the user briang posted regarding his setup.", "setup", 548),
        # the topic before its author and a verb of saying or announcing
        ("What product or UX updates did dwr announce in his casts?", "product or ux updates", 3),
        ("what new features has dwr shared?", "new features", 3),
        # near misses: no known user beside the topic, or people in general, is everyone's
        ("purple dao", "purple dao", None),
        ("What are people saying about ETHDenver?", "ethdenver", None),
    ],
)
def test_a_search_keeps_the_author_it_names(question, search, fid):
    p = plan(question, CTX)
    assert (p.kind, p.search, p.fid) == ("semantic", search, fid)


def test_an_author_not_in_the_data_is_still_refused():
    p = plan("What did the user nobody_here write about music?", CTX)
    assert p.kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "search"),
    [
        # whoever discusses it, the topic is what follows the verb
        (
            "Find casts in which users discuss eating, meals, or beverages.",
            "eating meals or beverages",
        ),
        ("Show posts where people talk about hiring", "hiring"),
        ("Retrieve messages in which someone discusses onboarding", "onboarding"),
    ],
)
def test_the_topic_of_casts_in_which_people_discuss_it(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("semantic", search)


@pytest.mark.parametrize(
    ("question", "search"),
    [
        # the request's frame is not the topic: the search text is what is asked for
        ("Could you find posts about onboarding?", "onboarding"),
        ("Can you please show me casts on hiring", "hiring"),
        ("I need you to find messages about pets", "pets"),
        # the casts as the subject of the verb
        ("Which casts discuss grants, bounties or treasuries?", "grants bounties or treasuries"),
        ("what posts mention rugby league", "rugby league"),
        # the topic before an unnamed poster's verb
        ("What bugs or feature requests have ppl posted?", "bugs or feature requests"),
        ("which memes did people share", "memes"),
        ("what recipes have folks written", "recipes"),
    ],
)
def test_a_search_without_the_frame_of_its_request(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("semantic", search)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a closing clause saying what is counted: the rows, not the people who made them
        ("how many people replied to dwr? counting replies", "replies_received, user = dwr"),
        ("how many people posted images, just counting posts", "casts, has_image"),
        # near misses: without it, or leaving rows out, the people are counted
        ("how many ppl shared a link?", "distinct_authors, has_link"),
        (
            "how many people posted images? not counting replies",
            "distinct_authors, has_image, not reply",
        ),
        ("how many users posted? counting people", "distinct_authors"),
    ],
)
def test_a_closing_clause_saying_what_is_counted(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # what the asker wants or does with the answer, and how it would be shown, ask for
        # nothing by themselves
        ("could you pull the replies per day? I want a chart", "replies, by day"),
        ("need the number of likes, just trying to figure out the total", "likes"),
        ("checking which hour had the most casts, for a graph", "casts, by hour, top 10"),
        # amplifying is resharing
        ("who got amplified the most", "recasts_received, by user, top 10"),
        ("how many casts did dwr amplify", "recasts, user = dwr"),
        ("the hour when amplification peaked", "recasts, by hour, top 10"),
        # "as opposed to" sets aside what follows it
        ("how many casts, as opposed to replies, has dwr posted?", "casts, user = dwr, not reply"),
        # a typo of a grouping word
        ("replies per hour brakdown", "replies, by hour"),
        # "at or after" a time includes it; colonless 24-hour ranges beside their zone
        (
            "how many replies on march 4, 2023 at or after 02:00 utc",
            "replies, from 2023-03-04 02:00 UTC to that day's end",
        ),
        ("casts 0300-0400 utc", "casts, between 2023-03-04 03:00 and 2023-03-04 04:00 UTC"),
        (
            "how many casts on or after march 4",
            "casts, from 2023-03-04 (UTC) to 2023-03-04 06:00 UTC, the newest data",
        ),
        # "own" after "to" or "on" is the user acting on themselves; elsewhere a contrast
        ("replies dwr posted on his own casts", "replies, user = dwr, not others"),
        ("how many of dwr's casts were replies vs his own posts", "replies, user = dwr"),
    ],
)
def test_wants_hedges_and_field_synonyms(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    "question",
    [
        # "figure" alone is a number, not filler; a range of years is no clock range
        "what figure did dwr post about casts per hour",
        "how many casts 2022-2023",
        # a typo of a grouping word still needs what it is by
        "how many casts brakdown",
        # wanting or needing is the asker's only where a clause starts
        "how many casts need a reply",
    ],
)
def test_near_misses_of_wants_and_synonyms_are_not_answered_as_another_question(question):
    p = plan(question, CTX)
    assert p.kind != "analytic", p.query and p.query.describe()


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a threshold over the groups a count names, not only over users
        (
            "how many threads have more than 20 replies?",
            "replies, count of threads, with replies > 20",
        ),
        (
            "how many conversations had at least 5 casts, counting the original post",
            "casts, count of threads, with casts >= 5",
        ),
        ("how many hours had over 50 casts", "casts, count of hours, with casts > 50"),
        (
            "how many posts got 3 or more recasts",
            "recasts_received, count of casts, with recasts_received >= 3",
        ),
        # mentions per cast are the distinct users it tags
        (
            "how many casts tag at least three people?",
            "mentioned_users, count of casts, with mentioned_users >= 3",
        ),
        (
            "posts with multiple mentions",
            "mentioned_users, count of casts, with mentioned_users >= 2",
        ),
        # near misses: users between the count and the threshold pass it; "at least one" is
        # every cast counted; a ranking of groups still lists them
        ("how many users posted more than 10 casts", "casts, count of users, with casts > 10"),
        ("How many posts had at least one #hashtag in them?", "casts, has_hashtag"),
        ("Which hours had more than 100 casts?", "casts, by hour, with casts > 100, top"),
        ("users with multiple casts", "casts, how many and which, by user, with casts >= 2, top"),
    ],
)
def test_a_threshold_over_any_counted_group(question, reading):
    assert reading_of(question) == reading


def test_a_threshold_on_the_mentions_of_each_cast_counts_the_accounts_it_lists():
    # the message's list of mentioned accounts, not the @names of its text (other platforms'
    # handles among them)
    sql = compile_sql(Query("mentioned_users", count_over="cast", having=(">=", 2.0)))
    assert "MAX(t.mentioned_fids) >= 2" in sql and "LIST_DISTINCT(c.mentions)" in sql


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a count closing a terse question is of the people it opens with
        ("users who only replied count", "replies, count of users, users without top_level_casts"),
        ("people with more than 3 casts count", "casts, count of users, with casts > 3"),
        # "first"/"last" to do something: who did it then
        (
            "who was the first to reply after 02:00 utc on march 4",
            "first_cast_at, by user, bottom 10, reply, from 2023-03-04 02:00 UTC to that day's end",
        ),
        ("who was last to recast", "last recasts at, by user, top 10"),
        # "shares" after its subject is the verb: posting
        ("who shares the most links", "casts, by user, top 10, has_link"),
        # a parenthesis saying why a user is left out asks for nothing
        (
            "leaving dwr out (he skews everything), top 3 posters",
            "casts, by user, top 3, not user = dwr",
        ),
        # a colonless 24-hour range beside its zone is a time range
        ("replies 0200-0300 utc", "replies, between 2023-03-04 02:00 and 2023-03-04 03:00 UTC"),
    ],
)
def test_counts_and_orders_asked_tersely(question, reading):
    assert reading_of(question) == reading


def test_near_misses_of_terse_counts_are_not_read_as_another_question():
    # "shares" as a noun are reshares: refused, not read as posts
    assert plan("how many shares did dwr get", CTX).kind == "unanswered"
    # a parenthesis that names a metric says what is left out: kept
    assert reading_of("leaving dwr out (and replies), who posted most").startswith("replies")
    # "first" with no metric's verb after "to" is no moment
    assert plan("who was first to arrive", CTX).kind != "analytic"


@pytest.mark.parametrize(
    ("question", "search"),
    [
        # a terse ranking of casts on a topic per person, and "what has X written about"
        ("most gardening casts by user", "gardening"),
        ("users most gardening posts", "gardening"),
    ],
)
def test_terse_rankings_of_a_topic_per_user(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.rule, p.search) == ("hybrid", "ranked_topic_users", search)


def test_what_a_user_has_written_about_a_topic_is_a_search_of_their_casts():
    p = plan("What has the user dwr written about gardening?", CTX)
    assert (p.kind, p.search, p.fid) == ("semantic", "gardening", 3)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a misspelt word of receiving is read as it
        ("which cast recieved the most likes", "likes_received, by cast, top 10"),
        ("casts grouped by day", "casts, by day"),
        ("posts linking youtube.com", "casts, site = youtube.com"),
        ("top 3 persons by casts", "casts, by user, top 3"),
    ],
)
def test_more_words_for_catalogue_entries_and_groupings(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # threads people cast in, not the casts that start them
        ("which 5 accounts cast in the most different threads", "threads, by user, top 5"),
        ("active conversations per day", "threads, by day"),
        ("for every hour, the number of distinct threads with activity", "threads, by hour"),
        ("top 2 people by number of threads they replied in", "threads, by user, top 2, reply"),
        ("rank users by # of conversations they took part in", "threads, by user, top 10"),
        # near misses: threads started are their first casts
        ("how many threads did dwr start", "top_level_casts, user = dwr"),
        ("new threads per hour", "top_level_casts, by hour"),
        ("how many threads were posted in each hour", "top_level_casts, by hour"),
    ],
)
def test_the_threads_people_cast_in(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # after a number a word for casts is what is counted, not a grouping
        (
            "how many different people wrote at least one cast with an image?",
            "distinct_authors, has_image",
        ),
        # "making" replies, "# of"
        (
            "how many accounts are making 3 recasts or more",
            "recasts, count of users, with recasts >= 3",
        ),
        ("top 5 users by # of recasts", "recasts, by user, top 5"),
        # a link going to a site, a cast linking a site
        ("how many casts have links pointing to github.com", "casts, site = github.com"),
        # whether casts drew replies, said in the passive or after the number
        ("posts with a picture that got replied to", "casts, has_image, replied"),
        ("casts that received one reply or more", "casts, replied"),
        # a thread named by its words, then its author
        (
            "how many replies are in the gardening thread of dwr",
            "replies, in_thread = @dwr gardening",
        ),
        ("replies dwr gardening thread", "replies, in_thread = @dwr gardening"),
        ("unique users dwr gardening thread", "distinct_authors, in_thread = @dwr gardening"),
        # what people did not do, said with a negation
        (
            "how many users did not reply even once",
            "profiles, count of users, users without replies",
        ),
        ("how many profiles without any likes", "profiles, count of users, users without likes"),
        # the people a figure is over, restricted with "only"
        ("mean followers, authors only", "followers, average per user, author"),
    ],
)
def test_composed_wordings_of_a_catalogue_user(question, reading):
    assert reading_of(question) == reading


def test_near_misses_of_composed_wordings_keep_their_reading():
    # leaving replies out of the casts ranked is no deed the users never did
    assert reading_of("which users posted most, excluding replies") == (
        "casts, by user, top 10, not reply"
    )
    # the casts dwr replied to are not the casts that got replies
    assert "replied" not in reading_of("how many casts got replied to by dwr").split(", ")
    # people who only replied still never started a thread
    assert reading_of("how many users only replied") == (
        "replies, count of users, users without top_level_casts"
    )


@pytest.mark.parametrize(
    "question",
    ["show me what dwr is saying about gardening", "what has dwr been saying about gardening"],
)
def test_what_a_user_is_saying_is_a_search_of_their_casts(question):
    p = plan(question, CTX)
    assert (p.kind, p.search, p.fid) == ("semantic", "gardening", 3)


@pytest.mark.parametrize(
    "question",
    [
        "list the verified accounts",
        "which profiles carry a verification badge",
        "what users are verified",
    ],
)
def test_a_property_the_profiles_lack_is_refused_for_users_not_named_too(question):
    got = plan(question, CTX_SPAN)
    assert got.kind == "unanswered" and "the data holds no" in (got.note or "")
    assert plan("how many users are verified?", CTX_SPAN).kind == "unanswered"


def test_what_casts_say_about_verification_is_still_a_search():
    assert plan("what are people saying about verification?", CTX_SPAN).kind == "semantic"
    assert plan("who talked the most about getting verified?", CTX_SPAN).kind == "hybrid"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many users have 2k+ followers?", "followers, count of users, with followers >= 2000"),
        (
            "how many profiles have more than two thousand followers",
            "followers, count of users, with followers > 2000",
        ),
        ("accounts <=10 followers count", "followers, count of users, with followers <= 10"),
        (
            "authors > 1.5k followers",
            "followers, how many and which, by user, with followers > 1500, top, author",
        ),
        ("top5 repliers", "replies, by user, top 5"),
        ("users w 2+ replies", "replies, how many and which, by user, with replies >= 2, top"),
    ],
)
def test_numbers_in_thousands_symbols_and_run_together_read_as_words(question, reading):
    assert reading_of(question) == reading


def test_a_symbol_between_two_metrics_is_no_threshold():
    # "following > followers" compares two figures of each user, not one with a number
    assert reading_of("authors following > followers count") == (
        "following, count of users, with following > followers, author"
    )


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many threads are there in total?", "threads"),
        ("number of distinct conversations", "threads"),
        ("convos count", "threads"),
        # a thread started, posted or new is its root cast
        ("how many new conversations were there", "top_level_casts"),
        ("how many threads did briang start", "top_level_casts, user = briang"),
        ("threads posted per hour", "top_level_casts, by hour"),
    ],
)
def test_threads_counted_are_every_thread_unless_started(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "in how many conversations did 3 or more distinct people take part?",
            "distinct_authors, count of threads, with distinct_authors >= 3",
        ),
        (
            "threads with more than 4 different authors count",
            "distinct_authors, count of threads, with distinct_authors > 4",
        ),
        (
            "how many hours had at least 10 unique posters",
            "distinct_authors, count of hours, with distinct_authors >= 10",
        ),
        # a threshold on the casts of each thread stays one
        ("how many threads have at least 6 posts", "casts, count of threads, with casts >= 6"),
    ],
)
def test_groups_counted_by_a_number_of_people_in_each(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("top posters? dont count replies", "casts, by user, top 10, not reply"),
        ("how many casts, not including replies", "casts, not reply"),
        ("hour with the most fresh casts", "casts, by hour, top 10"),
        ("dwr msgs per hour", "casts, by hour, user = dwr"),
    ],
)
def test_chat_spellings_read_as_their_words(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "For my weekly report, how many casts had an image?",
            "casts, has_image",
        ),
        ("when exactly was the first reply? i need the exact time", "first_cast_at, reply"),
        (
            "how many people started 2 or more threads of their own",
            "top_level_casts, count of users, with top_level_casts >= 2",
        ),
        (
            "how many users wrote a reply as well as a top-level cast",
            "casts, count of users, users with replies, top_level",
        ),
        ("dwr publishing per hour", "casts, by hour, user = dwr"),
        (
            "how many accounts recast without ever publishing anything",
            "recasts, count of users, users without casts",
        ),
    ],
)
def test_preambles_emphasis_and_gerunds_read_as_their_plain_words(question, reading):
    assert reading_of(question) == reading


def test_a_purpose_preamble_keeps_a_time_or_user_said_first():
    # only "for our …" / "for my …" is a purpose: "for dwr" is whom the question is about
    assert reading_of("for dwr, how many casts") == "casts, user = dwr"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "which account recast briang's posts the most?",
            "recasts, by user, top 10, to_user = briang",
        ),
        ("biggest replier of briang", "replies, by user, top 10, to_user = briang"),
        ("top 3 resharers of dwr", "recasts, by user, top 3, to_user = dwr"),
        # what the named user did stays theirs
        ("whose casts did briang recast the most", "recasts, by to_user, top 10, user = briang"),
    ],
)
def test_the_people_who_acted_most_on_one_users_casts(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many posts got reshared at least once", "casts, recast"),
        ("how many replies received at least one recast?", "replies, recast"),
        ("count the casts that were never recast", "casts, not recast"),
        ("top-level posts without reshares count", "casts, top_level, not recast"),
        # a ranking or a threshold above one is still what the casts received
        ("whose casts got recast the most", "recasts_received, by user, top 10"),
        (
            "how many casts got more than 3 recasts",
            "recasts_received, count of casts, with recasts_received > 3",
        ),
    ],
)
def test_casts_told_apart_by_whether_they_were_recast(question, reading):
    assert reading_of(question) == reading


def test_the_recast_filter_counts_each_recast_cast_once():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES ('a', false), ('b', true), ('c', false)) "
        "AS v(hash, is_reply)"
    )
    con.execute(
        "CREATE TABLE reactions AS SELECT * FROM (VALUES ('a', 'recast'), ('a', 'recast'), "
        "('b', 'recast'), ('c', 'like')) AS v(target_hash, reaction_type)"
    )
    recast = (Condition("recast"),)
    assert con.execute(compile_sql(Query("casts", conditions=recast))).fetchone() == (2,)
    top_level = Query("top_level_casts", conditions=recast)
    assert con.execute(compile_sql(top_level)).fetchone() == (1,)
    never = Query("casts", conditions=(Condition("recast", negated=True),))
    assert con.execute(compile_sql(never)).fetchone() == (1,)


def test_a_ranking_of_what_casts_got_in_other_words_is_no_recast_filter():
    assert reading_of("which user's posts were reshared the greatest number of times?") == (
        "recasts_received, by user, top 10"
    )


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many accounts follow no one?", "following, count of users, with following = 0"),
        (
            "count the users who do not follow any other users",
            "following, count of users, with following = 0",
        ),
        ("how many profiles have zero followers", "followers, count of users, with followers = 0"),
        # whom a named user follows is not a zero
        ("how many accounts does briang follow", "following, user = briang"),
    ],
)
def test_a_zero_of_a_profile_figure_said_in_words(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("likers with no replies count", "likes, count of users, users without replies"),
        (
            "how many repliers have no recasts?",
            "replies, count of users, users without recasts",
        ),
    ],
)
def test_people_named_by_what_they_do_told_apart_by_what_they_lack(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "search"),
    [
        ("anything about tipping creators on here?", "tipping creators"),
        ("what are people saying about their commutes", "commutes"),
        ("casts re the merge", "the merge"),
        ("what did people on this app say about their pets", "pets"),
    ],
)
def test_where_and_whose_a_topic_is_leave_its_search_text(question, search):
    got = plan(question, CTX)
    assert (got.kind, got.search) == ("semantic", search)


def test_a_topic_said_after_re_ranks_its_people():
    got = plan("who cast most re football", CTX)
    assert (got.kind, got.search) == ("hybrid", "football")


@pytest.mark.parametrize(
    ("question", "search"),
    [
        ("most active user on gardening", "gardening"),
        ("the most frequent posters on coffee", "coffee"),
    ],
)
def test_the_most_active_people_on_a_topic_rank_its_authors(question, search):
    got = plan(question, CTX)
    assert (got.kind, got.search) == ("hybrid", search)


def test_the_most_active_people_without_a_topic_rank_casts():
    assert reading_of("most active accounts") == "casts, by user, top 10"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "how many authors follow more people than they have followers",
            "following, count of users, with following > followers, author",
        ),
        (
            "count the accounts whose following count is greater than their follower count",
            "following, count of users, with following > followers",
        ),
        (
            "list the users with more followers than they follow",
            "followers, by user, with followers > following",
        ),
        # a threshold on one figure is still a threshold
        (
            "how many users follow more than 50 accounts",
            "following, count of users, with following > 50",
        ),
    ],
)
def test_one_profile_figure_above_another_for_each_user(question, reading):
    assert reading_of(question) == reading


def test_a_comparison_of_two_figures_with_words_it_lacks_is_refused():
    got = plan("how many wizards follow more people than they have followers", CTX)
    assert got.kind == "unanswered" and "wizards" in (got.note or "")


def test_users_above_another_figure_of_their_own():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'a', 10, 5), (2, 'b', 3, 7), "
        "(3, 'c', 4, 4)) AS v(fid, username, follower_count, following_count)"
    )
    query = Query("following", count_over="user", exceeds="followers")
    assert con.execute(compile_sql(query)).fetchone() == (1,)
    listed = Query("followers", "user", exceeds="following")
    assert con.execute(compile_sql(listed)).fetchall() == [("a", 10)]
    with pytest.raises(LayerError):
        compile_sql(Query("casts", "user", exceeds="followers"))


# -- self-replies, replies that got replies, repliers without threads, posting not replying --

# ann starts a1 and replies to it (a2); bob replies to a1 (b1) and to himself (b2); cat replies
# to ann's a2 (c1) and to bob's b1 (c2); dan starts d1 and d2 and replies to cat's c1 (d3).
THREADS = Context(users={"ann": 1, "bob": 2, "cat": 3, "dan": 4}, now=NOW)
THREAD_CASTS = [
    ("a1", 1, "ann", None, None),
    ("a2", 1, "ann", "a1", 1),
    ("b1", 2, "bob", "a1", 1),
    ("b2", 2, "bob", "b1", 2),
    ("c1", 3, "cat", "a2", 1),
    ("c2", 3, "cat", "b1", 2),
    ("d1", 4, "dan", None, None),
    ("d2", 4, "dan", None, None),
    ("d3", 4, "dan", "c1", 3),
]


@pytest.fixture(scope="module")
def threads():
    """A DuckDB with THREAD_CASTS as ``casts`` and their authors as ``users``."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts (hash VARCHAR, fid BIGINT, username VARCHAR, text VARCHAR, "
        '"timestamp" TIMESTAMPTZ, parent_hash VARCHAR, parent_fid BIGINT, thread_hash VARCHAR, '
        "parent_url VARCHAR, mentions BIGINT[], embeds VARCHAR[], is_reply BOOLEAN)"
    )
    for hash_, fid, name, parent, parent_fid in THREAD_CASTS:
        con.execute(
            "INSERT INTO casts VALUES (?, ?, ?, 'gm', TIMESTAMPTZ '2023-03-04 01:00:00+00', ?, ?,"
            " NULL, NULL, [], [], ?)",
            [hash_, fid, name, parent, parent_fid, parent is not None],
        )
    con.execute(
        "CREATE TABLE users AS SELECT DISTINCT fid, username FROM casts ORDER BY fid",
    )
    return con


def _answer(con, question: str) -> list[tuple]:
    p = plan(question, THREADS)
    assert p.kind == "analytic" and p.sql, p.note
    return con.execute(p.sql).fetchall()


SELF_REPLIERS = "SELECT count(DISTINCT fid) FROM casts WHERE is_reply AND parent_fid = fid"


@pytest.mark.parametrize(
    "question",
    [
        "how many users replied to their own casts",
        "how many people have replied to their own posts",
        "how many users replied to themselves",
        "count the accounts replying to themselves",
        "how many authors replied to their own cast",
        "how many people responded to their own messages",
    ],
)
def test_users_who_replied_to_their_own_casts_are_counted(threads, question):
    # "own" after the verb's "to" is the user acting on themselves, as in "replies to their
    # own casts": ann and bob (the misreading counted all four repliers)
    assert _answer(threads, question) == threads.execute(SELF_REPLIERS).fetchall() == [(2,)]


def test_repliers_to_themselves_near_misses(threads):
    # every replier, and the repliers to someone else (not ann: she only replied to
    # herself), are counted as they were asked
    assert _answer(threads, "how many users replied") == [(4,)]
    others = "SELECT count(DISTINCT fid) FROM casts WHERE is_reply AND parent_fid <> fid"
    assert _answer(threads, "how many users replied to others") == [(3,)]
    assert threads.execute(others).fetchall() == [(3,)]
    assert reading_of("how many users replied") == "distinct_authors, reply"
    assert reading_of("how many replies were people replying to their own casts?") == (
        "replies, not others"
    )
    # "own" elsewhere is a contrast, not the user acting on themselves
    assert reading_of("how many of dwr's casts were replies vs his own posts") == (
        "replies, user = dwr"
    )


REPLIED_REPLIES = (
    "SELECT count(*) FROM casts AS t WHERE is_reply "
    "AND EXISTS (SELECT 1 FROM casts AS r WHERE r.parent_hash = t.hash)"
)


@pytest.mark.parametrize(
    "question",
    [
        "how many replies got replies",
        "how many replies received a reply",
        "how many comments have at least one response",
        "replies that were replied to",
        "how many replies themselves got replies",
    ],
)
def test_replies_that_got_replies_are_counted(threads, question):
    # a reply is a cast that can be replied to: a2, b1 and c1 were (of six replies)
    assert _answer(threads, question) == threads.execute(REPLIED_REPLIES).fetchall() == [(3,)]


def test_replies_that_got_replies_near_misses(threads):
    assert _answer(threads, "how many replies") == [(6,)]
    assert _answer(threads, "how many replies got no replies") == [(3,)]
    assert reading_of("how many casts got replies") == "casts, replied"
    # replies a user got, and the replies casts got, are still counted as replies
    assert reading_of("how many replies did dwr get") == "replies_received, user = dwr"
    assert reading_of("who got the most replies") == "replies_received, by user, top 10"


REPLIERS_WITHOUT_THREADS = (
    "SELECT count(DISTINCT fid) FROM casts WHERE is_reply "
    "AND fid NOT IN (SELECT fid FROM casts WHERE NOT is_reply)"
)


@pytest.mark.parametrize(
    "question",
    [
        "how many repliers with no top-level casts",
        "how many repliers have no original posts",
        "how many commenters without any top-level casts",
        "how many users replied but never posted a top-level cast",
    ],
)
def test_repliers_with_no_top_level_cast_leave_out_the_people_with_one(threads, question):
    # "no top-level casts" said of people is what they lack, as "repliers with no casts":
    # bob and cat (the misreading filtered the replies, and counted all four)
    answer = threads.execute(REPLIERS_WITHOUT_THREADS).fetchall()
    assert _answer(threads, question) == answer == [(2,)]


def test_repliers_without_top_level_casts_near_misses(threads):
    assert _answer(threads, "how many repliers") == [(4,)]
    assert reading_of("which repliers have no top-level casts") == (
        "replies, by user, users without top_level_casts"
    )
    # said of replies, not of people, it still narrows the casts
    assert reading_of("how many replies with no top-level casts") == "replies, not top_level"
    assert reading_of("how many top-level casts with no replies") == (
        "casts, top_level, not replied"
    )


TOP_LEVEL_POSTERS = (
    "SELECT username, count(*) AS n FROM casts WHERE NOT is_reply "
    "GROUP BY username ORDER BY n DESC, username"
)


@pytest.mark.parametrize(
    "question",
    [
        "who posted the most without replying",
        "who cast the most without replying to anyone",
        "top 5 posters without ever replying",
        "who has the most casts without replying",
    ],
)
def test_posting_without_replying_ranks_top_level_casts(threads, question):
    # "without replying" leaves the replies out, as "without replies" does: dan, then ann
    # (the misreading ranked people by their replies: bob and cat first)
    answer = threads.execute(TOP_LEVEL_POSTERS).fetchall()
    assert _answer(threads, question) == answer == [("dan", 2), ("ann", 1)]


def test_posting_without_replying_near_misses(threads):
    assert _answer(threads, "who replied the most")[:2] == [("bob", 2), ("cat", 2)]
    assert _answer(threads, "who posted the most")[0] == ("dan", 3)
    # people who never replied, counted: the gerund after "without" is what they never did
    assert reading_of("how many users posted without replying") == (
        "casts, count of users, users without replies"
    )
    assert reading_of("who posted the most without replies") == (
        "casts, by user, top 10, not reply"
    )
    # what is left out is no topic of the casts: the word not understood is refused
    p = plan("who posted the most while not replying", CTX)
    assert p.kind == "unanswered" and "'while'" in (p.note or "")
    # and left out alone, nothing is named to rank
    assert plan("who is not replying the most", CTX).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "truth", "expected"),
    [
        ("how many users liked their own casts", "reaction_type = 'like' AND fid = target_fid", 2),
        ("how many people liked their own post", "reaction_type = 'like' AND fid = target_fid", 2),
        (
            "how many users recast their own posts",
            "reaction_type = 'recast' AND fid = target_fid",
            1,
        ),
        # near misses: every liker, and the likers of someone else's casts
        ("how many users liked casts", "reaction_type = 'like'", 3),
        ("how many users liked others' casts", "reaction_type = 'like' AND fid <> target_fid", 2),
    ],
)
def test_users_who_reacted_to_their_own_casts_are_counted(question, truth, expected):
    # the act done to "their own" casts is done by the user to themselves, as "replied to
    # their own casts" is (the misreading counted every liker)
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE reactions AS SELECT * FROM (VALUES (1, 1, 'a1', 'like'), "
        "(2, 1, 'a1', 'like'), (2, 2, 'b1', 'like'), (4, 1, 'a1', 'like'), "
        "(3, 3, 'c1', 'recast'), (3, 1, 'a1', 'recast')) "
        "AS v(fid, target_fid, target_hash, reaction_type) "
    )
    con.execute('ALTER TABLE reactions ADD COLUMN "timestamp" TIMESTAMPTZ')
    answer = con.execute(f"SELECT count(DISTINCT fid) FROM reactions WHERE {truth}").fetchone()
    p = plan(question, CTX)
    assert p.sql is not None, p.note
    assert con.execute(p.sql).fetchone() == answer == (expected,)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a noun phrase opening the question names a set of people by a condition: how many
        # there are, then who
        (
            "accounts with 4 or more posts",
            "casts, how many and which, by user, with casts >= 4, top",
        ),
        (
            "people w/o a single reply",
            "profiles, how many and which, by user, users without replies",
        ),
        (
            "posters who replied but never cast top level",
            "replies, how many and which, by user, users without top_level_casts",
        ),
        # asked for as a list, a ranking or a count, it is that
        ("list the accounts with 4 or more posts", "casts, by user, with casts >= 4, top"),
        ("which accounts have 4 or more posts", "casts, by user, with casts >= 4, top"),
        ("how many accounts have 4 or more posts", "casts, count of users, with casts >= 4"),
        ("top 3 posters with over 4 casts", "casts, by user, with casts > 4, top 3"),
        ("accounts with the most posts", "casts, by user, top 10"),
    ],
)
def test_a_set_of_people_named_tersely_is_counted_and_listed(question, reading):
    assert reading_of(question) == reading


def test_a_set_of_people_named_tersely_gives_their_number_first():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES ('a', false), ('a', true), ('a', false), "
        "('b', true), ('c', false), ('c', false), ('d', true), ('d', true)) "
        "AS v(username, is_reply)"
    )
    p = plan("accounts with 2 or more posts", CTX)
    rows = con.execute(p.sql).fetchall()
    number = con.execute(
        "SELECT count(*) FROM (SELECT username FROM casts GROUP BY username HAVING count(*) >= 2)"
    ).fetchone()[0]
    names = {
        r[0]
        for r in con.execute(
            "SELECT username FROM casts GROUP BY username HAVING count(*) >= 2"
        ).fetchall()
    }
    assert rows[0][0] == number == 3
    assert {r[1] for r in rows} == names
    assert all(r[0] == number for r in rows)
    assert p.describe(
        [dict(zip(("users", "username", "casts"), r, strict=True)) for r in rows]
    ).startswith("3 (casts, how many and which, by user")
    # people who replied and never cast top level: b and d
    p = plan("authors who replied but never posted top level", CTX)
    rows = con.execute(p.sql).fetchall()
    assert [r[:2] for r in rows] == [(2, "b"), (2, "d")]


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a participle after the people is a relative clause cut short
        (
            "accounts following exactly 0 people",
            "following, how many and which, by user, with following = 0, top",
        ),
        (
            "members folowing under 10 accounts",
            "following, how many and which, by user, with following < 10, top",
        ),
        (
            "users followed by more than 2000 accounts",
            "followers, how many and which, by user, with followers > 2000, top",
        ),
        ("people having 7+ posts", "casts, how many and which, by user, with casts >= 7, top"),
        (
            "how many accounts following over 300 people are there",
            "following, count of users, with following > 300",
        ),
        # not before a number: whom they follow, which the layer does not hold per user
        ("users following dwr", "followers, user = dwr"),
    ],
)
def test_a_participle_after_the_people_reads_as_a_relative_clause(question, reading):
    assert reading_of(question) == reading


def test_a_participle_threshold_on_a_profile_figure_matches_direct_sql():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'a', 0, 5), (2, 'b', 3, 0), "
        "(3, 'c', 0, 9)) AS v(fid, username, following_count, follower_count)"
    )
    p = plan("profiles following 0 accounts", CTX)
    rows = con.execute(p.sql).fetchall()
    direct = con.execute(
        "SELECT count(*) OVER (), username FROM users WHERE following_count = 0 ORDER BY username"
    ).fetchall()
    assert sorted(r[:2] for r in rows) == direct == [(2, "a"), (2, "c")]


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the platform's name is filler, but where a term stands it is the term
        ("how many casts mention farcaster", "casts, term = farcaster"),
        ("which accounts mention Farcaster most", "casts, by user, top 10, term = farcaster"),
        ("how many casts are on farcaster", "casts"),
        # "itself" after a word is an intensifier, never the term
        ("how many posts mention ethereum itself", "casts, term = ethereum"),
        ("top 3 users mentioning farcaster itself", "casts, by user, top 3, term = farcaster"),
        # a word referred to or mentioned "by name" is a term of the text
        ("who refers to ethereum by name the most", "casts, by user, top 10, term = ethereum"),
        ("how many casts referred to Warpcast by name", "casts, term = warpcast"),
        ("count the casts mentioning optimism by name", "casts, term = optimism"),
    ],
)
def test_a_term_named_by_the_platform_or_by_name(question, reading):
    assert reading_of(question) == reading


def test_the_platform_named_as_a_term_matches_direct_sql():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES ('a', 'Farcaster is neat'), "
        "('a', 'on warpcast'), ('b', 'farcaster farcaster'), ('b', 'FARCASTER!'), "
        "('c', 'gm')) AS v(username, text)"
    )
    p = plan("who mentions farcaster itself the most", CTX)
    direct = con.execute(
        "SELECT username, count(*) FROM casts WHERE lower(text) LIKE '%farcaster%' "
        "GROUP BY username ORDER BY 2 DESC, 1"
    ).fetchall()
    assert con.execute(p.sql).fetchall() == direct == [("b", 2), ("a", 1)]


@pytest.mark.parametrize(
    ("question", "search", "fid"),
    [
        # the asker's own plan closing the question is none of what the casts are about
        ("show me casts about hackathons, thinking about joining one", "hackathons", None),
        ("what are people saying about wallets? i'm planning to switch mine", "wallets", None),
        ("what did dwr say about invites; we're hoping to get one", "invites", 3),
        # "we're" is no "re" (regarding)
        ("what are people saying about gpt, we're considering using it", "gpt", None),
    ],
)
def test_the_askers_own_plan_is_not_the_topic(question, search, fid):
    p = plan(question, CTX)
    assert (p.kind, p.search, p.fid) == ("semantic", search, fid)


def test_the_askers_own_plan_leaves_a_count_as_it_is():
    assert reading_of("how many casts mention denver, thinking of going next year") == (
        "casts, term = denver"
    )


@pytest.mark.parametrize(
    ("chat", "spelled_out"),
    [
        ("num of replies by dwr", "number of replies by dwr"),
        ("num of ppl w 2+ recasts", "number of people with at least 2 recasts"),
        ("share of replies pct", "share of replies"),
        ("proportion of casts w images in perc", "proportion of casts with images"),
        (
            "what percentage of posts are replies, as a percentage?",
            "percentage of posts that are replies",
        ),
    ],
)
def test_chat_abbreviations_of_a_number_and_a_percent_read_as_the_words(chat, spelled_out):
    # "num" is "number"; "pct" or "perc" closing a share only repeats the share's unit
    assert reading_of(chat) == reading_of(spelled_out)


def test_percent_alone_is_still_no_question():
    p = plan("pct", CTX)
    assert p.kind == "unanswered" and "percent" in p.note


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a word that is no user and no word of the planner, before "mentions", is the term
        ("most ethdenver mentions by user", "casts, by user, top 10, term = ethdenver"),
        ("how many optimism mentions", "casts, term = optimism"),
        ("top 3 accounts by zora mentions", "casts, by user, top 3, term = zora"),
        # a handle's mentions stay the handle's, and the catalogue's words stay its own
        ("how many dwr mentions", "mentions, user = dwr"),
        ("who got the most mentions", "mentions, by user, top 10"),
    ],
)
def test_a_word_before_mentions_is_the_term_mentioned(question, reading):
    assert reading_of(question) == reading


def test_a_term_before_mentions_matches_direct_sql():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES ('a', 'my ENS name'), ('a', 'ens!'), "
        "('b', 'lens protocol'), ('b', 'ens domains'), ('c', 'gm')) AS v(username, text)"
    )
    p = plan("most ENS mentions by user", CTX)
    direct = con.execute(
        "SELECT username, count(*) FROM casts WHERE regexp_matches(lower(text), '\\bens\\b') "
        "GROUP BY username ORDER BY 2 DESC, 1"
    ).fetchall()
    assert con.execute(p.sql).fetchall() == direct == [("a", 2), ("b", 1)]


def test_a_mention_is_an_at_handle_of_a_cast_whose_message_lists_mentioned_fids():
    # The protocol records a mention of a Farcaster user in the message's mentions list: an
    # @name of another platform, or an @ inside a URL or an address, is no mention.
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('a', 1, 'x', 'gm @dwr and @v', TIMESTAMPTZ '2023-03-04 01:00:00+00', [3, 2]), "
        "('b', 1, 'x', 'find me on clubhouse.com/@dwr', TIMESTAMPTZ '2023-03-04 01:10:00+00', []), "
        "('c', 2, 'y', 'the @JournoDAO crew', TIMESTAMPTZ '2023-03-04 02:00:00+00', []), "
        "('d', 2, 'y', '@dwr mail me at me@dwr.xyz', TIMESTAMPTZ '2023-03-04 02:30:00+00', [3]), "
        "('e', 3, 'dwr', 'no one', TIMESTAMPTZ '2023-03-04 03:00:00+00', NULL)"
        ') AS v(hash, fid, username, text, "timestamp", mentions)'
    )
    count = plan("how many casts mention at least one user?", CTX)
    assert con.execute(count.sql).fetchone()[0] == 2
    of_dwr = plan("how many casts mention dwr", CTX)
    assert con.execute(of_dwr.sql).fetchone()[0] == 2
    by_user = plan("which users were mentioned the most", CTX)
    rows = con.execute(by_user.sql).fetchall()
    assert rows[0][:2] == ("dwr", 2) and [r[:2] for r in rows[1:]] == [("v", 1)]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # the whole population's figure is a total, never the largest one
        ("what is the combined follower count of users who posted a cast?", 9_100),
        ("total followers of all users", 9_105),
        ("how many accounts do users follow in total", 23),
        # one user's figure stays theirs
        ("how many followers does dwr have", 9_000),
    ],
)
def test_a_profile_count_over_many_users_is_their_sum(question, expected):
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (3, 'dwr', 9000, 10), (2, 'v', 100, 8), "
        "(9, 'lurker', 5, 5)) AS v(fid, username, follower_count, following_count)"
    )
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES (3, 'a'), (2, 'b'), (3, 'c')) v(fid, hash)"
    )
    assert con.execute(plan(question, CTX).sql).fetchone()[-1] == expected


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a metric of the people passing a threshold on one of their figures
        (
            "how many posts were made by people with over 2k followers",
            "casts, of users with followers > 2000",
        ),
        (
            "replies from accounts that have at least 300 following",
            "replies, of users with following >= 300",
        ),
        (
            "number of likes by users having fewer than 10 followers",
            "likes, of users with followers < 10",
        ),
        (
            "top posters among users with 50 or more followers",
            "casts, by user, top 10, of users with followers >= 50",
        ),
        ("casts by authors who have at least 20 casts", "casts, of users with casts >= 20"),
        # the people themselves, counted or listed, keep their reading
        (
            "how many users have more than 1000 followers",
            "followers, count of users, with followers > 1000",
        ),
        (
            "number of accounts with over 500 followers",
            "followers, count of users, with followers > 500",
        ),
    ],
)
def test_a_metric_of_people_passing_a_threshold_counts_their_rows(question, reading):
    assert reading_of(question) == reading


def test_casts_of_people_passing_a_threshold_match_direct_sql():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'a', 5000, 10), (2, 'b', 20, 900), "
        "(3, 'c', 1001, 0)) AS v(fid, username, follower_count, following_count)"
    )
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES (1, 'a', false), (1, 'a', true), "
        "(2, 'b', false), (3, 'c', true), (3, 'c', true), (2, 'b', true)) "
        "AS v(fid, username, is_reply)"
    )
    for question, direct in [
        (
            "how many casts came from accounts with more than 1000 followers?",
            "SELECT count(*) FROM casts c JOIN users u ON c.fid = u.fid "
            "WHERE u.follower_count > 1000",
        ),
        (
            "how many replies by users following at least 500 accounts",
            "SELECT count(*) FROM casts c JOIN users u ON c.fid = u.fid "
            "WHERE u.following_count >= 500 AND c.is_reply",
        ),
    ]:
        got = con.execute(plan(question, CTX).sql).fetchall()
        assert got == con.execute(direct).fetchall()
    assert con.execute(plan("casts by users >1k followers count", CTX).sql).fetchall() == [(4,)]


def _at(day: int, hour: int) -> datetime:
    return datetime(2023, 3, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        # a bare hour beside an end with am or pm takes the half of the day nearest that end
        ("replies between 12 and 3am", _at(4, 0), _at(4, 3)),
        ("posts from 9 to 10pm", _at(4, 21), _at(4, 22)),
        ("casts between 11 and 2am", _at(4, 23), _at(5, 2)),
        ("likes from 8pm until 9", _at(4, 20), _at(4, 21)),
        ("casts 12-1pm", _at(4, 12), _at(4, 13)),
        ("casts between 10 and midnight", _at(4, 22), _at(5, 0)),
        ("replies 12am to 3am", _at(4, 0), _at(4, 3)),
        # two bare hours stay on a 24-hour clock, and a told half stays as told
        ("casts between 3 and 5", _at(4, 3), _at(4, 5)),
        ("casts between 12pm and 1am", _at(4, 12), _at(5, 1)),
        ("casts between 15 and 16", _at(4, 15), _at(4, 16)),
    ],
)
def test_a_bare_hour_takes_the_half_of_day_of_the_other_end(question, start, end):
    # the newest event at the end of March 4: every start has come on that day, so the day
    # is March 4 throughout (test_time_ranges covers a start still to come)
    tr = parse_time_range(question, datetime(2023, 3, 4, 23, 59, tzinfo=UTC))
    assert tr is not None and (tr.start, tr.end) == (start, end)


@pytest.mark.parametrize(
    ("question", "start"),
    [
        ("casts on mar3", _at(3, 0)),
        ("replies march3rd", _at(3, 0)),
        ("posts 3mar 2023", _at(3, 0)),
        ("casts between 1 and 2am on 4march", _at(4, 1)),
    ],
)
def test_a_month_typed_against_its_day_is_that_date(question, start):
    tr = parse_time_range(question, NOW)
    assert tr is not None and tr.start == start


def test_a_bare_hour_range_counts_as_direct_sql():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES ('a', TIMESTAMPTZ '2023-03-04 00:10:00+00'), "
        "('a', TIMESTAMPTZ '2023-03-04 12:10:00+00'), ('b', TIMESTAMPTZ '2023-03-04 00:59:00+00'), "
        "('b', TIMESTAMPTZ '2023-03-04 01:00:00+00')) AS v(username, \"timestamp\")"
    )
    p = plan("how many casts between 12 and 1am utc", CTX)
    direct = con.execute(
        "SELECT count(*) FROM casts WHERE \"timestamp\" >= '2023-03-04 00:00:00+00' "
        "AND \"timestamp\" < '2023-03-04 01:00:00+00'"
    ).fetchall()
    assert con.execute(p.sql).fetchall() == direct == [(2,)]


@pytest.mark.parametrize(
    ("question", "word"),
    [
        # a property of the people asked about that no profile holds is refused, however the
        # people are picked (a ranking, a topic, a possessive)
        ("what are the phone numbers of users who talked about wallets", "phone"),
        ("the locations of the top 5 posters", "location"),
        ("list the most active repliers' emails", "email"),
        ("give me the passwords of accounts that posted the most", "password"),
        ("what's the age of the people who cast about nfts", "age"),
    ],
)
def test_a_property_of_people_not_held_is_refused(question, word):
    p = plan(question, CTX)
    assert (p.kind, p.rule) == ("unanswered", "layer")
    assert f"no {word!r} property" in p.note


@pytest.mark.parametrize(
    ("question", "search"),
    [
        # the same word as what people said stays a topic
        ("which users talked about email the most", "email"),
        ("who posted about their location", "location"),
    ],
)
def test_a_property_word_said_about_stays_a_topic(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("hybrid", search)


@pytest.mark.parametrize(
    ("question", "plain"),
    [
        # the place every cast of the data is in is no topic of them
        ("who says gm the most on here?", "who says gm the most?"),
        ("top 3 posters around here", "top 3 posters"),
        (
            "which users talked about nfts the most on this app",
            "which users talked about nfts the most",
        ),
        ("who posted about wallets the most on farcaster?", "who posted about wallets the most?"),
    ],
)
def test_the_place_of_the_data_is_no_topic(question, plain):
    assert (plan(question, CTX).search, plan(question, CTX).sql) == (
        plan(plain, CTX).search,
        plan(plain, CTX).sql,
    )


def test_the_networks_name_said_about_stays_a_topic():
    p = plan("who talks about farcaster the most", CTX)
    assert (p.kind, p.search) == ("hybrid", "farcaster")


@pytest.mark.parametrize(
    ("question", "search"),
    [
        # what the people are doing in the casts is what the casts are about
        ("show me some casts where ppl are thanking someone", "thanking someone"),
        ("find posts in which users were complaining about fees", "complaining about fees"),
        ("messages where someone is asking for an invite", "asking for an invite"),
    ],
)
def test_casts_where_people_are_doing_something_are_about_it(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("semantic", search)


@pytest.mark.parametrize(
    ("chat", "spelled_out"),
    [
        # "abt" and "bout" are "about"
        ("who posts most abt daos", "who posts most about daos"),
        ("what r ppl saying abt wallets", "what r ppl saying about wallets"),
        ("casts bout nfts", "casts about nfts"),
        ("which users talked 'bout invites the most", "which users talked about invites the most"),
    ],
)
def test_chat_spellings_of_about_read_as_about(chat, spelled_out):
    assert plan(chat, CTX).search == plan(spelled_out, CTX).search is not None


def test_a_bout_that_is_no_about_stays():
    # "bout" is "about" only before what it is about, not closing a question
    assert plan("who won the bout", CTX).search != plan("who won the about", CTX).search


@pytest.mark.parametrize(
    ("question", "search"),
    [
        # tersely, the people, the ranking, the casts and then their topic: people ranked
        ("users most casts about bots", "bots"),
        ("accounts with the most posts on gm", "gm"),
        ("people most messages regarding wallets", "wallets"),
    ],
)
def test_people_then_most_casts_about_a_topic_rank_people(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.rule, p.search) == ("hybrid", "hybrid_topic_users", search)


def test_people_then_most_casts_without_a_topic_stay_a_ranking_of_casts():
    assert reading_of("users most casts") == "casts, by user, top 10"


@pytest.mark.parametrize(
    ("question", "plain"),
    [
        # a thread involving a number of people is a thread including them
        (
            "how many threads involved at least four authors",
            "how many threads included at least 4 authors",
        ),
        ("count convos that involve 3+ people", "how many threads included at least 3 people"),
        (
            "number of threads involving more than 2 distinct users",
            "how many threads included more than 2 distinct users",
        ),
    ],
)
def test_threads_involving_a_number_of_people_include_them(question, plain):
    assert reading_of(question) == reading_of(plain)


def test_involving_a_word_is_no_number_of_people():
    # only before a number: "involving denver" is not read as a thread's size
    p = plan("how many casts involving denver", CTX)
    assert p.kind == "unanswered" and "involving" in p.note


# -- the length of casts and the domains they link to ----------------------------------------


def _small_world():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES "
        "('0x1', 3, 'dwr', 'gm all', TIMESTAMPTZ '2023-03-04 01:10:00+00', NULL, NULL, '0x1',"
        " NULL, []::BIGINT[], ['https://www.github.com/a', 'https://github.com/b',"
        " 'https://i.imgur.com/x.png'], false), "
        "('0x2', 2, 'v', 'a reply', TIMESTAMPTZ '2023-03-04 01:20:00+00', '0x1', 3, '0x1', NULL,"
        " []::BIGINT[], ['http://github.com:443/c'], true), "
        "('0x3', 3, 'dwr', 'a reply to a reply', TIMESTAMPTZ '2023-03-04 02:05:00+00', '0x2', 2,"
        " '0x1', NULL, []::BIGINT[], []::VARCHAR[], true)) "
        'AS t(hash, fid, username, text, "timestamp", parent_hash, parent_fid, thread_hash, '
        "parent_url, mentions, embeds, is_reply)"
    )
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (3, 'dwr', 'Dan Romero', 'Working on it', "
        "10, 5), (2, 'v', 'Varun', '', 20, 1), (7, 'quiet', 'Quiet One', NULL, 30, 0)) "
        "AS t(fid, username, display_name, bio, follower_count, following_count)"
    )
    con.execute(
        "CREATE TABLE reactions AS SELECT * FROM (VALUES "
        "('r1', 'recast', 2, 'v', '0x1', 3, TIMESTAMPTZ '2023-03-04 01:30:00+00'), "
        "('r2', 'recast', 3, 'dwr', '0x2', 2, TIMESTAMPTZ '2023-03-04 01:40:00+00'), "
        "('r3', 'like', 7, 'quiet', '0x3', 3, TIMESTAMPTZ '2023-03-04 02:10:00+00'), "
        "('r4', 'recast', 7, 'quiet', '0xout', 9, TIMESTAMPTZ '2023-03-04 02:20:00+00')) "
        'AS t(hash, reaction_type, fid, username, target_hash, target_fid, "timestamp")'
    )
    return con


def test_the_mean_length_of_casts_in_characters():
    con = _small_world()

    def run(q: Query) -> list[tuple]:
        return con.execute(compile_sql(q)).fetchall()

    # 'gm all' 6, 'a reply' 7, 'a reply to a reply' 18
    assert run(Query("cast_length")) == [(round(31 / 3, 2),)]
    assert run(Query("cast_length", "user")) == [("dwr", 12.0), ("v", 7.0)]
    assert run(Query("cast_length", conditions=(Condition("reply"),))) == [(12.5,)]
    assert run(Query("cast_length", "cast", order="desc", limit=1)) == [("0x3", 18.0)]
    with pytest.raises(LayerError, match="no share"):
        compile_sql(Query("cast_length", share=True))


def test_casts_group_by_the_domains_they_link_to():
    con = _small_world()

    def run(q: Query) -> list[tuple]:
        return con.execute(compile_sql(q)).fetchall()

    # a cast linking github.com twice counts once there; "www." and the port are no part of
    # the domain; a cast without links is in no group
    assert run(Query("casts", "domain", order="desc")) == [("github.com", 2), ("i.imgur.com", 1)]
    assert run(Query("replies", "domain")) == [("github.com", 1)]
    assert run(Query("distinct_authors", "domain")) == [("github.com", 2), ("i.imgur.com", 1)]
    assert run(Query("casts", "domain", conditions=(Condition("user", "dwr"),))) == [
        ("github.com", 1),
        ("i.imgur.com", 1),
    ]
    with pytest.raises(LayerError, match="cannot be grouped by domain"):
        compile_sql(Query("recasts", "domain"))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("What's the mean cast length?", "cast_length"),
        ("on average, how many characters does a post have?", "cast_length"),
        ("average characters per cast by dwr", "cast_length, user = dwr"),
        ("how long are briang's posts, typically?", "cast_length, user = briang"),
        ("typical reply length per hour", "cast_length, by hour, reply"),
        ("mean length of top-level casts each day", "cast_length, by day, top_level"),
        ("which users write the longest posts on average?", "cast_length, by user, top 10"),
        ("the 3 shortest casts", "cast_length, by cast, bottom 3"),
        ("how many characters does the longest cast have?", "cast_length, largest per cast"),
    ],
)
def test_the_length_of_casts_is_read(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    "question",
    [
        "how many characters did dwr write in total?",  # a total, not the mean
        "median cast length",  # the layer has the mean only
        "who wrote the longest cast?",  # one cast's author, not a user's mean
        "how long was dwr active on average?",  # a duration, not a length
    ],
)
def test_lengths_the_layer_has_not_are_refused(question):
    assert plan(question, CTX).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("which websites get linked the most?", "casts, by domain, top 10, has_link"),
        ("top 5 domains in links", "casts, by domain, top 5, has_link"),
        ("number of casts per domain", "casts, by domain"),
        ("what sites did dwr link to?", "casts, by domain, user = dwr, has_link"),
        ("which domain do replies link to most often", "replies, by domain, top 10, has_link"),
        (
            "the most linked hostname among top-level casts",
            "casts, by domain, top 10, has_link, top_level",
        ),
    ],
)
def test_the_domains_links_go_to_are_read(question, reading):
    assert reading_of(question) == reading


def test_a_site_named_is_still_a_filter_not_a_grouping():
    assert reading_of("how many casts link to websites?") == "casts, has_link"
    assert reading_of("how many casts link to github.com?") == "casts, site = github.com"


# -- what replies and reactions are directed at: a reply, or a top-level cast -----------------


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many likes did replies get", "likes, reply"),
        ("total recasts top-level posts received", "recasts, top_level"),
        ("how many reactions did dwr's replies draw", "reactions_received, user = dwr, reply"),
        ("the number of likes on replies", "likes, to_reply"),  # a reaction to a reply
    ],
)
def test_reactions_that_a_kind_of_cast_got(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # "how much of all …" is a share, where it had counted the user's casts alone
        ("how much of all the casts is dwr", "casts, as a percentage of all casts, user = dwr"),
        (
            "how much of every reply came from v?",
            "replies, as a percentage of all replies, user = v",
        ),
        ("how much of the posts were replies", "replies, as a percentage of casts"),
        # chat's "#s" are the numbers asked for, no hashtag "s"
        (
            "dwr vs v, who posted more replies? need the #s",
            "replies, by user, top 10, user = dwr,v",
        ),
        ("casts with the hashtag #s", "casts, hashtag = s"),
    ],
)
def test_how_much_of_all_is_a_share_and_the_numbers_are_asked(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # chat's "@'d" is mentioned: the authors who mention the user
        ("which accounts @'d v", "casts, by user, mentions_user = v"),
        ("which ppl @d dwr", "casts, by user, mentions_user = dwr"),
        # a "but" before what is left out says nothing more
        ("casts per hour but w/o dwr", "casts, by hour, not user = dwr"),
        ("top posters but excluding v", "casts, by user, top 10, not user = v"),
    ],
)
def test_at_d_is_mentioned_and_but_before_a_leaving_out(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    "question",
    [
        # two metrics asked side by side stay two
        "how many likes and replies did dwr get",
        "likes vs replies per hour",
    ],
)
def test_a_reaction_and_a_kind_of_cast_joined_are_two_metrics(question):
    p = plan(question, CTX)
    assert p.kind == "unanswered" and "more than one metric" in p.note, p.note


def test_reactions_take_what_their_cast_is_as_a_filter_on_it():
    """A reaction is about one cast: "recasts that casts with an image got" are the recasts
    whose cast has an image. Every property of a cast applies so, negated too; a metric about
    no cast still refuses it."""
    con = _small_world()

    def run(q: Query) -> list[tuple]:
        sql = compile_sql(q)
        guard(sql, PUBLIC_TABLES)
        return con.execute(sql).fetchall()

    image, link = (Condition("has_image"),), (Condition("has_link"),)
    # r1 recasts 0x1 (an image and links), r2 the reply 0x2 (a link), r4 a cast not held
    assert run(Query("recasts", conditions=image)) == [(1,)]
    assert run(Query("recasts", conditions=link)) == [(2,)]
    assert run(Query("recasts", conditions=(Condition("has_image", negated=True),))) == [(1,)]
    assert sorted(run(Query("recasts_received", "user", conditions=link))) == [("dwr", 1), ("v", 1)]
    assert run(Query("likes", conditions=(Condition("term", "reply"),))) == [(1,)]
    assert run(Query("reactions", conditions=(Condition("top_level"),))) == [(1,)]
    with pytest.raises(LayerError, match="cannot be filtered by has_image"):
        compile_sql(Query("followers", conditions=image))


def test_replies_and_reactions_directed_at_replies():
    con = _small_world()

    def run(q: Query) -> list[tuple]:
        return con.execute(compile_sql(q)).fetchall()

    at_reply, at_top = (Condition("to_reply"),), (Condition("to_reply", negated=True),)
    # 0x3 answers the reply 0x2; 0x2 answers the root 0x1
    assert run(Query("replies", conditions=at_reply)) == [(1,)]
    assert run(Query("replies", conditions=at_top)) == [(1,)]
    assert run(Query("replies_received", "user", conditions=at_reply)) == [("v", 1)]
    # r2 recasts the reply 0x2, r1 the top-level 0x1; r4's target is not in the data: neither
    assert run(Query("recasts", conditions=at_reply)) == [(1,)]
    assert run(Query("recasts", conditions=at_top)) == [(1,)]
    assert run(Query("reactions", conditions=at_reply)) == [(2,)]
    assert run(Query("recasters", conditions=at_reply)) == [(1,)]
    with pytest.raises(LayerError, match="cannot be filtered by to_reply"):
        compile_sql(Query("followers", conditions=at_reply))


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many replies answer another reply?", "replies, to_reply"),
        ("count the responses to other responses", "replies, to_reply"),
        ("replies that went directly to a top-level post", "replies, not to_reply"),
        ("nested replies per hour", "replies, by hour, to_reply"),
        ("how many times did dwr reply to a reply?", "replies, user = dwr, to_reply"),
        (
            "who got the most replies to their replies?",
            "replies_received, by user, top 10, to_reply",
        ),
        ("how many reshares of replies were there?", "recasts, to_reply"),
        ("how often did people recast replies?", "recasts, to_reply"),
        ("recasts of original posts", "recasts, not to_reply"),
        ("how many reactions on posts that are replies?", "reactions, to_reply"),
    ],
)
def test_what_replies_and_reactions_went_to_is_read(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a count of replies, a share of them, a kind of cast said of the casts counted
        ("how many casts are replies?", "replies"),
        ("number of people who replied, not the count of replies", "distinct_authors, reply"),
        ("how many casts that are replies have links?", "replies, has_link"),
    ],
)
def test_replies_named_as_the_casts_counted_stay_so(question, reading):
    assert reading_of(question) == reading


# -- profiles: a bio or none, and a profile's own words looked up ---------------------------


def test_profiles_with_and_without_a_bio_and_their_words():
    con = _small_world()

    def run(q: Query) -> list[tuple]:
        return con.execute(compile_sql(q)).fetchall()

    # v's bio is '', quiet's NULL: neither has one
    assert run(Query("profiles", conditions=(Condition("has_bio", negated=True),))) == [(2,)]
    assert run(Query("profiles", conditions=(Condition("has_bio"),))) == [(1,)]
    assert run(Query("display_name", conditions=(Condition("user", "dwr"),))) == [("Dan Romero",)]
    assert run(Query("bio", conditions=(Condition("user", "dwr"),))) == [("Working on it",)]
    assert run(Query("display_name", "user", conditions=(Condition("user", "dwr,v"),))) == [
        ("dwr", "Dan Romero"),
        ("v", "Varun"),
    ]
    for whose_not_said in (
        Query("display_name"),
        Query("display_name", "user", order="desc", limit=1),
        Query("bio", average_over="user"),
    ):
        with pytest.raises(LayerError, match="profile's text"):
            compile_sql(whose_not_said)


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("how many accounts have an empty bio?", "profiles, not has_bio"),
        ("number of users without a biography", "profiles, not has_bio"),
        ("how many profiles have a bio?", "profiles, has_bio"),
        ("how many posters left their bio blank?", None),
        ("how many authors have no bio?", "profiles, not has_bio, author"),
        ("most followed account with no bio", "followers, by user, top 10, not has_bio"),
        ("what's the display name of briang?", "display_name, user = briang"),
        ("dwr's display name", "display_name, user = dwr"),
        ("show me the bio of v", "bio, user = v"),
        ("display names for dwr and briang", "display_name, by user, user = dwr,briang"),
    ],
)
def test_bios_and_display_names_are_read(question, reading):
    p = plan(question, CTX)
    if reading is None:
        assert p.query is None  # not read as a figure, so never a wrong one
    else:
        assert p.query is not None, p.note
        assert p.query.describe() == reading


@pytest.mark.parametrize(
    "question",
    [
        "how many display names are there?",  # a text, not a count
        "who has the longest bio?",  # a text, not a ranking
        "how many casts did users without a bio post?",  # casts have no bio
    ],
)
def test_profile_words_that_make_no_figure_are_refused(question):
    assert plan(question, CTX).kind == "unanswered"


# -- a profile figure ranked among the users who did (or never did) something ----------------


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("the most followed accounts without any casts", "followers, by user, top 10, not author"),
        (
            "which user with no posts has the biggest audience?",
            "followers, by user, top 10, not author",
        ),
        ("the most followed users with casts", "followers, by user, top 10, author"),
        ("the liker with the most followers", "followers, by user, users with likes, top 10"),
        (
            "among people who replied, who has the most followers?",
            "followers, by user, users with replies, top 10",
        ),
        (
            "the 3 recasters with the fewest followers",
            "followers, by user, users with recasts, bottom 3",
        ),
    ],
)
def test_profile_figures_ranked_among_users_who_did_something(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # replying to someone not named makes the replies; whoever got them is not asked
        (
            "how many people both cast and replied to someone",
            "casts, count of users, users with replies, top_level",
        ),
        ("who replied to folks the most", "replies, by user, top 10"),
        # without an object the replies are received
        ("the 5 most replied to accounts", "replies_received, by user, top 5"),
    ],
)
def test_replying_to_someone_unnamed_is_the_act(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    "question",
    [
        # two figures, not one among doers ("how many followers does the top recaster have"
        # nests them: test_a_figure_of_the_user_another_metric_puts_first)
        "users with the most followers and recasts",
    ],
)
def test_two_figures_of_users_are_still_refused(question):
    assert plan(question, CTX).kind == "unanswered"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "which accounts that never posted have the most followers?",
            "followers, by user, users without casts, top 10",
        ),
        (
            "whos the most followed person who didn't reply to anyone",
            "followers, by user, users without replies, top 10",
        ),
        (
            "the 3 most followed users who never recast",
            "followers, by user, users without recasts, top 3",
        ),
    ],
)
def test_profile_figures_ranked_among_users_who_never_did_something(question, reading):
    assert reading_of(question) == reading


def test_a_profile_figure_of_users_who_never_did_something_unranked_is_refused():
    # a sum over them is not composed with users_with, which needs a figure per user
    assert plan("how many followers do users who never posted have?", CTX).kind == "unanswered"


def test_the_people_who_acted_on_each_users_casts():
    con = _small_world()

    def run(q: Query) -> list[tuple]:
        return con.execute(compile_sql(q)).fetchall()

    # dwr's 0x1 recast by v; v's 0x2 recast by dwr; dwr's 0x3 liked by quiet
    assert run(Query("recasters_received", "user")) == [("dwr", 1), ("v", 1)]
    assert run(Query("reactors_received", "user", conditions=(Condition("user", "dwr"),))) == [
        ("dwr", 2)
    ]
    assert run(Query("likers_received", "user")) == [("dwr", 1)]


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "which accounts got reshared by 2 or more different people?",
            "recasters_received, by user, with recasters_received >= 2, top",
        ),
        (
            "users whose casts were recast by at least four distinct users",
            "recasters_received, how many and which, by user, with recasters_received >= 4, top",
        ),
        (
            "how many users were liked by more than 5 different people?",
            "likers_received, count of users, with likers_received > 5",
        ),
        # the users' own recasts, counted: not what others did to them
        ("how many users recast at least 3 casts?", "recasts, count of users, with recasts >= 3"),
    ],
)
def test_users_told_apart_by_how_many_people_acted_on_them(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        ("add up the followers of everybody who cast", "followers, author"),
        ("adding up everyone who posted, how many followers is that?", "followers, author"),
        ("the total following of anyone who posted", "following, author"),
    ],
)
def test_everyone_who_did_something_is_a_set_of_users_not_a_grouping(question, reading):
    assert reading_of(question) == reading


def test_a_reaction_word_before_who_is_the_deed_not_a_participle():
    # "recast users" are users whose casts were recast; "recast who" asks who recast
    assert reading_of("earliest recast who") == "first recasts at, by user, bottom 10"
    assert reading_of("the most recast users") == "recasts_received, by user, top 10"


@pytest.mark.parametrize(
    ("question", "why"),
    [
        # acts between accounts no table records: refused whatever the phrasing or spelling
        ("which accounts did briang block", "no blocks"),
        ("who was muted the most this morning", "no mutes"),
        ("how many people unfollowed dwr", "no unfollows"),
        ("top blcoked users", "no blocks"),  # one edit away
        ("blocks and mutes by user", "no blocks or mutes"),
        # the follow edges: which accounts, not how many
        ("which users follow briang?", "who follows whom"),
        ("give me the names of the people dwr follows", "who follows whom"),
        ("show me who is following v", "who follows whom"),
        ("does briang follow dwr", "who follows whom"),
        ("list every account that folows v", "who follows whom"),  # a typo of "follows"
        # a follower count's history
        ("how much did dwr's follower count grow this week", "no history"),
        ("weekly followers of v", "no history"),
    ],
)
def test_acts_between_accounts_the_data_does_not_hold_are_refused(question, why):
    p = plan(question, CTX)
    assert (p.kind, p.rule) == ("unanswered", "layer"), (p.kind, p.rule, p.note)
    assert why in p.note and p.sql is None and p.search is None
    assert p.final  # the data's limit, not the planner's words: no model is asked either


@pytest.mark.parametrize(
    ("question", "network"),
    [
        ("what's been trending on tiktok this morning?", "Tiktok"),
        ("who has the most followers over on instagram", "Instagram"),
        ("how many reddit likes did v get", "Reddit"),
        ("which of dwr's posts went viral on youtube", "Youtube"),
        ("the bluesky followers of briang", "Bluesky"),
        # where it had been refused for the word "instagram" alone
        ("How many casts did dwr post on Instagram?", "Instagram"),
    ],
)
def test_what_happens_on_another_network_is_refused(question, network):
    p = plan(question, CTX)
    assert (p.kind, p.rule) == ("unanswered", "layer"), (p.kind, p.rule, p.note)
    assert f"nothing that happened on {network}" in p.note and p.final


@pytest.mark.parametrize(
    "question",
    [
        # the network as what casts talk about: a search of casts
        "what did people say about posting on tiktok?",
        "casts mentioning instagram followers",
        # a Farcaster figure beside the network's name
        "how many casts link to youtube.com",
        "who posted the most replies in threads",
    ],
)
def test_another_network_named_as_a_topic_is_not_refused(question):
    p = plan(question, CTX)
    assert p.kind != "unanswered" or "nothing that happened on" not in (p.note or ""), p.note


def test_a_refusal_over_words_the_planner_lacks_is_not_final():
    p = plan("how many zorbles did dwr post", CTX)
    assert p.kind == "unanswered" and not p.final  # the LLM path may still ask the model


@pytest.mark.parametrize(
    "question",
    [
        # a figure of the follows, which the profiles hold, is answered
        "how many accounts follow briang",
        "which user has the fewest followers",
        "who has more followers: briang or v?",
        "which users have at least 500 followers",
        "the combined followers of everybody who cast",
        "who follows the most accounts",
    ],
)
def test_a_figure_of_the_follows_is_still_answered(question):
    p = plan(question, CTX)
    assert p.kind == "analytic", (p.kind, p.note)


@pytest.mark.parametrize(
    ("question", "search"),
    [
        # what people said about blocking or following is a topic of casts
        ("who talked about blocking spammers the most", "blocking spammers"),
        ("which users posted about muting", "muting"),
    ],
)
def test_an_act_said_about_stays_a_topic(question, search):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("hybrid", search)


def test_a_misspelt_act_is_read_only_when_it_is_no_word_of_its_own():
    assert lexicon.act_not_held("mutted") == "mutes"
    assert lexicon.act_not_held("unfolowed") == "unfollows"
    assert lexicon.act_not_held("locked") is None  # an English word: not "blocked"
    assert lexicon.act_not_held("mates") is None  # an English word: not "mutes"
    assert lexicon.act_not_held("bloc") is None  # too short to read as a typo


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # the question's own metric said again with its author after a negation: the author
        # is left out, not the metric
        ("replies by hour, not counting replies posted by dwr", "replies, by hour, not user = dwr"),
        ("how many casts were there without the casts from briang", "casts, not user = briang"),
        ("recasts per user excluding any recasts made by v", "recasts, by user, not user = v"),
    ],
)
def test_a_negated_metric_of_one_author_leaves_the_author_out(question, reading):
    p = plan(question, CTX)
    assert p.kind == "analytic" and p.query is not None, p.note
    assert p.query.describe() == reading


def test_another_metric_of_one_author_left_out_is_refused_not_misread():
    # all casts but dwr's replies: no query of the layer (it was read as dwr's non-replies)
    p = plan("count the casts, excluding replies written by dwr", CTX)
    assert p.kind == "unanswered" and "leaving out dwr's replies" in p.note


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a profile figure ranked among the users passing a threshold on what they did: the
        # threshold is on their casts, not on the profile figure
        (
            "among people who posted exactly two casts, who has the most followers",
            "followers, by user, top 10, of users with casts = 2",
        ),
        (
            "of the authors who wrote at least 3 casts, who follows the most accounts",
            "following, by user, top 10, of users with casts >= 3",
        ),
        (
            "which account with a single cast has the fewest followers",
            "followers, by user, bottom 10, of users with casts = 1",
        ),
        ("who has the most followers among users with more than ten casts", None),
    ],
)
def test_a_profile_figure_among_users_passing_a_threshold_on_their_casts(question, reading):
    got = reading_of(question)
    assert got == (reading or "followers, by user, top 10, of users with casts > 10")


def test_the_most_followed_of_the_one_cast_authors_matches_direct_sql():
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES (1, 'a', 5000, 10), (2, 'b', 20, 900), "
        "(3, 'c', 1001, 0), (4, 'd', 7, 1)) AS v(fid, username, follower_count, following_count)"
    )
    con.execute(
        "CREATE TABLE casts AS SELECT * FROM (VALUES (1, 'a'), (1, 'a'), (2, 'b'), (3, 'c')) "
        "AS v(fid, username)"
    )
    sql = plan("Among the users who posted exactly one cast, who has the most followers?", CTX).sql
    # a has the most followers but two casts; of b and c (one cast each), c
    assert con.execute(sql).fetchall()[0][:2] == ("c", 1001)
    assert [r[0] for r in con.execute(sql).fetchall()] == ["c", "b"]


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a reaction's verb with the user as its object: the reactions went to that user
        ("which accounts recast briang the most", "recasts, by user, top 10, to_user = briang"),
        ("who liked v", "likes, by user, to_user = v"),
        ("which people reshared dwr", "recasts, by user, to_user = dwr"),
        # the user as the one reacting keeps its reading
        ("whose posts did briang recast", "recasts, by to_user, user = briang"),
        ("which users did v like the most", "likes, by to_user, top 10, user = v"),
    ],
)
def test_a_reaction_verb_takes_the_user_as_its_object(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a list of the people who did something: which people, not how many times
        ("list the accounts that liked briang's casts", "likes, by user, to_user = briang"),
        ("give me the names of users who replied to v", "replies, by user, to_user = v"),
        ("I want a list of all the people who recast dwr", "recasts, by user, to_user = dwr"),
    ],
)
def test_a_list_of_the_people_who_did_something_names_them(question, reading):
    assert reading_of(question) == reading


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        # a metric word after "by" is what the people are ranked by, never a username
        ("rank users by casts about wallets", "wallets"),
        ("top users by posts about bike lanes", "bike lanes"),
        # "a ranking of" the people asks what "rank the people" asks
        ("can you pull a ranking of users by posts about search?", "search"),
        ("give me a ranking of the authors by casts about nfts", "nfts"),
        # the people "ranked by" or "sorted by" their casts on it: a ranking too
        ("the accounts ranked by number of casts about surfing.", "surfing"),
        ("posters sorted by how many casts they wrote on chess", "chess"),
        # the catalogue's words after a verb of saying are the topic, not what ranks them
        ("which accounts talked about recasts and replies the most?", "recasts and replies"),
        ("who posted the most about likes", "likes"),
    ],
)
def test_people_ranked_by_their_casts_about_a_topic(question, topic):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("hybrid", topic), p.note


def test_a_name_that_is_no_user_before_about_is_still_named():
    p = plan("casts by zzzq about wallets", CTX)
    assert p.kind == "unanswered" and "'zzzq'" in (p.note or "")


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # a ranking said before the people, the threshold on what they did after them
        (
            "the most followed account that posted at least 4 casts",
            "followers, by user, top 10, of users with casts >= 4",
        ),
        (
            "most followed user who just posted once",
            "followers, by user, top 10, of users with casts = 1",
        ),
        # the people named first, or after "do" or "how many"
        (
            "the poster with exactly 2 casts with the biggest follower count",
            "followers, by user, top 10, author, of users with casts = 2",
        ),
        (
            "how many followers do accounts with 5+ casts have",
            "followers, of users with casts >= 5",
        ),
        (
            "how many users with at least 2 casts posted replies",
            "distinct_authors, reply, of users with casts >= 2",
        ),
        # a count said as a compound adjective of the people
        (
            "the most followed single-cast accounts",
            "followers, by user, top 10, of users with casts = 1",
        ),
        ("avg followers of 3-cast users", "followers, average per user, of users with casts = 3"),
        ("how many one-post users are there", "casts, count of users, with casts = 1"),
        # the people counted are the people themselves: the word-by-word reading stays
        ("how many users with 3+ casts", "casts, count of users, with casts >= 3"),
        # an ascending ranking before the people, a verb's threshold after them
        (
            "the least followed account that wrote over 4 casts",
            "followers, by user, bottom 10, of users with casts > 4",
        ),
        # after "by", the figure is the people's own as it is a named user's: received
        (
            "total recasts received by accounts with exactly two casts",
            "recasts_received, of users with casts = 2",
        ),
    ],
)
def test_a_threshold_on_what_people_did_beside_another_figure_of_theirs(question, reading):
    # each of these had put the threshold on the other figure ("followers >= 4"), dropped
    # the compound adjective, or counted replies >= 2: wrong answers
    assert reading_of(question) == reading


def test_a_threshold_on_one_count_is_never_read_as_one_on_another():
    # read word by word, "with 1 cast" had become "with followers = 1"; where no reading
    # composes the two, the question is refused rather than answered so
    p = plan("followers by user, users with exactly 1 cast", CTX)
    assert p.kind == "unanswered" and "threshold on casts is not one on followers" in (p.note or "")
    # a verb's count: "replied more than twice" is no "followers > 2"
    p = plan("the account with the fewest followers who replied more than twice", CTX)
    assert p.kind == "unanswered" and "threshold on replies" in (p.note or "")
    # a verb of posting says no more than its noun, another verb what is counted
    assert reading_of("how many users recast at least 4 casts") == (
        "recasts, count of users, with recasts >= 4"
    )


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        (
            "How many casts were posted in the first 60 minutes after the very first cast?",
            CTX_SPAN.first,
            CTX_SPAN.first + timedelta(minutes=60),
        ),
        (
            "how many replies in the first half hour of the data",
            CTX_SPAN.first,
            CTX_SPAN.first + timedelta(minutes=30),
        ),
        (
            "who posted the most in the last 15 minutes of the sample",
            NOW - timedelta(minutes=15),
            NOW + timedelta(microseconds=1),
        ),
    ],
)
def test_a_length_of_time_at_the_datas_start_or_end_is_a_range(question, start, end):
    """ "The first hour of the data" starts at its oldest event, "the last 15 minutes of the
    sample" ends with its newest."""
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.time_range is not None, p.note
    assert (p.time_range.start, p.time_range.end) == (start, end)


@pytest.mark.parametrize(
    ("question", "start", "end"),
    [
        ("How many casts were posted in the first hour of March 4?", (3, 4, 0, 0), (3, 4, 1, 0)),
        ("casts in the last 30 minutes of 2023-03-03", (3, 3, 23, 30), (3, 4, 0, 0)),
        ("who cast the most during the first two hours of march 4th", (3, 4, 0, 0), (3, 4, 2, 0)),
        ("replies in the final hour of 3 March", (3, 3, 23, 0), (3, 4, 0, 0)),
    ],
)
def test_a_length_of_time_at_a_days_start_or_end_is_a_range(question, start, end):
    """ "The first hour of March 4" starts at its midnight; "the last 30 minutes of March 3"
    end at the next. Had been refused over "first"."""
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.time_range is not None, p.note
    at = [datetime(2023, mo, d, h, mi, tzinfo=UTC) for mo, d, h, mi in (start, end)]
    assert (p.time_range.start, p.time_range.end) == tuple(at)


def test_the_first_hour_of_data_whose_start_is_unknown_is_not_answered():
    p = plan("how many casts in the first hour of the data", CTX)  # CTX: no oldest event
    assert p.kind == "unanswered" and p.sql is None


@pytest.mark.parametrize(
    ("question", "whole"),
    [
        ("What percentage of all recasts were made by dwr?", "recasts"),
        ("what % of all the recasts were dwr's?", "recasts"),
        ("what % of replies did dwr write", "replies"),
        ("what percentage of all casts were posted by briang", "casts"),
    ],
)
def test_a_share_of_a_named_whole_is_of_all_of_it(question, whole):
    """ "what % of all recasts were dwr's": dwr's recasts out of every recast, where the
    whole had been dwr's own reactions (100%, whatever the data)."""
    query = _query(question)
    assert query.share and query.whole_metric() == whole
    sql = layer.compile_sql(query)
    # the whole is counted without the user: the user's name stands in the part alone
    assert sql.count("'dwr'") + sql.count("'briang'") == 1


def test_a_share_of_its_own_metric_without_a_filter_is_of_its_source():
    """ "the share of replies" alone is of all casts, not of replies (100%)."""
    query = _query("share of replies pct")
    assert query.whole_metric() == "casts"


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("when did the frist pic get posted?", "when did the first pic get posted?"),
        (
            "what pecentage of casts have a pic attached?",
            "what percentage of casts have a pic attached?",
        ),
        ("casts per thread on avrage", "casts per thread on average"),
        ("how many diffrent people replied", "how many different people replied"),
    ],
)
def test_a_typo_of_a_word_read_by_its_pattern_is_read_as_the_word(typo, meant):
    """Words read by pattern before the question is read word by word (a share, a first time,
    a mean) are read through their typos too, and the answer says so."""
    p, q = plan(typo, CTX_SPAN), plan(meant, CTX_SPAN)
    assert p.kind == q.kind == "analytic" and p.sql == q.sql
    assert "read" in p.describe([]).lower()


def test_an_english_word_near_a_pattern_word_is_not_a_typo():
    assert lexicon.pattern_correction("fist", set()) is None  # a word of its own
    assert lexicon.pattern_correction("frist", {"frist"}) is None  # a user's name


@pytest.mark.parametrize(
    "question",
    ["what is the average thread size", "avg thread length", "mean conversation length"],
)
def test_a_threads_size_or_length_is_its_casts(question):
    query = _query(question)
    assert (query.metric, query.average_over) == ("casts", "thread")


@pytest.mark.parametrize(
    ("question", "metric"),
    [
        ("who was recasting the most", "recasts"),
        ("who was resharing the most between midnight and 2am", "recasts"),
        ("which users were replying the most", "replies"),
        ("who was liked the most", "likes_received"),  # a passive stays received
    ],
)
def test_a_progressive_after_was_is_the_doer_not_a_passive(question, metric):
    """ "who was recasting the most" ranks the people recasting, where it had ranked the
    people recast (as "was recast" does)."""
    query = _query(question)
    assert (query.metric, query.group_by) == (metric, "user")


@pytest.mark.parametrize(
    ("question", "metric"),
    [
        ("who mentions people the most", "casts"),
        ("gimme the three accounts with the most casts that mention someone", "casts"),
        ("who is always @-ing people", "casts"),
        ("who was mentioned the most", "mentions"),
        ("most mentioned users", "mentions"),
        ("which users got the most mentions", "mentions"),
    ],
)
def test_people_who_mention_are_the_authors_and_people_mentioned_the_handles(question, metric):
    """ "who mentions people the most" ranks the casts' authors; it had ranked the handles
    mentioned, the answer to "who was mentioned the most"."""
    query = _query(question)
    assert (query.metric, query.group_by) == (metric, "user")
    assert (metric == "casts") == any(c.filter == "has_mention" for c in query.conditions)


@pytest.mark.parametrize(
    "question",
    [
        "Among users who posted at least one cast, who has the lowest follower count?",
        "the author with the smallest follower count among everyone who cast in the sample",
        "which people that have posted have the fewest followers",
    ],
)
def test_people_who_cast_at_least_once_are_the_authors(question):
    """ "users who posted at least one cast", "everyone who cast in the sample": the authors
    filter, where a threshold of one cast on a ranking by followers was refused."""
    query = _query(question)
    assert (query.metric, query.group_by, query.order) == ("followers", "user", "asc")
    assert [c.filter for c in query.conditions] == ["author"]


def test_people_who_posted_about_a_topic_are_not_just_authors():
    p = plan("how many users who posted about wallets", CTX_SPAN)
    assert p.query is None or "author" not in [c.filter for c in p.query.conditions]


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "Which three users replied to the largest number of different people?",
            "reply_reach, by user, top 3",
        ),
        ("who replied to the most diffrent ppl? top 3", "reply_reach, by user, top 3"),
        ("how many different people did dwr reply to", "reply_reach, user = dwr"),
        # the other way round stays the repliers a user received
        ("how many distinct users replied to dwr", "repliers_received, user = dwr"),
    ],
)
def test_the_people_a_user_replied_to_are_counted_by_the_replier(question, reading):
    """ "who replied to the most different people" counts, for each replier, the other users
    they replied to (reply_reach); it had counted the people who replied to each user."""
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("chat", "plain"),
    [
        (
            "Can you pull the mean number of casts per author, leaving briang out of the "
            "calculation?",
            "mean number of casts per author without briang",
        ),
        (
            "avg casts per user if u leave out briang?",
            "mean number of casts per author without briang",
        ),
        (
            "avg casts per user if u leave out briang? he skews evrything",
            "mean number of casts per author without briang",
        ),
        (
            "top 3 repliers not counting briang?? he replys to himself nonstop",
            "top 3 repliers without briang",
        ),
        (
            "how many ppl posted exacly 2 casts, no more no less",
            "how many users posted exactly 2 casts",
        ),
    ],
)
def test_leaving_someone_out_and_a_remark_after_the_question(chat, plain):
    """ "leaving X out of the calculation", "if u leave out X" leave X out; a remark about
    the person after the "?" ("he skews evrything") asks nothing more."""
    p, meant = plan(chat, CTX_SPAN), plan(plain, CTX_SPAN)
    assert p.kind == meant.kind == "analytic", (p.note, meant.note)
    assert p.sql == meant.sql


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        (
            "Which users mentioned dwr in at least one of their casts?",
            "casts, by user, mentions_user = dwr",
        ),
        (
            "Can you pull the list of accounts that mentioned dwr?",
            "casts, by user, mentions_user = dwr",
        ),
        ("who mentioned dwr the most", "casts, by user, top 10, mentions_user = dwr"),
        # a count of the casts mentioning dwr stays the mentions of dwr
        ("how many casts mention dwr", "mentions, user = dwr"),
    ],
)
def test_the_people_who_mentioned_a_user_are_the_authors_of_those_casts(question, reading):
    """ "which users mentioned dwr": the authors of the casts mentioning dwr, where it was
    refused as a ranking of users restricted to one user."""
    assert _query(question).describe() == reading


@pytest.mark.parametrize(
    ("purposed", "plain"),
    [
        ("For a quarterly report, how many casts did dwr post?", "how many casts did dwr post?"),
        ("quick check - how many replies were there?", "how many replies were there?"),
        ("Quick question: who posted the most casts?", "who posted the most casts?"),
        (
            "For an audit of weekend activity I need the number of recasts",
            "I need the number of recasts",
        ),
        (
            "For our investor deck, can you count the distinct authors?",
            "count the distinct authors",
        ),
        ("as part of a growth review: how many likes in total", "how many likes in total"),
    ],
)
def test_a_purpose_said_first_is_no_part_of_the_question(purposed, plain):
    """ "For a creator profile, what's …", "quick check: how many …": the asker's reason for
    asking is no part of what is asked. Its words ("quarterly", "check", "audit") had been
    unknown, and the question refused."""
    p, meant = plan(purposed, CTX_SPAN), plan(plain, CTX_SPAN)
    assert p.kind == meant.kind == "analytic", (p.note, meant.note)
    assert p.sql == meant.sql


@pytest.mark.parametrize(
    ("question", "plain"),
    [
        ("i'm profiling pcdkd: how many casts did he post?", "pcdkd, how many casts did he post?"),
        (
            "we're researching dwr's reach: how many followers does he have",
            "dwr, how many followers does he have",
        ),
        (
            "quick check for a report on pcdkd: how many replies did he write",
            "pcdkd, how many replies did he write",
        ),
    ],
)
def test_the_askers_own_work_said_first_is_a_purpose(question, plain):
    """ "I'm profiling ccarella: how many …", "quick check for a profile of jayce: …": the
    asker's work, said before the question, adds nothing but whom it is about ("profiling"
    and "check" had been unknown words)."""
    p, meant = plan(question, CTX_SPAN), plan(plain, CTX_SPAN)
    assert p.kind == meant.kind == "analytic" and p.sql == meant.sql, (p.note, meant.note)


def test_a_purpose_naming_a_user_keeps_the_user_in_the_question():
    """ "for a report on dwr, how many casts did he post": the purpose says whom the
    question is about, so the user stays, before the question; its other words go ("for a
    short bio of pcdkd, …" had been refused over "short")."""
    q = "for a report on dwr, how many casts did he post?"
    assert _without_purpose(q, CTX_SPAN) == "dwr, how many casts did he post?"
    assert _without_purpose("for a report on growth, how many casts", CTX_SPAN) == "how many casts"
    p = plan("For a short bio of pcdkd, what follower count does his profile show?", CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None
    assert (p.query.metric, p.query.conditions) == ("followers", (Condition("user", "pcdkd"),))


@pytest.mark.parametrize(
    "question",
    [
        "How many replies were posted in the first hour of March 4, 2023 (00:00 to 01:00 UTC)?",
        "replies in the first hour of march 4 (from midnight to 1am)",
        "how many replies from midnight to 1am on march 4 (00:00-01:00 utc)",
    ],
)
def test_a_range_said_twice_is_one_range(question):
    """The same range said again in other words ("the first hour of March 4 (00:00 to 01:00
    UTC)") is that range; the first statement's words had been left over and refused."""
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.time_range is not None, p.note
    start = datetime(2023, 3, 4, tzinfo=UTC)
    assert (p.time_range.start, p.time_range.end) == (start, start + timedelta(hours=1))


def test_two_different_ranges_are_not_read_as_one():
    p = plan("how many casts in the first hour of march 4 (02:00 to 03:00 utc)?", CTX_SPAN)
    assert p.kind == "unanswered" and p.sql is None


@pytest.mark.parametrize(
    ("question", "plain"),
    [
        ("who posted most on march 4? most casts that day", "who posted most on march 4?"),
        ("replies between 3 and 4am, counting all of that hour", "replies between 3 and 4am"),
        (
            "how many likes did dwr get on the 4th, during that day",
            "how many likes did dwr get on the 4th",
        ),
    ],
)
def test_that_day_refers_back_to_the_range(question, plain):
    """ "most casts that day" is the range already said: not a grouping by day, nor a topic
    ("day") to search for. It had been read as one or the other."""
    p, meant = plan(question, CTX_SPAN), plan(plain, CTX_SPAN)
    assert p.kind == meant.kind == "analytic", (p.note, meant.note)
    assert p.sql == meant.sql


@pytest.mark.parametrize(
    "question",
    [
        "how many casts did dwr post and how many likes did he get?",
        "how many likes did dwr get, and how many casts did he post that day",
        "how many replies were there? and how many recasts?",
        "how many casts and how many distinct users",
    ],
)
def test_two_numbers_asked_are_refused_not_merged(question):
    """An answer holds one number: "how many casts … and how many likes …" had been answered
    with the likes alone (the casts taken for what was liked), or with likes and recasts
    summed as reactions. It is refused, and the note names both."""
    p = plan(question, CTX_SPAN)
    assert p.kind == "unanswered" and p.sql is None
    assert "numbers" in p.note and "one at a time" in p.note


@pytest.mark.parametrize(
    "question",
    [
        "recasts per day?? how many reshares happened each day",
        "how many users posted? how many people",
    ],
)
def test_a_number_asked_twice_is_one_number(question):
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic", p.note


@pytest.mark.parametrize(
    ("chat", "plain"),
    [
        ("avg casts per person in the 3am hr?", "average casts per person in the 3am hour?"),
        ("replies per hr", "replies per hour"),
        ("casts in the last 2 hrs", "casts in the last 2 hours"),
        ("top 3 ppl posting btwn 3-4am?", "top 3 people posting between 3-4am?"),
        ("what's pcdkd's current follower count?", "what's pcdkd's follower count?"),
        ("what share of all 888 casts are replies?", "what share of all casts are replies?"),
        ("% of the 888 casts that are replies", "% of the casts that are replies"),
    ],
)
def test_chat_abbreviations_and_restated_sizes(chat, plain):
    """ "hr" is an hour and "btwn" between; a profile figure is "current" only; the size
    of a share's whole said beside it ("all 888 casts") is no threshold. Each had been
    refused."""
    p, meant = plan(chat, CTX_SPAN), plan(plain, CTX_SPAN)
    assert p.kind == meant.kind == "analytic", (p.note, meant.note)
    assert p.sql == meant.sql


@pytest.mark.parametrize(
    ("question", "whole_user"),
    [
        ("What percentage of casts mention at least one user?", False),
        ("% of casts that @ someone?", False),
        ("what share of dwr's casts mention someone", True),
        ("what share of casts by briang tag another user?", True),
    ],
)
def test_a_share_of_casts_that_mention_is_of_casts(question, whole_user):
    """ "what percentage of casts mention someone": casts with a mention out of the casts
    the question names (of one user's, when it names one). It had been refused: mentions,
    one cast holding several, are no part of the casts."""
    query = _query(question)
    assert query.share and query.metric == "casts" and query.whole_metric() == "casts"
    assert Condition("has_mention") in query.conditions
    sql = layer.compile_sql(query)
    assert sql.count("LENGTH(t.mentions) > 0") == 1  # in the part only
    users = sql.count("'dwr'") + sql.count("'briang'")
    assert users == (2 if whole_user else 0)  # in the whole too


@pytest.mark.parametrize(
    ("question", "metric"),
    [
        ("Among users who posted after 4am UTC, which three have the most followers?", "followers"),
        ("most followed ppl who cast between 3 and 4am? top 5", "followers"),
        ("which accounts active from 05:00 utc on follow the most accounts", "following"),
    ],
)
def test_a_profile_figure_of_the_users_who_cast_in_a_range(question, metric):
    """ "Among users who posted after 4am, which three have the most followers": a profile
    figure has no history, so the range says when its users cast (``Query.among``). It had
    been refused as a snapshot given a time range."""
    p = plan(question, CTX_SPAN)
    assert p.kind == "analytic" and p.query is not None, p.note
    q = p.query
    assert q.metric == metric and q.group_by == "user" and q.time_range is None
    assert q.among is not None and q.among.metric == "casts" and q.among.time_range is not None
    assert "of users with casts" in q.describe()


def test_a_profile_figure_at_a_time_is_still_refused():
    """Without a verb of casting the range would be a time of the figure itself, which the
    profiles do not keep."""
    p = plan("who had the most followers between 3 and 4am?", CTX_SPAN)
    assert p.kind == "unanswered" and p.sql is None


@pytest.mark.parametrize(
    ("question", "metric", "limit", "whole"),
    [
        (
            "What percentage of all casts came from the three most active users?",
            "casts",
            3,
            "casts",
        ),
        ("share of casts by the top 10 posters", "casts", 10, "casts"),
        ("what % of replies did the top 2 repliers write", "replies", 2, "replies"),
    ],
)
def test_a_share_of_the_top_users_is_of_their_rows_alone(question, metric, limit, whole):
    """ "What percentage of all casts came from the five most active users": the casts of
    the ranking's first five out of the whole (``Query.among``). It had been refused: a
    share grouped by user had no whole to divide by."""
    q = _query(question)
    assert q.share and q.group_by is None and q.metric == metric
    assert q.among is not None and (q.among.metric, q.among.limit) == (metric, limit)
    assert q.whole_metric() == whole
    sql = layer.compile_sql(q)
    assert f"LIMIT {limit}" in sql


@pytest.mark.parametrize(
    ("question", "metric", "having"),
    [
        ("What share of the authors posted exactly one cast?", "casts", ("=", 1.0)),
        ("what % of posters cast more than 3 times", "casts", (">", 3.0)),
        ("what share of repliers replied at least 5 times", "replies", (">=", 5.0)),
        ("percentage of the repliers who replied 5+ times", "replies", (">=", 5.0)),
    ],
)
def test_a_share_of_people_passing_a_threshold_is_of_those_with_any(question, metric, having):
    """ "what share of the authors posted exactly one cast": the users passing the threshold
    out of the users with any of the metric's rows (the layer's ``_share_of_groups``). It had
    been refused: a threshold with nothing to compare."""
    q = _query(question)
    assert (q.share, q.count_over, q.metric, q.having) == (True, "user", metric, having)
    sql = layer.compile_sql(q)
    assert "COUNT_IF" in sql and "HAVING" not in sql  # the threshold counts, it filters nothing


def test_a_share_of_people_that_users_with_none_would_pass_is_refused():
    """ "what share of users posted fewer than 2 casts" needs the users with no cast, which
    the rows grouped by author do not hold."""
    p = plan("what share of users posted fewer than 2 casts", CTX_SPAN)
    assert p.kind == "unanswered" and "with none" in p.note


@pytest.mark.parametrize(
    ("question", "metric", "count_over", "condition"),
    [
        ("how many users replied to dwr more than twice", "replies", "user", "to_user"),
        ("how many people liked dwr's casts at least 3 times", "likes", "user", "to_user"),
        ("how many users mentioned dwr more than once", "casts", "user", "mentions_user"),
        ("how many users did dwr recast more than once", "recasts", "to_user", "user"),
        ("how many users did dwr reply to more than twice", "replies", "to_user", "user"),
        ("how many different ppl did dwr respond to 2 or more times", "replies", "to_user", "user"),
    ],
)
def test_users_counted_by_a_threshold_on_one_named_user(question, metric, count_over, condition):
    """ "how many users replied to dwr more than twice": the repliers, each by their replies
    to dwr. The replies dwr received had been grouped by dwr, a count of one group (1 or 0
    whatever the repliers did). "How many users did dwr reply to more than twice" had been
    read as the number of users he replied to, with a threshold on nothing, and refused."""
    q = _query(question)
    assert (q.metric, q.count_over) == (metric, count_over)
    assert [c.filter for c in q.conditions if c.value == "dwr"] == [condition]


@pytest.mark.parametrize(
    ("question", "metric", "group", "condition"),
    [
        ("dwr recast a handful of posts. whose were they", "recasts", "to_user", "user"),
        ("briang replied to several people, who were they?", "replies", "to_user", "user"),
        ("pcdkd answered a couple of users -- who?", "replies", "to_user", "user"),
        ("somebody reshared dwr's posts; who was it?", "recasts", "user", "to_user"),
    ],
)
def test_who_or_whose_after_a_statement_is_asked_of_it(question, metric, group, condition):
    """ "greg recast a few posts - whose were they?": the users whose casts the statement's
    rows went to. The statement alone had been read as a count of its rows, or refused over
    "a few"; "replied to some people" had been read as the replies the user received."""
    q = _query(question)
    assert (q.metric, q.group_by) == (metric, group)
    assert [c.filter for c in q.conditions] == [condition]


@pytest.mark.parametrize(
    ("question", "metric"),
    [
        ("how many times did dwr reply to some people", "replies"),
        ("how many replies did dwr write to a few users", "replies"),
        ("how many times was dwr replied to", "replies_received"),
    ],
)
def test_a_vague_amount_of_people_replied_to_says_who_replied(question, metric):
    """ "dwr replied to some people": dwr made the replies, whoever got them; "some" before
    the people had made them the replies he received. Replied to himself, he received them."""
    q = _query(question)
    assert (q.metric, [c.filter for c in q.conditions]) == (metric, ["user"])


@pytest.mark.parametrize(
    ("question", "part_time", "base"),
    [
        # the range said of the part, after the whole: of all casts
        ("what % of all the posts were made between 2am and 3am?", True, ()),
        ("what share of casts happened after 4am", True, ()),
        # the range in the whole: of the casts in it
        ("what share of casts after 4am were replies", False, ()),
        ("what % of casts posted between 2am and 3am were replies", False, ()),
        # the user named in the whole: of the user's casts
        ("what percentage of briang's casts were posted after 4am", True, ("user",)),
    ],
)
def test_a_shares_time_range_is_the_parts_or_the_wholes_as_said(question, part_time, base):
    """ "what percent of all the posts were made between 3 and 4": of all posts (it had been
    refused, the whole taking the range too: a share of casts in themselves). "What
    percentage of dwr's casts were posted after 3am": of dwr's casts (it had been of all
    casts after 3am)."""
    q = _query(question)
    assert (q.share, q.part_time, q.base) == (True, part_time, base)
    whole = layer.compile_sql(q).split("NULLIF", 1)[1]
    assert ("timestamp" in whole) is not part_time


@pytest.mark.parametrize(
    ("question", "metric", "filters"),
    [
        # the user who mentions: their casts that mention anyone
        ("how many of pcdkd's posts tag someone?", "casts", ["user", "has_mention"]),
        (
            "how many casts did pcdkd write that mention another user",
            "casts",
            ["user", "has_mention"],
        ),
        ("how many mentions did pcdkd make", "casts", ["user", "has_mention"]),
        # named first, then "he" mentions (and chat's "@'d", a typo of "someone")
        ("pcdkd - how many posts where he @'d somone", "casts", ["user", "has_mention"]),
        (
            "dwr: in how many of his casts does he tag another user?",
            "casts",
            ["user", "has_mention"],
        ),
        ("pcdkd: how many casts mention him", "mentions", ["user"]),
        # the user mentioned: the casts that mention them
        ("how many casts mention pcdkd", "mentions", ["user"]),
        ("how many mentions did pcdkd get", "mentions", ["user"]),
        ("how many times was pcdkd mentioned", "mentions", ["user"]),
    ],
)
def test_mentions_made_by_a_user_are_their_casts_that_mention_someone(question, metric, filters):
    """ "how many of jayce's posts tag another person": jayce's casts with a mention. It had
    counted the casts that mention jayce, the user read as the one mentioned."""
    q = _query(question)
    assert (q.metric, [c.filter for c in q.conditions]) == (metric, filters)


@pytest.mark.parametrize(
    ("question", "metric", "filters"),
    [
        # replies said as included are among the casts counted, whoever's they are
        ("pcdkd casts per hour, counting his replies too", "casts", ["user"]),
        ("how many casts did dwr post, counting replies too", "casts", ["user"]),
        ("briang vs pcdkd, casts each, incl replies", "casts", ["user"]),
        # answers left out are replies left out
        ("how many posts did pcdkd write, not counting his answers", "casts", ["user", "reply"]),
        ("pcdkd how many top lvl casts", "casts", ["user", "top_level"]),
    ],
)
def test_replies_included_or_left_out_in_other_words(question, metric, filters):
    """ "emmabwaldron posts per day, counting her replies too": her casts (it had counted the
    replies she received, "her replies" read as what her casts got); "not counting his
    answers" leaves replies out (it had counted them)."""
    q = _query(question)
    assert (q.metric, [c.filter for c in q.conditions]) == (metric, filters)


@pytest.mark.parametrize(
    ("question", "filters"),
    [
        ("mean following count per profile, not just the ones who posted", []),
        (
            "average followers of all accounts in the users table, including those that never cast",
            [],
        ),
        # the authors alone when only they are named
        ("average followers of users who posted", ["author"]),
    ],
)
def test_every_profile_said_against_the_authors_is_every_profile(question, filters):
    """ "avg followers per profile, all profiles not only the ppl who posted": every profile.
    The verb of casting in the contrast had made it the authors' average."""
    q = _query(question)
    assert q.average_over == "user" and [c.filter for c in q.conditions] == filters


@pytest.mark.parametrize(
    ("question", "metric", "filters"),
    [
        ("who posted the latest top-level cast?", "last_cast_at", ["top_level"]),
        ("who made the first image post", "first_cast_at", ["has_image"]),
        ("who made the lastt reply", "last_cast_at", ["reply"]),
    ],
)
def test_the_first_or_last_cast_of_a_kind_names_its_author(question, metric, filters):
    """ "who made the last top-level cast": the author of the latest top-level cast. The kind
    between "last" and the cast had left "last" unread, and the question went to a ranking
    of users by a topic; "lastt" is a typo of "last"."""
    q = _query(question)
    assert (q.metric, q.group_by, [c.filter for c in q.conditions]) == (metric, "user", filters)


@pytest.mark.parametrize(
    ("question", "filters"),
    [
        ("how many different users tagged somebody in a cast?", ["has_mention"]),
        ("how many accounts @mentioned someone atleast once", ["has_mention"]),
        ("how many users mentioned pcdkd", ["mentions_user"]),
    ],
)
def test_people_counted_by_their_mentions_are_the_authors_who_mention(question, filters):
    """ "how many different people tagged someone in a post": the authors of casts that
    mention anyone (47 on the sample). It had been refused: counting users by mentions."""
    q = _query(question)
    assert q.metric == "distinct_authors" and [c.filter for c in q.conditions] == filters


@pytest.mark.parametrize(
    "question",
    [
        "who looked at pcdkd's profile page?",
        "how many profile views did dwr get",
        "who visited my profile",
    ],
)
def test_profile_visits_are_refused_as_not_held(question):
    """ "Who looked at dwr's profile page?": no event records a profile viewed; it had been
    answered with a search of casts."""
    p = plan(question, CTX_SPAN)
    assert p.kind == "unanswered" and "profile visits or views" in (p.note or "")


def test_casts_about_profile_pages_are_still_searched():
    assert plan("casts about profile pages", CTX_SPAN).kind == "semantic"


def test_the_other_direction_ruled_out_is_no_part_of_the_question():
    """ "the recasts dwr made himself, not the recasts his own casts received": the recasts
    he made. The ruled-out "received" had made it the recasts his casts got."""
    q = _query("hourly breakdown of the recasts pcdkd made, not the recasts his own casts got")
    assert (q.metric, q.group_by) == ("recasts", "hour")


@pytest.mark.parametrize(
    ("question", "group", "limit"),
    [
        ("Of the casts posted between 2am and 3am, which two got the most replies?", "cast", 2),
        ("among the posts by pcdkd, which 3 were recast the most", "cast", 3),
        ("which three have the most followers", "user", 3),
    ],
)
def test_which_n_after_the_casts_named_ranks_those_casts(question, group, limit):
    """ "Of the posts made between 1 and 2, which three got the most answers?": three of the
    posts. "Which three" had been read as three users, and refused beside the posts."""
    q = _query(question)
    assert (q.group_by, q.limit) == (group, limit)


@pytest.mark.parametrize(
    "question",
    [
        "which cast mentions the most users?",
        "which single post tagged the largest number of people",
        "whcih post tags the most ppl at once",
    ],
)
def test_the_cast_mentioning_the_most_people_ranks_casts_by_whom_they_mention(question):
    """ "Which single post tagged the largest number of people?": casts ranked by the users
    each mentions. It had been refused (counting users by mentions) or searched as a topic."""
    q = _query(question)
    assert (q.metric, q.group_by, q.order) == ("mentioned_users", "cast", "desc")


@pytest.mark.parametrize(
    ("question", "metric", "filters"),
    [
        # a kind of cast defined again in brackets: no filter more
        (
            "how many casts with a link (a URL in the embeds) did pcdkd post",
            "casts",
            ["user", "has_link"],
        ),
        ("how many posts have a picture (e.g. a jpg or an imgur link)?", "casts", ["has_image"]),
        ("how many image files did pcdkd share", "casts", ["user", "has_image"]),
        # how the figure is reckoned, said again
        ("how many recasts after 4am, going by the time of the recast", "recasts", []),
    ],
)
def test_a_definition_or_a_reckoning_said_again_adds_nothing(question, metric, filters):
    """ "a cast with an image (an i.imgur.com embed or an image file)": images (its site had
    been read as one more filter, imgur alone, or "file" left unknown); "going by the time
    of the recast" says how the range applies, which it already does."""
    q = _query(question)
    assert (q.metric, sorted(c.filter for c in q.conditions)) == (metric, sorted(filters))


@pytest.mark.parametrize(
    ("question", "plain"),
    [
        # why the asker asks, after the question or before it with a dash
        (
            "how many replies did pcdkd write? trying to see if he's one of our top talkers",
            "how many replies did pcdkd write?",
        ),
        (
            "how many recasts were there? just want to know how busy resharing was",
            "how many recasts were there?",
        ),
        (
            "we're looking at link previews - how many casts had a link after 4am?",
            "how many casts had a link after 4am?",
        ),
        # chat's "cnt", and "half past midnight" on a clock
        ("reply cnt 2-3am utc", "replies between 2am and 3am utc"),
        (
            "how many casts between half past midnight and 1:30 utc",
            "how many casts between 00:30 and 01:30 utc",
        ),
    ],
)
def test_why_the_asker_asks_is_no_part_of_the_question(question, plain):
    """ "how many pics has jayce posted? trying to see if he's one of our heavy image
    sharers": the remark after the question asks nothing ("heavy", "sharers" had been
    unknown words); one that asks for more ("want them per hour") is still read."""
    p, meant = plan(question, CTX_SPAN), plan(plain, CTX_SPAN)
    assert p.kind == meant.kind == "analytic" and p.sql == meant.sql, (p.note, meant.note)


def test_a_remark_that_asks_for_more_is_still_read():
    q = _query("how many casts? want them per hour")
    assert (q.metric, q.group_by) == ("casts", "hour")


@pytest.mark.parametrize(
    ("question", "metric", "group", "filters"),
    [
        # "I mean" says it again, never a mean
        (
            "how many people started a thread? i mean posted something that wasn't a reply",
            "distinct_authors",
            None,
            ["reply", "top_level"],  # not a reply, and top-level
        ),
        # what is counted said again against the casts
        (
            "how many users posted links? i want users, not posts",
            "distinct_authors",
            None,
            ["has_link"],
        ),
        # "(replies count)": among the casts counted
        ("pcdkd's casts by hour (replies count)", "casts", "hour", ["user"]),
        # people who share links are the ones who post them
        ("who are the top 3 link sharers", "casts", "user", ["has_link"]),
    ],
)
def test_what_is_counted_said_again_in_the_askers_words(question, metric, group, filters):
    """ "… I mean posted something that wasn't a reply, and I want people, not posts": the
    authors of top-level casts ("mean" had been read as an average, "people, not posts" as
    people who never posted: 0, a wrong answer); "(replies count)" had made the replies the
    user received; "sharers" had been unknown."""
    q = _query(question)
    assert (q.metric, q.group_by) == (metric, group)
    assert sorted(c.filter for c in q.conditions) == sorted(filters)
