"""Checks a V2 request in the binary tensor extension before KServe decodes it.

Triton's clients send tensors this way by default (`InferInput.set_data_from_numpy`,
binary_data=True): a JSON header of `inference-header-content-length` bytes, then each
input's raw bytes, and for BYTES each element as a 4-byte little-endian length and its bytes
(triton-inference-server/server, docs/protocol/extension_binary_data.md). KServe decodes it
in `InferRequest.from_bytes` and `InferInput.as_numpy` (kserve/protocol/infer_type.py), where
a missing key, a short buffer, a shape that does not fit its elements or a BYTES element that
is not UTF-8 (it is turned into a str) raise errors it answers with 500. Those cases are found
here first, and named: images go as base64 strings, as in JSON.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any


class BadBinaryRequest(ValueError):
    """The message names the field at fault."""


def check(body: bytes, header_length: bytes) -> None:
    """Raises `BadBinaryRequest` unless KServe can decode `body` without an error."""
    name = "inference-header-content-length"
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise BadBinaryRequest(
            f"{name}: must be the length of the JSON header, 1 to {len(body)} bytes"
        )
    length = int(header_length)
    try:
        header = json.loads(body[:length])
    except (ValueError, UnicodeDecodeError):
        raise BadBinaryRequest(f"{name}: the first {length} bytes are not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise BadBinaryRequest("inputs: the JSON header must hold a list of inputs")
    offset = length
    for index, tensor in enumerate(header["inputs"]):
        offset = _check_input(f"inputs[{index}]", tensor, body, offset)
    if offset != len(body):
        raise BadBinaryRequest(
            f"binary data: {len(body) - offset} bytes follow the inputs' binary_data_size; "
            "send exactly the declared bytes"
        )
    outputs = header.get("outputs")
    if outputs is not None and not (
        isinstance(outputs, list)
        and all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs)
    ):
        raise BadBinaryRequest('outputs: must be a list of {"name": ...}')


def _check_input(field: str, tensor: Any, body: bytes, offset: int) -> int:
    if not isinstance(tensor, dict):
        raise BadBinaryRequest(f"{field}: must be an object with name, shape and datatype")
    for key, kind in (("name", str), ("datatype", str), ("shape", list)):
        if not isinstance(tensor.get(key), kind):
            raise BadBinaryRequest(f"{field}.{key}: missing or not a {kind.__name__}")
    shape = tensor["shape"]
    if not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape
    ):
        raise BadBinaryRequest(f"{field}.shape: must be non-negative whole numbers")
    if "data" in tensor:
        return offset
    parameters = tensor.get("parameters")
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadBinaryRequest(f"{field}.parameters.binary_data_size: missing or not a size")
    if offset + size > len(body):
        raise BadBinaryRequest(
            f"{field}.parameters.binary_data_size: {size} bytes declared, {len(body) - offset} sent"
        )
    if tensor["datatype"] != "BYTES":
        raise BadBinaryRequest(f"{field}.datatype: binary data is taken for BYTES inputs only")
    elements = _count_elements(field, body[offset : offset + size])
    if elements != math.prod(shape):
        raise BadBinaryRequest(f"{field}.shape: {shape} does not match its {elements} elements")
    return offset + size


def _count_elements(field: str, data: bytes) -> int:
    count, position = 0, 0
    while position < len(data):
        if position + 4 > len(data):
            raise BadBinaryRequest(f"{field}: binary data ends inside an element's length")
        (length,) = struct.unpack_from("<I", data, position)
        position += 4
        if position + length > len(data):
            raise BadBinaryRequest(f"{field}: an element's length runs past its binary data")
        try:
            data[position : position + length].decode()
        except UnicodeDecodeError:
            # KServe turns each element into a str (`InferRequest.from_bytes`).
            raise BadBinaryRequest(
                f"{field}: element {count} is not UTF-8 text; send each image as a base64 "
                "string, in binary form or in JSON"
            ) from None
        position += length
        count += 1
    return count
