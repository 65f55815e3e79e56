"""The pipeline's stages. Each wires its TFX nodes onto the channels earlier stages made and
records the channels it makes on the Wiring (`pipelines/wiring.py`);
`pipelines/pipeline.py` lists them in order. Node ids are spelled here or by TFX, nowhere
else (tests/test_layers.py).
"""

from __future__ import annotations

import dataclasses
import json
import os

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.anomalies_gate import AnomaliesGate
from components.atomic_pusher import AtomicPusher
from components.curated_import_schema_gen import CuratedImportSchemaGen
from components.drift_check import DriftCheck
from components.image_folder_example_gen import ImageFolderExampleGen
from components.multi_worker_trainer.executor import Executor as MultiWorkerExecutor
from components.pushed_model_resolver import PushedModelResolver
from components.run_report.component import RunReport
from components.served_baseline_evaluator import ServedBaselineEvaluator
from components.serving_check import ServingCheck
from components.tfrecord_spans_example_gen import TFRecordSpansExampleGen
from contract.data import EVAL, HASH_BUCKETS, TRAIN, eval_buckets
from contract.prediction import BULK_SIGNATURE, EXAMPLES_SIGNATURE, PROBABILITIES
from modules.trainer_inputs import TrainerInputs
from modules.transform import TransformSettings
from modules.tuner import TunerInputs
from pipelines.config import PipelineConfig
from pipelines.data_facts import DataFacts
from pipelines.eval_config import eval_config
from pipelines.wiring import Wiring


def _hash_split(eval_fraction: float) -> tfx.proto.Output:
    buckets = eval_buckets(eval_fraction)
    return tfx.proto.Output(
        split_config=tfx.proto.SplitConfig(
            splits=[
                tfx.proto.SplitConfig.Split(name=TRAIN, hash_buckets=HASH_BUCKETS - buckets),
                tfx.proto.SplitConfig.Split(name=EVAL, hash_buckets=buckets),
            ]
        )
    )


def ingest(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """ExampleGen: the images as tf.Examples in train and eval splits; with span folders,
    the window's spans, and eval from the newest."""
    hash_split = _hash_split(config.eval_fraction)
    window = config.window_spans if data.spanned else None
    if config.data_format == "folder":
        example_gen = ImageFolderExampleGen(config.data_path, hash_split, window_spans=window)
    elif data.spanned:
        example_gen = TFRecordSpansExampleGen(config.data_path, hash_split, config.window_spans)
    else:
        splits = data.tfrecord_splits
        example_gen = tfx.components.ImportExampleGen(
            input_base=config.data_path,
            input_config=tfx.proto.Input(
                splits=[
                    tfx.proto.Input.Split(name=name, pattern=pattern)
                    for name, pattern in splits.items()
                ]
            ),
            # Files named for their splits are the splits; other files are hashed.
            output_config=None if len(splits) > 1 else hash_split,
        )
    wiring.examples = wiring.add(example_gen).outputs["examples"]


def validate(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """Statistics, the schema, and the data checked against it."""
    # Statistics over the data for visualization and validation.
    statistics_gen = wiring.add(tfx.components.StatisticsGen(examples=wiring.examples))
    wiring.statistics = statistics_gen.outputs["statistics"]

    # The curated schema if there is one, else one inferred from the statistics; a schema
    # inferred from the same statistics it is checked against flags little.
    if config.schema_path:
        schema_gen = CuratedImportSchemaGen(schema_file=config.schema_path)
    else:
        schema_gen = tfx.components.SchemaGen(
            statistics=wiring.statistics, infer_feature_shape=True
        )
    wiring.schema = wiring.add(schema_gen).outputs["schema"]

    # Anomalies: the statistics of each split against the schema.
    example_validator = wiring.add(
        tfx.components.ExampleValidator(statistics=wiring.statistics, schema=wiring.schema)
    )
    wiring.anomalies = example_validator.outputs["anomalies"]


def served_model(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """The model now served and its training data's statistics, for the drift check, the
    Trainer's warm start and the Evaluator's baseline. An ordinary step, so it runs on any
    Kubeflow Pipelines."""
    resolver = wiring.add(
        PushedModelResolver(serving_dir=config.serving_path, model_name=config.model_name)
    )
    wiring.baseline_model = resolver.outputs["model"]
    wiring.served_statistics = resolver.outputs["statistics"]


def check_drift(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """The eval split (the newest span's) against the served model's training data."""
    drift_check = wiring.add(
        DriftCheck(
            examples=wiring.examples,
            served_statistics=wiring.served_statistics,
            label_feature=config.label_feature,
            thresholds=json.dumps(dataclasses.asdict(config.drift)),
        )
    )
    wiring.drift = drift_check.outputs["anomalies"]
    wiring.drift_statistics = drift_check.outputs["statistics"]


def stop_on_anomalies(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """With fail_on_anomalies: a gate that fails the run before anything trains on data with
    anomalies or drift."""
    gate = AnomaliesGate(anomalies=wiring.anomalies, drift=wiring.drift)
    wiring.gates.append(wiring.add(gate))


def transform(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """Transform: decode, resize and normalize with statistics from one pass over train."""
    materialize = config.training.materialize
    transform_node = wiring.add(
        tfx.components.Transform(
            examples=wiring.examples,
            schema=wiring.schema,
            preprocessing_fn="modules.transform.preprocessing_fn",
            custom_config=TransformSettings(
                image_feature=config.image_feature,
                label_feature=config.label_feature,
                image_size=config.training.image_size,
            ).to_dict(),
            materialize=materialize,
            splits_config=tfx.proto.SplitsConfig(
                analyze=[TRAIN], transform=[TRAIN, EVAL] if materialize else []
            ),
            # Statistics over raw image bytes and 150k-value tensors cost minutes, say little.
            disable_statistics=True,
        )
    )
    wiring.transform_graph = transform_node.outputs["transform_graph"]
    if materialize:
        wiring.transformed_examples = transform_node.outputs["transformed_examples"]


def _trainer_inputs(config: PipelineConfig, data: DataFacts) -> TrainerInputs:
    return TrainerInputs(
        hyperparameters=config.training,
        image_feature=config.image_feature,
        class_names=data.class_names,
        num_classes=config.num_classes,
        warm_start=config.warm_start,
        memory_mb=config.trainer_memory_mb,
        train_workers=config.train_workers,
        tfjob=config.tfjob,
    )


def tune(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """With tune: KerasTuner trials over the search space; the best trial's values go to the
    Trainer. One task on Kubeflow too (kubeflow/README.md says how to spread trials out)."""
    tuner = wiring.add(
        tfx.components.Tuner(
            tuner_fn="modules.tuner.tuner_fn",
            examples=wiring.transformed_examples or wiring.examples,
            transform_graph=wiring.transform_graph,
            schema=wiring.schema,
            train_args=tfx.proto.TrainArgs(num_steps=config.tune_steps_per_trial),
            eval_args=tfx.proto.EvalArgs(num_steps=config.training.eval_steps),
            # Whole, so a change to the space, the budget or a hyperparameter re-runs it.
            custom_config=TunerInputs(
                trainer=_trainer_inputs(config, data),
                search_space=config.search_space,
                trials=config.tune_trials,
            ).to_custom_config(),
        )
    )
    wiring.hyperparameters = tuner.outputs["best_hyperparameters"]
    wiring.tuner_results = tuner.outputs["tuner_results"]


def train(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """Trainer: AlexNet; without materialized data it applies the transform graph as it reads.
    With train_workers above 1, its executor runs the training as a multi-worker job."""
    hyperparameters = config.training
    trainer = wiring.add(
        tfx.components.Trainer(
            custom_executor_spec=executor_spec.ExecutorClassSpec(MultiWorkerExecutor),
            run_fn="modules.trainer.run_fn",
            examples=wiring.transformed_examples or wiring.examples,
            transform_graph=wiring.transform_graph,
            schema=wiring.schema,
            base_model=wiring.baseline_model,
            hyperparameters=wiring.hyperparameters,  # with tune: they override `training`
            train_args=tfx.proto.TrainArgs(
                num_steps=hyperparameters.epochs * hyperparameters.steps_per_epoch
            ),
            eval_args=tfx.proto.EvalArgs(num_steps=hyperparameters.eval_steps),
            # Whole, so changing any hyperparameter re-runs the Trainer.
            custom_config=_trainer_inputs(config, data).to_custom_config(),
        )
    )
    wiring.model = trainer.outputs["model"]


def evaluate(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """TFMA's verdict on the candidate, on the eval split, against the served model."""
    evaluator = wiring.add(
        ServedBaselineEvaluator(
            examples=wiring.examples,
            model=wiring.model,
            baseline_model=wiring.baseline_model,
            eval_config=eval_config(
                label_key=config.label_feature,
                signature_name=EXAMPLES_SIGNATURE,
                prediction_key=PROBABILITIES.name,
                num_classes=data.num_classes,
                min_accuracy=config.min_accuracy,
                regression_epsilon=config.regression_epsilon,
                chance_margin=config.chance_margin,
            ),
        ).with_id("Evaluator")
    )
    wiring.evaluation = evaluator.outputs["evaluation"]
    wiring.blessing = evaluator.outputs["blessing"]


def bulk_infer(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """With bulk_infer_data: those images (in class folders or not; labels are not needed)
    as examples, scored by the blessed candidate with TFX's BulkInferrer (PredictionLogs);
    it scores nothing when the Evaluator did not bless."""
    unlabelled = ImageFolderExampleGen(
        config.bulk_infer_path, _hash_split(config.eval_fraction), labelled=False
    )
    example_gen = wiring.add(unlabelled.with_id("BulkInferExampleGen"))
    wiring.bulk_examples = example_gen.outputs["examples"]
    inferrer = wiring.add(
        tfx.components.BulkInferrer(
            examples=wiring.bulk_examples,
            model=wiring.model,
            model_blessing=wiring.blessing,
            data_spec=tfx.proto.DataSpec(),  # every split
            model_spec=tfx.proto.ModelSpec(model_signature_name=[BULK_SIGNATURE]),
        )
    )
    wiring.inference_result = inferrer.outputs["inference_result"]


def check_serving(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """The candidate in the model server, with eval images over V1 and V2 (InfraValidator's
    job, without Docker); its blessing carries the candidate and TF Serving warm-up records."""
    serving_check = wiring.add(
        ServingCheck(
            model=wiring.model,
            examples=wiring.examples,
            model_blessing=wiring.blessing,
            model_name=config.model_name,
            image_feature=config.image_feature,
            latency_budget_ms=config.serving_latency_budget_ms,
            ready_deadline_seconds=config.serving_ready_seconds,
        )
    )
    wiring.infra_blessing = serving_check.outputs["blessing"]


def report(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """Kubeflow only: the summary, metrics, confusion matrix and report as the artifacts
    KFP's UI shows (a local run writes its report itself)."""
    channels = {
        role: getattr(wiring, role)
        for role in wiring.sources()
        if isinstance(getattr(wiring, role), tfx.types.BaseChannel)
    }
    nodes = {role: source.node_id for role, source in wiring.sources().items()}
    wiring.add(
        RunReport(
            channels, nodes, config.pipeline_name, config.data_path, data.class_names, config.report
        )
    )


def push(wiring: Wiring, config: PipelineConfig, data: DataFacts) -> None:
    """Pusher: a model both checks blessed, with its warm-up records, to
    <serving_dir>/<model_name>/<next integer version>."""
    pusher = wiring.add(
        AtomicPusher(
            infra_blessing=wiring.infra_blessing,
            model_blessing=wiring.blessing,
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(
                    base_directory=os.path.join(config.serving_path, config.model_name)
                )
            ),
            # Kept with the version, for the next run's drift check.
            statistics=wiring.drift_statistics,
            evaluation=wiring.evaluation,  # its accuracy goes in the push record
        ).with_id("Pusher")
    )
    wiring.pushed_model = pusher.outputs["pushed_model"]
