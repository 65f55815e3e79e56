"""TFX Tuner: KerasTuner's random search over the config's search space (learning rate,
dropout, batch size, optimizer). Each trial trains AlexNet as the Trainer does, for the
Tuner's train steps, and is scored by its accuracy on the eval split. TFX writes the best
trial's values to `best_hyperparameters`, which the Trainer reads (modules/trainer.py).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import keras_tuner
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx

from modules.dataset import train_and_eval_datasets
from modules.device_plan import DevicePlan, local_device_plan, make_strategy
from modules.examples_files import resolve_class_names
from modules.hyperparameters import check_known_keys
from modules.model import make_model
from modules.progress import ProgressReport
from modules.search_space import SearchSpace
from modules.trainer_inputs import TrainerInputs

OBJECTIVE = keras_tuner.Objective("val_accuracy", direction="max")
PROJECT = "alexnet"


@dataclasses.dataclass(frozen=True)
class TunerInputs:
    """What tuner_fn needs beyond TFX's own arguments, passed whole in `custom_config`."""

    trainer: TrainerInputs  # the settings a trial starts from
    search_space: SearchSpace
    trials: int

    def to_custom_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls, values: dict[str, Any]) -> TunerInputs:
        check_known_keys(cls, values, "Tuner custom_config key")
        return cls(
            trainer=TrainerInputs.from_custom_config(values["trainer"]),
            search_space=SearchSpace.from_dict(values["search_space"]),
            trials=values["trials"],
        )


def declare(space: SearchSpace) -> keras_tuner.HyperParameters:
    """One KerasTuner choice per field of the space; a single value is held fixed."""
    declared = keras_tuner.HyperParameters()
    for name, values in space.choices().items():
        if len(values) > 1:
            declared.Choice(name, values)
        else:
            declared.Fixed(name, values[0])
    return declared


class AlexNetSearch(keras_tuner.RandomSearch):
    """Random search whose trials fit the tf_keras AlexNet themselves. KerasTuner 1.4's own
    fit (Tuner.run_trial) adds Keras 3 callbacks, which a tf_keras model cannot take; an
    overridden run_trial that returns its objective is KerasTuner's documented way out."""

    def __init__(
        self,
        fn_args: tfx.components.FnArgs,
        inputs: TunerInputs,
        class_names: list[str],
        plan: DevicePlan,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.trials = inputs.trials
        self.fn_args = fn_args
        self.base = inputs.trainer.hyperparameters
        self.class_names = class_names
        self.transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    def run_trial(
        self, trial: keras_tuner.engine.trial.Trial, **fit_kwargs: Any
    ) -> dict[str, float]:
        hp = self.base.with_values(trial.hyperparameters.values)
        keras.utils.set_random_seed(hp.seed)
        train, evaluation = train_and_eval_datasets(
            self.fn_args,
            self.transform_output,
            hp,
            len(self.class_names),
            cache=False,  # a trial reads its data about once
        )
        with make_strategy(self.plan).scope():
            model = make_model(hp, len(self.class_names))
        started = time.perf_counter()
        history = model.fit(
            train,
            validation_data=evaluation,
            epochs=1,
            callbacks=[ProgressReport(hp.batch_size, (int(trial.trial_id) + 1, self.trials))],
            verbose=0,
            **fit_kwargs,
        )
        score = float(history.history[OBJECTIVE.name][-1])
        # The line benchmarks/tuning.py reads: what the trial's own training took.
        logging.info(
            "Tuner: trial %s: %s %.4f, fit %.2f s",
            trial.trial_id,
            OBJECTIVE.name,
            score,
            time.perf_counter() - started,
        )
        return {OBJECTIVE.name: score}


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    """The TFX Tuner entry point."""
    inputs = TunerInputs.from_custom_config(fn_args.custom_config or {})
    base = inputs.trainer.hyperparameters
    # Trials run on the devices and at the precision the Trainer will, so scores carry over.
    plan = local_device_plan()
    keras.mixed_precision.set_global_policy(plan.policy)
    tuner = AlexNetSearch(
        fn_args,
        inputs,
        resolve_class_names(
            fn_args.train_files, inputs.trainer.class_names, inputs.trainer.num_classes
        ),
        plan,
        objective=OBJECTIVE,
        max_trials=inputs.trials,
        hyperparameters=declare(inputs.search_space),
        tune_new_entries=False,
        # A failed trial fails the Tuner: KerasTuner would otherwise go on and could report
        # a "best" trial that never ran.
        max_consecutive_failed_trials=1,
        seed=base.seed,
        directory=fn_args.working_dir,
        project_name=PROJECT,
        overwrite=True,
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "steps_per_epoch": max(1, fn_args.train_steps),
            "validation_steps": max(1, fn_args.eval_steps),
        },
    )
