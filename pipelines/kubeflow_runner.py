"""Compiles the same pipeline for Kubeflow Pipelines: a KFP 2.1 PipelineSpec YAML."""

from __future__ import annotations

import os

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from pipelines.config import PipelineConfig
from pipelines.data_facts import inspect_data
from pipelines.pipeline import create_pipeline, wire

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

DEFAULT_OUTPUT = "kubeflow/alexnet_pipeline.yaml"
# Requests per task; the tasks that train AlexNet (the Trainer, the Tuner's trials) also get
# the GPUs.
TRAINER_CPU, TRAINER_MEMORY = 8.0, 32.0
TRAINING_ROLES = ("model", "hyperparameters")
DEFAULT_CPU, DEFAULT_MEMORY = 2.0, 8.0
# Artifact roles whose producer depends on state outside its inputs (the serving directory):
# Kubeflow must not cache it.
UNCACHEABLE_ROLES = ("baseline_model",)
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


def compile_pipeline(
    config: PipelineConfig,
    image: str,
    output: str = DEFAULT_OUTPUT,
    gpus: int = 1,
    gpu_type: str = "nvidia.com/gpu",
) -> str:
    """Writes a KFP 2.1 PipelineSpec YAML that runs `image`; returns its path."""
    if gpus < 0:
        raise ValueError(f"--gpus must be 0 or more, got {gpus}.")
    wiring = wire(config, inspect_data(config))
    sources = wiring.sources()
    trainer_id = sources["model"].node_id
    uncacheable = {sources[role].node_id for role in UNCACHEABLE_ROLES}
    training = {sources[role].node_id for role in TRAINING_ROLES if role in sources}
    task_resources = {
        node_id: resources(node_id in training, gpus, gpu_type) for node_id in wiring.node_ids()
    }
    for component in wiring.components:
        component.with_platform_config(task_resources[component.id])
    pipeline = create_pipeline(config, wiring)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True
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
        # TFX's step builder drops the platform config of FileBasedExampleGen tasks.
        container = spec["deploymentSpec"]["executors"][f"{task_name}_executor"]["container"]
        container.setdefault("resources", json_format.MessageToDict(task_resources[task_name]))
    # TFX stamps its own version and telemetry labels; nothing else varies between compiles.
    with open(output, "w") as handle:
        yaml.safe_dump(spec, handle, sort_keys=True)
    return output
