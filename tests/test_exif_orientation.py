"""EXIF orientation, applied in the graph as Pillow's `ImageOps.exif_transpose` applies it."""

import io
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from modules.exif_orientation import decode_upright, jpeg_orientation
from modules.image_check import decoded_size

PIXELS = (np.random.default_rng(0).random((30, 50, 3)) * 255).astype(np.uint8)


def plain_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def app1(orientation: int, byte_order: str, extra_entries: int = 0) -> bytes:
    """An APP1 "Exif" segment whose IFD0 holds `extra_entries` other tags, then Orientation."""
    order = "<" if byte_order == "II" else ">"
    tiff = byte_order.encode() + struct.pack(f"{order}HI", 42, 8)
    entries = [struct.pack(f"{order}HHI4s", 0x010F, 2, 4, b"cam\0")] * extra_entries
    entries.append(struct.pack(f"{order}HHIH2x", 0x0112, 3, 1, orientation))
    ifd = struct.pack(f"{order}H", len(entries)) + b"".join(entries) + b"\0\0\0\0"
    payload = b"Exif\0\0" + tiff + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def with_segment(jpeg: bytes, segment: bytes) -> bytes:
    return jpeg[:2] + segment + jpeg[2:]


@pytest.mark.parametrize("byte_order", ["II", "MM"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_orientation_is_turned_as_pillow_turns_it(orientation, byte_order):
    upright = decode_upright(plain_jpeg()).numpy()
    reference = Image.fromarray(upright)
    reference.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(reference))

    encoded = with_segment(plain_jpeg(), app1(orientation, byte_order, extra_entries=3))
    assert Image.open(io.BytesIO(encoded)).getexif()[0x0112] == orientation  # Pillow agrees
    assert int(jpeg_orientation(encoded)) == orientation
    np.testing.assert_array_equal(decode_upright(encoded).numpy(), expected)


def test_a_camera_written_exif_behind_jfif_and_icc_segments_is_found():
    """As Pillow writes it, after APP0 (JFIF) and a 60 KB APP2 (ICC profile)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, "JPEG", exif=exif.tobytes(), icc_profile=b"\x00" * 60_000)
    encoded = buffer.getvalue()
    assert int(jpeg_orientation(encoded)) == 6
    assert decoded_size(encoded) == (50, 30)  # ingestion records the upright size


def test_images_without_exif_orientation_are_left_as_they_are(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, "PNG")
    for encoded in (plain_jpeg(), buffer.getvalue(), with_segment(plain_jpeg(), app1(9, "II"))):
        assert int(jpeg_orientation(encoded)) == 1
        assert decode_upright(encoded).shape == (30, 50, 3)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    head=st.binary(max_size=64),
    segment=st.binary(max_size=200),
    declared=st.integers(0, 0xFFFF),
    cut=st.integers(0, 300),
)
def test_a_damaged_or_hostile_exif_block_never_fails_the_parser(head, segment, declared, cut):
    """Random segment lengths, offsets and entry counts: the answer is always 1-8."""
    payload = b"Exif\0\0" + head + segment
    encoded = (b"\xff\xd8\xff\xe1" + struct.pack(">H", declared) + payload)[: 6 + cut]
    assert 1 <= int(jpeg_orientation(encoded)) <= 8
