"""``ichkit score``: the challenge metric."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ichkit.cli import app

if TYPE_CHECKING:
    from ichkit.metrics import ScoreReport


@app.command("score")
def score_command(
    submission: Annotated[
        Path, typer.Argument(help="Submission CSV (RSNA format: ID,Label; six rows per image).")
    ],
    truth: Annotated[Path, typer.Argument(help="Truth CSV (RSNA format, 0/1 labels).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
    exams: Annotated[
        Path | None,
        typer.Option(
            "--exams",
            help="Image-to-exam CSV (columns image_id or SOPInstanceUID, and study or exam) "
            "for exam-level AUC.",
        ),
    ] = None,
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap", min=0, help="Bootstrap replicates for 95% confidence intervals."
        ),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
) -> None:
    """Score SUBMISSION against TRUTH with the RSNA 2019 weighted log loss.

    Per image, the weighted mean of the six binary log losses (weight 2 for
    ``any``); the score is the mean over images. Also per-label log loss and
    ROC AUC. A submission that misses, repeats or adds an image, or holds a
    value outside [0, 1] or NaN, is rejected with exit status 2 and a message
    naming the first offending row.
    """
    import json

    from ichkit.metrics import score_files

    report = score_files(submission, truth, exams_path=exams, n_boot=bootstrap, seed=seed)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report, submission)


def _fmt(value: float | None, digits: int = 5) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}f}"


def _fmt_ci(pair: tuple[float, float] | None) -> str:
    if pair is None or pair[0] != pair[0]:
        return ""
    return f"{pair[0]:.3f}-{pair[1]:.3f}"


def _print_report(report: ScoreReport, submission: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from ichkit.labels import LABELS

    console = Console()
    boot, exam_boot = report.bootstrap, report.exam_bootstrap
    title = f"{submission.name}: {report.n_images} images"
    if report.n_exams is not None:
        title += f", {report.n_exams} exams"
    table = Table(title=title)
    table.add_column("label", no_wrap=True)
    table.add_column("log loss", justify="right")
    table.add_column("AUC", justify="right")
    if boot is not None:
        table.add_column("AUC 95% CI", justify="right")
    if report.exam_auc is not None:
        table.add_column("exam AUC", justify="right")
        if exam_boot is not None:
            table.add_column("exam AUC 95% CI", justify="right")
    for lab in LABELS:
        cells = [lab, _fmt(report.log_loss[lab]), _fmt(report.auc[lab], 4)]
        if boot is not None:
            cells.append(_fmt_ci(boot.auc[lab]))
        if report.exam_auc is not None:
            cells.append(_fmt(report.exam_auc[lab], 4))
            if exam_boot is not None:
                cells.append(_fmt_ci(exam_boot.auc[lab]))
        table.add_row(*cells)
    console.print(table)
    line = f"weighted log loss: [bold]{report.weighted_log_loss:.6f}[/bold]"
    if boot is not None:
        low, high = boot.weighted_log_loss
        line += f"  95% CI {low:.6f}-{high:.6f} ({boot.n_boot} bootstrap replicates)"
    console.print(line)
