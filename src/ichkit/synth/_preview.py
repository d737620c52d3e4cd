"""Contact sheet of a synthetic dataset: slices per subtype plus mimics (brain window)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ichkit._atomic import atomic_save_figure
from ichkit.labels import SUBTYPES
from ichkit.synth._config import SynthConfig
from ichkit.synth._generate import ExamPlan
from ichkit.synth._writer import WrittenExam

__all__ = ["write_preview"]

#: Brain window (center 40 HU, width 80 HU), the standard reading window for ICH.
BRAIN_WINDOW = (40.0, 80.0)


def _pick(
    plans: list[ExamPlan], results: list[WrittenExam], per_kind: int
) -> list[tuple[int, int, str]]:
    picks: list[tuple[int, int, str]] = []
    for s in SUBTYPES:
        cands = sorted(
            (
                (r.best_slices[s][1], r.index, r.best_slices[s][0])
                for r in results
                if s in r.best_slices
            ),
            reverse=True,
        )
        # the largest and a smaller one (subtle) where there are several
        chosen = cands[:1] + (
            cands[len(cands) // 2 : len(cands) // 2 + 1] if len(cands) > 2 else cands[1:2]
        )
        for _, idx, k in chosen[:per_kind]:
            picks.append((idx, k, s))
    negatives = [r for r in results if r.labels[:, -1].max() == 0]
    for name in ("pineal", "choroid_plexus", "falx_plaque", "basal_ganglia"):
        for r in negatives:
            if r.mimic_slices.get(name):
                picks.append(
                    (r.index, r.mimic_slices[name][0], f"no ICH: {name.replace('_', ' ')} calc.")
                )
                break
    if negatives:
        r = negatives[0]
        n = len(r.sop_instance_uids)
        for frac, label in (
            (0.15, "no ICH: skull base"),
            (0.4, "no ICH"),
            (0.8, "no ICH: high convexity"),
        ):
            picks.append((r.index, int(frac * n), label))
    return picks


def write_preview(
    config: SynthConfig,
    out: Path,
    plans: list[ExamPlan],
    results: list[WrittenExam],
    per_kind: int = 2,
) -> Path:
    """Write ``out/preview.png``; returns its path. Slices are read back from the DICOM written."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    picks = _pick(plans, results, per_kind)
    by_index = {r.index: r for r in results}
    cols = 5
    rows = max(1, -(-len(picks) // cols))
    fig = Figure(figsize=(cols * 3.2, rows * 3.4), dpi=100, facecolor="black")
    FigureCanvasAgg(fig)
    c, w = BRAIN_WINDOW
    for i, (idx, k, label) in enumerate(picks):
        hu = read_hu(out / by_index[idx].files[k])
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(hu, cmap="gray", vmin=c - w / 2, vmax=c + w / 2, interpolation="nearest")
        ax.set_title(f"{label}\nexam {idx} slice {k}", color="white", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    path = out / "preview.png"
    atomic_save_figure(fig, path, facecolor="black", metadata={"Software": None})
    return path


def read_hu(path: Path) -> np.ndarray:
    """HU of one written slice: raw * slope + intercept, with the RSNA 12-bit fix.

    The fix (RSNA 2019 Kaggle kernels): when BitsStored is 12, PixelRepresentation
    0 and RescaleIntercept > -100, ``px = px + 1000; px[px >= 4096] -= 4096;
    intercept = -1000``.
    """
    import pydicom

    ds = pydicom.dcmread(path)
    px = ds.pixel_array.astype(np.int32)
    intercept = float(ds.RescaleIntercept)
    if ds.BitsStored == 12 and ds.PixelRepresentation == 0 and intercept > -100:
        px = px + 1000
        px[px >= 4096] -= 4096
        intercept = -1000.0
    return px * float(ds.RescaleSlope) + intercept
