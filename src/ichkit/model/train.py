"""``python -m ichkit.model.train``: the training entry point for ``torchrun``.

Takes the same arguments as ``ichkit train``, e.g.::

    torchrun --nproc_per_node=2 -m ichkit.model.train --preset demo \
        --data synth-out --out runs/ddp

Every process runs the same code as ``ichkit train``; only rank 0 writes the
run folder and shows progress.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``ichkit train`` with these arguments; return its exit status."""
    from ichkit.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = [a for a in args if a in ("-v", "--verbose")]
    rest = [a for a in args if a not in ("-v", "--verbose")]
    return cli_main([*verbose, "train", *rest])


if __name__ == "__main__":
    sys.exit(main())
