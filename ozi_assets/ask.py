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


def _sources_md(answer: Answer) -> str:
    if not answer.sources:
        return "(no sources)"
    lines = ["| user | time (UTC) | score | text |", "|---|---|---|---|"]
    for s in answer.sources[:10]:
        text = " ".join(s.text.split()).replace("|", "\\|")[:140]
        score = f"{s.score:.2f}" if s.score is not None else ""
        lines.append(f"| @{s.username} | {s.timestamp[:16]} | {score} | {text} |")
    return "\n".join(lines)


def answer_metadata(answer: Answer, prefix: str = "") -> dict[str, Any]:
    """Dagster metadata for one answer: text, kind, planner, SQL, sources, lineage, freshness."""
    md: dict[str, Any] = {
        f"{prefix}answer": dg.MetadataValue.text(answer.answer),
        f"{prefix}kind": dg.MetadataValue.text(answer.kind),
        f"{prefix}planner": dg.MetadataValue.text(answer.planner),
        f"{prefix}sources": dg.MetadataValue.md(_sources_md(answer)),
        f"{prefix}data_as_of": dg.MetadataValue.json(answer.data_as_of or {}),
    }
    if answer.sql:
        md[f"{prefix}sql"] = dg.MetadataValue.md(f"```sql\n{answer.sql}\n```")
    return md


class AskConfig(dg.Config):
    question: str


@dg.op(description="Answer one question; the answer is this run's output metadata.")
def answer_question(
    context: dg.OpExecutionContext,
    config: AskConfig,
    warehouse: WarehouseResource,
    vectors: VectorStoreResource,
    embedder: EmbedderResource,
    llm: LlmResource,
) -> dg.Output[dict]:
    answer = ask(Services(warehouse, vectors, embedder, llm), config.question)
    context.log.info(answer.render())
    record = answer.to_dict()
    metadata = answer_metadata(answer)
    metadata["answer_json"] = dg.MetadataValue.json(record)
    metadata["lineage"] = dg.MetadataValue.json(record["lineage"])
    return dg.Output(record, metadata=metadata)


@dg.job(
    description="Ad-hoc question: set ops.answer_question.config.question in the launchpad.",
    tags={"ozi/kind": "question"},
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
    """Answers to the standing questions (standing_questions.yaml), one metadata group per
    question id, and all answers as JSON in ``answers``. Source: the aggregates, the clean
    tables they summarize, and embeddings/casts."""
    services = Services(warehouse, vectors, embedder, llm)
    records = []
    metadata: dict[str, Any] = {}
    for entry in load_standing_questions():
        answer = ask(services, entry["question"])
        records.append({"id": entry["id"], **answer.to_dict()})
        metadata.update(answer_metadata(answer, prefix=f"{entry['id']}/"))
    metadata["answers"] = dg.MetadataValue.json(records)
    metadata["questions"] = dg.MetadataValue.int(len(records))
    return dg.MaterializeResult(metadata=metadata)


# Dagster's implicit automation sensor starts stopped; this one is on from the start, so the
# standing answers follow the data under `make dev` with nothing to switch on.
answers_automation_sensor = dg.AutomationConditionSensorDefinition(
    "answers_automation_sensor",
    target=dg.AssetSelection.groups("answers"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Re-materializes answers/standing_questions when its upstream assets update.",
)
