"""The two Dagster faces of question answering.

- ``ask_job``: an ops job whose run config is one ad-hoc question; the answer (text, SQL,
  sources, lineage) is recorded as output metadata of the run, so the UI shows it.
- ``answers/standing_questions``: an asset holding the answers to the questions listed in
  ``standing_questions.yaml`` (or the file named by OZI_STANDING_QUESTIONS). It depends on the
  aggregates and the embeddings, and its automation condition re-materializes it when they
  update, so its lineage in the UI runs from Kafka to the answers.
"""

import os
from importlib import resources
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import Field

from ozi_assets.aggregates import aggregates
from ozi_assets.embeddings import cast_embeddings
from ozi_assets.questions.answer import Answer
from ozi_assets.questions.engine import Services, ask
from ozi_assets.questions.llm import LlmResource
from ozi_resources.vectors import EmbedderResource, VectorStoreResource
from ozi_resources.warehouse import WarehouseResource


def load_standing_questions(path: str | None = None) -> list[dict[str, str]]:
    """[{"id", "question"}, ...] from the YAML file; raises ValueError on a malformed file."""
    source = path or os.environ.get("OZI_STANDING_QUESTIONS")
    if source:
        text = Path(source).read_text()
    else:
        text = resources.files("ozi_assets").joinpath("standing_questions.yaml").read_text()
    entries = (yaml.safe_load(text) or {}).get("questions") or []
    seen = set()
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("question"):
            raise ValueError(f"each standing question needs an id and a question: {entry!r}")
        if entry["id"] in seen:
            raise ValueError(f"standing question id {entry['id']!r} appears twice")
        seen.add(entry["id"])
    return [{"id": str(e["id"]), "question": str(e["question"])} for e in entries]


def _one_line(text: object, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _cell(text: object, limit: int = 200) -> str:
    """One Markdown table cell: on one line, at most ``limit`` characters, pipes escaped."""
    return _one_line(text, limit).replace("|", "\\|")


def _sources_md(answer: Answer) -> str:
    if not answer.sources:
        return "(no sources)"
    lines = ["| user | time (UTC) | score | text |", "|---|---|---|---|"]
    for s in answer.sources[:10]:
        score = f"{s.score:.2f}" if s.score is not None else ""
        lines.append(f"| @{s.username} | {s.timestamp[:16]} | {score} | {_cell(s.text, 140)} |")
    return "\n".join(lines)


def _rows_md(rows: list[dict[str, Any]], limit: int = 10) -> str:
    """The first ``limit`` rows of an answer as a Markdown table ("" for no rows)."""
    if not rows:
        return ""
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += [
        "| " + " | ".join(_cell(row.get(n, "")) for n in names) + " |" for row in rows[:limit]
    ]
    if len(rows) > limit:
        lines.append(f"\n{len(rows) - limit} more rows in `answer_json`")
    return "\n".join(lines)


def answer_markdown(answer: Answer) -> str:
    """The answer as a person reads it in the UI: the question, the answer, its first rows
    as a table, then how it was answered (kind, planner, the lake snapshot and event time it
    read). The SQL and the sources are separate entries."""
    parts = [f"### {_cell(answer.question, 300)}", answer.answer]
    table = _rows_md(answer.rows)
    if table:
        parts.append(table)
    facts = [answer.kind, f"planner {answer.planner}"]
    seen = answer.data_as_of or {}
    if seen.get("event_time"):
        facts.append(f"data as of {seen['event_time']} (lake snapshot {seen.get('snapshot_id')})")
    parts.append("*" + " · ".join(facts) + "*")
    return "\n\n".join(parts)


def answer_metadata(answer: Answer) -> dict[str, Any]:
    """Dagster metadata for one answer: the answer as Markdown, kind, planner, SQL (in its
    own entry), sources, freshness."""
    md: dict[str, Any] = {
        "answer": dg.MetadataValue.md(answer_markdown(answer)),
        "kind": dg.MetadataValue.text(answer.kind),
        "planner": dg.MetadataValue.text(answer.planner),
        "sources": dg.MetadataValue.md(_sources_md(answer)),
        "data_as_of": dg.MetadataValue.json(answer.data_as_of or {}),
    }
    if answer.sql:
        md["sql"] = dg.MetadataValue.md(f"```sql\n{answer.sql}\n```")
    return md


QUESTION_TAG = "ozi/question"  # the question of an ask_job run, on the run's page and list
MAX_TAG_CHARS = 200  # run lists show tags on one line; the config holds the whole question
EXAMPLE_QUESTION = "How many casts did dwr post?"


class AskConfig(dg.Config):
    question: str = Field(description="A question in plain language, e.g. " + EXAMPLE_QUESTION)


@dg.op(description="Answer one question; the answer is this run's output metadata.")
def answer_question(
    context: dg.OpExecutionContext,
    config: AskConfig,
    warehouse: WarehouseResource,
    vectors: VectorStoreResource,
    embedder: EmbedderResource,
    llm: LlmResource,
) -> dg.Output[dict]:
    """Tags the run with its question (``ozi/question``), then answers it: output is the
    answer record (README, "Questions"), its metadata the answer as Markdown, the SQL, the
    sources and the lineage."""
    tag = _one_line(config.question, MAX_TAG_CHARS)
    context.instance.add_run_tags(context.run_id, {QUESTION_TAG: tag})
    answer = ask(Services(warehouse, vectors, embedder, llm), config.question)
    context.log.info(answer.render())
    record = answer.to_dict()
    metadata = answer_metadata(answer)
    metadata["answer_json"] = dg.MetadataValue.json(record)
    metadata["lineage"] = dg.MetadataValue.json(record["lineage"])
    return dg.Output(record, metadata=metadata)


# The launchpad opens on this config (an example question to edit) instead of on "Missing
# required config entry"; a run launched with other config answers that question.
@dg.job(
    description="Ad-hoc question: edit ops.answer_question.config.question in the launchpad.",
    tags={"ozi/kind": "question"},
    config=dg.RunConfig(ops={"answer_question": AskConfig(question=EXAMPLE_QUESTION)}),
)
def ask_job() -> None:
    answer_question()


STANDING_DEPS = [*aggregates.keys, cast_embeddings.key]

# eager() minus "every upstream partition exists": on an open-ended stream the window being
# filled is often not materialized yet, and the answers should still follow the data. eager()
# also never fills an asset that was missing before automation first saw it (so a deploy does
# not launch everything at once); the answers are cheap, so the first evaluation that finds
# them missing requests them, once, if there is data to answer from (on an empty OZI_HOME
# that run could only fail; the eager part requests it when the first upstream lands).
standing_condition = dg.AutomationCondition.eager().without(
    ~dg.AutomationCondition.any_deps_missing()
) | (
    dg.AutomationCondition.missing().newly_true()
    & ~dg.AutomationCondition.in_progress()
    & dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing())
)


@dg.asset(
    key=["answers", "standing_questions"],
    deps=STANDING_DEPS,
    group_name="answers",
    automation_condition=standing_condition,
    kinds={"python"},
)
def standing_answers(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    vectors: VectorStoreResource,
    embedder: EmbedderResource,
    llm: LlmResource,
) -> dg.MaterializeResult:
    """Answers to the standing questions (standing_questions.yaml): one question → answer
    table, the SQL apart, and all answers as JSON in ``answers``. Source: the aggregates,
    the clean tables they summarize, and embeddings/casts."""
    services = Services(warehouse, vectors, embedder, llm)
    records = []
    for entry in load_standing_questions():
        answer = ask(services, entry["question"])
        records.append({"id": entry["id"], **answer.to_dict()})
    return dg.MaterializeResult(metadata=standing_metadata(records))


def standing_metadata(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The standing answers as the UI shows them: one table (id, question, answer, kind; each
    answer on one line, at most 200 characters), every answer's SQL together in one Markdown
    entry of its own, counts (plotted over materializations), and every record as JSON in
    ``answers``."""
    table = dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "id": r["id"],
                    "question": r["question"],
                    "answer": _one_line(r["answer"]),
                    "kind": r["kind"],
                }
            )
            for r in records
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("id"),
                dg.TableColumn("question"),
                dg.TableColumn("answer"),
                dg.TableColumn("kind"),
            ]
        ),
    )
    sql = "\n\n".join(
        f"**{r['id']}**: {r['question']}\n\n```sql\n{r['sql']}\n```" for r in records if r["sql"]
    )
    return {
        "standing_answers": table,
        "sql": dg.MetadataValue.md(sql or "(no SQL: every answer is a search)"),
        "questions": dg.MetadataValue.int(len(records)),
        "unanswered": dg.MetadataValue.int(sum(r["kind"] == "unanswered" for r in records)),
        "answers": dg.MetadataValue.json(records),
    }


# Dagster's implicit automation sensor starts stopped; this one is on from the start, so the
# standing answers follow the data under `make dev` with nothing to switch on.
answers_automation_sensor = dg.AutomationConditionSensorDefinition(
    "answers_automation_sensor",
    target=dg.AssetSelection.groups("answers"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Re-materializes answers/standing_questions when its upstream assets update.",
)
