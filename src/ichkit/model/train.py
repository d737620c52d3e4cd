"""``python -m ichkit.model.train``: the training entry point for ``torchrun``.

Takes the same arguments as ``ichkit train``, e.g.::

    torchrun --nproc_per_node=2 -m ichkit.model.train --preset demo \
        --data synth-out --out runs/ddp

Every process runs the same code as ``ichkit train``; only rank 0 writes the
run folder and shows progress.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["exit_worker", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``ichkit train`` with these arguments; return its exit status."""
    from ichkit.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = [a for a in args if a in ("-v", "--verbose")]
    rest = [a for a in args if a not in ("-v", "--verbose")]
    return cli_main([*verbose, "train", *rest])


def exit_worker(status: int) -> None:
    """End a torchrun worker without interpreter shutdown (``os._exit``), output flushed.

    ``ichkit train`` calls it after a distributed run; so does this module's
    ``__main__`` with the status of a run that failed. A script of your own
    that calls :func:`ichkit.model.train_model` under torchrun can end the
    same way: ``exit_worker(0)`` as its last statement. Outside torchrun
    (``WORLD_SIZE`` unset or 1) it is ``sys.exit(status)``.

    gloo's worker threads outlive the destroyed process group, and one of them
    may still hold the last reference to a collective's tensors (all-gather,
    barrier) when the interpreter shuts down. Freeing a tensor that a Python
    object owns needs the GIL, and a thread that asks for the GIL during
    shutdown is ended mid-destructor: the process aborts ("terminate called
    without an active exception", SIGABRT) after all its work is done (seen in
    a gdb backtrace; ``benchmarks/ddp_teardown.py`` counts how often). Nothing
    here needs shutdown: the run folder is written atomically and the loader
    workers are gone. A single process exits normally.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        sys.exit(status)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    exit_worker(main())
