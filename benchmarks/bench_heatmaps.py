"""Heatmap localisation: does the heatmap peak fall on the lesion? LayerCAM vs Grad-CAM.

Usage::

    .venv/bin/python benchmarks/bench_heatmaps.py --model demo-output/model/best.ckpt \
        --data SYNTH [--threshold 0.5]

SYNTH is an ``ichkit synth`` output written with ``--masks`` (exams the model
never saw, e.g. ``ichkit synth SYNTH --exams 20 --seed 4040 --size 128
--prevalence 1.0 --subtype-mix even --masks``). For every slice the model calls
positive (``any`` ≥ ``--threshold``) that holds a lesion, the peak of each
heatmap variant is scored against the lesion mask: inside it, within 10 pixels,
and the median distance. The baseline is classic Grad-CAM on the last feature
map over the whole image (ichkit's previous default); ``ichkit predict
--heatmaps`` uses LayerCAM inside the cranial cavity.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="best.ckpt or a run folder")
    parser.add_argument("--data", type=Path, required=True, help="ichkit synth output with masks")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()

    import torch
    from scipy import ndimage  # type: ignore[import-untyped]

    from ichkit.dicom import load_series, scan_series
    from ichkit.model import gradcam, model_from_checkpoint, preprocess_volume
    from ichkit.model._gradcam import _read_masks, intracranial_mask, to_original

    model, cfg, _ = model_from_checkpoint(args.model)
    variants = {
        ("gradcam", False): "Grad-CAM, last map, whole image (baseline)",
        ("gradcam", True): "Grad-CAM, last map, inside the cranial cavity",
        ("layercam", False): "LayerCAM, stride-4 map, whole image",
        ("layercam", True): "LayerCAM, stride-4 map, inside the cranial cavity (default)",
    }
    scores: dict[tuple[str, bool], list[tuple[bool, float]]] = {k: [] for k in variants}
    for rec in scan_series(args.data / "dicom").series:
        mask_file = args.data / "masks" / f"{rec.series_instance_uid}.npz"
        if not mask_file.is_file():  # scouts and dose reports have no masks
            continue
        series = load_series(rec.files, series_instance_uid=rec.series_instance_uid)
        volume, box = preprocess_volume(series.hu, size=cfg.input_size, crop=cfg.crop)
        with torch.no_grad():
            logits, _ = model(torch.from_numpy(volume.astype(np.float32)).unsqueeze(0))
        probs = torch.sigmoid(logits[0, :, -1]).numpy()
        lesion = _read_masks(mask_file, series.sop_instance_uids)
        if lesion is None:
            continue
        slices = [int(i) for i in np.flatnonzero(probs >= args.threshold) if lesion[i].any()]
        if not slices:
            continue
        for method in ("gradcam", "layercam"):
            cams = gradcam(model, volume, slices, method=method)
            for k, i in enumerate(slices):
                full = to_original(cams[k], box)
                distance = ndimage.distance_transform_edt(~lesion[i])
                for cavity in (False, True):
                    cam = full * intracranial_mask(series.hu[i]) if cavity else full
                    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
                    scores[(method, cavity)].append((bool(lesion[i][r, c]), float(distance[r, c])))
    n = len(scores[("gradcam", False)])
    print(f"model: {args.model}; data: {args.data}; {n} positive slices holding a lesion")
    print("| heatmap | peak inside the lesion | peak within 10 px | median distance (px) |")
    print("|---|---|---|---|")
    for key, label in variants.items():
        got = np.array(scores[key], dtype=np.float64).reshape(-1, 2)
        inside = int(got[:, 0].sum())
        print(
            f"| {label} | {inside} / {len(got)} ({inside / max(len(got), 1):.0%}) | "
            f"{np.mean(got[:, 1] <= 10):.0%} | {np.median(got[:, 1]):.1f} |"
        )


if __name__ == "__main__":
    main()
