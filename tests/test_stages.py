"""Adding a stage is one entry in pipelines.pipeline.STAGES: the local run, the compiled
Kubeflow spec and the run summary all pick it up with no other edit."""

import json

import pytest
import yaml
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Examples


@component
def CountExamples(examples: InputArtifact[Examples]) -> None:  # noqa: N802 (a component)
    """A stand-in for a real stage: it checks that it was given both splits."""
    if sorted(json.loads(examples.split_names)) != ["eval", "train"]:
        raise ValueError(f"unexpected splits {examples.split_names}")


def count_examples(wiring, config, data):
    wiring.add(CountExamples(examples=wiring.examples))


@pytest.fixture
def with_dummy_stage(monkeypatch):
    from pipelines import pipeline

    # The one edit: an optional stage after ingestion, switched by a boolean config field.
    entry = pipeline.StageEntry(count_examples, enabled_by="fail_on_anomalies")
    monkeypatch.setattr(pipeline, "STAGES", (*pipeline.STAGES[:1], entry, *pipeline.STAGES[1:]))


def _config(demo_dir, tmp_path, enabled):
    from pipelines.config import build_config

    return build_config(
        "tiny", data=str(demo_dir), output_root=str(tmp_path), fail_on_anomalies=enabled
    )


def test_the_stage_is_off_unless_its_flag_is_set(with_dummy_stage, demo_dir, tmp_path):
    from conftest import wiring_for

    assert "CountExamples" in wiring_for(_config(demo_dir, tmp_path, True)).node_ids()
    assert "CountExamples" not in wiring_for(_config(demo_dir, tmp_path, False)).node_ids()


def test_the_stage_runs_locally_and_shows_in_the_summary(
    with_dummy_stage, demo_dir, tmp_path, node_id
):
    from pipelines.local_runner import run_pipeline

    summary = run_pipeline(_config(demo_dir, tmp_path, True), to_component="CountExamples")
    assert list(summary.components) == [node_id("examples"), "CountExamples"]
    assert summary.components["CountExamples"].status == "complete"


def test_the_stage_is_a_task_of_the_compiled_spec(with_dummy_stage, demo_dir, tmp_path, node_id):
    from pipelines.kubeflow.runner import compile_pipeline

    output = tmp_path / "spec.yaml"
    compile_pipeline(_config(demo_dir, tmp_path, True), "example.com/alexnet:1", str(output), 0)
    spec, _platform = yaml.safe_load_all(output.read_text())
    task = spec["root"]["dag"]["tasks"]["CountExamples"]
    producer = task["inputs"]["artifacts"]["examples"]["taskOutputArtifact"]["producerTask"]
    assert producer == node_id("examples")
    container = spec["deploymentSpec"]["executors"]["CountExamples_executor"]["container"]
    assert "test_stages.CountExamples_Executor" in " ".join(container["args"])
