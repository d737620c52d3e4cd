"""Training: one code path for a single process and for ``torchrun`` DDP.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every process joins a process group
(gloo on CPU, nccl on CUDA). Each optimiser step takes one *global* batch of
``batch_exams`` series, chosen by a seeded permutation per epoch; process *r*
takes every *world*-th series of it. The loss is normalised by the global batch
(images and exams) and multiplied by the world size, so that DDP's gradient
averaging gives exactly the single-process gradient; with GroupNorm encoders
and per-exam augmentation seeds the runs agree to float rounding.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import io
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812

from ichkit.errors import DatasetError
from ichkit.labels import LABEL_WEIGHTS, LABELS
from ichkit.model._augment import SeriesAugment, sample_seed
from ichkit.model._cache import CachedSeries
from ichkit.model._checkpoint import (
    check_compatible,
    load_checkpoint,
    model_meta,
    save_checkpoint,
)
from ichkit.model._metrics import auc, weighted_log_loss
from ichkit.model._preprocess import AIR_HU
from ichkit.model._slabs import THIN_RATIO, Slabs, slab_index, slab_mean
from ichkit.model.config import TrainConfig, config_to_toml
from ichkit.model.networks import SeriesModel, build_model

if TYPE_CHECKING:
    import pandas as pd

    from ichkit.model._data import DatasetLayout, SeriesFiles

__all__ = [
    "Example",
    "ProgressEvent",
    "TrainResult",
    "collate",
    "load_split",
    "predict_examples",
    "read_as_slabs",
    "train_model",
]

logger = logging.getLogger(__name__)

METRIC_COLUMNS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_exam_loss",
    "val_exam_auc_mean",
    "val_image_auc_any",
    "lr",
    "seconds",
    "images_per_s",
)


@dataclass(frozen=True)
class Example:
    """A cached series with its labels, as the model reads it.

    A thin series may be read as thick slabs (:func:`read_as_slabs`), as
    ``ichkit predict`` reads it: the model then sees one slice per slab, the
    mean HU of the slab's images, labelled positive for a label when any of
    its images is. ``labels`` and :meth:`load` are per model slice;
    ``labels_per_image`` and :meth:`to_images` per image of the series.
    """

    series: CachedSeries
    labels: npt.NDArray[np.float32]
    """Labels (model slices, 6): per image, or per slab when read as slabs."""
    slabs: Slabs | None = None
    """How the series' images are grouped into slabs; None: read as it is."""
    image_labels: npt.NDArray[np.float32] | None = None
    """Labels per image (images, 6) when read as slabs (else ``labels`` are per image)."""

    @property
    def n_slices(self) -> int:
        """Slices the model reads (slabs when read as slabs)."""
        return int(self.labels.shape[0])

    @property
    def labels_per_image(self) -> npt.NDArray[np.float32]:
        """Labels (images, 6) of every image of the series."""
        return self.labels if self.image_labels is None else self.image_labels

    def load(self) -> npt.NDArray[np.int16]:
        """The volume the model reads (memory-mapped; slab means when read as slabs)."""
        vol = self.series.load()
        return vol if self.slabs is None else slab_mean(vol, self.slabs.index)

    def to_images(self, probs: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Per-model-slice rows (slices, …) as per-image rows: each image gets its slab's."""
        return probs if self.slabs is None else probs[self.slabs.index]


def read_as_slabs(examples: Sequence[Example], slab_mm: float | None) -> list[Example]:
    """The examples, each thin series read as slabs of about ``slab_mm`` (as predict does).

    A series is thin when its slice spacing is under ``slab_mm / 1.5``
    (:func:`ichkit.model._slabs.slab_index`); its slabs come from the slice
    positions recorded in the cache (evenly spaced by its slice spacing for a
    cache written by an older ichkit). The slab means are taken over the
    cached slices, which are cropped and resized already; ``ichkit predict``
    averages before the crop and the resize, both linear per slice, so the
    two differ by the cache's rounding to whole HU and by a crop box drawn
    around the thin slices rather than the slabs. None or NaN: every series as it is.
    """
    if slab_mm is None or not math.isfinite(slab_mm):
        return list(examples)
    out: list[Example] = []
    n_slabbed = 0
    for ex in examples:
        base = ex if ex.slabs is None else Example(ex.series, ex.labels_per_image)
        positions = base.series.slice_positions()
        slabs = None if positions is None else slab_index(positions, slab_mm)
        if slabs is None:
            out.append(base)
            continue
        starts, _ = slabs.bounds()
        labels = np.maximum.reduceat(base.labels, starts, axis=0)
        out.append(Example(base.series, labels, slabs, image_labels=base.labels))
        n_slabbed += 1
    if n_slabbed:
        logger.info(
            "%d of %d series read as slabs of about %.3g mm (thinner than %.3g mm)",
            n_slabbed,
            len(out),
            slab_mm,
            slab_mm / THIN_RATIO,
        )
    return out


@dataclass(frozen=True)
class ProgressEvent:
    """What the training loop reports to a progress display.

    ``kind`` is ``stage`` (text; total may be set), ``advance`` (one unit of
    the stage), ``epoch`` (a new epoch of ``total`` steps), ``step`` (``loss``),
    ``epoch_end`` (``row`` of metrics) or ``done``.
    """

    kind: str
    text: str = ""
    total: int | None = None
    epoch: int = 0
    loss: float = math.nan
    row: dict[str, float] = field(default_factory=dict)


ProgressFn = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class TrainResult:
    """Where a run's outputs are and how it ended."""

    out: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics_csv: Path
    onnx: Path | None
    best_epoch: int
    best_metrics: dict[str, float]


# --------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class _Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank if world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        # rank 0 builds the cache (hours for the whole RSNA set on a cold disk)
        # while the others wait in a barrier; nccl's default timeout is 10 min
        torch.distributed.init_process_group(backend=backend, timeout=_dist_timeout())
        logger.info("DDP: rank %d of %d, backend %s", rank, world, backend)
    return _Dist(rank=rank, world=world, local_rank=local_rank, device=device)


def _dist_timeout() -> datetime.timedelta:
    """How long DDP processes wait for each other: ``ICHKIT_DIST_TIMEOUT_S``, default 6 h."""
    raw = os.environ.get("ICHKIT_DIST_TIMEOUT_S", str(6 * 3600))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not seconds > 0:
        from ichkit.errors import ConfigError

        raise ConfigError(
            f"the DDP timeout must be a positive number of seconds, not {raw!r}",
            field="ICHKIT_DIST_TIMEOUT_S",
            value=raw,
        )
    return datetime.timedelta(seconds=seconds)


def _barrier(dist: _Dist) -> None:
    if dist.world > 1:
        torch.distributed.barrier()


def _gather(dist: _Dist, obj: Any) -> list[Any]:
    if dist.world == 1:
        return [obj]
    out: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(out, obj)
    return out


# --------------------------------------------------------------------------- precision


def resolve_precision(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision setting on a device (None = fp32)."""
    if setting == "fp32":
        return None
    if setting == "bf16":
        return torch.bfloat16
    if setting == "fp16":
        return torch.float16
    if device.type == "cuda":
        # native bf16 only (Ampere and later): on a V100 or T4 emulated bf16 is slow,
        # and fp16 with a GradScaler uses their tensor cores
        try:
            native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch < 2.4 has no including_emulation: Ampere (sm_80) and later
            native_bf16 = torch.cuda.get_device_capability(device)[0] >= 8
        return torch.bfloat16 if native_bf16 else torch.float16
    # On CPUs without native bf16 (AVX2-only) autocast is slower than fp32.
    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return torch.bfloat16 if native else None


def _autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    if n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != old:
            torch.set_num_threads(old)


# --------------------------------------------------------------------------- data


def load_split(
    cfg: TrainConfig,
    *,
    cache_dir: Path,
    splits: Sequence[str],
    progress: ProgressFn | None = None,
    build: bool = True,
) -> dict[str, list[Example]]:
    """Find the dataset, fill the cache and return the examples of some splits.

    Where the dataset has a labelled test set of its own (an ``ichkit export``
    of a split: ``stage_2_test/`` + ``stage_2_test_truth.csv``), its series are
    the test split and the training folder is split into train and val only.

    Parameters
    ----------
    cfg
        Supplies ``data``, ``labels``, ``images``, split settings, ``input_size``.
    cache_dir
        Cache root.
    splits
        Split names wanted (``train``, ``val``, ``test``).
    build
        Build missing cache entries (False: only for a non-zero DDP rank after
        rank 0 built them; they are then all present).
    """
    from ichkit.labels import read_labels
    from ichkit.model._cache import build_cache
    from ichkit.model._data import (
        assign_splits,
        check_patient_disjoint,
        discover_series,
        find_layout,
        label_arrays,
        read_split_file,
        split_file_patients,
    )

    def report(kind: str, text: str = "", total: int | None = None) -> None:
        if progress is not None:
            progress(ProgressEvent(kind, text=text, total=total))

    def discover(part: DatasetLayout, index_name: str) -> tuple[pd.DataFrame, list[SeriesFiles]]:
        report("stage", f"reading labels {part.labels.name}")
        table = read_labels(part.labels)
        report("stage", f"grouping DICOM files of {part.images} into series")
        found = discover_series(
            part,
            set(table.index),
            workers=cfg.cache_workers if build else 1,
            index_file=cache_dir / index_name,
            on_item=lambda: report("advance"),
        )
        return table, found[: cfg.max_exams] if cfg.max_exams else found

    layout = find_layout(cfg.data, labels=cfg.labels, images=cfg.images)
    cache_dir.mkdir(parents=True, exist_ok=True)
    table, found = discover(layout, "series-index.json")
    if not found:
        raise DatasetError(
            "no labelled series found (no DICOM image's SOPInstanceUID is in the labels)",
            path=layout.images,
            field="SOPInstanceUID",
        )
    split_file = Path(cfg.split_file) if cfg.split_file else None
    if split_file is not None and not split_file.is_absolute():
        split_file = layout.root / split_file
    split_table = None if split_file is None else read_split_file(split_file)
    test_part = layout.test_part()
    names = assign_splits(
        found,
        val_fraction=cfg.val_fraction,
        # A labelled test set of its own is the test split: the rest is train and val.
        test_fraction=cfg.test_fraction if test_part is None else 0.0,
        seed=cfg.split_seed,
        split_file=split_file,
        split_table=split_table,
    )
    if test_part is not None and "test" in splits:
        test_table, test_found = discover(test_part, "series-index-test.json")
        table = _join_label_tables(table, test_table, test_part.labels)
        found = found + test_found
        names = names + ["test"] * len(test_found)
    check_patient_disjoint(
        found,
        names,
        patients=None
        if split_file is None
        else split_file_patients(split_file, found, strict=cfg.patient_disjoint, table=split_table),
        source=split_file or layout.root,
        strict=cfg.patient_disjoint,
    )
    wanted = [s for s, n in zip(found, names, strict=True) if n in splits]
    crop = "" if cfg.crop == "square" else f" ({cfg.crop} crop)"
    report("stage", f"caching {len(wanted)} series at {cfg.input_size} px{crop}", len(wanted))
    cached = build_cache(
        wanted,
        cache_dir,
        size=cfg.input_size,
        crop=cfg.crop,
        workers=cfg.cache_workers if build else 1,
        on_done=lambda _: report("advance"),
    )
    by_key = {c.key: c for c in cached}
    out: dict[str, list[Example]] = {name: [] for name in splits}
    chosen = [(by_key[s.key], n) for s, n in zip(found, names, strict=True) if n in splits]
    labels = label_arrays([c.sop_instance_uids for c, _ in chosen], table)
    for (c, n), lab in zip(chosen, labels, strict=True):
        out[n].append(Example(c, lab))
    logger.info(
        "dataset %s (%s): %s",
        layout.root,
        layout.kind,
        ", ".join(f"{k} {len(v)} series" for k, v in out.items()),
    )
    return out


def _join_label_tables(train: pd.DataFrame, test: pd.DataFrame, test_file: Path) -> pd.DataFrame:
    """The training and test label tables as one; an image in both is an error."""
    import pandas as pd

    both = train.index.intersection(test.index)
    if len(both):
        raise DatasetError(
            f"{len(both)} image(s) are labelled both for training and for testing",
            path=test_file,
            field="ID",
            value=str(both[0]),
        )
    return pd.concat([train, test])


def collate(
    volumes: Sequence[torch.Tensor], labels: Sequence[npt.NDArray[np.float32]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad series to one length: (hu (B,S,H,W), lengths (B,), image y (B,S,6), exam y (B,6))."""
    lengths = torch.tensor([v.shape[0] for v in volumes], dtype=torch.long)
    s = int(lengths.max())
    h, w = volumes[0].shape[1], volumes[0].shape[2]
    hu = torch.full((len(volumes), s, h, w), float(AIR_HU), dtype=torch.float32)
    y = torch.zeros((len(volumes), s, len(LABELS)), dtype=torch.float32)
    for i, (v, lab) in enumerate(zip(volumes, labels, strict=True)):
        hu[i, : v.shape[0]] = v
        y[i, : v.shape[0]] = torch.from_numpy(np.asarray(lab, dtype=np.float32))
    exam = torch.stack([torch.from_numpy(np.asarray(lab).max(axis=0)) for lab in labels])
    return hu, lengths, y, exam.float()


def _train_item(
    ex: Example, cfg: TrainConfig, epoch: int, index: int, augment: SeriesAugment | None
) -> tuple[torch.Tensor, npt.NDArray[np.float32]]:
    vol = ex.load()
    lab = ex.labels
    if cfg.train_slices and vol.shape[0] > cfg.train_slices:
        rng = np.random.default_rng(sample_seed(cfg.seed, epoch, index, "crop"))
        start = int(rng.integers(0, vol.shape[0] - cfg.train_slices + 1))
        vol = vol[start : start + cfg.train_slices]
        lab = lab[start : start + cfg.train_slices]
    if augment is None:
        return torch.from_numpy(np.asarray(vol, dtype=np.float32)), lab
    with _torch_threads(1):
        return augment(vol, seed=sample_seed(cfg.seed, epoch, index)), lab


class _BatchDataset(torch.utils.data.Dataset[tuple[torch.Tensor, ...]]):
    """Item i = this process's share of global batch i of an epoch."""

    def __init__(
        self,
        examples: Sequence[Example],
        batches: Sequence[Sequence[int]],
        cfg: TrainConfig,
        epoch: int,
    ) -> None:
        self.examples = examples
        self.batches = batches
        self.cfg = cfg
        self.epoch = epoch
        self.augment = SeriesAugment(cfg.input_size) if cfg.augment else None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        items = [
            _train_item(self.examples[j], self.cfg, self.epoch, j, self.augment)
            for j in self.batches[i]
        ]
        return collate([v for v, _ in items], [lab for _, lab in items])


def _epoch_batches(n: int, cfg: TrainConfig, epoch: int) -> list[list[int]]:
    rng = np.random.default_rng(sample_seed(cfg.seed, epoch, -1, "order"))
    order = rng.permutation(n).tolist()
    b = min(cfg.batch_exams, n)
    return [order[i : i + b] for i in range(0, n - b + 1, b)]


# --------------------------------------------------------------------------- loss


def series_loss(
    image_logits: torch.Tensor,
    exam_logits: torch.Tensor,
    lengths: torch.Tensor,
    image_y: torch.Tensor,
    exam_y: torch.Tensor,
    *,
    n_images: int,
    n_exams: int,
    exam_weight: float,
) -> torch.Tensor:
    """Metric-weighted BCE (``any`` × 2) summed over images and exams, normalised by counts.

    ``n_images`` and ``n_exams`` are the counts of the whole (global) batch,
    so that partial sums from DDP processes add up to the batch mean.
    """
    w = torch.tensor(LABEL_WEIGHTS, dtype=torch.float32, device=image_logits.device)
    mask = torch.arange(image_logits.shape[1], device=image_logits.device).unsqueeze(
        0
    ) < lengths.to(image_logits.device).unsqueeze(1)
    per_image = F.binary_cross_entropy_with_logits(image_logits.float(), image_y, reduction="none")
    image_term = ((per_image * w).sum(-1) / w.sum())[mask].sum() / n_images
    per_exam = F.binary_cross_entropy_with_logits(exam_logits.float(), exam_y, reduction="none")
    exam_term = ((per_exam * w).sum(-1) / w.sum()).sum() / n_exams
    return image_term + exam_weight * exam_term


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict_examples(
    model: SeriesModel,
    examples: Sequence[Example],
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """(image probs (images, 6), exam probs (6,)) of each example, one series at a time.

    A series read as slabs is predicted slab by slab; each image gets its slab's row.
    """
    was_training = model.training
    model.eval()
    out = []
    for ex in examples:
        hu = torch.from_numpy(np.asarray(ex.load(), dtype=np.float32)).unsqueeze(0)
        with _autocast(device, dtype):
            img, exam = model(hu.to(device))
        out.append(
            (
                ex.to_images(torch.sigmoid(img[0].float()).cpu().numpy().astype(np.float64)),
                torch.sigmoid(exam[0].float()).cpu().numpy().astype(np.float64),
            )
        )
    model.train(was_training)
    return out


def _val_metrics(
    examples: Sequence[Example],
    preds: Sequence[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
) -> dict[str, float]:
    if not examples:
        return {}
    yi = np.concatenate([ex.labels_per_image for ex in examples])
    pi = np.concatenate([p for p, _ in preds])
    ye = np.stack([ex.labels.max(axis=0) for ex in examples])
    pe = np.stack([e for _, e in preds])
    aucs = [auc(ye[:, j], pe[:, j]) for j in range(len(LABELS))]
    finite = [a for a in aucs if not math.isnan(a)]
    return {
        "val_loss": weighted_log_loss(yi, pi),
        "val_exam_loss": weighted_log_loss(ye, pe),
        "val_exam_auc_mean": float(np.mean(finite)) if finite else math.nan,
        "val_image_auc_any": auc(yi[:, -1], pi[:, -1]),
    }


# --------------------------------------------------------------------------- loop


def _schedule(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warm = max(1, int(cfg.warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total_steps - warm)
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return factor


def training_slice_mm(examples: Sequence[Example]) -> float | None:
    """Median slice spacing (mm) of the training series; None when none is known."""
    known = [e.series.slice_mm for e in examples if math.isfinite(e.series.slice_mm)]
    if len(known) < len(examples):
        logger.warning(
            "the slice spacing of %d of %d training series is unknown (no positions, or a "
            "cache built by an older ichkit: delete it to rebuild)%s",
            len(examples) - len(known),
            len(examples),
            "" if known else "; the model records no training slice spacing",
        )
    if not known:
        return None
    return round(float(np.median(known)), 3)


def _trim_metrics(path: Path, start_epoch: int) -> None:
    """Drop rows of epochs from ``start_epoch`` on (written before a crash, redone now)."""
    if not path.exists():
        return
    from ichkit._atomic import atomic_write_text

    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    rows = list(csv.DictReader(lines))
    keep = [r for r in rows if float(r["epoch"]) < start_epoch]
    if len(keep) == len(rows):
        return
    logger.info("%s: dropped %d row(s) of epochs being redone", path, len(rows) - len(keep))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(keep)
    atomic_write_text(path, buffer.getvalue())


def _write_metrics_row(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(METRIC_COLUMNS))
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, math.nan) for k in METRIC_COLUMNS})


#: Settings that shape the network's weights or the optimiser's parameter groups:
#: a checkpoint can only be resumed by a config that agrees on them.
_ARCHITECTURE = ("encoder", "context", "hidden", "pool", "norm", "sequence")


def _resume_state(resume: Path, cfg: TrainConfig, model: torch.nn.Module) -> dict[str, Any]:
    from ichkit.errors import CheckpointMismatchError

    path = resume / "last.ckpt" if resume.is_dir() else resume
    payload = load_checkpoint(path)
    meta = model_meta(cfg)
    check_compatible(
        payload,
        source=payload["path"],
        windows=meta["windows"],
        input_size=cfg.input_size,
        crop=cfg.crop,
    )
    if "train_state" not in payload:
        from ichkit.errors import ModelError

        raise ModelError(
            "checkpoint has no optimiser state to resume from (use the run's last.ckpt)",
            path=payload["path"],
            field="train_state",
        )
    saved = payload.get("config") or {}
    differ = [k for k in _ARCHITECTURE if k in saved and saved[k] != getattr(cfg, k)]
    if ("encoder_epochs" in saved) and (
        (int(saved["encoder_epochs"]) > 0) != (cfg.encoder_epochs > 0)
    ):
        differ.append("encoder_epochs")  # one stage or two: other optimiser groups
    if differ:
        pairs = ", ".join(f"{k} {saved[k]!r} (config: {getattr(cfg, k)!r})" for k in differ)
        raise CheckpointMismatchError(
            f"cannot resume: the checkpoint was trained with {pairs}",
            path=payload["path"],
            field=differ[0],
            value=saved[differ[0]],
        )
    try:  # what the settings above do not catch (e.g. an older ichkit's layers)
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise CheckpointMismatchError(
            f"cannot resume: its weights do not fit this config's model: {str(err)[:300]}",
            path=payload["path"],
            field="state_dict",
        ) from err
    return payload


def train_model(
    cfg: TrainConfig,
    *,
    out: str | os.PathLike[str],
    resume: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train a series model; write the run folder.

    The run folder gets ``config.toml`` (resolved), ``metrics.csv`` (one row
    per epoch), ``best.ckpt`` (lowest validation challenge metric),
    ``last.ckpt`` (resumable) and, with ``cfg.export_onnx``, ``model.onnx``.
    Under ``torchrun`` only rank 0 writes.

    Parameters
    ----------
    cfg
        The configuration (``cfg.data`` must name the dataset).
    out
        The run folder.
    resume
        A run folder or ``last.ckpt`` to continue from (same label order,
        windows and input size, else :class:`CheckpointMismatchError`).
    progress
        Receives :class:`ProgressEvent` s (rank 0 only).

    Returns
    -------
    TrainResult
    """
    dist = _init_distributed()
    try:
        return _train(cfg, Path(out), None if resume is None else Path(resume), progress, dist)
    finally:
        if dist.world > 1 and torch.distributed.is_initialized():
            # gloo's worker threads outlive the group and can abort interpreter
            # shutdown; ``ichkit train`` ends its workers without it (train.exit_worker)
            torch.distributed.destroy_process_group()


def _train(
    cfg: TrainConfig,
    out: Path,
    resume: Path | None,
    progress: ProgressFn | None,
    dist: _Dist,
) -> TrainResult:
    threads = cfg.threads or max(
        1, (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", dist.world)))
    )
    if dist.device.type == "cpu":
        torch.set_num_threads(threads)
    emit: ProgressFn = progress if (progress is not None and dist.main) else (lambda _e: None)
    if cfg.batch_exams < dist.world:
        from ichkit.errors import ConfigError

        raise ConfigError(
            f"batch_exams is {cfg.batch_exams} but {dist.world} processes share each batch; "
            f"expected at least {dist.world}",
            field="batch_exams",
            value=cfg.batch_exams,
        )
    # Built before any data is read, so that a bad encoder or norm fails at once.
    torch.manual_seed(cfg.seed)
    model = build_model(cfg).to(dist.device)
    # A checkpoint of another label order, window set, input size or crop fails
    # here, before the run folder is touched or a cache built.
    payload = None if resume is None else _resume_state(resume, cfg, model)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    if dist.main:
        from ichkit._atomic import atomic_write_text

        atomic_write_text(out / "config.toml", config_to_toml(cfg))
        data = load_split(cfg, cache_dir=cache_dir, splits=("train", "val"), progress=emit)
    _barrier(dist)
    if not dist.main:
        data = load_split(cfg, cache_dir=cache_dir, splits=("train", "val"), build=False)
    train_set, val_set = data["train"], data["val"]
    if not train_set:
        raise DatasetError(
            "the train split is empty", path=cfg.data, field="split", value=len(val_set)
        )
    if len(train_set) < dist.world:
        from ichkit.errors import ConfigError

        raise ConfigError(
            f"the train split holds {len(train_set)} series but {dist.world} processes "
            "share it; expected at least one series per process",
            field="nproc",
            value=dist.world,
        )
    slice_mm = training_slice_mm(train_set)
    # thin series are read as slabs of the training spacing, as predict reads them
    train_set = read_as_slabs(train_set, slice_mm)
    val_set = read_as_slabs(val_set, slice_mm)

    steps_per_epoch = len(_epoch_batches(len(train_set), cfg, 0))
    total_steps = steps_per_epoch * cfg.epochs
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    two_stage = cfg.encoder_epochs > 0
    for name, p in model.named_parameters():
        if two_stage and name.startswith("encoder."):
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg, total_steps))
    start_epoch, best_loss, best_epoch, best_metrics = 1, math.inf, 0, {}
    metrics_csv = out / "metrics.csv"
    if payload is not None:  # its weights were loaded by _resume_state
        state = payload["train_state"]
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(payload["epoch"]) + 1
        best_loss = float(state.get("best_loss", math.inf))
        best_epoch = int(state.get("best_epoch", 0))
        best_metrics = dict(state.get("best_metrics", {}))
        logger.info("resuming from %s at epoch %d", payload["path"], start_epoch)
        if dist.main:
            _trim_metrics(metrics_csv, start_epoch)
    elif dist.main and metrics_csv.exists():
        # an earlier run's checkpoints stay until this run overwrites them; if this one
        # never reaches a finite validation loss it raises (below) rather than export them
        metrics_csv.unlink()

    dtype = resolve_precision(cfg.precision, dist.device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    if scaler is not None and payload is not None and "scaler" in payload["train_state"]:
        scaler.load_state_dict(payload["train_state"]["scaler"])  # the loss scale it reached
    net: torch.nn.Module = model
    if cfg.compile and two_stage:
        # stage 1 trains the encoder eagerly and stage 2 trains the heads on
        # stored embeddings; torch.compile did not pay for stage 1 on CPUs
        # (benchmarks/bench_compile.py)
        logger.warning("compile=true applies to end-to-end training only (encoder_epochs=0)")
    if two_stage:
        train_feats, val_feats = _two_stage_setup(
            model, train_set, val_set, cfg, dist, dtype, emit, pretrain=resume is None
        )
    elif dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None
        )
    if cfg.compile and not two_stage:
        net = torch.compile(net)  # type: ignore[assignment]
    logger.info(
        "training %s encoder at %d px on %s (%s, %d thread(s), %d process(es)): %d train / %d "
        "val series, %d steps per epoch",
        cfg.encoder,
        cfg.input_size,
        dist.device,
        "fp32" if dtype is None else str(dtype),
        torch.get_num_threads(),
        dist.world,
        len(train_set),
        len(val_set),
        steps_per_epoch,
    )
    lengths_all = [
        ex.n_slices if not cfg.train_slices else min(ex.n_slices, cfg.train_slices)
        for ex in train_set
    ]
    best_ckpt, last_ckpt = out / "best.ckpt", out / "last.ckpt"
    for epoch in range(start_epoch, cfg.epochs + 1):
        t0 = time.perf_counter()
        losses: list[float]
        if two_stage:
            batches = _epoch_batches(len(train_set), cfg, epoch)
            emit(ProgressEvent("epoch", epoch=epoch, total=len(batches)))
            losses, n_seen = _head_epoch(
                model, optimizer, scheduler, train_feats, train_set, batches, cfg, epoch, dist
            )
            train_seconds = time.perf_counter() - t0
            val_preds = [
                (ex.to_images(p), e)
                for ex, (p, e) in zip(val_set, _head_predict(model, val_feats), strict=True)
            ]
        else:
            batches = _epoch_batches(len(train_set), cfg, epoch)
            local = [b[dist.rank :: dist.world] for b in batches]
            dataset = _BatchDataset(train_set, local, cfg, epoch)
            loader = _in_order(dataset, cfg.workers, pin_memory=dist.device.type == "cuda")
            emit(ProgressEvent("epoch", epoch=epoch, total=len(batches)))
            model.train()
            losses = []
            n_seen = 0
            for batch_index, (hu, lengths, image_y, exam_y) in enumerate(loader):
                n_images = sum(lengths_all[j] for j in batches[batch_index])
                n_exams = len(batches[batch_index])
                hu = hu.to(dist.device, non_blocking=True)
                with _autocast(dist.device, dtype):
                    image_logits, exam_logits = net(hu, lengths)
                loss = (
                    series_loss(
                        image_logits,
                        exam_logits,
                        lengths,
                        image_y.to(dist.device),
                        exam_y.to(dist.device),
                        n_images=n_images,
                        n_exams=n_exams,
                        exam_weight=cfg.exam_loss_weight,
                    )
                    * dist.world
                )
                _optimizer_step(loss, optimizer, list(model.parameters()), cfg.grad_clip, scaler)
                scheduler.step()
                batch_loss = _batch_loss(loss, dist)
                losses.append(batch_loss)
                n_seen += n_images
                emit(ProgressEvent("step", epoch=epoch, loss=batch_loss))
            train_seconds = time.perf_counter() - t0
            mine = [i for i in range(len(val_set)) if i % dist.world == dist.rank]
            preds_local = predict_examples(
                model, [val_set[i] for i in mine], device=dist.device, dtype=dtype
            )
            gathered = _gather(dist, list(zip(mine, preds_local, strict=True)))
            by_index = {i: p for part in gathered for i, p in part}
            val_preds = [by_index[i] for i in range(len(val_set))]
        val_metrics = _val_metrics(val_set, val_preds)
        row = {
            "epoch": float(epoch),
            "train_loss": float(np.mean(losses)) if losses else math.nan,
            **val_metrics,
            "lr": float(scheduler.get_last_lr()[0]),
            "seconds": time.perf_counter() - t0,
            "images_per_s": n_seen / train_seconds if train_seconds > 0 else math.nan,
        }
        score = val_metrics.get("val_loss", row["train_loss"])
        if math.isnan(score):
            logger.warning("epoch %d: the validation loss is NaN (diverged?); not kept", epoch)
        improved = score < best_loss  # False for NaN
        if improved:
            best_loss, best_epoch, best_metrics = score, epoch, dict(row)
        if dist.main:
            _write_metrics_row(metrics_csv, row)
            if improved:
                save_checkpoint(best_ckpt, model, cfg, epoch=epoch, metrics=row, slice_mm=slice_mm)
            save_checkpoint(
                last_ckpt,
                model,
                cfg,
                epoch=epoch,
                metrics=row,
                slice_mm=slice_mm,
                state={
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "best_loss": best_loss,
                    "best_epoch": best_epoch,
                    "best_metrics": best_metrics,
                    **({"scaler": scaler.state_dict()} if scaler is not None else {}),
                },
            )
        logger.info(
            "epoch %d: train loss %.4f, val loss %.4f, val exam AUC %.4f (%.0f s, %.0f img/s)",
            epoch,
            row["train_loss"],
            row.get("val_loss", math.nan),
            row.get("val_exam_auc_mean", math.nan),
            row["seconds"],
            row["images_per_s"],
        )
        emit(ProgressEvent("epoch_end", epoch=epoch, row=row))
    _barrier(dist)
    if best_epoch == 0:  # the same on every rank: the validation is gathered
        from ichkit.errors import ModelError

        raise ModelError(
            "no epoch gave a finite validation loss, so this run wrote no best.ckpt (the "
            "training diverged: try a lower lr, or precision=fp32; a best.ckpt in this folder "
            "is an earlier run's); last.ckpt holds the last epoch",
            path=out,
            field="val_loss",
        )
    onnx_path = None
    if dist.main and cfg.export_onnx and best_ckpt.exists():
        from ichkit.model._onnx import export_onnx

        emit(ProgressEvent("stage", text="exporting ONNX"))
        onnx_path = export_onnx(best_ckpt, out / "model.onnx")
    emit(ProgressEvent("done"))
    return TrainResult(
        out=out,
        best_checkpoint=best_ckpt,
        last_checkpoint=last_ckpt,
        metrics_csv=metrics_csv,
        onnx=onnx_path,
        best_epoch=best_epoch,
        best_metrics=best_metrics,
    )


# --------------------------------------------------------------------------- two-stage


def _batch_loss(loss: torch.Tensor, dist: _Dist) -> float:
    """The whole batch's loss from this process's share (scaled by the world size)."""
    value = float(loss.detach()) / dist.world
    if dist.world > 1:
        t = torch.tensor([value], device=dist.device)
        torch.distributed.all_reduce(t)
        value = float(t)
    return value


def _allreduce_grads(params: Sequence[torch.nn.Parameter], dist: _Dist) -> None:
    if dist.world == 1:
        return
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(dist.world)


def _weighted_bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row metric-weighted BCE (``any`` × 2), shape (N,)."""
    w = torch.tensor(LABEL_WEIGHTS, dtype=torch.float32, device=logits.device)
    per = F.binary_cross_entropy_with_logits(logits.float(), y, reduction="none")
    return (per * w).sum(-1) / w.sum()


def _train_encoder(
    model: SeriesModel,
    train_set: Sequence[Example],
    cfg: TrainConfig,
    dist: _Dist,
    dtype: torch.dtype | None,
    emit: ProgressFn,
) -> None:
    """Stage 1: the slice encoder alone on shuffled slices of many series.

    From each chunk of series (``slice_batch`` // 4 of them, at least 8) the
    positive slices and a subsample of negatives (``negative_ratio`` ×
    positives) are picked and shuffled; only they and their ``context``
    neighbours are loaded and augmented (one draw per series, seeded by epoch
    and series), then windowed and context-stacked per ``slice_batch`` step
    (:meth:`SeriesModel.neighbour_inputs`). With ``workers`` > 0 the chunks
    are loaded and augmented in that many DataLoader processes while the
    encoder trains on the previous ones (each chunk is seeded on its own, so
    the run is the same as with ``workers=0``). Under DDP process *r* takes
    every *world*-th slice of a step and gradients are averaged by hand, so
    the run equals one process up to float rounding.
    """
    aux = torch.nn.Linear(model.encoder.features, len(LABELS)).to(dist.device)
    torch.nn.init.zeros_(aux.weight)
    torch.nn.init.constant_(aux.bias, -2.0)
    params = [*model.encoder.parameters(), *aux.parameters()]
    lr = cfg.encoder_lr or cfg.lr
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    chunks = _Stage1Chunks(train_set, cfg, model.context)
    # Estimate the step count for the schedule (slice counts do not depend on augmentation).
    steps_per_epoch = [0] * cfg.encoder_epochs
    for epoch, c, members in chunks.jobs:
        n = len(chunks.picks(epoch, c, members))
        steps_per_epoch[epoch - 1] += n // cfg.slice_batch or 1
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        _schedule(
            cfg.replace(warmup_fraction=max(cfg.warmup_fraction, 0.05)), sum(steps_per_epoch)
        ),
    )
    loader = _in_order(chunks, cfg.workers, collate_fn=_as_is)
    # fp16 autocast (CUDA cards without bf16) needs loss scaling; bf16 and fp32 do not
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    model.train()
    aux.train()
    current = 0
    t0 = time.perf_counter()
    losses: list[float] = []
    n_seen = 0

    def log_epoch() -> None:
        seconds = time.perf_counter() - t0
        logger.info(
            "encoder epoch %d: slice loss %.4f (%d slices, %.0f s, %.0f img/s)",
            current,
            float(np.mean(losses)) if losses else math.nan,
            n_seen,
            seconds,
            n_seen / seconds if seconds > 0 else math.nan,
        )

    for (epoch, _, _), (picks, rows, stacks) in zip(chunks.jobs, loader, strict=True):
        if epoch != current:
            if current:
                log_epoch()
            current, t0, losses, n_seen = epoch, time.perf_counter(), [], 0
            total = steps_per_epoch[epoch - 1]
            emit(ProgressEvent("epoch", epoch=epoch, total=total, text="encoder"))
        n_steps = max(1, len(picks) // cfg.slice_batch)
        for s in range(n_steps):
            step = picks[s * cfg.slice_batch : (s + 1) * cfg.slice_batch]
            if s == n_steps - 1:
                step = picks[s * cfg.slice_batch :]
            if len(step) < dist.world:
                continue
            mine = step[dist.rank :: dist.world]
            hu = torch.stack([stacks[j][rows[j][1][k]] for j, k in mine])
            with torch.no_grad():
                x = model.neighbour_inputs(hu.to(dist.device))
            y = torch.from_numpy(
                np.stack([train_set[j].labels[k] for j, k in mine]).astype(np.float32)
            ).to(dist.device)
            with _autocast(dist.device, dtype):
                logits = aux(model.encode(x))
            loss = _weighted_bce(logits, y).sum() / len(step) * dist.world
            _optimizer_step(
                loss,
                optimizer,
                params,
                cfg.grad_clip,
                scaler,
                lambda: _allreduce_grads(params, dist),
            )
            scheduler.step()
            batch_loss = _batch_loss(loss, dist)
            losses.append(batch_loss)
            n_seen += len(step)
            emit(ProgressEvent("step", epoch=epoch, loss=batch_loss))
    if current:
        log_epoch()


def _optimizer_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.nn.Parameter],
    grad_clip: float,
    scaler: torch.amp.GradScaler | None,
    after_backward: Callable[[], None] | None = None,
) -> None:
    """Backward, ``after_backward`` (e.g. averaging gradients by hand), clip, step.

    With a GradScaler (fp16) the loss is scaled and the gradients unscaled
    before clipping; the scaler skips steps with inf/NaN gradients.
    """
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()  # type: ignore[no-untyped-call]
    if after_backward is not None:
        after_backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()


def _in_order(
    dataset: torch.utils.data.Dataset[Any], workers: int, **options: Any
) -> torch.utils.data.DataLoader[Any]:
    """A DataLoader yielding ``dataset``'s items one by one, in order (each is a whole step's data).

    ``workers`` > 0 prepares them in that many processes while training runs.
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        persistent_workers=False,
        **options,
    )


def _as_is(item: Any) -> Any:
    """DataLoader ``collate_fn`` that passes an item through unchanged."""
    return item


_Chunk = tuple[
    list[tuple[int, int]],
    dict[int, tuple[npt.NDArray[np.int64], dict[int, npt.NDArray[np.int64]]]],
    dict[int, torch.Tensor],
]


class _Stage1Chunks(torch.utils.data.Dataset[_Chunk]):
    """Stage 1's chunks of series, in training order over all encoder epochs.

    ``jobs[i]`` is ``(epoch, chunk, member series)``; item ``i`` is that
    chunk's shuffled picks ``(series, slice)``, the rows each pick needs
    (:func:`_neighbour_rows`) and the augmented HU of those rows per series.
    Everything is seeded by (``seed``, epoch, chunk or series), so an item is
    the same in any process.
    """

    def __init__(self, train_set: Sequence[Example], cfg: TrainConfig, context: int) -> None:
        self.train_set = train_set
        self.cfg = cfg
        self.context = context
        self.augment = SeriesAugment(cfg.input_size) if cfg.augment else None
        self.repeats = _subtype_repeats(train_set, cfg.subtype_balance)
        chunk = max(8, cfg.slice_batch // 4)
        self.jobs: list[tuple[int, int, list[int]]] = []
        for epoch in range(1, cfg.encoder_epochs + 1):
            rng = np.random.default_rng(sample_seed(cfg.seed, epoch, -1, "slice-order"))
            order = rng.permutation(len(train_set)).tolist()
            for c, i in enumerate(range(0, len(order), chunk)):
                self.jobs.append((epoch, c, order[i : i + chunk]))

    def __len__(self) -> int:
        return len(self.jobs)

    def picks(self, epoch: int, c: int, members: Sequence[int]) -> list[tuple[int, int]]:
        """The chunk's positive slices (repeated by subtype) and sampled negatives, shuffled."""
        cfg, train_set = self.cfg, self.train_set
        labs = [
            (j, k, float(train_set[j].labels[k, -1]))
            for j in members
            for k in range(train_set[j].n_slices)
        ]
        pos = [(j, k) for j, k, y in labs if y > 0.5]
        neg = [(j, k) for j, k, y in labs if y <= 0.5]
        rng = np.random.default_rng(sample_seed(cfg.seed, epoch, c, "slices"))
        if self.repeats is not None and pos:
            r = np.array([self.repeats[j][k] for j, k in pos])
            n = np.floor(r).astype(int) + (rng.random(len(r)) < r - np.floor(r))
            pos = [p for p, times in zip(pos, n.tolist(), strict=True) for _ in range(times)]
        if cfg.negative_ratio > 0:
            keep = max(int(cfg.negative_ratio * len(pos)), cfg.slice_batch // 2)
            if keep < len(neg):
                neg = [neg[i] for i in sorted(rng.choice(len(neg), keep, replace=False))]
        chosen = pos + neg
        return [chosen[i] for i in rng.permutation(len(chosen))]

    def __getitem__(self, i: int) -> _Chunk:
        epoch, c, members = self.jobs[i]
        picks = self.picks(epoch, c, members)
        rows = _neighbour_rows(self.train_set, picks, self.context)
        stacks = {
            j: _stage1_volume(self.train_set[j], needed, self.cfg, epoch, j, self.augment)
            for j, (needed, _) in rows.items()
        }
        return picks, rows, stacks


def _neighbour_rows(
    train_set: Sequence[Example], picks: Sequence[tuple[int, int]], context: int
) -> dict[int, tuple[npt.NDArray[np.int64], dict[int, npt.NDArray[np.int64]]]]:
    """For each series of a chunk: the slices its picks need, and each pick's rows among them.

    Returns ``{j: (needed, {k: rows})}``: ``needed`` are the sorted slice
    indices of series ``j`` that the picked slices and their ``context``
    neighbours use (edges repeated, as in :meth:`SeriesModel.slice_inputs`);
    ``rows`` index ``needed`` in neighbour order from ``-context`` to ``+context``.
    """
    offsets = np.arange(-context, context + 1)
    by_series: dict[int, list[int]] = {}
    for j, k in picks:
        by_series.setdefault(j, []).append(k)
    out = {}
    for j, ks in by_series.items():
        n = train_set[j].n_slices
        around = {k: np.clip(k + offsets, 0, n - 1) for k in ks}
        needed = np.unique(np.concatenate(list(around.values())))
        out[j] = (needed, {k: np.searchsorted(needed, a) for k, a in around.items()})
    return out


def _stage1_volume(
    ex: Example,
    needed: npt.NDArray[np.int64],
    cfg: TrainConfig,
    epoch: int,
    index: int,
    augment: SeriesAugment | None,
) -> torch.Tensor:
    """HU of the slices ``needed`` of one series, augmented as one stack (seeded per series)."""
    vol = np.asarray(ex.load()[needed])
    if augment is None:
        return torch.from_numpy(vol.astype(np.float32))
    with _torch_threads(1):
        return augment(vol, seed=sample_seed(cfg.seed, epoch, index))


def _subtype_repeats(
    train_set: Sequence[Example], power: float
) -> list[npt.NDArray[np.float64]] | None:
    """Per slice of each series, how many times stage 1 shows it (1 for negatives).

    A positive slice counts ``(n_max / n_s) ** power`` (capped at 4) for the
    rarest subtype ``s`` it holds, ``n_s`` being the training slices positive
    for ``s``. None when ``power`` is 0.
    """
    if power <= 0 or not train_set:
        return None
    n_sub = len(LABELS) - 1
    counts = np.sum([ex.labels[:, :n_sub].sum(axis=0) for ex in train_set], axis=0)
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    if not present.any():
        return None
    factor = np.ones(n_sub)
    factor[present] = np.minimum((counts[present].max() / counts[present]) ** power, 4.0)
    out = []
    for ex in train_set:
        lab = ex.labels[:, :n_sub] > 0.5
        rep = np.where(lab, factor[None, :], 0.0).max(axis=1)
        out.append(np.where(lab.any(axis=1), rep, 1.0))
    return out


@torch.no_grad()
def _embed(
    model: SeriesModel,
    examples: Sequence[Example],
    cfg: TrainConfig,
    dist: _Dist,
    dtype: torch.dtype | None,
    *,
    views: int,
) -> list[list[torch.Tensor]]:
    """Frozen-encoder embeddings (S, D) of each example: view 0 plain, then augmented views."""
    model.eval()
    augment = SeriesAugment(cfg.input_size) if (cfg.augment and views > 1) else None
    out: list[list[torch.Tensor]] = []
    for j, ex in enumerate(examples):
        per: list[torch.Tensor] = []
        for v in range(views):
            if v == 0 or augment is None:
                hu = torch.from_numpy(np.asarray(ex.load(), dtype=np.float32))
            else:
                with _torch_threads(1):
                    hu = augment(ex.load(), seed=sample_seed(cfg.seed, -v, j, "view"))
            x = model.slice_inputs(hu.unsqueeze(0).to(dist.device))[0]
            with _autocast(dist.device, dtype):
                per.append(model.encode(x).float().cpu())
            if augment is None:
                break
        out.append(per)
    return out


def _pad_feats(
    feats: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
    s = int(lengths.max())
    x = torch.zeros((len(feats), s, feats[0].shape[1]), dtype=torch.float32)
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    return x, lengths


def _two_stage_setup(
    model: SeriesModel,
    train_set: Sequence[Example],
    val_set: Sequence[Example],
    cfg: TrainConfig,
    dist: _Dist,
    dtype: torch.dtype | None,
    emit: ProgressFn,
    *,
    pretrain: bool,
) -> tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
    """Stage 1 (unless resuming), then freeze the encoder and embed train and val series."""
    if pretrain:
        _train_encoder(model, train_set, cfg, dist, dtype, emit)
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    t0 = time.perf_counter()
    emit(ProgressEvent("stage", text="embedding slices with the frozen encoder"))
    train_feats = _embed(model, train_set, cfg, dist, dtype, views=cfg.embedding_views)
    val_feats = [f[0] for f in _embed(model, val_set, cfg, dist, dtype, views=1)]
    logger.info(
        "embedded %d train series (%d view(s)) and %d val series in %.0f s",
        len(train_feats),
        cfg.embedding_views,
        len(val_feats),
        time.perf_counter() - t0,
    )
    return train_feats, val_feats


def _head_epoch(
    model: SeriesModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    train_feats: Sequence[Sequence[torch.Tensor]],
    train_set: Sequence[Example],
    batches: Sequence[Sequence[int]],
    cfg: TrainConfig,
    epoch: int,
    dist: _Dist,
) -> tuple[list[float], int]:
    """Stage 2, one epoch: GRU and heads on frozen embeddings (every process the same)."""
    model.train()
    model.encoder.eval()
    losses: list[float] = []
    n_seen = 0
    for batch in batches:
        feats = []
        for j in batch:
            views = train_feats[j]
            rng = np.random.default_rng(sample_seed(cfg.seed, epoch, j, "view"))
            feats.append(views[int(rng.integers(0, len(views)))])
        x, lengths = _pad_feats(feats)
        _, image_y, exam_y = collate_labels([train_set[j].labels for j in batch])
        image_logits, exam_logits = model.heads(x.to(dist.device), lengths)
        loss = series_loss(
            image_logits,
            exam_logits,
            lengths,
            image_y.to(dist.device),
            exam_y.to(dist.device),
            n_images=int(lengths.sum()),
            n_exams=len(batch),
            exam_weight=cfg.exam_loss_weight,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.requires_grad], cfg.grad_clip
            )
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        n_seen += int(lengths.sum())
    return losses, n_seen


@torch.no_grad()
def _head_predict(
    model: SeriesModel, feats: Sequence[torch.Tensor]
) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    was_training = model.training
    model.eval()
    # the embeddings are kept on the CPU; the heads may be on a GPU
    device = next(model.parameters()).device
    out = []
    for f in feats:
        img, exam = model.heads(f.unsqueeze(0).to(device))
        out.append(
            (
                torch.sigmoid(img[0].float()).cpu().numpy().astype(np.float64),
                torch.sigmoid(exam[0].float()).cpu().numpy().astype(np.float64),
            )
        )
    model.train(was_training)
    return out


def collate_labels(
    labels: Sequence[npt.NDArray[np.float32]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad per-image labels: (lengths (B,), image y (B,S,6), exam y (B,6))."""
    lengths = torch.tensor([lab.shape[0] for lab in labels], dtype=torch.long)
    y = torch.zeros((len(labels), int(lengths.max()), len(LABELS)), dtype=torch.float32)
    for i, lab in enumerate(labels):
        y[i, : lab.shape[0]] = torch.from_numpy(np.asarray(lab, dtype=np.float32))
    exam = torch.stack([torch.from_numpy(np.asarray(lab).max(axis=0)) for lab in labels])
    return lengths, y, exam.float()
