"""Download, here, the wheels the GPU machine lacks for ``benchmarks/gpu_check.sh``.

Usage::

    .venv/bin/python benchmarks/gpu_wheels.py [--python-version 3.12] [--dest .whl]

The GPU machine has no network and no ``.venv`` (far too large to travel). Its
``python3`` (3.12) already holds a CUDA torch and the packages in
:data:`DEVICE_HAS` (the device image's list, ``/work/.library/device/KINDS.md``,
2026-11-17). What ichkit's synth / train / predict path needs beyond them,
:data:`NEEDED`, travels as wheels in ``.whl/`` (git-ignored; the device call
names it in ``carry``), and ``gpu_check.sh`` installs them there with
``--no-deps --no-index`` into a scratch folder. The versions are this
checkout's ``.venv``'s, those the CPU tests ran with (Python, torch and numpy
there are the image's: 3.12, 2.11 and 2.5 by its list, against 3.11, 2.13 and
2.4 here).
``tests/model/test_gpu_check.py`` checks that a dry run imports nothing
outside these two lists and the standard library.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
from pathlib import Path

#: Distributions of the GPU image that ichkit's commands may import.
DEVICE_HAS = frozenset(
    {
        "torch", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "rich",
        "click", "shellingham", "onnx", "onnxruntime", "onnxscript",
        "onnx-ir", "threadpoolctl", "joblib", "pillow", "packaging", "python-dateutil", "six",
        "pyparsing", "cycler", "kiwisolver", "fonttools", "contourpy", "markdown-it-py", "mdurl",
        "pygments", "filelock", "fsspec", "jinja2", "markupsafe", "networkx", "sympy", "mpmath",
        "triton", "protobuf", "ml-dtypes", "flatbuffers", "psutil", "pyyaml", "cloudpickle",
        "toolz", "msgpack", "sortedcontainers", "urllib3", "narwhals",
        "annotated-doc", "setuptools",
    }
)  # fmt: skip

#: ichkit's runtime needs that the GPU image lacks, for what gpu_check.py runs
#: (typer and what it needs travel too: ichkit needs typer >= 0.29, which
#: needs pydantic, and the image's typer version is not known).
NEEDED = (
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-libjpeg",
    "pylibjpeg-openjpeg",
    "pylibjpeg-rle",
    "monai",
    "typer",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
)

#: Imported when present, used by nothing gpu_check.py runs (pydicom probes
#: for the JPEG-LS plugin ichkit's tests use).
OPTIONAL = frozenset({"pyjpegls"})

#: glibc levels tried for binary wheels (the image is Ubuntu 24.04: glibc 2.39).
PLATFORMS = (
    "manylinux_2_39", "manylinux_2_35", "manylinux_2_34", "manylinux_2_31", "manylinux_2_28",
    "manylinux_2_27", "manylinux_2_24", "manylinux_2_17", "manylinux2014", "manylinux1",
)  # fmt: skip


def main() -> None:
    """Download the wheels of :data:`NEEDED` at this environment's versions."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python-version", default="3.12", help="the GPU machine's Python")
    p.add_argument(
        "--dest",
        type=Path,
        default=Path(__file__).resolve().parents[1] / ".whl",
        help="folder for the wheels (its old *.whl are removed; default: .whl/)",
    )
    a = p.parse_args()
    specs = [f"{name}=={importlib.metadata.version(name)}" for name in NEEDED]
    a.dest.mkdir(parents=True, exist_ok=True)
    for old in a.dest.glob("*.whl"):
        old.unlink()
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", a.python_version, "--implementation", "cp", "-d", str(a.dest)]
    for tag in PLATFORMS:
        cmd += ["--platform", f"{tag}_x86_64"]
    subprocess.run(cmd + specs, check=True)
    wheels = sorted(a.dest.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{len(wheels)} wheels, {size:.1f} MiB, in {a.dest}:")
    for w in wheels:
        print(f"  {w.name}")


if __name__ == "__main__":
    main()
