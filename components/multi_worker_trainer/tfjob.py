"""The Trainer's replicas as a Kubeflow Training Operator TFJob (kubeflow.org/v1): a Chief and
Workers, each a pod of the pipeline's image running the replica command with the GPUs the
Trainer asks for. Built with the operator's own Python models (kubeflow-training), submitted
and awaited with its TrainingClient.

The operator gives each pod its TF_CONFIG (modules/tf_config.py) in the container named
"tensorflow" only (kubeflowv1.TFJobDefaultContainerName; `SetClusterSpec` in
pkg/controller.v1/tensorflow/tfjob_controller.go), and listens on the port named "tfjob-port"
(2222). restartPolicy ExitCode restarts a replica killed by a signal (exit code 128 or more)
and fails the job on any other failure; runPolicy.backoffLimit bounds the restarts.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from http import HTTPStatus

from kubeflow.training import models
from kubernetes.client import (
    V1Container,
    V1ContainerPort,
    V1EnvVar,
    V1EnvVarSource,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ResourceRequirements,
    V1SecretKeySelector,
)

from modules.tf_config import CHIEF, DEFAULT_PORT, WORKER

API_VERSION = "kubeflow.org/v1"
KIND = "TFJob"
CONTAINER = "tensorflow"  # the only container the operator gives TF_CONFIG to
PORT_NAME = "tfjob-port"
RESTART_POLICY = "ExitCode"


@dataclasses.dataclass(frozen=True)
class TFJobSettings:
    """Where and how the replicas run; the pipeline's Kubeflow settings fill them in."""

    image: str
    namespace: str = "kubeflow"
    gpus: int = 0  # per replica
    cpu: str | None = None  # a request, e.g. "8"
    memory: str | None = None  # a request, e.g. "32Gi"
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    # The object store's credentials: a secret's keys as environment variables, as the
    # pipeline's tasks get them (optional, as theirs).
    secret: str | None = None
    secret_keys: dict[str, str] = dataclasses.field(default_factory=dict)
    timeout_s: int = 24 * 3600


def job_name(model_uri: str) -> str:
    """The same for every attempt of one Trainer task: a retried task waits for its job."""
    return f"alexnet-train-{hashlib.sha256(model_uri.encode()).hexdigest()[:12]}"


def tfjob(
    name: str,
    settings: TFJobSettings,
    workers: int,
    command: Sequence[str],
    backoff_limit: int,
) -> models.KubeflowOrgV1TFJob:
    """A Chief and `workers` - 1 Workers, all alike."""
    limits = {"nvidia.com/gpu": str(settings.gpus)} if settings.gpus else None
    requests = {
        key: value for key, value in (("cpu", settings.cpu), ("memory", settings.memory)) if value
    }
    container = V1Container(
        name=CONTAINER,
        image=settings.image,
        command=list(command),
        env=[V1EnvVar(name=key, value=value) for key, value in sorted(settings.env.items())]
        + [
            V1EnvVar(
                name=variable,
                value_from=V1EnvVarSource(
                    secret_key_ref=V1SecretKeySelector(name=settings.secret, key=key, optional=True)
                ),
            )
            for key, variable in sorted(settings.secret_keys.items())
            if settings.secret
        ],
        ports=[V1ContainerPort(name=PORT_NAME, container_port=DEFAULT_PORT)],
        resources=V1ResourceRequirements(limits=limits, requests=requests or None),
    )
    template = V1PodTemplateSpec(spec=V1PodSpec(containers=[container]))
    replicas = {CHIEF.capitalize(): 1}
    if workers > 1:
        replicas[WORKER.capitalize()] = workers - 1
    return models.KubeflowOrgV1TFJob(
        api_version=API_VERSION,
        kind=KIND,
        metadata=V1ObjectMeta(name=name, namespace=settings.namespace),
        spec=models.KubeflowOrgV1TFJobSpec(
            run_policy=models.KubeflowOrgV1RunPolicy(
                backoff_limit=backoff_limit, clean_pod_policy="Running"
            ),
            tf_replica_specs={
                kind: models.KubeflowOrgV1ReplicaSpec(
                    replicas=count, restart_policy=RESTART_POLICY, template=template
                )
                for kind, count in replicas.items()
            },
        ),
    )


def submit_and_wait(job: models.KubeflowOrgV1TFJob, timeout_s: int) -> None:
    """Creates the TFJob and waits until it succeeds; raises RuntimeError with the
    operator's reason if it fails."""
    from kubeflow.training import TrainingClient

    client = TrainingClient(namespace=job.metadata.namespace, job_kind=KIND)
    try:
        client.create_job(job=job)
    except RuntimeError as error:
        # 409 Conflict: a retried Trainer task, whose job is there; wait for it.
        if getattr(error.__cause__, "status", None) != HTTPStatus.CONFLICT:
            raise
    client.wait_for_job_conditions(job.metadata.name, wait_timeout=timeout_s, polling_interval=15)
