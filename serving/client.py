"""Predictions for image files: from a running server over V1 or V2, or in-process."""

from __future__ import annotations

import base64

import httpx
from kserve import InferResponse

from modules.image_check import UndecodableImage, decoded_size
from serving.served_model import Prediction, ServedModel


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


def predict_local(paths: list[str], serving_dir: str, model_name: str) -> list[Prediction]:
    images = read_images(paths)
    return ServedModel.latest(serving_dir, model_name).predict(images)


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
        tensor = {"name": "images", "shape": [len(encoded)], "datatype": "BYTES", "data": encoded}
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
        return _from_v1(response.json())
    return _from_v2(InferResponse.from_rest(response.json()))


def top_k(prediction: Prediction, k: int) -> list[tuple[str, float]]:
    ranked = sorted(enumerate(prediction.probabilities), key=lambda pair: -pair[1])[:k]
    return [(prediction.class_names[index], score) for index, score in ranked]


def _from_v1(answer: dict) -> list[Prediction]:
    names = tuple(answer["class_names"])
    version = int(answer["model_version"])
    return [
        Prediction(p["class_name"], p["class_id"], p["score"], p["probabilities"], version, names)
        for p in answer["predictions"]
    ]


def _from_v2(answer: InferResponse) -> list[Prediction]:
    outputs = {output.name: output.as_numpy() for output in answer.outputs}
    names = tuple(_text(name) for name in outputs["class_names"])
    version = int(answer.model_version)
    return [
        Prediction(_text(name), int(class_id), float(score), row.tolist(), version, names)
        for name, class_id, score, row in zip(
            outputs["class_name"],
            outputs["class_id"],
            outputs["score"],
            outputs["probabilities"],
            strict=True,
        )
    ]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _error_text(response: httpx.Response) -> str:
    try:
        return response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return response.text[:500]
