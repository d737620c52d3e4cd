"""Does ``torch.compile`` pay for stage 1 on this CPU? Encoder train step, eager vs compiled.

Usage::

    .venv/bin/python benchmarks/bench_compile.py [--encoder small-dilated] \
        [--precision bf16 fp32] [--steps 15] [--threads 2]

Times stage 1's training step as ``ichkit train`` runs it (the encoder with a
linear head, channels-last, 9 input channels at 128 px, batch 64, BCE, AdamW)
eagerly and under ``torch.compile`` (inductor), in the same process,
alternating the two twice; each precision in turn (bf16 autocast, fp32). It
prints the first step (compilation included) and the median of the next
``--steps`` steps, and the compiled step against the eager one (the baseline).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ichkit.model.networks import build_encoder


def measure(encoder: str, bf16: bool, compiled: bool, steps: int) -> tuple[float, float]:
    """(first step s, median step s) of one fresh model."""
    torch.manual_seed(0)
    enc = build_encoder(encoder, 9, norm="batch", pool="avgmax")
    model = torch.nn.Sequential(enc, torch.nn.Linear(enc.features, 6))
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    fwd = torch.compile(model) if compiled else model
    x = torch.randn(64, 9, 128, 128).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(64, 6) < 0.2).float()

    def step() -> float:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = fwd(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        return time.perf_counter() - t

    first = step()
    step()  # warm-up
    return first, statistics.median(step() for _ in range(steps))


def main() -> None:
    """Print a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="small-dilated")
    p.add_argument("--precision", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{a.encoder}, 128 px, batch 64, {a.threads} threads, torch {torch.__version__}")
    print("| precision | eager first / median step (s) | compiled first / median step (s) |")
    print("|---|---|---|")
    for prec in a.precision:
        best: dict[bool, tuple[float, float]] = {}
        for compiled in (False, True, False, True):
            first, med = measure(a.encoder, prec == "bf16", compiled, a.steps)
            old = best.get(compiled)
            # the first compiled round pays the compilation; keep it, and the best median
            best[compiled] = (old[0] if old else first, min(med, old[1]) if old else med)
        (ef, em), (cf, cm) = best[False], best[True]
        print(f"| {prec} | {ef:.2f} / {em:.4f} | {cf:.2f} / {cm:.4f} (step {cm / em:.2f}x eager) |")


if __name__ == "__main__":
    main()
