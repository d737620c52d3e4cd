"""Challenge submissions: validation against the truth file, and scoring.

A submission is an RSNA labels CSV (:mod:`ichkit.labels`) holding a probability
for each of the six labels of every truth image. It is rejected
(:class:`~ichkit.errors.SubmissionError`, exit status 2) when it misses an image,
repeats a row, names an image the truth does not hold, holds a value outside
[0, 1] or NaN, or a malformed row. The message names the *first* offending row:
the earliest offending line of the submission; a missing row, which has no
line, is reported only when no line is wrong, as the first missing ID in truth
order (images in truth-file order, labels in :data:`~ichkit.labels.LABELS` order).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ichkit.errors import LabelsError, SubmissionError
from ichkit.labels import LABELS, LabelRows, image_id, read_label_rows
from ichkit.metrics._auc import exam_max, per_label_auc
from ichkit.metrics._bootstrap import BootstrapResult, bootstrap_ci
from ichkit.metrics._logloss import _log_loss_summary

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

__all__ = [
    "ScoreReport",
    "read_exam_map",
    "score",
    "score_files",
    "validate_submission",
]

logger = logging.getLogger(__name__)

_IMAGE_COLUMNS = ("image_id", "sopinstanceuid", "sop_instance_uid", "image", "id")
_EXAM_COLUMNS = ("exam_id", "exam", "study", "study_id", "studyinstanceuid", "study_instance_uid")


@dataclass(frozen=True)
class ScoreReport:
    """The score of a submission.

    Attributes
    ----------
    weighted_log_loss
        The challenge metric.
    log_loss, auc
        Per label (``{label: value}``); an AUC is NaN when the truth holds one class.
    n_images
        Number of images scored.
    exam_auc, n_exams
        Exam-level AUC per label (exam probability and truth = maximum over its
        images) when an image-to-exam map was given.
    bootstrap, exam_bootstrap
        Bootstrap intervals: whole exams resampled when an image-to-exam map
        was given, single images otherwise; exams resampled for exam level.
    """

    weighted_log_loss: float
    log_loss: dict[str, float]
    auc: dict[str, float]
    n_images: int
    exam_auc: dict[str, float] | None = None
    n_exams: int | None = None
    bootstrap: BootstrapResult | None = None
    exam_bootstrap: BootstrapResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None).

        Keys ``weighted_log_loss``, ``per_label`` (``{label: {"log_loss", "auc"}}``)
        and ``n_images``; ``n_exams`` and ``exam_auc`` with an exam map;
        ``bootstrap`` with intervals.
        """
        out: dict[str, Any] = {
            "weighted_log_loss": _num(self.weighted_log_loss),
            "per_label": {
                lab: {"log_loss": _num(self.log_loss[lab]), "auc": _num(self.auc[lab])}
                for lab in LABELS
            },
            "n_images": self.n_images,
        }
        if self.exam_auc is not None:
            out["n_exams"] = self.n_exams
            out["exam_auc"] = {lab: _num(v) for lab, v in self.exam_auc.items()}
        if self.bootstrap is not None:
            boot = self.bootstrap
            ci: dict[str, Any] = {
                "n_boot": boot.n_boot,
                "seed": boot.seed,
                "confidence": boot.confidence,
                "weighted_log_loss": _pair(boot.weighted_log_loss),
                "resampled": "exams" if self.exam_auc is not None else "images",
                "per_label": {
                    lab: {
                        "log_loss": _pair(boot.log_loss[lab]),
                        "auc": _pair(boot.auc[lab]),
                        "auc_replicates": boot.auc_replicates.get(lab),
                    }
                    for lab in LABELS
                },
            }
            if self.exam_bootstrap is not None:
                exam_boot = self.exam_bootstrap
                ci["exam_auc"] = {lab: _pair(exam_boot.auc[lab]) for lab in LABELS}
                ci["exam_auc_replicates"] = dict(exam_boot.auc_replicates)
            out["bootstrap"] = ci
        return out


def _num(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _pair(pair: tuple[float, float]) -> list[float | None]:
    return [_num(pair[0]), _num(pair[1])]


def _match_images(rows: LabelRows, truth: np.ndarray, truth_keys: np.ndarray | None) -> np.ndarray:
    """Index in ``truth`` of each of ``rows.images`` (-1: not in the truth)."""
    keys = rows.image_keys
    if truth_keys is None or keys is None:
        index = {img: i for i, img in enumerate(truth.tolist())}
        return np.fromiter(
            (index.get(img, -1) for img in rows.images.tolist()),
            dtype=np.int64,
            count=rows.images.size,
        )
    # Both hold zero-padded id bytes as uint64 words: pad to one width, sort
    # truth and submission keys together, and pair equal neighbours.
    width = max(keys.shape[1], truth_keys.shape[1])
    both = np.zeros((truth_keys.shape[0] + keys.shape[0], width), dtype=keys.dtype)
    both[: truth_keys.shape[0], : truth_keys.shape[1]] = truth_keys
    both[truth_keys.shape[0] :, : keys.shape[1]] = keys
    order = np.lexsort(both.T) if width > 1 else np.argsort(both[:, 0], kind="stable")
    ordered = both[order]
    new = np.concatenate(([True], (ordered[1:] != ordered[:-1]).any(axis=1)))
    group = np.empty(order.size, dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    n_truth = truth_keys.shape[0]
    truth_of_group = np.full(int(group.max()) + 1 if group.size else 0, -1, dtype=np.int64)
    truth_of_group[group[:n_truth]] = np.arange(n_truth, dtype=np.int64)
    return np.asarray(truth_of_group[group[n_truth:]])


def validate_submission(
    submission: LabelRows | pd.DataFrame,
    truth_images: Sequence[str] | np.ndarray,
    *,
    truth_keys: np.ndarray | None = None,
) -> np.ndarray:
    """Check a submission against the truth images; return its predictions in truth order.

    Parameters
    ----------
    submission
        The submission's rows, from :func:`~ichkit.labels.read_label_rows` with
        ``strict=False`` (so that malformed rows compete for "first" with the
        other problems), or a long table as from
        :func:`~ichkit.labels.read_labels_long`.
    truth_images
        The truth's image ids, in truth order.
    truth_keys
        The truth's :attr:`~ichkit.labels.LabelRows.image_keys`, if known (faster).

    Returns
    -------
    numpy.ndarray
        (len(truth_images), 6) float64 probabilities in
        :data:`~ichkit.labels.LABELS` order.

    Raises
    ------
    SubmissionError
        At the earliest offending line: a malformed row, a value outside [0, 1]
        or NaN, an image not in the truth, a repeated row (naming both lines);
        else the first missing row in truth order.
    """
    rows = submission if isinstance(submission, LabelRows) else LabelRows.from_frame(submission)
    truth = np.asarray(truth_images, dtype=str)
    candidates: list[tuple[int, SubmissionError]] = []
    problem = rows.problem_error(SubmissionError)
    if problem is not None and rows.problem is not None:
        candidates.append((rows.problem.line, problem))  # type: ignore[arg-type]
    ok = rows.image >= 0
    line, value = rows.line, rows.value

    # Images of the submission → index in the truth (-1: unknown).
    target = np.full(len(rows), -1, dtype=np.int64)
    to_truth = _match_images(rows, truth, truth_keys)
    target[ok] = to_truth[rows.image[ok]]
    unknown = ok & (target < 0)
    if bool(unknown.any()):
        i = int(np.argmax(unknown))
        img = str(rows.images[rows.image[i]])
        candidates.append(
            (
                int(line[i]),
                SubmissionError(
                    f"image {img!r} of row {rows.row_text(i)} is not in the truth file",
                    path=rows.path,
                    field=f"line {line[i]}",
                    value=img,
                ),
            )
        )
    bad_value = ok & ~((value >= 0.0) & (value <= 1.0))
    if bool(bad_value.any()):
        i = int(np.argmax(bad_value))
        err = rows._value_error(i, SubmissionError)
        candidates.append((int(line[i]), err))  # type: ignore[arg-type]
    valid = np.flatnonzero(ok)
    key = rows.image[valid] * len(LABELS) + rows.label[valid]
    if valid.size and int(np.bincount(key).max()) > 1:
        order = np.argsort(key, kind="stable")
        same = np.flatnonzero(key[order][1:] == key[order][:-1])
        first, again = valid[order[same]], valid[order[same + 1]]
        j = int(np.argmin(line[again]))
        a, b = int(first[j]), int(again[j])
        candidates.append(
            (
                int(line[b]),
                SubmissionError(
                    f"row {rows.row_text(b)} repeats line {line[a]}; each image and label "
                    "may appear once",
                    path=rows.path,
                    field=f"line {line[b]}",
                    value=rows.row_text(b),
                ),
            )
        )
    if candidates:
        raise min(candidates, key=lambda c: c[0])[1]

    pred = np.full((truth.size, len(LABELS)), np.nan)
    pred[target[valid], rows.label[valid]] = value[valid]
    missing = np.isnan(pred)
    if bool(missing.any()):
        flat = int(np.argmax(missing.reshape(-1)))
        r, c = divmod(flat, len(LABELS))
        rid = f"ID_{truth[r]}_{LABELS[c]}"
        raise SubmissionError(
            f"row {rid} is missing (truth image {r + 1} of {truth.size}; "
            f"{int(missing.sum())} row(s) missing in all); every truth image needs six rows",
            path=rows.path,
            field="ID",
            value=rid,
        )
    return pred


def read_exam_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read an image-to-exam map CSV.

    Parameters
    ----------
    path
        CSV with a header holding an image column (``image_id``,
        ``SOPInstanceUID``, ``sop_instance_uid``, ``image`` or ``ID``) and an
        exam column (``exam_id``, ``exam``, ``study``, ``study_id``,
        ``StudyInstanceUID`` or ``study_instance_uid``); names are matched
        ignoring case. Image ids may carry the ``ID_`` prefix.

    Returns
    -------
    dict
        Image id (without ``ID_``) → exam id.

    Raises
    ------
    LabelsError
        Missing file, missing column, an empty cell, or an image mapped to two
        different exams (naming both lines).
    """
    file = Path(path)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as err:
        raise LabelsError("file not found", path=file) from err
    except (OSError, UnicodeDecodeError) as err:
        raise LabelsError(f"cannot read file: {err}", path=file) from err
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    lowered = [h.lower() for h in header]
    image_col = next((lowered.index(c) for c in _IMAGE_COLUMNS if c in lowered), None)
    exam_col = next((lowered.index(c) for c in _EXAM_COLUMNS if c in lowered), None)
    if image_col is None or exam_col is None:
        raise LabelsError(
            f"header {','.join(header)!r} lacks an image column (one of "
            f"{', '.join(_IMAGE_COLUMNS)}) or an exam column (one of {', '.join(_EXAM_COLUMNS)})",
            path=file,
            field="line 1",
            value=header,
        )
    mapping: dict[str, str] = {}
    first_line: dict[str, int] = {}
    try:
        for fields in reader:
            if not fields or not "".join(fields).strip():
                continue
            n = reader.line_num
            if len(fields) <= max(image_col, exam_col):
                raise LabelsError(
                    f"row has {len(fields)} field(s); expected {len(header)}",
                    path=file,
                    field=f"line {n}",
                    value=",".join(fields),
                )
            img, exam = image_id(fields[image_col]), fields[exam_col].strip()
            if not img or not exam:
                raise LabelsError(
                    f"empty {header[image_col] if not img else header[exam_col]} cell",
                    path=file,
                    field=f"line {n}",
                    value=",".join(fields),
                )
            previous = mapping.setdefault(img, exam)
            if previous != exam:
                raise LabelsError(
                    f"image {img!r} is mapped to exam {previous!r} on line "
                    f"{first_line[img]} and to {exam!r} on line {n}",
                    path=file,
                    field=f"lines {first_line[img]} and {n}",
                    value=(previous, exam),
                )
            first_line.setdefault(img, n)
    except csv.Error as err:
        raise LabelsError(
            f"not a readable CSV file: {err}", path=file, field=f"line {reader.line_num}"
        ) from err
    return mapping


def _exam_codes(
    images: np.ndarray, mapping: Mapping[str, str], path: Path | None
) -> tuple[np.ndarray, list[str]]:
    codes = np.empty(images.size, dtype=np.int64)
    index: dict[str, int] = {}
    for i, img in enumerate(images.tolist()):
        exam = mapping.get(img)
        if exam is None:
            raise LabelsError(
                f"truth image {img!r} has no exam in the image-to-exam map",
                path=path,
                field="image_id",
                value=img,
            )
        codes[i] = index.setdefault(exam, len(index))
    return codes, list(index)


def score(
    y_true: npt.ArrayLike,
    y_pred: npt.ArrayLike,
    *,
    exam_codes: npt.ArrayLike | None = None,
    n_boot: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> ScoreReport:
    """Score aligned (images, 6) truths and predictions.

    Parameters
    ----------
    y_true, y_pred
        (images, 6) arrays in :data:`~ichkit.labels.LABELS` order.
    exam_codes
        Optional (images,) int exam codes ``0 .. exams - 1`` for exam-level AUC.
        With them the bootstrap resamples whole exams (an exam's images are
        correlated); without them it resamples single images.
    n_boot
        Bootstrap replicates for confidence intervals (0: none).
    seed, confidence
        Bootstrap seed and coverage.
    """
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    overall, per_label = _log_loss_summary(true, pred)
    report: dict[str, Any] = {
        "weighted_log_loss": overall,
        "log_loss": per_label,
        "auc": per_label_auc(true, pred),
        "n_images": int(true.shape[0]),
    }
    exam_true = exam_pred = codes = None
    if exam_codes is not None:
        codes = np.asarray(exam_codes, dtype=np.int64)
        exam_true, exam_pred = exam_max(true, codes), exam_max(pred, codes)
        report["exam_auc"] = per_label_auc(exam_true, exam_pred)
        report["n_exams"] = int(exam_true.shape[0])
    if n_boot > 0:
        report["bootstrap"] = bootstrap_ci(
            true, pred, n_boot=n_boot, seed=seed, confidence=confidence, groups=codes
        )
        if exam_true is not None and exam_pred is not None:
            report["exam_bootstrap"] = bootstrap_ci(
                exam_true, exam_pred, n_boot=n_boot, seed=seed, confidence=confidence
            )
    return ScoreReport(**report)


def score_files(
    submission_path: str | os.PathLike[str],
    truth_path: str | os.PathLike[str],
    *,
    exams_path: str | os.PathLike[str] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> ScoreReport:
    """Validate a submission CSV against a truth CSV and score it.

    Parameters
    ----------
    submission_path
        The submission (RSNA labels CSV of probabilities).
    truth_path
        The truth (RSNA labels CSV of 0/1; identical duplicate rows allowed).
    exams_path
        Optional image-to-exam map (:func:`read_exam_map`) for exam-level AUC.
    n_boot, seed, confidence
        Bootstrap intervals (0 replicates: none).

    Returns
    -------
    ScoreReport

    Raises
    ------
    SubmissionError
        The submission is malformed or does not match the truth
        (:func:`validate_submission`).
    LabelsError
        The truth file (or exam map) is malformed, empty, incomplete or not 0/1.
    """
    truth_rows = read_label_rows(truth_path)
    images, truth = truth_rows.to_matrix(require_complete=True)
    if images.size == 0:
        raise LabelsError("truth file holds no images", path=truth_rows.path)
    not_binary = (truth != 0.0) & (truth != 1.0)
    if bool(not_binary.any()):
        r, c = divmod(int(np.argmax(not_binary.reshape(-1))), len(LABELS))
        raise LabelsError(
            f"truth value {float(truth[r, c])!r} of ID_{images[r]}_{LABELS[c]} is not 0 or 1",
            path=truth_rows.path,
            field="Label",
            value=float(truth[r, c]),
        )
    try:
        sub_rows = read_label_rows(submission_path, strict=False)
    except SubmissionError:
        raise
    except LabelsError as err:
        raise SubmissionError(err.reason, path=err.path, field=err.field, value=err.value) from err
    pred = validate_submission(sub_rows, images, truth_keys=truth_rows.image_keys)
    codes = None
    if exams_path is not None:
        codes, _ = _exam_codes(images, read_exam_map(exams_path), Path(exams_path))
    logger.debug("scoring %d images", images.size)
    return score(truth, pred, exam_codes=codes, n_boot=n_boot, seed=seed, confidence=confidence)
