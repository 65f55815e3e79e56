"""The run summary's JSON schema: committed, current, and met by real runs' summaries."""

import json
from pathlib import Path

import jsonschema
import pytest

from components.run_report.summary import RunSummary

SCHEMA = Path(__file__).parent.parent / "docs" / "summary.schema.json"


@pytest.fixture(scope="module")
def schema():
    return json.loads(SCHEMA.read_text())


def test_committed_schema_is_the_typed_summarys(schema):
    assert schema == RunSummary.model_json_schema(), (
        "docs/summary.schema.json is stale: uv run python -m components.run_report.summary > "
        "docs/summary.schema.json"
    )


def test_every_summary_of_the_shared_runs_meets_the_schema(schema, first_run, workspace):
    summary, _ = first_run
    written = sorted(workspace.root.glob("runs/*/summary.json"))
    assert written and Path(summary["report_path"]).parent / "summary.json" in written
    for path in [*written, *workspace.root.glob("summary-*.json")]:
        jsonschema.validate(json.loads(path.read_text()), schema)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.pop("run_id"), "'run_id' is a required property"),
        (lambda s: s.update(accuracy=0.9), "Additional properties are not allowed"),
        (lambda s: s["training"].update(epochs="four"), "'four' is not of type 'integer'"),
        (lambda s: s["components"].update(X={"status": "done", "seconds": 1}), "is not one of"),
    ],
)
def test_the_schema_is_strict(schema, first_run, change, message):
    summary = json.loads(json.dumps(first_run[0]))
    change(summary)
    with pytest.raises(jsonschema.ValidationError, match=message):
        jsonschema.validate(summary, schema)
