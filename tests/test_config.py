"""The typed configuration: presets, YAML file, overrides and field-naming errors."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from modules.hyperparameters import Hyperparameters
from pipelines.config import ConfigError, PipelineConfig, build_config
from pipelines.demo_data import write_demo_dataset


def test_demo_is_the_default_and_canonical():
    config = build_config()
    assert config == build_config("demo") == PipelineConfig()
    assert (config.training.image_size, config.training.width_multiplier) == (227, 1.0)


def test_tiny_and_imagenet_presets():
    tiny = build_config("tiny")
    assert tiny.training.image_size == 67 and tiny.training.width_multiplier == 0.125
    imagenet = build_config("imagenet")
    assert imagenet.num_classes == 1000 and imagenet.training.epochs == 90


def test_locations_derive_from_output_root_and_metadata_lives_in_pipeline_root(tmp_path):
    config = build_config(output_root=str(tmp_path))
    assert config.pipeline_root_path == str(tmp_path / "pipeline_root")
    assert config.metadata_path == str(tmp_path / "pipeline_root" / "metadata.sqlite")
    assert config.serving_path == str(tmp_path / "serving_model")
    assert config.data_path == str(tmp_path / "data" / "demo")
    moved = build_config(output_root=str(tmp_path), pipeline_root=str(tmp_path / "other"))
    assert moved.metadata_path == str(tmp_path / "other" / "metadata.sqlite")


def test_yaml_overrides_preset_and_flags_override_yaml(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "preset: tiny\nmin_accuracy: 1\ntraining:\n  batch_size: 8\n  learning_rate: 1\n"
        "  epochs: 3\n"
    )
    config = build_config(config_file=str(path), training={"epochs": 5})
    assert config.training.image_size == 67  # from the preset
    assert config.training.batch_size == 8  # from the file
    assert config.training.learning_rate == 1.0 and isinstance(config.training.learning_rate, float)
    assert config.min_accuracy == 1.0 and isinstance(config.min_accuracy, float)
    assert config.training.epochs == 5  # the flag wins, and only for that hyperparameter
    assert build_config("demo", config_file=str(path)).training.image_size == 227


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("batch_sise: 8\n", "unknown field\\(s\\) batch_sise"),
        ("training:\n  batch_sise: 8\n", "training: unknown hyperparameter\\(s\\) batch_sise"),
        ("training:\n  batch_size: eight\n", "training.batch_size: expected int"),
        ("training: 8\n", "training: must be a mapping"),
        ("- a list\n", "must hold a mapping"),
        ("eval_fraction: [\n", "not valid YAML"),
        ("preset: huge\n", "preset: unknown preset 'huge'"),
        ("tune_trials: 0\n", "tune_trials: must be 1 or more, got 0"),
        ("search_space:\n  learning_rate: []\n", "search_space.learning_rate: needs a list"),
        ("search_space:\n  dropout: [0.5, 1.5]\n", "search_space.dropout: 1.5 cannot be tried"),
        ("search_space:\n  optimizer: [adam, rmsprop]\n", "search_space.optimizer: 'rmsprop'"),
        ("search_space:\n  momentum: [0.9]\n", "search_space: unknown search_space field"),
        (
            "tune: true\nsearch_space: {learning_rate: [0.001], dropout: [0.5], "
            "batch_size: [32], optimizer: [adam]}\n",
            "search_space: holds one combination only .* nothing to tune",
        ),
    ],
)
def test_bad_yaml_names_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        build_config(config_file=str(path))


def test_search_space_merges_field_by_field_and_feeds_the_tuner(tmp_path):
    path = tmp_path / "tune.yaml"
    path.write_text("tune: true\nsearch_space:\n  optimizer: [adam, sgd]\n")
    config = build_config("tiny", config_file=str(path), tune_trials=3)
    assert config.tune and config.tune_trials == 3
    space = config.search_space
    assert space.optimizer == ["adam", "sgd"] and space.learning_rate == [1e-4, 3e-4, 1e-3]
    assert space.size == 3 * 2 * 2 * 2


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does-not-exist.yaml does not exist"):
        build_config(config_file="does-not-exist.yaml")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(training=dict(image_size=64)), "training.image_size:"),
        (dict(training=dict(batch_size=0)), "training.batch_size:"),
        (dict(training=dict(dropout=1.0)), "training.dropout:"),
        (dict(num_classes=1), "num_classes:"),
        (dict(data_format="csv"), "data_format:"),
        (dict(eval_fraction=1.5), "eval_fraction:"),
        (dict(min_accuracy=2), "min_accuracy: an accuracy, between 0 and 1"),
        (dict(min_accuracy=-0.1), "min_accuracy:"),
        (dict(training=dict(epochs=0)), "training.epochs: must be 1 or more"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        build_config("tiny", **overrides)


@pytest.mark.parametrize("where", ["missing", "a-file"])
def test_data_that_is_not_a_folder_is_one_line_naming_the_flag(tmp_path, where):
    data = tmp_path / where
    if where == "a-file":
        data.write_text("not a folder")
    result = run_cli("run", "--data", data, "--preset", "tiny", "--output-root", tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"Image folder {data} does not exist or is not a directory. Point --data" in line


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="num_classes"):
        PipelineConfig(num_classes=1)
    with pytest.raises(ValueError, match="image_size"):
        Hyperparameters(image_size=10)


def test_presets_apply_only_through_build_config():
    """PipelineConfig has no preset field, so a preset cannot be silently ignored."""
    with pytest.raises(TypeError, match="preset"):
        PipelineConfig(preset="tiny")


def test_bulk_infer_data_is_checked_before_any_component_runs(tmp_path):
    from pipelines.data_facts import inspect_data
    from pipelines.demo_data import write_demo_dataset

    write_demo_dataset(tmp_path / "data", per_class=2)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_bytes(b"")
    for folder, message in (
        ("missing", "bulk_infer_data: .*missing does not exist or is not a folder"),
        ("notes", "bulk_infer_data: .*notes holds no images"),
    ):
        config = build_config(
            "tiny", data=str(tmp_path / "data"), bulk_infer_data=str(tmp_path / folder)
        )
        with pytest.raises(ConfigError, match=message):
            inspect_data(config)


def _read_only_mount_works(folder) -> bool:
    probe = "mount --bind {0} {0} && mount -o remount,ro,bind {0} {0} && ! touch {0}/probe"
    return (
        shutil.which("unshare") is not None
        and subprocess.run(
            ["unshare", "-m", "sh", "-c", probe.format(folder)], capture_output=True
        ).returncode
        == 0
    )


@pytest.mark.parametrize(
    ("flag", "inside"), [("--output-root", "out"), ("--serving-dir", "serving")]
)
def test_an_unwritable_output_folder_is_one_line_naming_the_flag(tmp_path, flag, inside):
    """A read-only file system (root ignores permissions, so a read-only bind mount, in a
    mount namespace of its own); checked before the run starts."""
    locked = tmp_path / "locked"
    locked.mkdir()
    if not _read_only_mount_works(locked):
        pytest.skip("needs `unshare -m` and mount, to make a read-only file system")
    data = tmp_path / "data"
    write_demo_dataset(data, per_class=2)
    output_root = locked if flag == "--output-root" else tmp_path / "writable"
    command = [
        *(Path(sys.executable).parent / "alexnet-tfx", "run", "--preset", "tiny", "--data", data),
        *("--output-root", output_root),
        *([flag, locked / inside] if flag != "--output-root" else []),
    ]
    script = 'mount --bind {0} {0} && mount -o remount,ro,bind {0} {0} && exec "$@"'
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script.format(locked), "sh", *map(str, command)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: {flag} {locked}") and "Read-only file system" in line, line
    assert "choose a folder you can write to" in line
    assert result.stdout == ""  # no run started, no log promised


def test_the_chance_gate_is_on_the_overall_slice_only():
    """Within one true class's slice the largest class is all of it: a gate there would
    refuse every model that misses a single image of that class."""
    from pipelines.eval_config import eval_config

    config = eval_config("label", "serving_examples", "probabilities", 2, 0.9, 0.01, 0.0)
    (metric,) = [
        m
        for spec in config.metrics_specs
        for m in spec.metrics
        if m.class_name == "AccuracyOverChance"
    ]
    (gate,) = metric.per_slice_thresholds
    assert list(gate.slicing_specs) == [type(gate.slicing_specs[0])()]
    assert gate.threshold.value_threshold.lower_bound.value > 0
    assert not metric.HasField("threshold")
    off = eval_config("label", "serving_examples", "probabilities", 2, 0.9, 0.01, -1.0)
    assert not any(
        m.per_slice_thresholds
        for s in off.metrics_specs
        for m in s.metrics
        if m.class_name == "AccuracyOverChance"
    )
