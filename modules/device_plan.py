"""Which devices train, with which tf.distribute strategy and Keras precision policy."""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from modules.multi_worker import multi_worker_strategy
from modules.tf_config import Role, read_role


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    strategy: str  # "multi_worker", "mirrored" or "default"
    policy: str  # "mixed_float16", "mixed_bfloat16" or "float32"
    devices: list[str]
    role: Role | None = None  # this replica's, in a multi-worker training

    @property
    def is_chief(self) -> bool:
        """The replica that exports, logs and keeps the backup (the only one, alone)."""
        return self.role is None or self.role.is_chief


# CPU features with bfloat16 arithmetic (AVX512_BF16, AMX): mixed_bfloat16 trains AlexNet
# about 1.5 times as fast there (BENCHMARKS.md); without them bfloat16 is emulated, slower.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


# oneDNN's ISA caps that keep bfloat16 instructions (AVX512_CORE_BF16, the AMX and AVX10 ones).
BF16_ONEDNN_ISAS = ("ALL", "BF16", "AMX", "AVX10")


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has bfloat16 arithmetic and oneDNN may use it (ONEDNN_MAX_CPU_ISA)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    if not any(isa in cap for isa in BF16_ONEDNN_ISAS):
        return False
    try:
        with open(cpuinfo) as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def plan_devices(gpus: list[str], cpu_bfloat16: bool, role: Role | None = None) -> DevicePlan:
    """A replica of a multi-worker training (TF_CONFIG): all its GPUs, kept in sync with the
    others'. Otherwise all visible GPUs: mirrored for 2+, default strategy for 0 or 1. Mixed
    precision on GPUs (float16) and on CPUs with bfloat16 arithmetic; float32 otherwise."""
    if gpus:
        policy = "mixed_float16"
    else:
        policy = "mixed_bfloat16" if cpu_bfloat16 else "float32"
    if role is not None:
        strategy = "multi_worker"
    else:
        strategy = "mirrored" if len(gpus) > 1 else "default"
    return DevicePlan(strategy=strategy, policy=policy, devices=gpus or ["CPU"], role=role)


def local_device_plan() -> DevicePlan:
    """The plan for this machine's GPUs and CPU, and its TF_CONFIG's role if it has one."""
    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
    return plan_devices(gpus, cpu_has_bfloat16(), read_role(os.environ.get("TF_CONFIG")))


def make_strategy(plan: DevicePlan) -> tf.distribute.Strategy:
    """Before any other TensorFlow work: a multi-worker strategy configures collective ops,
    which TensorFlow allows only before its runtime starts."""
    if plan.strategy == "multi_worker":
        return multi_worker_strategy(plan.role)
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
