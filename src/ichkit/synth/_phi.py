"""Fake but plausible identities (PHI) for the headers: patients, sites, staff.

Everything is drawn from seeded generators, never from the clock, so the same
seed gives the same people. None of these people exist; the lists mix common
given and family names of several origins so that de-identification is tested
on varied spellings (apostrophes, hyphens, accents-free ASCII for ISO_IR 100).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PHI_KEYWORDS",
    "Identity",
    "SiteInfo",
    "draw_identity",
    "draw_site",
    "person_name",
    "study_datetime",
]

_GIVEN_F = (
    "Mary",
    "Anna",
    "Fatima",
    "Mei",
    "Priya",
    "Olga",
    "Lucia",
    "Aisha",
    "Emma",
    "Sofia",
    "Hannah",
    "Chloe",
    "Yuki",
    "Ingrid",
    "Amara",
    "Rosa",
    "Leila",
    "Grace",
    "Noor",
    "Elena",
)
_GIVEN_M = (
    "John",
    "Ahmed",
    "Wei",
    "Rahul",
    "Ivan",
    "Carlos",
    "Kwame",
    "Liam",
    "Noah",
    "Omar",
    "Pierre",
    "Hiroshi",
    "Lars",
    "Diego",
    "Samuel",
    "Yusuf",
    "Arjun",
    "Mateo",
    "Tomasz",
    "David",
)
_FAMILY = (
    "Smith",
    "Garcia",
    "Nguyen",
    "O'Brien",
    "Kowalski",
    "Okafor",
    "Muller",
    "Rossi",
    "Tanaka",
    "Haddad",
    "Patel",
    "Ivanova",
    "Johansson",
    "Silva",
    "Kim",
    "Mbeki",
    "Dubois",
    "Cohen",
    "Fernandez-Lopez",
    "McAllister",
    "Van der Berg",
    "Novak",
    "Chen",
    "Hussain",
    "Andersen",
    "Papadopoulos",
    "Yilmaz",
    "Schmidt",
    "Abebe",
    "Kaur",
)
_SSN_PARTS = ((100, 999), (10, 99), (1000, 9999))
_STREETS = ("Maple", "Oak", "Elm", "Station", "Church", "Mill", "Park", "Lake", "Hill", "River")
_CITIES = (
    ("Springfield", "IL", "627"),
    ("Riverton", "WY", "825"),
    ("Fairview", "OR", "970"),
    ("Lakeside", "CA", "920"),
    ("Georgetown", "TX", "786"),
    ("Ashford", "CT", "062"),
)
_HOSPITALS = (
    "St. Elsewhere General Hospital",
    "Mercy Regional Medical Center",
    "Riverside University Hospital",
    "Northgate Neurological Institute",
    "Lakeside Community Hospital",
    "Hillcrest Trauma Center",
)

#: Header keywords that carry PHI in every synthetic axial CT image (the
#: de-identification work must remove or replace each of them).
PHI_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "AccessionNumber",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
    "StudyTime",
    "SeriesTime",
    "AcquisitionTime",
    "ContentTime",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
    "StudyDescription",
    "SeriesDescription",
    "StudyID",
    "RequestAttributesSequence",
    "ReferencedStudySequence",
    "RequestingPhysician",
    "AdditionalPatientHistory",
    "ImageComments",
)


def person_name(rng: np.random.Generator, sex: str | None = None) -> tuple[str, str, str]:
    """(family, given, middle initial) of a made-up person."""
    if sex is None:
        sex = "F" if rng.random() < 0.5 else "M"
    given = _GIVEN_F if sex == "F" else _GIVEN_M
    return (
        str(_FAMILY[int(rng.integers(len(_FAMILY)))]),
        str(given[int(rng.integers(len(given)))]),
        "ABCDEFGHJKLMNPRSTW"[int(rng.integers(18))],
    )


def _pn(name: tuple[str, str, str], title: str = "") -> str:
    family, given, middle = name
    parts = [family.upper() if not title else family, given, middle, title]
    return "^".join(parts).rstrip("^")


def _address(rng: np.random.Generator) -> str:
    city, state, zip3 = _CITIES[int(rng.integers(len(_CITIES)))]
    street = _STREETS[int(rng.integers(len(_STREETS)))]
    number, zip2 = int(rng.integers(1, 9999)), int(rng.integers(10, 99))
    return f"{number} {street} St^^{city}^{state}^{zip3}{zip2}^USA"


@dataclass(frozen=True)
class Identity:
    """A made-up patient."""

    name: str  # DICOM PN, e.g. "OKAFOR^Amara^K"
    family: str
    given: str
    sex: str
    birth_date: dt.date
    address: str
    phone: str
    mrn_number: int  # formatted per site as PatientID
    other_id: str
    history: str


@dataclass(frozen=True)
class SiteInfo:
    """A made-up hospital: where the scanner is and who works there."""

    institution: str
    address: str
    department: str
    station_name: str
    device_serial: str
    referring: tuple[str, ...]
    radiologists: tuple[str, ...]
    technologists: tuple[str, ...]
    id_format: str  # format string for PatientID
    accession_prefix: str


def draw_identity(rng: np.random.Generator) -> Identity:
    """Draw a patient: name, sex, birth date (ages 18-95 around 2015-2020), address."""
    sex = "F" if rng.random() < 0.48 else "M"
    name = person_name(rng, sex)
    birth = dt.date(1922, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 78)))
    history = rng.choice(
        (
            "fall from standing, on warfarin",
            "headache worst of life",
            "MVC, GCS 13",
            "sudden left weakness",
            "confusion, rule out bleed",
            "found down at home",
        )
    )
    return Identity(
        name=_pn(name),
        family=name[0],
        given=name[1],
        sex=sex,
        birth_date=birth,
        address=_address(rng),
        phone=f"({int(rng.integers(201, 989))}) 555-{int(rng.integers(0, 10000)):04d}",
        mrn_number=int(rng.integers(10**6, 10**8)),
        other_id="-".join(str(int(rng.integers(lo, hi))) for lo, hi in _SSN_PARTS),
        history=f"{history}. Pt {name[1]} {name[0]}",
    )


def draw_site(rng: np.random.Generator, site: int) -> SiteInfo:
    """Draw a hospital for site number ``site``."""
    hosp = _HOSPITALS[site % len(_HOSPITALS)]
    doctors = tuple(_pn(person_name(rng), "MD") for _ in range(4))
    rads = tuple(_pn(person_name(rng), "MD") for _ in range(3))
    techs = tuple(_pn(person_name(rng)) for _ in range(4))
    formats = ("{:08d}", "MRN{:07d}", "{:010d}", "P-{:08d}", "H{:09d}")
    return SiteInfo(
        institution=hosp if site < len(_HOSPITALS) else f"{hosp} {site}",
        address=_address(rng).replace("^", ", "),
        department="Radiology" if rng.random() < 0.5 else "Emergency Imaging",
        station_name=f"CT{site + 1}{'ABCDEF'[int(rng.integers(6))]}{int(rng.integers(1, 9))}",
        device_serial=f"{int(rng.integers(10**5, 10**7))}",
        referring=doctors,
        radiologists=rads,
        technologists=techs,
        id_format=formats[site % len(formats)],
        accession_prefix=("A", "ACC", "", "RAD", "E")[site % 5],
    )


def study_datetime(seed: int, rng: np.random.Generator) -> dt.datetime:
    """A study date and time: a base date derived from the seed, plus a draw.

    Dates fall between 2012 and 2020; no wall-clock time is used.
    """
    base = dt.date(2012, 1, 1) + dt.timedelta(days=seed % 1500)
    day = base + dt.timedelta(days=int(rng.integers(0, 1400)))
    seconds = int(rng.integers(0, 86400))
    return dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=seconds)
