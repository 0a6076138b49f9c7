"""What the Dagster UI shows a data engineer, read from the real event log of real runs on the
real sample (embedded broker, DuckLake, the embedding model): the standard table metadata of
every table asset, previews of the aggregates, dead-letter reasons, failed checks with their
rows and partition, ask_job's tag and Markdown answer, and the standing answers as one table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ozi_assets.ask import EXAMPLE_QUESTION, QUESTION_TAG
from ozi_assets.definitions import build_definitions, build_resources
from ozi_assets.partitions import stream_partitions
from ozi_resources.farcaster import Event
from ozi_resources.warehouse import Commit
from ozi_tests.conftest import (
    REPO,
    SAMPLE_DIR,
    free_port,
    make_settings,
    stop_group,
    wait_for_http,
)

pytestmark = pytest.mark.slow

NEWEST = "2023-03-04-06:00"  # the label of the sensor's first incremental run
INCREMENTAL = {"ozi/mode": "incremental"}

# asset → the lake table it names, and a column its schema must list
TABLE_ASSETS = {
    "raw/farcaster_events": ("raw_events", "message_value"),
    "clean/casts": ("cast_adds", "parent_hash"),
    "clean/reactions": ("reaction_messages", "reaction_type"),
    "clean/users": ("user_data", "follower_count"),
    "aggregates/hourly_activity": ("hourly_activity", "distinct_authors"),
    "aggregates/top_authors": ("top_authors", "username"),
    "aggregates/most_replied_to": ("most_replied_to", "replies_received"),
    "aggregates/top_terms": ("top_terms", "term"),
    "aggregates/cast_engagement": ("cast_engagement", "likes_seen"),
    "embeddings/casts": ("cast_vectors", "vector"),
}


@pytest.fixture(scope="module")
def world(running_broker, tmp_path_factory, sample_events):
    """The sample through one incremental ingest run and one embeddings run, as the sensors
    start a live stream, on a temporary instance."""
    settings = make_settings(tmp_path_factory.mktemp("ozi"), running_broker.address)
    resources = build_resources(settings)
    resources["kafka"].ensure_topics()
    resources["kafka"].produce(sample_events)
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        for job in ("ingest_job", "embed_job"):
            result = defs.resolve_job_def(job).execute_in_process(
                partition_key=NEWEST, instance=instance, tags=INCREMENTAL
            )
            assert result.success
        yield settings, resources, defs, instance


def latest(instance: dg.DagsterInstance, asset: str, partition: str) -> dict:
    """The metadata of the newest materialization of ``asset``'s ``partition``, as the
    asset's partition page shows it."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(asset.split("/")), asset_partitions=[partition]
        ),
        limit=1,
    ).records
    assert records, f"{asset} {partition} was never materialized"
    materialization = records[0].asset_materialization
    assert materialization is not None
    return dict(materialization.metadata)


def window_count(resources, table: str, column: str, partition: str) -> int:
    grid_start = stream_partitions.time_window_for_partition_key(partition)
    with resources["warehouse"].reader() as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {table} WHERE {column} >= $s AND {column} < $e",
            {"s": grid_start.start, "e": grid_start.end},
        ).fetchone()
    return row[0]


def test_every_table_asset_shows_its_table_columns_and_row_count_per_window(world):
    _, resources, _, instance = world
    for asset, (table, column) in TABLE_ASSETS.items():
        total = 0
        # Each window the run changed (a window without user data has no clean/users rows).
        materialized = instance.get_materialized_partitions(dg.AssetKey(asset.split("/")))
        assert materialized, asset
        for partition in sorted(materialized):
            metadata = latest(instance, asset, partition)
            assert metadata["dagster/table_name"].value == f"lake.main.{table}", asset
            names = [c.name for c in metadata["dagster/column_schema"].schema.columns]
            assert column in names, (asset, names)
            assert "window_start" in names or table == "cast_engagement"
            where = '"timestamp"' if table == "cast_engagement" else "window_start"
            rows = metadata["dagster/row_count"].value
            assert rows == window_count(resources, table, where, partition), (asset, partition)
            total += rows
        assert total > 0, asset
    # The sample's 888 casts, window by window, in the row counts a person adds up.
    assert (
        sum(
            latest(instance, "clean/casts", p)["dagster/row_count"].value
            for p in stream_partitions.get_partition_keys()
        )
        == 888
    )


def test_aggregates_preview_their_window(world):
    _, resources, _, instance = world
    window = "2023-03-04-03:00"
    start = stream_partitions.time_window_for_partition_key(window).start
    with resources["warehouse"].reader() as conn:
        top = conn.execute(
            "SELECT username, casts FROM top_authors WHERE window_start = $w ORDER BY rank",
            {"w": start},
        ).fetchall()
        activity = conn.execute(
            "SELECT casts, distinct_authors FROM hourly_activity WHERE window_start = $w",
            {"w": start},
        ).fetchone()
        term = conn.execute(
            "SELECT term FROM top_terms WHERE window_start = $w ORDER BY uses DESC, authors DESC,"
            " term LIMIT 1",
            {"w": start},
        ).fetchone()
    authors = latest(instance, "aggregates/top_authors", window)["preview"]
    assert [(r.data["username"], r.data["casts"]) for r in authors.records] == top[:10]
    assert [c.name for c in authors.schema.columns][:3] == ["rank", "username", "fid"]

    terms = latest(instance, "aggregates/top_terms", window)["preview"]
    assert len(terms.records) == 10 and terms.records[0].data["term"] == term[0]

    hourly = latest(instance, "aggregates/hourly_activity", window)
    # The window's figures as numbers (plotted by partition), and the trend up to it.
    assert (hourly["casts"].value, hourly["distinct_authors"].value) == activity
    assert hourly["casts"].value == 219  # the README's 219 casts in 03:00 UTC
    recent = hourly["preview"].records
    assert recent[0].data["window_start"].startswith("2023-03-04T03:00")
    assert 1 < len(recent) <= 10

    engagement = latest(instance, "aggregates/cast_engagement", window)["preview"]
    assert 0 < len(engagement.records) <= 10
    assert {"username", "text", "replies_seen"} <= set(engagement.records[0].data)


def test_dead_letters_show_their_reasons_as_a_table(world):
    _, resources, defs, instance = world
    bad = [b"not json", b"[1,2]", b"{}"] * 2
    stamp = 1677910200000  # 2023-03-04 06:10 UTC: the open window, so none of them is late
    resources["kafka"].produce([Event(b"", v, stamp + i, "raw") for i, v in enumerate(bad)])
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        partition_key=NEWEST, instance=instance, tags=INCREMENTAL
    )
    assert result.success
    metadata = latest(instance, "raw/farcaster_events", NEWEST)
    assert metadata["window_dead_letters"].value == 6
    reasons = metadata["dead_letter_reasons"]
    assert sum(r.data["messages"] for r in reasons.records) == 6
    assert all(r.data["reason"] and r.data["first_message"] for r in reasons.records)
    assert [c.name for c in reasons.schema.columns] == ["reason", "messages", "first_message"]
    # A window without dead letters says 0 and shows no reasons table.
    clean = latest(instance, "raw/farcaster_events", "2023-03-04-05:00")
    assert clean["window_dead_letters"].value == 0 and "dead_letter_reasons" not in clean


def test_ask_job_opens_on_an_example_is_tagged_and_answers_in_markdown(world):
    _, _, defs, instance = world
    job = defs.resolve_job_def("ask_job")
    # No run config at all: the launchpad's defaults, the example question.
    result = job.execute_in_process(instance=instance)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[QUESTION_TAG] == EXAMPLE_QUESTION
    assert result.output_for_node("answer_question")["rows"] == [{"casts": 19}]

    question = "How many recasts did dwr make?"
    result = job.execute_in_process(
        instance=instance,
        run_config={"ops": {"answer_question": {"config": {"question": question}}}},
    )
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[QUESTION_TAG] == question
    (event,) = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = event.step_output_data.metadata
    answer = metadata["answer"]
    assert isinstance(answer, dg.MarkdownMetadataValue)
    text = answer.value
    assert text.startswith(f"### {question}")
    assert "| recasts |" in text and "| 14 |" in text  # the rows as a table
    assert "SELECT" not in text.upper().split("|")[0]  # the SQL is its own entry
    assert metadata["sql"].value.startswith("```sql")


def test_standing_answers_are_one_question_answer_table_with_the_sql_apart(world):
    _, _, defs, instance = world
    key = dg.AssetKey(["answers", "standing_questions"])
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        asset_selection=[key], instance=instance
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("answers__standing_questions")
    metadata = materialization.metadata
    table = metadata["standing_answers"]
    assert [c.name for c in table.schema.columns] == ["id", "question", "answer", "kind"]
    assert len(table.records) == metadata["questions"].value == 6
    assert table.records[0].data["question"] == "Who are the top 5 authors by number of casts?"
    assert all(r.data["answer"] and len(r.data["answer"]) <= 200 for r in table.records)
    assert "```sql" in metadata["sql"].value
    # A handful of entries, not one per question and field (38 before).
    assert len(metadata) <= 6
    assert not any(isinstance(v, dg.TextMetadataValue) and "SELECT" in v.value for v in
                   metadata.values())  # fmt: skip


@pytest.fixture(scope="module")
def webserver(world, tmp_path_factory):
    """The real dagster-webserver on the workspace file and the instance the runs above wrote
    (no daemon: a backfill stays requested). Yields (base URL, its environment)."""
    settings, _, _, instance = world
    env = dict(
        os.environ,
        OZI_HOME=str(settings.home),
        OZI_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,  # the module's broker, not the home's
        OZI_SAMPLE_DIR=str(SAMPLE_DIR),
        DAGSTER_HOME=instance.root_directory,
    )
    log_path = tmp_path_factory.mktemp("webserver") / "webserver.log"
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/server_info", server, 180, log_path)
        yield base, env
        server.terminate()
        server.wait(timeout=30)


def ozi_backfill(base: str, env: dict[str, str]) -> str:
    """`ozi backfill` of the 03:00 window against the webserver at ``base``; its id."""
    done = subprocess.run(
        [sys.executable, "-m", "ozi_assets.cli", "backfill", "--url", base,
         "--partition", "2023-03-04-03:00"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[1]


def test_the_browser_shows_row_count_columns_preview_and_the_backfill(webserver):
    """Headless Chromium on the real UI: what a person sees on an asset's page and in the
    Backfills tab after `ozi backfill`."""
    from playwright.sync_api import sync_playwright

    base, env = webserver
    backfill_id = ozi_backfill(base, env)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.goto(f"{base}/assets/clean/casts")
            # The code location loads after the server is up: allow it time.
            page.get_by_text("parent_hash").first.wait_for(timeout=120_000)
            text = page.inner_text("body")
            assert "Row count" in text
            assert "Columns" in text and "TIMESTAMP WITH TIME ZONE" in text
            assert "Freshness policy" in text

            page.goto(f"{base}/assets/aggregates/top_authors")
            page.get_by_text("preview").first.wait_for(timeout=60_000)
            text = page.inner_text("body")
            assert "username" in text and "replies" in text  # the preview table's header

            page.goto(f"{base}/runs?view=backfills")
            page.get_by_text(backfill_id).first.wait_for(timeout=60_000)
            assert "cli backfill" in page.inner_text("body")
        finally:
            browser.close()


def test_a_failed_check_shows_a_description_and_its_rows_as_a_table(world):
    """Last but one: it leaves a bad row in the 06:00 window's cast_adds."""
    _, resources, defs, instance = world

    def bug(conn):
        conn.execute(
            'INSERT INTO cast_adds (hash, fid, text, "timestamp", window_start, source_position) '
            "VALUES ('0xnot-hex', 0, 'written by a bug', TIMESTAMPTZ '2023-03-04 06:20:00+00', "
            "TIMESTAMPTZ '2023-03-04 06:00:00+00', 0)"
        )

    resources["warehouse"].write(Commit("test", ("clean/casts",), None), bug)
    result = defs.resolve_job_def("window_close_job").execute_in_process(
        partition_key=NEWEST, instance=instance, tags={"ozi/mode": "close"}, raise_on_error=False
    )
    (check,) = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "casts_are_valid"
    ]
    assert not check.passed and check.partition == NEWEST
    assert check.description is not None and "\n" not in check.description
    assert "expectations failed on " in check.description
    assert "fid must be between (1 row)" in check.description
    assert "hash must match regex (1 row)" in check.description
    rows = check.metadata["failing_rows"]
    assert 0 < len(rows.records) <= 10
    assert any(r.data.get("hash") == "0xnot-hex" for r in rows.records)
    assert {r.data["expectation"] for r in rows.records} >= {
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
    }
    failed = {(r.data["column"], r.data["failing_rows"]) for r in check.metadata["failed"].records}
    assert {("fid", 1), ("hash", 1)} <= failed


def test_a_check_that_cannot_run_fails_its_partition_with_the_error(tmp_path):
    """No lake at all: every check of the window is a failed evaluation of that partition
    with the error in one line, not an execution without a partition."""
    defs = build_definitions(make_settings(tmp_path / "ozi"))
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("window_close_job").execute_in_process(
            partition_key=NEWEST, instance=instance, raise_on_error=False
        )
    evaluations = result.get_asset_check_evaluations()
    # messages_add_up waits for the blocking checks of reactions and users, which failed.
    assert {e.check_name for e in evaluations} == {
        "casts_are_valid",
        "casts_are_in_window",
        "reactions_are_valid",
        "users_are_valid",
    }
    for evaluation in evaluations:
        assert not evaluation.passed and evaluation.partition == NEWEST
        assert evaluation.description is not None
        assert evaluation.description.startswith("error: the check could not run: ")
        assert "no warehouse" in evaluation.description
        assert "\n" not in evaluation.description


def test_the_browser_shows_the_graph_partitions_a_failed_check_an_answer_and_ticks(
    world, webserver, tmp_path
):
    """Last: it reads the failed check above. Headless Chromium on the
    real UI, with the real daemon running for a while so that the sensors tick and the
    backfill submitted above makes progress."""
    from playwright.sync_api import expect, sync_playwright

    _, _, defs, instance = world
    base, env = webserver
    question = "How many recasts did dwr make?"
    asked = defs.resolve_job_def("ask_job").execute_in_process(
        instance=instance,
        run_config={"ops": {"answer_question": {"config": {"question": question}}}},
    )
    assert asked.success
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    shots = tmp_path / "shots"
    shots.mkdir()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            try:
                # The UI asks once, a while after the first page, to join its newsletter.
                page.add_locator_handler(
                    page.get_by_role("button", name="Skip"), lambda skip: skip.click()
                )
                # The asset graph: the stages, raw to answers, as groups.
                page.goto(f"{base}/asset-groups")
                expect(page.get_by_text("Global asset lineage")).to_be_visible(timeout=120_000)
                for group in ("raw", "clean", "aggregates", "embeddings", "answers"):
                    expect(page.get_by_text(group, exact=True).first).to_be_visible()
                page.screenshot(path=str(shots / "graph.png"))
                # A partitioned asset's partitions.
                page.goto(f"{base}/assets/clean/casts?view=partitions")
                expect(page.get_by_text(NEWEST).first).to_be_visible(timeout=60_000)
                page.screenshot(path=str(shots / "partitions.png"))
                # The failed check, its one line and its failing rows.
                page.goto(f"{base}/assets/clean/casts?view=checks")
                page.get_by_text("casts_are_valid").first.click(timeout=60_000)
                expect(page.get_by_text("0xnot-hex").first).to_be_visible(timeout=60_000)
                expect(page.get_by_text("fid must be between").first).to_be_visible()
                page.screenshot(path=str(shots / "check.png"))
                # The answer of an ask_job run, as Markdown.
                page.goto(f"{base}/runs/{asked.run_id}")
                expect(page.get_by_text(question).first).to_be_visible(timeout=60_000)
                page.screenshot(path=str(shots / "answer.png"))
                # The sensor's ticks: the daemon evaluates it, the log is caught up, it skips
                # and says why.
                page.goto(f"{base}/locations/ozi/sensors/kafka_window_sensor")
                expect(page.get_by_text("0 runs requested").first).to_be_visible(timeout=120_000)
                # The cursor cell truncates its text to the width it gets; its full text is in
                # the page. The page polls the sensor's state: a page opened as the daemon's
                # first tick ends shows the tick before the cursor it wrote (CI once failed at
                # the default 5 s with "Cursor None" beside "0 runs requested").
                expect(page.locator("body")).to_contain_text('"observed_lag": 0', timeout=60_000)
                expect(page.get_by_text("Failure")).to_have_count(0)
                page.screenshot(path=str(shots / "sensor.png"))
                # A backfill's progress: the daemon runs the one `ozi backfill` submitted
                # (above, or here when this test runs alone) to the end.
                if not instance.get_backfills():
                    ozi_backfill(base, env)
                (backfill,) = instance.get_backfills()
                page.goto(f"{base}/runs/b/{backfill.backfill_id}")
                expect(page.get_by_text("raw / farcaster_events").first).to_be_visible(
                    timeout=60_000
                )
                # Every asset's bar full, then the status tag beside the table's column of
                # the same name.
                expect(page.get_by_text("0% completed", exact=True)).to_have_count(
                    0, timeout=240_000
                )
                expect(page.get_by_text("100% completed", exact=True).first).to_be_visible()
                expect(page.get_by_text("Succeeded", exact=True)).to_have_count(2)
                page.screenshot(path=str(shots / "backfill.png"))
            except Exception:
                page.screenshot(path=str(shots / "failed.png"))
                raise
            finally:
                browser.close()
    finally:
        stop_group(daemon)
        log.close()
