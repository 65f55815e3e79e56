"""Kubeflow Pipelines: the compiled spec validated offline, submitted to a stub KFP API, and
executed task by task the way the KFP v2 launcher would."""

import dataclasses
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import run_cli

IMAGE = "registry.example.com/alexnet-tfx:1.0"


def _compile(config, output, data, serving, gpus, *extra):
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
            gpus="2",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(base / name)
    return outputs


def _documents(path):
    return list(yaml.safe_load_all(path.read_text()))


def _spec(path):
    """The PipelineSpec: the package's first document (the platform spec follows)."""
    return _documents(path)[0]


def test_compiling_twice_gives_identical_files(compiled):
    assert compiled[0].read_bytes() == compiled[1].read_bytes()


def test_spec_is_a_strict_kfp_2_1_pipeline_spec(compiled):
    from google.protobuf import json_format
    from kfp.kubernetes import kubernetes_executor_config_pb2
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec, platform = _documents(compiled[0])
    assert spec["schemaVersion"] == "2.1.0"
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # unknown fields fail
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    for config in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())


def test_every_task_runs_our_entrypoint_with_its_input_types(compiled):
    """Open-source KFP hands input artifacts without a type; each task's inputs spec
    carries its component's input definitions instead."""
    import json

    spec = _spec(compiled[0])
    for name, task in spec["root"]["dag"]["tasks"].items():
        component = spec["components"][task["componentRef"]["name"]]
        container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        assert container["command"] == ["python", "-m", "pipelines.kubeflow.entrypoint"], name
        args = container["args"]
        inputs_spec = json.loads(args[args.index("--json_serialized_inputs_spec_args") + 1])
        expected = component.get("inputDefinitions", {}).get("artifacts", {})
        assert inputs_spec["artifacts"] == expected, name


def test_every_task_reaches_the_store_with_the_clusters_secret(compiled):
    spec, platform = _documents(compiled[0])
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == set(spec["deploymentSpec"]["executors"])
    for label, executor in spec["deploymentSpec"]["executors"].items():
        assert executor["container"]["env"] == [
            {"name": "AWS_ENDPOINT_URL", "value": "http://seaweedfs.kubeflow:9000"}
        ]
        (secret,) = executors[label]["secretAsEnv"]
        assert secret["secretName"] == "mlpipeline-minio-artifact" and secret["optional"]
        assert {m["envVar"]: m["secretKey"] for m in secret["keyToEnv"]} == {
            "AWS_ACCESS_KEY_ID": "accesskey",
            "AWS_SECRET_ACCESS_KEY": "secretkey",
        }


def test_the_report_task_outputs_the_types_kfps_ui_draws(compiled):
    """MetricsVisualizations.tsx renders only these four types; tfx.* artifacts get no view."""
    spec = _spec(compiled[0])
    outputs = spec["components"]["RunReport"]["outputDefinitions"]["artifacts"]
    titles = {
        key: yaml.safe_load(output["artifactType"]["instanceSchema"])["title"]
        for key, output in outputs.items()
    }
    assert titles == {
        "metrics": "system.Metrics",
        "confusion_matrix": "system.ClassificationMetrics",
        "summary": "system.Markdown",
        "report": "system.HTML",
    }


def test_compile_refuses_a_pipeline_root_that_kubeflow_would_ignore(tmp_path):
    result = run_cli(
        "compile", "--image", IMAGE, "--preset", "tiny", "--data", "gs://b/images",
        "--pipeline-root", "gs://b/root", "--output", tmp_path / "x.yaml",
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: --pipeline-root: Kubeflow Pipelines takes")
    assert len(result.stderr.strip().splitlines()) == 1


def test_kfp_sdk_loads_the_spec(compiled):
    from kfp import components

    component = components.load_component_from_file(str(compiled[0]))
    assert component.name


def test_every_task_runs_the_image_with_resources(compiled, tiny_wiring, node_id):
    spec = _spec(compiled[0])
    executors = spec["deploymentSpec"]["executors"]
    # The local pipeline's nodes, and the report for KFP's UI.
    assert set(spec["root"]["dag"]["tasks"]) == set(tiny_wiring.node_ids()) | {"RunReport"}
    assert len(executors) == len(spec["root"]["dag"]["tasks"]) == 12
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
    result = _compile(config, output, "gs://bucket/images", "gs://bucket/serving", "1", *extra)
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


def test_tasks_that_read_the_data_or_the_serving_dir_are_never_cached(compiled, node_id):
    """KFP's cache key is a task's inputs and command (driver/cache.go): a cached
    ExampleGen would never see a new span, a cached resolver never a new push."""
    tasks = _spec(compiled[0])["root"]["dag"]["tasks"]
    uncached = [
        name for name, task in tasks.items() if task["cachingOptions"] != {"enableCache": True}
    ]
    assert sorted(uncached) == sorted([node_id("examples"), node_id("baseline_model")])
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
    spec, platform = _documents(compiled[0])
    # kfp.Client sends a package with a platform spec as both (client.py _PipelineDoc).
    sent = run["pipeline_spec"]
    assert sent["platform_spec"] == platform
    assert sent["pipeline_spec"]["pipelineInfo"] == spec["pipelineInfo"]
    assert set(sent["pipeline_spec"]["root"]["dag"]["tasks"]) == set(spec["root"]["dag"]["tasks"])
    executor = sent["pipeline_spec"]["deploymentSpec"]["executors"]["Trainer_executor"]
    assert executor["container"]["image"] == IMAGE


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
    sent = job["pipeline_spec"]["pipeline_spec"]
    assert set(sent["root"]["dag"]["tasks"]) == set(spec["root"]["dag"]["tasks"])


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


KFP_ROOT = "minio://mlpipeline/v2/artifacts"  # open-source KFP's default (config/env.go)


@dataclasses.dataclass
class StrictRuns:
    """The tiny pipeline compiled once and run on the strict launcher, with its data and its
    serving directory in buckets: span 1 under KFP's default minio:// root (the Trainer's pod
    evicted mid-training), then span 2 under an s3:// root (the Trainer's pod evicted while
    its launcher uploads the model), then once more with nothing new."""

    launcher: object
    filesystem: object
    data: str
    serving: str
    roots: tuple[str, str]
    first: dict
    second: dict
    unchanged: dict  # a third run, on the same data with the same config

    def read(self, uri):
        return self.filesystem.cat(uri.split("://", 1)[1])

    def objects(self, uri):
        prefix = uri.split("://", 1)[1]
        found = (name[len(prefix) + 1 :] for name in self.filesystem.find(prefix))
        return sorted(name for name in found if name)


@pytest.fixture(scope="module")
def strict(tmp_path_factory, s3, node_id):
    from kfp_launcher import Cluster, Eviction, Launcher

    from pipelines.demo_data import write_demo_spans

    base = tmp_path_factory.mktemp("kfp-strict")
    tag = uuid.uuid4().hex[:6]
    buckets = {name: s3.make_bucket(f"{name}-{tag}") for name in ("data", "serving", "roots")}
    s3.make_bucket("mlpipeline")
    filesystem = s3.filesystem()
    data, serving = f"s3://{buckets['data']}/images", f"s3://{buckets['serving']}/serving"
    write_demo_spans(base / "arriving", 2, per_class=40, seed=5)
    s3.upload(base / "arriving" / "span-1", f"{data}/span-1")
    config = base / "cluster.yaml"
    # The second run trains on new data; allow its accuracy to differ a little. The data is
    # in a bucket the compiling machine need not reach: classes and spans are stated.
    config.write_text("regression_epsilon: 0.3\nnum_classes: 2\nspans: true\n")
    spec = base / "spec.yaml"
    result = _compile(config, spec, data, serving, "0", "--s3-endpoint", s3.endpoint)
    assert result.returncode == 0, result.stderr[-3000:]
    cluster = Cluster(
        s3.endpoint,
        s3.access_key,
        s3.secret_key,
        secrets={
            "mlpipeline-minio-artifact": {"accesskey": s3.access_key, "secretkey": s3.secret_key}
        },
    )
    launcher = Launcher(cluster, str(spec), str(base))
    trainer = node_id("model")
    backup = f"mlpipeline/v2/artifacts/alexnet/run-1/{trainer}/backup/*/latest.json"
    # Evicted once an epoch's backup is in the store.
    evicted = {trainer: [Eviction(when=lambda: bool(filesystem.glob(backup)))]}
    first = launcher.run(KFP_ROOT, "run-1", evictions=evicted)
    s3.upload(base / "arriving" / "span-2", f"{data}/span-2")
    s3_root = f"s3://{buckets['roots']}/pipeline-root"
    second = launcher.run(s3_root, "run-2", evictions={trainer: [Eviction(after_uploads=3)]})
    unchanged = launcher.run(KFP_ROOT, "run-3")
    return StrictRuns(
        launcher, filesystem, data, serving, (KFP_ROOT, s3_root), first, second, unchanged
    )


@pytest.fixture(scope="module")
def produced(tiny_wiring):
    """produced(runs, role): the MLMD artifact a task of a strict run recorded for that role,
    as the next task receives it."""
    sources = tiny_wiring.sources()

    def find(runs, role):
        source = sources[role]
        return runs[source.node_id].outputs[source.key]

    return find


def _history(strict, artifact):
    return json.loads(strict.read(artifact["uri"] + "/training_history.json"))


def test_every_task_completes_and_v1_is_pushed_to_the_bucket(strict, produced):
    first = strict.first
    assert len(first) == 12 and {run.status for run in first.values()} == {"completed"}
    examples = produced(first, "examples")["metadata"]
    # No driver ran; the executor recorded what TFX's ExampleGen driver would.
    assert examples["custom:span"] == 1 and json.loads(examples["spans"]) == [1]
    assert examples["input_fingerprint"].startswith("files:80,")
    assert produced(first, "baseline_model")["metadata"]["baseline_version"] == 0
    assert _history(strict, produced(first, "model"))["warm_started_from"] is None
    assert produced(first, "infra_blessing")["metadata"]["blessed"] == 1
    push = produced(first, "pushed_model")["metadata"]
    assert push["pushed"] == 1 and push["pushed_version"] == "1"
    assert push["pushed_destination"] == f"{strict.serving}/alexnet/1"
    version = strict.objects(f"{strict.serving}/alexnet/1")
    assert "saved_model.pb" in version and "assets.extra/tf_serving_warmup_requests" in version


@pytest.mark.parametrize("run", [0, 1])
def test_every_artifact_is_in_the_bucket_under_its_remote_uri(strict, produced, tiny_wiring, run):
    runs, root = (strict.first, strict.second)[run], strict.roots[run]
    for task, task_run in runs.items():
        for key, artifact in task_run.outputs.items():
            assert artifact["uri"].startswith(f"{root}/alexnet/run-{run + 1}/{task}/"), key
            text = json.dumps(artifact["metadata"])
            assert "/minio/" not in text and '"/s3/' not in text, (task, key, text)
    # Every role's files, but those with none to hold: the Pusher's record is all metadata,
    # and on the first run nothing is served (an object store keeps no empty folder).
    empty = {"pushed_model"} | ({"baseline_model", "served_statistics"} if run == 0 else set())
    for role in set(tiny_wiring.sources()) - empty:
        assert strict.objects(produced(runs, role)["uri"]), role
    examples = produced(runs, "examples")["metadata"]
    assert examples["rejects_path"].startswith(root)
    strict.read(examples["rejects_path"])  # there, though empty


def test_an_evicted_trainer_pod_resumes_from_the_backup_in_the_store(strict, produced, node_id):
    """Retries share the driver's output URIs; each attempt's executor-logs has its own."""
    trainer = strict.first[node_id("model")]
    assert trainer.attempts == 2 and len(set(trainer.logs)) == 2
    log = strict.launcher.read(trainer.logs[1])
    assert "backup of epoch" in log and "restored from minio://mlpipeline/" in log
    history = _history(strict, produced(strict.first, "model"))
    assert history["resumed_from_epoch"] >= 1
    assert history["epochs"] == 4 and None not in history["loss"]


def test_a_trainer_pod_evicted_mid_upload_resumes_at_the_export(strict, produced, node_id):
    """Its launcher had uploaded part of the model when the pod died: the retry trains
    nothing (the backup of the last epoch is in the store), exports, and its launcher
    uploads the whole model to the same URIs."""
    trainer = strict.second[node_id("model")]
    assert trainer.attempts == 2
    assert "backup of epoch 3 restored" in strict.launcher.read(trainer.logs[1])
    history = _history(strict, produced(strict.second, "model"))
    assert history["resumed_from_epoch"] == 4 and history["epochs"] == 4
    model = strict.objects(produced(strict.second, "model")["uri"])
    assert "Format-Serving/saved_model.pb" in model
    assert any(name.startswith("Format-Serving/variables/") for name in model)


def test_the_same_spec_picks_up_the_new_span_and_warm_starts(strict, produced):
    """The one compiled spec resolves the newest span at run time, reads the window, and
    trains on from the version the first run pushed."""
    examples = produced(strict.second, "examples")["metadata"]
    assert examples["custom:span"] == 2 and json.loads(examples["spans"]) == [1, 2]
    assert examples["eval_span"] == 2
    history = _history(strict, produced(strict.second, "model"))
    assert history["warm_started_from"] == 1 and history["spans"] == [1, 2]
    assert produced(strict.second, "drift")["metadata"]["compared_with_served"] == 1


def test_second_spec_run_compares_against_the_served_baseline(strict, produced, tmp_path):
    import tensorflow_model_analysis as tfma

    baseline = produced(strict.second, "baseline_model")
    assert baseline["metadata"]["baseline_version"] == 1
    assert baseline["metadata"]["baseline_source"] == f"{strict.serving}/alexnet/1"
    evaluation = produced(strict.second, "evaluation")["uri"]
    strict.filesystem.get(evaluation.split("://", 1)[1] + "/", str(tmp_path) + "/", recursive=True)
    models = {
        item.key.model_name
        for metrics in tfma.load_metrics(str(tmp_path))
        for item in metrics.metric_keys_and_values
    }
    assert models == {"candidate", "baseline"}
    push = produced(strict.second, "pushed_model")["metadata"]
    assert push["pushed"] == 1 and push["pushed_version"] == "2"
    base = f"{strict.serving}/alexnet"
    listed = [path.rsplit("/", 1)[1] for path in strict.filesystem.ls(base.split("://", 1)[1])]
    # Staging prefixes hold nothing once a push is done (SeaweedFS may still list them).
    assert sorted(name for name in listed if strict.objects(f"{base}/{name}")) == ["1", "2"]


def test_the_report_task_writes_what_kfps_ui_reads(strict):
    """In the shapes MetricsVisualizations.tsx reads from MLMD and the store: scalar custom
    properties; a confusionMatrix struct (the UI takes its "struct", as the launcher's
    converter wraps it); Markdown and HTML files at the artifacts' own URIs."""
    report = strict.first["RunReport"].outputs
    reserved = {"display_name", "store_session_info"}
    scalars = {k: v for k, v in report["metrics"]["metadata"].items() if k not in reserved}
    assert scalars and all(isinstance(value, float) for value in scalars.values())
    assert 0 <= scalars["accuracy"] <= 1 and scalars["eval_examples"] > 0
    matrix = report["confusion_matrix"]["metadata"]["confusionMatrix"]["struct"]
    assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == ["bike", "ship"]
    assert len(matrix["rows"]) == 2 and all(len(row["row"]) == 2 for row in matrix["rows"])
    assert sum(map(sum, (row["row"] for row in matrix["rows"]))) == scalars["eval_examples"]
    summary = strict.read(report["summary"]["uri"]).decode()
    assert summary.startswith("# Run run-1 of alexnet") and "- Blessed: yes" in summary
    assert f"- Pushed: version 1 to {strict.serving}/alexnet/1" in summary
    page = strict.read(report["report"]["uri"]).decode()
    assert page.startswith("<!doctype html>") and "Confusion matrix" in page
    assert "/minio/" not in summary and "/minio/" not in page


def test_a_run_with_nothing_new_trains_evaluates_checks_and_pushes_nothing(strict, produced):
    """Every pod still starts (open-source KFP caches by the inputs' artifact ids, and the
    ExampleGen's are new each run), but the model is served version 2 itself: the summary
    says which tasks did no work."""
    runs = strict.unchanged
    assert {run.status for run in runs.values()} == {"completed"}
    assert _history(strict, produced(runs, "model"))["reused_version"] == 2
    assert produced(runs, "blessing")["metadata"]["unchanged_version"] == 2
    assert not strict.objects(produced(runs, "evaluation")["uri"])  # not evaluated
    assert produced(runs, "infra_blessing")["metadata"]["unchanged_version"] == 2
    assert produced(runs, "pushed_model")["metadata"]["pushed"] == 0
    summary = strict.read(runs["RunReport"].outputs["summary"]["uri"]).decode()
    assert (
        "- Nothing new: the candidate is served version 2 (same data, same config); "
        "did no work: Trainer, Evaluator, ServingCheck, Pusher" in summary
    )
    served = strict.filesystem.ls(strict.serving.split("://", 1)[1] + "/alexnet")
    assert not any(path.endswith("/3") for path in served)


def test_versions_serve_and_rollback_on_the_bucket(strict, s3_env, demo_dir, tmp_path):
    """What the runs pushed to s3://.../serving, listed, served and rolled back; last in
    the module, as the rollback retires version 2."""
    from model_server import MODEL, Server

    listed = run_cli("versions", "--serving-dir", strict.serving)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == ["1", "2"] and rows[-1][-1] == "(served)"
    assert rows[0][-1] == "1" and rows[1][-2] == "1,2"  # the spans each was trained on
    image = next(demo_dir.glob("*/*.jpg")).read_bytes()
    server = Server(strict.serving, tmp_path / "server.log")
    try:
        assert server.v1([image]).json()["model_version"] == "2"
        rolled = run_cli("rollback", "--serving-dir", strict.serving)
        assert rolled.returncode == 0, rolled.stderr
        assert "Rolled back alexnet to version 1; retired version 2" in rolled.stdout
        deadline = time.monotonic() + 60
        while server.v1([image]).json()["model_version"] != "1":
            assert time.monotonic() < deadline, server.log_text()[-3000:]
            time.sleep(0.5)
    finally:
        server.stop()
    assert strict.objects(f"{strict.serving}/{MODEL}/.retired/2")
