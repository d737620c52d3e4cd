"""Session fixtures: one small synthetic dataset on disk, shared by the synth tests.

``synth_dataset`` is meant to move to tests/conftest.py so that other stages
(dicom, deid, curate, model…) can run on it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ichkit.synth import DatasetSummary, SynthConfig, write_dataset


@dataclass(frozen=True)
class SynthDataset:
    """A synthetic dataset written once per test session."""

    path: Path
    config: SynthConfig
    summary: DatasetSummary


#: Small but complete: all 5 vendor profiles, masks, a repeat patient, both
#: positive and negative exams (seed 11 plans 4 positives of 8).
SMALL_CONFIG = SynthConfig(
    exams=8,
    seed=11,
    size=64,
    slices=8,
    sites=5,
    prevalence=0.5,
    masks=True,
    repeat_patient_fraction=0.3,
)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> SynthDataset:
    """8 exams of 64×64×8 from 5 sites/vendors, with masks and preview (~5 s)."""
    out = tmp_path_factory.mktemp("synth") / "dataset"
    summary = write_dataset(SMALL_CONFIG, out, preview=True)
    return SynthDataset(out, SMALL_CONFIG, summary)
