"""What can be checked here of the container image and the KServe manifest."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, str(ROOT / "kubeflow" / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_the_lock_with_gpu_extra_as_non_root():
    text = (ROOT / "kubeflow" / "Dockerfile").read_text()
    assert re.search(r"^FROM nvidia/cuda:\S+cudnn", text, re.M)
    assert text.count("uv sync --locked --no-dev --extra gpu") == 2
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.M)
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in (name.rstrip("*") + "/" for name in packages):
        assert f"COPY {package} {package}" in text


def test_commands_the_compiled_spec_runs_exist_here():
    """The image runs `python -m <these modules>` for every task and the ExampleGen driver."""
    import importlib

    for module in (
        "pipelines.kubeflow.entrypoint",
        "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver",
    ):
        importlib.import_module(module)
    assert shutil.which("alexnet-tfx") or (Path(sys.executable).parent / "alexnet-tfx").exists()


def _check_against_model(value, type_name, path="spec"):
    """Deserializes strictly with KServe's and Kubernetes' generated API models."""
    import kserve.models as kserve_models
    import kubernetes.client.models as k8s

    if type_name.startswith("list["):
        assert isinstance(value, list), path
        for index, item in enumerate(value):
            _check_against_model(item, type_name[5:-1], f"{path}[{index}]")
        return
    if type_name.startswith("dict("):
        assert isinstance(value, dict), path
        inner = type_name[type_name.index(",") + 1 : -1].strip()
        for key, item in value.items():
            _check_against_model(item, inner, f"{path}.{key}")
        return
    model = getattr(kserve_models, type_name, None) or getattr(k8s, type_name, None)
    if model is None:  # a primitive: str, int, object, ...
        return
    assert isinstance(value, dict), f"{path} must be a mapping"
    by_json_name = {json: attr for attr, json in model.attribute_map.items()}
    for key, item in value.items():
        assert key in by_json_name, f"{path}.{key} is not a field of {type_name}"
        _check_against_model(item, model.openapi_types[by_json_name[key]], f"{path}.{key}")


def _manifest(name):
    return list(yaml.safe_load_all((ROOT / "kubeflow" / "serving" / name).read_text()))


def test_store_credentials_are_a_secret_and_service_account_kserve_reads():
    secret, account = _manifest("s3-credentials.yaml")
    _check_against_model(secret, "V1Secret", "Secret")
    _check_against_model(account, "V1ServiceAccount", "ServiceAccount")
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    # The annotations KServe's storage initializer turns into its S3 settings.
    annotations = secret["metadata"]["annotations"]
    from pipelines.config import KFP_S3_ENDPOINT

    assert annotations["serving.kserve.io/s3-endpoint"] == KFP_S3_ENDPOINT.split("://")[1]
    assert annotations["serving.kserve.io/s3-usehttps"] in ("0", "1")
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}]


def test_inference_service_manifest_matches_kserve_api():
    (manifest,) = _manifest("inferenceservice.yaml")
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService"
    _check_against_model(manifest, "V1beta1InferenceService", "InferenceService")
    predictor = manifest["spec"]["predictor"]
    assert predictor["model"]["modelFormat"]["name"] == "tensorflow"
    # The storage initializer reads s3:// with the credentials' service account.
    assert predictor["model"]["storageUri"].startswith("s3://")
    assert predictor["model"]["storageUri"].endswith("/alexnet")
    (_, account) = _manifest("s3-credentials.yaml")
    assert predictor["serviceAccountName"] == account["metadata"]["name"]


def _served_from_the_bucket(container):
    """The container's parsed serve flags, once its bucket settings are checked."""
    from pipelines.cli import serve

    context = serve.make_context("serve", container["args"][2:])
    (isvc,) = _manifest("inferenceservice.yaml")
    storage_uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    assert f"{context.params['serving_dir']}/{context.params['model_name']}" == storage_uri
    from pipelines.config import KFP_S3_ENDPOINT

    assert container["env"] == [{"name": "AWS_ENDPOINT_URL", "value": KFP_S3_ENDPOINT}]
    (secret, _) = _manifest("s3-credentials.yaml")
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    return context


def test_custom_predictor_manifest_runs_our_server():
    (manifest,) = _manifest("custom-predictor.yaml")
    _check_against_model(manifest, "V1beta1InferenceService", "InferenceService")
    container = manifest["spec"]["predictor"]["containers"][0]
    assert container["name"] == "kserve-container"  # the name KServe routes traffic to
    assert container["args"][:2] == ["alexnet-tfx", "serve"]
    # The server's own flags, parsed by the real CLI, so a renamed flag fails here.
    assert "--host=0.0.0.0" in container["args"]  # in a pod it must listen beyond loopback
    context = _served_from_the_bucket(container)
    assert context.params["port"] == container["ports"][0]["containerPort"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == f"/v2/models/{context.params['model_name']}/ready"


def test_schema_check_rejects_unknown_fields():
    import pytest

    with pytest.raises(AssertionError, match="storageUrl is not a field"):
        _check_against_model(
            {"spec": {"predictor": {"model": {"storageUrl": "x"}}}}, "V1beta1InferenceService"
        )


def test_canary_manifest_pins_a_version_for_part_of_the_traffic():
    (manifest,) = _manifest("canary.yaml")
    _check_against_model(manifest, "V1beta1InferenceService", "InferenceService")
    predictor = manifest["spec"]["predictor"]
    assert 0 < predictor["canaryTrafficPercent"] < 100
    assert manifest["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    container = predictor["containers"][0]
    context = _served_from_the_bucket(container)
    assert context.params["version"] == 5
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert context.params["log_requests"] in mounts
