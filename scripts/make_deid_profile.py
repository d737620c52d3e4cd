"""Generate ``src/ichkit/deid/profiles/default.json`` from a maintained procedure.

The base rules come from the PyPI package ``grand-challenge-dicom-de-id-procedure``
(DIAG Nijmegen), which lists, for CT Image Storage, a keep/remove/dummy/UID decision
for every attribute, derived from DICOM PS3.15 Annex E Table E.1-1 (Basic
Application Level Confidentiality Profile) of the edition it names
(``dicomStandardVersion``). Attributes it does not list are removed.

On top of it this script records, as data, the PS3.15 options ichkit applies
(E.3.5 Clean Descriptors, E.3.6 Retain Longitudinal Temporal Information with
Modified Dates, E.3.11 Retain Patient Characteristics, E.3.10 Retain Safe
Private) and the few ichkit-specific choices listed in ``ICHKIT_OVERRIDES``.

Run it after upgrading the procedure package::

    .venv/bin/pip install grand-challenge-dicom-de-id-procedure==2025.10.1
    .venv/bin/python scripts/make_deid_profile.py

The output is deterministic (sorted keys), so a diff shows exactly what changed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path
from typing import Any

from grand_challenge_dicom_de_id_procedure import procedure
from pydicom.datadict import dictionary_VR, keyword_for_tag

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
OUT = Path(__file__).resolve().parents[1] / "src" / "ichkit" / "deid" / "profiles" / "default.json"

# PS3.15 action codes of the procedure -> ichkit action names.
CODE_TO_ACTION = {"K": "keep", "X": "remove", "Z": "empty", "D": "dummy", "U": "uid", "C": "clean"}

# ichkit choices on top of the procedure (each with its reason).
ICHKIT_OVERRIDES: dict[str, tuple[str, str]] = {
    "(0010,0020)": ("patient", "PatientID -> keyed pseudonym <site>-<digest> (D in PS3.15)"),
    "(0010,0010)": (
        "patient",
        "PatientName -> the same keyed patient pseudonym (Z allows a dummy)",
    ),
    "(0008,0050)": ("hash", "AccessionNumber -> keyed digest within SH length (Z allows a dummy)"),
    "(0020,0010)": ("hash", "StudyID -> keyed digest within SH length (Z allows a dummy)"),
    "(0020,0011)": ("keep", "SeriesNumber: not in Table E.1-1; needed to tell series apart"),
    "(0020,0012)": ("keep", "AcquisitionNumber: not in Table E.1-1; orders acquisitions"),
    "(0028,0303)": ("keep", "LongitudinalTemporalInformationModified: set by ichkit"),
    "(0012,0062)": ("keep", "PatientIdentityRemoved: set by ichkit"),
    "(0012,0063)": ("keep", "DeidentificationMethod: set by ichkit"),
    "(0012,0064)": ("keep", "DeidentificationMethodCodeSequence: set by ichkit"),
    # The procedure keeps these; Table E.1-1 does not list them. The encrypted
    # original attributes give back the PHI to whoever holds the recipient's key.
    "(0400,0500)": ("remove", "EncryptedAttributesSequence: original attributes, encrypted"),
    "(0400,0510)": ("remove", "EncryptedContentTransferSyntaxUID: of removed encrypted content"),
    "(0400,0520)": ("remove", "EncryptedContent: original attributes, encrypted"),
    # Free text inside every kept code sequence (a name can be typed there).
    "(0008,0104)": ("clean", "CodeMeaning: free text; kept only when every word is safe"),
}

# E.3.6: dates shifted per patient, times kept. PS3.15 lists every DA/DT/TM
# attribute as C under this option except these, which stay as in the Basic Profile.
DATE_EXCEPTIONS = {"(0010,0030)", "(0010,0032)", "(0016,0077)"}

# E.3.11 (Table E.1-1, rtnPatCharsOpt = K): the four this project needs.
PATIENT_CHARACTERISTICS = ["(0010,0040)", "(0010,1010)", "(0010,1020)", "(0010,1030)"]

# E.3.5: descriptors kept when every word is safe, emptied otherwise. Other
# descriptors that PS3.15 lets the option clean stay removed.
DESCRIPTORS = [
    "(0008,1030)",  # StudyDescription
    "(0008,103E)",  # SeriesDescription
    "(0018,1030)",  # ProtocolName
    "(0040,0254)",  # PerformedProcedureStepDescription
    "(0032,1060)",  # RequestedProcedureDescription
    "(0018,0010)",  # ContrastBolusAgent
]

SAFE_WORDS = sorted(
    set(
        """
        ax axial sag sagittal cor coronal obl oblique mpr mip minip vr 3d 2d
        ct head brain skull cranial cranium cerebral neuro orbit orbits face facial
        sinus sinuses temporal bone bones iac petrous posterior fossa stroke trauma
        angio cta perfusion venogram ctv cerebrum neck spine c-spine cervical
        w wo with without w/o w/ contrast non con noncon nc iv plain pre post
        routine standard std std. soft tissue sft window windows lung
        thin thick slice slices recon reconstruction reformat reformats helical
        spiral sequential seq axial-helical vol volume volumetric series study
        low dose ldct ped peds pediatric adult emergency stat er ed urgent
        hu kernel sharp smooth filter h30s h31s h40s h41s h60s j40s j70h fc21
        fc26 fc64 fc81 ub ur qd and or of for to no yes on off
        scout topogram localizer report screen summary protocol
        ich hemorrhage haemorrhage bleed sah sdh edh ivh iph rsna cq500
        mm cm sec s kv kvp mas ma cc ml d3d fbp asir asir-v idose ir safire admire
        """.split()  # noqa: SIM905
    )
)


NUMBER_PATTERN = r"^\d{1,3}([.,]\d{1,3})?(mm|cm|cc|ml|s|sec|kv|kvp|mas|ma|hu|%)?$"


def _vr(tag: str) -> str:
    group, element = tag.strip("()").split(",")
    try:
        return str(dictionary_VR(int(group + element, 16)))
    except (KeyError, ValueError):
        return ""


def _keyword(tag: str) -> str:
    group, element = tag.strip("()").split(",")
    try:
        return str(keyword_for_tag(int(group + element, 16)))
    except (KeyError, ValueError):
        return ""


def build() -> dict[str, Any]:
    """Return the profile as a JSON-ready dict."""
    ct = procedure["sopClass"][CT_IMAGE_STORAGE]
    if CODE_TO_ACTION[ct["default"]] != "remove":
        raise SystemExit(f"procedure default for CT is {ct['default']!r}, expected 'X'")
    tags: dict[str, dict[str, str]] = {}
    for tag, rule in sorted(ct["tag"].items()):
        action = CODE_TO_ACTION[rule["default"]]
        if "X" in tag.upper().strip("()").replace(",", ""):
            # Repeating groups such as (60XX,3000): all removed, as is the default.
            if action != "remove":
                raise SystemExit(f"{tag}: repeating-group action {action!r} is not supported")
            continue
        if _vr(tag) == "SQ" and action in ("empty", "dummy", "clean"):
            action = "empty"
        tags[tag] = {"action": action, "keyword": _keyword(tag), "why": rule["justification"]}
    for tag, (action, why) in ICHKIT_OVERRIDES.items():
        tags[tag] = {"action": action, "keyword": _keyword(tag), "why": f"ichkit: {why}"}

    # Every date/time attribute this profile may meet: those of the procedure
    # plus the pydicom data dictionary's (the procedure removes the ones it omits,
    # the option shifts them instead, as Table E.1-1 lists them all as C).
    from pydicom.datadict import DicomDictionary

    date_tags: dict[str, dict[str, str]] = {}
    all_tags = {f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in DicomDictionary} | set(tags)
    for tag in sorted(all_tags):
        vr = _vr(tag)
        if tag in DATE_EXCEPTIONS or vr not in ("DA", "DT", "TM"):
            continue
        if tags.get(tag, {}).get("action") == "keep":
            continue
        if tag.startswith("(0002"):
            continue
        action = "keep" if vr == "TM" else "shift"
        why = (
            "E.3.6: shifted by the per-patient offset" if action == "shift" else "E.3.6: time kept"
        )
        date_tags[tag] = {"action": action, "keyword": _keyword(tag), "why": why}

    def overlay(items: list[str], action: str, why: str) -> dict[str, dict[str, str]]:
        return {t: {"action": action, "keyword": _keyword(t), "why": why} for t in items}

    dist = importlib.metadata.version("grand-challenge-dicom-de-id-procedure")
    return {
        "format": "ichkit-deid-profile/1",
        "name": "ichkit-ct-default",
        "description": (
            "CT Image Storage, DICOM PS3.15 Annex E Basic Application Level Confidentiality "
            "Profile (via grand-challenge-dicom-de-id-procedure) with the Retain Longitudinal "
            "Temporal Information Modified Dates, Retain Patient Characteristics and Clean "
            "Descriptors options."
        ),
        "base": {
            "package": "grand-challenge-dicom-de-id-procedure",
            "package_version": dist,
            "procedure_version": procedure["version"],
            "dicom_edition": procedure["dicomStandardVersion"],
            "sop_class": CT_IMAGE_STORAGE,
            "generated_by": "scripts/make_deid_profile.py",
        },
        "default_action": "remove",
        "tags": tags,
        "options": {
            "retain_longitudinal_modified_dates": {
                "code": "113107",
                "meaning": "Retain Longitudinal Temporal Information Modified Dates Option",
                "tags": date_tags,
            },
            "retain_patient_characteristics": {
                "code": "113108",
                "meaning": "Retain Patient Characteristics Option",
                "tags": overlay(PATIENT_CHARACTERISTICS, "keep", "E.3.11: kept"),
            },
            "clean_descriptors": {
                "code": "113105",
                "meaning": "Clean Descriptors Option",
                "tags": overlay(DESCRIPTORS, "clean", "E.3.5: kept only if every word is safe"),
            },
            "retain_safe_private": {
                "code": "113111",
                "meaning": "Retain Safe Private Option",
                "tags": {},
            },
        },
        "apply_options": [
            "retain_longitudinal_modified_dates",
            "retain_patient_characteristics",
            "clean_descriptors",
        ],
        "safe_private": [],
        "safe_words": SAFE_WORDS,
        "number_pattern": NUMBER_PATTERN,
        "age_max_years": 89,
        "accept": {
            "sop_classes": [CT_IMAGE_STORAGE],
            "modalities": ["CT"],
            "reject_image_types": ["LOCALIZER", "SCREEN SAVE", "DOSE_INFO", "DOSE REPORT"],
            "reject_burned_in_annotation": True,
            "require_axial": True,
            "max_tilt_degrees": 45.0,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(build(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
