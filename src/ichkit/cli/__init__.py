"""The ``ichkit`` command line: one Typer app, one sub-command module per domain.

Sub-command modules import only Typer at module level; numpy, pandas, pydicom
and torch are imported inside the commands that need them, so that
``ichkit --help`` stays fast.

:func:`main` is callable from tests: it returns the exit status instead of
exiting. An :class:`~ichkit.errors.IchkitError` becomes a one-line message on
stderr and its ``exit_status`` (2 for bad input, 3 where a batch partly failed);
``-v`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer
from typer.exceptions import TyperException

from ichkit.errors import IchkitError

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="ichkit",
    help="ichkit: intracranial hemorrhage on head CT — DICOM, labels, scoring and more.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"verbose": False}


@app.callback()
def _root(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log debug messages and show tracebacks on errors."
    ),
) -> None:
    """ichkit: intracranial hemorrhage on head CT — DICOM, labels, scoring and more."""
    _state["verbose"] = verbose
    _configure_logging(verbose)


def _configure_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger("ichkit")
    for handler in list(root.handlers):
        if isinstance(handler, RichHandler):
            root.removeHandler(handler)
    handler = RichHandler(
        console=_stderr_console(), show_time=False, show_path=verbose, markup=False
    )
    root.addHandler(handler)
    # Commands print their own results; library loggers speak up for
    # warnings (and everything with -v).
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)


def _stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def _register() -> None:
    # Each module adds its commands to ``app`` when imported.
    from ichkit.cli import catalog as _catalog  # noqa: F401
    from ichkit.cli import curate as _curate  # noqa: F401
    from ichkit.cli import deid as _deid  # noqa: F401
    from ichkit.cli import dicom as _dicom  # noqa: F401
    from ichkit.cli import model as _model  # noqa: F401
    from ichkit.cli import score as _score  # noqa: F401
    from ichkit.cli import synth as _synth  # noqa: F401


_register()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ichkit`` command line and return its exit status.

    Parameters
    ----------
    argv
        The arguments after the program name; ``sys.argv[1:]`` when None.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    _state["verbose"] = False
    try:
        result = app(args=args, prog_name="ichkit", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("ichkit: aborted\n")
        return 130
    except TyperException as exc:  # usage errors: bad option, missing argument, …
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"ichkit: error: {exc.format_message()}\n")
        return int(exc.exit_code)
    except IchkitError as exc:
        if _state["verbose"]:
            raise
        sys.stderr.write(f"ichkit: error: {exc}\n")
        return exc.exit_status
    except OSError as exc:  # an output folder that cannot be made, a full disk, …
        if _state["verbose"]:
            raise
        where = exc.filename if exc.filename is not None else "?"
        sys.stderr.write(f"ichkit: error: {where}: {exc.strerror or exc}\n")
        return 2
    return int(result) if isinstance(result, int) else 0


def run() -> None:
    """Console-script entry point: ``sys.exit(main())``."""
    sys.exit(main())
