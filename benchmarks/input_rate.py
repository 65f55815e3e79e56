"""The Trainer's input path alone (no model), in images/s per CPU core, against a decode-only
ceiling measured in the same run, on photo-sized JPEGs (500x375, quality 90, generated:
gradients, shapes and sensor-like noise, about 60 KB each), as tf.Examples in TFRecords.

Variants, each the same number of images, each its fastest of --repeats passes:
- decode_only: parse, decode each JPEG whole; nothing else (the ceiling for paths that
  decode every image whole);
- trainer_path: what the Trainer runs today (modules/dataset.py with the Transform graph's
  ops, modules/transform.py): batches decoded, centre-cropped and resized to 227 in the
  graph, normalized, then augmented (random 87.5% crop, resize, flip) and batched;
- per_image: the same work, decoded one image per parallel map call instead of one batch;
- crop_decode: per_image, decoding only the centre square (tf.io.decode_and_crop_jpeg); it
  skips part of the decoding, so it may pass the ceiling;
- uint8_materialized: examples holding the 227x227 image as uint8 (155 KB), as Transform
  could write them for data used again; no decoding at all;
- sharded_reads: per_image over 8 TFRecord shards read in parallel (interleave);
- data_service: per_image through tf.data service (a dispatcher and one worker on this
  machine): the overhead of the way to add CPU machines to one trainer.
DCT-scaled decoding (decode_jpeg's `ratio`) is not measured: it needs a source at least
twice the target (454 px for 227), and these photos' short side is 375.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

SIZE = 227  # the canonical input
PHOTO = (500, 375)  # width, height
BATCH = 32


def photos(count: int, seed: int = 0) -> list[bytes]:
    """Photo-like JPEGs: a sky-to-ground gradient, a few shapes, sensor noise."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        width, height = PHOTO
        ramp = np.linspace(0, 1, height)[:, None, None]
        top, bottom = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
        pixels = (top * (1 - ramp) + bottom * ramp).repeat(width, axis=1)
        image = Image.fromarray(pixels.astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.integers(0, width), rng.integers(0, height)
            r = int(rng.integers(10, 80))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(rng.integers(0, 255, 3)))
        noisy = np.asarray(image, np.float32) + rng.normal(0, 8, (height, width, 3))
        buffer = io.BytesIO()
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def write_records(folder: str, images: list[bytes], shards: int, uint8: bool = False) -> list[str]:
    import tensorflow as tf

    from modules.transform import decode_and_resize

    paths = [os.path.join(folder, f"part-{i:02d}.tfrecord") for i in range(shards)]
    writers = [tf.io.TFRecordWriter(path) for path in paths]
    for index, image in enumerate(images):
        if uint8:
            pixels = tf.cast(tf.round(decode_and_resize(tf.constant(image), SIZE)), tf.uint8)
            image = pixels.numpy().tobytes()
        feature = {
            "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[index % 2])),
        }
        example = tf.train.Example(features=tf.train.Features(feature=feature))
        writers[index % shards].write(example.SerializeToString())
    for writer in writers:
        writer.close()
    return paths


def _parse(records):
    import tensorflow as tf

    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    }
    return tf.io.parse_example(records, spec)


def _augment_batches(dataset):
    """The same crop-and-flip, per batch: one crop_and_resize op for the whole batch."""
    import tensorflow as tf

    from modules.dataset import CROP_FRACTION

    def augment(images, labels):
        count = tf.shape(images)[0]
        corner = tf.random.uniform([count, 2], 0, 1 - CROP_FRACTION)
        boxes = tf.concat([corner, corner + CROP_FRACTION], axis=1)
        cropped = tf.image.crop_and_resize(images, boxes, tf.range(count), [SIZE, SIZE])
        return tf.image.random_flip_left_right(cropped), labels

    mean, std = tf.constant([120.0, 115.0, 105.0]), tf.constant([60.0, 58.0, 57.0])
    autotune = tf.data.AUTOTUNE
    dataset = dataset.map(lambda image, label: ((image - mean) / std, label), autotune)
    return dataset.batch(BATCH, drop_remainder=True).map(augment, autotune).prefetch(autotune)


def _normalize_and_augment(dataset):
    import tensorflow as tf

    from modules.dataset import augment

    mean, std = tf.constant([120.0, 115.0, 105.0]), tf.constant([60.0, 58.0, 57.0])
    autotune = tf.data.AUTOTUNE
    dataset = dataset.map(lambda image, label: ((image - mean) / std, label), autotune)
    dataset = dataset.map(lambda image, label: augment(image, label, SIZE), autotune)
    return dataset.batch(BATCH, drop_remainder=True).prefetch(autotune)


def pipelines(paths, sharded, uint8_paths):
    import tensorflow as tf

    from modules.transform import decode_and_resize, decode_batch

    autotune = tf.data.AUTOTUNE

    def records(files, parallel=False):
        return tf.data.TFRecordDataset(files, num_parallel_reads=autotune if parallel else None)

    def decode_only():
        dataset = records(paths).batch(BATCH).map(_parse, autotune).unbatch()
        return dataset.map(lambda f: tf.io.decode_jpeg(f["image"], channels=3), autotune)

    def trainer_path():  # the TFT layer's work, one batch per call, as make_dataset maps it
        dataset = records(paths).batch(BATCH).map(_parse, autotune)
        dataset = dataset.map(lambda f: (decode_batch(f["image"], SIZE), f["label"]), autotune)
        return _normalize_and_augment(dataset.unbatch())

    def per_image(files=paths, parallel=False):
        dataset = records(files, parallel).batch(BATCH).map(_parse, autotune).unbatch()
        dataset = dataset.map(lambda f: (decode_and_resize(f["image"], SIZE), f["label"]), autotune)
        return _normalize_and_augment(dataset)

    def crop_decode():
        def decode(encoded):
            shape = tf.io.extract_jpeg_shape(encoded)
            side = tf.minimum(shape[0], shape[1])
            window = tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2, side, side])
            image = tf.io.decode_and_crop_jpeg(encoded, window, channels=3)
            resized = tf.image.resize(image, [SIZE, SIZE], method="bilinear", antialias=True)
            return tf.ensure_shape(resized, [SIZE, SIZE, 3])

        dataset = records(paths).batch(BATCH).map(_parse, autotune).unbatch()
        return _normalize_and_augment(
            dataset.map(lambda f: (decode(f["image"]), f["label"]), autotune)
        )

    def uint8_materialized(finish=_normalize_and_augment):
        def decode(raw):
            pixels = tf.io.decode_raw(raw, tf.uint8)
            return tf.cast(tf.reshape(pixels, [SIZE, SIZE, 3]), tf.float32)

        dataset = records(uint8_paths).batch(BATCH).map(_parse, autotune).unbatch()
        return finish(dataset.map(lambda f: (decode(f["image"]), f["label"]), autotune))

    def trainer_path_batched_augment():
        dataset = records(paths).batch(BATCH).map(_parse, autotune)
        dataset = dataset.map(lambda f: (decode_batch(f["image"], SIZE), f["label"]), autotune)
        return _augment_batches(dataset.unbatch())

    return {
        "decode_only": decode_only,
        "trainer_path": trainer_path,
        "per_image": per_image,
        "crop_decode": crop_decode,
        "uint8_materialized": uint8_materialized,
        "trainer_path_batched_augment": trainer_path_batched_augment,
        "uint8_batched_augment": lambda: uint8_materialized(_augment_batches),
        "sharded_reads": lambda: per_image(sharded, parallel=True),
    }


def rate(make, images: int, repeats: int) -> float:
    """Images/s of the fastest of `repeats` full passes, after one warm-up pass."""
    best = 0.0
    for attempt in range(repeats + 1):
        start = time.perf_counter()
        seen = 0
        for element in make():
            first = element[0] if isinstance(element, tuple) else element
            seen += int(first.shape[0]) if first.shape.rank == 4 else 1
        seconds = time.perf_counter() - start
        if attempt:
            best = max(best, seen / seconds)
    assert seen >= images - BATCH, (seen, images)
    return best


def data_service_rate(make, images: int, repeats: int) -> float:
    import tensorflow as tf

    dispatcher = tf.data.experimental.service.DispatchServer()
    address = dispatcher.target.split("://")[1]
    worker = tf.data.experimental.service.WorkerServer(
        tf.data.experimental.service.WorkerConfig(dispatcher_address=address)
    )
    try:
        return rate(
            lambda: make().apply(
                tf.data.experimental.service.distribute(
                    processing_mode="parallel_epochs", service=dispatcher.target
                )
            ),
            images,
            repeats,
        )
    finally:
        del worker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from common import report

    cores = len(os.sched_getaffinity(0))
    images = photos(args.images)
    with tempfile.TemporaryDirectory() as work:
        for name in ("one", "sharded", "uint8"):
            os.makedirs(os.path.join(work, name))
        single = write_records(os.path.join(work, "one"), images, 1)
        sharded = write_records(os.path.join(work, "sharded"), images, 8)
        uint8 = write_records(os.path.join(work, "uint8"), images, 1, uint8=True)
        made = pipelines(single, sharded, uint8)
        found = {name: rate(make, args.images, args.repeats) for name, make in made.items()}
        found["data_service"] = data_service_rate(made["per_image"], args.images, args.repeats)
        sizes = {
            "jpeg_kb": sum(map(len, images)) / len(images) / 1024,
            "uint8_record_kb": os.path.getsize(uint8[0]) / len(images) / 1024,
        }
    ceiling = found["decode_only"]
    figures = {f"{name}_per_core": value / cores for name, value in found.items()}
    figures.update({f"{name}_over_ceiling": value / ceiling for name, value in found.items()})
    report(
        "input_rate",
        figures,
        {"images": args.images, "photo": PHOTO, "size": SIZE, "cores": cores, **sizes},
    )


if __name__ == "__main__":
    main()
