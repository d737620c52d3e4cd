"""Inference: read studies from DICOM, predict each series, write a submission and exams.json.

A *predictor* runs a checkpoint (PyTorch) or its ONNX export (onnxruntime) on
one preprocessed series. :func:`predict_studies` finds the series in each
study folder from the headers (any file names, any order), reads each with
:func:`ichkit.dicom.load_series`, crops and resizes it exactly as training did,
and writes six rows per image (``preds.csv``, valid for ``ichkit score``) plus
``exams.json`` (per-exam probabilities and top slices). A series much thinner
than the model's training slices is read as thick slabs
(:mod:`ichkit.model._slabs`); each of its images gets its slab's prediction.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ichkit.errors import ConfigError, ModelError
from ichkit.labels import LABELS, PROBABILITY_FORMAT, image_id
from ichkit.model._checkpoint import model_crop
from ichkit.model._preprocess import CropBox, preprocess_volume
from ichkit.model._slabs import Slabs, slab_index, slab_mean

__all__ = [
    "OnnxPredictor",
    "PredictResult",
    "Predictor",
    "SeriesPrediction",
    "TorchPredictor",
    "load_predictor",
    "predict_series",
    "predict_studies",
    "series_volume",
]

logger = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

#: Series with fewer images are not predicted (scouts, localizers).
_MIN_SLICES = 3
#: A series this thin (mm) met by a model without ``slice_mm`` gets a warning.
_THIN_WARN_MM = 3.0


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity, e.g. a container's share), else all."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _sigmoid(x: npt.NDArray[np.floating]) -> F64:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def model_slice_mm(meta: dict[str, Any]) -> float | None:
    """The training slice spacing a model file records (None: not recorded)."""
    value = meta.get("slice_mm")
    try:
        mm = float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return None
    return mm if math.isfinite(mm) and mm > 0 else None


class Predictor(Protocol):
    """Runs a series model on one preprocessed series."""

    path: Path
    meta: dict[str, Any]

    @property
    def input_size(self) -> int:
        """Input side in pixels."""
        ...

    @property
    def crop(self) -> str:
        """Head crop the model was trained with (``square`` or ``fit``)."""
        ...

    def __call__(self, hu: npt.NDArray[np.generic]) -> tuple[F64, F64]:
        """(image probabilities (S, 6), exam probabilities (6,)) of (S, size, size) HU."""
        ...


class TorchPredictor:
    """A checkpoint run with PyTorch (CPU or CUDA)."""

    def __init__(self, path: str | os.PathLike[str], **expect: Any) -> None:
        import torch

        from ichkit.model._checkpoint import model_from_checkpoint

        self.model, self.config, payload = model_from_checkpoint(path, **expect)
        self.path = Path(payload["path"])
        self.meta = {k: v for k, v in payload.items() if k not in ("state_dict", "train_state")}
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)

    @property
    def input_size(self) -> int:
        """Input side in pixels."""
        return int(self.meta["input_size"])

    @property
    def crop(self) -> str:
        """Head crop the model was trained with (``square`` or ``fit``)."""
        return model_crop(self.meta)

    def __call__(self, hu: npt.NDArray[np.generic]) -> tuple[F64, F64]:
        """(image probabilities (S, 6), exam probabilities (6,))."""
        import torch

        x = torch.from_numpy(np.asarray(hu, dtype=np.float32)).unsqueeze(0).to(self.device)
        # no TF32 on CUDA: the same fp32 results as onnxruntime and evaluate (to ~1e-5)
        with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            img, exam = self.model(x)
        return _sigmoid(img[0].float().cpu().numpy()), _sigmoid(exam[0].float().cpu().numpy())


class OnnxPredictor:
    """An ONNX export run with onnxruntime on the CPU."""

    def __init__(
        self, path: str | os.PathLike[str], *, threads: int | None = None, **expect: Any
    ) -> None:
        import onnxruntime as ort

        from ichkit.model._checkpoint import check_compatible
        from ichkit.model._onnx import _parse_meta

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or _usable_cpus()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                os.fspath(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types
            raise ModelError(f"not a readable ONNX model: {err}", path=self.path) from err
        self.meta = _parse_meta(self.session.get_modelmeta().custom_metadata_map, self.path)
        check_compatible(self.meta, source=self.path, **expect)
        shape = self.session.get_inputs()[0].shape
        if shape[-1] != self.meta["input_size"]:
            raise ModelError(
                f"ONNX input is {shape[-1]} px but its metadata says {self.meta['input_size']} px",
                path=self.path,
                field="input_size",
                value=shape[-1],
            )

    @property
    def input_size(self) -> int:
        """Input side in pixels."""
        return int(self.meta["input_size"])

    @property
    def crop(self) -> str:
        """Head crop the model was trained with (``square`` or ``fit``)."""
        return model_crop(self.meta)

    def __call__(self, hu: npt.NDArray[np.generic]) -> tuple[F64, F64]:
        """(image probabilities (S, 6), exam probabilities (6,))."""
        x = np.asarray(hu, dtype=np.float32)[None]
        img, exam = self.session.run(None, {"hu": x})
        return _sigmoid(img[0]), _sigmoid(exam[0])


def load_predictor(
    path: str | os.PathLike[str],
    *,
    windows: Sequence[Sequence[Any]] | None = None,
    input_size: int | None = None,
    threads: int | None = None,
) -> Predictor:
    """Open a model file: ``.onnx`` with onnxruntime, anything else as a checkpoint.

    Parameters
    ----------
    path
        ``model.onnx``, a ``.ckpt`` or a run folder.
    windows, input_size
        Expected values (a mismatch raises :class:`CheckpointMismatchError`).
    threads
        onnxruntime intra-op threads (default: CPU count).
    """
    p = Path(path)
    if not p.exists():
        raise ModelError("model file not found", path=p, field="--model")
    expect: dict[str, Any] = {"windows": windows, "input_size": input_size}
    if p.suffix.lower() == ".onnx":
        return OnnxPredictor(p, threads=threads, **expect)
    return TorchPredictor(p, **expect)


@dataclass
class SeriesPrediction:
    """Predictions for one series."""

    study_dir: Path
    series_instance_uid: str
    study_instance_uid: str
    sop_instance_uids: list[str]
    image_probs: F64
    exam_probs: F64
    box: CropBox
    findings: list[str] = field(default_factory=list)
    modality: str = ""
    #: How the images were grouped into slabs when the series was read as
    #: thick slabs (:class:`ichkit.model._slabs.Slabs`), else None.
    slabs: Slabs | None = None
    #: Images of the series that the volume left out (duplicate positions, odd
    #: sizes, unreadable pixels, ...): ``{"sop_instance_uid", "file",
    #: "probabilities_from"}``. preds.csv still gives each one rows (those of
    #: the nearest kept slice, or the series' mean image), as a submission needs.
    left_out: list[dict[str, Any]] = field(default_factory=list)
    #: Their probabilities, (len(left_out), 6).
    left_out_probs: F64 = field(default_factory=lambda: np.zeros((0, len(LABELS))))

    def top_slices(self, k: int = 5) -> list[dict[str, Any]]:
        """The k slices with the highest ``any`` probability.

        For a series read as slabs, the middle image of each of the k highest
        slabs (its images share one probability), with its ``slab``.
        """
        if self.slabs is None:
            candidates = np.arange(len(self.image_probs))
        else:
            starts, ends = self.slabs.bounds()
            candidates = (starts + ends - 1) // 2
        order = candidates[np.argsort(-self.image_probs[candidates, -1], kind="stable")[:k]]
        out = []
        for i in order:
            entry: dict[str, Any] = {
                "index": int(i),
                "sop_instance_uid": self.sop_instance_uids[i],
                "any": round(float(self.image_probs[i, -1]), 6),
            }
            if self.slabs is not None:
                entry["slab"] = int(self.slabs.index[i])
            out.append(entry)
        return out


def series_volume(series: Any, slab_mm: float | None) -> tuple[npt.NDArray[np.int16], Slabs | None]:
    """The HU volume the model reads for a :class:`ichkit.dicom.Series`, and its slabs.

    A series whose slice spacing is under ``slab_mm / 1.5`` is averaged into
    slabs of about ``slab_mm`` (:func:`ichkit.model._slabs.slab_index`);
    otherwise, or with ``slab_mm`` None, the series is returned as it is.
    """
    slabs = slab_index(series.positions, slab_mm)
    if slabs is None:
        return series.hu, None
    return slab_mean(series.hu, slabs.index), slabs


def predict_series(
    predictor: Predictor, series: Any, *, study_dir: Path, slab_mm: float | None = None
) -> SeriesPrediction:
    """Predict one :class:`ichkit.dicom.Series`.

    ``slab_mm``: read a thin series as slabs of this thickness (see
    :func:`series_volume`); None = as it is (:func:`predict_studies` passes
    the model's training slice spacing).
    """
    hu, slabs = series_volume(series, slab_mm)
    volume, box = preprocess_volume(hu, size=predictor.input_size, crop=predictor.crop)
    image_probs, exam_probs = predictor(volume)
    if slabs is not None:
        image_probs = image_probs[slabs.index]
        logger.info(
            "series %s: %d slices %.2f mm apart read as %d slabs of %.2f mm (asked: %.2f mm)",
            series.series_instance_uid,
            len(slabs.index),
            slabs.spacing_mm,
            len(volume),
            slabs.thickness_mm,
            slab_mm,
        )
    return SeriesPrediction(
        study_dir=study_dir,
        series_instance_uid=series.series_instance_uid,
        study_instance_uid=series.study_instance_uid,
        sop_instance_uids=list(series.sop_instance_uids),
        image_probs=image_probs,
        exam_probs=exam_probs,
        box=box,
        findings=[str(f) for f in series.findings],
        modality=series.modality,
        slabs=slabs,
    )


@dataclass
class PredictResult:
    """What :func:`predict_studies` wrote and found."""

    preds_csv: Path
    exams_json: Path
    series: list[SeriesPrediction]
    seconds: float
    heatmaps: dict[str, Any] | None = None
    #: Files and series not predicted by design (unreadable files, dose reports,
    #: scouts, reformats): ``{"path", "series_instance_uid"?, "reason"}``.
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: Studies and CT series that should have been predicted but could not be
    #: (``ichkit predict`` exits with status 3 when there are any).
    failed: list[dict[str, Any]] = field(default_factory=list)


#: A series whose slice normal is further than this from the patient's
#: head-foot axis is a reformat (coronal, sagittal), not an axial stack; 45
#: degrees leaves every real gantry tilt (up to ~30 degrees) axial.
_MIN_AXIAL_COSINE = math.cos(math.radians(45.0))


def _image_series(
    study: Path,
) -> tuple[list[tuple[str, list[Path], list[Path]]], list[dict[str, Any]]]:
    """The CT stacks of a study folder (uid, kept files, left-out files), and what was skipped."""
    from ichkit.dicom import scan_series

    scan = scan_series(study)
    skipped: list[dict[str, Any]] = []
    for bad in scan.unreadable:
        logger.warning("skipped: %s", bad.reason)
        skipped.append({"path": os.fspath(bad.path), "reason": bad.reason})
    out: list[tuple[str, list[Path], list[Path]]] = []
    for record in scan.series:
        # The model reads axial CT stacks: dose reports (SC/OT), scouts and
        # other one- or two-image series, localizers and reformats get no
        # predictions (logged), decided from the headers: their pixels are never read.
        reason: str | None = None
        if (record.modality and record.modality != "CT") or record.n_slices < _MIN_SLICES:
            reason = (
                f"not an axial CT stack (modality {record.modality or '?'}, "
                f"{record.n_slices} image(s))"
            )
        else:
            reason = _not_axial(record.image_type, record.normal)
        if reason is not None:
            logger.info("%s: series %s skipped: %s", study, record.series_instance_uid, reason)
            skipped.append(
                {
                    "path": os.fspath(study),
                    "series_instance_uid": record.series_instance_uid,
                    "reason": reason,
                }
            )
            continue
        out.append((record.series_instance_uid, list(record.files), list(record.left_out)))
    return out, skipped


def _not_axial(image_type: Sequence[str] | None, normal: Sequence[float] | None) -> str | None:
    """Why a series is not an axial stack the model can read (None: it is).

    ``image_type`` is the first kept slice's ImageType, ``normal`` the
    series' slice normal (:attr:`ichkit.dicom.SeriesRecord.normal`).
    """
    image_type = tuple(t.upper() for t in (image_type or ()))
    if "LOCALIZER" in image_type:
        return "a localizer (ImageType " + "\\".join(image_type) + ")"
    if normal is not None and abs(float(np.asarray(normal)[2])) < _MIN_AXIAL_COSINE:
        cosines = ", ".join(f"{v:.2f}" for v in np.asarray(normal))
        return (
            f"not axial: slice normal ({cosines}) is more than 45 degrees from the "
            "head-foot axis (a coronal or sagittal reformat)"
        )
    return None


def _left_out_images(
    series: Any, given: Sequence[Path], image_probs: F64, elsewhere: list[str] | None = None
) -> tuple[list[dict[str, Any]], F64]:
    """Rows for the images of a series that its volume left out.

    Each gets the prediction of the kept slice nearest to its position along
    the slice normal (a duplicate position: the slice kept there); without a
    usable position (none, or another orientation), the series' mean image.
    Files whose header cannot be read have no SOPInstanceUID and get no rows;
    images of another study under the same SeriesInstanceUID get none either
    and are appended to ``elsewhere``.
    """
    from ichkit.dicom import read_header
    from ichkit.errors import DicomError

    kept = {Path(p) for p in series.paths}
    known = set(series.sop_instance_uids)
    normal = None if series.normal is None else np.asarray(series.normal, dtype=np.float64)
    positions = np.asarray(series.positions, dtype=np.float64)
    iop = series.image_orientation_patient
    entries: list[dict[str, Any]] = []
    probs: list[F64] = []
    for path in given:
        if Path(path) in kept:
            continue
        try:
            header = read_header(path)
        except DicomError as err:
            logger.warning("left out, no rows: %s", err)
            continue
        uid = header.sop_instance_uid
        if not uid or uid in known:
            continue  # a second copy of an image that has its rows
        if header.study_instance_uid != series.study_instance_uid:
            # another exam under the same SeriesInstanceUID (mixed_studies): this
            # series' slices say nothing about it, so it gets no rows
            logger.warning("left out, no rows (another study in this series): %s", path)
            if elsewhere is not None:
                elsewhere.append(os.fspath(path))
            continue
        known.add(uid)
        source = "series mean"
        p = image_probs.mean(axis=0)
        ipp, own = header.image_position_patient, header.image_orientation_patient
        same_plane = (
            own is not None
            and iop is not None
            and max(abs(a - b) for a, b in zip(own, iop, strict=True)) < 0.01
        )
        if normal is not None and ipp is not None and same_plane and np.isfinite(positions).any():
            where = float(np.dot(np.asarray(ipp, dtype=np.float64), normal))
            k = int(np.nanargmin(np.abs(positions - where)))
            p, source = image_probs[k], f"slice {k}"
        entries.append(
            {"sop_instance_uid": uid, "file": os.fspath(path), "probabilities_from": source}
        )
        probs.append(np.asarray(p, dtype=np.float64))
    if entries:
        logger.warning(
            "series %s: %d image(s) left out of the volume get the rows of the nearest kept "
            "slice (exams.json: images_left_out)",
            series.series_instance_uid,
            len(entries),
        )
    table = np.stack(probs) if probs else np.zeros((0, len(LABELS)))
    return entries, table


def predict_studies(
    study_dirs: Sequence[str | os.PathLike[str]],
    model: str | os.PathLike[str] | Predictor,
    *,
    out_csv: str | os.PathLike[str],
    heatmaps: str | os.PathLike[str] | None = None,
    masks: str | os.PathLike[str] | None = None,
    heatmap_threshold: float = 0.5,
    on_series: Callable[[SeriesPrediction], None] | None = None,
    slab_mm: float | None = None,
    exams_json: str | os.PathLike[str] | None = None,
) -> PredictResult:
    """Predict every series of every study folder; write preds.csv and exams.json.

    Parameters
    ----------
    study_dirs
        Folders of one study each (one or more series, any file names).
        Series that are not CT or have fewer than 3 images (scouts, dose
        reports) are skipped.
    model
        A model file (``.onnx``, ``.ckpt``, run folder) or a loaded predictor.
    out_csv
        The submission CSV (six rows per image, RSNA format); ``exams.json``
        is written beside it unless ``exams_json`` says otherwise.
    heatmaps
        Write Grad-CAM overlays of positive slices here (needs the PyTorch
        checkpoint; for an ONNX model, ``best.ckpt`` beside it is used).
    masks
        Folder of synthetic lesion masks (``<SeriesInstanceUID>.npz``) to
        score the heatmap peaks against.
    heatmap_threshold
        ``any`` probability from which a slice gets a heatmap.
    on_series
        Called with each series' prediction as it is made (progress display).
    slab_mm
        Read series with a slice spacing under ``slab_mm / 1.5`` as slabs of
        about ``slab_mm`` (mean HU of consecutive slices); every image gets
        its slab's prediction. None = the training slice spacing the model
        records (models that record none read every series as it is); 0 = never.
    exams_json
        Where to write the per-exam JSON; None = ``exams.json`` beside ``out_csv``.

    A batch goes on past a bad study or series: a study folder with no
    readable axial CT series, or a CT series none of whose files has readable
    pixels, is listed in :attr:`PredictResult.failed` (and ``exams.json``);
    reports, scouts, reformats and unreadable files in :attr:`PredictResult.skipped`.

    Raises
    ------
    ModelError
        A study folder is missing (checked before any work), or no series of
        any study could be predicted.
    """
    from ichkit.dicom import load_series
    from ichkit.errors import IchkitError
    from ichkit.labels import write_label_matrix

    t0 = time.perf_counter()
    if slab_mm is not None and not (math.isfinite(slab_mm) and slab_mm >= 0):
        raise ConfigError(
            f"must be a thickness in mm (0 = never read as slabs); got {slab_mm!r}",
            field="--slab-mm",
            value=slab_mm,
        )
    json_path = Path(out_csv).with_name("exams.json") if exams_json is None else Path(exams_json)
    if json_path.resolve() == Path(out_csv).resolve():
        if exams_json is None:
            raise ConfigError(
                f"{out_csv}: the per-exam exams.json would overwrite the submission: name "
                "the CSV otherwise or pass --exams-json",
                field="--out",
                value=str(out_csv),
            )
        raise ConfigError(
            f"{json_path} must not be the submission CSV's path",
            field="--exams-json",
            value=str(json_path),
        )
    if json_path.is_dir():  # before any work, like the study folders below
        raise ConfigError(
            f"{json_path} is a folder; give the JSON file's path",
            field="--exams-json",
            value=str(json_path),
        )
    studies = [Path(s) for s in study_dirs]
    missing = [s for s in studies if not s.is_dir()]
    if missing:  # before any work: a mistyped name must not cost the rest of the batch
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        what = "is a file, not a study folder" if missing[0].is_file() else "study folder not found"
        raise ModelError(f"{what}{more}", path=missing[0], field="STUDY_DIR")
    if masks is not None and not Path(masks).is_dir():
        raise ModelError("masks folder not found", path=masks, field="--masks")
    predictor = load_predictor(model) if isinstance(model, str | os.PathLike) else model
    unrecorded = False
    if slab_mm is None:
        slab_mm = model_slice_mm(predictor.meta)
        unrecorded = slab_mm is None
    writer = None
    if heatmaps is not None:
        from ichkit.model._gradcam import HeatmapWriter

        # built first: a missing or mismatched checkpoint fails before any inference
        writer = HeatmapWriter(
            predictor,
            Path(heatmaps),
            masks=None if masks is None else Path(masks),
            threshold=heatmap_threshold,
        )
    results: list[SeriesPrediction] = []
    skipped: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for study in studies:
        found, skips = _image_series(study)
        skipped.extend(skips)
        predicted = 0
        for uid, files, left_out in found:
            where = {"path": os.fspath(study), "series_instance_uid": uid}
            try:
                series = load_series(files, series_instance_uid=uid)
            except IchkitError as err:  # e.g. no file of the series has readable pixels
                logger.warning("series %s not predicted: %s", uid, err)
                failed.append({**where, "reason": str(err)})
                continue
            if unrecorded:
                _warn_thin(series, predictor.path)
            pred = predict_series(predictor, series, study_dir=study, slab_mm=slab_mm or None)
            elsewhere: list[str] = []
            pred.left_out, pred.left_out_probs = _left_out_images(
                series, [*files, *left_out], pred.image_probs, elsewhere
            )
            if elsewhere:  # no rows for them: the submission misses images, say so
                failed.append(
                    {
                        **where,
                        "reason": f"{len(elsewhere)} image(s) of another study share this "
                        f"SeriesInstanceUID and were not predicted (first: {elsewhere[0]})",
                    }
                )
            results.append(pred)
            predicted += 1
            if writer is not None:
                writer.add(pred, series)  # the volume is not kept for later
            if on_series is not None:
                on_series(pred)
        if not predicted and not any(f["path"] == os.fspath(study) for f in failed):
            reason = (
                "no DICOM series found"
                if not found and not skips
                else "no axial CT series could be predicted (exams.json: skipped, failed)"
            )
            logger.warning("%s: %s", study, reason)
            failed.append({"path": os.fspath(study), "field": "STUDY_DIR", "reason": reason})
    if not results:
        first = failed[0]
        raise ModelError(
            f"{first['reason']}"
            + (f" (and {len(failed) - 1} more problem(s))" if len(failed) > 1 else ""),
            path=first["path"],
            field=first.get("field", "STUDY_DIR"),
        )
    rows: dict[str, F64] = {}
    for pred in results:
        for uid, probs in zip(pred.sop_instance_uids, pred.image_probs, strict=True):
            if _row_name_ok(uid, pred, skipped):
                rows[image_id(uid)] = probs
        for entry, probs in zip(pred.left_out, pred.left_out_probs, strict=True):
            if _row_name_ok(entry["sop_instance_uid"], pred, skipped):
                rows.setdefault(image_id(entry["sop_instance_uid"]), probs)
    table = np.clip(np.asarray(list(rows.values()), dtype=np.float64), 0.0, 1.0)
    out = Path(out_csv)
    # written without pandas, whose import would cost a cold `ichkit predict` a few tenths
    # of a second (benchmarks/RESULTS.md, Inference)
    write_label_matrix(
        out, list(rows), table.reshape(len(rows), len(LABELS)), float_format=PROBABILITY_FORMAT
    )
    heat_summary = None if writer is None else writer.summary()
    seconds = time.perf_counter() - t0
    _write_exams_json(json_path, predictor, results, heat_summary, skipped, failed)
    logger.info(
        "predicted %d image(s) in %d series of %d stud(ies) in %.2f s: %s",
        len(rows),
        len(results),
        len(studies),
        seconds,
        out,
    )
    return PredictResult(out, json_path, results, seconds, heat_summary, skipped, failed)


def _row_name_ok(uid: str, pred: SeriesPrediction, skipped: list[dict[str, Any]]) -> bool:
    """Whether an image's SOPInstanceUID can name submission rows (else it is skipped)."""
    name = image_id(uid)
    if name and not any(c in name for c in ',"\r\n'):
        return True
    reason = f"SOPInstanceUID {uid!r} cannot name a submission row: the image gets no rows"
    logger.warning("series %s: %s", pred.series_instance_uid, reason)
    skipped.append(
        {
            "path": os.fspath(pred.study_dir),
            "series_instance_uid": pred.series_instance_uid,
            "reason": reason,
        }
    )
    return False


def _warn_thin(series: Any, model: Path) -> None:
    """Warn that a thin series meets a model that records no training slice spacing."""
    spacing = float(series.spacing[0])  # the median gap of the positions (NaN: unknown)
    if 0 < spacing < _THIN_WARN_MM:
        logger.warning(
            "series %s: slices %.2f mm apart, read one by one: %s records no training slice "
            "spacing (trained before ichkit recorded it); --slab-mm 5 reads 5 mm slabs",
            series.series_instance_uid,
            spacing,
            model,
        )


def _probs_dict(p: F64) -> dict[str, float]:
    return {lab: round(float(v), 6) for lab, v in zip(LABELS, p, strict=True)}


def _write_exams_json(
    path: Path,
    predictor: Predictor,
    results: Sequence[SeriesPrediction],
    heatmaps: dict[str, Any] | None,
    skipped: Sequence[dict[str, Any]] = (),
    failed: Sequence[dict[str, Any]] = (),
) -> None:
    from ichkit._atomic import atomic_write_text

    studies: dict[tuple[str, str], list[SeriesPrediction]] = {}
    for pred in results:
        studies.setdefault((os.fspath(pred.study_dir), pred.study_instance_uid), []).append(pred)
    exams = []
    for (study_dir, study_uid), preds in studies.items():
        exam = np.max(np.stack([p.exam_probs for p in preds]), axis=0)
        exams.append(
            {
                "study_dir": study_dir,
                "study_instance_uid": study_uid,
                "probabilities": _probs_dict(exam),
                "series": [
                    {
                        "series_instance_uid": p.series_instance_uid,
                        "modality": p.modality,
                        "n_slices": len(p.sop_instance_uids),
                        "probabilities": _probs_dict(p.exam_probs),
                        "max_image_probabilities": _probs_dict(p.image_probs.max(axis=0)),
                        "top_slices": p.top_slices(),
                        "findings": p.findings,
                        **(
                            {
                                "read_as_slabs": {
                                    "slice_spacing_mm": round(p.slabs.spacing_mm, 3),
                                    "slab_mm": round(p.slabs.thickness_mm, 3),
                                    "slabs": p.slabs.count,
                                }
                            }
                            if p.slabs is not None
                            else {}
                        ),
                        **({"images_left_out": p.left_out} if p.left_out else {}),
                    }
                    for p in preds
                ],
            }
        )
    doc: dict[str, Any] = {
        "model": os.fspath(predictor.path),
        "labels": list(LABELS),
        "exam_probability": "per series: the model's exam head; per study: the maximum "
        "over its series",
        "exams": exams,
        "skipped": list(skipped),
        "failed": list(failed),
    }
    if heatmaps is not None:
        doc["heatmaps"] = heatmaps
    atomic_write_text(path, json.dumps(doc, indent=2, allow_nan=False) + "\n")


def nan_to_none(x: float) -> float | None:
    """JSON-friendly float."""
    return None if math.isnan(x) else x
