"""The GPU check runs end to end (dry run on the CPU) and needs only what travels.

The GPU machine is lent to few sessions, for minutes, with no network: its
check must work the first time. This runs ``benchmarks/gpu_check.sh --dry-run``
as the device would (same script, same subprocesses) and checks its summary,
and that every package its processes import is in the device image's list or
among the wheels ``benchmarks/gpu_wheels.py`` carries there.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("torch")
pytest.importorskip("monai")


def _load_gpu_wheels():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gpu_wheels", ROOT / "benchmarks/gpu_wheels.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _distributions_by_top_level() -> dict[str, set[str]]:
    """Top-level module name -> distribution names (from each distribution's files)."""
    out: dict[str, set[str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"].lower().replace("_", "-")
        for f in dist.files or ():
            top = f.parts[0]
            if top.endswith((".dist-info", ".data", "..")) or top == "..":
                continue
            out.setdefault(top.split(".")[0], set()).add(name)
    return out


def _imported_packages(stderr: str) -> dict[str, set[str]]:
    """Distributions (with their modules) of the installed modules the processes imported."""
    names = set()
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", line)
        if m:
            names.add(m.group(1).split(".")[0])
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    owners = _distributions_by_top_level()
    found: dict[str, set[str]] = {}
    for name in names:
        # (stdlib names are this Python's: a module 3.12 dropped would pass here)
        if name in sys.stdlib_module_names or name in ("ichkit", "bench_model", "__main__"):
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue  # an optional import that failed here (and would there)
        origin = Path(spec.origin).resolve() if spec.origin else None
        if origin is not None and stdlib in origin.parents and "site-packages" not in str(origin):
            continue
        for dist in owners.get(name, {f"?{name}"}):
            found.setdefault(dist, set()).add(name)
    return found


def test_gpu_check_dry_run_works_with_what_travels(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {
        **os.environ,
        "PY": sys.executable,
        "PYTHONPROFILEIMPORTTIME": "1",
        "ICHKIT_GPU_SITE": str(tmp_path / "site"),
    }
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--dry-run", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    tail = "\n".join(line for line in proc.stderr.splitlines() if "import time" not in line)
    assert proc.returncode == 0, tail[-3000:]

    summary = json.loads(out.read_text())
    assert summary["phases_done"] == ["train", "inference", "two-stage"]
    assert summary["epochs"] >= 1 and summary["two_stage_s"] > 0
    assert all(x > 0 for x in summary["images_per_s_by_epoch"])
    assert summary["infer_study"] == "32 slices of 64 px"  # the axial series alone
    assert summary["infer_tta"] == "lr"  # the rsna preset's test-time views, as trained
    assert 0 < summary["infer_model_s"] < summary["infer_total_s"]
    assert summary["seresnext101_256_fp32_s"] > 0 and summary["predict_cli_s"] > 0

    gw = _load_gpu_wheels()
    allowed = set(gw.DEVICE_HAS) | set(gw.NEEDED) | set(gw.OPTIONAL)
    assert not set(gw.NEEDED) & set(gw.DEVICE_HAS)
    allowed.add("ichkit")  # runs from src/ there
    missing = {d: sorted(m) for d, m in _imported_packages(proc.stderr).items() if d not in allowed}
    assert not missing, (
        f"gpu_check's processes import packages the GPU machine would lack: {missing}; "
        "add them to NEEDED (or DEVICE_HAS, if the image holds them) in benchmarks/gpu_wheels.py"
    )
