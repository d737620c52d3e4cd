r"""Exam and image AUC of an ``ichkit predict`` run on a held-out ``ichkit synth`` set.

Usage::

    .venv/bin/ichkit synth HELDOUT --exams 500 --seed 9999 --size 128 --sites 3 \
        --prevalence 0.4 --subtype-mix even --masks --workers 2
    .venv/bin/ichkit predict HELDOUT/dicom/*/*/* --model RUN/model.onnx --out PRED/preds.csv
    .venv/bin/python benchmarks/heldout_auc.py --data HELDOUT --preds PRED

(``--csv OUT.csv --name RUN`` append the row to a CSV; several ``--preds``
folders score their ensemble, the mean of their logits; ``--small-px N`` also
reports the exam AUC without the positive exams whose largest slice holds at
most N blood pixels of that label, from ``HELDOUT/masks``; ``--exam-from-images``
ranks exams by their highest image probability instead of the exam output).

A test split of a few hundred exams holds 10-20 positive exams per subtype, so
its exam AUC moves by several hundredths from one data draw to the next. To
compare model settings, train each on the same data and score them all on one
larger synthetic set that none of them saw: this script reads the per-series
exam probabilities from ``PRED/exams.json`` and the image rows of
``PRED/preds.csv``, and the truth from ``HELDOUT/exams.csv`` and
``HELDOUT/truth.csv``. It prints one Markdown row (exam AUC, image AUC, the
challenge's weighted log loss) and can append it to a CSV.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    q = np.clip(p, 1e-7, 1 - 1e-7)
    return np.asarray(np.log(q / (1 - q)))


def _run(
    preds: Path, data: Path, series: list[str], key: str = "probabilities"
) -> tuple[npt.NDArray[np.float64], Any]:
    """Exam probabilities (in ``series`` order) and the image rows of one prediction folder.

    ``key`` is the ``exams.json`` field read per series: ``probabilities`` (the
    model's exam output) or ``max_image_probabilities``.
    """
    from ichkit.labels import LABELS, read_labels

    doc = json.loads((preds / "exams.json").read_text())
    probs = {
        s["series_instance_uid"]: [s[key][lab] for lab in LABELS]
        for e in doc["exams"]
        for s in e["series"]
    }
    missing = [s for s in series if s not in probs]
    if missing:
        raise SystemExit(
            f"{preds / 'exams.json'}: {len(missing)} series of {data / 'exams.csv'} "
            f"were not predicted, e.g. {missing[0]}"
        )
    return np.array([probs[s] for s in series], dtype=np.float64), read_labels(preds / "preds.csv")


def _largest_slice_px(data: Path, series: list[str]) -> npt.NDArray[np.int64]:
    """(series, subtypes): blood pixels on each series' largest slice of each subtype."""
    from ichkit.labels import SUBTYPES

    out = np.zeros((len(series), len(SUBTYPES)), dtype=np.int64)
    for i, uid in enumerate(series):
        path = data / "masks" / f"{uid}.npz"
        if not path.exists():
            raise SystemExit(f"{path}: no mask (generate the held-out set with --masks)")
        with np.load(path) as masks:
            for j, name in enumerate(SUBTYPES):
                m = masks[name]
                out[i, j] = int(m.reshape(m.shape[0], -1).sum(axis=1).max(initial=0))
    return out


def main() -> None:
    """Score the run and print a Markdown table row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="ichkit synth output (held out)")
    parser.add_argument(
        "--preds",
        type=Path,
        nargs="+",
        required=True,
        help="folder(s) of preds.csv + exams.json; several: their ensemble (logit mean)",
    )
    parser.add_argument("--name", default="", help="row name (default: the preds folder name)")
    parser.add_argument("--csv", type=Path, help="append the figures to this CSV")
    parser.add_argument(
        "--small-px",
        type=int,
        default=0,
        help="also report exam AUC without positives whose largest slice has <= N blood pixels",
    )
    parser.add_argument(
        "--exam-from-images",
        action="store_true",
        help="rank exams by their highest image probability, not the model's exam output "
        "(with several --preds: the mean of each model's highest image logit)",
    )
    args = parser.parse_args()

    import pandas as pd

    from ichkit.labels import LABELS, SUBTYPES, read_labels
    from ichkit.metrics import per_label_auc, weighted_log_loss

    exams = pd.read_csv(args.data / "exams.csv", dtype={"series": str}).set_index("series")
    series = list(exams.index)
    key = "max_image_probabilities" if args.exam_from_images else "probabilities"
    runs = [_run(p, args.data, series, key) for p in args.preds]
    pred = runs[0][1]
    for _, other in runs[1:]:
        if not other.index.equals(pred.index):
            raise SystemExit(f"{args.preds[0]} and the other --preds list different images")

    def mean_prob(arrays: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
        return np.asarray(1 / (1 + np.exp(-np.mean([_logit(a) for a in arrays], axis=0))))

    exam_p = mean_prob([p for p, _ in runs])
    image_p = mean_prob([r[list(LABELS)].to_numpy(dtype=np.float64) for _, r in runs])
    exam_y = exams[list(LABELS)].to_numpy(dtype=np.float64)
    truth = read_labels(args.data / "truth.csv").reindex(pred.index)
    unknown = truth.index[truth.isna().any(axis=1)]
    if len(unknown):
        raise SystemExit(
            f"{args.preds[0] / 'preds.csv'}: {len(unknown)} images have no row in "
            f"{args.data / 'truth.csv'}, e.g. {unknown[0]}"
        )
    image_y = truth[list(LABELS)].to_numpy()

    name = args.name or "+".join(p.name for p in args.preds)
    row: dict[str, float | str | int] = {"run": name, "exams": len(exams), "exam_from": key}
    exam_auc, image_auc = per_label_auc(exam_y, exam_p), per_label_auc(image_y, image_p)
    for j, lab in enumerate(LABELS):
        row[f"exam_auc_{lab}"] = exam_auc[lab]
        row[f"image_auc_{lab}"] = image_auc[lab]
        row[f"positive_exams_{lab}"] = int(exam_y[:, j].sum())
    row["weighted_log_loss"] = weighted_log_loss(image_y, image_p)

    def cells(kind: str) -> str:
        return " / ".join(f"{float(row[f'{kind}_{lab}']):.3f}" for lab in LABELS)

    print("| run | exams | exam AUC: EDH / IPH / IVH / SAH / SDH / any | image AUC | log loss |")
    print("|---|---|---|---|---|")
    print(
        f"| {row['run']} | {row['exams']} | {cells('exam_auc')} | {cells('image_auc')} "
        f"| {float(row['weighted_log_loss']):.4f} |"
    )
    if args.small_px > 0:
        px = _largest_slice_px(args.data, series)
        print(f"\nexam AUC without positive exams of <= {args.small_px} blood pixels per slice:")
        for j, lab in enumerate(SUBTYPES):
            small = (exam_y[:, j] == 1) & (px[:, j] <= args.small_px)
            keep = ~small
            auc = per_label_auc(exam_y[keep], exam_p[keep])[lab]
            row[f"exam_auc_{lab}_without_small"] = auc
            print(
                f"  {lab}: {int(small.sum())} of {int(exam_y[:, j].sum())} positive exams small;"
                f" exam AUC {exam_auc[lab]:.3f}, without them {auc:.3f}"
            )
    if args.csv:
        frame = pd.DataFrame([row])
        frame.to_csv(args.csv, mode="a", header=not args.csv.exists(), index=False)


if __name__ == "__main__":
    main()
