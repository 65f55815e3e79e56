"""Runs the TFX Trainer executor on fixed input and output artifacts, as a re-launched
Trainer (a retried Kubeflow pod, say) would: same output URIs, same model_run_dir.

usage: python trainer_harness.py SUMMARY_JSON OUT_DIR EPOCHS STEPS_PER_EPOCH
"""

import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfx.components.trainer.executor import GenericExecutor  # noqa: E402
from tfx.types import artifact_utils, standard_artifacts  # noqa: E402


def artifact(cls, uri, **properties):
    instance = cls()
    instance.uri = uri
    for name, value in properties.items():
        setattr(instance, name, value)
    return instance


def main():
    summary_path, out, epochs, steps = sys.argv[1:5]
    summary = json.loads(open(summary_path).read())
    lineage = summary["lineage"]
    custom = json.loads(open(os.path.join(out, "custom_config.json")).read())
    custom["epochs"] = int(epochs)
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
            "model": [artifact(standard_artifacts.Model, os.path.join(out, "model"))],
            "model_run": [artifact(standard_artifacts.ModelRun, os.path.join(out, "run"))],
        },
        {
            "run_fn": "modules.trainer.run_fn",
            "train_args": json.dumps({"num_steps": int(epochs) * int(steps)}),
            "eval_args": json.dumps({"num_steps": 1}),
            "custom_config": json.dumps(custom),
        },
    )


if __name__ == "__main__":
    main()
