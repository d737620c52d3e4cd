"""SynthConfig: validation (errors name the option and value) and JSON round trip."""

from __future__ import annotations

import json

import pytest

from ichkit.errors import ConfigError
from ichkit.synth import RSNA_SUBTYPE_WEIGHTS, SynthConfig


def test_defaults_follow_rsna() -> None:
    cfg = SynthConfig()
    assert cfg.prevalence == 0.4  # about 40% of RSNA exams hold a hemorrhage
    assert cfg.sites == 3
    assert cfg.subtype_weights == RSNA_SUBTYPE_WEIGHTS
    # epidural rarest, subdural most frequent (RSNA stage-1 image counts)
    assert min(cfg.subtype_weights) == cfg.subtype_weights[0]
    assert max(cfg.subtype_weights) == cfg.subtype_weights[4]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"exams": 0}, r"--exams: must be an integer from 1 to 1000000; got 0"),
        ({"size": 16}, r"--size: must be an integer from 32 to 2048; got 16"),
        ({"slices": 1}, r"--slices: must be an integer from 2 to 1000; got 1"),
        ({"sites": 0}, r"--sites: must be an integer from 1 to 99; got 0"),
        ({"prevalence": 1.5}, r"--prevalence: must lie in \[0, 1\]; got 1.5"),
        ({"slice_thickness": 0.1}, r"--thickness: must be between 0.5 and 20 mm; got 0.1"),
        ({"subtype_weights": (1.0, 2.0)}, r"subtype_weights: must be 5 non-negative numbers"),
        ({"exams": True}, r"--exams: must be an integer"),
    ],
)
def test_invalid_settings_name_option_and_value(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SynthConfig(**kwargs)  # type: ignore[arg-type]


def test_json_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = SynthConfig(exams=3, seed=9, size=96, slices=10, masks=True)
    path = tmp_path / "synth-config.json"
    path.write_text(cfg.to_json(), encoding="utf-8")
    assert SynthConfig.read(path) == cfg
    assert json.loads(cfg.to_json())["subtype_weights"] == list(RSNA_SUBTYPE_WEIGHTS)


def test_unknown_key_is_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.json"
    path.write_text('{"exams": 2, "colour": "red"}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c.json: colour: unknown synth setting\(s\) colour"):
        SynthConfig.read(path)


def test_config_is_frozen() -> None:
    cfg = SynthConfig()
    with pytest.raises(AttributeError):
        cfg.exams = 5  # type: ignore[misc]
