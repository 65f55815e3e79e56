"""Compiles the same pipeline for Kubeflow Pipelines: a KFP 2.1 PipelineSpec YAML, followed
by the Kubernetes platform spec that gives the tasks the object store's credentials."""

from __future__ import annotations

import dataclasses
import json
import os

import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from components.multi_worker_trainer.tfjob import TFJobSettings
from contract import roles
from pipelines import stages
from pipelines.config import KFP_S3_ENDPOINT, KFP_S3_SECRET, PipelineConfig
from pipelines.data_facts import inspect_data
from pipelines.pipeline import create_pipeline, wire

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

DEFAULT_OUTPUT = "kubeflow/alexnet_pipeline.yaml"
# Every task's command: TFX's entrypoint fitted to what the open-source backend hands it.
ENTRYPOINT = ["python", "-m", "pipelines.kubeflow.entrypoint"]
S3_SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}
# Requests per task; the tasks that train AlexNet (the Trainer, the Tuner's trials) also get
# the GPUs.
TRAINER_CPU, TRAINER_MEMORY = 8.0, 32.0
TRAINING_ROLES = (roles.MODEL, roles.HYPERPARAMETERS)
DEFAULT_CPU, DEFAULT_MEMORY = 2.0, 8.0
# Artifact roles whose producer reads state outside its inputs (the data folders, the serving
# directory): Kubeflow must not cache it. KFP's cache key holds only a task's inputs and
# command (driver/cache.go), so a cached ExampleGen would never see a new span.
UNCACHEABLE_ROLES = (roles.EXAMPLES, roles.BULK_EXAMPLES, roles.BASELINE_MODEL)
# An evicted or crashed Trainer pod is retried; it resumes from its backup's last epoch.
TRAINER_RETRY_POLICY = {
    "maxRetryCount": 2,
    "backoffDuration": "60s",
    "backoffFactor": 2.0,
    "backoffMaxDuration": "600s",
}


def resources(trains: bool, gpus: int, gpu_type: str) -> ResourceSpec:
    if not trains:
        return ResourceSpec(cpu_request=DEFAULT_CPU, memory_request=DEFAULT_MEMORY)
    spec = ResourceSpec(cpu_request=TRAINER_CPU, memory_request=TRAINER_MEMORY)
    if gpus:
        spec.accelerator.CopyFrom(
            ResourceSpec.AcceleratorConfig(
                type=gpu_type, count=gpus, resource_type=gpu_type, resource_count=str(gpus)
            )
        )
    return spec


def _with_input_types(args: list[str], component: dict) -> list[str]:
    """TFX's executor args, with the component's input artifact types added to its inputs
    spec: the backend hands input artifacts without a type."""
    flag = "--json_serialized_inputs_spec_args"
    index = args.index(flag) + 1
    inputs_spec = json.loads(args[index])
    inputs_spec["artifacts"] = component.get("inputDefinitions", {}).get("artifacts", {})
    return [*args[:index], json.dumps(inputs_spec, sort_keys=True), *args[index + 1 :]]


def _platform_spec(executor_labels: list[str], s3_secret: str) -> dict:
    """The Kubernetes platform spec (kfp-kubernetes): the secret's keys as the tasks' AWS
    credentials. Optional, so a cluster without that secret still starts the pods."""
    secret = kubernetes_executor_config_pb2.SecretAsEnv(
        secret_name=s3_secret,
        optional=True,
        key_to_env=[
            kubernetes_executor_config_pb2.SecretAsEnv.SecretKeyToEnvMap(
                secret_key=key, env_var=variable
            )
            for key, variable in S3_SECRET_KEYS.items()
        ],
    )
    config = json_format.MessageToDict(
        kubernetes_executor_config_pb2.KubernetesExecutorConfig(secret_as_env=[secret])
    )
    platform = pipeline_spec_pb2.PlatformSpec()
    json_format.ParseDict(
        {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}}, platform
    )
    executors = platform.platforms["kubernetes"].deployment_spec.executors
    for label in executor_labels:
        executors[label].update(config)
    return json_format.MessageToDict(platform)


def compile_pipeline(
    config: PipelineConfig,
    image: str,
    output: str = DEFAULT_OUTPUT,
    gpus: int = 1,
    gpu_type: str = "nvidia.com/gpu",
    s3_endpoint: str = KFP_S3_ENDPOINT,
    s3_secret: str = KFP_S3_SECRET,
) -> str:
    """Writes a KFP 2.1 PipelineSpec YAML that runs `image`; returns its path."""
    if gpus < 0:
        raise ValueError(f"--gpus must be 0 or more, got {gpus}.")
    if config.pipeline_root:
        raise ValueError(
            "--pipeline-root: Kubeflow Pipelines takes the artifact root when a run starts "
            "and never reads one from the spec; pass it to submit or schedule (KFP's "
            "default is minio://mlpipeline/v2/artifacts)."
        )
    if config.train_workers > 1:  # the replicas are a TFJob; the Trainer task waits for it
        job = TFJobSettings(
            image=image,
            gpus=gpus,
            cpu=str(TRAINER_CPU),
            memory=f"{TRAINER_MEMORY:g}Gi",
            env={"AWS_ENDPOINT_URL": s3_endpoint} if s3_endpoint else {},
            secret=s3_secret or None,
            secret_keys=S3_SECRET_KEYS,
        )
        config = dataclasses.replace(config, tfjob=dataclasses.asdict(job))
    data = inspect_data(config)
    wiring = wire(config, data)
    stages.report(wiring, config, data)  # KFP's UI shows none of TFX's own artifacts
    sources = wiring.sources()
    trainer_id = sources[roles.MODEL].node_id
    uncacheable = {sources[role].node_id for role in UNCACHEABLE_ROLES if role in sources}
    training = {sources[role].node_id for role in TRAINING_ROLES if role in sources}
    replicas_train = {trainer_id} if config.tfjob else set()
    task_resources = {
        node_id: resources(node_id in training - replicas_train, gpus, gpu_type)
        for node_id in wiring.node_ids()
    }
    for component in wiring.components:
        component.with_platform_config(task_resources[component.id])
    pipeline = create_pipeline(config, wiring)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, default_commands=ENTRYPOINT, use_pipeline_spec_2_1=True
        ),
        output_dir=os.path.dirname(os.path.abspath(output)),
        output_filename=os.path.basename(output),
    )
    runner.run(pipeline)
    with open(output) as handle:
        spec = yaml.safe_load(handle)
    for task_name, task in spec["root"]["dag"]["tasks"].items():
        if task_name in uncacheable:
            task["cachingOptions"] = {"enableCache": False}
        if task_name == trainer_id:
            task["retryPolicy"] = TRAINER_RETRY_POLICY
        label = task["componentRef"]["name"]
        container = spec["deploymentSpec"]["executors"][f"{task_name}_executor"]["container"]
        # TFX's step builder drops the platform config of FileBasedExampleGen tasks.
        container.setdefault("resources", json_format.MessageToDict(task_resources[task_name]))
        container["args"] = _with_input_types(container["args"], spec["components"][label])
        if s3_endpoint:
            container["env"] = [{"name": "AWS_ENDPOINT_URL", "value": s3_endpoint}]
    documents = [spec]
    if s3_secret:
        documents.append(_platform_spec(sorted(spec["deploymentSpec"]["executors"]), s3_secret))
    # TFX stamps its own version and telemetry labels; nothing else varies between compiles.
    with open(output, "w") as handle:
        yaml.safe_dump_all(documents, handle, sort_keys=True)
    return output
