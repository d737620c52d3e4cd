"""The training configuration: one frozen :class:`TrainConfig`, presets, files and overrides.

A configuration is built from a preset (:data:`PRESETS`), then a TOML or JSON
file, then ``key=value`` overrides (the CLI's ``--set``), each layer replacing
the fields it names. The resolved configuration is saved in every run folder
(``config.toml``) and inside every checkpoint.

This module imports neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ichkit.errors import ConfigError

__all__ = [
    "CROPS",
    "POOLS",
    "PRESETS",
    "TTA_VIEWS",
    "WINDOW_PRESETS",
    "TrainConfig",
    "config_to_toml",
    "load_config",
    "resolve_windows",
]

#: Window presets usable by name in ``TrainConfig.windows`` (center, width in HU).
#: Same values as :data:`ichkit.dicom.WINDOWS`; repeated here so that reading a
#: configuration does not import numpy.
WINDOW_PRESETS: Mapping[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "soft_tissue": (40.0, 380.0),
    "bone": (600.0, 2800.0),
}

#: Global pooling of the slice encoder's feature map (``TrainConfig.pool``).
POOLS = ("avg", "max", "avgmax")

#: Head crops (``TrainConfig.crop``): see :mod:`ichkit.model._preprocess`.
CROPS = ("square", "fit")

#: Test-time augmentation settings (``TrainConfig.tta``) and the views each one
#: predicts, as (left-right, front-back) mirror flags.
TTA_VIEWS: Mapping[str, tuple[tuple[bool, bool], ...]] = {
    "none": ((False, False),),
    "lr": ((False, False), (True, False)),
    "flips": ((False, False), (True, False), (False, True), (True, True)),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (saved with every checkpoint).

    Parameters
    ----------
    preset
        Name of the preset this configuration started from (informative).
    data
        Dataset folder: a ``ichkit synth`` output (``truth.csv`` + ``dicom/``) or
        an RSNA Kaggle layout (``stage_2_train.csv`` + ``stage_2_train/``).
    labels, images
        Override the labels CSV and the DICOM folder found in ``data``.
    split_file
        Optional CSV assigning exams to splits (columns ``split`` or ``subset``
        and one of ``series_instance_uid``, ``study_instance_uid``,
        ``patient_id``; an ``ichkit export``'s ``exams.csv`` works as is); by
        default patients are split by a seeded hash (``val_fraction``,
        ``test_fraction``), so no patient is in two splits. Where the dataset
        holds a labelled test set of its own (``stage_2_test/`` +
        ``stage_2_test_truth.csv``), that is the test split.
    patient_disjoint
        Refuse splits that share a patient (``True``, the default): a split
        file whose rows give one patient two splits, or series of one patient
        (the split file's site and patient columns, else the images'
        PatientID, patients sharing a study counted as one) in two splits.
        ``False`` only warns, for data whose PatientIDs are known not to name
        patients.
    cache_dir
        Preprocessing cache folder; empty = ``<out>/cache``.
    encoder
        Slice encoder from :data:`ichkit.model.ENCODERS`.
    pool
        Global pooling of the encoder's last feature map: ``avg``, ``max`` or
        ``avgmax`` (both, concatenated; the embedding doubles).
    norm
        ``batch`` (BatchNorm; statistics over the global batch under DDP) or
        ``group`` (GroupNorm, batch-independent; trains slower here).
    input_size
        Side of the square slice input in pixels (after cropping to the head).
    crop
        How the head's bounding box becomes the square input: ``square`` (the
        box squared, aspect kept) or ``fit`` (the box itself, each axis
        stretched to the input: about 1.3 x the pixels from left to right on a
        typical head, at the same compute). See :mod:`ichkit.model._preprocess`.
    windows
        HU windows stacked as channels: preset names (``brain``, ``subdural``,
        ``soft_tissue``, ``bone``) or ``center:width``.
    context
        Neighbouring slices on each side stacked as extra channels.
    sequence
        Sequence model over the slice embeddings (``gru``).
    hidden
        Hidden size of the sequence model (per direction).
    epochs, batch_exams, lr, weight_decay, warmup_fraction
        Optimisation: AdamW, one-cycle cosine schedule; ``batch_exams`` series
        per optimiser step (global, split across DDP processes).
    train_slices
        Train on a random run of at most this many contiguous slices per
        series (0 = whole series).
    exam_loss_weight
        Weight of the exam-level loss beside the image-level loss.
    augment
        Random flips (left-right, front-back), affine, intensity and noise jitter
        (MONAI), seeded.
    seed
        Seeds weights, batch order and augmentation (per exam and epoch, so
        that DDP sees the same data as one process).
    precision
        ``auto`` (bf16 on CPUs with native bf16; on CUDA bf16 AMP where the GPU
        supports it, else fp16; otherwise fp32),
        ``fp32``, ``bf16`` or ``fp16``.
    channels_last, compile
        Memory format of the encoder; ``torch.compile`` the model (end-to-end
        training only: ignored, with a warning, when ``encoder_epochs`` > 0).
    threads
        torch intra-op threads per process (0 = CPU count / processes).
    workers, cache_workers
        DataLoader worker processes that load and augment training series
        (end-to-end batches, or stage 1's chunks of slices) while the model
        trains; 0 = in the training process. Processes building the cache.
    val_fraction, test_fraction, split_seed
        Patient-level split sizes and its seed.
    max_exams
        Use at most this many series (0 = all), for quick trials.
    grad_clip
        Gradient norm clipping (0 = off).
    export_onnx
        Write ``model.onnx`` beside ``best.ckpt`` at the end.
    encoder_epochs
        Two-stage training (the RSNA 2019 winners' recipe) when > 0: first
        this many epochs of the slice encoder alone, on shuffled slices of many
        series (``slice_batch`` slices per step, negatives subsampled to
        ``negative_ratio`` × the positives of each chunk, ``encoder_lr``; 0 =
        ``lr``); then the encoder is frozen, slice embeddings are computed once
        (``embedding_views`` views per series: the plain one and augmented ones)
        and the GRU and heads train ``epochs`` epochs on them. 0 = end-to-end.
    tta
        Test-time augmentation whenever the model predicts in eval mode
        (``ichkit evaluate``, ``ichkit predict``, the ONNX graph, and the
        validation of end-to-end training; two-stage training validates its
        heads on the plain view's embeddings): ``none``; ``lr`` (the series
        and its left-right mirror); ``flips`` (also the front-back mirror and
        both: 4 views). Image and exam logits are averaged over the views; the
        encoder runs once per view.
    subtype_balance
        Stage 1 repeats each positive slice ``(n_max / n_s) ** subtype_balance``
        times (at most 4; fractions drawn at random), where ``n_s`` counts the
        training slices positive for its rarest subtype ``s`` and ``n_max``
        those of the commonest: rare subtypes (epidural: 2 % of RSNA's
        positive images) are seen more often. 0 = off.
    """

    preset: str = "custom"
    data: str = ""
    labels: str = ""
    images: str = ""
    split_file: str = ""
    patient_disjoint: bool = True
    cache_dir: str = ""
    encoder: str = "small"
    norm: str = "batch"
    pool: str = "avg"
    input_size: int = 96
    crop: str = "square"
    windows: tuple[str, ...] = ("brain", "subdural", "bone")
    context: int = 1
    sequence: str = "gru"
    hidden: int = 64
    epochs: int = 8
    batch_exams: int = 4
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    train_slices: int = 0
    exam_loss_weight: float = 1.0
    augment: bool = True
    seed: int = 0
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    threads: int = 0
    workers: int = 0
    cache_workers: int = 2
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    split_seed: int = 0
    max_exams: int = 0
    grad_clip: float = 5.0
    export_onnx: bool = True
    encoder_epochs: int = 0
    slice_batch: int = 64
    encoder_lr: float = 0.0
    negative_ratio: float = 3.0
    embedding_views: int = 2
    subtype_balance: float = 0.0
    tta: str = "none"

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields (tuples as lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping of field names (unknown names are an error)."""
        return _apply(cls(), values, source=source)


def _check(cfg: TrainConfig) -> None:
    def bad(name: str, expected: str) -> ConfigError:
        value = getattr(cfg, name)
        return ConfigError(f"{name} is {value!r}; expected {expected}", field=name, value=value)

    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise bad(f.name, "a finite number")
    if cfg.input_size < 16 or cfg.input_size % 8:
        raise bad("input_size", "a multiple of 8, at least 16")
    if cfg.crop not in CROPS:
        raise bad("crop", "one of " + ", ".join(CROPS))
    if not cfg.windows:
        raise bad("windows", "at least one window")
    resolve_windows(cfg.windows)
    if cfg.context < 0 or cfg.context > 4:
        raise bad("context", "0 to 4")
    for name in ("hidden", "epochs", "batch_exams"):
        if getattr(cfg, name) < 1:
            raise bad(name, "at least 1")
    for name in ("val_fraction", "test_fraction"):
        if not 0.0 <= getattr(cfg, name) < 0.5:
            raise bad(name, "in [0, 0.5)")
    if not cfg.lr > 0:
        raise bad("lr", "> 0")
    if cfg.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise bad("precision", "one of auto, fp32, bf16, fp16")
    if cfg.pool not in POOLS:
        raise bad("pool", "one of " + ", ".join(POOLS))
    if cfg.norm not in ("batch", "group"):
        raise bad("norm", "batch or group")
    if cfg.tta not in TTA_VIEWS:
        raise bad("tta", "one of " + ", ".join(TTA_VIEWS))
    if cfg.sequence not in ("gru",):
        raise bad("sequence", "one of gru")
    for name in ("slice_batch", "embedding_views"):
        if getattr(cfg, name) < 1:
            raise bad(name, "at least 1")
    if not 0.0 <= cfg.subtype_balance <= 1.0:
        raise bad("subtype_balance", "in [0, 1]")
    # a negative grad_clip would flip the gradients (clip_grad_norm_ scales by it)
    for name in ("encoder_lr", "negative_ratio", "weight_decay", "exam_loss_weight", "grad_clip"):
        if getattr(cfg, name) < 0:
            raise bad(name, ">= 0")
    if not 0.0 <= cfg.warmup_fraction <= 1.0:
        raise bad("warmup_fraction", "in [0, 1]")
    for name in ("train_slices", "threads", "workers", "max_exams", "encoder_epochs"):
        if getattr(cfg, name) < 0:
            raise bad(name, ">= 0")
    if cfg.cache_workers < 1:
        raise bad("cache_workers", "at least 1")


def resolve_windows(windows: Iterable[str]) -> tuple[tuple[str, float, float], ...]:
    """Turn window names or ``center:width`` strings into (name, center, width).

    Raises
    ------
    ConfigError
        An unknown name, or a width that is not positive.
    """
    out = []
    for item in windows:
        text = str(item).strip()
        if text in WINDOW_PRESETS:
            center, width = WINDOW_PRESETS[text]
        else:
            try:
                c, w = text.split(":")
                center, width = float(c), float(w)
            except ValueError as err:
                raise ConfigError(
                    f"unknown window {text!r}; expected one of {', '.join(WINDOW_PRESETS)} "
                    "or center:width in HU",
                    field="windows",
                    value=text,
                ) from err
            if not width > 0:
                raise ConfigError(
                    f"window {text!r} has width {width:g}; expected > 0",
                    field="windows",
                    value=text,
                )
        out.append((text, float(center), float(width)))
    return tuple(out)


#: Named starting points. ``demo`` fits the ``make demo`` budget (a few minutes
#: on 2 CPU cores); ``long`` is the longer synthetic preset; ``rsna`` is for the
#: real RSNA data on a GPU; ``tiny`` is for tests.
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "default": {},
    "tiny": {
        "encoder": "tiny",
        "input_size": 32,
        "hidden": 16,
        "epochs": 2,
        "batch_exams": 2,
        "augment": False,
        "cache_workers": 1,
        "threads": 1,
        "export_onnx": False,
    },
    "demo": {
        "encoder": "small-dilated",
        "input_size": 128,
        "crop": "fit",
        "hidden": 64,
        "encoder_epochs": 32,
        "slice_batch": 64,
        "encoder_lr": 2e-3,
        "negative_ratio": 1.5,
        "subtype_balance": 0.5,
        "embedding_views": 2,
        "epochs": 30,
        "batch_exams": 8,
        "lr": 2e-3,
        "exam_loss_weight": 0.3,
        "pool": "avgmax",
        "tta": "flips",
    },
    "long": {
        "encoder": "small",
        "input_size": 128,
        "hidden": 96,
        "encoder_epochs": 60,
        "slice_batch": 64,
        "encoder_lr": 2e-3,
        "negative_ratio": 1.5,
        "subtype_balance": 0.5,
        "embedding_views": 4,
        "epochs": 40,
        "batch_exams": 8,
        "lr": 2e-3,
        "exam_loss_weight": 0.3,
    },
    "rsna": {
        "encoder": "medium",
        "input_size": 256,
        "hidden": 256,
        "epochs": 10,
        "batch_exams": 8,
        "lr": 1e-3,
        "train_slices": 40,
        "pool": "avgmax",
        "tta": "lr",
        "cache_workers": 8,
        "workers": 4,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
    },
}


def _coerce(name: str, raw: Any, kind: Any, source: str) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(
            f"{name} = {raw!r} is not {expected}", path=source, field=name, value=raw
        )

    text = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if text == "bool":
        if isinstance(raw, bool):
            return raw
        lowered = str(raw).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise fail("a boolean (true/false)")
    if text == "int":
        if isinstance(raw, bool):
            raise fail("an integer")
        try:
            return int(raw) if not isinstance(raw, float) or raw.is_integer() else int("x")
        except (TypeError, ValueError, OverflowError) as err:
            raise fail("an integer") from err
    if text == "float":
        try:
            return float(raw)
        except (TypeError, ValueError) as err:
            raise fail("a number") from err
    if text.startswith("tuple"):
        if not isinstance(raw, str | list | tuple):
            raise fail("a list (or a comma-separated string)")
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(str(x).strip() for x in items if str(x).strip())
    if isinstance(raw, str | int | float):
        return str(raw)
    raise fail("a string")


def _apply(base: TrainConfig, values: Mapping[str, Any], *, source: str) -> TrainConfig:
    fields = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        if name not in fields:
            known = ", ".join(fields)
            raise ConfigError(
                f"unknown setting {name!r}; known settings: {known}",
                path=source,
                field=name,
                value=raw,
            )
        changes[name] = _coerce(name, raw, fields[name], source)
    try:
        return dataclasses.replace(base, **changes)
    except ConfigError as err:
        raise ConfigError(err.reason, path=source, field=err.field, value=err.value) from err


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", path=path) from err
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"not valid {path.suffix.lstrip('.') or 'TOML'}: {err}", path=path
        ) from err
    if not isinstance(data, dict):
        raise ConfigError("expected a table of settings", path=path, value=type(data).__name__)
    if isinstance(data.get("train"), dict):  # accept a [train] table
        data = data["train"]
    return dict(data)


def load_config(
    file: str | os.PathLike[str] | None = None,
    *,
    preset: str | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
) -> TrainConfig:
    """Build a :class:`TrainConfig` from a preset, a file and overrides.

    Parameters
    ----------
    file
        A TOML (or ``.json``) file of settings; a ``[train]`` table is accepted.
        It may name its own ``preset``.
    preset
        A key of :data:`PRESETS`; wins over the file's ``preset``.
    overrides
        ``key=value`` strings (or a mapping), applied last.

    Raises
    ------
    ConfigError
        An unknown preset or setting, or a value of the wrong type or range;
        the message names the file and the setting.
    """
    file_values: dict[str, Any] = {}
    source = "config"
    if file is not None:
        source = os.fspath(file)
        file_values = _read_file(Path(file))
    name = preset or str(file_values.pop("preset", "") or "default")
    file_values.pop("preset", None)
    # "custom": a TrainConfig built in Python (its config.toml names every setting)
    if name not in PRESETS and name != "custom":
        raise ConfigError(
            f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}",
            field="preset",
            value=name,
        )
    cfg = _apply(TrainConfig(), dict(PRESETS.get(name, {})), source=f"preset {name}")
    cfg = dataclasses.replace(cfg, preset=name)
    cfg = _apply(cfg, file_values, source=source)
    if isinstance(overrides, Mapping):
        pairs = dict(overrides)
    else:
        pairs = {}
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"override {item!r} is not key=value", field="--set", value=item)
            pairs[key.strip()] = value.strip()
    return _apply(cfg, pairs, source="--set")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def config_to_toml(cfg: TrainConfig) -> str:
    """The configuration as a TOML document that :func:`load_config` reads back."""
    lines = ["# ichkit training configuration (resolved)"]
    for f in dataclasses.fields(cfg):
        lines.append(f"{f.name} = {_toml_value(getattr(cfg, f.name))}")
    return "\n".join(lines) + "\n"
