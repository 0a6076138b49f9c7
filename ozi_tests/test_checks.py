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


def test_a_batchs_checks_read_exactly_its_rows_of_its_window():
    """Each row check scoped to a batch (stream_job's rounds) selects the rows at the batch's
    positions in its window, and none at other positions or in other windows."""
    from ozi_assets import stream
    from ozi_assets.checks import ROW_CHECKS
    from ozi_resources.warehouse import bound

    conn = duckdb.connect()
    common = "hash VARCHAR, fid BIGINT, window_start TIMESTAMPTZ, source_position BIGINT"
    conn.execute(
        f"CREATE TABLE cast_adds ({common}, text VARCHAR, timestamp TIMESTAMPTZ, "
        "parent_hash VARCHAR, parent_fid BIGINT, thread_hash VARCHAR)"
    )
    conn.execute(
        f"CREATE TABLE reaction_messages ({common}, reaction_type VARCHAR, "
        "target_hash VARCHAR, timestamp TIMESTAMPTZ)"
    )
    conn.execute(
        f"CREATE TABLE user_data ({common}, field VARCHAR, value VARCHAR, follower_count BIGINT)"
    )
    from datetime import UTC, datetime

    window, other = datetime(2023, 3, 4, 10, tzinfo=UTC), datetime(2023, 3, 4, 11, tzinfo=UTC)
    # (Kafka partition, offset, window): the batch is offsets 10-19 of partition 0 and 5-6
    # of partition 1, in the first window
    rows = [(0, 9, window), (0, 10, window), (0, 19, window), (0, 20, window), (1, 5, window)]
    rows += [(1, 6, other), (2, 10, window)]
    for table in ("cast_adds", "reaction_messages", "user_data"):
        for p, offset, start in rows:
            conn.execute(
                f"INSERT INTO {table} (hash, fid, window_start, source_position) "
                "VALUES ($h, 1, $w, $pos)",
                {"h": f"{p}/{offset}", "w": start, "pos": (p << 40) + offset},
            )
    positions = stream.position_filter({0: (10, 20), 1: (5, 7)})
    for check in ROW_CHECKS:
        scoped = check.at_positions(positions)
        found = conn.execute(
            f"SELECT hash FROM ({scoped}) ORDER BY hash",
            bound(scoped, {"w": window, "w_end": other}),
        ).fetchall()
        assert [h for (h,) in found] == ["0/10", "0/19", "1/5"], check.name


def test_a_row_check_without_its_window_condition_cannot_be_scoped_to_a_batch():
    import dataclasses

    from ozi_assets.checks import CASTS_VALID

    loose = dataclasses.replace(CASTS_VALID, query="SELECT hash FROM cast_adds")
    with pytest.raises(ValueError, match="window"):
        loose.at_positions("TRUE")


def test_a_round_reads_its_batches_rows_from_the_change_feed_only_where_it_holds_them(tmp_path):
    """On a real lake: after a round's mark, two batches' rows (files merged in between) are
    read from DuckLake's change feed, and the scoped checks see exactly the rows they see
    in the table; a table that lost a row since the mark, a clean stage that stood past the
    floor, or no mark at all, read the table instead."""
    from datetime import UTC, datetime

    from ozi_assets import stream
    from ozi_assets.checks import CASTS_VALID, FeedMark, feed_sources
    from ozi_assets.clean import CLEAN_TABLES
    from ozi_assets.definitions import build_resources
    from ozi_resources.warehouse import bound
    from ozi_tests.conftest import make_settings

    warehouse = build_resources(make_settings(tmp_path / "ozi"))["warehouse"]
    window = datetime(2023, 3, 4, 10, tzinfo=UTC)

    def batch(conn, first: int, last: int) -> None:  # offsets first..last-1 of partition 0
        conn.execute(
            "INSERT INTO cast_adds (hash, fid, text, timestamp, thread_hash, window_start, "
            "source_position) SELECT 'h' || i, 1, 'text', $w, 'h' || i, $w, i "
            "FROM range($a, $b) r(i)",
            {"w": window, "a": first, "b": last},
        )

    def stages(offset: int) -> dict[str, stream.Offsets]:
        return {s: {0: stream.PartitionOffset(offset)} for s in stream.CLEAN_STAGES}

    def now(conn) -> int:
        return int(conn.execute("FROM lake.current_snapshot()").fetchone()[0])

    with warehouse.writer() as conn:
        batch(conn, 0, 10)
        mark = FeedMark(now(conn), stages(10))  # a round read the lake here
        batch(conn, 10, 20)
        conn.execute("CALL ducklake_merge_adjacent_files('lake')")
        batch(conn, 20, 25)
    floor = {0: stream.PartitionOffset(10)}
    positions = stream.position_filter({0: (10, 25)})
    bounds = {"w": window, "w_end": datetime(2023, 3, 4, 11, tzinfo=UTC)}

    def hashes(conn, source: str) -> list[str]:
        scoped = CASTS_VALID.at_positions(positions, source)
        rows = conn.execute(f"SELECT hash FROM ({scoped})", bound(scoped, bounds)).fetchall()
        return sorted(h for (h,) in rows)

    with warehouse.reader() as conn:
        sources = feed_sources(conn, mark, floor, now(conn))
        assert all(sources[t].startswith("ducklake_table_insertions(") for t in CLEAN_TABLES)
        assert hashes(conn, sources["cast_adds"]) == hashes(conn, "cast_adds")
        assert hashes(conn, sources["cast_adds"]) == sorted(f"h{i}" for i in range(10, 25))
        whole = {t: t for t in CLEAN_TABLES}
        assert feed_sources(conn, None, floor, now(conn)) == whole
        ahead = FeedMark(mark.snapshot, stages(12))  # a stage already past the floor
        assert feed_sources(conn, ahead, floor, now(conn)) == whole

    with warehouse.writer() as conn:  # a later copy replaced: its row is deleted
        conn.execute("DELETE FROM cast_adds WHERE hash = 'h12'")
    with warehouse.reader() as conn:
        sources = feed_sources(conn, mark, floor, now(conn))
        assert sources["cast_adds"] == "cast_adds"
        assert sources["reaction_messages"].startswith("ducklake_table_insertions(")
        assert "h12" not in hashes(conn, sources["cast_adds"])
