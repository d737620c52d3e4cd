"""The preprocessing cache's worker processes."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest


def _blas_threads() -> list[int]:
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))  # the BLAS library is loaded
    info: list[dict[str, Any]] = threadpool_info()
    return [int(pool["num_threads"]) for pool in info if pool.get("user_api") == "blas"]


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def test_cache_workers_run_one_blas_and_one_torch_thread() -> None:
    # Two workers with a BLAS thread per core each oversubscribed 2 cores:
    # the cache build ran 3.9x slower (benchmarks/RESULTS.md).
    from ichkit.model._cache import _worker_init

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, initializer=_worker_init) as pool:
        blas = pool.submit(_blas_threads).result(timeout=120)
        torch_threads = pool.submit(_torch_threads).result(timeout=120)
    if not blas:
        pytest.skip("threadpoolctl sees no BLAS thread pool in this numpy")
    assert blas == [1] * len(blas)
    assert torch_threads == 1
