"""TrainConfig: presets, files, --set overrides, validation messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from ichkit.errors import ConfigError
from ichkit.model import PRESETS, TrainConfig, load_config, resolve_windows
from ichkit.model.config import config_to_toml


def test_presets_load_and_are_frozen() -> None:
    for name in PRESETS:
        cfg = load_config(preset=name)
        assert cfg.preset == name
    cfg = load_config(preset="demo")
    assert (cfg.crop, load_config(preset="rsna").crop, load_config().crop) == (
        "fit",
        "square",
        "square",
    )
    with pytest.raises(AttributeError):
        cfg.epochs = 3  # type: ignore[misc]


def test_file_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "train.toml"
    f.write_text('preset = "tiny"\nepochs = 5\nwindows = ["brain", "40:380"]\n')
    cfg = load_config(f, overrides=["epochs=7", "augment=false", "lr=0.01"])
    assert (cfg.preset, cfg.epochs, cfg.augment, cfg.lr) == ("tiny", 7, False, 0.01)
    assert cfg.encoder == "tiny"
    assert resolve_windows(cfg.windows) == (("brain", 40.0, 80.0), ("40:380", 40.0, 380.0))


def test_toml_round_trip(tmp_path: Path) -> None:
    cfg = load_config(preset="demo", overrides=["windows=brain,subdural", "seed=3"])
    f = tmp_path / "config.toml"
    f.write_text(config_to_toml(cfg))
    assert load_config(f, preset=cfg.preset) == cfg
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("epochz=3", "unknown setting 'epochz'; known settings: preset, data"),
        ("epochs=three", "epochs = 'three' is not an integer"),
        ("augment=maybe", "augment = 'maybe' is not a boolean"),
        ("input_size=50", "input_size is 50; expected a multiple of 8"),
        ("windows=brain,lung", "unknown window 'lung'; expected one of brain"),
        ("windows=40:0", "window '40:0' has width 0; expected > 0"),
        ("precision=int8", "precision is 'int8'; expected one of auto, fp32, bf16, fp16"),
        ("epochs", "override 'epochs' is not key=value"),
        ("tta=rotate", "tta is 'rotate'; expected one of none, lr, flips"),
        ("pool=gem", "pool is 'gem'; expected one of avg, max, avgmax"),
        ("crop=tight", "crop is 'tight'; expected one of square, fit"),
        ("grad_clip=-1", "grad_clip is -1.0; expected >= 0"),
        ("grad_clip=nan", "grad_clip is nan; expected a finite number"),
        ("lr=inf", "lr is inf; expected a finite number"),
        ("weight_decay=-5", "weight_decay is -5.0; expected >= 0"),
        ("warmup_fraction=7", "warmup_fraction is 7.0; expected in .0, 1."),
        ("exam_loss_weight=-1", "exam_loss_weight is -1.0; expected >= 0"),
    ],
)
def test_bad_settings_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(preset="tiny", overrides=[override])


def test_wrong_types_in_a_file_are_named(tmp_path: Path) -> None:
    f = tmp_path / "t.json"
    f.write_text('{"epochs": null}')
    with pytest.raises(ConfigError, match=r"t\.json: epochs: epochs = None is not an integer"):
        load_config(f)
    f.write_text('{"windows": 3}')
    with pytest.raises(ConfigError, match=r"windows = 3 is not a list"):
        load_config(f)


def test_a_config_built_in_python_reads_back(tmp_path: Path) -> None:
    """A run started with TrainConfig(...) writes preset = "custom"; that file loads."""
    cfg = TrainConfig(epochs=3, hidden=24, encoder="tiny")
    f = tmp_path / "config.toml"
    f.write_text(config_to_toml(cfg))
    assert load_config(f) == cfg


def test_unknown_preset_lists_choices() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'huge'; expected one of default, tiny"):
        load_config(preset="huge")


def test_bad_file_is_named(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("epochs = [\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid toml"):
        load_config(f)
