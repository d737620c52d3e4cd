"""Real head CT series (../shared/realdata) de-identify and load to the same HU volume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from deid_helpers import REALDATA

from ichkit.deid import DeidConfig, deidentify_tree

pytestmark = pytest.mark.realdata

SERIES = {"rsna-series-a": 32, "rsna-series-b": 36, "cq500-ct0": 238}
CQ500_FAST = 24  # the default run takes the first 24 CQ500 slices; -m slow takes all 238


def _load_series() -> object | None:
    try:
        from ichkit.dicom import load_series
    except ImportError:
        return None
    return load_series


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("rsna-series-a", 32),
        ("rsna-series-b", 36),
        ("cq500-ct0", CQ500_FAST),
        pytest.param("cq500-ct0", 238, marks=pytest.mark.slow, id="cq500-ct0-all"),
    ],
)
def test_real_series_round_trip(name: str, count: int, tmp_path: Path, key_path: Path) -> None:
    src = REALDATA / name
    if not src.is_dir():
        pytest.skip(f"real data not found at {src}")
    if count < SERIES[name]:
        subset = tmp_path / "subset"
        subset.mkdir()
        for path in sorted(src.iterdir())[:count]:
            (subset / path.name).symlink_to(path)
        src = subset
    cfg = DeidConfig(workers=2) if count > 100 else DeidConfig()
    summary = deidentify_tree(src, tmp_path / "out", key=key_path, config=cfg)
    assert summary.exit_status == 0, summary.reasons
    assert summary.deidentified == count
    outputs = sorted((tmp_path / "out").rglob("*.dcm"))
    assert len(outputs) == count
    assert len({p.parent for p in outputs}) == 1  # one series folder

    # Pixel data bytes (native or JPEG Lossless fragments) and rescale unchanged.
    originals = {}
    for path in sorted(src.iterdir()):
        ds = pydicom.dcmread(path)
        originals[(str(ds.ImagePositionPatient), ds.get("InstanceNumber"))] = ds
    for path in outputs[:: max(1, len(outputs) // 8)]:
        out = pydicom.dcmread(path)
        orig = originals[(str(out.ImagePositionPatient), out.get("InstanceNumber"))]
        assert out.PixelData == orig.PixelData
        assert out.file_meta.TransferSyntaxUID == orig.file_meta.TransferSyntaxUID
        for keyword in ("RescaleIntercept", "RescaleSlope", "BitsStored", "PixelRepresentation"):
            assert out.get(keyword) == orig.get(keyword)
        assert out.PatientID.startswith("TEST-")
        assert "PatientName" not in out or str(out.PatientName) == out.PatientID

    load_series = _load_series()
    if load_series is None:
        return
    before = load_series(src)  # type: ignore[operator]
    after = load_series(tmp_path / "out" / outputs[0].parent.relative_to(tmp_path / "out"))  # type: ignore[operator]
    assert after.hu.dtype == np.int16
    np.testing.assert_array_equal(after.hu, before.hu)
    np.testing.assert_allclose(after.spacing, before.spacing)
