"""Compiles the same pipeline for Kubeflow Pipelines, and submits compiled packages."""

from __future__ import annotations

import os
import socket

import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx import v1 as tfx

from pipelines.config import PipelineConfig
from pipelines.pipeline import create_pipeline

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

DEFAULT_OUTPUT = "kubeflow/alexnet_pipeline.yaml"
# Requests per task; the Trainer also gets the GPUs.
TRAINER_CPU, TRAINER_MEMORY = 8.0, 32.0
DEFAULT_CPU, DEFAULT_MEMORY = 2.0, 8.0
# Tasks whose result depends on state outside their inputs: Kubeflow must not cache them.
UNCACHEABLE_TASKS = ("PushedModelResolver",)
SUBMIT_TIMEOUT_SECONDS = 30


def resources(component_id: str, gpus: int, gpu_type: str) -> ResourceSpec:
    if component_id != "Trainer":
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
    pipeline = create_pipeline(config)
    for component in pipeline.components:
        component.with_platform_config(resources(component.id, gpus, gpu_type))
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
        if task_name in UNCACHEABLE_TASKS:
            task["cachingOptions"] = {"enableCache": False}
        # TFX's step builder drops the platform config of FileBasedExampleGen tasks.
        container = spec["deploymentSpec"]["executors"][f"{task_name}_executor"]["container"]
        container.setdefault(
            "resources", json_format.MessageToDict(resources(task_name, gpus, gpu_type))
        )
    # TFX stamps its own version and telemetry labels; nothing else varies between compiles.
    with open(output, "w") as handle:
        yaml.safe_dump(spec, handle, sort_keys=True)
    return output


def submit(
    host: str, package: str, experiment: str, pipeline_root: str | None, run_name: str | None
) -> str:
    """Starts a run of a compiled package on a KFP server; returns the run's URL."""
    import kfp
    import kfp_server_api
    import urllib3

    if not os.path.exists(package):
        raise FileNotFoundError(
            f"No compiled pipeline at {package}; run alexnet-tfx compile first or pass --package."
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(SUBMIT_TIMEOUT_SECONDS)
    try:
        client = kfp.Client(host=host)
        result = client.create_run_from_pipeline_package(
            package,
            arguments={},
            run_name=run_name,
            experiment_name=experiment,
            pipeline_root=pipeline_root,
        )
    except (OSError, urllib3.exceptions.HTTPError, kfp_server_api.ApiException) as error:
        raise ConnectionError(
            f"Could not submit to Kubeflow Pipelines at {host}: {error}. "
            "Check --host and that the KFP API is reachable."
        ) from error
    finally:
        socket.setdefaulttimeout(previous)
    return f"{host.rstrip('/')}/#/runs/details/{result.run_id}"
