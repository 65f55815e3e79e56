"""TF_CONFIG, the cluster description every worker of a multi-worker training reads, written
as Kubeflow's Training Operator writes it into a TFJob's pods.

Follows kubeflow/training-operator v1.9.0, pkg/controller.v1/tensorflow/tensorflow.go
(`genClusterSpec`, `genTFConfigJSONStr`) and util.go (`isDistributed`): one list of
addresses per replica type, lower-cased and in index order; the replica's own type and
index; "environment": "cloud"; Go's encoding/json output (map keys sorted, struct fields in
declaration order, no spaces). A job of a single replica gets no TF_CONFIG. In a cluster an
address is `<job>-<type>-<index>.<namespace>.svc:2222`; a local run uses the same document
with loopback addresses, so the workers read exactly what the operator's pods read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

CHIEF = "chief"
WORKER = "worker"
# kubeflowv1.TFJobDefaultPort, the port every replica's TensorFlow server listens on.
DEFAULT_PORT = 2222


def cluster_addresses(
    job: str, namespace: str, replicas: Mapping[str, int], cluster_domain: str = ""
) -> dict[str, list[str]]:
    """`genClusterSpec`: each replica's headless-service address, by lower-cased type."""
    suffix = f".{cluster_domain}" if cluster_domain else ""
    return {
        kind.lower(): [
            f"{job}-{kind.lower()}-{index}.{namespace}.svc{suffix}:{DEFAULT_PORT}"
            for index in range(count)
        ]
        for kind, count in replicas.items()
    }


def tf_config_json(cluster: Mapping[str, Sequence[str]], kind: str, index: int) -> str | None:
    """`genTFConfigJSONStr` for one replica; None for a job of one replica (`isDistributed`)."""
    if sum(len(addresses) for addresses in cluster.values()) == 1:
        return None
    document = {
        "cluster": {name: list(cluster[name]) for name in sorted(cluster)},
        "task": {"type": kind.lower(), "index": index},
        "environment": "cloud",
    }
    return json.dumps(document, separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class Role:
    """This process's place in a multi-worker training, from its TF_CONFIG."""

    kind: str
    index: int
    cluster: dict[str, list[str]]

    @property
    def is_chief(self) -> bool:
        """The replica that exports and keeps the backup (TFX's `_is_chief` in
        tfx/components/trainer/executor.py: "chief", or the legacy "master" 0)."""
        return self.kind == CHIEF or (self.kind == "master" and self.index == 0)

    @property
    def workers(self) -> int:
        return sum(len(addresses) for addresses in self.cluster.values())

    @property
    def address(self) -> str:
        return self.cluster[self.kind][self.index]

    def peers(self) -> list[str]:
        return [a for addresses in self.cluster.values() for a in addresses if a != self.address]


def read_role(text: str | None) -> Role | None:
    """The role a TF_CONFIG gives; None without one (a single-process training). A wrong one
    raises ValueError in one line that names the field."""
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not JSON ({error.msg}); fix or unset it") from None
    cluster, task = document.get("cluster"), document.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ValueError("TF_CONFIG.cluster: no replicas listed; fix or unset TF_CONFIG")
    if not isinstance(task, dict) or not isinstance(task.get("type"), str):
        raise ValueError('TF_CONFIG.task: needs {"type": ..., "index": ...}; fix or unset it')
    kind, index = task["type"], task.get("index", 0)
    if kind not in cluster:
        raise ValueError(
            f"TF_CONFIG.task.type {kind!r} is not in the cluster ({', '.join(sorted(cluster))})"
        )
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ValueError(
            f"TF_CONFIG.task.index {index!r} is outside the cluster's {len(cluster[kind])} "
            f"{kind} replica(s)"
        )
    return Role(kind, index, {name: list(addresses) for name, addresses in cluster.items()})
