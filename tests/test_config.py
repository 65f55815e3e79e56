"""The typed configuration: presets, YAML file, overrides and field-naming errors."""

import pytest

from pipelines.config import ConfigError, PipelineConfig, build_config


def test_demo_is_the_default_and_canonical():
    config = build_config()
    assert config.preset == "demo"
    assert (config.image_size, config.width_multiplier) == (227, 1.0)


def test_tiny_and_imagenet_presets():
    tiny = build_config("tiny")
    assert tiny.image_size == 67 and tiny.width_multiplier == 0.125
    imagenet = build_config("imagenet")
    assert imagenet.num_classes == 1000 and imagenet.epochs == 90


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
    path.write_text("preset: tiny\nbatch_size: 8\nlearning_rate: 1\nepochs: 3\n")
    config = build_config(config_file=str(path), epochs=5)
    assert config.preset == "tiny"
    assert config.image_size == 67  # from the preset
    assert config.batch_size == 8  # from the file
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert config.epochs == 5  # the flag wins
    assert build_config("demo", config_file=str(path)).image_size == 227


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("batch_sise: 8\n", "unknown field\\(s\\) batch_sise"),
        ("batch_size: eight\n", "batch_size: expected int"),
        ("- a list\n", "must hold a mapping"),
        ("image_size: [\n", "not valid YAML"),
        ("preset: huge\n", "preset: unknown preset 'huge'"),
    ],
)
def test_bad_yaml_names_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        build_config(config_file=str(path))


def test_missing_config_file():
    with pytest.raises(ConfigError, match="does-not-exist.yaml does not exist"):
        build_config(config_file="does-not-exist.yaml")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(image_size=64), "image_size:"),
        (dict(num_classes=1), "num_classes:"),
        (dict(batch_size=0), "batch_size:"),
        (dict(data_format="csv"), "data_format:"),
        (dict(eval_fraction=1.5), "eval_fraction:"),
    ],
)
def test_invalid_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        build_config("tiny", **overrides)


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="image_size"):
        PipelineConfig(image_size=10)
