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


def test_each_crop_has_its_own_cache_folder(tiny_dataset: Any, tmp_path: Any) -> None:
    import csv

    from ichkit.dicom import load_series
    from ichkit.model._cache import build_cache, cache_folder
    from ichkit.model._data import discover_series, find_layout
    from ichkit.model._preprocess import head_box

    rows = list(csv.DictReader((tiny_dataset / "truth.csv").read_text().splitlines()))
    series = discover_series(
        find_layout(tiny_dataset), {r["ID"].rsplit("_", 1)[0][3:] for r in rows}
    )[:3]
    assert cache_folder(tmp_path, 32).name == "v1-32px"  # the folder of caches built before
    square = build_cache(series, tmp_path, size=32)
    fit = build_cache(series, tmp_path, size=32, crop="fit")
    assert {c.path.parent.name for c in square} == {"v1-32px"}
    assert {c.path.parent.name for c in fit} == {"v1-32px-fit"}
    for s, a, b in zip(series, square, fit, strict=True):
        hu = load_series(list(s.files)).hu
        assert a.box == head_box(hu) and a.box.height == a.box.width
        assert b.box == head_box(hu, crop="fit") and b.box.height > b.box.width
        assert a.load().shape == b.load().shape and (a.load() != b.load()).any()
    stamps = [c.path.stat().st_mtime_ns for c in fit]
    again = build_cache(series, tmp_path, size=32, crop="fit")  # read back, not rebuilt
    assert [c.box for c in again] == [c.box for c in fit]
    assert [c.path.stat().st_mtime_ns for c in again] == stamps


def test_a_series_written_again_is_rebuilt(tiny_dataset: Any, tmp_path: Any) -> None:
    """Same names and UIDs, new pixels (a dataset generated again): not the old volume."""
    import csv
    import json
    import os
    import shutil

    import numpy as np
    import pydicom

    from ichkit.model._cache import build_cache, cache_folder
    from ichkit.model._data import discover_series, find_layout

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    rows = list(csv.DictReader((data / "truth.csv").read_text().splitlines()))
    labelled = {r["ID"].rsplit("_", 1)[0][3:] for r in rows}
    index = tmp_path / "index.json"
    (series,) = discover_series(find_layout(data), labelled, index_file=index)[:1]
    (first,) = build_cache([series], tmp_path / "c", size=32)
    before = np.array(first.load())
    for path in series.files:  # the same files, written again with other pixels
        ds = pydicom.dcmread(path)
        ds.PixelData = (ds.pixel_array + 40).astype(ds.pixel_array.dtype).tobytes()
        ds.save_as(path)
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    (again,) = discover_series(find_layout(data), labelled, index_file=index)[:1]
    assert (again.files, again.sop_instance_uids) == (series.files, series.sop_instance_uids)
    assert again.source != series.source  # the scan saw the new times
    (second,) = build_cache([again], tmp_path / "c", size=32)
    assert second.source != first.source
    assert (np.array(second.load()) != before).any()
    # an older ichkit's sidecar (no fingerprint) is reused only for this series' images
    meta = cache_folder(tmp_path / "c", 32) / f"{series.key}.json"
    old = json.loads(meta.read_text())
    del old["source"]
    meta.write_text(json.dumps(old))
    stamp = second.path.stat().st_mtime_ns
    build_cache([again], tmp_path / "c", size=32)
    assert second.path.stat().st_mtime_ns == stamp  # reused
    old["sop_instance_uids"] = ["9.9.9", *old["sop_instance_uids"][1:]]
    meta.write_text(json.dumps(old))
    (third,) = build_cache([again], tmp_path / "c", size=32)
    assert third.source is not None and list(third.sop_instance_uids) == list(
        series.sop_instance_uids
    )


def test_a_warm_start_stats_each_file_once(
    tiny_dataset: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The series index carries each series' fingerprint: the cache check reads no file times."""
    import csv
    import json

    import ichkit.model._cache as cache
    from ichkit.model._data import discover_series, find_layout

    def no_stat(files: Any) -> str:
        raise AssertionError("the files are stat-ed again")

    rows = list(csv.DictReader((tiny_dataset / "truth.csv").read_text().splitlines()))
    labelled = {r["ID"].rsplit("_", 1)[0][3:] for r in rows}
    index = tmp_path / "index.json"
    with monkeypatch.context() as m:  # a cold start: one stat per file, for the digest
        m.setattr(cache, "source_fingerprint", no_stat)
        scanned = discover_series(find_layout(tiny_dataset), labelled, index_file=index)
    assert all(s.source == cache.source_fingerprint(s.files) for s in scanned)
    built = cache.build_cache(scanned, tmp_path / "c", size=32)
    reused = discover_series(find_layout(tiny_dataset), labelled, index_file=index)
    assert reused == scanned  # from the index, fingerprints included
    with monkeypatch.context() as m:
        m.setattr(cache, "source_fingerprint", no_stat)
        again = cache.build_cache(reused, tmp_path / "c", size=32)
    assert [a.path for a in again] == [b.path for b in built]
    # an index written by an older ichkit (no fingerprints) gets them, once, from the stats
    stored = json.loads(index.read_text())
    for s in stored["series"]:
        del s["source"]
    index.write_text(json.dumps(stored))
    with monkeypatch.context() as m:
        m.setattr(cache, "source_fingerprint", no_stat)
        older = discover_series(find_layout(tiny_dataset), labelled, index_file=index)
        assert [a.path for a in cache.build_cache(older, tmp_path / "c", size=32)] == [
            b.path for b in built
        ]
    assert older == scanned
    assert all(s["source"] for s in json.loads(index.read_text())["series"])
    # an older index that cannot be rewritten (a read-only shared cache) is used as it is
    index.write_text(json.dumps(stored))

    def read_only(*args: Any) -> None:
        raise PermissionError("read-only file system")

    import ichkit.model._data as data

    with monkeypatch.context() as m:
        m.setattr(data, "_write_index", read_only)  # a rescan would write (and so fail)
        assert discover_series(find_layout(tiny_dataset), labelled, index_file=index) == scanned
