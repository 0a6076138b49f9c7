"""Hybrid search as pure functions: reciprocal rank fusion, compound words in the keyword
index, the keyword coverage floor and the planner's reading of "who talked about X the most"
(no data, no model). The searches on the sample are in test_questions.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ozi_assets.questions.fusion import reciprocal_rank_fusion
from ozi_assets.questions.keywords import (
    KeywordHit,
    TermMatch,
    alternatives,
    compound_parts,
    compounds,
    covering,
    initials,
    shorthand,
    topical,
    topical_coverage,
    with_parts,
)
from ozi_assets.questions.planner import Context, plan


@pytest.mark.parametrize(
    ("lists", "k", "order"),
    [
        # one list: its own order
        ([["a", "b", "c"]], 60, ["a", "b", "c"]),
        # agreement beats a single first place: b is 2nd and 1st, a is 1st and absent
        ([["a", "b"], ["b", "c"]], 60, ["b", "a", "c"]),
        # equal fused scores: the better best rank first, then the key
        ([["a", "b"], ["b", "a"]], 60, ["a", "b"]),
        ([["x"], ["y"]], 60, ["x", "y"]),
        # k = 0: a first place in one list (1) outweighs 2nd and 3rd in both (1/2 + 1/3)
        ([["a", "b", "c"], ["d", "c", "b"]], 0, ["a", "d", "b", "c"]),
        # large k: agreement wins (2/(k+2) + ... > 1/(k+1))
        ([["a", "b", "c"], ["d", "c", "b"]], 60, ["b", "c", "a", "d"]),
        # a key repeated within one list counts once, at its first place
        ([["a", "a", "b"], ["b"]], 60, ["b", "a"]),
        ([[], []], 60, []),
    ],
)
def test_reciprocal_rank_fusion_order(lists, k, order):
    assert [f.key for f in reciprocal_rank_fusion(lists, k)] == order


def test_fused_items_carry_their_ranks_and_score():
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=60)
    by_key = {f.key: f for f in fused}
    assert by_key["b"].ranks == (2, 1) and by_key["b"].score == pytest.approx(1 / 62 + 1 / 61)
    assert by_key["a"].ranks == (1, None) and by_key["a"].score == pytest.approx(1 / 61)
    assert by_key["c"].ranks == (None, 2)
    assert [f.rank for f in fused] == [1, 2, 3]


def test_negative_k_is_refused():
    with pytest.raises(ValueError, match="k must be"):
        reciprocal_rank_fusion([["a"]], k=-1)


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("ETHDenver", ("eth", "denver")),
        ("EthDenver", ("eth", "denver")),
        ("MetaMask", ("meta", "mask")),
        ("ChatGPT", ("chat", "gpt")),
        ("Denver", ()),  # one part
        ("denver", ()),  # one case
        ("GM", ()),
        ("iPhone", ()),  # a one-letter part
        ("fEcU", ()),  # the random case of a URL id
        ("Web3Auth", ()),  # digits
        # a plural acronym is one word, not "NF" and "Ts"
        ("NFTs", ()),
        ("DAOs", ()),
        ("APIs", ()),
        ("ChatGPTs", ("chat", "gpt")),
        ("MetaMasks", ("meta", "masks")),  # a plural after a lower-case letter stays
    ],
)
def test_compound_parts(word, parts):
    assert compound_parts(word) == parts


def test_compounds_learnt_from_casts_split_the_lower_case_spelling_too():
    known = compounds(["Who's at #ETHDenver?", "wallet: MetaMask"])
    assert known == {"ethdenver": ("eth", "denver"), "metamask": ("meta", "mask")}
    assert with_parts("thanks @ethdenver", known) == "thanks @ethdenver eth denver"
    assert with_parts("in Denver", known) == "in Denver"


def _hit(key: str, coverage: float) -> KeywordHit:
    return KeywordHit(key, 1, "u", "2023-03-04T00:00:00+00:00", "", 1.0, coverage)


@pytest.mark.parametrize(
    ("coverage", "kept"), [(0.0, ["a", "b", "c"]), (0.5, ["a", "c"]), (1.0, ["a"])]
)
def test_covering_keeps_order_and_drops_casts_holding_little_of_the_query(coverage, kept):
    hits = [_hit("a", 1.0), _hit("b", 0.3), _hit("c", 0.5)]
    assert [h.hash for h in covering(hits, coverage)] == kept


def _term(word: str, idf: float, *hashes: str) -> TermMatch:
    return TermMatch(word, idf, frozenset(hashes))


def test_a_rare_side_word_far_from_the_query_does_not_outweigh_the_topic():
    # "the Lisbon summit": three casts name Lisbon and are near the query in meaning; the one
    # cast saying "summit" (rarer, so a larger IDF) is not
    terms = [_term("lisbon", 1.5, "a", "b", "c"), _term("summit", 2.8, "d")]
    near = {"a", "b", "c", "x"}
    plain = topical_coverage(terms, near, power=0.0)
    assert plain["d"] == 1.0 and plain["a"] == pytest.approx(1.5 / 2.8)
    weighed = topical_coverage(terms, near, power=0.5)
    assert weighed == {"a": 1.0, "b": 1.0, "c": 1.0, "d": 0.0}


def test_terms_that_agree_alike_keep_their_idf_weights():
    # both terms' casts near the query: a cast holding both covers it, one holding the
    # commoner word alone less, as with the plain coverage
    terms = [_term("purple", 2.0, "a", "b"), _term("dao", 1.0, "a", "c")]
    near = {"a", "b", "c"}
    assert topical_coverage(terms, near, 0.5) == pytest.approx({"a": 1.0, "b": 2 / 3, "c": 1 / 3})
    # half the casts of one term near, all of the other's: its weight falls by sqrt(1/2)
    partly = topical_coverage(terms, {"a", "b"}, 0.5)
    assert partly["c"] == pytest.approx((0.5**0.5) / (2 + 0.5**0.5))


def test_no_term_near_the_query_falls_back_to_the_idf_weights():
    terms = [_term("lisbon", 1.5, "a"), _term("summit", 3.0, "b")]
    assert topical_coverage(terms, set(), 0.5) == {}
    assert topical([terms], set(), 0.5) == {"a": 0.5, "b": 1.0}
    assert topical([], {"a"}, 0.5) == {}


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("nfts or minting", ["nfts", "minting"]),
        ("ai / chatgpt", ["ai", "chatgpt"]),
        ("metamask or rainbow and other wallets", ["metamask", "rainbow", "other wallets"]),
        ("purple dao", ["purple dao"]),
        ("rugby league versus nfl", ["rugby league versus nfl"]),
    ],
)
def test_a_topic_listing_several_items_is_read_item_by_item(text, items):
    assert alternatives(text) == items


@pytest.mark.parametrize(
    ("item", "short"),
    [
        ("user interface", "ui"),
        ("Large Language Models", "llm"),
        ("web3", None),  # one word: no initials
        ("formula 1", None),  # digits are no letters of a word
    ],
)
def test_initials_of_an_item_of_several_words(item, short):
    assert initials(item) == short


@pytest.mark.parametrize(
    ("item", "forms"),
    [
        ("good-morning", ["gm"]),  # hyphen or space, any case
        ("Good Night", ["gn"]),
        ("GM", ["good morning"]),  # and back: a search for "gm" holds the phrase
        ("ty", ["thank you", "thanks"]),
        ("let’s go", ["lfg"]),  # a curly apostrophe as a straight one
        ("morning", []),  # a word of the phrase alone is not the phrase
        ("wallets", []),
    ],
)
def test_the_mediums_shorthand_is_read_both_ways(item, forms):
    assert shorthand(item) == forms


def test_a_cast_about_one_item_of_a_listed_topic_covers_it():
    # "sailing or kitesurfing": a cast about either covers the topic, not half of it
    sailing = [_term("sailing", 2.0, "a", "c")]
    kitesurfing = [_term("kitesurfing", 3.0, "b", "c")]
    near = {"a", "b", "c"}
    assert topical([sailing, kitesurfing], near, 0.5) == {"a": 1.0, "b": 1.0, "c": 1.0}
    # read as one item, the cast naming only the commoner sport holds 2/5 of it
    assert topical([sailing + kitesurfing], near, 0.5)["a"] == pytest.approx(0.4)
    # a vague tail ("… and that kind of thing") whose casts are all far covers nothing
    vague = [_term("kind", 1.5, "x"), _term("thing", 1.2, "y")]
    assert topical([sailing, vague], near, 0.5) == {"a": 1.0, "c": 1.0}


CTX = Context(users={"dwr": 3, "ccarella": 472}, now=datetime(2023, 3, 4, 6, 0, 27, tzinfo=UTC))


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        ("Which users talked about invites the most?", "invites"),
        ("Who posted the most about crypto wallets?", "crypto wallets"),
        ("Who was most vocal about wallet apps?", "wallet apps"),
        ("Which accounts cast about State of Origin and the NRL?", "state of origin and nrl"),
        ("Who said gm the most?", "gm"),
        ("Which accounts greeted people with 'gm' most often?", "gm"),
        ("Top 3 people discussing Purple", "purple"),
        ("Which users talked about Denver the most in the last 2 hours?", "denver"),
        # a list of topics keeps its commas, as alternatives
        (
            "Who talked about sailing, surfing and kitesurfing the most?",
            "sailing or surfing and kitesurfing",
        ),
        ("who posted most about Lens, Nostr or Bluesky", "lens or nostr or bluesky"),
        # an agent noun made of the topic names the people who post about it
        ("top wagmi-ers", "wagmi"),
        ("who are the biggest nft-ers?", "nft"),
        # a comma before a clause still ends the topic
        ("Which users talked about airdrops, and how many casts each?", "airdrops"),
        ("Who cast about airdrops, by number of casts?", "airdrops"),
        # "persons", a verb of speaking, and examples after ", like" (not the reaction)
        ("Which persons are speaking most about sailing?", "sailing"),
        (
            "which users talk most about the sea, like sailing or surfing?",
            "sea or sailing or surfing",
        ),
        (
            "who posted the most about boats, such as yachts or dinghies",
            "boats or yachts or dinghies",
        ),
    ],
)
def test_users_ranked_by_a_topic_are_hybrid(question, topic):
    p = plan(question, CTX)
    assert (p.kind, p.rule, p.search) == ("hybrid", "hybrid_topic_users", topic)


@pytest.mark.parametrize(
    "question",
    [
        "Who posted the most?",  # a ranking over the layer, no topic
        "What are people saying about invites?",  # no one ranked: a search
        "What did dwr say about invites?",
    ],
)
def test_questions_without_a_ranked_topic_are_not_hybrid(question):
    assert plan(question, CTX).kind != "hybrid"


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        # the topic stands before the subject, or in the clause before the one that asks
        ("summer of protocols who posted most", "summer protocols"),
        ("who's the biggest F1 fan here, as in who posted the most about it?", "f1"),
        ("Which accounts are most engaged in the @purple conversation, by casts?", "@purple"),
    ],
)
def test_a_ranked_topic_named_away_from_its_verb(question, topic):
    assert plan(question, CTX).search == topic


@pytest.mark.parametrize(
    ("question", "topic", "fid"),
    [
        ("How does ccarella talk about @purple?", "@purple", 472),
        ("What did dwr say about invites?", "invites", 3),
        ("What are people writing about wallets?", "wallets", None),
        # the owner of the casts, or the one who wrote, before the topic
        ("Pull up ccarella's posts regarding onboarding", "onboarding", 472),
        ("what are dwr's thoughts on airdrops?", "airdrops", 3),
        ("tell me what dwr wrote about onboarding", "onboarding", 3),
        # near misses: a possessive inside the topic, a user who is the topic
        ("What are people saying about ccarella's proposal?", "ccarella s proposal", None),
        ("What are people saying about dwr?", "dwr", None),
    ],
)
def test_a_search_reads_its_topic_after_any_verb_of_saying_and_its_author(question, topic, fid):
    p = plan(question, CTX)
    assert (p.kind, p.rule, p.search, p.fid) == ("semantic", "semantic_topic", topic, fid)


def test_a_display_name_with_the_username_beside_it_names_the_author():
    ctx = Context(users=CTX.users, now=CTX.now, display_names={"chris carella": "ccarella"})
    p = plan("Show what Chris Carella (ccarella) posted regarding DAOs", ctx)
    assert (p.kind, p.search, p.fid) == ("semantic", "daos", 472)


@pytest.fixture(scope="module")
def keyword_index(tmp_path_factory):
    """A keyword index over a handful of casts in a plain DuckDB: the real fts extension from
    its wheel, the index built as for a lake snapshot (it reads a ``casts`` relation)."""
    import duckdb

    from ozi_assets.questions.keywords import KeywordIndex

    casts = [
        (1, 10, "ann", "2023-03-04 01:00:00+00", "Who's at #ETHDenver? Great week"),
        (2, 10, "ann", "2023-03-04 02:00:00+00", "thanks @ethdenver for a great week"),
        (3, 20, "bob", "2023-03-04 03:00:00+00", "Denver is a real city, we walked everywhere"),
        (4, 20, "bob", "2023-03-04 04:00:00+00", "welcome to farcaster!"),
        (5, 30, "cy", "2023-03-04 05:00:00+00", "the dao voted on a new proposal"),
        (6, 30, "cy", "2023-03-04 05:30:00+00", "Purple dao: a long cast " + "word " * 40),
        (7, 40, "di", "2023-03-04 06:00:00+00", "invites are back, inviting friends now"),
        (8, 40, "di", "2023-03-04 06:10:00+00", "my favourite cast today"),
        (9, 50, "ed", "2023-03-04 06:20:00+00", "my ENS name is up"),
        (10, 50, "ed", "2023-03-04 06:30:00+00", "https://en.m.wikipedia.org/wiki/Ens?hl=en-GB"),
        (11, 60, "fa", "2023-03-04 06:40:00+00", "new episode on youtube.com/watch?v=Ens"),
    ]
    reader = duckdb.connect()
    reader.execute(
        'CREATE TABLE casts (hash VARCHAR, fid BIGINT, username VARCHAR, "timestamp" '
        "TIMESTAMPTZ, text VARCHAR)"
    )
    reader.executemany(
        "INSERT INTO casts VALUES (?, ?, ?, ?, ?)", [(f"0x{h}", *rest) for h, *rest in casts]
    )
    index = KeywordIndex(reader, 1, str(tmp_path_factory.mktemp("extensions")))
    yield index
    index.close()


def _found(index, text, **kwargs):
    from ozi_resources.vectors import SearchFilter

    flt = SearchFilter(**kwargs.pop("flt", {}))
    return {h.hash: h for h in index.search(text, flt, 100, **kwargs)}


@pytest.mark.parametrize(
    ("text", "hashes"),
    [
        ("Denver", {"0x1", "0x2", "0x3"}),  # "#ETHDenver" and, learnt from it, "@ethdenver"
        ("ETHDenver", {"0x1", "0x2", "0x3"}),
        ("welcome", {"0x4"}),  # not a stop word here
        ("invitations", {"0x7"}),  # stemmed: invites, inviting
        ("the", set()),  # only stop words: nothing
        # digits leave an empty term, which would match every cast ending like "Who's":
        # only runs of two letters or more are searched
        ("formula1", set()),
        ("f1", set()),
        ("web3 denver", {"0x1", "0x2", "0x3"}),
        # "ens" stems to "en": only the cast that names it, not codes in URLs ("en.m.",
        # "hl=en-GB", "?v=Ens"), which are cut to their site
        ("ENS", {"0x9"}),
        ("wikipedia", {"0x10"}),
        ("youtube", {"0x11"}),
    ],
)
def test_keyword_index_matches_terms_compounds_and_stems(keyword_index, text, hashes):
    assert set(_found(keyword_index, text)) == hashes


def test_keyword_hits_take_the_payload_filters(keyword_index):
    assert set(_found(keyword_index, "denver", flt={"fid": 20})) == {"0x3"}
    since, until = 1677891600, 1677898800  # [01:00, 03:00) UTC
    assert set(_found(keyword_index, "denver", flt={"since_s": since, "until_s": until})) == {
        "0x1",
        "0x2",
    }


def test_coverage_does_not_fall_with_length_but_with_the_terms_missing(keyword_index):
    hits = _found(keyword_index, "purple dao")
    assert hits["0x6"].coverage == 1.0  # long, but holds both terms
    assert hits["0x5"].coverage < 0.5  # holds only the commoner "dao"
    one_term = _found(keyword_index, "denver")
    assert {h.coverage for h in one_term.values()} == {1.0}


def test_term_matches_give_each_query_term_its_casts_once(keyword_index):
    from ozi_resources.vectors import SearchFilter

    terms = keyword_index.term_matches(
        "Purple dao daos casts", SearchFilter(), frozenset({"casts"})
    )
    by_word = {t.word: t for t in terms}
    assert set(by_word) == {"Purple", "dao"}  # "daos" stems as "dao"; "casts" is ignored
    assert by_word["dao"].hashes == {"0x5", "0x6"} and by_word["Purple"].hashes == {"0x6"}
    assert by_word["Purple"].idf > by_word["dao"].idf > 0
    (denver,) = keyword_index.term_matches("denver", SearchFilter(fid=20))  # bob's only
    assert denver.hashes == {"0x3"}


def test_ignored_words_are_left_out_of_the_query(keyword_index):
    assert "0x8" in _found(keyword_index, "cast")
    assert set(_found(keyword_index, "denver casts", ignore=frozenset({"cast", "casts"}))) == {
        "0x1",
        "0x2",
        "0x3",
    }


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        # after "discussing", "that discuss", "that mention" as after "about"
        ("casts discussing Tesla", "tesla"),
        ("Retrieve casts that discuss self-sovereign identity", "self-sovereign identity"),
        # the topic ends with its sentence
        ("was anyone talking about F1? what were they saying about the season?", "f1"),
        ("casts about dr. seuss", "dr seuss"),
        # "about that": the words before say what "that" is
        ("someone was making fonts, can you find the posts about that", "making fonts"),
    ],
)
def test_a_search_topic_after_other_words_for_it(question, topic):
    p = plan(question, CTX)
    assert (p.kind, p.search) == ("semantic", topic)


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        # every cast is on Farcaster: its name says nothing of a topic
        ("casts about Farcaster invites", "invites"),
        ("Which accounts posted the most about Farcaster invitations?", "invitations"),
        # unless it is the whole topic
        ("What are people saying about Farcaster?", "farcaster"),
    ],
)
def test_the_platform_name_is_no_topic_word(question, topic):
    assert plan(question, CTX).search == topic


@pytest.mark.parametrize(
    ("text", "indexed"),
    [
        ("see https://en.m.wikipedia.org/wiki/Chicken_Dance ok", "see wikipedia.org ok"),
        ("https://chrome.google.com/webstore/detail/x?hl=en-GB", "google.com"),
        ("summerofprotocols.com is live", "summerofprotocols.com is live"),
        ("www.youtube.com/watch?v=abc", "youtube.com"),
        # words with a dot that are no URL stay as written
        ("e.g. node.js, i.e. that", "e.g. node.js, i.e. that"),
    ],
)
def test_urls_are_indexed_by_their_site_only(text, indexed):
    from ozi_assets.questions.keywords import site_only

    assert site_only(text) == indexed
