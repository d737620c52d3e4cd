"""PHI: every listed field is present and filled, including nested and private ones."""

from __future__ import annotations

import pydicom
from conftest import SynthDataset

from ichkit.synth import PHI_KEYWORDS, profile_for_site
from ichkit.synth._writer import PRIVATE_PHI_OFFSETS


def _axial(synth_dataset: SynthDataset) -> list[pydicom.Dataset]:
    return [
        pydicom.dcmread(synth_dataset.path / w.files[0], stop_before_pixels=True)
        for w in synth_dataset.summary.exams
    ]


def test_every_phi_field_is_filled(synth_dataset: SynthDataset) -> None:
    for ds in _axial(synth_dataset):
        for kw in PHI_KEYWORDS:
            assert kw in ds, kw
            assert str(ds.data_element(kw).value).strip(), kw


def test_names_inside_descriptions_and_sequences(synth_dataset: SynthDataset) -> None:
    for ds in _axial(synth_dataset):
        family = str(ds.PatientName).split("^")[0]
        assert family in ds.StudyDescription and family in ds.SeriesDescription
        req = ds.RequestAttributesSequence[0]
        assert req.AccessionNumber == ds.AccessionNumber
        assert family.lower() in req.RequestedProcedureDescription.lower()
        assert family in req.ScheduledProcedureStepDescription
        assert str(req.RequestingPhysician)
        ref = ds.ReferencedStudySequence[0]
        assert ref.ReferencedSOPInstanceUID and ref.ReferencedSOPInstanceUID != ds.StudyInstanceUID
        other = ds.OtherPatientIDsSequence[0]
        assert other.PatientID == ds.OtherPatientIDs
        assert ds.PatientAge.endswith("Y") and ds.PatientSex in ("F", "M")
        assert family.lower() in ds.AdditionalPatientHistory.lower()


def test_private_block_holds_phi(synth_dataset: SynthDataset) -> None:
    for w, ds in zip(synth_dataset.summary.exams, _axial(synth_dataset), strict=True):
        vendor = profile_for_site(["site-a", "site-b", "site-c", "site-d", "site-e"].index(w.site))
        block = ds.private_block(vendor.private_group, vendor.private_creator)
        # implicit VR files give unknown private elements back as UN bytes
        values = [_text(block[o].value) for o in PRIVATE_PHI_OFFSETS]
        assert values[0] == str(ds.PatientName).replace("^", " ")
        assert values[1] == ds.PatientID
        assert values[2] == ds.PatientBirthDate
        assert ds.InstitutionName in values[3]


def _text(value: object) -> str:
    return value.decode("latin-1").rstrip(" \x00") if isinstance(value, bytes) else str(value)


def test_repeat_study_references_prior(synth_dataset: SynthDataset) -> None:
    by_patient: dict[str, list[pydicom.Dataset]] = {}
    for ds in _axial(synth_dataset):
        by_patient.setdefault(ds.PatientID, []).append(ds)
    pairs = [v for v in by_patient.values() if len(v) == 2]
    assert pairs
    first, second = pairs[0]
    assert second.ReferencedStudySequence[0].ReferencedSOPInstanceUID == first.StudyInstanceUID
    assert (
        first.PatientName == second.PatientName
        and first.PatientBirthDate == second.PatientBirthDate
    )


def test_dates_come_from_the_seed(synth_dataset: SynthDataset) -> None:
    years = {int(ds.StudyDate[:4]) for ds in _axial(synth_dataset)}
    assert years <= set(range(2012, 2021))
