"""murallab.train.config: YAML presets as people write them, and one-line errors for the ways they go wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from murallab.nn import PConvUNet
from murallab.train import load_config
from murallab._yaml import YAMLLoader, load_yaml

PRESET = """\
model: {name: PConvUNet, layers: 2, base: 4}
loss: {name: PConvLoss, perceptual: 0.0, style: 0.0, weights: null}
data: {patch_size: 32, patches_per_image: 4, n_murals: 4, mural_size: 96, val_fraction: 0.25}
train: {batch_size: 4, seed: 0, progress_bar: false}
phases:
  - {name: a, train: all, lr: LR, epochs: 1}
"""


def write(tmp_path, text: str, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- YAML numbers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["1e-3", "1E5", "1e3", "-2e-4", "+1e3", "2.5e3", "1.e-2", ".5", "-.5", "+.25",
                                  "1.0e-3", "3.", "-0.0"])
def test_numbers_as_people_write_them_are_floats(text):
    """Every YAML 1.2 float reads as Python's float() of the same text (PyYAML alone returns '1e-3' as a str)."""
    value = yaml.load(f"x: {text}", Loader=YAMLLoader)["x"]
    assert type(value) is float and value == float(text)


@pytest.mark.parametrize("text,expected", [("3", 3), ("-7", -7), ("0", 0), ("1_000", 1000), ("0x1F", 31),
                                           ("1e", "1e"), ("e3", "e3"), ("1e-", "1e-"), ("1.2.3", "1.2.3"),
                                           (".", "."), ("1e-3x", "1e-3x"), ("'1e-3'", "1e-3"), ("null", None),
                                           ("true", True), (".inf", float("inf"))])
def test_integers_strings_and_the_rest_are_unchanged(text, expected):
    value = yaml.load(f"x: {text}", Loader=YAMLLoader)["x"]
    assert value == expected and type(value) is type(expected)


def test_a_preset_with_lr_1e_minus_3_loads(tmp_path):
    """`lr: 1e-3` (which YAML 1.1 reads as a string) reaches Phase as the float 0.001."""
    cfg = load_config(write(tmp_path, PRESET.replace("LR", "1e-3")))
    assert cfg["phases"][0]["lr"] == 0.001 and type(cfg["phases"][0]["lr"]) is float
    cfg = load_config(write(tmp_path, PRESET.replace("LR", "5E-4").replace("epochs: 1", "epochs: 2")))
    assert cfg["phases"][0]["lr"] == 5e-4 and cfg["phases"][0]["epochs"] == 2


def test_a_quoted_number_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"phase setting 'lr' must be a number, got '1e-3' \(a string"):
        load_config(write(tmp_path, PRESET.replace("LR", "'1e-3'")))
    with pytest.raises(ValueError, match=r"train setting 'batch_size' must be an integer, got 8.0"):
        load_config(write(tmp_path, PRESET.replace("LR", "1e-3").replace("batch_size: 4", "batch_size: 8.0")))


# --- malformed YAML ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,line,words", [
    ("model:\n\tname: PConvUNet\nloss: {name: PConvLoss}\n", 2, "tabs"),                    # a tab indents
    ("model: {name: PConvUNet, base: 8\nloss: {name: PConvLoss}\n", 2, "expected ',' or '}'"),  # unclosed {
    ("phases:\n  - [a, b\n", 3, "expected ',' or ']'"),                                     # unclosed [
    ("model: {name: PConvUNet}\n  loss: x\n", 2, "expected <block end>"),                   # bad indentation
])
def test_malformed_yaml_is_one_line_naming_the_file_and_line(tmp_path, text, line, words):
    path = write(tmp_path, text, "broken.yaml")
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}, line {line}, column ") and "not valid YAML" in message
    assert words in message


def test_yaml_that_is_not_a_mapping_or_not_text(tmp_path):
    with pytest.raises(ValueError, match=r"lst\.yaml holds a list; expected a mapping of sections"):
        load_config(write(tmp_path, "- model\n- loss\n", "lst.yaml"))
    binary = tmp_path / "model.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ValueError, match=r"model\.yaml is not a UTF-8 text file"):
        load_yaml(binary)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


# --- model and loss arguments ------------------------------------------------------------------------------

def test_an_unknown_model_argument_names_it_and_the_accepted_ones(tmp_path):
    """`bass: 3` is refused by load_config with a ValueError naming the key and the accepted ones, not a TypeError
    from PConvUNet.__init__() in build_run."""
    text = PRESET.replace("LR", "1e-3").replace("base: 4}", "base: 4, bass: 3}")
    with pytest.raises(ValueError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "model PConvUNet does not take 'bass'" in message
    import inspect
    for name in inspect.signature(PConvUNet).parameters:  # the accepted ones, from the class itself
        assert name in message


@pytest.mark.parametrize("section,spec,match", [
    ("model", {"name": "PConvUNet", "layers": 2, "bass": 3}, r"model PConvUNet does not take 'bass'.* base"),
    ("model", {"name": "UNet", "base": 4, "depth": 3}, r"model UNet does not take 'depth'"),
    ("model", {"name": "DualDecoderUNet", "layers": 3}, r"model DualDecoderUNet does not take 'layers'.*depth"),
    ("model", {"name": "PConvNet"}, r"unknown model 'PConvNet'; choose one of .*PConvUNet"),
    ("model", {"layers": 2}, r"'model' section must be a mapping with a 'name'"),
    ("model", "PConvUNet", r"'model' section must be a mapping with a 'name'"),
    ("loss", {"name": "PConvLoss", "hole_weight": 6}, r"loss PConvLoss does not take 'hole_weight'.* hole"),
    ("loss", {"name": "MSESSIMLoss", "l1": 1.0}, r"loss MSESSIMLoss does not take 'l1'; its arguments are mse"),
    ("loss", {"name": "L1"}, r"unknown loss 'L1'"),
])
def test_bad_model_and_loss_sections_fail_at_load_time(section, spec, match):
    cfg = {"model": {"name": "PConvUNet", "layers": 2, "base": 4}, "loss": {"name": "PConvLoss"},
           "phases": [{"name": "a", "lr": 1e-3, "epochs": 1}]}
    cfg[section] = spec
    with pytest.raises(ValueError, match=match):
        load_config(cfg)


def test_good_model_and_loss_arguments_pass():
    cfg = load_config({"model": {"name": "PConvUNet", "layers": 3, "base": 8, "upsample": "bilinear"},
                       "loss": {"name": "MuralLoss", "l1": 1.0, "weights": None},
                       "phases": [{"name": "a", "lr": 1e-3, "epochs": 1}]})
    assert cfg["model"] == {"name": "PConvUNet", "layers": 3, "base": 8, "upsample": "bilinear"}


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_preset_loads_and_builds_its_network(path):
    """A typo in a preset (an unknown key, an argument the model does not take) fails here, not in a user's run."""
    from murallab.models import build_model

    cfg = load_config(path)
    spec = dict(cfg["model"])
    model = build_model(spec.pop("name"), **spec)
    assert sum(p.numel() for p in model.parameters()) > 1000
