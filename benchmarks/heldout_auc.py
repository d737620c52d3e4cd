r"""Exam and image AUC of an ``ichkit predict`` run on a held-out ``ichkit synth`` set.

Usage::

    .venv/bin/ichkit synth HELDOUT --exams 500 --seed 9999 --size 128 --sites 3 \
        --prevalence 0.4 --subtype-mix even --masks --workers 2
    .venv/bin/ichkit predict HELDOUT/dicom/*/*/* --model RUN/model.onnx --out PRED/preds.csv
    .venv/bin/python benchmarks/heldout_auc.py --data HELDOUT --preds PRED

(``--csv OUT.csv --name RUN`` append the row to a CSV).

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

import numpy as np


def main() -> None:
    """Score the run and print a Markdown table row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="ichkit synth output (held out)")
    parser.add_argument(
        "--preds", type=Path, required=True, help="folder of preds.csv + exams.json"
    )
    parser.add_argument("--name", default="", help="row name (default: the preds folder name)")
    parser.add_argument("--csv", type=Path, help="append the figures to this CSV")
    args = parser.parse_args()

    import pandas as pd

    from ichkit.labels import LABELS, read_labels
    from ichkit.metrics import per_label_auc, weighted_log_loss

    exams = pd.read_csv(args.data / "exams.csv", dtype={"series": str}).set_index("series")
    doc = json.loads((args.preds / "exams.json").read_text())
    probs = {
        s["series_instance_uid"]: [s["probabilities"][lab] for lab in LABELS]
        for e in doc["exams"]
        for s in e["series"]
    }
    missing = [s for s in exams.index if s not in probs]
    if missing:
        raise SystemExit(
            f"{args.preds / 'exams.json'}: {len(missing)} series of {args.data / 'exams.csv'} "
            f"were not predicted, e.g. {missing[0]}"
        )
    exam_p = np.array([probs[s] for s in exams.index])
    exam_y = exams[list(LABELS)].to_numpy(dtype=np.float64)
    pred = read_labels(args.preds / "preds.csv")
    truth = read_labels(args.data / "truth.csv").reindex(pred.index)
    unknown = truth.index[truth.isna().any(axis=1)]
    if len(unknown):
        raise SystemExit(
            f"{args.preds / 'preds.csv'}: {len(unknown)} images have no row in "
            f"{args.data / 'truth.csv'}, e.g. {unknown[0]}"
        )
    image_p, image_y = pred[list(LABELS)].to_numpy(), truth[list(LABELS)].to_numpy()

    row: dict[str, float | str | int] = {"run": args.name or args.preds.name, "exams": len(exams)}
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
    if args.csv:
        frame = pd.DataFrame([row])
        frame.to_csv(args.csv, mode="a", header=not args.csv.exists(), index=False)


if __name__ == "__main__":
    main()
