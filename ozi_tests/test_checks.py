"""The checks' two engines agree: the DuckDB form of the expectations (incremental runs) finds
the same failures as great-expectations (rebuild runs) on the same rows."""

import duckdb
import pandas as pd
import pytest

from ozi_assets.checks import (
    CAST_RULES,
    REACTION_RULES,
    USER_RULES,
    Expectation,
    validate,
    validate_sql,
    violation,
)

GOOD = "0x" + "ab" * 32


def casts_frame() -> pd.DataFrame:
    rows = [
        # hash, fid, text, timestamp, parent_hash, parent_fid, text_bytes, consistent, thread
        (GOOD, 1, "fine", "2023-03-04", None, None, 4, True, True),
        ("0x" + "cd" * 32, 2, "reply", "2023-03-04", GOOD, 1, 5, True, True),
        ("0xNOTHEX", 3, "bad hash", "2023-03-04", None, None, 8, True, True),
        ("0x" + "ef" * 32, 0, "fid zero", "2023-03-04", None, None, 8, True, True),
        ("0x" + "ef" * 32, -4, "dup hash, negative fid", "2023-03-04", None, None, 22, True, True),
        ("0x" + "12" * 32, 5, None, "2023-03-04", None, None, 2000, False, False),
        (None, None, "no hash, no fid", None, "0x" + "34" * 32, None, 15, False, True),
    ]
    columns = [
        "hash",
        "fid",
        "text",
        "timestamp",
        "parent_hash",
        "parent_fid",
        "text_bytes",
        "parent_consistent",
        "thread_known",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["fid"] = frame["fid"].astype("Int64")
    frame["parent_fid"] = frame["parent_fid"].astype("Int64")
    return frame


def summary(validation):
    return sorted(
        (f["expectation"], f["column"], f["unexpected_count"]) for f in validation.failures
    )


@pytest.mark.parametrize(
    ("frame", "rules"),
    [
        (casts_frame(), CAST_RULES),
        (
            pd.DataFrame(
                {
                    "hash": [GOOD, GOOD, "0xzz"],
                    "fid": pd.array([1, 0, 3], "Int64"),
                    "reaction_type": ["like", "recast", "boost"],
                    "target_hash": [GOOD, "nope", None],
                    "timestamp": ["t", "t", "t"],
                }
            ),
            REACTION_RULES,
        ),
        (
            pd.DataFrame(
                {
                    "hash": ["a", "b", "b"],
                    "fid": pd.array([1, 2, 0], "Int64"),
                    "field": ["bio", None, "username"],
                    "value": ["x", "y", "z"],
                    "follower_count": pd.array([3, -1, None], "Int64"),
                }
            ),
            USER_RULES,
        ),
    ],
)
def test_duckdb_finds_what_great_expectations_finds(frame, rules):
    conn = duckdb.connect()
    conn.register("frame", frame)
    fast = validate_sql(conn, "SELECT * FROM frame", None, rules)
    slow = validate(frame, rules, "agree")
    assert fast.failures, "the frame is built to break rules"
    assert summary(fast) == summary(slow)
    assert fast.passed == slow.passed and fast.evaluated == slow.evaluated == len(frame)
    assert all(f["sample_rows"] for f in fast.failures)


def test_an_expectation_without_a_sql_form_is_refused_not_skipped():
    with pytest.raises(ValueError, match="no SQL form"):
        violation(Expectation("ExpectColumnMeanToBeBetween", {"column": "fid", "min_value": 1}))


def test_the_stop_word_file_is_scikit_learns_list():
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from ozi_assets.aggregates import STOP_WORDS_FILE

    assert STOP_WORDS_FILE.read_text().split() == sorted(ENGLISH_STOP_WORDS)
