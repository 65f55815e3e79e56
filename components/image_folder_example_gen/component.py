"""ImageFolderExampleGen: a FileBasedExampleGen for class-folder image datasets."""

from __future__ import annotations

from typing import Any

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components import example_gen_input, spans
from components.image_folder_example_gen import executor
from contract.data import SPAN_PREFIX


class ImageFolderExampleGen(FileBasedExampleGen):
    """Ingests root/<class>/<image> (or root/{train,eval}/<class>/<image>) as tf.Examples.

    Writes `train` and `eval` splits of examples with the features of `contract.data`:
    `image` (encoded bytes), `label` (index in the sorted class names), `class_name`, `path`
    (relative to the root), `height` and `width`. The artifact also holds `labels.txt` (the
    class names in label order) and `rejects.jsonl` (every file that was not ingested, with
    the reason). `output_config` gives the hash split of a folder without split folders.

    With `window_spans` (0: every span) the data is in span-<N> folders. As with TFX's
    {SPAN}, the driver resolves the newest span, which the Examples artifact records; the
    executor reads the newest `window_spans` spans up to it and writes their spans to
    `spans.json`.

    With `labelled=False` (images to score, e.g. by the BulkInferrer) every image under the
    root is an example, in class folders or not, and no example has a label or class name.
    """

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)
    # Span and fingerprint through modules.storage, so a bucket works (example_gen_input.py).
    DRIVER_CLASS = example_gen_input.Driver

    def __init__(
        self,
        input_base: str,
        output_config: example_gen_pb2.Output,
        window_spans: int | None = None,
        labelled: bool = True,
    ) -> None:
        # The driver fingerprints the files this pattern matches, for caching.
        pattern = "*/*" if window_spans is None else f"{SPAN_PREFIX}{{SPAN}}/*/*"
        options: dict[str, Any] = {}
        if window_spans is not None:
            options[spans.WINDOW_SPANS_KEY] = window_spans
        if not labelled:
            pattern = "*"
            options[executor.UNLABELLED_KEY] = True
        super().__init__(
            input_base=input_base,
            input_config=example_gen_pb2.Input(
                splits=[example_gen_pb2.Input.Split(name="images", pattern=pattern)]
            ),
            output_config=output_config,
            custom_config=spans.options_config(options) if options else None,
        )
