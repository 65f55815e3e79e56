"""Request parsing and response shaping for the V1 (TF Serving) and V2 (Open Inference) protocols.

Every malformed request raises KServe's `InvalidInput`, which its REST server answers with
400 and {"error": message}; each message names the field at fault and what to send instead.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any, NamedTuple

from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from contract import prediction
from contract.images import IMAGE_FORMATS
from contract.prediction import IMAGES_DATATYPE, IMAGES_INPUT, Prediction
from modules.image_check import UndecodableImage, decoded_size
from modules.image_header import header_pixels, limit_problem

V1_EXAMPLE = '{"instances": [{"b64": "<base64 JPEG or PNG>"}]}'


def v1_images(payload: Any, max_instances: int) -> list[bytes]:
    """The encoded images of a V1 body: {"instances": [{"b64": ...}, ...]}."""
    if not isinstance(payload, dict):
        raise InvalidInput(f"request body: expected a JSON object like {V1_EXAMPLE}")
    if "instances" not in payload:
        raise InvalidInput(f"instances: missing; send {V1_EXAMPLE}")
    instances = payload["instances"]
    _check_count("instances", instances, max_instances)
    return [
        _b64(_v1_b64_field(instance, index), f"instances[{index}]")
        for index, instance in enumerate(instances)
    ]


def v2_images(request: InferRequest, max_instances: int) -> list[bytes]:
    """The encoded images of a V2 request: one BYTES input, base64 strings in JSON (REST) or
    raw bytes (gRPC)."""
    if len(request.inputs) != 1:
        raise InvalidInput(
            f"inputs: expected exactly one {IMAGES_DATATYPE} input named {IMAGES_INPUT!r}, "
            f"got {len(request.inputs)}"
        )
    tensor = request.inputs[0]
    field = f"inputs[0] ({tensor.name})"
    if tensor.name != IMAGES_INPUT:
        raise InvalidInput(f"{field}: the model's input is named {IMAGES_INPUT!r}; rename it")
    if tensor.datatype != IMAGES_DATATYPE:
        raise InvalidInput(
            f"{field}: datatype must be {IMAGES_DATATYPE} (encoded images), not {tensor.datatype}"
        )
    data = tensor.data
    _check_count(f"{field}.data", data, max_instances)
    # The protocol's shape is the data's: one dimension, one entry per image.
    if list(tensor.shape) != [len(data)]:
        raise InvalidInput(
            f"{field}.shape: {list(tensor.shape)} does not match its {len(data)} data "
            f"entries; send [{len(data)}]"
        )
    images = []
    for index, value in enumerate(data):
        where = f"{field}.data[{index}]"
        if isinstance(value, bytes):  # gRPC's bytes_contents carry the raw file
            images.append(value)
        elif isinstance(value, str):
            images.append(_b64(value, where))
        else:
            raise InvalidInput(f"{where}: expected a base64 string, got {type(value).__name__}")
    return images


class CheckedImage(NamedTuple):
    data: bytes
    pixels: int  # decoded height x width: the work the model's decoder does for it


def check_images(
    images: list[bytes], field: str, max_pixels: int, max_request_pixels: int
) -> list[CheckedImage]:
    """Rejects any image the model's own decoder would fail on, naming its position, and a
    request whose images' headers add up to more than `max_request_pixels`; both before
    the work of decoding."""
    declared = [header_pixels(data) for data in images]
    total = sum(pixels or 0 for pixels in declared)
    if total > max_request_pixels:
        raise InvalidInput(
            f"{field}: {total:,} pixels across the request exceed the limit of "
            f"{max_request_pixels:,}; send fewer or smaller images per request"
        )
    checked = []
    for index, (data, pixels) in enumerate(zip(images, declared, strict=True)):
        try:
            too_large = limit_problem(pixels, max_pixels)
            if too_large:
                raise UndecodableImage(too_large)
            height, width = decoded_size(data)
        except UndecodableImage as error:
            raise InvalidInput(
                f"{field}[{index}]: {error}; send {', '.join(IMAGE_FORMATS)} bytes"
            ) from None
        checked.append(CheckedImage(data, height * width))
    return checked


def v1_response(predictions: list[Prediction]) -> dict:
    return prediction.v1_body(predictions)


def v2_response(
    model_name: str, request_id: str | None, predictions: list[Prediction]
) -> InferResponse:
    return InferResponse(
        response_id=request_id or str(uuid.uuid4()),
        model_name=model_name,
        model_version=str(predictions[0].model_version),
        infer_outputs=[
            InferOutput(tensor["name"], tensor["shape"], tensor["datatype"], tensor["data"])
            for tensor in prediction.v2_tensors(predictions)
        ],
    )


def _check_count(field: str, values: Any, max_instances: int) -> None:
    if not isinstance(values, list):
        raise InvalidInput(f"{field}: must be a list of images")
    if not values:
        raise InvalidInput(f"{field}: empty; send at least one image")
    if len(values) > max_instances:
        raise InvalidInput(
            f"{field}: {len(values)} images exceed the limit of {max_instances} per "
            "request; split them over several requests"
        )


def _v1_b64_field(instance: Any, index: int) -> Any:
    # TF Serving's row format: {"b64": ...}, or {"images": {"b64": ...}} naming the input.
    if isinstance(instance, dict) and IMAGES_INPUT in instance:
        instance = instance[IMAGES_INPUT]
    if not isinstance(instance, dict) or "b64" not in instance:
        raise InvalidInput(f'instances[{index}]: expected {{"b64": "<base64 JPEG or PNG>"}}')
    return instance["b64"]


def _b64(value: Any, field: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: b64 must be a string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidInput(f"{field}: not valid base64 ({error})") from None
