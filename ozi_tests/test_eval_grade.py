"""The evaluation set's grader (ozi_tests/eval/grade.py) on hand-made answers, and the shape
of questions.yaml. Pure and fast: no broker, no warehouse, no model.

The truths themselves are run over the real lake in test_questions.py
(``test_eval_truths_hold_on_the_lake``).
"""

from __future__ import annotations

import collections
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ozi_tests.eval.grade import COMPARE_MODES, Grade, grade, normalize, summarize
from ozi_tests.eval.truth import QUESTIONS as QUESTIONS_FILE
from ozi_tests.eval.truth import load_questions

HOUR3 = datetime(2023, 3, 4, 3, tzinfo=UTC)


def answer(kind: str = "analytic", rows=None, sources=None, text: str = "") -> dict:
    """An answer in Ozi's JSON contract with the given rows and sources."""
    return {
        "question": "q",
        "kind": kind,
        "answer": text,
        "sql": None,
        "rows": rows or [],
        "sources": sources or [],
        "lineage": [],
        "data_as_of": None,
        "planner": "test",
    }


def source(hash_: str, fid: int = 1) -> dict:
    return {
        "hash": hash_,
        "fid": fid,
        "username": "u",
        "timestamp": None,
        "text": "t",
        "score": 0.5,
    }


# --- normalisation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right"),
    [
        (3, 3.0),
        (3, "3"),
        (Decimal("19"), 19),
        ("  DWR ", "dwr"),
        ("@dwr", "dwr"),
        (HOUR3, "2023-03-04T03:00:00Z"),
        (HOUR3, "2023-03-04 03:00:00+00"),
        (HOUR3, datetime(2023, 3, 4, 3)),  # naive reads as UTC
        (HOUR3, datetime(2023, 3, 3, 22, tzinfo=timezone(timedelta(hours=-5)))),
    ],
)
def test_normalize_makes_equivalent_values_equal(left, right):
    assert normalize(left) == normalize(right)


@pytest.mark.parametrize("value", [HOUR3, "2023-03-04 03:00:00+00", "03:00", "3am", 3, "03:00 UTC"])
def test_normalize_hour_reads_any_spelling_of_an_hour(value):
    assert normalize(value, hour=True) == 3


def test_normalize_keeps_different_values_apart():
    assert normalize(3) != normalize(4)
    assert normalize("0xABC") == "0xabc"
    assert normalize(True) is True and normalize(1) == 1
    assert normalize("3pm", hour=True) == 15


# --- scalar --------------------------------------------------------------------------------

SCALAR = {"id": "x/1", "compare": "scalar"}


def test_scalar_right_whatever_the_column_name_and_number_type():
    verdict = grade(SCALAR, answer(rows=[{"count_star()": 19.0}]), [{"n": 19}], None)
    assert verdict == Grade(True, "scalar 19 matches")


def test_scalar_reads_the_first_value_of_the_first_row():
    assert grade(SCALAR, answer(rows=[{"n": 19, "other": 3}]), [{"n": 19}], None).correct
    wrong = grade(SCALAR, answer(rows=[{"username": "dwr", "n": 19}]), [{"n": 19}], None)
    assert not wrong.correct and "expected 19, got 'dwr'" in wrong.reason


def test_scalar_wrong_value():
    verdict = grade(SCALAR, answer(rows=[{"n": 20}]), [{"n": 19}], None)
    assert not verdict.correct
    assert verdict.reason == "scalar: expected 19, got 20"


def test_scalar_zero_is_an_answer():
    assert grade(SCALAR, answer(rows=[{"likes": 0}]), [{"n": 0}], None).correct


def test_scalar_without_rows_or_with_a_refusal_is_wrong():
    assert grade(SCALAR, answer(rows=[]), [{"n": 19}], None).reason == "the answer has no rows"
    refused = grade(SCALAR, answer(kind="unanswered", text="cannot"), [{"n": 19}], None)
    assert not refused.correct and refused.reason.startswith("refused an answerable question")


def test_scalar_tolerance_for_averages():
    entry = {**SCALAR, "tolerance": 0.01}
    assert grade(entry, answer(rows=[{"avg": 4.02}]), [{"n": 4.0181}], None).correct
    assert not grade(entry, answer(rows=[{"avg": 4.1}]), [{"n": 4.0181}], None).correct


def test_scalar_hour():
    entry = {**SCALAR, "normalize": "hour"}
    truth = [{"hour": HOUR3}]
    assert grade(
        entry, answer(rows=[{"window_start": "2023-03-04T03:00:00+00:00"}]), truth, None
    ).correct
    assert grade(entry, answer(rows=[{"hour": "03:00", "casts": 219}]), truth, None).correct
    wrong = grade(entry, answer(rows=[{"hour": "04:00"}]), truth, None)
    assert not wrong.correct and wrong.reason == "scalar: expected 3, got 4"


# --- ranking -------------------------------------------------------------------------------

RANKING = {"id": "x/1", "compare": "ranking", "key": "username", "value": "n", "n": 5}
TOP_AUTHORS = [
    {"username": "briang", "n": 270},
    {"username": "pcdkd", "n": 24},
    {"username": "emmabwaldron", "n": 23},
    {"username": "dwr", "n": 19},
    {"username": "borodutch", "n": 16},
    {"username": "jayce", "n": 16},
    {"username": "dawufi", "n": 15},
]


def rows_of(*names: str) -> list[dict]:
    return [{"author": name, "casts": i} for i, name in enumerate(names)]


def test_ranking_right_order():
    got = rows_of("briang", "pcdkd", "emmabwaldron", "dwr", "borodutch")
    assert grade(RANKING, answer(rows=got), TOP_AUTHORS, None).correct


def test_ranking_accepts_either_member_of_a_tie_at_the_cut_off():
    got = rows_of("briang", "pcdkd", "emmabwaldron", "dwr", "jayce", "borodutch")
    assert grade(RANKING, answer(rows=got), TOP_AUTHORS, None).correct


def test_ranking_accepts_swapped_ties_inside_the_top():
    entry = {**RANKING, "n": 3}
    truth = [{"username": u, "n": 6} for u in ("ccarella", "jayce", "timdaub")]
    got = rows_of("timdaub", "ccarella", "jayce")
    assert grade(entry, answer(rows=got), truth, None).correct


def test_ranking_wrong_order_is_wrong():
    got = rows_of("pcdkd", "briang", "emmabwaldron", "dwr", "borodutch")
    verdict = grade(RANKING, answer(rows=got), TOP_AUTHORS, None)
    assert not verdict.correct and "no answer column matches" in verdict.reason


def test_ranking_outside_the_tie_is_wrong():
    got = rows_of("briang", "pcdkd", "emmabwaldron", "dwr", "dawufi")
    assert not grade(RANKING, answer(rows=got), TOP_AUTHORS, None).correct


def test_ranking_too_few_rows():
    verdict = grade(RANKING, answer(rows=rows_of("briang", "pcdkd")), TOP_AUTHORS, None)
    assert verdict == Grade(False, "ranking: expected 5 rows, the answer has 2")


def test_ranking_repeating_a_key_is_wrong():
    entry = {**RANKING, "n": 3}
    truth = [{"username": u, "n": 6} for u in ("ccarella", "jayce", "timdaub")]
    got = rows_of("jayce", "jayce", "timdaub")
    assert not grade(entry, answer(rows=got), truth, None).correct


def test_ranking_top_one_by_hash():
    entry = {"id": "x/1", "compare": "ranking", "key": "hash", "value": "n", "n": 1}
    truth = [{"hash": "0xAA", "n": 5}, {"hash": "0xbb", "n": 5}, {"hash": "0xcc", "n": 3}]
    assert grade(entry, answer(rows=[{"text": "hi", "hash": "0xbb"}]), truth, None).correct
    assert not grade(entry, answer(rows=[{"text": "hi", "hash": "0xcc"}]), truth, None).correct


# --- set -----------------------------------------------------------------------------------

SET = {"id": "x/1", "compare": "set", "key": "username"}
PROLIFIC = [{"username": u, "n": 20} for u in ("briang", "pcdkd", "dwr")]


def test_set_right_in_any_order():
    got = [{"user": u} for u in ("dwr", "briang", "pcdkd")]
    assert grade(SET, answer(rows=got), PROLIFIC, None).correct


def test_set_missing_or_extra_value_is_wrong():
    missing = grade(SET, answer(rows=[{"user": "dwr"}, {"user": "briang"}]), PROLIFIC, None)
    assert not missing.correct and "'pcdkd'" in missing.reason
    got = [{"user": u} for u in ("dwr", "briang", "pcdkd", "jayce")]
    extra = grade(SET, answer(rows=got), PROLIFIC, None)
    assert not extra.correct and "adds ['jayce']" in extra.reason


# --- rows_per_group ------------------------------------------------------------------------

PER_HOUR = {
    "id": "x/1",
    "compare": "rows_per_group",
    "key": "hour",
    "value": "n",
    "normalize": "hour",
}
HOURLY = [
    {"hour": datetime(2023, 3, 3, 23, tzinfo=UTC), "n": 8},
    {"hour": datetime(2023, 3, 4, 0, tzinfo=UTC), "n": 16},
]


def test_rows_per_group_right_with_other_spellings():
    got = [
        {"window_start": "2023-03-04 00:00:00+00", "recasts": 16.0},
        {"window_start": "2023-03-03 23:00:00+00", "recasts": 8},
    ]
    assert grade(PER_HOUR, answer(rows=got), HOURLY, None).correct


def test_rows_per_group_extra_group_with_zero_is_fine():
    got = [{"h": 23, "n": 8}, {"h": 0, "n": 16}, {"h": 6, "n": 0}]
    assert grade(PER_HOUR, answer(rows=got), HOURLY, None).correct


def test_rows_per_group_wrong_count_or_missing_group_is_wrong():
    wrong = grade(PER_HOUR, answer(rows=[{"h": 23, "n": 8}, {"h": 0, "n": 15}]), HOURLY, None)
    assert not wrong.correct and "0: expected 16, got 15" in wrong.reason
    assert not grade(PER_HOUR, answer(rows=[{"h": 23, "n": 8}]), HOURLY, None).correct


# --- semantic ------------------------------------------------------------------------------

SEMANTIC = {"id": "x/1", "compare": "semantic"}
RELEVANT = {f"0x{i:02x}" for i in range(10)}


def test_semantic_precise_top_five():
    got = [source(h) for h in ("0x01", "0x02", "0xff", "0x03", "0xfe", "0xfd")]
    verdict = grade(SEMANTIC, answer("semantic", sources=got), None, RELEVANT)
    assert verdict == Grade(True, "semantic: 3/5 top sources relevant")


def test_semantic_imprecise_top_five():
    got = [source(h) for h in ("0x01", "0xff", "0xfe", "0x03", "0xfd")]
    verdict = grade(SEMANTIC, answer("semantic", sources=got), None, RELEVANT)
    assert not verdict.correct and "2/5" in verdict.reason


def test_semantic_without_sources_is_wrong():
    verdict = grade(SEMANTIC, answer("semantic", rows=[{"n": 1}]), None, RELEVANT)
    assert verdict == Grade(False, "semantic: the answer has no sources")


def test_semantic_small_relevant_set_judges_the_top_k():
    got = [source(h) for h in ("0x01", "0x02", "0xff", "0xfe", "0xfd")]
    assert grade(SEMANTIC, answer("semantic", sources=got), None, {"0x01", "0x02"}).correct


def test_semantic_fids_constraint():
    entry = {**SEMANTIC, "fids": [3]}
    mine = [source("0x01", fid=3), source("0x02", fid=3)]
    assert grade(entry, answer("semantic", sources=mine), None, {"0x01", "0x02"}).correct
    other = [source("0x01", fid=3), source("0x02", fid=99)]
    verdict = grade(entry, answer("semantic", sources=other), None, {"0x01", "0x02"})
    assert not verdict.correct and "other authors" in verdict.reason


# --- hybrid --------------------------------------------------------------------------------

HYBRID = {"id": "x/1", "compare": "hybrid"}
INVITES = [{"username": u, "n": 2} for u in ("borodutch", "dwr")] + [{"username": "khl", "n": 1}]


def test_hybrid_right_with_any_leader_first():
    got = [{"user": "dwr", "casts": 2}, {"user": "khl", "casts": 1}]
    assert grade(HYBRID, answer("hybrid", rows=got), INVITES, None).correct


def test_hybrid_first_user_not_a_leader():
    got = [{"user": "khl", "casts": 1}, {"user": "dwr", "casts": 2}]
    verdict = grade(HYBRID, answer("hybrid", rows=got), INVITES, None)
    assert not verdict.correct and "expected the top user among" in verdict.reason


def test_hybrid_user_who_never_cast_about_it():
    got = [{"user": "dwr", "casts": 2}, {"user": "v", "casts": 1}]
    verdict = grade(HYBRID, answer("hybrid", rows=got), INVITES, None)
    assert not verdict.correct and "['v']" in verdict.reason


# --- refusal -------------------------------------------------------------------------------

REFUSAL = {"id": "x/1", "compare": "refusal"}


def test_refusal_right():
    verdict = grade(REFUSAL, answer("unanswered", text="The data has no history."), None, None)
    assert verdict == Grade(True, "refused, no rows")


def test_refusal_wrong_when_it_answers_or_carries_rows():
    numbers = grade(REFUSAL, answer("analytic", rows=[{"n": 0}]), None, None)
    assert numbers == Grade(False, "expected a refusal, got a analytic answer")
    rows = grade(REFUSAL, answer("unanswered", rows=[{"n": 0}]), None, None)
    assert rows == Grade(False, "refused but still returned 1 row(s)")


# --- harness errors and summary ------------------------------------------------------------


def test_harness_errors_raise():
    with pytest.raises(ValueError, match="unknown compare mode"):
        grade({"id": "x/1", "compare": "fuzzy"}, answer(), [], None)
    with pytest.raises(ValueError, match="without truth rows"):
        grade(SCALAR, answer(rows=[{"n": 1}]), None, None)
    with pytest.raises(ValueError, match="without relevant hashes"):
        grade(SEMANTIC, answer("semantic", sources=[source("0x01")]), None, None)


def test_summarize():
    results = [
        ({"id": "a/1", "kind": "analytic", "split": "dev"}, Grade(True, "")),
        ({"id": "a/2", "kind": "analytic", "split": "test"}, Grade(False, "")),
        ({"id": "s/1", "kind": "semantic", "split": "test"}, Grade(True, "")),
    ]
    summary = summarize(results)
    assert (summary["total"], summary["correct"]) == (3, 2)
    assert summary["accuracy"] == pytest.approx(2 / 3)
    assert summary["by_kind"]["analytic"] == {"total": 2, "correct": 1, "accuracy": 0.5}
    assert summary["by_split"]["test"]["accuracy"] == 0.5
    assert summary["by_split_kind"]["dev"]["analytic"]["accuracy"] == 1.0
    assert summary["wrong"] == ["a/2"]
    assert summarize([])["accuracy"] == 0.0


# --- questions.yaml ------------------------------------------------------------------------

QUESTIONS = load_questions()
REQUIRED = {"id", "intent", "kind", "split", "question", "compare"}
MODE_KEYS = {
    "scalar": {"truth_sql"},
    "ranking": {"truth_sql", "key", "n"},
    "set": {"truth_sql", "key"},
    "rows_per_group": {"truth_sql", "key", "value"},
    "semantic": {"relevant_sql"},
    "hybrid": {"truth_sql"},
    "refusal": set(),
}
KIND_MODES = {
    "analytic": {"scalar", "ranking", "set", "rows_per_group"},
    "semantic": {"semantic"},
    "hybrid": {"hybrid"},
    "unanswerable": {"refusal"},
}


def test_questions_structure():
    assert len(QUESTIONS) >= 150
    ids = [q["id"] for q in QUESTIONS]
    assert len(ids) == len(set(ids)), "ids must be unique"
    assert {q["kind"] for q in QUESTIONS} == set(KIND_MODES)
    for q in QUESTIONS:
        assert q.keys() >= REQUIRED, q.get("id")
        assert q["id"].split("/")[0] == q["intent"], q["id"]
        assert q["split"] in {"dev", "test"}, q["id"]
        assert q["compare"] in COMPARE_MODES, q["id"]
        assert q["compare"] in KIND_MODES[q["kind"]], q["id"]
        assert MODE_KEYS[q["compare"]] <= q.keys(), q["id"]
        assert q["question"].strip(), q["id"]
        if q["compare"] == "refusal":
            assert "truth_sql" not in q and "relevant_sql" not in q, q["id"]


def test_every_intent_has_paraphrases_in_both_splits():
    by_intent = collections.defaultdict(list)
    for q in QUESTIONS:
        by_intent[q["intent"]].append(q)
    for intent, entries in by_intent.items():
        assert 3 <= len(entries) <= 5, intent
        splits = collections.Counter(q["split"] for q in entries)
        assert splits["dev"] >= 1 and splits["test"] >= 1, intent
        assert abs(splits["dev"] - splits["test"]) <= 1, intent
        assert len({q["question"] for q in entries}) == len(entries), intent
        assert len({q["kind"] for q in entries}) == 1, intent


def test_kind_mix_is_close_to_the_plan():
    kinds = collections.Counter(q["kind"] for q in QUESTIONS)
    share = {k: n / len(QUESTIONS) for k, n in kinds.items()}
    assert 0.55 <= share["analytic"] <= 0.72
    assert 0.10 <= share["semantic"] <= 0.20
    assert 0.10 <= share["hybrid"] <= 0.20
    assert 0.03 <= share["unanswerable"] <= 0.08


@pytest.mark.parametrize(
    "name, split, prefix",
    [
        ("tuning.yaml", "tune", "t_"),
        ("tuning2.yaml", "tune", "u_"),
        ("tuning3.yaml", "tune", "v_"),
        ("tuning4.yaml", "tune", "w_"),
        ("tuning5.yaml", "tune", "x_"),
        ("tuning6.yaml", "tune", "y_"),
        ("tuning7.yaml", "tune", "z_"),
        ("tuning8.yaml", "tune", "k_"),
        ("tuning9.yaml", "tune", "m_"),
        ("tuning10.yaml", "tune", "n_"),
        ("tuning11.yaml", "tune", "p_"),
        ("tuning12.yaml", "tune", "q_"),
        ("tuning13.yaml", "tune", "r_"),
        ("tuning14.yaml", "tune", "s_"),
        ("tuning15.yaml", "tune", "g_"),
        ("tuning16.yaml", "tune", "f_"),
        ("holdout.yaml", "holdout", "h_"),
    ],
)
def test_later_sets_structure(name, split, prefix):
    """The tuning and holdout sets: one split each, the same entry shape as questions.yaml,
    their own intents (prefixed), ids unique across all three files."""
    from ozi_tests.eval.run import QUESTION_FILES

    entries = load_questions(QUESTIONS_FILE.with_name(name))
    assert len(entries) >= 60
    for q in entries:
        assert q.keys() >= REQUIRED, q.get("id")
        assert q["split"] == split and q["intent"].startswith(prefix), q["id"]
        assert q["id"].split("/")[0] == q["intent"], q["id"]
        assert q["compare"] in KIND_MODES[q["kind"]], q["id"]
        assert MODE_KEYS[q["compare"]] <= q.keys(), q["id"]
    ids = [q["id"] for path in QUESTION_FILES for q in load_questions(path)]
    assert len(ids) == len(set(ids))
