from pathlib import Path

import pytest
import yaml

from pipelines.core.config import ConfigError, flatten, load_config, to_dict
from pipelines.segmentation.config import SegmentationConfig


def test_defaults_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "train:\n  epochs: 7\n  schedule:\n    name: exponential\nmodel:\n  units: 16\n"
    )
    config = load_config(
        SegmentationConfig, path, ["train.epochs=9", "model.cell=gru", "train.learning_rate=1e-2"]
    )
    assert config.train.epochs == 9
    assert config.train.schedule.name == "exponential"
    assert config.model.units == 16
    assert config.model.cell == "gru"
    assert config.train.learning_rate == pytest.approx(0.01)
    assert config.data.normalise is True  # untouched default


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'model.unitz'"):
        load_config(SegmentationConfig, None, ["model.unitz=3"])


def test_unknown_key_in_yaml_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'train.epochz'"):
        load_config(SegmentationConfig, path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epochs=three", "train.epochs: expected an integer"),
        ("train.epochs=1.5", "train.epochs: expected an integer"),
        ("data.normalise=maybe", "data.normalise: expected true or false"),
        ("train.learning_rate=fast", "train.learning_rate: expected a number"),
        ("train=3", "train: expected a mapping"),
        (
            "train.mixed_precision=float16",
            "train.mixed_precision: 'float16' is not one of 'none', 'auto'",
        ),
        ("export.mixed_precision=bf16", "export.mixed_precision: 'bf16' is not one of '',"),
        ("train.optimizer=adagrad", "train.optimizer: 'adagrad' is not one of 'adam'"),
        ("train.schedule.name=linear", "train.schedule.name: 'linear' is not one of"),
        ("train.strategy=tpu", "train.strategy: 'tpu' is not one of 'auto'"),
        ("train.verbose=3", "train.verbose: 3 is not one of 'auto', '0', '1', '2'"),
        ("model.cell=rnn", "model.cell: 'rnn' is not one of 'lstm', 'gru'"),
    ],
)
def test_wrong_types_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(SegmentationConfig, None, [override])


@pytest.mark.parametrize(
    "pipeline, override, message",
    [
        ("translation", "serving.beam_stop=early", "serving.beam_stop: 'early' is not one of"),
        ("translation", "model.name=lstm", "model.name: 'lstm' is not one of 'transformer'"),
        ("autoencoder", "model.anomaly_score=psnr", "model.anomaly_score: 'psnr' is not one"),
        ("images", "model.name=resnet21", "model.name: 'resnet21' is not one of 'lenet'"),
        ("speech", "serving.decoder=viterbi", "serving.decoder: 'viterbi' is not one of"),
    ],
)
def test_wrong_choices_are_named(pipeline, override, message):
    from pipelines.core.runner import load_task_config

    with pytest.raises(ConfigError, match=message):
        load_task_config(pipeline, None, [override])


def test_a_number_for_a_string_choice_is_read_as_its_text():
    assert load_config(SegmentationConfig, None, ["train.verbose=2"]).train.verbose == "2"


def test_flatten_for_mlflow_params():
    flat = flatten(to_dict(SegmentationConfig()))
    assert flat["train.schedule.name"] == "constant"
    assert flat["model.cell"] == SegmentationConfig().model.cell
    assert all(not isinstance(v, dict) for v in flat.values())


@pytest.mark.parametrize(
    "path", sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")), ids=lambda p: p.name
)
def test_example_configs_load_into_their_pipeline(path):
    """configs/*.yaml: each names its pipeline, and every key it sets exists in that
    pipeline's typed config with the value written."""
    from pipelines.core.runner import load_task_config

    written = flatten(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert written.get("pipeline"), f"{path.name} does not say which pipeline it is for"
    config = flatten(to_dict(load_task_config(written["pipeline"], str(path), [])))
    assert written and all(config[key] == value for key, value in written.items())


def test_a_recipe_refuses_another_pipeline(tmp_path):
    from pipelines.core.runner import load_task_config

    recipe = tmp_path / "r.yaml"
    recipe.write_text("pipeline: slots\ntrain:\n  epochs: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="for the 'slots' pipeline, not 'segmentation'"):
        load_task_config("segmentation", str(recipe), [])
    assert load_task_config("slots", str(recipe), []).train.epochs == 2
