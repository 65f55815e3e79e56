"""TF_CONFIG and the TFJob, as Kubeflow's Training Operator (v1.9.0) writes and reads them."""

import json

import pytest

from modules.tf_config import cluster_addresses, read_role, tf_config_json


@pytest.mark.parametrize(
    "replicas, domain, expected",
    [
        # pkg/controller.v1/tensorflow/pod_test.go, "should generate desired cluster spec".
        (
            {"Worker": 1, "PS": 1},
            "tf.training.org",
            '{"cluster":{"ps":["test-tfjob-ps-0.ns2.svc.tf.training.org:2222"],"worker":'
            '["test-tfjob-worker-0.ns2.svc.tf.training.org:2222"]},"task":{"type":"worker",'
            '"index":0},"environment":"cloud"}',
        ),
        (
            {"Worker": 1, "PS": 1, "Evaluator": 1},
            "",
            '{"cluster":{"evaluator":["test-tfjob-evaluator-0.ns3.svc:2222"],"ps":'
            '["test-tfjob-ps-0.ns3.svc:2222"],"worker":["test-tfjob-worker-0.ns3.svc:2222"]},'
            '"task":{"type":"worker","index":0},"environment":"cloud"}',
        ),
        ({"Worker": 1}, "", None),  # one replica: no TF_CONFIG (isDistributed)
    ],
)
def test_tf_config_is_the_operators_byte_for_byte(replicas, domain, expected):
    namespace = "ns2" if domain else "ns3"
    cluster = cluster_addresses("test-tfjob", namespace, replicas, domain)
    assert tf_config_json(cluster, "Worker", 0) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "TF_CONFIG is not JSON"),
        ('{"cluster": {}, "task": {"type": "worker"}}', "TF_CONFIG.cluster: no replicas"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG.task: needs"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps"}}', "TF_CONFIG.task.type 'ps'"),
        (
            '{"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", '
            '"index": 1}}',
            "TF_CONFIG.task.index 1 is outside the cluster's 1 worker replica(s)",
        ),
    ],
)
def test_a_wrong_tf_config_is_one_line_naming_the_field(text, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        read_role(text)


def test_a_chief_and_a_worker_know_their_places():
    cluster = {"chief": ["c:1"], "worker": ["w:1", "w:2"]}
    chief = read_role(tf_config_json(cluster, "chief", 0))
    worker = read_role(tf_config_json(cluster, "worker", 1))
    assert chief.is_chief and not worker.is_chief
    assert chief.workers == worker.workers == 3
    assert worker.peers() == ["c:1", "w:1"]
    assert read_role(None) is None and read_role("") is None


@pytest.fixture(scope="module")
def manifest():
    """The TFJob a 3-replica Trainer with 2 GPUs each would submit, as the API server gets
    it (the SDK's own serialization)."""
    from kubeflow.training.api_client import ApiClient

    from components.multi_worker_trainer.tfjob import TFJobSettings, tfjob

    settings = TFJobSettings(
        image="registry.example/alexnet-tfx:1",
        gpus=2,
        cpu="8",
        memory="32Gi",
        env={"AWS_ENDPOINT_URL": "http://minio:9000"},
        secret="mlpipeline-minio-artifact",
        secret_keys={"accesskey": "AWS_ACCESS_KEY_ID"},
    )
    job = tfjob("alexnet-train-0123456789ab", settings, 3, ["python", "-m", "x"], 3)
    return ApiClient().sanitize_for_serialization(job)


def test_the_tfjob_is_a_chief_and_workers_the_operator_can_run(manifest):
    assert (manifest["apiVersion"], manifest["kind"]) == ("kubeflow.org/v1", "TFJob")
    spec = manifest["spec"]
    assert spec["runPolicy"]["backoffLimit"] == 3
    replicas = spec["tfReplicaSpecs"]
    assert {kind: r["replicas"] for kind, r in replicas.items()} == {"Chief": 1, "Worker": 2}
    for replica in replicas.values():
        assert replica["restartPolicy"] == "ExitCode"
        (container,) = replica["template"]["spec"]["containers"]
        # The operator gives TF_CONFIG to the container named "tensorflow" only.
        assert container["name"] == "tensorflow"
        assert container["ports"] == [{"containerPort": 2222, "name": "tfjob-port"}]
        assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
        assert container["resources"]["requests"] == {"cpu": "8", "memory": "32Gi"}
        assert container["env"][1]["valueFrom"]["secretKeyRef"] == {
            "key": "accesskey",
            "name": "mlpipeline-minio-artifact",
            "optional": True,
        }


def test_the_tfjob_reads_back_into_the_operators_models(manifest):
    """Every field is one the SDK's models (generated from the operator's OpenAPI spec)
    declare, with its declared type: read back, it is the same document."""
    from kubeflow.training.api_client import ApiClient

    client = ApiClient()

    class Response:
        data = json.dumps(manifest)

    model = client.deserialize(Response(), "KubeflowOrgV1TFJob")
    assert client.sanitize_for_serialization(model) == manifest


def test_compiled_for_kubeflow_the_trainer_submits_a_tfjob_and_waits_without_gpus(tmp_path):
    """With --train-workers 2 the Trainer task runs this executor, which submits the
    replicas as a TFJob with the GPUs; the task itself only waits."""
    import yaml
    from conftest import run_cli

    config = tmp_path / "cluster.yaml"
    config.write_text("num_classes: 2\n")
    output = tmp_path / "spec.yaml"
    result = run_cli(
        "compile", "--config", config, "--data", "gs://bucket/images",
        "--serving-dir", "gs://bucket/serving", "--gpus", "2", "--train-workers", "2",
        "--image", "registry.example/alexnet-tfx:1", "--output", output,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    spec = next(yaml.safe_load_all(output.read_text()))
    trainer = spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    assert "accelerator" not in trainer["resources"]
    assert "components.multi_worker_trainer.executor.Executor" in json.dumps(trainer)
    parameters = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
    custom = json.loads(parameters["custom_config"]["runtimeValue"]["constant"])
    assert custom["train_workers"] == 2
    assert custom["tfjob"]["image"] == "registry.example/alexnet-tfx:1"
    assert custom["tfjob"]["gpus"] == 2
    assert custom["tfjob"]["secret"] == "mlpipeline-minio-artifact"
    assert custom["tfjob"]["env"] == {"AWS_ENDPOINT_URL": "http://seaweedfs.kubeflow:9000"}
