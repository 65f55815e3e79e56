"""The data contract: feature keys, the class-list file, split names and how splits are made."""

from __future__ import annotations

# Features of the examples ImageFolderExampleGen writes. After Transform, IMAGE_KEY holds
# the normalized float image and LABEL_KEY the int64 class index.
IMAGE_KEY = "image"
LABEL_KEY = "label"
CLASS_NAME_KEY = "class_name"
PATH_KEY = "path"
HEIGHT_KEY = "height"
WIDTH_KEY = "width"

# Class names in label order, one per line: in an image folder's Examples artifact, and next
# to TFRecord input.
LABELS_FILE = "labels.txt"

TRAIN = "train"
EVAL = "eval"
SPLITS = (TRAIN, EVAL)
# Folder names (image folders) or file-name prefixes (TFRecords) that name a split, in order
# of preference.
SPLIT_PREFIXES = {TRAIN: ("train",), EVAL: ("eval", "test")}

# Numbered spans: DATA/span-1/, DATA/span-2/, ... each in any accepted layout. As with TFX's
# {SPAN}, spans are integers and the newest is the largest. An Examples artifact made from
# spans holds SPANS_FILE: {"spans": [the spans it read], "eval_span": the newest}.
SPAN_PREFIX = "span-"
SPANS_FILE = "spans.json"
# What an Examples artifact of our ExampleGens was made from: {"input_fingerprint": every
# input file's name, size and version, "options": the split and window settings}. The
# Trainer records it with each model, to recognize a run on the same data.
INPUT_FILE = "input.json"

# Hash splits are made in percent steps.
HASH_BUCKETS = 100


def eval_buckets(eval_fraction: float) -> int:
    """How many of the HASH_BUCKETS go to eval; train gets the rest."""
    buckets = round(eval_fraction * HASH_BUCKETS)
    if not 0 < buckets < HASH_BUCKETS:
        raise ValueError(f"eval_fraction: must be between 0.01 and 0.99, got {eval_fraction}.")
    return buckets


def is_remote(path: str) -> bool:
    """gs://, s3:// and other URIs: tf.io.gfile reaches them, the os module does not."""
    return "://" in path


def span_number(folder_name: str) -> int | None:
    """The span a folder name like span-12 holds; None for any other name."""
    if not folder_name.startswith(SPAN_PREFIX):
        return None
    digits = folder_name[len(SPAN_PREFIX) :]
    return int(digits) if digits.isdigit() else None


def window(spans: list[int], window_spans: int) -> list[int]:
    """The newest `window_spans` spans, oldest first; 0 means all of them."""
    ordered = sorted(spans)
    return ordered[-window_spans:] if window_spans else ordered
