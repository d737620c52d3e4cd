"""``ichkit train``, ``ichkit evaluate``, ``ichkit predict``, ``ichkit export-onnx``.

torch, MONAI, numpy and onnxruntime are imported inside the commands.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from ichkit.cli import app

logger = logging.getLogger("ichkit.cli.model")


class _RichProgress:
    """Maps training progress events onto a rich progress display."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Any = None
        self.stage: Any = None
        self.epoch_task: Any = None

    def __enter__(self) -> _RichProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
                transient=False,
            )
            self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def __call__(self, event: Any) -> None:
        p = self.progress
        if p is None:
            return
        if event.kind == "stage":
            if self.stage is not None:
                p.update(self.stage, visible=False)
            self.stage = p.add_task(event.text, total=event.total, info="")
        elif event.kind == "advance" and self.stage is not None:
            p.advance(self.stage)
        elif event.kind == "epoch":
            if self.stage is not None:
                p.update(self.stage, visible=False)
                self.stage = None
            self.epoch_task = p.add_task(f"epoch {event.epoch}", total=event.total, info="")
        elif event.kind == "step" and self.epoch_task is not None:
            p.update(self.epoch_task, advance=1, info=f"loss {event.loss:.4f}")
        elif event.kind == "epoch_end" and self.epoch_task is not None:
            row = event.row
            p.update(
                self.epoch_task,
                info=f"train {row.get('train_loss', float('nan')):.4f}  "
                f"val {row.get('val_loss', float('nan')):.4f}  "
                f"exam AUC {row.get('val_exam_auc_mean', float('nan')):.4f}",
            )
        elif event.kind == "done" and self.stage is not None:
            p.update(self.stage, visible=False)


@app.command("train")
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="TOML (or JSON) file of training settings."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="Starting preset: default, tiny, demo, long, rsna."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a setting: --set key=value (repeatable)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Dataset folder: ichkit synth output or RSNA Kaggle layout."),
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue from a run folder or its last.ckpt.")
    ] = None,
    nproc: Annotated[
        int,
        typer.Option("--nproc", help="Processes: >1 relaunches this command under torchrun (DDP)."),
    ] = 1,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress.")
    ] = True,
) -> None:
    """Train the series model (2.5D CNN + BiGRU) on a dataset.

    Writes config.toml, metrics.csv, best.ckpt, last.ckpt and model.onnx to the run
    folder. Under torchrun (or with --nproc N) training is distributed (DDP).
    """
    import os

    from ichkit.model.config import load_config

    overrides = list(set_ or [])
    if data is not None:
        overrides.append(f"data={data.resolve()}")
    cfg = load_config(config, preset=preset, overrides=overrides)
    if cfg.data and not Path(cfg.data).is_absolute():
        cfg = cfg.replace(data=str(Path(cfg.data).resolve()))
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(_relaunch(nproc, config, preset, cfg, out, resume, progress))
    from ichkit.model._train import train_model

    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        logging.getLogger("ichkit").setLevel(logging.WARNING)
    with _RichProgress(progress and rank == 0) as bar:
        result = train_model(cfg, out=out, resume=resume, progress=bar)
    if rank == 0:
        m = result.best_metrics
        typer.echo(
            f"best epoch {result.best_epoch}: val challenge metric "
            f"{m.get('val_loss', float('nan')):.4f}, val exam AUC (mean) "
            f"{m.get('val_exam_auc_mean', float('nan')):.4f}"
        )
        typer.echo(f"checkpoint: {result.best_checkpoint}")
        if result.onnx is not None:
            typer.echo(f"onnx: {result.onnx}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # a DDP worker ends without interpreter shutdown, which can abort it
        from ichkit.model.train import exit_worker

        exit_worker(0)


def _relaunch(
    nproc: int,
    config: Path | None,
    preset: str | None,
    cfg: Any,
    out: Path,
    resume: Path | None,
    progress: bool,
) -> int:
    import subprocess
    import sys

    from ichkit._atomic import atomic_write_text
    from ichkit.model.config import config_to_toml

    out.mkdir(parents=True, exist_ok=True)
    resolved = out / "config.requested.toml"
    atomic_write_text(resolved, config_to_toml(cfg))
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "ichkit.model.train",
        "--config",
        str(resolved),
        "--out",
        str(out),
    ]
    if resume is not None:
        cmd += ["--resume", str(resume)]
    if not progress:
        cmd.append("--no-progress")
    if logging.getLogger("ichkit").isEnabledFor(logging.DEBUG):
        cmd.append("-v")  # ichkit -v train --nproc N: the workers log at debug level too
    logger.info("launching: %s", " ".join(cmd))
    return subprocess.call(cmd)


@app.command("evaluate")
def evaluate(
    model: Annotated[Path, typer.Argument(help="Run folder (its best.ckpt) or checkpoint.")],
    split: Annotated[
        str, typer.Option("--split", help="Split to evaluate: test, val, train.")
    ] = "test",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report folder (default RUN/report-SPLIT).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Dataset folder (default: the one the model was trained on)."),
    ] = None,
    rounds: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap rounds for the CIs.")
    ] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics.json to stdout.")] = False,
    allow_shared_patients: Annotated[
        bool,
        typer.Option(
            "--allow-shared-patients",
            help="Warn instead of refusing when the splits share a patient (patient IDs that "
            "do not name patients); a model trained with patient_disjoint=false only warns anyway.",
        ),
    ] = False,
) -> None:
    """Evaluate a model on a held-out split: challenge metric, AUCs with CIs, plots, HTML.

    Thresholds are chosen on the validation split (sensitivity >= 0.95 for any).
    Splits that share a patient are refused (--allow-shared-patients: a warning).
    """
    import json

    from ichkit.model._report import evaluate_model

    result = evaluate_model(
        model,
        split=split,
        out=out,
        data=None if data is None else str(data.resolve()),
        rounds=rounds,
        allow_shared_patients=allow_shared_patients,
    )
    m = result.metrics
    if as_json:
        typer.echo(json.dumps(m, indent=2))
        return
    _print_summary(m)
    typer.echo(f"report: {result.html}")


def _print_summary(m: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def f(x: Any, ci: Any = None) -> str:
        if x is None:
            return "–"
        s = f"{x:.4f}"
        if ci and ci[0] is not None:
            s += f" ({ci[0]:.3f}–{ci[1]:.3f})"
        return s

    console = Console()
    console.print(
        f"{m['split']} split: {m['exams']} exams, {m['images']} images — challenge metric "
        f"(weighted log loss) {f(m['image_log_loss'], m['image_log_loss_ci'])}, exam-level "
        f"{f(m['exam_log_loss'], m['exam_log_loss_ci'])}"
    )
    table = Table("label", "image AUC (95% CI)", "exam AUC (95% CI)", "exam sens", "exam spec")
    for lab, e in m["labels"].items():
        op = e.get("exam_operating_point") or {}
        table.add_row(
            lab,
            f(e["image_auc"], e["image_auc_ci"]),
            f(e["exam_auc"], e["exam_auc_ci"]),
            f(op.get("sensitivity")),
            f(op.get("specificity")),
        )
    console.print(table)
    if "mimics" in m:
        mm = m["mimics"]
        console.print(
            f"calcification mimics: {mm['images']} negative images, mean any "
            f"{f(mm['mean_any'])}, called positive {f(mm['false_positive_rate'])}"
        )


@app.command("predict")
def predict(
    studies: Annotated[list[Path], typer.Argument(help="Study folders (one or more series each).")],
    model: Annotated[
        Path, typer.Option("--model", "-m", help="model.onnx, a .ckpt or a run folder.")
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Submission CSV to write (RSNA format).")
    ],
    heatmaps: Annotated[
        Path | None,
        typer.Option(
            "--heatmaps", help="Write Grad-CAM overlays of positive slices to this folder."
        ),
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(
            "--masks", help="Synthetic lesion masks folder: score heatmap peaks against them."
        ),
    ] = None,
    threshold: Annotated[
        float,
        typer.Option(
            "--heatmap-threshold",
            min=0.0,
            max=1.0,
            help="'any' probability from which a slice gets a heatmap.",
        ),
    ] = 0.5,
    slab_mm: Annotated[
        float | None,
        typer.Option(
            "--slab-mm",
            help="Read series whose slices are under SLAB_MM/1.5 apart as slabs of about "
            "SLAB_MM (mean HU); each image gets its slab's prediction. Default: the slice "
            "spacing the model was trained on (its file records it); 0 = never.",
        ),
    ] = None,
    exams_json: Annotated[
        Path | None,
        typer.Option(
            "--exams-json",
            help="Per-exam JSON to write. Default: exams.json beside the --out CSV.",
        ),
    ] = None,
) -> None:
    """Predict every image of the given studies; write preds.csv and exams.json beside it.

    preds.csv holds six rows per image (valid input to ichkit score); exams.json holds
    per-exam probabilities and the top slices. A thin-slice series (e.g. 0.625 mm) is
    read as thick slabs like the slices the model was trained on (e.g. 5 mm).
    Dose reports, scouts, localizers and coronal/sagittal reformats are skipped;
    a study or CT series that cannot be read is reported and the rest is still
    predicted (exit status 3).
    """
    from ichkit.model._infer import predict_studies

    result = predict_studies(
        studies,
        model,
        out_csv=out,
        heatmaps=heatmaps,
        masks=masks,
        heatmap_threshold=threshold,
        slab_mm=slab_mm,
        exams_json=exams_json,
    )
    n = sum(len(s.sop_instance_uids) for s in result.series)
    typer.echo(
        f"{n} images in {len(result.series)} series: {result.preds_csv}, {result.exams_json} "
        f"({result.seconds:.2f} s)"
    )
    js = result.exams_json.name
    slabs = [s.slabs.thickness_mm for s in result.series if s.slabs is not None]
    if slabs:
        lo, hi = f"{min(slabs):.1f}", f"{max(slabs):.1f}"
        typer.echo(
            f"{len(slabs)} thin-slice series read as slabs of {lo if lo == hi else lo + '-' + hi}"
            f" mm ({js}: read_as_slabs)"
        )
    if result.heatmaps and "peak_in_lesion" in result.heatmaps:
        pl = result.heatmaps["peak_in_lesion"]
        typer.echo(
            f"heatmap peak inside the lesion: {pl['peaks_inside']} of "
            f"{pl['slices_with_lesion']} slices; within 5 mm of it: {pl['peaks_within_5_mm']}"
        )
    left_out = sum(len(s.left_out) for s in result.series)
    if left_out:
        typer.echo(
            f"{left_out} image(s) left out of their series' volume (duplicate positions, odd "
            f"sizes, unreadable pixels) got the nearest kept slice's rows ({js}: "
            "images_left_out)"
        )
    if result.skipped:
        typer.echo(
            f"{len(result.skipped)} file(s) or series skipped (not axial CT stacks, or not "
            f"readable as DICOM): {js} lists them with reasons"
        )
    if result.failed:
        for problem in result.failed:
            uid = problem.get("series_instance_uid")
            where = problem["path"] + (f": series {uid}" if uid else "")
            typer.echo(f"not predicted: {where}: {problem['reason']}", err=True)
        typer.echo(
            f"{len(result.failed)} stud(ies) or series could not be predicted; the rest was "
            f"written ({js}: failed)",
            err=True,
        )
        raise typer.Exit(3)


@app.command("export-onnx")
def export_onnx(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.ckpt) or run folder.")],
    out: Annotated[Path, typer.Argument(help="ONNX file to write.")],
) -> None:
    """Export a checkpoint to ONNX (dynamic slice axis, metadata in metadata_props).

    The export is checked against PyTorch (probabilities equal within 1e-4).
    """
    from ichkit.model._onnx import export_onnx as _export

    path = _export(checkpoint, out)
    typer.echo(f"wrote {path}")
