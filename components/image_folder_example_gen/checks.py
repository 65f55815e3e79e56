"""The first pass: each file decoded (with the decoder Transform uses) and checked; only its
metadata goes on."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence

from apache_beam.pvalue import TaggedOutput

from components.image_folder_example_gen.layout import REJECTED, ImageFile
from contract.data import is_remote
from contract.images import IMAGE_EXTENSIONS
from modules import storage
from modules.image_check import UndecodableImage, decoded_sizes


def read_file(root: str, relative_path: str) -> bytes:
    path = os.path.join(root, relative_path)
    if is_remote(path):
        return storage.read_bytes(path)
    # tf.io.gfile stats a local file three times before it reads it: 1.5x the read's cost.
    with open(path, "rb") as handle:
        return handle.read()


def _check_placement(image: ImageFile) -> ImageFile:
    if image.reject_reason:
        return image
    if image.class_name is None:
        return dataclasses.replace(image, reject_reason="outside any class folder")
    if not image.relative_path.lower().endswith(IMAGE_EXTENSIONS):
        return dataclasses.replace(
            image, reject_reason=f"unsupported format (accepted: {', '.join(IMAGE_EXTENSIONS)})"
        )
    return image


def validate_images(root: str, images: Sequence[ImageFile]) -> list[ImageFile]:
    """Decodes the files exactly as Transform will; records why each rejected one failed.
    An image over the pixel limit is refused from its header, before it is decoded."""
    read = []
    for image in map(_check_placement, images):
        if image.reject_reason:
            read.append((image, b""))
            continue
        data = read_file(root, image.relative_path)
        read.append((dataclasses.replace(image, digest=hashlib.sha256(data).hexdigest()), data))
    to_decode = [(image, data) for image, data in read if not image.reject_reason]
    sizes = iter(decoded_sizes([data for _, data in to_decode]))
    return [image if image.reject_reason else _with_size(image, next(sizes)) for image, _ in read]


def _with_size(image: ImageFile, size: tuple[int, int] | UndecodableImage) -> ImageFile:
    if isinstance(size, UndecodableImage):
        return dataclasses.replace(image, reject_reason=str(size))
    height, width = size
    return dataclasses.replace(image, height=height, width=width)


def route_checked(batch: list[ImageFile], root: str) -> Iterator[list[ImageFile] | TaggedOutput]:
    """The batch's accepted images as one list (metadata only), each rejected file alone."""
    checked = validate_images(root, batch)
    for image in checked:
        if image.reject_reason:
            yield TaggedOutput(REJECTED, image)
    yield [image for image in checked if not image.reject_reason]
