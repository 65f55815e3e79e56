"""The prediction contract: what the exported model answers, what both protocols carry, and
what the client reads back.

The served model, the V1 and V2 payloads, the server's metadata, the request log and the
client all use these declarations. A new output is a Field in OUTPUTS and its attribute on
Prediction, both here, and its tensor in the export (modules/export.py). A field added after
models were pushed is `optional`: those models' answers read it as None (JSON null), and V2
responses leave it out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

# The exported SavedModel's signatures and their inputs.
IMAGES_SIGNATURE = "serving_default"  # TF Serving's default: encoded image bytes
IMAGES_INPUT = "images"
IMAGES_DATATYPE = "BYTES"  # in the V2 protocol: base64 strings over REST, raw bytes over gRPC
EXAMPLES_SIGNATURE = "serving_examples"  # serialized tf.Examples, for TFMA and batch jobs
EXAMPLES_INPUT = "examples"
# Serialized tf.Examples too, for TFX's BulkInferrer: tfx_bsl 1.21's RunInference cannot log
# a string output (_PredictModelHandler._post_process reads .dtype of each example's value,
# which a Python bytes has not), so this one answers every output but class_name.
BULK_SIGNATURE = "bulk_examples"


@dataclasses.dataclass(frozen=True)
class Field:
    """One output of both signatures, and the V2 tensor (and V1 key) that carries it."""

    name: str
    datatype: str  # in the V2 (Open Inference) protocol
    per_class: bool = False  # shape [batch, classes] rather than [batch]
    optional: bool = False  # exports from before the field lack it
    # In the one-line records of a prediction: batch job lines, the request log, `predict`.
    in_records: bool = True

    def read(self, value: Any) -> Any:
        """One image's value as Python: str, int, float, or a list of floats per class."""
        if value is None:
            return None
        convert = _PYTHON[self.datatype]
        return [convert(item) for item in value] if self.per_class else convert(value)


CLASS_NAME = Field("class_name", "BYTES")
CLASS_ID = Field("class_id", "INT64", in_records=False)
SCORE = Field("score", "FP32")  # the probability of class_id
# Calibrated: softmax(logits / temperature), the temperature fitted on held-out images.
PROBABILITIES = Field("probabilities", "FP32", per_class=True, in_records=False)
# How unlike the training images an image is (a distance; higher is stranger), and whether it
# is past the threshold set on held-out images. Models pushed before them lack both.
OOD_SCORE = Field("ood_score", "FP32", optional=True)
UNKNOWN = Field("unknown", "BOOL", optional=True)
OUTPUTS = (CLASS_NAME, CLASS_ID, SCORE, PROBABILITIES, OOD_SCORE, UNKNOWN)
BULK_OUTPUTS = (CLASS_ID, SCORE, PROBABILITIES, OOD_SCORE, UNKNOWN)  # of BULK_SIGNATURE
OUTPUTS_BY_NAME = {field.name: field for field in OUTPUTS}
# Only EXAMPLES_SIGNATURE answers it: the Evaluator's calibration error before calibration.
UNCALIBRATED_PROBABILITIES = "uncalibrated_probabilities"
# What `serve --answer-unknown` answers for an image flagged `unknown`.
UNKNOWN_CLASS_NAME = "unknown"
UNKNOWN_CLASS_ID = -1

# Once per response rather than per image: the served version and its class names.
MODEL_VERSION = "model_version"
CLASS_NAMES = Field("class_names", "BYTES")


@dataclasses.dataclass(frozen=True)
class Prediction:
    class_name: str
    class_id: int
    score: float
    probabilities: list[float]
    ood_score: float | None
    unknown: bool | None
    model_version: int
    class_names: tuple[str, ...]  # of the version that answered; shared, not copied

    def or_unknown(self) -> Prediction:
        """This answer, or UNKNOWN_CLASS_NAME (class id -1) for an image the model flags as
        unlike its training images; the score and probabilities stay the model's."""
        if not self.unknown:
            return self
        return dataclasses.replace(self, class_name=UNKNOWN_CLASS_NAME, class_id=UNKNOWN_CLASS_ID)

    def top_k(self, k: int) -> list[tuple[str, float]]:
        ranked = sorted(enumerate(self.probabilities), key=lambda pair: -pair[1])[:k]
        return [(self.class_names[index], score) for index, score in ranked]


def from_columns(
    columns: Mapping[str, Sequence[Any]], model_version: int, class_names: Sequence[str]
) -> list[Prediction]:
    """Predictions from one column per output field (rows of probabilities per image); an
    optional field without a column is None."""
    missing = [field.name for field in OUTPUTS if field.name not in columns and not field.optional]
    if missing:
        raise ValueError(f"the model's answer lacks {', '.join(missing)}")
    names = tuple(class_names)
    count = len(columns[OUTPUTS[0].name])
    return [
        Prediction(
            **{field.name: field.read(_cell(columns, field, index)) for field in OUTPUTS},
            model_version=model_version,
            class_names=names,
        )
        for index in range(count)
    ]


def _cell(columns: Mapping[str, Sequence[Any]], field: Field, index: int) -> Any:
    column = columns.get(field.name)
    return None if column is None else column[index]


def record(prediction: Prediction, digits: int | None = None) -> dict[str, Any]:
    """The fields of a prediction's one-line records ({class_name, score, ...}), floats
    rounded to `digits` if given."""
    values = {field.name: getattr(prediction, field.name) for field in OUTPUTS if field.in_records}
    if digits is None:
        return values
    return {
        name: round(value, digits) if isinstance(value, float) else value
        for name, value in values.items()
    }


def _columns(predictions: Sequence[Prediction]) -> dict[str, list[Any]]:
    """A column per field the predictions carry (an optional one of an older model: none)."""
    columns = {
        field.name: [getattr(prediction, field.name) for prediction in predictions]
        for field in OUTPUTS
    }
    return {name: values for name, values in columns.items() if any(v is not None for v in values)}


def v1_body(predictions: Sequence[Prediction]) -> dict[str, Any]:
    """{"predictions": [{field: value}], "model_version": "N", "class_names": [...]}."""
    return {
        "predictions": [
            {field.name: getattr(prediction, field.name) for field in OUTPUTS}
            for prediction in predictions
        ],
        MODEL_VERSION: str(predictions[0].model_version),
        CLASS_NAMES.name: list(predictions[0].class_names),
    }


def from_v1(body: Mapping[str, Any]) -> list[Prediction]:
    rows = body["predictions"]
    columns = {field.name: [row.get(field.name) for row in rows] for field in OUTPUTS}
    return from_columns(columns, int(body[MODEL_VERSION]), body[CLASS_NAMES.name])


def v2_tensors(predictions: Sequence[Prediction]) -> list[dict[str, Any]]:
    """The V2 output tensors ({name, shape, datatype, data}), class names last."""
    class_names = list(predictions[0].class_names)
    tensors = []
    for field, values in _columns(predictions).items():
        shape = [len(predictions)]
        if OUTPUTS_BY_NAME[field].per_class:
            shape.append(len(class_names))
            values = [value for row in values for value in row]
        tensors.append(_tensor(OUTPUTS_BY_NAME[field], shape, values))
    return [*tensors, _tensor(CLASS_NAMES, [len(class_names)], class_names)]


def _tensor(field: Field, shape: list[int], data: list[Any]) -> dict[str, Any]:
    return {"name": field.name, "shape": shape, "datatype": field.datatype, "data": data}


def v2_input_metadata() -> list[dict[str, Any]]:
    return [{"name": IMAGES_INPUT, "datatype": IMAGES_DATATYPE, "shape": [-1]}]


def v2_output_metadata(num_classes: int) -> list[dict[str, Any]]:
    """The outputs as V2 model metadata lists them; -1 marks a size only a request knows."""
    return [
        {
            "name": field.name,
            "datatype": field.datatype,
            "shape": [-1, num_classes] if field.per_class else [-1],
        }
        for field in OUTPUTS
    ] + [{"name": CLASS_NAMES.name, "datatype": CLASS_NAMES.datatype, "shape": [num_classes]}]


def from_v2(body: Mapping[str, Any]) -> list[Prediction]:
    """Predictions from a V2 REST response body."""
    tensors = {tensor["name"]: tensor for tensor in body["outputs"]}
    columns = {}
    for field in OUTPUTS:
        if field.name not in tensors:
            continue  # from_columns names a missing field that is not optional
        data = tensors[field.name]["data"]
        if field.per_class:
            width = tensors[field.name]["shape"][1]
            data = [data[start : start + width] for start in range(0, len(data), width)]
        columns[field.name] = data
    return from_columns(columns, int(body[MODEL_VERSION]), tensors[CLASS_NAMES.name]["data"])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_PYTHON = {"BYTES": _text, "INT64": int, "FP32": float, "BOOL": bool}
