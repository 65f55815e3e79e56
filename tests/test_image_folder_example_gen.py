"""ImageFolderExampleGen: layout discovery, decoding checks, splits, and a real pipeline run."""

import hashlib
import itertools
import json
import os

import pytest
import tensorflow as tf
from conftest import encode, partial_run_nodes, png_header, run_cli, write_files

from components.image_folder_example_gen.checks import validate_images
from components.image_folder_example_gen.layout import ImageFile, ImageFolderError, discover_layout
from components.image_folder_example_gen.splits import assign_splits


def _jpeg_truncated():
    data = encode("JPEG", size=(256, 256))
    return data[: len(data) // 2]


# A folder with every kind of bad file next to good ones in all accepted formats.
MESSY = {
    "cat/a.jpg": encode("JPEG"),
    "cat/b.JPEG": encode("JPEG"),
    "cat/c.png": encode("PNG", mode="L"),  # grayscale
    "cat/d.gif": encode("GIF", mode="P"),  # palette
    "cat/nested/e.bmp": encode("BMP"),
    "cat/empty.jpg": b"",
    "cat/notes.jpg": b"this is text, not a JPEG",
    "cat/half.jpg": _jpeg_truncated(),
    "dog/a.png": encode("PNG"),
    "dog/b.PNG": encode("PNG", mode="RGBA"),
    "dog/c.jpg": encode("JPEG"),
    "dog/d.tiff": encode("TIFF"),
    "dog/readme.txt": b"dogs",
    "stray.jpg": encode("JPEG"),
}
ACCEPTED = {"cat": 5, "dog": 3}
REJECTED = {
    "cat/empty.jpg": "empty file",
    "cat/notes.jpg": "cannot be decoded: Unknown image file format",
    "cat/half.jpg": "cannot be decoded",
    "dog/d.tiff": "unsupported format",
    "dog/readme.txt": "unsupported format",
    "stray.jpg": "outside any class folder",
}


NOT_UTF8 = os.fsdecode(b"dog/caf\xff.jpg")


def add_odd_entries(data):
    """Entries no image folder should hold, next to MESSY's; each is accounted for."""
    (data / "cat" / "dangling.jpg").symlink_to(data / "cat" / "gone.jpg")
    (data / "cat" / "loop.jpg").symlink_to(data / "cat" / "loop.jpg")
    (data / "cat" / "link-to-a.jpg").symlink_to(data / "cat" / "a.jpg")  # a duplicate
    (data / "dog" / "linked-folder").symlink_to(data / "cat" / "nested")
    (data / NOT_UTF8).write_bytes(encode("JPEG"))
    (data / "cat" / "huge.png").write_bytes(png_header(20000, 20000))
    os.mkfifo(data / "cat" / "pipe.jpg")
    write_files(
        data,
        {
            ".ipynb_checkpoints/x.jpg": encode("JPEG"),  # hidden: ignored, not a class
            "cat/.hidden.jpg": encode("JPEG"),
            "dog/.cache/y.jpg": encode("JPEG"),
            "dog/photo.webp": encode("WEBP"),
        },
    )


ODD_ACCEPTED = {"cat": 1, "dog": 1}  # the link to a.jpg, the WebP
ODD_REJECTED = {
    "cat/dangling.jpg": "a broken symbolic link",
    "cat/loop.jpg": "a symbolic link loop",
    "dog/linked-folder": "a symbolic link to a folder, not followed",
    "dog/caf\\xff.jpg": "its name is not valid UTF-8",
    "cat/huge.png": "400,000,000 pixels exceed the limit of 40,000,000",
    "cat/pipe.jpg": "not a regular file",
}


@pytest.mark.parametrize(
    ("name", "reason"),
    [(path, reason) for path, reason in REJECTED.items() if "/" in path],
)
def test_rejects_each_bad_file_with_its_reason(tmp_path, name, reason):
    write_files(tmp_path, MESSY)
    (checked,) = validate_images(str(tmp_path), [ImageFile(name, name.split("/")[0])])
    assert checked.reject_reason is not None and checked.reject_reason.startswith(reason)


def test_accepts_every_format_and_records_size(tmp_path):
    write_files(tmp_path, MESSY)
    names = ["cat/a.jpg", "cat/b.JPEG", "cat/c.png", "cat/d.gif", "cat/nested/e.bmp", "dog/b.PNG"]
    for checked in validate_images(str(tmp_path), [ImageFile(name, "x") for name in names]):
        assert checked.reject_reason is None, (checked.relative_path, checked.reject_reason)
        assert (checked.height, checked.width) == (30, 40)


def test_a_batch_with_bad_files_gives_each_file_its_own_answer(tmp_path):
    write_files(tmp_path, MESSY)
    images = [ImageFile(path, path.split("/")[0] if "/" in path else None) for path in MESSY]
    checked = {image.relative_path: image for image in validate_images(str(tmp_path), images)}
    assert [image.relative_path for image in checked.values()] == list(MESSY)
    for path, image in checked.items():
        if path in REJECTED:
            assert image.reject_reason.startswith(REJECTED[path]), (path, image.reject_reason)
        else:
            assert image.reject_reason is None, (path, image.reject_reason)
            assert (image.height, image.width) == (30, 40)


def test_layout_errors_name_the_folder(tmp_path):
    with pytest.raises(ImageFolderError, match="does not exist"):
        discover_layout(str(tmp_path / "missing"))
    write_files(tmp_path, {"cat/a.jpg": encode("JPEG")})
    with pytest.raises(ImageFolderError, match=r"has 1 class folder\(s\) \(cat\).*at least 2"):
        discover_layout(str(tmp_path))
    (tmp_path / "dog").mkdir()
    with pytest.raises(ImageFolderError, match=f"Class folder {tmp_path / 'dog'} is empty"):
        discover_layout(str(tmp_path))


def test_presplit_layout_uses_its_folders(tmp_path):
    write_files(
        tmp_path,
        {
            "train/cat/a.jpg": b"x",
            "train/dog/a.jpg": b"x",
            "test/cat/b.jpg": b"x",
            "test/bird/c.jpg": b"x",
            "extra/z.jpg": b"x",
            "train/loose.png": b"x",
        },
    )
    layout = discover_layout(str(tmp_path))
    assert layout.classes == ["bird", "cat", "dog"]
    assert {(entry.split, entry.class_name) for entry in layout.class_folders} == {
        ("train", "cat"),
        ("train", "dog"),
        ("eval", "cat"),
        ("eval", "bird"),
    }
    assert sorted(layout.stray_files) == ["extra/z.jpg", "train/loose.png"]


def _image(path, class_name, content):
    return ImageFile(path, class_name, digest=hashlib.sha256(content).hexdigest())


def test_split_is_deterministic_and_covers_both_splits():
    images = [_image(f"cls/{i}.jpg", "cls", str(i).encode()) for i in range(200)]
    first = {i.relative_path: i.split for i in assign_splits(images, 0.2)}
    second = {i.relative_path: i.split for i in assign_splits(list(reversed(images)), 0.2)}
    assert first == second
    assert 25 <= sum(split == "eval" for split in first.values()) <= 55
    for n in (2, 3):
        pair = [_image(f"c/{i}.jpg", "c", str(i).encode()) for i in range(n)]
        assert {i.split for i in assign_splits(pair, 0.2)} == {"train", "eval"}
    assert [i.split for i in assign_splits(pair[:1], 0.2)] in (["train"], ["eval"])


def test_copies_of_one_image_share_a_split_whatever_their_names():
    images = [_image(f"cls/{i}.jpg", "cls", str(i).encode()) for i in range(50)]
    images += [_image(f"cls/copy-{i}.jpg", "cls", str(i).encode()) for i in range(50)]
    images += [_image("cls/one-more-copy.jpg", "cls", b"7")]
    splits = {}
    for image in assign_splits(images, 0.2):
        splits.setdefault(image.digest, set()).add(image.split)
    assert all(len(found) == 1 for found in splits.values())
    assert {split for found in splits.values() for split in found} == {"train", "eval"}
    # Two copies only: the class still gets both splits only if it has two images.
    twins = [_image(f"c/{i}.jpg", "c", b"same") for i in range(2)]
    assert len({i.split for i in assign_splits(twins, 0.2)}) == 1


def _read_examples(pattern):
    dataset = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="")
    return [tf.train.Example.FromString(record.numpy()) for record in dataset]


@pytest.fixture(scope="session")
def messy_run(tmp_path_factory, node_id):
    """One real pipeline run up to ExampleValidator over the messy folder, through the CLI."""
    base = tmp_path_factory.mktemp("messy")
    data = write_files(base / "data", MESSY)
    add_odd_entries(data)
    summary_path = base / "s.json"
    result = run_cli(
        "run",
        "--data",
        data,
        "--preset",
        "tiny",
        "--output-root",
        base / "out",
        "--to",
        node_id("anomalies"),
        "--summary-json",
        summary_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(summary_path.read_text()), result, data


def test_counts_are_exact(messy_run, tiny_wiring, node_id):
    summary, _, _ = messy_run
    assert summary["classes"] == ["cat", "dog"]  # not .ipynb_checkpoints
    accepted = sum(ACCEPTED.values()) + sum(ODD_ACCEPTED.values())
    assert sum(summary["examples"].values()) == accepted
    assert summary["rejected_files"] == len(REJECTED) + len(ODD_REJECTED)
    # cat/a.jpg, cat/b.JPEG, dog/c.jpg and the link to a.jpg hold the same bytes.
    assert summary["duplicate_files"] == 3
    assert list(summary["components"]) == partial_run_nodes(tiny_wiring, node_id("anomalies"))
    assert len(summary["components"]) == 4
    assert all(c["status"] == "complete" for c in summary["components"].values())
    assert isinstance(summary["anomalies"], list)


def test_rejects_file_lists_every_rejected_file(messy_run):
    summary, result, _ = messy_run
    lines = [json.loads(line) for line in open(summary["rejects_path"])]
    reasons = {line["path"]: line["reason"] for line in lines}
    assert set(reasons) == set(REJECTED) | set(ODD_REJECTED)
    for path, reason in (REJECTED | ODD_REJECTED).items():
        assert reasons[path].startswith(reason), (path, reasons[path])
    assert "Rejected files: 12" in result.stdout
    assert "Duplicates: 3 files are byte-identical copies of others" in result.stdout


def test_examples_carry_image_label_and_metadata(messy_run):
    summary, _, data = messy_run
    artifact = summary["rejects_path"].rsplit("/", 1)[0]
    assert open(f"{artifact}/labels.txt").read() == "cat\ndog\n"
    by_split = {
        split: _read_examples(f"{artifact}/Split-{split}/*.tfrecord") for split in ("train", "eval")
    }
    seen = {}
    for split, examples in by_split.items():
        for example in examples:
            feature = example.features.feature
            path = feature["path"].bytes_list.value[0].decode()
            cls = feature["class_name"].bytes_list.value[0].decode()
            assert path.startswith(cls + "/")
            assert feature["label"].int64_list.value[0] == ["cat", "dog"].index(cls)
            assert feature["height"].int64_list.value[0] == 30
            assert feature["width"].int64_list.value[0] == 40
            assert feature["image"].bytes_list.value[0] == (data / path).read_bytes()
            seen[path] = split
    assert len(seen) == 10
    assert seen["cat/link-to-a.jpg"] == seen["cat/a.jpg"]  # a copy keeps its original's split
    for cls in ("cat", "dog"):
        assert {split for path, split in seen.items() if path.startswith(cls)} == {"train", "eval"}


def test_classes_are_interleaved_in_the_written_files(first_run):
    """Trainers shuffle in a bounded buffer, so one class after another would train badly."""
    summary, _ = first_run
    examples = _read_examples(f"{summary['lineage']['examples']}/Split-train/*.tfrecord")
    labels = [example.features.feature["label"].int64_list.value[0] for example in examples]
    changes = sum(first != second for first, second in itertools.pairwise(labels))
    assert changes >= len(labels) // 2, labels
