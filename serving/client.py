"""Asks a running model server for predictions on image files, over V1 or V2 REST.

A light client: it imports neither TensorFlow nor TFX, so a prediction takes as long as the
request. Files are checked with Pillow before they are sent; the server decodes them with
the model's own decoder and answers 400 for anything that still fails.
"""

from __future__ import annotations

import base64
import io
import warnings

import httpx
from PIL import Image, UnidentifiedImageError

from contract import prediction
from contract.images import IMAGE_FORMATS
from contract.prediction import IMAGES_DATATYPE, IMAGES_INPUT, Prediction
from modules.image_header import pixels_problem


def _problem(data: bytes) -> str | None:
    """Why the bytes are not an image the model reads, or None."""
    too_large = pixels_problem(data)
    if too_large:
        return too_large
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                found = image.format
                image.verify()
    except UnidentifiedImageError:
        return "unknown image format"
    # Pillow's parsers raise any of these on a damaged or hostile file (IndexError: a PNG
    # without image data).
    except (OSError, SyntaxError, ValueError, IndexError, EOFError) as error:
        return str(error) or type(error).__name__
    if found not in IMAGE_FORMATS:
        return f"{found} images are not accepted"
    return None


def read_images(paths: list[str]) -> list[bytes]:
    """The files' bytes; a file the model could not read is named in a ValueError."""
    images = []
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        problem = _problem(data)
        if problem:
            raise ValueError(
                f"{path}: cannot be decoded: {problem}; pass {', '.join(IMAGE_FORMATS)} files"
            )
        images.append(data)
    return images


def predict_remote(
    paths: list[str], url: str, model_name: str, protocol: str = "v1", timeout: float = 60
) -> list[Prediction]:
    with httpx.Client(timeout=timeout) as client:
        return predict_images(client, read_images(paths), url, model_name, protocol)


def request_body(images: list[bytes], protocol: str) -> dict:
    """A V1 (`{"instances": [{"b64": ...}]}`) or V2 (one BYTES tensor) request body."""
    encoded = [base64.b64encode(image).decode("ascii") for image in images]
    if protocol == "v1":
        return {"instances": [{"b64": text} for text in encoded]}
    tensor = {
        "name": IMAGES_INPUT,
        "shape": [len(encoded)],
        "datatype": IMAGES_DATATYPE,
        "data": encoded,
    }
    return {"inputs": [tensor]}


def endpoint(url: str, model_name: str, protocol: str) -> str:
    base = url.rstrip("/")
    if protocol == "v1":
        return f"{base}/v1/models/{model_name}:predict"
    return f"{base}/v2/models/{model_name}/infer"


def predict_images(
    client: httpx.Client, images: list[bytes], url: str, model_name: str, protocol: str = "v1"
) -> list[Prediction]:
    """Predictions for encoded images from the server at `url`, over V1 or V2 REST."""
    target = endpoint(url, model_name, protocol)
    try:
        response = client.post(target, json=request_body(images, protocol))
    except httpx.TransportError as error:
        raise ConnectionError(
            f"cannot reach the model server at {url} ({type(error).__name__}: {error}); "
            "is `alexnet-tfx serve` running there?"
        ) from None
    if not response.is_success:
        raise ValueError(f"{target} answered {response.status_code}: {_error_text(response)}")
    if protocol == "v1":
        return prediction.from_v1(response.json())
    return prediction.from_v2(response.json())


def _error_text(response: httpx.Response) -> str:
    try:
        return response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return response.text[:500]
