"""The command line as a whole: help texts, lazy imports, error handling."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
import typer.main

from ichkit.cli import app, main
from ichkit.errors import IchkitError


def _command_paths(
    group: typer.core.TyperGroup, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    paths = []
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if getattr(command, "hidden", False):
            continue
        paths.append((*prefix, name))
        if isinstance(command, typer.core.TyperGroup):
            paths.extend(_command_paths(command, (*prefix, name)))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))  # type: ignore[arg-type]


def test_root_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out
    for name in ("dicom", "score"):
        assert name in out


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage" in out
    # A help text says what the command does, not only its options.
    assert len(out.split("Options")[0].split("Usage", 1)[1].strip().splitlines()) >= 2


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from ichkit.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'pandas', 'numpy', 'sqlalchemy', 'pydicom', 'monai',"
        " 'matplotlib', 'sklearn', 'onnxruntime') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "HEAVY="


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2
    assert "no-such-command" in capsys.readouterr().err


def test_ichkit_error_becomes_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    @app.command("_raise-for-test", hidden=True)
    def _raise() -> None:
        raise IchkitError("bad value 7; expected 3", path="x.csv", field="line 4")

    try:
        assert main(["_raise-for-test"]) == 2
        err = capsys.readouterr().err
        assert err == "ichkit: error: x.csv: line 4: bad value 7; expected 3\n"
        with pytest.raises(IchkitError, match="bad value 7"):
            main(["-v", "_raise-for-test"])
    finally:
        app.registered_commands = [
            c for c in app.registered_commands if c.name != "_raise-for-test"
        ]


def test_a_file_system_error_becomes_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An output that cannot be written: exit 2 and the path, not a traceback."""
    (tmp_path / "file").write_text("x")
    assert main(["synth", str(tmp_path / "file" / "out"), "--exams", "1", "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ichkit: error: ") and "file" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ichkit", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_cli_default_db_is_the_catalog_default() -> None:
    from ichkit.catalog import DEFAULT_URL
    from ichkit.cli._options import DEFAULT_DB

    assert DEFAULT_DB == DEFAULT_URL
