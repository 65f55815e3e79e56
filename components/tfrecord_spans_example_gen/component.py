"""TFRecordSpansExampleGen: tf.Example TFRecords in span folders, a window of spans at once.

TFX's ImportExampleGen reads one span per run; TFX's rolling windows come from a resolver,
which open-source Kubeflow Pipelines cannot run. This ExampleGen reads the window itself.
"""

from __future__ import annotations

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import example_gen_input, spans
from components.tfrecord_spans_example_gen import executor
from contract.data import SPAN_PREFIX


class TFRecordSpansExampleGen(FileBasedExampleGen):
    """Reads DATA/span-<N>/ folders of tf.Example TFRecords, each with its labels.txt.

    As with TFX's {SPAN}, the driver resolves the newest span, which the Examples artifact
    records. The newest `window_spans` spans up to it (0: all) are read: train takes every
    span's train split, eval only the newest span's. In each span, files named train* and
    eval* (or test*) are those splits; otherwise `output_config` hash-splits the records.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    # Span and fingerprint through modules.storage, so a bucket works (example_gen_input.py).
    DRIVER_CLASS = example_gen_input.Driver

    def __init__(
        self, input_base: str, output_config: example_gen_pb2.Output, window_spans: int
    ) -> None:
        super().__init__(
            input_base=input_base,
            # The driver fingerprints the newest span's files, for caching.
            input_config=example_gen_pb2.Input(
                splits=[
                    example_gen_pb2.Input.Split(name="records", pattern=f"{SPAN_PREFIX}{{SPAN}}/*")
                ]
            ),
            output_config=output_config,
            custom_config=spans.window_config(window_spans),
        )
