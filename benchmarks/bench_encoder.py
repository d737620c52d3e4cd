"""The encoder's input pipeline and inference: ichkit's code against the code it replaced.

Usage::

    .venv/bin/python benchmarks/bench_encoder.py [--calls 40] [--threads 2]

In one process, ichkit's code and the baseline called in turn ``--calls``
times each (after two warm-up calls), median seconds of each:

* **windowing** of one stage-1 step (64 slices with one neighbour on each
  side, 128 px, brain/subdural/bone windows: 9 channels), as
  :meth:`SeriesModel.neighbour_inputs` does it (one grouped 1x1 convolution
  written in the encoder's channels-last layout) against the baseline
  ``clamp((hu - low) / width)`` elementwise followed by the copy to
  channels-last (the code before);
* a whole **training step** of the demo preset's encoder (windowing, forward,
  backward, AdamW) with each windowing;
* the **augmentation** of one 20-slice stack (:class:`SeriesAugment`, one
  thread, as stage 1 runs it) with ichkit's torch-drawn noise against the same
  transforms with MONAI's ``RandGaussianNoise`` (the baseline);
* **inference** of one 33-slice series with the demo preset's 4 test-time
  views (132 slices, eval mode, no gradients), the encoder fed in chunks of
  at most ``CPU_CHUNK_BYTES`` (ichkit) against one batch (the baseline).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch


def _interleaved(new: Callable[[], object], old: Callable[[], object], calls: int) -> list[float]:
    """Median seconds of ``new`` and of ``old``, called in turn (ABBA order) ``calls`` times each.

    Calling them in turn, rather than one block after the other, spreads this
    shared machine's drift over both.
    """
    times: list[list[float]] = [[], []]
    fns = (new, old)
    for i in range(calls + 2):
        for j in (0, 1) if i % 2 else (1, 0):
            start = time.perf_counter()
            fns[j]()
            if i >= 2:  # two warm-up calls each
                times[j].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def _old_windows(model: torch.nn.Module, hu: torch.Tensor) -> torch.Tensor:
    """The baseline: windows elementwise in NCHW, then the copy to channels-last."""
    x = hu.unsqueeze(2).sub(model.window_low)
    x = x.div_(model.window_width).clamp_(0.0, 1.0).flatten(1, 2)
    return x.contiguous(memory_format=torch.channels_last)


def main() -> None:
    """Run the benchmark and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from monai.transforms import RandGaussianNoise  # type: ignore[attr-defined]

    from ichkit.labels import LABELS
    from ichkit.model import load_config
    from ichkit.model._augment import SeriesAugment
    from ichkit.model.networks import build_model

    torch.set_num_threads(args.threads)
    cfg = load_config(preset="demo")
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    aux = torch.nn.Linear(model.encoder.features, len(LABELS))
    opt = torch.optim.AdamW([*model.encoder.parameters(), *aux.parameters()], lr=1e-3)
    k = 2 * cfg.context + 1
    hu = torch.randn(64, k, cfg.input_size, cfg.input_size) * 300.0
    assert torch.allclose(model.neighbour_inputs(hu), _old_windows(model, hu), atol=1e-6)

    def step(window: Callable[[torch.Tensor], torch.Tensor]) -> None:
        with torch.no_grad():
            x = window(hu)
        loss = aux(model.encode(x)).square().mean()
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()

    rng = np.random.default_rng(0)
    stack = rng.normal(30.0, 300.0, (20, cfg.input_size, cfg.input_size)).astype(np.int16)
    augment = SeriesAugment(cfg.input_size)
    baseline = SeriesAugment(cfg.input_size)
    transforms = list(baseline._transform.transforms)
    transforms[-1] = RandGaussianNoise(prob=0.5, mean=0.0, std=5.0)
    baseline._transform.transforms = tuple(transforms)

    def augment_with(aug: SeriesAugment) -> Callable[[], object]:
        seeds = iter(range(10**9))  # each arm draws the same sequence of augmentations

        def run() -> object:
            torch.set_num_threads(1)
            try:  # one draw per call, as stage 1 draws one per series and epoch
                return [aug(stack, seed=next(seeds)) for _ in range(20)]
            finally:
                torch.set_num_threads(args.threads)

        return run

    import ichkit.model.networks as networks

    infer_model = build_model(cfg).eval()
    series = torch.randn(1, 33, cfg.input_size, cfg.input_size) * 300.0
    chunk_bytes = networks.CPU_CHUNK_BYTES

    def infer(chunked: bool) -> Callable[[], object]:
        def run() -> object:
            networks.CPU_CHUNK_BYTES = chunk_bytes if chunked else 2**62
            try:
                with torch.no_grad():
                    return infer_model(series)
            finally:
                networks.CPU_CHUNK_BYTES = chunk_bytes

        return run

    with torch.no_grad():
        a, b = infer(True)(), infer(False)()
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a, b, strict=True))
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "windowing, 64 slices x 9 channels": (
            lambda: model.neighbour_inputs(hu),
            lambda: _old_windows(model, hu),
        ),
        "training step (windowing + forward + backward + AdamW)": (
            lambda: step(model.neighbour_inputs),
            lambda: step(lambda h: _old_windows(model, h)),
        ),
        "augmentation, 20 stacks of 20 slices (1 thread)": (
            augment_with(augment),
            augment_with(baseline),
        ),
        f"inference, 33 slices x {len(infer_model.tta_views)} views, no gradients": (
            infer(True),
            infer(False),
        ),
    }
    best = {name: _interleaved(*fns, args.calls) for name, fns in cases.items()}
    print(
        f"demo preset encoder {cfg.encoder} at {cfg.input_size} px, {args.threads} threads, "
        f"median of {args.calls} calls each, ichkit and baseline called in turn"
    )
    print("| case | ichkit (s) | baseline (s) | ratio |\n|---|---|---|---|")
    for name, (new, old) in best.items():
        print(f"| {name} | {new:.4f} | {old:.4f} | {old / new:.2f}x |")


if __name__ == "__main__":
    main()
