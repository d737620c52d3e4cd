"""How often does a 2-process gloo run abort at exit? Three ways of ending it.

Usage::

    .venv/bin/python benchmarks/ddp_teardown.py [--runs 100] [--modes destroy barrier exit]

Each trial starts two processes (rank 0 and 1, gloo on loopback, the
environment ``torchrun`` gives) that do what a DDP training of
``ichkit train`` does at its end, in little: a DDP-wrapped model trained a
few steps, a loss all-reduced and an object all-gathered per step, a
barrier; then they end in one of these ways:

``destroy``
    ``torch.distributed.destroy_process_group()``, then normal interpreter
    shutdown: what ``train_model`` does for a caller of the library, and all
    that ``ichkit train`` did before it ended its workers with ``exit_worker`` (the
    baseline).
``barrier``
    A second barrier, then destroy, then normal shutdown (tried in the
    fifteenth session as a fix; not used).
``exit``
    Destroy, then ``ichkit.model.train.exit_worker`` (``os._exit`` after
    flushing): what ``ichkit train`` does under torchrun (``python -m
    ichkit.model.train``, ``ichkit train --nproc N``).

A trial fails when either process exits non-zero (the abort is SIGABRT,
"terminate called without an active exception"). The modes are interleaved
trial by trial, so machine load falls on all alike. It prints, per mode, the
failed trials out of ``--runs``.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

MODES = ("destroy", "barrier", "exit")


def _train_a_little() -> None:
    """DDP steps with the collectives ``_train`` uses (all-reduce, all-gather, barrier)."""
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 6))
    net = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(net.parameters())
    for step in range(3):
        loss = net(torch.randn(8, 64)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t = torch.tensor([float(loss.detach())])
        torch.distributed.all_reduce(t)
        out: list[object] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(out, {"step": step, "loss": float(t)})
    torch.distributed.barrier()


def worker(mode: str) -> None:
    """One rank's trial (run with RANK, WORLD_SIZE, MASTER_ADDR/PORT set)."""
    import torch

    from ichkit.model._train import _init_distributed
    from ichkit.model.train import exit_worker

    _init_distributed()
    _train_a_little()
    if mode == "barrier":
        torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    if mode == "exit":
        exit_worker(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def trial(mode: str) -> list[int]:
    """Exit codes of the two processes of one trial."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "LOCAL_WORLD_SIZE": "2",
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", mode],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    codes = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        if p.returncode:
            sys.stderr.write(f"[{mode}] exit {p.returncode}: {err.strip().splitlines()[-1:]}\n")
        codes.append(p.returncode)
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="trials per mode")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    failed = dict.fromkeys(args.modes, 0)
    for i in range(args.runs):
        order = args.modes if i % 2 == 0 else args.modes[::-1]
        for mode in order:
            failed[mode] += any(trial(mode))
    print(f"{'mode':<10} failed trials (of {args.runs}, 2 processes each)")
    for mode in args.modes:
        print(f"{mode:<10} {failed[mode]}")


if __name__ == "__main__":
    main()
