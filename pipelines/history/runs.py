"""Every recorded run, from MLMD: what `alexnet-tfx runs` lists.

Runs may come from earlier versions of the pipeline, so their artifacts are found by MLMD
type (each of these types has one producer), not by today's node ids.
"""

from __future__ import annotations

import dataclasses
import datetime

from components.run_report.artifact_facts import evaluation_facts
from components.run_report.summary import int_property, string_property
from contract.artifact_properties import BLESSED, PUSHED, PUSHED_VERSION
from pipelines.history.lineage import open_store, recorded_runs


@dataclasses.dataclass(frozen=True)
class RunRow:
    pipeline: str
    run_id: str
    time: str  # ISO 8601, seconds
    accuracy: float | None
    blessed: bool | None
    pushed_version: int | None


def list_runs(metadata_path: str) -> list[RunRow]:
    """Every recorded pipeline run, oldest first."""
    rows = []
    for run, lineage in recorded_runs(open_store(metadata_path)):
        evaluation = lineage.output_of_type("ModelEvaluation")
        blessing = lineage.output_of_type("ModelBlessing")
        push = lineage.output_of_type("PushedModel")
        pushed = push is not None and int_property(push, PUSHED) == 1
        facts = evaluation_facts(evaluation.uri, None) if evaluation is not None else None
        rows.append(
            RunRow(
                pipeline=lineage.pipeline_name,
                run_id=run.name,
                time=datetime.datetime.fromtimestamp(run.create_time_since_epoch / 1000).isoformat(
                    timespec="seconds"
                ),
                accuracy=facts["metrics"]["accuracy"] if facts else None,
                blessed=None if blessing is None else int_property(blessing, BLESSED) == 1,
                pushed_version=int(string_property(push, PUSHED_VERSION)) if pushed else None,
            )
        )
    return sorted(rows, key=lambda row: row.time)


def format_runs(rows: list[RunRow]) -> str:
    lines = [f"{'run id':<26}{'time':<21}{'accuracy':>9}  {'blessed':<8}pushed"]
    for row in rows:
        accuracy = f"{row.accuracy:.4f}" if row.accuracy is not None else "-"
        blessed = {True: "yes", False: "no", None: "-"}[row.blessed]
        pushed = f"v{row.pushed_version}" if row.pushed_version else "-"
        lines.append(f"{row.run_id:<26}{row.time:<21}{accuracy:>9}  {blessed:<8}{pushed}")
    return "\n".join(lines)
