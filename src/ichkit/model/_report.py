"""``ichkit evaluate``: metrics with bootstrap CIs, ROC and calibration plots, an HTML page.

The model reads the held-out split of its own dataset (the split rule and
seed are in its configuration, so the test exams are never the training
ones). The report folder gets:

* ``metrics.json`` — the challenge metric (image-level weighted log loss) and
  exam-level log loss with 95 % bootstrap CIs (resampling exams), per-label
  image and exam AUC with CIs, sensitivity/specificity at thresholds chosen on
  the validation split (sensitivity ≥ 0.95 for ``any``, ≥ 0.90 for subtypes);
* ``preds.csv`` and ``truth.csv`` (RSNA format, so ``ichkit score preds.csv
  truth.csv`` gives the same metric), ``exams.csv`` (per-exam probabilities);
* ``roc_image.png``, ``roc_exam.png``, ``calibration.png`` and ``index.html``.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ichkit._atomic import atomic_save_figure
from ichkit.labels import LABELS, PROBABILITY_FORMAT, image_id
from ichkit.metrics import bootstrap_ci
from ichkit.model._metrics import auc, threshold_for_sensitivity, weighted_log_loss

__all__ = ["EvaluationResult", "evaluate_model"]

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

#: Sensitivity targets used to choose thresholds on the validation split.
SENSITIVITY_TARGETS = {"any": 0.95, "subtype": 0.90}


@dataclass(frozen=True)
class EvaluationResult:
    """Where the report is and its headline numbers."""

    out: Path
    html: Path
    metrics: dict[str, Any]


def _spec_sens(y: F64, s: F64, thr: float) -> tuple[float, float]:
    if math.isnan(thr):
        return math.nan, math.nan
    pos, neg = y > 0.5, y <= 0.5
    sens = float((s[pos] >= thr).mean()) if pos.any() else math.nan
    spec = float((s[neg] < thr).mean()) if neg.any() else math.nan
    return sens, spec


def _rate_at(scores: F64, thr: float) -> float:
    """Fraction of ``scores`` at or above ``thr`` (NaN when none or no threshold)."""
    if scores.size == 0 or math.isnan(thr):
        return math.nan
    return float((scores >= thr).mean())


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        # nine significant digits: a threshold such as 0.99999994 must stay below 1
        return None if math.isnan(x) else float(f"{x:.9g}")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def compute_metrics(
    image_truth: Sequence[npt.NDArray[np.floating]],
    image_probs: Sequence[F64],
    exam_probs: Sequence[F64],
    *,
    val: tuple[Sequence[npt.NDArray[np.floating]], Sequence[F64], Sequence[F64]] | None = None,
    rounds: int = 500,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of one split from per-exam arrays (image truth (S,6), image probs, exam probs)."""
    n = len(image_truth)
    yi_parts = [np.asarray(y, dtype=np.float64) for y in image_truth]
    pi_parts = [np.asarray(p, dtype=np.float64) for p in image_probs]
    ye = np.stack([y.max(axis=0) for y in yi_parts])
    pe = np.stack([np.asarray(p, dtype=np.float64) for p in exam_probs])
    yi, pi = np.concatenate(yi_parts), np.concatenate(pi_parts)
    sizes = [len(y) for y in yi_parts]
    out: dict[str, Any] = {"exams": n, "images": len(yi)}
    out["image_log_loss"] = weighted_log_loss(yi, pi)
    out["exam_log_loss"] = weighted_log_loss(ye, pe)
    # Exams are resampled (an exam's images are correlated), the same exams at both
    # levels: one seed, one draw of exam counts (ichkit.metrics.bootstrap_ci,
    # vectorised; the image level weights each image by its exam's count).
    image_boot = exam_boot = None
    if rounds > 0 and n > 0:
        codes = np.repeat(np.arange(n), sizes)
        image_boot = bootstrap_ci(yi, pi, n_boot=rounds, seed=seed, groups=codes)
        exam_boot = bootstrap_ci(ye, pe, n_boot=rounds, seed=seed)
    nan_pair = (math.nan, math.nan)
    out["image_log_loss_ci"] = image_boot.weighted_log_loss if image_boot else nan_pair
    out["exam_log_loss_ci"] = exam_boot.weighted_log_loss if exam_boot else nan_pair
    per_label: dict[str, Any] = {}
    for j, lab in enumerate(LABELS):
        entry: dict[str, Any] = {
            "image_positives": int((yi[:, j] > 0.5).sum()),
            "exam_positives": int((ye[:, j] > 0.5).sum()),
            "image_auc": auc(yi[:, j], pi[:, j]),
            "exam_auc": auc(ye[:, j], pe[:, j]),
            "image_auc_ci": image_boot.auc[lab] if image_boot else nan_pair,
            "exam_auc_ci": exam_boot.auc[lab] if exam_boot else nan_pair,
            # rounds that drew both classes (the CI's basis): few = few positive exams
            "exam_auc_ci_rounds": exam_boot.auc_replicates[lab] if exam_boot else 0,
        }
        if val is not None:
            vyi = np.concatenate([np.asarray(y, dtype=np.float64) for y in val[0]])
            vpi = np.concatenate([np.asarray(p, dtype=np.float64) for p in val[1]])
            vye = np.stack([np.asarray(y, dtype=np.float64).max(axis=0) for y in val[0]])
            vpe = np.stack([np.asarray(p, dtype=np.float64) for p in val[2]])
            target = SENSITIVITY_TARGETS["any" if lab == "any" else "subtype"]
            for level, (vy, vp, ty, tp) in {
                "image": (vyi, vpi, yi, pi),
                "exam": (vye, vpe, ye, pe),
            }.items():
                thr = threshold_for_sensitivity(vy[:, j], vp[:, j], target)
                sens, spec = _spec_sens(ty[:, j], tp[:, j], thr)
                entry[f"{level}_operating_point"] = {
                    "target_sensitivity_on_val": target,
                    "threshold": thr,
                    "sensitivity": sens,
                    "specificity": spec,
                }
                if math.isnan(thr):
                    entry[f"{level}_operating_point"]["note"] = (
                        "no positives in the validation split: no threshold chosen"
                    )
        per_label[lab] = entry
    out["labels"] = per_label
    return out


def _plots(out: Path, yi: F64, pi: F64, ye: F64, pe: F64, title: str) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    files = {}
    for level, (y, p) in {"image": (yi, pi), "exam": (ye, pe)}.items():
        fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
        for j, lab in enumerate(LABELS):
            if 0 < (y[:, j] > 0.5).sum() < len(y):
                fpr, tpr, _ = roc_curve(y[:, j] > 0.5, p[:, j])
                ax.plot(fpr, tpr, label=f"{lab} (AUC {auc(y[:, j], p[:, j]):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title(f"{title}: {level}-level ROC", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        name = f"roc_{level}.png"
        atomic_save_figure(fig, out / name)
        plt.close(fig)
        files[f"roc_{level}"] = name
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    bins = np.linspace(0, 1, 11)
    for j, lab in enumerate(LABELS):
        which = np.clip(np.digitize(pi[:, j], bins) - 1, 0, 9)
        xs, ys = [], []
        for b in range(10):
            sel = which == b
            if sel.sum() >= 5:
                xs.append(pi[sel, j].mean())
                ys.append(yi[sel, j].mean())
        ax.plot(xs, ys, marker="o", markersize=3, label=lab)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set_xlabel("predicted probability (image)")
    ax.set_ylabel("observed frequency")
    ax.set_title(f"{title}: calibration (bins with ≥ 5 images)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    atomic_save_figure(fig, out / "calibration.png")
    plt.close(fig)
    files["calibration"] = "calibration.png"
    return files


def _fmt(x: Any, ci: Any = None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    text = f"{x:.4f}"
    if ci and ci[0] is not None and not (isinstance(ci[0], float) and math.isnan(ci[0])):
        text += f" ({ci[0]:.4f}–{ci[1]:.4f})"
    return text


def _html(metrics: dict[str, Any], plots: dict[str, str], title: str) -> str:
    m = metrics
    rows = []
    for lab, e in m["labels"].items():
        op = e.get("exam_operating_point", {})
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    lab,
                    e["image_positives"],
                    _fmt(e["image_auc"], e["image_auc_ci"]),
                    e["exam_positives"],
                    _fmt(e["exam_auc"], e["exam_auc_ci"]),
                    _fmt(op.get("threshold")),
                    _fmt(op.get("sensitivity")),
                    _fmt(op.get("specificity")),
                )
            )
            + "</tr>"
        )
    mimic = ""
    if "mimics" in m:
        mm = m["mimics"]
        mimic = (
            "<h2>Calcification mimics</h2><p>Negative images with a calcification: "
            f"{mm['images']}; mean <i>any</i> probability {_fmt(mm['mean_any'])} "
            f"(other negative images {_fmt(mm['mean_any_other_negatives'])}); "
            f"called positive at the validation <i>any</i> threshold: "
            f"{_fmt(mm['false_positive_rate'])} "
            f"(other negatives {_fmt(mm['false_positive_rate_other_negatives'])}).</p>"
        )
    images = "".join(
        f'<figure><img src="{html.escape(f)}" width="420"><figcaption>{html.escape(k)}'
        "</figcaption></figure>"
        for k, f in plots.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
figure{{display:inline-block;margin:4px}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Split <b>{html.escape(str(m["split"]))}</b>: {m["exams"]} exams, {m["images"]} images.
Model {html.escape(str(m["model"]))} (epoch {m.get("epoch")}).
Synthetic-data weights are not for clinical use.</p>
<p><b>Challenge metric</b> (image-level weighted log loss, <i>any</i> ×2):
{_fmt(m["image_log_loss"], m["image_log_loss_ci"])}<br>
Exam-level weighted log loss: {_fmt(m["exam_log_loss"], m["exam_log_loss_ci"])}<br>
95 % CIs: percentile bootstrap over exams ({m["bootstrap_rounds"]} rounds).</p>
<table><tr><th>label</th><th>pos. images</th><th>image AUC (95 % CI)</th><th>pos. exams</th>
<th>exam AUC (95 % CI)</th><th>exam threshold (val)</th><th>sensitivity</th>
<th>specificity</th></tr>{"".join(rows)}</table>
<p>Thresholds chosen on the validation split: sensitivity ≥ 0.95 for <i>any</i>,
≥ 0.90 for subtypes.</p>{mimic}
{images}
</body></html>
"""


def _mimic_images(data_root: Path) -> set[str] | None:
    """Image ids of the slices listed in ``mimics.csv`` (``ichkit synth`` output), or None.

    Raises
    ------
    DatasetError
        The file has no ``sop_instance_uid`` column.
    """
    import csv

    from ichkit.errors import DatasetError

    path = data_root / "mimics.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if "sop_instance_uid" not in (reader.fieldnames or []):
            raise DatasetError(
                "calcification table has no 'sop_instance_uid' column",
                path=path,
                field="columns",
                value=reader.fieldnames,
            )
        return {image_id(row["sop_instance_uid"]) for row in reader}


def evaluate_model(
    model: str | os.PathLike[str],
    *,
    split: str = "test",
    out: str | os.PathLike[str] | None = None,
    data: str | None = None,
    cache_dir: str | None = None,
    rounds: int = 500,
    progress: Any = None,
    allow_shared_patients: bool = False,
) -> EvaluationResult:
    """Evaluate a run or checkpoint on a split of its dataset and write the report.

    Parameters
    ----------
    model
        A run folder (its ``best.ckpt``) or a checkpoint.
    split
        ``test``, ``val`` or ``train``.
    out
        Report folder (default ``<run>/report-<split>``).
    data, cache_dir
        Override the dataset folder and cache recorded in the checkpoint.
    rounds
        Bootstrap rounds.
    allow_shared_patients
        Only warn when the splits share a patient, as for a model trained
        with ``patient_disjoint=False``; by default the checkpoint's setting holds.
    """
    import pandas as pd
    import torch

    from ichkit._atomic import atomic_write_text
    from ichkit.labels import write_labels
    from ichkit.model._checkpoint import model_from_checkpoint
    from ichkit.model._data import SPLITS, find_layout
    from ichkit.model._infer import model_slice_mm
    from ichkit.model._train import load_split, predict_examples, read_as_slabs

    if split not in SPLITS:
        from ichkit.errors import ConfigError

        raise ConfigError(
            f"unknown split {split!r}; expected one of {', '.join(SPLITS)}",
            field="--split",
            value=split,
        )
    net, cfg, payload = model_from_checkpoint(model)
    ckpt = Path(payload["path"])
    if data:
        cfg = cfg.replace(data=data)
    if allow_shared_patients:
        cfg = cfg.replace(patient_disjoint=False)
    run_dir = ckpt.parent
    report = Path(out) if out else run_dir / f"report-{split}"
    report.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir or cfg.cache_dir or (run_dir / "cache"))
    torch.set_num_threads(cfg.threads or (os.cpu_count() or 1))
    splits = ("val", split) if split != "val" else ("val",)
    sets = load_split(cfg, cache_dir=cache, splits=splits, progress=progress)
    # thin series are read as slabs of the training spacing, as in training and predict
    slab_mm = model_slice_mm(payload)
    sets = {name: read_as_slabs(found, slab_mm) for name, found in sets.items()}
    examples = sets[split]
    if not examples:
        from ichkit.errors import DatasetError

        raise DatasetError(
            f"the {split} split is empty", path=cfg.data, field="--split", value=split
        )
    device = torch.device("cpu")
    preds = predict_examples(net, examples, device=device)
    val_preds = preds if split == "val" else predict_examples(net, sets["val"], device=device)
    val_tuple = None
    if sets["val"]:
        val_tuple = (
            [ex.labels_per_image for ex in sets["val"]],
            [p for p, _ in val_preds],
            [e for _, e in val_preds],
        )
    metrics = compute_metrics(
        [ex.labels_per_image for ex in examples],
        [p for p, _ in preds],
        [e for _, e in preds],
        val=val_tuple,
        rounds=rounds,
        seed=cfg.seed,
    )
    if val_tuple is None:
        logger.warning(
            "the validation split is empty: no operating thresholds are chosen "
            "(sensitivity/specificity are left out)"
        )
        metrics["operating_points"] = "none: the validation split is empty"
    metrics.update(
        {
            "split": split,
            "model": os.fspath(ckpt),
            "epoch": payload.get("epoch"),
            "data": cfg.data,
            "bootstrap_rounds": rounds,
            "config": cfg.to_dict(),
        }
    )
    yi = np.concatenate([ex.labels_per_image for ex in examples]).astype(np.float64)
    pi = np.concatenate([p for p, _ in preds])
    ye = np.stack([ex.labels.max(axis=0) for ex in examples]).astype(np.float64)
    pe = np.stack([e for _, e in preds])
    ids = [image_id(u) for ex in examples for u in ex.series.sop_instance_uids]
    mimics = _mimic_images(find_layout(cfg.data, labels=cfg.labels, images=cfg.images).root)
    if mimics is not None:
        neg = yi[:, -1] < 0.5
        has = np.array([i in mimics for i in ids]) & neg
        other = neg & ~has
        thr = metrics["labels"]["any"].get("image_operating_point", {}).get("threshold")
        if thr is None or math.isnan(thr):
            thr = math.nan  # no validation threshold: no false-positive rate either
        metrics["mimics"] = {
            "images": int(has.sum()),
            "mean_any": float(pi[has, -1].mean()) if has.any() else math.nan,
            "mean_any_other_negatives": float(pi[other, -1].mean()) if other.any() else math.nan,
            "false_positive_rate": _rate_at(pi[has, -1], thr),
            "false_positive_rate_other_negatives": _rate_at(pi[other, -1], thr),
            "threshold": thr,
        }
    index = pd.Index(ids, name="image_id")
    write_labels(
        report / "preds.csv",
        pd.DataFrame(pi, index=index, columns=list(LABELS)),
        float_format=PROBABILITY_FORMAT,
    )
    write_labels(report / "truth.csv", pd.DataFrame(yi, index=index, columns=list(LABELS)))
    exam_table = pd.DataFrame(pe, columns=list(LABELS))
    exam_table.insert(0, "series_instance_uid", [ex.series.series_instance_uid for ex in examples])
    for j, lab in enumerate(LABELS):
        exam_table[f"true_{lab}"] = ye[:, j].astype(int)
    atomic_write_text(
        report / "exams.csv", exam_table.to_csv(index=False, float_format=PROBABILITY_FORMAT)
    )
    title = f"ichkit evaluation — {ckpt.parent.name}/{ckpt.name}"
    plots = _plots(report, yi, pi, ye, pe, title)
    metrics["plots"] = plots
    clean = _clean(metrics)
    atomic_write_text(report / "metrics.json", json.dumps(clean, indent=2) + "\n")
    page = report / "index.html"
    atomic_write_text(page, _html(metrics, plots, title))
    logger.info("report written to %s", page)
    return EvaluationResult(out=report, html=page, metrics=clean)
