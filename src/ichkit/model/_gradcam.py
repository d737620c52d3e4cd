"""Grad-CAM style heatmaps of the ``any`` logit, drawn over the brain window.

For each positive slice (``any`` ≥ threshold) the gradient of that slice's
``any`` logit weights an encoder feature map: by default LayerCAM (each
position of the stride-4 map by its own positive gradient; Jiang et al., IEEE
TIP 2021), or classic Grad-CAM (the last map's channels by their mean
gradient; Selvaraju et al., ICCV 2017). The result is upsampled, placed back
into the original image through the crop box, and drawn over the brain window
(40/80 HU). Hemorrhage is intracranial, so the map is kept inside the cranial
cavity (:func:`intracranial_mask`): where the map is coarse (Grad-CAM: a
4 × 4 map at 128 px) an extra-axial collection otherwise lights up the skull
beside it. With synthetic lesion masks, the fraction of heatmap peaks that
fall inside a lesion is reported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ichkit._atomic import atomic_save_figure
from ichkit.errors import ModelError
from ichkit.model._preprocess import CropBox, preprocess_volume
from ichkit.model._slabs import slab_mean

__all__ = ["HeatmapWriter", "gradcam", "intracranial_mask", "to_original"]

logger = logging.getLogger(__name__)


def gradcam(
    model: Any,
    hu: npt.NDArray[np.generic],
    slices: Sequence[int],
    *,
    label: int = -1,
    method: str = "layercam",
) -> npt.NDArray[np.float32]:
    """Class-activation maps (len(slices), size, size) in [0, 1] for one preprocessed series.

    Parameters
    ----------
    model
        A :class:`ichkit.model.SeriesModel` (eval mode).
    hu
        (S, size, size) HU as fed to the model.
    slices
        Slice indices to explain.
    label
        Output index (default ``any``).
    method
        ``layercam`` (default; Jiang et al., IEEE TIP 2021): each position of
        the encoder's last stride-4 feature map weighted by its own positive
        gradient, which keeps a 4-pixel resolution; or ``gradcam`` (Selvaraju
        et al., ICCV 2017): the last feature map's channels weighted by their
        mean gradient (coarse: 4 × 4 at 128 px). On synthetic exams the
        LayerCAM peak lies a median of 1 pixel from the lesion, Grad-CAM's 15
        (``benchmarks/RESULTS.md``).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    if method not in ("layercam", "gradcam"):
        raise ValueError(f"unknown method {method!r}; expected layercam or gradcam")
    body = model.encoder.body
    size = int(hu.shape[-1])
    captured: list[torch.Tensor] = []

    def hook(_module: Any, _inputs: Any, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.retain_grad()
        captured.append(output)

    stages = list(body.children()) if method == "layercam" else []
    handles = [m.register_forward_hook(hook) for m in stages] or [body.register_forward_hook(hook)]
    try:
        device = next(model.parameters()).device
        x = torch.from_numpy(np.asarray(hu, dtype=np.float32)).unsqueeze(0).to(device)
        x.requires_grad_(False)
        with torch.enable_grad():
            # the series as given: no mirrored test-time views in the batch
            image_logits, _ = model.forward_view(x)
            target = image_logits[0, list(slices), label].sum()
            model.zero_grad(set_to_none=True)
            target.backward()
    finally:
        for handle in handles:
            handle.remove()
    maps = captured[-1]
    if method == "layercam":
        # the last stage output at a quarter of the input side (ResNet layer1,
        # SENet layer1); the final map when the body has no such stage
        quarter = [m for m in captured if m.dim() == 4 and m.shape[-1] == -(-size // 4)]
        maps = quarter[-1] if quarter else captured[-1]
    grads = maps.grad
    if grads is None:
        raise ModelError("class-activation map: no gradient reached the encoder's feature map")
    idx = torch.tensor(list(slices), dtype=torch.long, device=maps.device)
    a, g = maps.detach()[idx].float(), grads[idx].float()
    if method == "layercam":
        cam = torch.relu((torch.relu(g) * a).sum(dim=1, keepdim=True))
    else:
        weights = g.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * a).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).amax(dim=1).clamp(min=1e-12).view(-1, 1, 1)
    out: npt.NDArray[np.float32] = (cam / peak).cpu().numpy().astype(np.float32)
    return out


def to_original(cam: npt.NDArray[np.floating], box: CropBox) -> npt.NDArray[np.float32]:
    """Map a (size, size) map back onto the original (rows, cols) image."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    t = torch.from_numpy(np.asarray(cam, dtype=np.float32))[None, None]
    t = F.interpolate(t, size=(box.height, box.width), mode="bilinear", align_corners=False)[0, 0]
    full = np.zeros((box.rows, box.cols), dtype=np.float32)
    r0, c0 = max(box.row0, 0), max(box.col0, 0)
    r1, c1 = min(box.row0 + box.height, box.rows), min(box.col0 + box.width, box.cols)
    if r1 > r0 and c1 > c0:
        full[r0:r1, c0:c1] = t.numpy()[r0 - box.row0 : r1 - box.row0, c0 - box.col0 : c1 - box.col0]
    return full


#: Distance (mm) from the lesion within which a heatmap peak counts as "near" it.
_NEAR_MM = 5.0
#: Bone: pixels above this HU (the skull's inner table included).
_BONE_HU = 250.0
#: Head: pixels above this HU (skin and soft tissue lie above -100 HU).
_HEAD_HU = -300.0


def intracranial_mask(hu: npt.NDArray[np.generic]) -> npt.NDArray[np.bool_]:
    """The cranial cavity of one axial slice: inside the skull, the bone itself excluded.

    The skull (above 250 HU) is filled and the bone, widened by one pixel, taken
    away. Where the skull is not a closed ring (skull base, vertex, thick
    slices) and the filled cavity is under 2 % of the head, the head (above
    -300 HU) is returned instead.
    """
    from scipy import ndimage  # type: ignore[import-untyped]

    img = np.asarray(hu, dtype=np.float32)
    head = img > _HEAD_HU
    bone = img > _BONE_HU
    cavity = np.asarray(ndimage.binary_fill_holes(bone), dtype=bool) & ~np.asarray(
        ndimage.binary_dilation(bone, iterations=1), dtype=bool
    )
    out: npt.NDArray[np.bool_] = head if cavity.sum() < 0.02 * max(int(head.sum()), 1) else cavity
    return out


def _read_masks(path: Path, sop_uids: Sequence[str]) -> npt.NDArray[np.bool_] | None:
    """Union of the lesion masks of a series, (S, rows, cols), in ``sop_uids`` order."""
    from ichkit.labels import SUBTYPES

    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        arrays = [np.asarray(data[k], dtype=bool) for k in SUBTYPES if k in keys]
        if not arrays and "masks" in keys:
            arrays = [np.asarray(data["masks"], dtype=bool)]
        if not arrays:
            logger.warning("%s: no subtype masks (keys %s)", path, sorted(keys))
            return None
        union = np.any(np.stack(arrays), axis=0)
        if union.ndim == 4:  # (subtypes, S, R, C) stored as one array
            union = union.any(axis=0)
        order_key = next((k for k in ("sop_instance_uids", "sop_instance_uid") if k in keys), None)
        if order_key is not None:
            stored = [str(u) for u in data[order_key]]
            pos = {u: i for i, u in enumerate(stored)}
            if all(u in pos for u in sop_uids):
                picked: npt.NDArray[np.bool_] = union[[pos[u] for u in sop_uids]]
                return picked
            logger.warning("%s: mask UIDs do not match the series; assuming slice order", path)
    if union.shape[0] != len(sop_uids):
        logger.warning(
            "%s: %d mask slices for %d images; skipped", path, union.shape[0], len(sop_uids)
        )
        return None
    result: npt.NDArray[np.bool_] = union
    return result


def _overlay(
    path: Path, hu: npt.NDArray[np.generic], cam: npt.NDArray[np.floating], title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    brain = np.clip((np.asarray(hu, dtype=np.float32) - 0.0) / 80.0, 0.0, 1.0)
    cam = np.asarray(cam, dtype=np.float32) / max(float(np.max(cam)), 1e-12)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.imshow(brain, cmap="gray", vmin=0, vmax=1)
    ax.imshow(cam, cmap="jet", alpha=np.clip(cam, 0, 1) * 0.45, vmin=0, vmax=1)
    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
    ax.plot([c], [r], marker="+", color="white", markersize=12)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    fig.tight_layout()
    atomic_save_figure(fig, path)
    plt.close(fig)


class HeatmapWriter:
    """Writes the overlays of positive slices series by series, as they are predicted.

    Built before any inference, so that a missing checkpoint fails at once; each
    series' volume is needed only while :meth:`add` runs (a batch of studies never
    holds more than one series in memory for it).

    Parameters
    ----------
    predictor
        The predictor of ``ichkit predict``; an ONNX one uses the ``best.ckpt``
        beside it (Grad-CAM needs gradients), which must be the same model.
    out
        Folder of the PNGs (``<SeriesInstanceUID>/<index>_<SOPInstanceUID>.png``).
    masks
        Folder of synthetic lesion masks (``<SeriesInstanceUID>.npz``) to score
        the peaks against.
    threshold
        ``any`` probability from which a slice gets a heatmap.

    Raises
    ------
    ModelError
        An ONNX model has no ``best.ckpt`` beside it.
    CheckpointMismatchError
        That ``best.ckpt`` is not the model the ONNX file was exported from.
    """

    def __init__(
        self, predictor: Any, out: Path, *, masks: Path | None = None, threshold: float = 0.5
    ) -> None:
        from ichkit.model._infer import TorchPredictor

        model_path = Path(predictor.path)
        if not isinstance(predictor, TorchPredictor):
            ckpt = model_path.with_name("best.ckpt")
            if not ckpt.is_file():
                raise ModelError(
                    "--heatmaps needs the PyTorch checkpoint (Grad-CAM uses gradients); "
                    f"none found beside the ONNX model (looked for {ckpt})",
                    path=model_path,
                    field="--heatmaps",
                )
            self.torch_predictor = TorchPredictor(
                ckpt, windows=predictor.meta["windows"], input_size=predictor.input_size
            )
            _check_same_model(predictor.meta, self.torch_predictor.meta, ckpt)
        else:
            self.torch_predictor = predictor
        self.out, self.masks, self.threshold = out, masks, threshold
        self.written = self.hits = self.near = self.scored = 0
        self.per_image: list[dict[str, Any]] = []

    def add(self, pred: Any, series: Any) -> None:
        """Write the overlays of one predicted series (``series``: its loaded volume)."""
        from scipy import ndimage

        positive = [int(i) for i in np.flatnonzero(pred.image_probs[:, -1] >= self.threshold)]
        if not positive:
            return
        model = self.torch_predictor.model  # Grad-CAM runs where the predictor's model is
        # a thin series was read as slabs: the model's slice k is slab k, and
        # each positive image shows the map of its slab
        slabs = None if pred.slabs is None else pred.slabs.index
        hu = series.hu if slabs is None else slab_mean(series.hu, slabs)
        volume, _ = preprocess_volume(hu, size=self.torch_predictor.input_size, box=pred.box)
        model_slice = [int(slabs[i]) if slabs is not None else i for i in positive]
        wanted = sorted(set(model_slice))
        cam_of = dict(zip(wanted, gradcam(model, volume, wanted), strict=True))
        cams = [cam_of[j] for j in model_slice]
        # in-plane pixel size for the peak-to-lesion distance (1 mm when unknown)
        mm = float(np.mean(series.spacing[1:])) if np.isfinite(series.spacing[1]) else 1.0
        lesion = None
        if self.masks is not None:
            mask_file = self.masks / f"{pred.series_instance_uid}.npz"
            if mask_file.is_file():
                lesion = _read_masks(mask_file, pred.sop_instance_uids)
            else:
                logger.warning("no mask file %s", mask_file)
        for k, i in enumerate(positive):
            cam = to_original(cams[k], pred.box) * intracranial_mask(series.hu[i])
            r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
            entry: dict[str, Any] = {
                "sop_instance_uid": pred.sop_instance_uids[i],
                "any": round(float(pred.image_probs[i, -1]), 4),
                "peak_row": int(r),
                "peak_col": int(c),
            }
            if lesion is not None:
                inside = bool(lesion[i, r, c])
                entry["peak_in_lesion"] = inside
                if lesion[i].any():
                    dist = float(ndimage.distance_transform_edt(~lesion[i])[r, c]) * mm
                    entry["peak_distance_mm"] = round(dist, 2)
                    self.scored += 1
                    self.hits += int(inside)
                    self.near += int(dist <= _NEAR_MM)
            name = self.out / pred.series_instance_uid / f"{i:03d}_{pred.sop_instance_uids[i]}.png"
            _overlay(name, series.hu[i], cam, f"slice {i}  any={pred.image_probs[i, -1]:.2f}")
            entry["png"] = os.fspath(name)
            self.per_image.append(entry)
            self.written += 1

    def summary(self) -> dict[str, Any]:
        """What was written (and, with masks, how often the peak fell in the lesion)."""
        summary: dict[str, Any] = {
            "folder": os.fspath(self.out),
            "threshold": self.threshold,
            "written": self.written,
            "images": self.per_image,
        }
        if self.masks is not None:
            summary["peak_in_lesion"] = {
                "slices_with_lesion": self.scored,
                "peaks_inside": self.hits,
                f"peaks_within_{_NEAR_MM:g}_mm": self.near,
                "rate": (self.hits / self.scored) if self.scored else None,
            }
            logger.info(
                "heatmap peak inside the lesion on %d of %d positive lesion slices",
                self.hits,
                self.scored,
            )
        logger.info("wrote %d heatmap(s) to %s", self.written, self.out)
        return summary


def _check_same_model(onnx_meta: dict[str, Any], ckpt_meta: dict[str, Any], ckpt: Path) -> None:
    """Raise unless the checkpoint is the one the ONNX file was exported from."""
    import json

    from ichkit.errors import CheckpointMismatchError

    for key in ("epoch", "config"):
        if key not in onnx_meta:
            continue  # an ONNX file of an older ichkit: nothing to compare
        mine = json.loads(json.dumps(ckpt_meta.get(key)))
        if onnx_meta[key] != mine:
            if key == "config" and isinstance(mine, dict):
                diff = sorted(k for k in mine if onnx_meta[key].get(k) != mine[k])
                detail = f"config differs in {diff[:5]}"
            else:
                detail = f"ONNX epoch {onnx_meta[key]!r}, checkpoint epoch {mine!r}"
            raise CheckpointMismatchError(
                f"--heatmaps: the checkpoint beside the ONNX model is not the model it was "
                f"exported from ({detail}); export it again (ichkit export-onnx) or pass the "
                "checkpoint as --model",
                path=ckpt,
                field=key,
            )
