"""Checkpoints: weights plus everything needed to use them safely.

A checkpoint (``torch.save`` of a plain dict, loaded with ``weights_only=True``)
holds the model weights, the resolved :class:`TrainConfig`, the label order,
the windows, the input size, the training data's slice spacing, the ichkit
version and the epoch's metrics; the
``last.ckpt`` of a run also holds the optimiser and schedule for resuming.
Loading checks the label order, window set and input size against what the
caller expects and names the one that differs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ichkit.errors import CheckpointMismatchError, ModelError
from ichkit.labels import LABELS
from ichkit.model.config import TrainConfig, resolve_windows

if TYPE_CHECKING:  # torch is imported where it is used: the ONNX path runs without it
    import torch

    from ichkit.model.networks import SeriesModel

__all__ = [
    "CHECKPOINT_FORMAT",
    "check_compatible",
    "load_checkpoint",
    "model_crop",
    "model_from_checkpoint",
    "model_meta",
    "save_checkpoint",
]

#: Format tag stored in every checkpoint and ONNX export.
CHECKPOINT_FORMAT = "ichkit-series-model/1"


def model_meta(cfg: TrainConfig) -> dict[str, Any]:
    """What a model file records about its inputs and outputs."""
    from ichkit import __version__

    return {
        "format": CHECKPOINT_FORMAT,
        "ichkit_version": __version__,
        "labels": list(LABELS),
        "windows": [[name, c, w] for name, c, w in resolve_windows(cfg.windows)],
        "input_size": cfg.input_size,
        "crop": cfg.crop,
        "context": cfg.context,
        "encoder": cfg.encoder,
    }


def model_crop(meta: Mapping[str, Any]) -> str:
    """The head crop a model file records; ``square`` for files that predate the choice."""
    return str(meta.get("crop") or "square")


def _fmt_windows(windows: Sequence[Sequence[Any]]) -> str:
    return ", ".join(f"{n} {float(c):g}/{float(w):g}" for n, c, w in windows)


def check_compatible(
    meta: Mapping[str, Any],
    *,
    source: str | os.PathLike[str],
    labels: Sequence[str] = LABELS,
    windows: Sequence[Sequence[Any]] | None = None,
    input_size: int | None = None,
    crop: str | None = None,
) -> None:
    """Raise if a model was made for another label order, window set, input size or crop.

    Parameters
    ----------
    meta
        The model's record (:func:`model_meta`, or ONNX metadata).
    source
        The model file, for the message.
    labels
        The label order expected (default: this ichkit's :data:`~ichkit.labels.LABELS`).
    windows
        (name, center, width) expected; None = not checked. Compared by
        center and width.
    input_size
        Pixels expected; None = not checked.
    crop
        Head crop expected (``square`` or ``fit``); None = not checked.

    Raises
    ------
    CheckpointMismatchError
        The message says which of them differs, with both values.
    """
    have_labels = [str(x) for x in meta.get("labels", [])]
    if have_labels != list(labels):
        raise CheckpointMismatchError(
            f"label order differs: the model has ({', '.join(have_labels)}); "
            f"expected ({', '.join(labels)})",
            path=source,
            field="labels",
            value=have_labels,
        )
    if windows is not None:
        have = [(float(c), float(w)) for _, c, w in meta.get("windows", [])]
        want = [(float(c), float(w)) for _, c, w in windows]
        if have != want:
            raise CheckpointMismatchError(
                f"window set differs: the model has ({_fmt_windows(meta.get('windows', []))}); "
                f"expected ({_fmt_windows(windows)})",
                path=source,
                field="windows",
                value=meta.get("windows"),
            )
    if input_size is not None and int(meta.get("input_size", -1)) != int(input_size):
        raise CheckpointMismatchError(
            f"input size differs: the model has {meta.get('input_size')} px; "
            f"expected {input_size} px",
            path=source,
            field="input_size",
            value=meta.get("input_size"),
        )
    if crop is not None and model_crop(meta) != crop:
        raise CheckpointMismatchError(
            f"head crop differs: the model has {model_crop(meta)!r}; expected {crop!r}",
            path=source,
            field="crop",
            value=model_crop(meta),
        )


def save_checkpoint(
    path: str | os.PathLike[str],
    model: torch.nn.Module,
    cfg: TrainConfig,
    *,
    epoch: int,
    metrics: Mapping[str, float],
    state: Mapping[str, Any] | None = None,
    slice_mm: float | None = None,
) -> Path:
    """Write a checkpoint atomically.

    Parameters
    ----------
    model
        The (unwrapped) model.
    state
        Extra resumable state (optimiser, schedule, best score).
    slice_mm
        The median slice spacing of the training series (mm): ``ichkit
        predict`` reads much thinner series as slabs of this thickness.
    """
    import torch

    from ichkit._atomic import atomic_open

    payload: dict[str, Any] = {
        **model_meta(cfg),
        "config": cfg.to_dict(),
        "epoch": epoch,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "slice_mm": slice_mm,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if state is not None:
        payload["train_state"] = dict(state)
    target = Path(path)
    with atomic_open(target, "wb") as handle:
        torch.save(payload, handle)
    return target


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint (safely: tensors and plain Python values only).

    Raises
    ------
    ModelError
        Not found, not a checkpoint, or not an ichkit series model.
    """
    import torch

    p = Path(path)
    if p.is_dir():
        p = p / "best.ckpt"
    if not p.is_file():
        raise ModelError("checkpoint not found", path=p, field="checkpoint")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a bad file
        raise ModelError(f"not a readable checkpoint: {err}", path=p) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ModelError(
            f"not an ichkit series-model checkpoint (format {found!r}; expected "
            f"{CHECKPOINT_FORMAT!r})",
            path=p,
            field="format",
            value=found,
        )
    payload["path"] = os.fspath(p)
    return payload


def model_from_checkpoint(
    path: str | os.PathLike[str],
    *,
    windows: Sequence[Sequence[Any]] | None = None,
    input_size: int | None = None,
) -> tuple[SeriesModel, TrainConfig, dict[str, Any]]:
    """Rebuild the model of a checkpoint, in eval mode.

    Parameters
    ----------
    path
        A ``.ckpt`` file or a run folder (its ``best.ckpt``).
    windows, input_size
        Expected values, checked by :func:`check_compatible`.

    Returns
    -------
    (SeriesModel, TrainConfig, dict)
        The model, its configuration and the checkpoint dict.
    """
    from ichkit.model.networks import build_model

    payload = load_checkpoint(path)
    source = payload["path"]
    check_compatible(payload, source=source, windows=windows, input_size=input_size)
    cfg = TrainConfig.from_dict(payload["config"], source=source)
    model = build_model(cfg)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ModelError(
            f"weights do not fit the {cfg.encoder!r} model: {err}",
            path=source,
            field="state_dict",
        ) from err
    model.eval()
    return model, cfg, payload
