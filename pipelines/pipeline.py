"""The AlexNet TFX pipeline: its stages in order. Both runners build it from one config.

    ingest -> validate -> served model -> drift -> [stop on anomalies] -> transform
           -> [tune] -> train -> evaluate -> [bulk inference] -> check serving -> push

A stage is a function in `pipelines/stages.py`; adding one is one line below. An optional
stage names the config flag that switches it on, as penguin's `enable_*` arguments do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tfx import v1 as tfx

from pipelines import stages
from pipelines.config import PipelineConfig
from pipelines.data_facts import DataFacts
from pipelines.wiring import Stage, Wiring


@dataclasses.dataclass(frozen=True)
class StageEntry:
    build: Stage
    # A PipelineConfig field that switches the stage on when set (a flag, or a path); None:
    # always on.
    enabled_by: str | None = None

    def enabled(self, config: PipelineConfig) -> bool:
        return self.enabled_by is None or bool(getattr(config, self.enabled_by))


STAGES: tuple[StageEntry, ...] = (
    StageEntry(stages.ingest),  # images or TFRecords (a window of spans) -> tf.Examples
    StageEntry(stages.validate),  # statistics, schema, anomalies
    StageEntry(stages.served_model),  # the served model and its training statistics
    StageEntry(stages.check_drift),  # new data against the served model's
    StageEntry(stages.stop_on_anomalies, enabled_by="fail_on_anomalies"),
    StageEntry(stages.transform),  # decode, resize, normalize (full-pass statistics)
    StageEntry(stages.tune, enabled_by="tune"),  # KerasTuner trials; the best go to train
    StageEntry(stages.train),  # AlexNet, warm-started from the served model when it fits
    StageEntry(stages.evaluate),  # TFMA thresholds against the served model, blessing
    StageEntry(stages.bulk_infer, enabled_by="bulk_infer_data"),  # the blessed model scores it
    StageEntry(stages.check_serving),  # the candidate in the model server, warm-up records
    StageEntry(stages.push),  # next integer version in the serving directory
)


def wire(config: PipelineConfig, data: DataFacts) -> Wiring:
    """Every enabled stage, in order, on one set of channels."""
    wiring = Wiring()
    for entry in STAGES:
        if entry.enabled(config):
            entry.build(wiring, config, data)
    return wiring


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
    config: PipelineConfig, wiring: Wiring, metadata_connection_config: Any | None = None
) -> tfx.dsl.Pipeline:
    """The wired stages as a TFX pipeline.

    The local runner passes its SQLite MLMD connection; Kubeflow brings its own store.
    """
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root_path,
        components=wiring.components,
        enable_cache=True,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=_beam_pipeline_args(config.beam_args),
    )
