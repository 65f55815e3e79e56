"""Asks a running model server for predictions on image files, over V1 or V2 REST."""

from __future__ import annotations

import base64

import httpx

from contract import prediction
from contract.prediction import IMAGES_DATATYPE, IMAGES_INPUT, Prediction
from modules.image_check import UndecodableImage, decoded_size


def read_images(paths: list[str]) -> list[bytes]:
    """The files' bytes; a file the model could not decode is named in a ValueError."""
    images = []
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            decoded_size(data)
        except UndecodableImage as error:
            raise ValueError(f"{path}: {error}; pass JPEG, PNG, BMP or GIF files") from None
        images.append(data)
    return images


def predict_remote(
    paths: list[str], url: str, model_name: str, protocol: str = "v1", timeout: float = 60
) -> list[Prediction]:
    encoded = [base64.b64encode(image).decode("ascii") for image in read_images(paths)]
    base = url.rstrip("/")
    if protocol == "v1":
        endpoint = f"{base}/v1/models/{model_name}:predict"
        body = {"instances": [{"b64": text} for text in encoded]}
    else:
        endpoint = f"{base}/v2/models/{model_name}/infer"
        tensor = {
            "name": IMAGES_INPUT,
            "shape": [len(encoded)],
            "datatype": IMAGES_DATATYPE,
            "data": encoded,
        }
        body = {"inputs": [tensor]}
    try:
        response = httpx.post(endpoint, json=body, timeout=timeout)
    except httpx.TransportError as error:
        raise ConnectionError(
            f"cannot reach the model server at {url} ({type(error).__name__}: {error}); "
            "is `alexnet-tfx serve` running there?"
        ) from None
    if not response.is_success:
        raise ValueError(f"{endpoint} answered {response.status_code}: {_error_text(response)}")
    if protocol == "v1":
        return prediction.from_v1(response.json())
    return prediction.from_v2(response.json())


def _error_text(response: httpx.Response) -> str:
    try:
        return response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return response.text[:500]
