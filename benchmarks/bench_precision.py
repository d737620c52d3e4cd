"""Does bf16 autocast pay on this CPU? Encoder step time in bf16 vs fp32, same process.

Usage::

    .venv/bin/python benchmarks/bench_precision.py [--steps 6] [--threads 2] [--encoders small ...]

For the registered CPU encoders at the input sizes their presets use (``small``,
``small-dilated``, ``small-dilated-patch`` and ``small-fine`` at 128 px,
``medium`` at 256 px; 9 input channels = 3 windows x 3 neighbouring slices;
channels-last, as ``ichkit train`` runs them),
times one training step (forward, backward, AdamW; batch 64, 32 for
``medium``) and one inference forward pass (batch 128) with bf16 autocast and
in fp32, alternating the two, and prints the median seconds and the ratio
(``--encoders`` picks some of them, in that order; the last column gives each
train step against the first one's in the same precision, same process).
``precision=auto`` in ``ichkit train`` picks bf16 on any CPU with native bf16
(``avx512_bf16``); the CPU flags that matter (``avx512_bf16``, ``amx_bf16``)
are printed first.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from ichkit.model.networks import build_encoder

#: encoder -> (input side, training batch)
CASES = {
    "small": (128, 64),
    "small-dilated": (128, 64),
    "small-dilated-patch": (128, 64),
    "small-fine": (128, 64),
    "medium": (256, 32),
}


def _time(fn: object, steps: int) -> float:
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(name: str, size: int, batch: int, steps: int) -> dict[str, float]:
    """Median seconds per train step and per inference pass, bf16 and fp32."""
    torch.manual_seed(0)
    enc = build_encoder(name, 9, norm="batch", pool="avgmax").to(memory_format=torch.channels_last)
    head = torch.nn.Linear(enc.features, 6)
    opt = torch.optim.AdamW([*enc.parameters(), *head.parameters()], lr=1e-3)
    x = torch.randn(batch, 9, size, size).contiguous(memory_format=torch.channels_last)
    xi = torch.randn(128, 9, size, size).contiguous(memory_format=torch.channels_last)
    out: dict[str, float] = {}
    for _ in range(2):  # alternate the two precisions twice, keep the best median
        for bf16 in (True, False):

            def train_step(bf16: bool = bf16) -> None:
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    y = head(enc(x))
                loss = y.float().square().mean()
                opt.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()

            def infer(bf16: bool = bf16) -> None:
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    enc.eval()
                    enc(xi)
                    enc.train()

            tag = "bf16" if bf16 else "fp32"
            for kind, fn in (("train", train_step), ("infer", infer)):
                t = _time(fn, steps)
                out[f"{kind}_{tag}"] = min(out.get(f"{kind}_{tag}", t), t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--encoders", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    flags = next(
        (set(ln.split(":", 1)[1].split()) for ln in lines if ln.startswith("flags")), set()
    )
    model = next((ln.split(":", 1)[1].strip() for ln in lines if "model name" in ln), "?")
    print(
        f"torch {torch.__version__}, {args.threads} threads, {model}; "
        f"avx512_bf16: {'avx512_bf16' in flags}, amx_bf16: {'amx_bf16' in flags}"
    )
    print(
        "| encoder | input | train step bf16 / fp32 (s) | fp32 speed-up | "
        "inference 128 slices bf16 / fp32 (s) | fp32 speed-up | train step bf16 / fp32 "
        "against the first row |"
    )
    print("|---|---|---|---|---|---|---|")
    first: dict[str, float] = {}
    for name in args.encoders:
        size, batch = CASES[name]
        r = measure(name, size, batch, args.steps)
        first = first or r
        print(
            f"| {name} | {size} px, batch {batch} | {r['train_bf16']:.3f} / {r['train_fp32']:.3f} "
            f"| {r['train_bf16'] / r['train_fp32']:.2f}x | {r['infer_bf16']:.3f} / "
            f"{r['infer_fp32']:.3f} | {r['infer_bf16'] / r['infer_fp32']:.2f}x "
            f"| {r['train_bf16'] / first['train_bf16']:.2f}x / "
            f"{r['train_fp32'] / first['train_fp32']:.2f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
