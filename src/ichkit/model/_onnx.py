"""ONNX export of the whole series model, with a dynamic slice axis.

The graph takes ``hu`` (1, slices, size, size) float32 HU (cropped and
resized by :func:`ichkit.model.preprocess_volume`) and returns
``image_logits`` (1, slices, 6) and ``exam_logits`` (1, 6). Windowing and
neighbour stacking are inside the graph. The model's record (label order,
windows, input size, ichkit version, configuration) is stored in the ONNX
``metadata_props`` so that a mismatch can be detected without the checkpoint.
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ichkit.errors import ModelError

__all__ = ["export_onnx", "read_onnx_meta"]

logger = logging.getLogger(__name__)

#: Largest |ONNX - PyTorch| difference of probabilities accepted after export.
TOLERANCE = 1e-4


def export_onnx(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    opset: int = 17,
    verify: bool = True,
) -> Path:
    """Export a checkpoint to ONNX (atomically) and check it against PyTorch.

    Parameters
    ----------
    checkpoint
        A ``.ckpt`` file or run folder.
    out
        The ``.onnx`` file to write.
    opset
        ONNX opset.
    verify
        Run both on two random series (different lengths) and require equal
        probabilities within :data:`TOLERANCE`.

    Raises
    ------
    ModelError
        The export fails or its outputs differ from PyTorch.
    """
    import onnx
    import torch

    from ichkit._atomic import atomic_write_bytes
    from ichkit.model._checkpoint import model_from_checkpoint

    if Path(out).is_dir():
        raise ModelError(
            "is a folder; expected the .onnx file to write", path=out, field="OUT", value=str(out)
        )
    model, cfg, payload = model_from_checkpoint(checkpoint)
    model.channels_last = False
    model.encoder.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    size = cfg.input_size
    example = torch.full((1, 6, size, size), 30.0)
    buffer = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        # The TorchScript exporter (no onnxscript needed) warns that it is
        # deprecated and that the GRU is exported for batch size 1: expected.
        warnings.simplefilter("always")
        try:
            torch.onnx.export(
                model,
                (example,),
                buffer,  # type: ignore[arg-type]
                input_names=["hu"],
                output_names=["image_logits", "exam_logits"],
                dynamic_axes={"hu": {1: "slices"}, "image_logits": {1: "slices"}},
                opset_version=opset,
                dynamo=False,
            )
        except Exception as err:  # the exporter raises many kinds; name the checkpoint
            raise ModelError(
                f"ONNX export (opset {opset}) failed: {type(err).__name__}: {err}",
                path=checkpoint,
                field="onnx",
            ) from err
    for w in caught:
        logger.debug("onnx export: %s", w.message)
    proto = onnx.load_from_string(buffer.getvalue())
    meta: dict[str, Any] = {
        k: payload[k]
        for k in (
            "format",
            "ichkit_version",
            "labels",
            "windows",
            "input_size",
            "crop",
            "context",
            "encoder",
        )
        if k in payload
    }
    meta["config"] = payload["config"]
    meta["epoch"] = payload.get("epoch")
    meta["slice_mm"] = payload.get("slice_mm")
    onnx.helper.set_model_props(proto, {k: json.dumps(v) for k, v in meta.items()})
    data = proto.SerializeToString()
    if verify:
        _verify(model, data, size, checkpoint)
    atomic_write_bytes(out, data)
    logger.info("wrote %s (%.1f MB)", out, len(data) / 1e6)
    return Path(out)


def _verify(model: Any, data: bytes, size: int, source: str | os.PathLike[str]) -> None:
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for slices in (5, 11):
        hu = rng.normal(20, 300, size=(1, slices, size, size)).astype(np.float32)
        got = session.run(None, {"hu": hu})
        with torch.no_grad():
            ref = model(torch.from_numpy(hu))
        for g, r in zip(got, ref, strict=True):
            p_onnx = 1 / (1 + np.exp(-g.astype(np.float64)))
            p_torch = torch.sigmoid(r.double()).numpy()
            worst = max(worst, float(np.abs(p_onnx - p_torch).max()))
    if worst > TOLERANCE:
        raise ModelError(
            f"ONNX outputs differ from PyTorch by {worst:.2e} > {TOLERANCE:g}",
            path=source,
            field="onnx",
            value=worst,
        )
    logger.debug("onnx export verified: max |dp| = %.2e", worst)


def read_onnx_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model record stored in an ichkit ONNX file's metadata_props.

    Raises
    ------
    ModelError
        The file is not an ichkit ONNX export.
    """
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ModelError(f"not a readable ONNX model: {err}", path=path) from err
    props = session.get_modelmeta().custom_metadata_map
    return _parse_meta(props, path)


def _parse_meta(props: dict[str, str], path: str | os.PathLike[str]) -> dict[str, Any]:
    from ichkit.model._checkpoint import CHECKPOINT_FORMAT

    try:
        meta = {k: json.loads(v) for k, v in props.items()}
    except ValueError as err:
        raise ModelError(f"unreadable metadata_props: {err}", path=path) from err
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(
            f"not an ichkit series-model ONNX file (metadata format {meta.get('format')!r}; "
            f"expected {CHECKPOINT_FORMAT!r})",
            path=path,
            field="metadata_props",
            value=meta.get("format"),
        )
    return meta
