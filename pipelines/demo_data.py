"""The embedded demo dataset: procedurally drawn bikes and ships as JPEG class folders.

Both classes share one distribution of backgrounds, ground/water strips and object colours,
so mean colour does not give the class away; the shapes do.

With spans, each span is drawn with its own seed, and the last one is shifted the way new
data often is: night-time colours, 320x240 instead of 256x256, and PNG instead of JPEG.
"""

from __future__ import annotations

import io
import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from contract.data import SPAN_PREFIX

CLASSES = ("bike", "ship")
IMAGE_SIZE = 256
_CANVAS = 320  # drawn larger, rotated, then centre-cropped to IMAGE_SIZE


SHIFTED_SIZE = (320, 240)  # width, height of the shifted span's images


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return tuple(rng.randint(0, 255) for _ in range(3))


def _background(rng: random.Random) -> Image.Image:
    top, bottom = np.array(_colour(rng)), np.array(_colour(rng))
    ramp = np.linspace(0, 1, _CANVAS)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp).repeat(_CANVAS, axis=1)
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    # A strip of ground or water for both classes, so a coloured band is no clue.
    draw = ImageDraw.Draw(image)
    horizon = rng.randint(int(_CANVAS * 0.6), int(_CANVAS * 0.8))
    draw.rectangle([0, horizon, _CANVAS, _CANVAS], fill=_colour(rng))
    return image


def _draw_bike(
    draw: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, scale: float
) -> None:
    colour, width = _colour(rng), max(2, round(rng.uniform(3, 8) * scale))
    radius = 34 * scale * rng.uniform(0.85, 1.15)
    gap = radius * rng.uniform(2.2, 2.8)
    rear, front = (cx - gap / 2, cy), (cx + gap / 2, cy)
    for hub in (rear, front):
        draw.ellipse(
            [hub[0] - radius, hub[1] - radius, hub[0] + radius, hub[1] + radius],
            outline=colour,
            width=width,
        )
        for spoke in range(rng.choice((3, 4, 6))):
            angle = math.pi * spoke / 3 + rng.uniform(0, math.pi)
            draw.line(
                [hub, (hub[0] + radius * math.cos(angle), hub[1] + radius * math.sin(angle))],
                fill=colour,
                width=1,
            )
    pedal = (cx - gap * 0.05, cy)
    seat = (rear[0] + gap * 0.3, cy - radius * 1.3)
    head = (front[0] - gap * 0.15, cy - radius * 1.4)
    frame = _colour(rng)
    draw.line([rear, pedal, head, front], fill=frame, width=width)
    draw.line([rear, seat, pedal], fill=frame, width=width)
    draw.line([seat, head], fill=frame, width=width)
    draw.line(
        [(seat[0] - 12 * scale, seat[1]), (seat[0] + 12 * scale, seat[1])],
        fill=colour,
        width=width + 2,
    )
    bar = (head[0] + rng.uniform(-6, 10) * scale, head[1] - 14 * scale)
    draw.line([head, bar], fill=frame, width=width)
    draw.line(
        [(bar[0] - 10 * scale, bar[1] - 4 * scale), (bar[0] + 12 * scale, bar[1] + 3)],
        fill=colour,
        width=width,
    )


def _draw_ship(
    draw: ImageDraw.ImageDraw, rng: random.Random, cx: float, cy: float, scale: float
) -> None:
    length = 150 * scale * rng.uniform(0.8, 1.2)
    depth = 30 * scale * rng.uniform(0.8, 1.3)
    deck = cy - depth / 2
    bow = rng.uniform(0.1, 0.3) * length
    hull = [
        (cx - length / 2, deck),
        (cx + length / 2, deck),
        (cx + length / 2 - bow, deck + depth),
        (cx - length / 2 + bow * 0.4, deck + depth),
    ]
    draw.polygon(hull, fill=_colour(rng), outline=_colour(rng))
    if rng.random() < 0.5:  # superstructure: stacked cabins and a funnel
        left, cabin = cx - length * rng.uniform(0.1, 0.3), _colour(rng)
        for level in range(rng.randint(1, 3)):
            width = length * (0.4 - 0.1 * level)
            top = deck - (level + 1) * 16 * scale
            draw.rectangle(
                [left, top, left + width, top + 16 * scale], fill=cabin, outline=_colour(rng)
            )
        draw.rectangle(
            [left + 8 * scale, top - 22 * scale, left + 20 * scale, top], fill=_colour(rng)
        )
    else:  # mast and sails
        mast_x, height = cx + rng.uniform(-0.1, 0.1) * length, depth * rng.uniform(2.5, 4)
        draw.line(
            [(mast_x, deck), (mast_x, deck - height)],
            fill=_colour(rng),
            width=max(2, round(3 * scale)),
        )
        sail = _colour(rng)
        draw.polygon(
            [
                (mast_x - 3, deck - height),
                (mast_x - 3, deck - 6),
                (mast_x - length * 0.35, deck - 6),
            ],
            fill=sail,
        )
        if rng.random() < 0.6:
            draw.polygon(
                [
                    (mast_x + 3, deck - height * 0.9),
                    (mast_x + 3, deck - 6),
                    (mast_x + length * 0.3, deck - 6),
                ],
                fill=sail,
            )
    water = _colour(rng)  # a water line across the hull
    y = deck + depth * rng.uniform(0.55, 0.8)
    points = [(x, y + 3 * math.sin(x / 9)) for x in range(0, _CANVAS, 6)]
    draw.line(points, fill=water, width=max(2, round(rng.uniform(2, 5) * scale)))


def draw_image(label: str, rng: random.Random, shifted: bool = False) -> Image.Image:
    """One randomized image of `label`, IMAGE_SIZE pixels square (shifted: darker colours,
    SHIFTED_SIZE)."""
    image = _background(rng)
    draw = ImageDraw.Draw(image)
    scale = rng.uniform(0.7, 1.3)
    cx = _CANVAS / 2 + rng.uniform(-40, 40)
    cy = _CANVAS / 2 + rng.uniform(-30, 30)
    (_draw_bike if label == "bike" else _draw_ship)(draw, rng, cx, cy, scale)
    image = image.rotate(rng.uniform(-10, 10), resample=Image.BILINEAR)
    margin = (_CANVAS - IMAGE_SIZE) // 2
    image = image.crop((margin, margin, margin + IMAGE_SIZE, margin + IMAGE_SIZE))
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    noise = np.random.default_rng(rng.getrandbits(32)).normal(
        0, rng.uniform(3, 12), (IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    pixels = np.asarray(image, dtype=np.float32) * (0.45 if shifted else 1.0) + noise
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    return image.resize(SHIFTED_SIZE, Image.BILINEAR) if shifted else image


def write_demo_dataset(
    out: str | Path, per_class: int = 200, seed: int = 0, shifted: bool = False
) -> list[Path]:
    """Writes out/<class>/<class>_<i>.jpg (shifted: .png); the same seed gives byte-identical
    files."""
    if per_class < 1:
        raise ValueError(f"--per-class must be at least 1, got {per_class}.")
    paths = []
    for class_index, label in enumerate(CLASSES):
        folder = Path(out) / label
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            rng = random.Random(f"{seed}/{class_index}/{index}")
            buffer = io.BytesIO()
            image = draw_image(label, rng, shifted)
            if shifted:
                image.save(buffer, format="PNG")
            else:
                image.save(buffer, format="JPEG", quality=90)
            path = folder / f"{label}_{index:04d}.{'png' if shifted else 'jpg'}"
            path.write_bytes(buffer.getvalue())
            paths.append(path)
    return paths


def write_demo_spans(
    out: str | Path, spans: int, per_class: int = 200, seed: int = 0
) -> list[Path]:
    """Writes out/span-1 ... out/span-<spans>, each a demo dataset of its own; the last of two
    or more is shifted."""
    if spans < 1:
        raise ValueError(f"--spans must be at least 1, got {spans}.")
    paths = []
    for span in range(1, spans + 1):
        paths += write_demo_dataset(
            Path(out) / f"{SPAN_PREFIX}{span}",
            per_class,
            seed=seed * 1000 + span,
            shifted=spans > 1 and span == spans,
        )
    return paths
