"""The Trainer's executor: TFX's own for one worker; for several, a training job whose
replicas run this same executor, the way TFX's Vertex extension hands a training to worker
pools (tfx/extensions/google_cloud_ai_platform/trainer/executor.py and runner.py: each
replica runs `python -m tfx.scripts.run_executor` with the Trainer's artifacts).

Outside a job, with `train_workers` above 1, it starts the job, locally as processes
(local_job.py) or on Kubeflow as a TFJob (tfjob.py), waits for it, and finds the chief's
model in its output (on Kubeflow: downloads it, pod_staging.py). Inside a replica (TF_CONFIG
set), the chief runs TFX's GenericExecutor, which trains, exports and checks the export; a
worker only trains with the others, since GenericExecutor would fail it for the export that
only the chief writes.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import sys
from typing import Any

from tfx import types
from tfx.components.trainer.executor import GenericExecutor
from tfx.components.util import udf_utils
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from components.multi_worker_trainer import pod_staging, tfjob
from components.multi_worker_trainer.local_job import run_local_job
from components.multi_worker_trainer.progress_relay import ProgressRelay
from contract.training_job import BACKUP_ENV, PROGRESS_ENV
from modules.tf_config import read_role
from modules.trainer_inputs import TrainerInputs
from modules.training_backup import claim_backup

# A replica killed during its epoch resumes from the backup; past this many restarts the job
# has failed (the TFJob's runPolicy.backoffLimit).
BACKOFF_LIMIT = 3
REPLICA_LOGS = "replicas"  # in the model_run output: each replica's output


def replica_command(
    python: str,
    input_dict: dict[str, list[types.Artifact]],
    output_dict: dict[str, list[types.Artifact]],
    exec_properties: dict[str, Any],
) -> list[str]:
    """TFX's run_executor on this executor and this execution's artifacts."""

    def encoded(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return [
        python,
        "-m",
        "tfx.scripts.run_executor",
        f"--executor_class_path={Executor.__module__}.{Executor.__name__}",
        f"--inputs-base64={encoded(artifact_utils.jsonify_artifact_dict(input_dict))}",
        f"--outputs-base64={encoded(artifact_utils.jsonify_artifact_dict(output_dict))}",
        f"--exec-properties-base64={encoded(json.dumps(exec_properties))}",
    ]


class Executor(GenericExecutor):
    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        role = read_role(os.environ.get("TF_CONFIG"))
        if role is not None:
            pod_staging.stage_in(input_dict)
            if role.is_chief:
                super().Do(input_dict, output_dict, exec_properties)
                pod_staging.stage_out(output_dict)
            else:  # GenericExecutor would fail it for the export only the chief writes
                fn_args = self._GetFnArgs(input_dict, output_dict, exec_properties)
                udf_utils.get_fn(exec_properties, "run_fn")(fn_args)
            return
        custom_config = json.loads(
            exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "{}"
        )
        inputs = TrainerInputs.from_custom_config(custom_config)
        if inputs.train_workers <= 1:
            super().Do(input_dict, output_dict, exec_properties)
            return
        fn_args = self._GetFnArgs(input_dict, output_dict, exec_properties)
        if inputs.tfjob is not None:
            settings = tfjob.TFJobSettings(**inputs.tfjob)
            job = tfjob.tfjob(
                tfjob.job_name(fn_args.serving_model_dir),
                settings,
                inputs.train_workers,
                replica_command("python", input_dict, output_dict, exec_properties),
                BACKOFF_LIMIT,
            )
            tfjob.submit_and_wait(job, settings.timeout_s)
            pod_staging.collect(output_dict)
            return
        logs = os.path.join(fn_args.model_run_dir, REPLICA_LOGS)
        with claim_backup(fn_args) as backup, ProgressRelay(logs) as relay:
            restarts = run_local_job(
                replica_command(sys.executable, input_dict, output_dict, exec_properties),
                inputs.train_workers,
                logs,
                BACKOFF_LIMIT,
                env={BACKUP_ENV: backup, PROGRESS_ENV: relay.path},
                while_waiting=relay.forward,
            )
        logging.info(
            "Trainer: %d replicas trained (%d restarts); the chief's model is in %s",
            inputs.train_workers,
            restarts,
            fn_args.serving_model_dir,
        )
        io_utils.write_string_file(
            os.path.join(logs, "job.json"),
            json.dumps({**dataclasses.asdict(inputs), "restarts": restarts}, default=str),
        )
