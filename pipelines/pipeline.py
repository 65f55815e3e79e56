"""The AlexNet TFX pipeline, wired top to bottom. Both runners build it from one config."""

from __future__ import annotations

import fnmatch
import os
from typing import Any

import tensorflow as tf
from tensorflow_model_analysis.proto import config_pb2 as tfma
from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec

from components.atomic_push_executor import Executor as AtomicPushExecutor
from components.curated_import_schema_gen import CuratedImportSchemaGen
from components.image_folder_example_gen import ImageFolderExampleGen
from components.image_folder_example_gen.executor import discover_layout
from components.pushed_model_resolver import PushedModelResolver
from pipelines.config import ConfigError, PipelineConfig

_TFRECORD_SPLITS = {"train": ("train",), "eval": ("eval", "test")}
_TFRECORD_GLOB = "*.tfrecord*"
_LABELS_FILE = "labels.txt"


def tfrecord_input_config(data: str) -> tfx.proto.Input:
    """train*/eval* (or test*) files as the splits when present, else one split to hash."""
    names = {os.path.basename(path) for path in tf.io.gfile.glob(os.path.join(data, "*"))}
    patterns = {}
    for split, prefixes in _TFRECORD_SPLITS.items():
        prefix = next((p for p in prefixes if any(n.startswith(p) for n in names)), None)
        if prefix:
            patterns[split] = f"{prefix}*"
    if len(patterns) < 2:
        patterns = {"single_split": _unsplit_pattern(data, names)}
    return tfx.proto.Input(
        splits=[
            tfx.proto.Input.Split(name=name, pattern=pattern) for name, pattern in patterns.items()
        ]
    )


def _unsplit_pattern(data: str, names: set[str]) -> str:
    # ImportExampleGen reads every file its pattern matches, so labels.txt must not match.
    if _LABELS_FILE not in names:
        return "*"
    others = sorted(names - {_LABELS_FILE})
    if not others or not all(fnmatch.fnmatch(name, _TFRECORD_GLOB) for name in others):
        raise ConfigError(
            f"data: {data} holds labels.txt next to files not named {_TFRECORD_GLOB} "
            f"({', '.join(others[:3]) or 'none'}); name the TFRecord files *.tfrecord (or "
            "train*/eval*), so labels.txt is not read as data."
        )
    return _TFRECORD_GLOB


def _example_gen(config: PipelineConfig) -> tfx.types.BaseNode:
    if config.data_format == "folder":
        return ImageFolderExampleGen(
            input_base=config.data_path, eval_fraction=config.eval_fraction
        )
    input_config = tfrecord_input_config(config.data_path)
    eval_buckets = round(config.eval_fraction * 100)
    output_config = (
        None
        if len(input_config.splits) > 1
        else tfx.proto.Output(
            split_config=tfx.proto.SplitConfig(
                splits=[
                    tfx.proto.SplitConfig.Split(name="train", hash_buckets=100 - eval_buckets),
                    tfx.proto.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
                ]
            )
        )
    )
    return tfx.components.ImportExampleGen(
        input_base=config.data_path, input_config=input_config, output_config=output_config
    )


def class_names(config: PipelineConfig) -> list[str] | None:
    """Class names known before the run: the config's, else the class folders or a TFRecord
    folder's labels.txt when this machine can read the data. At run time the Trainer falls
    back to the labels.txt that ImageFolderExampleGen writes."""
    if config.class_names or "://" in config.data_path:
        return config.class_names  # remote data the compiling machine may not reach
    if config.data_format == "folder":
        return discover_layout(config.data_path).classes
    labels = os.path.join(config.data_path, _LABELS_FILE)
    if tf.io.gfile.exists(labels):
        with tf.io.gfile.GFile(labels) as handle:
            return [line.strip() for line in handle if line.strip()]
    return None


def count_classes(config: PipelineConfig) -> int:
    """The number of classes, needed to compile per-class metrics; checks the data early."""
    names = class_names(config)
    found = len(names) if names else config.num_classes
    if found is None:
        raise ConfigError(
            "num_classes: unknown before the run (remote data, or TFRecords without "
            "labels.txt); set num_classes or class_names in the config."
        )
    if config.num_classes not in (None, found):
        raise ConfigError(
            f"num_classes: the config says {config.num_classes}, the data has {found} classes."
        )
    return found


def eval_config(config: PipelineConfig, num_classes: int) -> tfma.EvalConfig:
    """Accuracy gates the push: absolutely, and against the served baseline."""
    accuracy = tfma.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        # Thresholds apply to the overall slice; per-class slices are reported, not gated.
        per_slice_thresholds=[
            tfma.PerSliceMetricThreshold(
                slicing_specs=[tfma.SlicingSpec()],
                threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(
                        lower_bound={"value": config.min_accuracy}
                    ),
                    change_threshold=tfma.GenericChangeThreshold(
                        direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                        absolute={"value": -config.regression_epsilon},
                    ),
                ),
            )
        ],
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name="serving_examples",
                label_key=config.label_feature,
                prediction_key="probabilities",
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[config.label_feature])],
        # The model compiles one-hot metrics; the examples hold integer labels.
        options=tfma.Options(include_default_metrics={"value": False}),
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    accuracy,
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            ),
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="Precision"),
                    tfma.MetricConfig(class_name="Recall"),
                ],
                binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))}),
            ),
        ],
    )


def trainer_config(config: PipelineConfig) -> dict:
    """What run_fn needs beyond TFX's own arguments (see modules.trainer.TrainerSettings)."""
    return {
        "image_feature": config.image_feature,
        "image_size": config.image_size,
        "width_multiplier": config.width_multiplier,
        "dropout": config.dropout,
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
        "cache_decoded": config.cache_decoded,
        "materialized": config.materialize,
        "class_names": class_names(config),
        "num_classes": config.num_classes,
    }


def _beam_pipeline_args(beam_args: list[str]) -> list[str]:
    # None at all for the in-process DirectRunner: with any Beam args, TFX packages itself
    # as an sdist for remote workers, 1.3 s before every Beam component.
    if not beam_args:
        return []
    # Workers import tfx first: it stubs tfx_bsl.arrow.sql_util, which TFDV 1.16 imports and
    # tfx-bsl 1.21 lacks; otherwise StatisticsGen and Transform fail in worker processes
    # (multi_processing, Dataflow, Flink).
    return [*beam_args, "--beam_plugin=tfx"]


def create_pipeline(
    config: PipelineConfig, metadata_connection_config: Any | None = None
) -> tfx.dsl.Pipeline:
    """Ingestion -> validation -> transform -> training -> evaluation -> push.

    The local runner passes its SQLite MLMD connection; Kubeflow brings its own store.
    """
    num_classes = count_classes(config)

    # Brings the images into the pipeline as tf.Examples in train and eval splits.
    example_gen = _example_gen(config)

    # Computes statistics over the data for visualization and validation.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])

    # Imports the curated schema if there is one, else infers one; a schema inferred from the
    # same statistics it is checked against flags little.
    if config.schema_path:
        schema_gen = CuratedImportSchemaGen(schema_file=config.schema_path)
    else:
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
        )

    # Checks the eval split (and later spans) against the schema.
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )

    # Decodes, resizes and normalizes with statistics from one full pass over train.
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn="modules.transform.preprocessing_fn",
        custom_config={
            "image_feature": config.image_feature,
            "label_feature": config.label_feature,
            "image_size": config.image_size,
        },
        materialize=config.materialize,
        splits_config=tfx.proto.SplitsConfig(
            analyze=["train"], transform=["train", "eval"] if config.materialize else []
        ),
        # Statistics over raw image bytes and 150k-value tensors cost minutes, say little.
        disable_statistics=True,
    )

    # Trains AlexNet; without materialized data it applies the transform graph as it reads.
    trainer = tfx.components.Trainer(
        run_fn="modules.trainer.run_fn",
        examples=(
            transform.outputs["transformed_examples"]
            if config.materialize
            else example_gen.outputs["examples"]
        ),
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=config.epochs * config.steps_per_epoch),
        eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps),
        custom_config=trainer_config(config),
    )

    # The model now in the serving directory, as the baseline to beat.
    baseline_resolver = PushedModelResolver(
        candidate=trainer.outputs["model"],
        serving_dir=config.serving_path,
        model_name=config.model_name,
    )

    # Computes metrics on the eval split and blesses the candidate if it passes thresholds.
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline_resolver.outputs["model"],
        eval_config=eval_config(config, num_classes),
    )

    # Pushes a blessed model to <serving_dir>/<model_name>/<version>.
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=os.path.join(config.serving_path, config.model_name)
            )
        ),
        custom_executor_spec=executor_spec.ExecutorClassSpec(AtomicPushExecutor),
    )

    components = [
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        transform,
        trainer,
        baseline_resolver,
        evaluator,
        pusher,
    ]
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root_path,
        components=components,
        enable_cache=True,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=_beam_pipeline_args(config.beam_args),
    )
