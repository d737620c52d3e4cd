"""Fixtures for ichkit.dicom tests."""

from __future__ import annotations

import pytest
from dicom_helpers import CQ500, require_realdata


@pytest.fixture(scope="session")
def cq500_series():  # type: ignore[no-untyped-def]
    """CQ500-CT-0 loaded once per session (238 JPEG Lossless slices, a few seconds)."""
    require_realdata(CQ500)
    from ichkit.dicom import load_series

    return load_series(CQ500)
