"""The HTTP API and the question page, on the real sample: the real broker, a DuckLake, the
embedded Qdrant engine and the packaged model, served by the real app (in process through
Starlette's test client, and as a real `ozi serve` process called over HTTP and driven by a
real headless Chromium)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ozi_assets.api import (
    RateLimits,
    TokenStore,
    asset_url,
    cast_url,
    issue_token,
    parse_token_hashes,
    token_hash,
)
from ozi_assets.cli import start_owner
from ozi_assets.partitions import stream_partitions
from ozi_assets.serve import create_app
from ozi_resources import processes
from ozi_resources.vectors import OWNER
from ozi_tests.conftest import make_settings, materialize_sample

DAGSTER_URL = "http://dagster.example:3000"
COUNT_QUESTION = "How many casts were posted in total?"
TRUE_COUNT_SQL = "SELECT count(*) AS n FROM casts"


# -- pure parts -------------------------------------------------------------------------------


def test_token_file_keeps_only_the_hash_and_a_new_token_replaces_its_namesake(tmp_path):
    file = tmp_path / "api_tokens"
    first = issue_token(file, "ci")
    assert first.startswith("ozi_") and len(first) > 40
    assert first not in file.read_text()
    assert token_hash(first) in file.read_text()
    store = TokenStore("", file)
    assert store.name_of(first) == "ci"
    second = issue_token(file, "ci")
    other = issue_token(file, "bench")
    assert store.name_of(first) is None, "the replaced token must stop working"
    assert store.name_of(second) == "ci" and store.name_of(other) == "bench"
    assert store.name_of("ozi_" + "x" * 43) is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("ci:abc", "OZI_API_TOKENS"),
        (":" + "a" * 64, "not name:sha256-hex"),
        ("ci:" + "g" * 64, "not name:sha256-hex"),
    ],
)
def test_malformed_token_configuration_is_one_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_token_hashes(text, "OZI_API_TOKENS")


def test_configured_hashes_are_read_with_commas_or_lines():
    a, b = token_hash("one"), token_hash("two")
    assert parse_token_hashes(f"ci:{a}, bench:{b}", "x") == {a: "ci", b: "bench"}
    assert parse_token_hashes(f"ci {a}\n# note\nbench {b}\n", "x") == {a: "ci", b: "bench"}


def test_rate_limit_refuses_past_the_window_and_says_when_to_retry():
    limits = RateLimits("3/minute")
    assert [limits.retry_after("ci") for _ in range(3)] == [None, None, None]
    wait = limits.retry_after("ci")
    assert wait is not None and 1 <= wait <= 60
    assert limits.retry_after("bench") is None, "limits are per token"
    with pytest.raises(ValueError, match="OZI_API_RATE_LIMIT"):
        RateLimits("lots")


def test_links_point_at_the_cast_and_the_asset_partition():
    assert cast_url("dwr", "0x1a2b3c4d5e6f") == "https://warpcast.com/dwr/0x1a2b3c4d"
    assert cast_url(None, "0x1a2b3c4d5e6f") is None
    assert (
        asset_url("http://ui:3000", "clean/casts", "2023-03-04-01:00")
        == "http://ui:3000/assets/clean/casts?view=partitions&partition=2023-03-04-01:00"
    )


# -- the app on the sample --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(running_broker, tmp_path_factory, sample_events):
    """Every window of the sample materialized (raw → embeddings), as `ozi demo` leaves it,
    and an API token for it."""
    settings = dataclasses.replace(
        make_settings(tmp_path_factory.mktemp("ozi"), running_broker.address),
        dagster_url=DAGSTER_URL,
        api_rate_limit="1000/minute",
    )
    materialize_sample(settings, sample_events)
    token = issue_token(settings.api_token_file, "tests")
    yield settings, token


@pytest.fixture(scope="class")
def client(lake):
    """The app in process, its lifespan running (shard owner and model), with the token."""
    settings, token = lake
    with TestClient(create_app(settings)) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


def sql_value(client: TestClient, statement: str):
    answer = client.post("/v1/sql", json={"sql": statement})
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["rows"]
    return next(iter(row.values()))


@pytest.mark.slow
class TestTheAppInProcess:
    """Through Starlette's test client. A class, so the app (which holds the vector shard)
    closes before the real process below opens the same shard."""

    def test_requests_without_a_valid_token_are_refused(self, client):
        bare = TestClient(client.app)  # no token; the app's lifespan already runs
        for method, path, body in [
            ("POST", "/v1/ask", {"question": COUNT_QUESTION}),
            ("GET", "/v1/search?q=denver", None),
            ("POST", "/v1/sql", {"sql": TRUE_COUNT_SQL}),
            ("GET", "/v1/catalog", None),
        ]:
            refused = bare.request(method, path, json=body)
            assert refused.status_code == 401, path
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert "token" in refused.json()["error"]
            assert refused.json()["request_id"] == refused.headers["X-Request-ID"]
        wrong = bare.get("/v1/catalog", headers={"Authorization": "Bearer ozi_not-a-token"})
        assert (wrong.status_code, wrong.json()["error"]) == (401, "unknown token")

    def test_ask_answers_with_sql_rows_sources_and_lineage_links(self, client):
        answer = client.post("/v1/ask", json={"question": COUNT_QUESTION})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["kind"] == "analytic"
        truth = sql_value(client, TRUE_COUNT_SQL)
        assert next(iter(body["rows"][0].values())) == truth
        assert f"{truth:,}" in body["answer"] or str(truth) in body["answer"]
        assert body["lineage"], "an answer names the asset partitions it read"
        for entry in body["lineage"]:
            assert entry["ui_url"].startswith(f"{DAGSTER_URL}/assets/{entry['asset']}")
        assert body["data_as_of"]["snapshot_id"] >= 1

    def test_a_semantic_answer_links_its_sources_to_the_casts(self, client):
        body = client.post("/v1/ask", json={"question": "What are people saying about Denver?"})
        assert body.status_code == 200, body.text
        sources = body.json()["sources"]
        assert sources
        for source in sources:
            assert (
                source["url"] == f"https://warpcast.com/{source['username']}/{source['hash'][:10]}"
            )
        assert "embeddings/casts" in {e["asset"] for e in body.json()["lineage"]}

    def test_search_returns_scored_hits_and_honours_filters(self, client):
        fused = client.get("/v1/search", params={"q": "eth denver conference", "limit": 8})
        assert fused.status_code == 200, fused.text
        body = fused.json()
        assert body["mode"] == "hybrid" and body["keyword_index"]["kind"] == "duckdb-fts"
        hits = body["hits"]
        assert len(hits) == 8 and [h["rank"] for h in hits] == list(range(1, 9))
        assert all(h["score"] is not None or h["bm25"] is not None for h in hits)
        assert sum("denver" in h["text"].lower() for h in hits) >= 6
        vector = client.get(
            "/v1/search", params={"q": "eth denver conference", "limit": 8, "mode": "vector"}
        ).json()["hits"]
        scores = [h["score"] for h in vector]
        assert len(scores) == 8 and scores == sorted(scores, reverse=True)
        assert all(-1 <= s <= 1 for s in scores)
        fid = hits[0]["fid"]
        since, until = "2023-03-04T02:00:00Z", "2023-03-04T04:00:00Z"
        for mode in ("hybrid", "vector"):
            params = {"q": "eth denver", "fid": fid, "limit": 50, "mode": mode}
            narrowed = client.get("/v1/search", params=params).json()["hits"]
            assert narrowed and {h["fid"] for h in narrowed} == {fid}, mode
            params = {"q": "eth denver", "since": since, "until": until, "limit": 50, "mode": mode}
            windowed = client.get("/v1/search", params=params).json()["hits"]
            stamps = [h["timestamp"].replace("+00:00", "Z") for h in windowed]
            assert stamps and all(since <= stamp < until for stamp in stamps), mode
        naive = client.get("/v1/search", params={"q": "eth", "since": "2023-03-04T02:00:00"})
        assert naive.status_code == 422 and "time zone" in naive.json()["error"]
        wrong = client.get("/v1/search", params={"q": "eth", "mode": "exact"})
        assert wrong.status_code == 422 and wrong.json()["error"].startswith("mode:")

    def test_sql_is_guarded_and_every_failure_is_one_clear_4xx(self, client):
        ok = client.post("/v1/sql", json={"sql": "SELECT fid, username FROM users ORDER BY fid"})
        assert ok.status_code == 200
        assert ok.json()["columns"] == ["fid", "username"] and ok.json()["tables"] == ["users"]
        cases = [
            ({"sql": "SELECT * FROM read_csv('/etc/passwd')"}, 400, "refused"),
            ({"sql": "SELECT count(*) FROM raw_events"}, 400, "refused"),
            ({"sql": "SELECT no_such_column FROM casts"}, 400, "no_such_column"),
            ({"sql": ""}, 422, "sql"),
            ({"query": "SELECT 1"}, 422, "sql"),
        ]
        for body, status, word in cases:
            answer = client.post("/v1/sql", json=body)
            assert answer.status_code == status, (body, answer.text)
            error = answer.json()["error"]
            assert word in error and "\n" not in error and "Traceback" not in error
        broken = client.post(
            "/v1/sql", content=b'{"sql": "SELECT', headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 422 and broken.json()["error"] == "the body is not valid JSON"
        huge = client.post("/v1/sql", json={"sql": "SELECT 1 -- " + "x" * 70_000})
        assert huge.status_code == 413 and "KiB" in huge.json()["error"]
        long_question = client.post("/v1/ask", json={"question": "why " * 400})
        assert long_question.status_code == 422 and "question" in long_question.json()["error"]

    def test_catalog_lists_the_layer_and_the_public_tables(self, client):
        body = client.get("/v1/catalog").json()
        metrics = {m["name"] for m in body["metrics"]}
        assert {"casts", "replies", "recasts", "likes"} <= metrics
        assert {"hour", "user"} <= {d["name"] for d in body["dimensions"]}
        assert {"hash", "fid", "text", "timestamp"} <= {c["name"] for c in body["tables"]["casts"]}
        assert "raw_events" not in body["tables"]

    def test_lineage_names_the_commits_and_neighbours_of_an_asset_partition(self, client):
        partition = stream_partitions.get_partition_keys()[2]
        body = client.get("/v1/lineage", params={"asset": "clean/casts", "partition": partition})
        assert body.status_code == 200, body.text
        lineage = body.json()
        assert lineage["commits"] and all(c["partition"] == partition for c in lineage["commits"])
        assert all(c["run_id"] for c in lineage["commits"])
        ids = [c["snapshot_id"] for c in lineage["commits"]]
        assert ids == sorted(ids, reverse=True)
        assert "raw/farcaster_events" in lineage["upstream"]
        assert "embeddings/casts" in lineage["downstream"]
        assert lineage["ui_url"].endswith(f"partition={partition}")
        unknown = client.get("/v1/lineage", params={"asset": "clean/nothing"})
        assert unknown.status_code == 404 and "clean/casts" in unknown.json()["error"]

    def test_health_says_what_is_up_and_metrics_count_requests_and_lag(self, client):
        health = client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["warehouse"]["up"] and body["broker"]["up"] and body["vectors"]["up"]
        assert body["llm"] == {"up": None, "detail": "not configured: the offline planner answers"}
        client.get("/v1/catalog")
        text = client.get("/metrics").text
        assert re.search(
            r'ozi_api_requests_total\{method="GET",route="/v1/catalog",status="200"\} \d', text
        )
        assert 'ozi_api_request_duration_seconds_bucket{le="0.005",route="/v1/catalog"}' in text
        assert 'ozi_up{component="broker"} 1.0' in text
        # The sample is fully read: no Kafka partition lags.
        lags = re.findall(r'ozi_consumer_lag_messages\{partition="(\d+)",stage="raw"\} (\S+)', text)
        assert lags and all(float(v) == 0.0 for _, v in lags)
        assert "ozi_newest_cast_age_seconds" in text and "ozi_lake_commit_age_seconds" in text


@pytest.mark.slow
def test_an_empty_home_answers_409_and_the_rate_limit_answers_429(tmp_path):
    settings = dataclasses.replace(
        make_settings(tmp_path / "ozi"), api_rate_limit="3/minute", kafka_bootstrap="127.0.0.1:9"
    )
    token = issue_token(settings.api_token_file, "small")
    with TestClient(create_app(settings)) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        first = http.post("/v1/ask", json={"question": COUNT_QUESTION})
        assert first.status_code == 409 and "materialize" in first.json()["error"]
        health = http.get("/health")
        assert health.status_code == 503
        assert health.json()["warehouse"]["up"] is False
        assert health.json()["broker"]["up"] is False
        statuses = [http.get("/v1/catalog").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = http.get("/v1/catalog")
        assert int(refused.headers["Retry-After"]) >= 1 and "rate limit" in refused.json()["error"]


# -- the real process, over HTTP and in a browser ---------------------------------------------


@pytest.fixture(scope="module")
def served(lake):
    settings, token = lake
    # The process reads its settings from the environment, as `ozi serve start` does.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OZI_DAGSTER_URL", DAGSTER_URL)
        address = start_owner(settings)
    assert address
    yield settings, token, f"http://{address}"
    processes.stop(settings.home, OWNER)


def http_json(url: str, token: str | None = None, body: dict | None = None):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read())


@pytest.mark.slow
def test_the_real_process_answers_over_http_and_logs_json_lines(served):
    settings, token, base = served
    status, headers, body = http_json(f"{base}/v1/ask", body={"question": COUNT_QUESTION})
    assert status == 401 and body["request_id"] == headers["X-Request-ID"]
    status, headers, body = http_json(f"{base}/v1/ask", token, {"question": COUNT_QUESTION})
    assert status == 200 and body["kind"] == "analytic" and body["lineage"]
    request_id = headers["X-Request-ID"]
    time.sleep(0.5)
    lines = [json.loads(line) for line in _log_lines(settings.home) if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert mine and mine[-1]["route"] == "/v1/ask" and mine[-1]["status"] == 200
    assert mine[-1]["token"] == "tests" and mine[-1]["ms"] > 0
    assert token not in "\n".join(_log_lines(settings.home)), "a token never reaches the log"


def _log_lines(home: Path) -> list[str]:
    return (home / f"{OWNER}.log").read_text().splitlines()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_the_question_page_in_a_real_browser(served, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM, "no system Chromium: `make test` installs Debian's chromium package"
    _, token, base = served
    question = "Who are the top 5 authors by casts?"
    _, _, expected = http_json(f"{base}/v1/ask", token, {"question": question})
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 1400})
        page.goto(base + "/")
        expect(page.locator("#health")).to_contain_text("warehouse up")
        page.fill("#token", token)
        page.dispatch_event("#token", "change")
        # The chart: one bar of casts per hourly window of the sample.
        expect(page.locator("rect.bar-casts")).to_have_count(
            len(stream_partitions.get_partition_keys())
        )
        page.fill("#question", question)
        page.click("#go")
        expect(page.locator("#answer")).to_have_text(expected["answer"], timeout=60_000)
        expect(page.locator("#sql")).to_contain_text("SELECT")
        first_user = expected["rows"][0]["username"]
        expect(page.locator("#rows")).to_contain_text(first_user)
        links = page.locator("a.asset-link")
        assert links.count() == len(expected["lineage"])
        assert all(
            (links.nth(i).get_attribute("href") or "").startswith(f"{DAGSTER_URL}/assets/")
            for i in range(links.count())
        )
        page.screenshot(path=str(tmp_path / "analytic.png"), full_page=True)
        # A semantic question: sources with links to the casts.
        page.fill("#question", "What are people saying about Denver?")
        page.click("#go")
        expect(page.locator("a.cast-link").first).to_be_visible(timeout=60_000)
        href = page.locator("a.cast-link").first.get_attribute("href") or ""
        assert href.startswith("https://warpcast.com/")
        # Bad input reaches the person as one line, not a stack.
        page.fill("#token", "ozi_wrong")
        page.dispatch_event("#token", "change")
        page.click("#go")
        expect(page.locator("#error")).to_have_text("401: unknown token")
        browser.close()
