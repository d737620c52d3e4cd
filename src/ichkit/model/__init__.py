"""Models for ICH on head CT: a 2.5D CNN + bidirectional GRU over each series.

Train with ``ichkit train`` (or ``torchrun -m ichkit.model.train`` for DDP),
evaluate with ``ichkit evaluate``, read new studies with ``ichkit predict``
and export with ``ichkit export-onnx``. Importing this package is light: torch,
MONAI and onnxruntime load when a name that needs them is first used.

Examples
--------
>>> from ichkit.model import load_config, train_model  # doctest: +SKIP
>>> cfg = load_config(preset="demo", overrides=["data=synth-out"])  # doctest: +SKIP
>>> result = train_model(cfg, out="runs/demo")  # doctest: +SKIP
>>> from ichkit.model import predict_studies  # doctest: +SKIP
>>> predict_studies(["study1"], "runs/demo/model.onnx", out_csv="preds.csv")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ichkit.errors import CheckpointMismatchError, DatasetError, ModelError
from ichkit.model.config import PRESETS, TrainConfig, load_config, resolve_windows

if TYPE_CHECKING:
    from ichkit.model._cache import CachedSeries, build_cache
    from ichkit.model._checkpoint import check_compatible, load_checkpoint, model_from_checkpoint
    from ichkit.model._gradcam import gradcam
    from ichkit.model._infer import (
        OnnxPredictor,
        Predictor,
        PredictResult,
        SeriesPrediction,
        TorchPredictor,
        load_predictor,
        predict_series,
        predict_studies,
    )
    from ichkit.model._onnx import export_onnx, read_onnx_meta
    from ichkit.model._preprocess import CropBox, head_box, preprocess_volume
    from ichkit.model._report import EvaluationResult, evaluate_model
    from ichkit.model._train import TrainResult, train_model
    from ichkit.model.networks import ENCODERS, SeriesModel, build_model

__all__ = [
    "ENCODERS",
    "PRESETS",
    "CachedSeries",
    "CheckpointMismatchError",
    "CropBox",
    "DatasetError",
    "EvaluationResult",
    "ModelError",
    "OnnxPredictor",
    "PredictResult",
    "Predictor",
    "SeriesModel",
    "SeriesPrediction",
    "TorchPredictor",
    "TrainConfig",
    "TrainResult",
    "build_cache",
    "build_model",
    "check_compatible",
    "evaluate_model",
    "export_onnx",
    "gradcam",
    "head_box",
    "load_checkpoint",
    "load_config",
    "load_predictor",
    "model_from_checkpoint",
    "predict_series",
    "predict_studies",
    "preprocess_volume",
    "read_onnx_meta",
    "resolve_windows",
    "train_model",
]

_LAZY = {
    "CachedSeries": "_cache",
    "build_cache": "_cache",
    "check_compatible": "_checkpoint",
    "load_checkpoint": "_checkpoint",
    "model_from_checkpoint": "_checkpoint",
    "gradcam": "_gradcam",
    "OnnxPredictor": "_infer",
    "PredictResult": "_infer",
    "Predictor": "_infer",
    "SeriesPrediction": "_infer",
    "TorchPredictor": "_infer",
    "load_predictor": "_infer",
    "predict_series": "_infer",
    "predict_studies": "_infer",
    "export_onnx": "_onnx",
    "read_onnx_meta": "_onnx",
    "CropBox": "_preprocess",
    "head_box": "_preprocess",
    "preprocess_volume": "_preprocess",
    "EvaluationResult": "_report",
    "evaluate_model": "_report",
    "TrainResult": "_train",
    "train_model": "_train",
    "ENCODERS": "networks",
    "SeriesModel": "networks",
    "build_model": "networks",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
