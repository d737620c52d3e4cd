"""Synthetic head CT exams with known hemorrhages, written as realistic DICOM.

No patient data may reach our machines, yet every stage must run end to end:
:func:`generate_exam` builds one exam (a 3-D head phantom sampled into axial
slices, with hemorrhages, hard-negative mimics and scanner artefacts) and
:func:`write_dataset` writes a whole multi-site, multi-vendor dataset with
PHI-laden headers, RSNA-format truth and optional lesion masks.

Examples
--------
>>> from ichkit.synth import SynthConfig, generate_exam
>>> hu, labels, masks, meta = generate_exam(SynthConfig(exams=2, size=64, slices=8), 0)
>>> hu.shape
(8, 64, 64)
"""

from __future__ import annotations

from ichkit.synth._config import RSNA_SUBTYPE_WEIGHTS, SynthConfig
from ichkit.synth._dataset import DatasetSummary, write_dataset
from ichkit.synth._generate import (
    HU_MAX,
    HU_MIN,
    ExamMetadata,
    ExamPlan,
    SynthExam,
    generate_exam,
    plan_dataset,
)
from ichkit.synth._phi import PHI_KEYWORDS
from ichkit.synth._vendors import (
    PROFILES,
    PixelEncoding,
    VendorProfile,
    profile_for_site,
    site_name,
)
from ichkit.synth._writer import WrittenExam, encode_pixels

__all__ = [
    "HU_MAX",
    "HU_MIN",
    "PHI_KEYWORDS",
    "PROFILES",
    "RSNA_SUBTYPE_WEIGHTS",
    "DatasetSummary",
    "ExamMetadata",
    "ExamPlan",
    "PixelEncoding",
    "SynthConfig",
    "SynthExam",
    "VendorProfile",
    "WrittenExam",
    "encode_pixels",
    "generate_exam",
    "plan_dataset",
    "profile_for_site",
    "site_name",
    "write_dataset",
]
