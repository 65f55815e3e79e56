"""`alexnet-tfx predict-batch`: scores every image of a folder with a pushed model, as a
Beam pipeline around `apache_beam.ml.inference.RunInference`.

    images or TFRecords -> read -> decode check (batches) -> RunInference(serving_default)
                                        \\-> undecodable: listed, not fatal  -> JSON lines

The model handler is Beam's TensorFlow one, loading the version as the model server does
(`serving.served_model.ServedModel`): its `serving_default` signature, class names and
TF Serving warm-up records. One JSON line per image: path, class name, score, top-k
probabilities, model version (and the true class where the data has one); an undecodable
file's line has `error` instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import TaggedOutput

from contract import prediction as contract_prediction
from contract.data import CLASS_NAME_KEY, IMAGE_KEY, LABEL_KEY, PATH_KEY, is_remote
from contract.model_files import CLASS_NAMES_FILE
from contract.prediction import Prediction
from contract.progress import PROGRESS_LOGGER, ScoringProgress
from modules.image_check import UndecodableImage, decoded_sizes
from pipelines.batch.inputs import BatchInput, ImageFolderInput, TFRecordInput
from serving import layout
from serving.served_model import ServedModel

BATCH_SIZE = 32  # images per model call
_REJECTED = "rejected"


class BatchJobError(ValueError):
    """The model or the output cannot be used; the message names it."""


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    path: str  # the SavedModel folder
    version: int | None  # None: a model outside a serving directory


def choose_model(model: str | None, serving_dir: str, model_name: str) -> ModelChoice:
    """--model (a SavedModel folder, or a folder of numbered versions), else the served
    version; fails, naming the folder, when there is no SavedModel with class names."""
    if model is None:
        found = layout.latest_version_dir(serving_dir, model_name)
        if found is None:
            raise BatchJobError(
                f"--serving-dir: no pushed version under "
                f"{layout.model_base(serving_dir, model_name)}; run the pipeline to push one, "
                "or pass --model PATH."
            )
        choice = ModelChoice(found[1], found[0])
    elif tf.io.gfile.exists(os.path.join(model, "saved_model.pb")):
        name = os.path.basename(os.path.normpath(model))
        choice = ModelChoice(model, int(name) if name.isdigit() else None)
    elif versions := layout.complete_versions(model):
        choice = ModelChoice(os.path.join(model, str(versions[-1])), versions[-1])
    else:
        raise BatchJobError(
            f"--model: {model} holds no SavedModel (saved_model.pb); point it at a pushed "
            "version (e.g. serving_model/alexnet/3) or at a folder of numbered versions."
        )
    if not tf.io.gfile.exists(os.path.join(choice.path, CLASS_NAMES_FILE)):
        raise BatchJobError(
            f"--model: {choice.path} has no {CLASS_NAMES_FILE}; it was not exported by this "
            "pipeline's Trainer. Use a version the pipeline pushed."
        )
    return choice


def check_output(out: str) -> None:
    """Fails now, naming the path, if the JSON lines cannot be written there."""
    if is_remote(out):
        return
    parent = os.path.dirname(os.path.abspath(out))
    if os.path.isdir(out):
        raise BatchJobError(f"--out: {out} is a folder; give a file path, e.g. {out}/scores.jsonl.")
    if not os.path.isdir(parent):
        raise BatchJobError(f"--out: the folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK) or (os.path.exists(out) and not os.access(out, os.W_OK)):
        raise BatchJobError(f"--out: {out} cannot be written (permission denied).")


class ServedModelHandler(TFModelHandlerTensor):
    """Beam's TensorFlow model handler for a pushed version: it loads the SavedModel as the
    model server does (TFModelHandlerTensor itself loads Keras models) and calls its
    serving_default signature on batches of encoded images."""

    def __init__(self, choice: ModelChoice, batch_size: int = BATCH_SIZE) -> None:
        super().__init__(
            choice.path, inference_fn=_predict, min_batch_size=1, max_batch_size=batch_size
        )
        self._version = choice.version

    def load_model(self) -> ServedModel:
        model = ServedModel(self._version or 0, self._model_uri)
        model.warm_up()
        return model

    def get_num_bytes(self, batch: Sequence[bytes]) -> int:
        return sum(len(image) for image in batch)


def _predict(
    model: ServedModel,
    batch: Sequence[bytes],
    inference_args: dict[str, Any] | None = None,
    model_id: str | None = None,
) -> Iterable[PredictionResult]:
    predictions = model.predict(list(batch))
    return [
        PredictionResult(image, prediction, model_id)
        for image, prediction in zip(batch, predictions, strict=True)
    ]


@dataclasses.dataclass(frozen=True)
class Image:
    path: str  # relative to the data folder; for a record, <file>#<index> unless it has one
    label: str | None  # the true class, where the data says
    data: bytes


def _read_file(item: tuple[str, str | None], root: str) -> Image:
    path, label = item
    with open(os.path.join(root, path), "rb") as handle:
        return Image(path, label, handle.read())


def _read_records(path: str, root: str, class_names: list[str] | None) -> Iterator[Image]:
    compression = "GZIP" if path.endswith(".gz") else ""
    relative = os.path.relpath(path, root)
    for index, record in enumerate(tf.data.TFRecordDataset(path, compression_type=compression)):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        name = features[PATH_KEY].bytes_list.value if PATH_KEY in features else []
        label = None
        if CLASS_NAME_KEY in features:
            label = features[CLASS_NAME_KEY].bytes_list.value[0].decode()
        elif class_names and LABEL_KEY in features:
            label = class_names[features[LABEL_KEY].int64_list.value[0]]
        image = features[IMAGE_KEY].bytes_list.value if IMAGE_KEY in features else [b""]
        yield Image(name[0].decode() if name else f"{relative}#{index}", label, image[0])


def _check(batch: list[Image]) -> Iterator[tuple[tuple[str, str | None], bytes] | TaggedOutput]:
    """Decodes each image as the model will; an undecodable one goes aside, with why."""
    for image, size in zip(batch, decoded_sizes([image.data for image in batch]), strict=True):
        if isinstance(size, UndecodableImage):
            yield TaggedOutput(_REJECTED, (image.path, str(size)))
        else:
            yield (image.path, image.label), image.data


def _line(
    keyed: tuple[tuple[str, str | None], PredictionResult], version: int | None, top_k: int
) -> str:
    (path, label), result = keyed
    prediction: Prediction = result.inference
    record = {
        "path": path,
        **contract_prediction.record(prediction, digits=6),
        "top_k": [
            {"class_name": name, "probability": round(probability, 6)}
            for name, probability in prediction.top_k(top_k)
        ],
        "model_version": version,
    }
    if label is not None:
        record["label"] = label
    return json.dumps(record)


def _reject_line(rejected: tuple[str, str], version: int | None) -> str:
    path, reason = rejected
    return json.dumps({"path": path, "error": reason, "model_version": version})


class CountScored(beam.DoFn):
    """Passes lines through, writing how many this worker has seen to a file of its own in
    `progress_dir` at most once a second, for the console (`watch_progress`)."""

    def __init__(self, progress_dir: str) -> None:
        self.progress_dir = progress_dir

    def setup(self) -> None:
        self._path = os.path.join(self.progress_dir, uuid.uuid4().hex)
        self._count = 0
        self._written = 0.0

    def process(self, line: str) -> Iterator[str]:
        self._count += 1
        if time.monotonic() - self._written >= 1.0:
            self._write()
        yield line

    def finish_bundle(self) -> None:
        self._write()

    def _write(self) -> None:
        with open(self._path + ".tmp", "w") as handle:
            handle.write(str(self._count))
        os.replace(self._path + ".tmp", self._path)
        self._written = time.monotonic()


def scored_so_far(progress_dir: str) -> int:
    total = 0
    for name in os.listdir(progress_dir):
        if not name.endswith(".tmp"):
            with open(os.path.join(progress_dir, name)) as handle:
                total += int(handle.read() or 0)
    return total


def _images(pipeline: beam.Pipeline, found: BatchInput) -> beam.PCollection:
    if isinstance(found, ImageFolderInput):
        return (
            pipeline
            | "ListImages" >> beam.Create(found.files, reshuffle=True)
            | "ReadImages" >> beam.Map(_read_file, found.root)
        )
    assert isinstance(found, TFRecordInput)
    return (
        pipeline
        | "ListRecordFiles" >> beam.Create(found.files, reshuffle=True)
        | "ReadRecords" >> beam.FlatMap(_read_records, found.root, found.class_names)
    )


def build(
    pipeline: beam.Pipeline,
    found: BatchInput,
    choice: ModelChoice,
    out: str,
    top_k: int,
    progress_dir: str,
) -> None:
    """The batch job's transforms on `pipeline`."""
    checked = (
        _images(pipeline, found)
        | "Batch" >> beam.BatchElements(min_batch_size=8, max_batch_size=64)
        | "CheckDecodes" >> beam.FlatMap(_check).with_outputs(_REJECTED, main="images")
    )
    scored = (
        checked.images
        | "RunInference" >> RunInference(KeyedModelHandler(ServedModelHandler(choice)))
        | "Format" >> beam.Map(_line, choice.version, top_k)
    )
    rejected = checked[_REJECTED] | "FormatRejects" >> beam.Map(_reject_line, choice.version)
    (
        (scored, rejected)
        | beam.Flatten()
        | "Count" >> beam.ParDo(CountScored(progress_dir))
        | "Write" >> beam.io.WriteToText(out, shard_name_template="", num_shards=1)
    )


@contextlib.contextmanager
def progress_reports(progress_dir: str, total: int | None) -> Iterator[None]:
    """Logs a ScoringProgress every second from a thread while the job runs, and one at
    its end; the run console renders them."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    started = time.monotonic()
    stop = threading.Event()

    def report(finished: bool = False) -> None:
        done = scored_so_far(progress_dir)
        rate = done / max(time.monotonic() - started, 1e-9)
        progress = ScoringProgress(done, total, rate, finished)
        logger.info("scored %d images", done, extra={"progress": progress})

    def watch() -> None:
        while not stop.wait(1.0):
            report()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    report(finished=True)


def run_job(
    found: BatchInput, choice: ModelChoice, out: str, top_k: int, beam_args: list[str]
) -> None:
    """Runs the batch job to completion, reporting progress; --beam-arg options pick the
    runner and its workers."""
    with tempfile.TemporaryDirectory(prefix="predict-batch-") as progress_dir:
        total = len(found.files) if isinstance(found, ImageFolderInput) else None
        with (
            progress_reports(progress_dir, total),
            beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline,
        ):
            build(pipeline, found, choice, out, top_k, progress_dir)
