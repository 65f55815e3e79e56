"""A strict stand-in for open-source Kubeflow Pipelines 2.x running a compiled spec: what its
backend does with each container task, and nothing more. It follows kubeflow/pipelines
`backend/src/v2` at 7b70c7b; each step names the file and function it follows.

A run (driver/root_dag.go RootDAG): its artifacts go under <pipeline root>/<pipeline name>/
<run id> (metadata/client.go GetPipeline). The root comes with the run; the spec's
defaultPipelineRoot is never read.

A task, in dependency order:
- The driver (driver/container.go Container):
  - inputs (driver/resolve.go resolveInputs): parameter constants, and each input artifact
    as its producer's MLMD artifact: its id as name, its URI, its custom properties as
    metadata, and a type with an empty instance schema (metadata/client.go
    GetOutputArtifactsByExecutionId, OutputArtifact.ToRuntimeArtifact);
  - a triggerPolicy condition: refused, for want of the backend's CEL evaluator;
  - the cache (driver/cache.go getFingerPrint, cacheutils/cache.go GenerateCacheKey): with
    enableCache, a hit on input artifact names, parameter values, output names and types,
    command, args and image reuses the earlier execution's outputs, and no pod starts;
  - outputs (driver/driver.go provisionOutputs): <run root>/<task>/<uuid>/<name>, plus
    `executor-logs` (system.Artifact, PUBLISH_LOGS on by default); the output metadata file
    in the task root's local path;
  - the pod's environment: the container's env (driver/driver.go initPodSpecPatch) and the
    platform spec's secretAsEnv (driver/k8s.go extendPodSpecPatch) from this cluster's
    secrets. Nothing else of the test process's environment reaches a pod's store clients.
- The launcher, in a pod: a process group in a mount namespace of its own, with empty
  /minio, /s3 and /gcs, so nothing passes between tasks but through the store
  (component/launcher_v2.go):
  - qualifyExecutorLogsForRetry: the executor-logs URI gets -<retry index>;
  - compileCmdAndArgs: {{$}} becomes the ExecutorInput JSON;
  - prepareOutputFolders: the parent folder of each output's local path;
  - downloadArtifacts, objectstore.DownloadBlob: every object under each input's key, to
    LocalPathForURI(uri); a key with no object gives no local path at all;
  - execute: the command, its output into the executor-logs file (getLogWriter);
  - getExecutorOutputFile, mergeRuntimeArtifacts: the output metadata file, whose non-empty
    uri replaces the launcher's and whose metadata fields are merged in;
  - uploadOutputArtifacts, objectstore.UploadBlob: each output's local path, recursively;
    a missing one is skipped with a warning; after a failed command, executor-logs only;
  - RecordArtifact (metadata/converter.go toMLMDArtifact, StructValueToMLMDValue): metadata
    to MLMD values: a bool to an int, a number to a double, a list to {"list": ...}, a
    struct to {"struct": ...}, a null fails the task; display_name and store_session_info
    added.
- Retries (compiler/argocompiler/container.go retry strategy): the launcher pod again, with
  the same executor input (the driver ran once), up to maxRetryCount times.

Not modelled, for want of a cluster: parallel tasks, the backoff between retries, images,
resources, volumes. Tasks run one at a time in the spec's dependency order.

Pods are processes forked from a multiprocessing forkserver that has imported TensorFlow and
TFX once, so a task does not spend 15-30 s importing them.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import runpy
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from graphlib import TopologicalSorter
from typing import Any

import yaml
from forked import forkserver

EXECUTOR_LOGS = "executor-logs"
# component/launcher_v2.go LocalPathForURI.
LOCAL_ROOTS = {"gs://": "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}
# The environment a pod's store clients could pick up from the test process.
STORE_VARIABLES = ("AWS_", "S3_")


class UnsupportedTask(RuntimeError):
    pass


class TaskFailed(RuntimeError):
    def __init__(self, task: str, message: str, logs: str) -> None:
        super().__init__(f"task {task} failed: {message}\n--- its executor-logs (end) ---\n{logs}")
        self.task = task
        self.logs = logs


def local_path_for_uri(uri: str) -> str:
    """component/launcher_v2.go LocalPathForURI."""
    for scheme, root in LOCAL_ROOTS.items():
        if uri.startswith(scheme):
            return root + uri[len(scheme) :]
    raise ValueError(f"failed to generate local path for URI {uri}: unsupported storage scheme")


def _bucket_and_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.split("://", 1)[1].partition("/")
    return bucket, key


@dataclasses.dataclass
class Cluster:
    """What a KFP installation keeps across runs: the object store its launcher writes (an
    S3 server), the Kubernetes secrets pods may read, and the cache (cacheutils) and MLMD
    artifacts of earlier runs."""

    endpoint: str
    access_key: str
    secret_key: str
    secrets: dict[str, dict[str, str]]
    cache: dict[str, dict[str, dict]] = dataclasses.field(default_factory=dict)
    artifacts: dict[int, dict] = dataclasses.field(default_factory=dict)

    def store(self):
        """The launcher's own client (objectstore.OpenBucket with the kfp-launcher session)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def record(self, artifact: dict) -> int:
        artifact_id = len(self.artifacts) + 1
        self.artifacts[artifact_id] = artifact
        return artifact_id


# metadata/converter.go
def to_mlmd_value(name: str, value: Any) -> dict:
    """StructValueToMLMDValue: one metadata field as MLMD stores it."""
    if isinstance(value, bool):
        return {"intValue": int(value)}
    if isinstance(value, int | float):
        return {"doubleValue": float(value)}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"structValue": {"list": value}}
    if isinstance(value, dict):
        return {"structValue": {"struct": value}}
    raise ValueError(f"unknown/unsupported value type for metadata field {name!r}: {value!r}")


def to_runtime_metadata(properties: dict[str, dict]) -> dict[str, Any]:
    """toRuntimeArtifact: MLMD values back to metadata (ints and doubles both numbers)."""
    metadata = {}
    for name, value in properties.items():
        ((kind, content),) = value.items()
        metadata[name] = float(content) if kind in ("intValue", "doubleValue") else content
    return metadata


def _order(tasks: dict[str, Any]) -> list[str]:
    graph = {name: set(task.get("dependentTasks", [])) for name, task in tasks.items()}
    return list(TopologicalSorter(graph).static_order())


def _python_module(command: list[str]) -> str:
    if command[:2] != ["python", "-m"]:
        raise UnsupportedTask(f"expected a `python -m MODULE` command, got {command[:3]}")
    return command[2]


def _preloads(executors: dict[str, Any]) -> list[str]:
    """The modules every task imports first: its command's module and its executor class's."""
    modules = set()
    for executor in executors.values():
        container = executor.get("container", {})
        if "command" not in container:
            continue
        modules.add(_python_module(container["command"]))
        args = container.get("args", [])
        if "--executor_class_path" in args:
            modules.add(args[args.index("--executor_class_path") + 1].rsplit(".", 1)[0])
    return sorted(modules)


def _mount_points() -> None:
    """/minio, /s3 and /gcs exist in every pod's image; here they are made once, as root."""
    for root in LOCAL_ROOTS.values():
        if not os.path.isdir(root):
            try:
                os.makedirs(root)
            except PermissionError as error:
                raise UnsupportedTask(
                    f"the strict launcher mounts a tmpfs at {root} in each pod; run the tests "
                    f"as root, or create {', '.join(LOCAL_ROOTS.values())} once"
                ) from error


def _enter_pod() -> None:
    """A mount namespace of the process's own with empty launcher folders, and a process
    group that a kill takes whole (the pod)."""
    from storage_drill import private_mounts

    os.setpgrp()
    private_mounts()
    for root in LOCAL_ROOTS.values():
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", root], check=True)


def _download(client, uri: str) -> None:
    """objectstore.DownloadBlob: every object under the key (a prefix match, then keys equal
    to it or under it as a folder), to the URI's local path."""
    bucket, key = _bucket_and_key(uri)
    local = local_path_for_uri(uri)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Contents", []):
            name = item["Key"]
            if name != key and not name.startswith(key.rstrip("/") + "/"):
                continue
            relative = os.path.relpath(name, key)
            if ".." in relative.split("/"):
                raise ValueError(f"path traversal detected: blob key {name!r}")
            target = os.path.normpath(os.path.join(local, relative))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as handle:  # plain GETs: no transfer threads in a pod
                handle.write(client.get_object(Bucket=bucket, Key=name)["Body"].read())


def _upload(client, local: str, uri: str, uploaded: Callable[[], None]) -> None:
    """objectstore.UploadBlob: a file, or a folder file by file."""
    bucket, key = _bucket_and_key(uri)
    if os.path.isfile(local):
        with open(local, "rb") as handle:
            client.put_object(Bucket=bucket, Key=key, Body=handle)
        uploaded()
        return
    for name in sorted(os.listdir(local)):
        _upload(client, os.path.join(local, name), f"{uri.rstrip('/')}/{name}", uploaded)


def _run_command(module: str, args: list[str], log_path: str) -> int:
    """execute: the command in a child of the launcher, its output in the log file."""
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    code = 1
    try:
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exited:
        code = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1)
    except BaseException:  # noqa: BLE001 (a crashing command is a failed task)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _launcher_main(request: dict, result_path: str) -> None:
    """One pod: the launcher (component/launcher_v2.go Execute) around one command."""
    _enter_pod()
    for name in list(os.environ):
        if name.startswith(STORE_VARIABLES):
            del os.environ[name]
    os.environ.update(request["env"])
    cluster = request["cluster"]
    client = Cluster(**cluster).store()
    executor_input = request["executor_input"]
    outputs = executor_input["outputs"]["artifacts"]
    # prepareOutputFolders
    for artifacts in outputs.values():
        for artifact in artifacts["artifacts"]:
            os.makedirs(os.path.dirname(local_path_for_uri(artifact["uri"])), exist_ok=True)
    # downloadArtifacts
    for artifacts in executor_input["inputs"]["artifacts"].values():
        for artifact in artifacts["artifacts"]:
            _download(client, artifact["uri"])
    # getLogWriter, compileCmdAndArgs, execute
    logs = outputs[EXECUTOR_LOGS]["artifacts"][0]
    log_path = local_path_for_uri(logs["uri"])
    open(log_path, "wb").close()
    payload = json.dumps(executor_input)
    args = [arg.replace("{{$}}", payload) for arg in request["command"][3:]]
    code = _run_command(request["command"][2], args, log_path)

    uploads = [0]

    def uploaded() -> None:  # an eviction in the middle of the uploads, when asked for
        uploads[0] += 1
        if uploads[0] == request.get("kill_after_uploads"):
            os.killpg(os.getpgrp(), signal.SIGKILL)

    if code != 0:
        _upload(client, log_path, logs["uri"], uploaded)
        with open(result_path, "w") as handle:
            json.dump({"exit_code": code}, handle)
        return
    # getExecutorOutputFile, mergeRuntimeArtifacts
    output_file = executor_input["outputs"]["outputFile"]
    produced = {}
    if os.path.exists(output_file):
        with open(output_file) as handle:
            produced = json.load(handle).get("artifacts", {})
    recorded = {}
    for key, artifacts in outputs.items():
        artifact = copy.deepcopy(artifacts["artifacts"][0])
        merged = produced.get(key, {}).get("artifacts", [{}])[0] if key != EXECUTOR_LOGS else {}
        if merged.get("uri"):
            artifact["uri"] = merged["uri"]
        artifact["metadata"] = {**(artifact.get("metadata") or {}), **merged.get("metadata", {})}
        # uploadOutputArtifacts
        local = local_path_for_uri(artifact["uri"])
        if os.path.exists(local):
            _upload(client, local, artifact["uri"], uploaded)
        # RecordArtifact
        properties = {
            name: to_mlmd_value(name, value) for name, value in artifact["metadata"].items()
        }
        properties.setdefault("display_name", {"stringValue": key})
        properties.setdefault(
            "store_session_info", {"stringValue": json.dumps({"Provider": "minio"})}
        )
        recorded[key] = {"uri": artifact["uri"], "properties": properties}
    with open(result_path, "w") as handle:
        json.dump({"exit_code": 0, "outputs": recorded}, handle)


@dataclasses.dataclass(frozen=True)
class Eviction:
    """A pod killed as an evicted one is (SIGKILL, pod and all): once `when` holds, polled
    while it runs, or once its launcher has uploaded `after_uploads` objects."""

    when: Callable[[], bool] | None = None
    after_uploads: int | None = None


@dataclasses.dataclass
class TaskRun:
    status: str  # "completed", or "cached" when the driver reused an earlier execution
    attempts: int
    outputs: dict[str, dict]  # output key -> the MLMD artifact, as downstream tasks see it
    logs: list[str]  # each attempt's executor-logs URI


class Launcher:
    """Runs compiled specs on one cluster; pods are forked from a pre-imported server."""

    def __init__(self, cluster: Cluster, spec_path: str, work_dir: str) -> None:
        _mount_points()
        with open(spec_path) as handle:
            documents = list(yaml.safe_load_all(handle))
        self.spec = documents[0]
        platforms = documents[1] if len(documents) > 1 else {}
        kubernetes = platforms.get("platforms", {}).get("kubernetes", {})
        self.kubernetes = kubernetes.get("deploymentSpec", {}).get("executors", {})
        self.cluster = cluster
        self.work_dir = work_dir
        self._context = forkserver(_preloads(self.spec["deploymentSpec"]["executors"]))

    def run(
        self,
        pipeline_root: str,
        run_id: str,
        evictions: dict[str, list[Eviction]] | None = None,
    ) -> dict[str, TaskRun]:
        """Every task of the spec; `evictions`: {task: what befalls its first pods, in turn}."""
        run_root = f"{pipeline_root.rstrip('/')}/{self.spec['pipelineInfo']['name']}/{run_id}"
        tasks = self.spec["root"]["dag"]["tasks"]
        done: dict[str, TaskRun] = {}
        for name in _order(tasks):
            planned = (evictions or {}).get(name, [])
            done[name] = self._task(name, tasks[name], run_root, done, planned)
        return done

    def _executor_input(
        self, name: str, task: dict, run_root: str, done: dict[str, TaskRun]
    ) -> dict[str, Any]:
        """driver/container.go Container: resolved inputs and provisioned outputs."""
        component = self.spec["components"][task["componentRef"]["name"]]
        if task.get("triggerPolicy", {}).get("condition"):
            raise UnsupportedTask(f"task {name} has a condition, which needs the backend's CEL")
        parameters = {
            key: value["runtimeValue"]["constant"]
            for key, value in task.get("inputs", {}).get("parameters", {}).items()
        }
        artifacts = {}
        for key, value in task.get("inputs", {}).get("artifacts", {}).items():
            source = value["taskOutputArtifact"]
            produced = done[source["producerTask"]].outputs[source["outputArtifactKey"]]
            artifacts[key] = {"artifacts": [copy.deepcopy(produced)]}
        task_root = f"{run_root}/{name}/{uuid.uuid4()}"
        definitions = dict(component.get("outputDefinitions", {}).get("artifacts", {}))
        definitions[EXECUTOR_LOGS] = {"artifactType": {"schemaTitle": "system.Artifact"}}
        outputs = {
            key: {
                "artifacts": [
                    {"name": key, "uri": f"{task_root}/{key}", "type": definition["artifactType"]}
                ]
            }
            for key, definition in definitions.items()
        }
        return {
            "inputs": {"parameterValues": parameters, "artifacts": artifacts},
            "outputs": {
                "artifacts": outputs,
                "outputFile": f"{local_path_for_uri(task_root)}/output_metadata.json",
            },
        }

    def _fingerprint(self, executor_input: dict, container: dict) -> str:
        """cacheutils/cache.go GenerateCacheKey, hashed."""
        import hashlib

        key = {
            "inputArtifactNames": {
                name: [artifact["name"] for artifact in artifacts["artifacts"]]
                for name, artifacts in executor_input["inputs"]["artifacts"].items()
            },
            "inputParameterValues": executor_input["inputs"]["parameterValues"],
            "outputArtifactsSpec": {
                name: {"name": name, "type": artifacts["artifacts"][0]["type"]}
                for name, artifacts in executor_input["outputs"]["artifacts"].items()
            },
            "containerSpec": {
                "image": container["image"],
                "cmdArgs": container["command"] + container["args"],
            },
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def _environment(self, label: str, container: dict) -> dict[str, str]:
        """The pod's env: the container's, then secretAsEnv from the platform spec."""
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        for secret_env in self.kubernetes.get(label, {}).get("secretAsEnv", []):
            secret = self.cluster.secrets.get(secret_env["secretName"])
            if secret is None:
                if secret_env.get("optional"):
                    continue
                raise UnsupportedTask(
                    f"CreateContainerConfigError: secret {secret_env['secretName']} not found"
                )
            for mapping in secret_env["keyToEnv"]:
                env[mapping["envVar"]] = secret[mapping["secretKey"]]
        return env

    def _task(
        self,
        name: str,
        task: dict,
        run_root: str,
        done: dict[str, TaskRun],
        evictions: list[Eviction],
    ) -> TaskRun:
        component = self.spec["components"][task["componentRef"]["name"]]
        label = component["executorLabel"]
        executor = self.spec["deploymentSpec"]["executors"][label]
        if "container" not in executor:
            raise UnsupportedTask(f"task {name} is a {next(iter(executor))} executor")
        container = executor["container"]
        executor_input = self._executor_input(name, task, run_root, done)
        fingerprint = None
        if task.get("cachingOptions", {}).get("enableCache"):
            fingerprint = self._fingerprint(executor_input, container)
            if fingerprint in self.cluster.cache:
                return TaskRun("cached", 0, self.cluster.cache[fingerprint], [])
        env = self._environment(label, container)
        retries = task.get("retryPolicy", {}).get("maxRetryCount", 0)
        if len(evictions) > retries:
            raise UnsupportedTask(f"task {name} is retried {retries} times; KFP gives up sooner")
        logs = []
        for attempt in range(retries + 1):
            attempted = copy.deepcopy(executor_input)
            log_artifact = attempted["outputs"]["artifacts"][EXECUTOR_LOGS]["artifacts"][0]
            log_artifact["uri"] += f"-{attempt}"  # qualifyExecutorLogsURI
            logs.append(log_artifact["uri"])
            eviction = evictions[attempt] if attempt < len(evictions) else Eviction()
            command = container["command"] + container["args"]
            result = self._pod(name, attempted, command, env, eviction)
            if result.get("exit_code") == 0:
                break
        else:
            logs_text = self.read(logs[-1])[-6000:]
            raise TaskFailed(name, f"exit code {result.get('exit_code')}", logs_text)
        outputs = {}
        for key, recorded in result["outputs"].items():
            artifact_id = self.cluster.record(recorded)
            outputs[key] = {
                "name": str(artifact_id),
                "uri": recorded["uri"],
                "metadata": to_runtime_metadata(recorded["properties"]),
                "type": {"instanceSchema": ""},  # metadata/client.go: Schema "" (TODO upstream)
            }
        if fingerprint:
            self.cluster.cache[fingerprint] = outputs  # launcher_v2.go CreateExecutionCache
        return TaskRun("completed", attempt + 1, outputs, logs)

    def _pod(
        self,
        name: str,
        executor_input: dict,
        command: list[str],
        env: dict[str, str],
        eviction: Eviction,
    ) -> dict:
        _python_module(command)
        result_path = os.path.join(self.work_dir, f"{name}-{uuid.uuid4().hex[:8]}.json")
        request = {
            "executor_input": executor_input,
            "command": command,
            "env": env,
            "cluster": {
                "endpoint": self.cluster.endpoint,
                "access_key": self.cluster.access_key,
                "secret_key": self.cluster.secret_key,
                "secrets": {},
            },
            "kill_after_uploads": eviction.after_uploads,
        }
        process = self._context.Process(target=_launcher_main, args=(request, result_path))
        process.start()
        while eviction.when and process.is_alive():
            if eviction.when():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # the pod: launcher and command
                break
            time.sleep(0.2)
        process.join()
        if not os.path.exists(result_path):
            return {"exit_code": process.exitcode, "killed": True}
        with open(result_path) as handle:
            return json.load(handle)

    def read(self, uri: str) -> str:
        """An object's text, e.g. a task's executor-logs."""
        bucket, key = _bucket_and_key(uri)
        try:
            body = self.cluster.store().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as error:  # noqa: BLE001 (missing logs are reported, not raised)
            return f"(no object at {uri}: {error})"
        return body.decode(errors="replace")
