"""Reads an image's declared size from its header, without decoding it.

Pillow only, so the light client (`serving/client.py`) can refuse a decompression bomb as
ingestion and the server do, without loading TensorFlow.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image

from contract.images import MAX_IMAGE_PIXELS


def header_pixels(data: bytes) -> int | None:
    """The pixel count an image's header declares, read without decoding; None where Pillow
    cannot read the header (the model's decoder then has the final word)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError as error:
        # Over Pillow's own, larger limit; its message holds the pixel count.
        found = re.search(r"\((\d+) pixels\)", str(error))
        return int(found.group(1)) if found else 2**62
    except (OSError, ValueError, SyntaxError):
        return None
    return width * height


def pixels_problem(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> str | None:
    """Why the image is refused for its declared size, or None."""
    return limit_problem(header_pixels(data), max_pixels)


def limit_problem(pixels: int | None, max_pixels: int) -> str | None:
    """Why an image declaring `pixels` (None: unreadable header) is refused, or None."""
    if pixels is not None and pixels > max_pixels:
        return f"{pixels:,} pixels exceed the limit of {max_pixels:,}; send a smaller image"
    return None
