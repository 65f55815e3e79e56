"""The command of every Kubeflow Pipelines task: TFX's KFP v2 container entrypoint
(tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py), fitted to what the
open-source KFP 2.x backend hands a task (kubeflow/pipelines backend/src/v2, read at 7b70c7b):

- Artifact URIs are remote (minio://, s3://, gs://). Before the command the launcher
  downloads every input to its local path (`LocalPathForURI` in component/launcher_v2.go:
  /minio/..., /s3/..., /gcs/...), and after it uploads every output from there. TFX uses
  URIs as given, and TensorFlow 2.21 cannot open s3:// or minio://, so the executor works on
  the local paths and the output metadata names the remote URIs again.
- Input artifacts come without a type (`Schema: ""` in metadata/client.go); the compiled
  spec passes each task its input definitions in --json_serialized_inputs_spec_args.
- Every task has one more output, `executor-logs` (system.Artifact, driver/driver.go), which
  the launcher writes and uploads; the executor never sees it.
- Metadata passes through MLMD between tasks (metadata/converter.go): lists and structs come
  back wrapped in {"list": ...} and {"struct": ...}, and a null fails the task, so nulls are
  left out of what the executor reports.
- Outputs of KFP's own types (system.Metrics, system.HTML, ...: the ones its UI draws) name
  no Python class, which TFX's entrypoint imports; they get the TFX class of that type name.
  KFP's UI shows every custom property of a system.Metrics as a metric, so TFX's tfx_version
  tag is left off them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import yaml
from absl import app
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import (
    kubeflow_v2_entrypoint_utils,
    kubeflow_v2_run_executor,
)
from tfx.orchestration.portable import outputs_utils

from components.run_report import artifacts as kfp_artifacts
from contract.launcher_paths import local_path, remote_uri

EXECUTOR_LOGS = "executor-logs"  # the launcher's own output (driver.go provisionOutputs)
KFP_TYPE_PREFIX = "system."
KFP_TYPES = {kind.TYPE_NAME: kind for kind in kfp_artifacts.KFP_UI_TYPES}
TFX_VERSION_TAG = "tfx_version"  # outputs_utils.tag_output_artifacts_with_version
# How converter.go's StructValueToMLMDValue wraps JSON lists and objects.
MLMD_WRAPPERS = ("list", "struct")


def _unwrapped(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in MLMD_WRAPPERS:
        return next(iter(value.values()))
    return value


def _title(artifact: dict[str, Any]) -> str:
    schema = artifact.get("type", {})
    if "schemaTitle" in schema:
        return schema["schemaTitle"]
    return (yaml.safe_load(schema.get("instanceSchema") or "") or {}).get("title", "")


def _tfx_class_path(title: str) -> str:
    """The import path of the TFX artifact class of a KFP type name."""
    found = KFP_TYPES[title]
    return f"{found.__module__}.{found.__qualname__}"


def _to_local(artifact: dict[str, Any]) -> None:
    path = local_path(artifact.get("uri", ""))
    if path:
        artifact["uri"] = path


def adapt_input(executor_input: dict[str, Any], inputs_spec: dict[str, Any]) -> dict[str, Any]:
    """The ExecutorInput as TFX's entrypoint expects it: typed inputs, local paths, no
    executor-logs output, metadata unwrapped."""
    adapted = json.loads(json.dumps(executor_input))
    definitions = inputs_spec.get("artifacts", {})
    for key, artifacts in adapted.get("inputs", {}).get("artifacts", {}).items():
        for artifact in artifacts.get("artifacts", []):
            schema = artifact.get("type", {})
            if not (schema.get("instanceSchema") or schema.get("schemaTitle")):
                artifact["type"] = definitions[key]["artifactType"]
            artifact["metadata"] = {
                name: _unwrapped(value) for name, value in artifact.get("metadata", {}).items()
            }
            _to_local(artifact)
    outputs = adapted.get("outputs", {}).get("artifacts", {})
    outputs.pop(EXECUTOR_LOGS, None)
    for artifacts in outputs.values():
        for artifact in artifacts.get("artifacts", []):
            if _title(artifact).startswith(KFP_TYPE_PREFIX):
                artifact["type"] = {"schemaTitle": _tfx_class_path(_title(artifact))}
            _to_local(artifact)
    return adapted


def kfp_typed_outputs(executor_input: dict[str, Any]) -> set[str]:
    """The outputs of KFP's own types."""
    return {
        key
        for key, artifacts in executor_input["outputs"]["artifacts"].items()
        if key != EXECUTOR_LOGS
        and any(_title(item).startswith(KFP_TYPE_PREFIX) for item in artifacts["artifacts"])
    }


def prepare_folders(executor_input: dict[str, Any]) -> None:
    """Output folders, as TFX's own launcher makes them (outputs_utils.make_output_dirs), and
    the local folder of an input that held no file, which no object store keeps."""
    message = json_format.ParseDict(
        executor_input, pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True
    )
    outputs = kubeflow_v2_entrypoint_utils.parse_raw_artifact_dict(message.outputs.artifacts)
    outputs_utils.make_output_dirs(outputs)
    for artifacts in message.inputs.artifacts.values():
        for artifact in artifacts.artifacts:
            if remote_uri(artifact.uri) and not os.path.exists(artifact.uri):
                os.makedirs(artifact.uri)


def _to_remote(value: Any) -> Any:
    if isinstance(value, str):
        return remote_uri(value) or value
    return value


def restore_output(output_file: str, kfp_typed: set[str]) -> None:
    """The executor's output metadata with remote URIs (for artifacts and for paths in
    their metadata, e.g. rejects_path) and without nulls."""
    with open(output_file) as handle:
        output = json.load(handle)
    for key, artifacts in output.get("artifacts", {}).items():
        for artifact in artifacts.get("artifacts", []):
            artifact["uri"] = _to_remote(artifact.get("uri", ""))
            artifact["metadata"] = {
                name: _to_remote(value)
                for name, value in artifact.get("metadata", {}).items()
                if value is not None and not (key in kfp_typed and name == TFX_VERSION_TAG)
            }
    with open(output_file, "w") as handle:
        json.dump(output, handle)


def run(parsed: tuple[Any, list[str]]) -> None:
    args, beam_args = parsed
    inputs_spec = json.loads(args.json_serialized_inputs_spec_args or "{}")
    given = json.loads(args.json_serialized_invocation_args)
    executor_input = adapt_input(given, inputs_spec)
    prepare_folders(executor_input)
    args.json_serialized_invocation_args = json.dumps(executor_input)
    kubeflow_v2_run_executor.main((args, beam_args))
    restore_output(executor_input["outputs"]["outputFile"], kfp_typed_outputs(given))


def main() -> None:
    # TFX's own flags (its _parse_flags): --executor_class_path and the executor input;
    # the rest are Beam's.
    app.run(run, flags_parser=kubeflow_v2_run_executor._parse_flags)


if __name__ == "__main__":
    sys.exit(main())
