"""Kubeflow Pipelines: the compiled spec validated offline, submitted to a stub KFP API, and
executed task by task the way the KFP v2 launcher would."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

IMAGE = "registry.example.com/alexnet-tfx:1.0"


def _compile(config, output, data, serving, root, gpus, *extra):
    return run_cli(
        "compile",
        "--image",
        IMAGE,
        "--preset",
        "tiny",
        "--config",
        config,
        "--data",
        data,
        "--serving-dir",
        serving,
        "--pipeline-root",
        root,
        "--gpus",
        gpus,
        "--output",
        output,
        *extra,
    )


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The tiny pipeline compiled twice, against remote URIs the compiling machine lacks."""
    base = tmp_path_factory.mktemp("compile")
    config = base / "cluster.yaml"
    config.write_text("num_classes: 2\n")
    outputs = []
    for name in ("a.yaml", "b.yaml"):
        result = _compile(
            config,
            base / name,
            data="gs://bucket/images",
            serving="gs://bucket/serving",
            root="gs://bucket/root",
            gpus="2",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(base / name)
    return outputs


def _spec(path):
    return yaml.safe_load(path.read_text())


def test_compiling_twice_gives_identical_files(compiled):
    assert compiled[0].read_bytes() == compiled[1].read_bytes()


def test_spec_is_a_strict_kfp_2_1_pipeline_spec(compiled):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = _spec(compiled[0])
    assert spec["schemaVersion"] == "2.1.0"
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # unknown fields fail


def test_kfp_sdk_loads_the_spec(compiled):
    from kfp import components

    component = components.load_component_from_file(str(compiled[0]))
    assert component.name


def test_every_task_runs_the_image_with_resources(compiled, tiny_wiring, node_id):
    spec = _spec(compiled[0])
    executors = spec["deploymentSpec"]["executors"]
    assert set(spec["root"]["dag"]["tasks"]) == set(tiny_wiring.node_ids())
    assert len(executors) == len(spec["root"]["dag"]["tasks"]) == 11
    for label, executor in executors.items():
        container = executor["container"]
        assert container["image"] == IMAGE, label
        assert container["resources"]["cpuRequest"] > 0
        assert container["resources"]["memoryRequest"] > 0
        if label == f"{node_id('model')}_executor":
            assert container["resources"]["accelerator"] == {
                "type": "nvidia.com/gpu",
                "count": "2",
                "resourceType": "nvidia.com/gpu",
                "resourceCount": "2",
            }
        else:
            assert "accelerator" not in container["resources"], label


def test_tuner_and_bulk_inferrer_are_tasks_and_the_tuner_gets_the_gpus(tmp_path, demo_dir):
    config = tmp_path / "cluster.yaml"
    config.write_text("num_classes: 2\n")
    output = tmp_path / "tuned.yaml"
    extra = ("--tune", "--bulk-infer-data", "gs://bucket/new-images")
    result = _compile(
        config, output, "gs://bucket/images", "gs://bucket/serving", "gs://r", "1", *extra
    )
    assert result.returncode == 0, result.stderr[-3000:]
    spec = _spec(output)
    tasks = spec["root"]["dag"]["tasks"]
    assert {"Tuner", "BulkInferExampleGen", "BulkInferrer"} <= set(tasks)
    trainer_inputs = tasks["Trainer"]["inputs"]["artifacts"]
    assert trainer_inputs["hyperparameters"]["taskOutputArtifact"]["producerTask"] == "Tuner"
    executors = spec["deploymentSpec"]["executors"]
    assert executors["Tuner_executor"]["container"]["resources"]["accelerator"]["count"] == "1"
    assert "modules.tuner.tuner_fn" in output.read_text()
    assert "gs://bucket/new-images" in output.read_text()


def test_module_code_is_referenced_by_import_path(compiled):
    text = compiled[0].read_text()
    assert "modules.trainer.run_fn" in text
    assert "modules.transform.preprocessing_fn" in text
    assert "module_file" not in text and "module_path" not in text


def test_no_paths_from_the_compiling_machine(compiled):
    text = compiled[0].read_text()
    for local in {os.getcwd(), os.path.expanduser("~"), str(compiled[0].parent), "/tmp/"}:
        assert local not in text, local
    assert "gs://bucket/images" in text and "gs://bucket/serving/alexnet" in text


def test_only_the_trainer_task_is_retried(compiled, node_id):
    tasks = _spec(compiled[0])["root"]["dag"]["tasks"]
    retried = {name: task["retryPolicy"] for name, task in tasks.items() if "retryPolicy" in task}
    assert list(retried) == [node_id("model")]
    assert retried[node_id("model")]["maxRetryCount"] >= 1


def test_baseline_task_is_never_cached(compiled, node_id):
    tasks = _spec(compiled[0])["root"]["dag"]["tasks"]
    assert tasks[node_id("baseline_model")]["cachingOptions"] == {"enableCache": False}
    uncached = [
        name for name, task in tasks.items() if task["cachingOptions"] != {"enableCache": True}
    ]
    assert uncached == [node_id("baseline_model")]
    # An ordinary container step: open-source KFP runs no resolver executors.
    executors = _spec(compiled[0])["deploymentSpec"]["executors"]
    assert all(set(executor) == {"container"} for executor in executors.values())


class _StubKfp(BaseHTTPRequestHandler):
    received: list = []

    def _reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self.received.append(("GET", self.path, None))
        if self.path.startswith("/apis/v2beta1/healthz"):
            self._reply({"multi_user": False})
        else:
            self._reply({"experiments": [], "total_size": 0})

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.received.append(("POST", self.path, body))
        if self.path.startswith("/apis/v2beta1/experiments"):
            self._reply({"experiment_id": "exp-7", "display_name": body["display_name"]})
        elif self.path.startswith("/apis/v2beta1/recurringruns"):
            self._reply({"recurring_run_id": "rr-9", "display_name": body.get("display_name")})
        else:
            self._reply({"run_id": "run-42", "display_name": body.get("display_name")})

    def log_message(self, *args):
        pass


@pytest.fixture
def kfp_host():
    """The URL of a stub KFP API that records what it received in _StubKfp.received."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubKfp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _StubKfp.received.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_submit_sends_spec_root_and_experiment_to_kfp(compiled, kfp_host):
    result = run_cli(
        "submit",
        "--host",
        kfp_host,
        "--experiment",
        "nightly",
        "--package",
        str(compiled[0]),
        "--pipeline-root",
        "gs://bucket/runs",
        "--run-name",
        "try-1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith(f"{kfp_host}/#/runs/details/run-42")
    experiments = [b for m, p, b in _StubKfp.received if m == "POST" and "experiments" in p]
    assert experiments[0]["display_name"] == "nightly"
    run = next(b for m, p, b in _StubKfp.received if m == "POST" and p.endswith("/runs"))
    assert run["experiment_id"] == "exp-7" and run["display_name"] == "try-1"
    assert run["runtime_config"]["pipeline_root"] == "gs://bucket/runs"
    spec = _spec(compiled[0])
    assert run["pipeline_spec"]["pipelineInfo"] == spec["pipelineInfo"]
    assert set(run["pipeline_spec"]["root"]["dag"]["tasks"]) == set(spec["root"]["dag"]["tasks"])
    assert (
        run["pipeline_spec"]["deploymentSpec"]["executors"]["Trainer_executor"]["container"][
            "image"
        ]
        == IMAGE
    )


def test_schedule_creates_a_recurring_run_of_the_package(compiled, kfp_host):
    result = run_cli(
        "schedule",
        "--host",
        kfp_host,
        "--cron",
        "30 2 * * *",
        "--package",
        compiled[0],
        "--pipeline-root",
        "gs://bucket/runs",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith(f"{kfp_host}/#/recurringrun/details/rr-9")
    job = next(b for m, p, b in _StubKfp.received if m == "POST" and "recurringruns" in p)
    assert job["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"  # KFP's seconds first
    assert job["experiment_id"] == "exp-7" and int(job["max_concurrency"]) == 1
    assert job["no_catchup"] is True and job["mode"] == "ENABLE"
    assert job["runtime_config"]["pipeline_root"] == "gs://bucket/runs"
    spec = _spec(compiled[0])
    assert set(job["pipeline_spec"]["root"]["dag"]["tasks"]) == set(spec["root"]["dag"]["tasks"])


@pytest.mark.parametrize("cron", ["* * *", "every day"])
def test_schedule_with_a_malformed_cron_is_a_one_line_error(compiled, cron):
    result = run_cli(
        "schedule", "--host", "http://127.0.0.1:9", "--cron", cron, "--package", compiled[0]
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: --cron:")


def test_submit_to_unreachable_host_fails_clearly_and_quickly():
    import time

    started = time.monotonic()
    result = run_cli("submit", "--host", "http://127.0.0.1:9", "--package", __file__)
    assert result.returncode == 1
    assert "Could not reach Kubeflow Pipelines at http://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 90


@pytest.fixture(scope="module")
def conformance(tmp_path_factory, node_id):
    """The tiny pipeline compiled once, with local URIs, then executed from the spec alone:
    on data with span 1 (it pushes v1), and again after span 2 arrived."""
    from kfp_launcher import run_spec
    from trainer_harness import has_checkpoint

    from pipelines.demo_data import write_demo_spans

    base = tmp_path_factory.mktemp("kfp-run")
    trainer = node_id("model")
    write_demo_spans(base / "arriving", 2, per_class=40, seed=5)
    (base / "data").mkdir()
    (base / "arriving" / "span-1").rename(base / "data" / "span-1")
    config = base / "tolerant.yaml"
    # The second run trains on new data; allow its accuracy to differ a little.
    config.write_text("regression_epsilon: 0.3\n")
    spec = base / "spec.yaml"
    result = _compile(
        config,
        spec,
        data=str(base / "data"),
        serving=str(base / "serving"),
        root=str(base / "root"),
        gpus="0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The first run's Trainer pod is killed once it has a checkpoint, and retried.
    first = run_spec(
        str(spec),
        str(base / "root"),
        "run-1",
        kill_first={trainer: has_checkpoint},
    )
    (base / "arriving" / "span-2").rename(base / "data" / "span-2")
    second = run_spec(str(spec), str(base / "root"), "run-2")
    return first, second, base / "serving" / "alexnet"


@pytest.fixture(scope="module")
def artifact(tiny_wiring):
    """artifact(outputs, role): the artifact a task of the spec run wrote for that role."""
    sources = tiny_wiring.sources()

    def find(outputs, role):
        source = sources[role]
        return outputs[source.node_id][source.key]["artifacts"][0]

    return find


def _history(outputs, artifact):
    return json.loads(
        open(os.path.join(artifact(outputs, "model")["uri"], "training_history.json")).read()
    )


def test_compiled_spec_runs_every_task_and_pushes(conformance, artifact):
    first, _, serving = conformance
    assert len(first) == 11
    examples = artifact(first, "examples")["metadata"]
    # TFX's driver records the span as a custom property; KFP metadata prefixes it.
    assert examples["custom:span"] == 1 and json.loads(examples["spans"]) == [1]
    assert artifact(first, "baseline_model")["metadata"]["baseline_version"] == 0
    assert _history(first, artifact)["warm_started_from"] is None
    # The serving check ran the candidate in the model server inside its task.
    assert artifact(first, "infra_blessing")["metadata"]["blessed"] == 1
    push = artifact(first, "pushed_model")["metadata"]
    assert push["pushed"] == 1 and push["pushed_version"] == "1"
    assert (serving / "1" / "saved_model.pb").exists()
    assert (serving / "1" / "assets.extra" / "tf_serving_warmup_requests").exists()


def test_a_retried_trainer_pod_resumes_from_its_last_epoch(conformance, artifact, node_id):
    """Its attempts write to different URIs (KFP salts them); the backup is found by the
    training's fingerprint, and the retry trains the remaining epochs only."""
    first, _, _ = conformance
    history = _history(first, artifact)
    assert history["resumed_from_epoch"] >= 1
    assert history["epochs"] == 4 and None not in history["loss"]
    model = Path(artifact(first, "model")["uri"])
    trainer_dir = model.parent.parent
    assert model.parent.name == "2"  # the retry's outputs
    assert not (trainer_dir / "1" / "model" / "Format-Serving" / "saved_model.pb").exists()
    assert not list(trainer_dir.glob("backup/*/checkpoint"))


def test_the_same_spec_picks_up_the_new_span_and_warm_starts(conformance, artifact):
    """The one compiled spec resolves the newest span at run time, reads the window, and
    trains on from the version the first run pushed."""
    _, second, _ = conformance
    examples = artifact(second, "examples")["metadata"]
    assert examples["custom:span"] == 2 and json.loads(examples["spans"]) == [1, 2]
    assert examples["eval_span"] == 2
    history = _history(second, artifact)
    assert history["warm_started_from"] == 1 and history["spans"] == [1, 2]
    # Span 2 is the shifted demo span: other sizes, PNG.
    drift = artifact(second, "drift")["metadata"]
    assert drift["compared_with_served"] == 1


def test_second_spec_run_compares_against_the_served_baseline(conformance, artifact):
    import tensorflow_model_analysis as tfma

    _, second, serving = conformance
    baseline = artifact(second, "baseline_model")
    assert baseline["metadata"]["baseline_version"] == 1
    assert baseline["metadata"]["baseline_source"] == str(serving / "1")
    evaluation = artifact(second, "evaluation")["uri"]
    models = {
        item.key.model_name
        for metrics in tfma.load_metrics(evaluation)
        for item in metrics.metric_keys_and_values
    }
    assert models == {"candidate", "baseline"}
    push = artifact(second, "pushed_model")["metadata"]
    assert push["pushed"] == 1 and push["pushed_version"] == "2"
    assert sorted(p.name for p in serving.iterdir()) == ["1", "2"]
