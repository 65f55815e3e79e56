"""Runs the TFX Trainer executor on the first run's examples and transform graph, as a
Trainer execution of a local run would: outputs in OUT/Trainer/<output key>/<execution>.
Each call with a new `execution` is a new execution, as a re-run after a kill is."""

import json
import os
from pathlib import Path

from tfx.components.trainer.executor import GenericExecutor
from tfx.types import artifact_utils, standard_artifacts

from modules.training_backup import BACKUP_DIR


def has_checkpoint(trainer_dir) -> bool:
    """Whether a Trainer backup under TRAINER_DIR holds a finished checkpoint (TensorFlow
    writes its `checkpoint` file last)."""
    return any(Path(trainer_dir).glob(f"{BACKUP_DIR}/*/checkpoint/**/checkpoint"))


def artifact(cls, uri, **properties):
    instance = cls()
    instance.uri = uri
    for name, value in properties.items():
        setattr(instance, name, value)
    return instance


def run_trainer(summary_path: str, out: str, execution: int, epochs: int, steps: int) -> None:
    """The Trainer on the summary's examples, transform graph and schema."""
    with open(os.path.join(out, "trainer.log"), "a") as log:  # this process's output
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    summary = json.loads(open(summary_path).read())
    lineage = summary["lineage"]
    custom = json.loads(open(os.path.join(out, "custom_config.json")).read())
    custom["hyperparameters"]["epochs"] = int(epochs)
    GenericExecutor().Do(
        {
            "examples": [
                artifact(
                    standard_artifacts.Examples,
                    lineage["examples"],
                    split_names=artifact_utils.encode_split_names(["train", "eval"]),
                )
            ],
            "transform_graph": [
                artifact(standard_artifacts.TransformGraph, lineage["transform_graph"])
            ],
            "schema": [artifact(standard_artifacts.Schema, lineage["schema"])],
        },
        {
            key: [artifact(cls, os.path.join(out, "Trainer", key, str(execution)))]
            for key, cls in (
                ("model", standard_artifacts.Model),
                ("model_run", standard_artifacts.ModelRun),
            )
        },
        {
            "run_fn": "modules.trainer.run_fn",
            "train_args": json.dumps({"num_steps": int(epochs) * int(steps)}),
            "eval_args": json.dumps({"num_steps": 1}),
            "custom_config": json.dumps(custom),
        },
    )
