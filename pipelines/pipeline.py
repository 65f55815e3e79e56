"""The AlexNet TFX pipeline, wired top to bottom. Both runners build it from one config."""

from __future__ import annotations

import os

import tensorflow as tf
from tfx import v1 as tfx

from components.image_folder_example_gen import ImageFolderExampleGen
from pipelines.config import PipelineConfig

_TFRECORD_SPLITS = {"train": ("train",), "eval": ("eval", "test")}


def tfrecord_input_config(data: str) -> tfx.proto.Input | None:
    """Uses train*/eval* (or test*) files as the splits when present, else None (hash split)."""
    names = {os.path.basename(path) for path in tf.io.gfile.glob(os.path.join(data, "*"))}
    patterns = {}
    for split, prefixes in _TFRECORD_SPLITS.items():
        prefix = next((p for p in prefixes if any(n.startswith(p) for n in names)), None)
        if prefix:
            patterns[split] = f"{prefix}*"
    if len(patterns) < 2:
        return None
    return tfx.proto.Input(
        splits=[
            tfx.proto.Input.Split(name=name, pattern=pattern) for name, pattern in patterns.items()
        ]
    )


def _example_gen(config: PipelineConfig) -> tfx.types.BaseNode:
    if config.data_format == "folder":
        return ImageFolderExampleGen(
            input_base=config.data_path, eval_fraction=config.eval_fraction
        )
    input_config = tfrecord_input_config(config.data_path)
    eval_buckets = round(config.eval_fraction * 100)
    output_config = (
        None
        if input_config
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


def create_pipeline(config: PipelineConfig) -> tfx.dsl.Pipeline:
    """Ingestion -> statistics -> schema -> validation."""
    # Brings the images into the pipeline as tf.Examples in train and eval splits.
    example_gen = _example_gen(config)

    # Computes statistics over the data for visualization and validation.
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])

    # Infers a schema from the statistics.
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )

    # Checks the eval split (and later spans) against the schema.
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )

    components = [example_gen, statistics_gen, schema_gen, example_validator]
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root_path,
        components=components,
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            config.metadata_path
        ),
        beam_pipeline_args=config.beam_args,
    )
