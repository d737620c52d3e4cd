"""Errors of the model package."""

from __future__ import annotations

from ichkit.errors import IchkitError

__all__ = ["CheckpointMismatchError", "DatasetError", "ModelError"]


class ModelError(IchkitError):
    """A model file (checkpoint or ONNX) cannot be used."""


class CheckpointMismatchError(ModelError):
    """A model was made for another label order, window set or input size."""


class DatasetError(IchkitError):
    """A training or evaluation dataset cannot be found or used."""
