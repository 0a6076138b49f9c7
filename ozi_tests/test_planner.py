"""The offline planner and time ranges, as pure functions (no data, no model)."""

from datetime import UTC, datetime

import pytest

from ozi_assets.questions.llm import grounding_error
from ozi_assets.questions.planner import Context, literal, plan
from ozi_assets.questions.timerange import parse_time_range
from ozi_resources.sql_guard import guard
from ozi_resources.warehouse import PUBLIC_TABLES

NOW = datetime(2023, 3, 4, 6, 0, 27, tzinfo=UTC)
CTX = Context(users={"dwr": 3, "briang": 548, "v": 2}, now=NOW)


@pytest.mark.parametrize(
    ("question", "kind", "rule"),
    [
        ("How many casts did dwr post?", "analytic", "count_by_user"),
        ("How many recasts did dwr make?", "analytic", "count_by_user"),
        ("How many replies did @briang get today?", "analytic", "count_by_user"),
        ("Who are the top 5 authors by number of casts?", "analytic", "top_users"),
        ("Who posted the most?", "analytic", "top_users"),
        ("Who got the most replies?", "analytic", "most_replied_to"),
        ("Casts per hour", "analytic", "per_hour"),
        ("Which hour was busiest?", "analytic", "per_hour"),
        ("What are the top 10 terms?", "analytic", "top_terms"),
        ("How many casts mention denver?", "analytic", "count_total"),
        ("How many users are there?", "analytic", "count_total"),
        ("What are people saying about ETHDenver?", "semantic", "semantic_topic"),
        ("Which users talked about invites the most?", "hybrid", "hybrid_topic_users"),
        ("Who talked about Denver?", "hybrid", "hybrid_topic_users"),
        ("gm frens", "semantic", "semantic_fallback"),
        ("What is the average length of a cast?", "unanswered", "none"),
        ("How many casts did nobody_here post?", "unanswered", "count_by_user"),
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
        "Most mentioned users",
        "Most recast casts",
        "How many casts between 03:00 and 04:00 UTC on March 4, 2023?",
    ]
    for question in questions:
        p = plan(question, CTX)
        assert p.sql, question
        guard(p.sql, PUBLIC_TABLES)


def test_user_values_are_quoted_not_spliced():
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
        ("between 11pm and 1am", datetime(2023, 3, 4, 23, tzinfo=UTC), None),
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
