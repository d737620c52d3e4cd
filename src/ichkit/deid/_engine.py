"""Apply a profile to one pydicom Dataset: the pure core of de-identification.

Nothing here touches files. :func:`check_accept` says whether an image may be
exported at all; :func:`deidentify_dataset` rewrites a Dataset in place (no
copy, so Pixel Data is never duplicated or re-encoded) and returns the
pseudonyms and the original <-> pseudonym rows for the mapping store.

Rules (DICOM PS3.15 Annex E):

- every attribute gets its profile action, at top level and, recursively, in
  every item of every kept sequence;
- private attributes are removed unless on the safe list under E.3.10;
- group-length attributes are removed (PS3.5 7.2: retired);
- the File Meta Information is rebuilt (PS3.10 7.1) with the new SOP Instance UID;
- PatientIdentityRemoved, DeidentificationMethod and
  DeidentificationMethodCodeSequence (CID 7050) record the profile and options
  applied (PS3.15 E.1.1), LongitudinalTemporalInformationModified (PS3.3
  C.7.1.1) says MODIFIED when dates were shifted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from ichkit.deid._profile import AcceptRules, Action, Profile
from ichkit.deid._pseudonym import Pseudonymizer, patient_key_of
from ichkit.deid._store import MappingRow

__all__ = [
    "IMPLEMENTATION_CLASS_UID",
    "DeidResult",
    "Reason",
    "Status",
    "check_accept",
    "deidentify_dataset",
]

logger = logging.getLogger(__name__)

_VERSION = "0.1.0"
#: ImplementationClassUID written in every output (PS3.7 D.3.3.2), a fixed 2.25 UID.
IMPLEMENTATION_CLASS_UID = "2.25." + str(
    int.from_bytes(hashlib.sha256(b"ichkit implementation class").digest()[:16], "big")
)
_IMPLEMENTATION_VERSION = "ICHKIT_" + _VERSION.replace(".", "")

_SQ_TAGS = frozenset(t for t, entry in DicomDictionary.items() if entry[0] == "SQ")
_TAG_PATIENT_ID = 0x00100020
_TAG_PIXEL_DATA = 0x7FE00010
_TAG_PATIENT_AGE = 0x00101010
_TAG_METHOD_CODES = 0x00120064
_UID_KIND = {
    0x0020000D: "study",
    0x0020000E: "series",
    0x00080018: "instance",
    0x00200052: "frame_of_reference",
}
_DUMMY_TEXT = "ANONYMIZED"
_DUMMY: dict[str, Any] = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": _DUMMY_TEXT,
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": _DUMMY_TEXT,
    "LT": _DUMMY_TEXT,
    "PN": _DUMMY_TEXT,
    "SH": _DUMMY_TEXT,
    "ST": _DUMMY_TEXT,
    "TM": "000000",
    "UC": _DUMMY_TEXT,
    "UT": _DUMMY_TEXT,
    "UR": None,
    "US": 0,
    "SS": 0,
    "UL": 0,
    "SL": 0,
    "UV": 0,
    "SV": 0,
    "FL": 0.0,
    "FD": 0.0,
}
_MAX_LEN = {"SH": 16, "LO": 64, "PN": 64, "CS": 16, "AE": 16, "ST": 1024, "LT": 10240}
_AS_RE = re.compile(r"^(\d{3})([DWMY])$")
_DATE_RE = re.compile(r"^(\d{8})(.*)$")
_WORD_SPLIT = re.compile(r"[\s_()\[\],;:+=*#'\"^]+")
_SUBWORD_SPLIT = re.compile(r"[-/\\.]+")
_JOIN_SPLIT = re.compile(r"[-/\\]+")


class Status(StrEnum):
    """What happened to an input file."""

    DEIDENTIFIED = "deidentified"
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"


class Reason(StrEnum):
    """Why a file was quarantined or skipped."""

    NOT_DICOM = "not_dicom"
    UNREADABLE = "unreadable"
    TRUNCATED = "truncated"
    NO_PIXEL_DATA = "no_pixel_data"
    MISSING_UID = "missing_uid"
    UNSUPPORTED_SOP_CLASS = "unsupported_sop_class"
    UNSUPPORTED_MODALITY = "unsupported_modality"
    BURNED_IN_ANNOTATION = "burned_in_annotation"
    LOCALIZER = "localizer"
    REJECTED_IMAGE_TYPE = "rejected_image_type"
    NON_AXIAL = "non_axial"
    DUPLICATE_INSTANCE = "duplicate_instance"
    DEID_FAILED = "deid_failed"
    WRITE_FAILED = "write_failed"


@dataclass(frozen=True)
class DeidResult:
    """The pseudonyms of one de-identified dataset and its mapping rows."""

    patient: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    mappings: tuple[MappingRow, ...]


def _decode(ds: Dataset, value: bytes) -> str:
    """Text of a raw value in the dataset's SpecificCharacterSet (ASCII needs none).

    A non-ASCII PatientID keys the patient's pseudonym: read as latin-1
    whatever the character set, 'Müller' in UTF-8 would be keyed as 'MÃ¼ller',
    another patient than the same name written in ISO_IR 100.
    """
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        pass
    try:
        from pydicom.charset import decode_bytes

        return str(decode_bytes(value, ds._character_set, set()))
    except Exception:  # an unknown or broken character set: as the bytes are
        return value.decode("latin-1")


def _peek(ds: Dataset, tag: int) -> str:
    """Return a string attribute's value without converting a raw element.

    Raw (unparsed) elements are decoded here directly; pydicom's conversion
    would turn them into DataElements that must then be re-encoded on write.
    """
    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return ""
    if isinstance(elem, RawDataElement):
        value = elem.value
        return "" if value is None else _decode(ds, value).strip("\x00 ")
    return (
        _text(elem.value)
        if not isinstance(elem.value, MultiValue)
        else "\\".join(_text(v) for v in elem.value)
    )


def _peek_int(ds: Dataset, tag: int) -> int | None:
    """Return a US attribute's value without converting a raw element."""
    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        value = elem.value
        if not value or len(value) < 2:
            return None
        order = "<" if elem.is_little_endian else ">"
        return int(struct.unpack(order + "H", value[:2])[0])
    try:
        return int(elem.value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1").strip("\x00 ")
    return str(value).strip("\x00 ")


def check_accept(ds: Dataset, rules: AcceptRules) -> tuple[Reason, str] | None:
    """Say why ``ds`` must be quarantined before export, or None if it may pass.

    Parameters
    ----------
    ds
        A dataset as read (not yet de-identified).
    rules
        The profile's filtering rules.

    Returns
    -------
    tuple of (Reason, str) or None
        The reason code and a detail that holds no patient data.
    """
    meta = getattr(ds, "file_meta", None)
    sop_class = _peek(ds, 0x00080016) or _text(
        meta.get("MediaStorageSOPClassUID") if meta is not None else None
    )
    if rules.sop_classes and sop_class not in rules.sop_classes:
        name = UID(sop_class).name if sop_class else "missing"
        return Reason.UNSUPPORTED_SOP_CLASS, f"SOPClassUID {sop_class or '-'} ({name})"
    modality = _peek(ds, 0x00080060).upper()
    if rules.modalities and modality not in rules.modalities:
        return Reason.UNSUPPORTED_MODALITY, f"Modality {modality or '-'}"
    for keyword, tag in (
        ("SOPInstanceUID", 0x00080018),
        ("StudyInstanceUID", 0x0020000D),
        ("SeriesInstanceUID", 0x0020000E),
    ):
        if not _peek(ds, tag):
            return Reason.MISSING_UID, f"{keyword} missing or empty"
    if rules.reject_burned_in_annotation and _peek(ds, 0x00280301).upper() == "YES":
        return Reason.BURNED_IN_ANNOTATION, "BurnedInAnnotation YES"
    if rules.reject_burned_in_annotation:
        # An overlay kept in the unused high bits of Pixel Data (retired, but in
        # old archives): removing the 60xx attributes leaves its graphics (text
        # such as a name) in the copied pixels.
        for group in range(0x6000, 0x6020, 2):
            position = _peek_int(ds, (group << 16) | 0x0102)
            if position:
                return (
                    Reason.BURNED_IN_ANNOTATION,
                    f"overlay in the pixel data's bit {position} "
                    f"({group:04X},0102 OverlayBitPosition)",
                )
    image_type = _peek(ds, 0x00080008)
    values = [v.strip() for v in image_type.split("\\")] if image_type else []
    types = {v.upper() for v in values}
    hit = sorted(types & rules.reject_image_types)
    if hit:
        reason = Reason.LOCALIZER if "LOCALIZER" in hit else Reason.REJECTED_IMAGE_TYPE
        return reason, "ImageType " + "\\".join(values)
    if rules.require_axial:
        found = _tilt_degrees(ds)
        if found is None:
            return Reason.NON_AXIAL, "ImageOrientationPatient missing or invalid"
        if found > rules.max_tilt_degrees:
            return Reason.NON_AXIAL, (
                f"ImageOrientationPatient normal {found:.1f} degrees from axial "
                f"(max {rules.max_tilt_degrees:g})"
            )
    return _check_pixel_data(ds)


def _tilt_degrees(ds: Dataset) -> float | None:
    try:
        iop = [float(v) for v in _peek(ds, 0x00200037).split("\\")]
    except ValueError:
        return None
    if len(iop) != 6:
        return None
    r, c = iop[:3], iop[3:]
    n = (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])
    norm = math.sqrt(sum(x * x for x in n))
    if not math.isfinite(norm) or norm < 1e-6:
        return None
    return math.degrees(math.acos(min(1.0, abs(n[2]) / norm)))


def _check_pixel_data(ds: Dataset) -> tuple[Reason, str] | None:
    if _TAG_PIXEL_DATA not in ds:
        return Reason.NO_PIXEL_DATA, "PixelData missing"
    raw = ds.get_item(_TAG_PIXEL_DATA, keep_deferred=True)
    value = raw.value
    length = getattr(raw, "length", None)
    if value is None or length is None or length == 0xFFFFFFFF:
        return None  # deferred or encapsulated: the reader checks delimiters
    rows, columns = _peek_int(ds, 0x00280010), _peek_int(ds, 0x00280011)
    bits = _peek_int(ds, 0x00280100)
    if not rows or not columns or not bits:
        return Reason.UNREADABLE, "Rows, Columns or BitsAllocated missing or invalid"
    try:
        frames = int(_peek(ds, 0x00280008) or 1)
    except ValueError:
        frames = 1
    expected = rows * columns * (_peek_int(ds, 0x00280002) or 1) * max(frames, 1) * bits
    expected = (expected + 7) // 8
    if len(value) < expected:
        return Reason.TRUNCATED, f"PixelData holds {len(value)} bytes, expected {expected}"
    return None


@dataclass
class _Context:
    profile: Profile
    pseudo: Pseudonymizer
    offset_days: int
    patient: str
    safe_words: frozenset[str]
    number_re: re.Pattern[str]
    implicit: bool = False
    effective: Mapping[int, Action] = field(default_factory=dict)
    rows: dict[tuple[str, str], MappingRow] = field(default_factory=dict)

    def map_uid(self, tag: int, original: str) -> str:
        original = original.strip().rstrip("\x00")
        if not original:
            return original
        new = self.pseudo.uid(original)
        kind = _UID_KIND.get(tag, "uid")
        self.rows.setdefault((kind, original), MappingRow(kind, original, new))
        return new


def deidentify_dataset(
    ds: Dataset, *, profile: Profile, pseudonymizer: Pseudonymizer
) -> DeidResult:
    """De-identify ``ds`` in place under ``profile``.

    Parameters
    ----------
    ds
        A dataset as read by :func:`pydicom.dcmread` (Pixel Data untouched: its
        bytes, native or encapsulated, are written back as they were read).
    profile
        The rules, with the options to apply.
    pseudonymizer
        Keyed pseudonyms of the site key.

    Returns
    -------
    DeidResult
        New patient pseudonym and UIDs, and the mapping rows.
    """
    plan = _plan_of(profile)
    original_patient = _peek(ds, _TAG_PATIENT_ID)
    study_uid = _peek(ds, 0x0020000D)
    patient_key = patient_key_of(original_patient, study_uid)
    patient = pseudonymizer.patient_id(patient_key)
    offset = pseudonymizer.date_offset_days(patient_key)
    meta = getattr(ds, "file_meta", None)
    sop_class = _peek(ds, 0x00080016) or _text(
        meta.get("MediaStorageSOPClassUID") if meta is not None else None
    )
    transfer_syntax = _peek(meta, 0x00020010) if meta is not None else ""
    if not transfer_syntax:
        implicit = bool(getattr(ds, "original_encoding", (True, True))[0])
        transfer_syntax = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian

    implicit = _is_implicit(str(transfer_syntax))
    ctx = _Context(
        profile=profile,
        pseudo=pseudonymizer,
        offset_days=offset,
        patient=patient,
        safe_words=plan.safe_words,
        number_re=plan.number_re,
        implicit=implicit,
        effective=plan.effective,
    )
    ctx.rows[("patient", patient_key)] = MappingRow(
        "patient", patient_key, patient, f"date_offset_days={offset}"
    )
    _clean(ds, ctx, plan)

    if sop_class and 0x00080016 not in ds:
        _put(ds, 0x00080016, "UI", sop_class, ctx)  # type 1 in SOP Common (PS3.3 C.12.1)
    _put_fixed(ds, 0x00120062, "CS", "YES", ctx)  # PatientIdentityRemoved
    _put_fixed(ds, 0x00120063, "LO", plan.method, ctx)
    ds[_TAG_METHOD_CODES] = _method_codes(plan.codes, implicit)
    if plan.shifts_dates:
        _put_fixed(ds, 0x00280303, "CS", "MODIFIED", ctx)  # LongitudinalTemporalInformationModified
    elif 0x00280303 in ds:
        del ds[0x00280303]

    sop_instance = _peek(ds, 0x00080018)
    new_meta = FileMetaDataset()
    new_meta[0x00020002] = _meta_element(0x00020002, "UI", _checked_uid(sop_class))
    new_meta[0x00020003] = _meta_element(0x00020003, "UI", str(UID(sop_instance)))
    new_meta[0x00020010] = _meta_element(0x00020010, "UI", _checked_uid(str(transfer_syntax)))
    new_meta[0x00020012] = _meta_element(0x00020012, "UI", IMPLEMENTATION_CLASS_UID)
    new_meta[0x00020013] = _meta_element(0x00020013, "SH", _IMPLEMENTATION_VERSION)
    ds.file_meta = new_meta

    return DeidResult(
        patient=patient,
        study_instance_uid=_peek(ds, 0x0020000D),
        series_instance_uid=_peek(ds, 0x0020000E),
        sop_instance_uid=sop_instance,
        mappings=tuple(ctx.rows.values()),
    )


@dataclass(frozen=True)
class _Plan:
    """What a profile asks, worked out once per profile (not once per file)."""

    effective: Mapping[int, Action]
    default: Action
    shifts_dates: bool
    keeps_safe_private: bool
    safe_words: frozenset[str]
    number_re: re.Pattern[str]
    codes: tuple[tuple[str, str], ...]
    method: str


_PLANS: dict[int, tuple[Profile, _Plan]] = {}


def _plan_of(profile: Profile) -> _Plan:
    entry = _PLANS.get(id(profile))
    if entry is not None and entry[0] is profile:
        return entry[1]
    codes = [("113100", "Basic Application Confidentiality Profile")]
    codes += [(profile.options[n].code, profile.options[n].meaning) for n in profile.apply_options]
    if not profile.keeps_safe_private:
        codes = [c for c in codes if c[0] != "113111"]
    plan = _Plan(
        effective=dict(profile.effective_tags),
        default=profile.default_action,
        shifts_dates=profile.shifts_dates,
        keeps_safe_private=profile.keeps_safe_private,
        safe_words=profile.safe_words,
        number_re=_compiled(profile.number_pattern),
        codes=tuple(codes),
        method=f"ichkit {_VERSION} {profile.name}"[:64],
    )
    if len(_PLANS) > 64:
        _PLANS.clear()
    _PLANS[id(profile)] = (profile, plan)  # the profile is held, so its id is not reused
    return plan


_CHECKED_UIDS: dict[str, str] = {}


def _checked_uid(text: str) -> str:
    """``str(UID(text))`` (validated as pydicom does), remembered for the few
    SOP Class and Transfer Syntax UIDs a batch holds."""
    checked = _CHECKED_UIDS.get(text)
    if checked is None:
        checked = str(UID(text))
        if len(_CHECKED_UIDS) < 256:
            _CHECKED_UIDS[text] = checked
    return checked


_IMPLICIT: dict[str, bool] = {}


def _is_implicit(transfer_syntax: str) -> bool:
    implicit = _IMPLICIT.get(transfer_syntax)
    if implicit is None:
        implicit = bool(UID(transfer_syntax).is_implicit_VR)
        if len(_IMPLICIT) < 256:
            _IMPLICIT[transfer_syntax] = implicit
    return implicit


def _encode_text(vr: str, text: str) -> bytes:
    data = text.encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return data


def _meta_element(tag: int, vr: str, text: str) -> RawDataElement | DataElement:
    """A File Meta Information element (explicit VR little endian, PS3.10 7.1), ready-encoded.

    A value that is not ASCII (a bad UID) is left to pydicom, as any element.
    """
    try:
        data = _encode_text(vr, text)
    except UnicodeEncodeError:
        return DataElement(tag, vr, UID(text) if vr == "UI" else text)
    return RawDataElement(BaseTag(tag), vr, len(data), data, 0, False, True, True)


_FIXED: dict[tuple[int, str, str, bool], RawDataElement] = {}


def _put_fixed(ds: Dataset, tag: int, vr: str, text: str, ctx: _Context) -> None:
    """:func:`_put` of a constant text: the raw element is encoded once and shared
    (a RawDataElement is immutable)."""
    key = (tag, vr, text, ctx.implicit)
    elem = _FIXED.get(key)
    if elem is None:
        if not text or not text.isascii():
            _put(ds, tag, vr, text, ctx)
            return
        data = _encode_text(vr, text)
        elem = RawDataElement(BaseTag(tag), vr, len(data), data, 0, ctx.implicit, True, True)
        if len(_FIXED) < 1024:
            _FIXED[key] = elem
    ds[tag] = elem


_METHOD_CODES_CACHE: dict[tuple[tuple[tuple[str, str], ...], bool], RawDataElement] = {}


def _method_codes(codes: tuple[tuple[str, str], ...], implicit: bool) -> RawDataElement:
    """DeidentificationMethodCodeSequence (CID 7050 items), encoded once per profile.

    Kept as a raw element of defined length so that writing it costs a copy.
    """
    cache_key = (codes, implicit)
    cached = _METHOD_CODES_CACHE.get(cache_key)
    if cached is None:
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_sequence

        items = []
        for value, meaning in codes:
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
        elem = DataElement(_TAG_METHOD_CODES, "SQ", Sequence(items))
        buffer = DicomBytesIO()
        buffer.is_little_endian = True
        buffer.is_implicit_VR = implicit
        write_sequence(buffer, elem, ["iso8859"])
        encoded = buffer.getvalue()
        cached = RawDataElement(
            BaseTag(_TAG_METHOD_CODES), "SQ", len(encoded), encoded, 0, implicit, True, True
        )
        _METHOD_CODES_CACHE[cache_key] = cached
    return cached


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _compiled(pattern: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern, re.IGNORECASE)
    return compiled


def _vr_of(elem: DataElement | RawDataElement | None, tag: int) -> str:
    vr = getattr(elem, "VR", None)
    if vr and vr != "UN":
        return str(vr)
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return str(vr or "UN")


def _clean(ds: Dataset, ctx: _Context, plan: _Plan) -> None:
    effective = plan.effective
    default = plan.default
    keep, remove = Action.KEEP, Action.REMOVE
    # (tag, element) pairs as read: RawDataElements stay raw (never converted here).
    for key, elem in list(ds.items()):
        tag = int(key)
        if tag & 0x10000:  # odd group: private
            if not _keep_private(ds, tag, ctx):
                del ds[tag]
            continue
        if not tag & 0xFFFF:
            del ds[tag]  # group length
            continue
        action = effective.get(tag, default)
        if action is keep:
            if tag == _TAG_PATIENT_AGE:
                age = ds[tag]
                age.value = keep_age(_text(age.value), max_years=ctx.profile.age_max_years)
            elif tag in _SQ_TAGS or getattr(elem, "VR", "") == "SQ":
                seq = ds[tag].value
                for item in seq or ():
                    _clean(item, ctx, plan)
            continue
        if action is remove:
            del ds[tag]
            continue
        _apply(ds, tag, elem, action, ctx)


def _keep_private(ds: Dataset, tag: int, ctx: _Context) -> bool:
    if not ctx.profile.keeps_safe_private:
        return False
    group, element = tag >> 16, tag & 0xFFFF
    safe = ctx.profile.safe_private
    if 0x0010 <= element <= 0x00FF:
        creator = _text(ds[tag].value)
        return any(g == group and c == creator for g, c, _ in safe)
    if element < 0x1000:
        return False
    creator_tag = (group << 16) | (element >> 8)
    if creator_tag not in ds:
        return False
    creator = _text(ds[creator_tag].value)
    return (group, creator, element & 0xFF) in safe


_TEXT_VRS = frozenset(
    {
        "AE",
        "AS",
        "CS",
        "DA",
        "DS",
        "DT",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "ST",
        "TM",
        "UC",
        "UI",
        "UR",
        "UT",
    }
)


def _values(elem: DataElement | RawDataElement | None) -> list[str]:
    """Return a text attribute's values, decoding a raw element without converting it."""
    if elem is None:
        return []
    if isinstance(elem, RawDataElement):
        if not elem.value:
            return []
        text = elem.value.decode("latin-1")
        return [v.strip("\x00 ") for v in text.split("\\")]
    value = elem.value
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [_text(v) for v in value]
    return [_text(value)]


def _put(ds: Dataset, tag: int, vr: str, values: list[str] | str | None, ctx: _Context) -> None:
    """Set a text attribute to ASCII ``values`` as a ready-encoded raw element.

    Written verbatim by :mod:`ichkit.deid._writer`; read back by pydicom as any
    element (the VR is given, so implicit-VR datasets decode it too).
    """
    if isinstance(values, str):
        values = [values]
    text = "\\".join(v for v in values or [] if v)
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        ds.add_new(tag, vr, text or None)
        return
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    ds[tag] = RawDataElement(BaseTag(tag), vr, len(data), data, 0, ctx.implicit, True, True)


def _apply(
    ds: Dataset, tag: int, elem: DataElement | RawDataElement, action: Action, ctx: _Context
) -> None:
    vr = _vr_of(elem, tag)
    if vr == "SQ":
        # Sequences are kept and cleaned, or emptied; any other action empties.
        ds[tag].value = Sequence([])
        return
    if vr not in _TEXT_VRS:
        # Binary and numeric values: dummy zero, or empty.
        ds.add_new(tag, vr, _DUMMY.get(vr) if action is Action.DUMMY else None)
        return
    if action is Action.EMPTY:
        _put(ds, tag, vr, None, ctx)
    elif action is Action.UID or (action is Action.DUMMY and vr == "UI"):
        _put(ds, tag, "UI", [ctx.map_uid(tag, v) for v in _values(elem) if v], ctx)
    elif action is Action.DUMMY:
        _put(ds, tag, vr, _DUMMY.get(vr), ctx)
    elif action is Action.SHIFT:
        shifted = [_shift(v, vr, ctx.offset_days) for v in _values(elem) if v]
        _put(ds, tag, vr, [v for v in shifted if v], ctx)
    elif action is Action.CLEAN:
        if isinstance(elem, RawDataElement) and elem.value is None and elem.length:
            # a value too long to have been read (defer_size): unchecked, so not kept
            _put(ds, tag, vr, None, ctx)
            return
        values = _values(elem)
        kept = [v for v in values if v and _clean_one(v, ctx) is not None]
        if kept != [v for v in values if v]:
            _put(ds, tag, vr, kept, ctx)  # else: every value is safe, keep the bytes as read
    elif action is Action.PATIENT:
        present = any(_values(elem)) or tag == _TAG_PATIENT_ID
        _put(ds, tag, vr, ctx.patient if present else None, ctx)
    elif action is Action.HASH:
        original = "\\".join(_values(elem)).strip()
        if original:
            length = min(_MAX_LEN.get(vr, 16), 16)
            new = ctx.pseudo.text(original, kind=f"hash:{tag:08X}", length=length)
            kind = "accession" if tag == 0x00080050 else f"hash:{tag:08X}"
            ctx.rows.setdefault((kind, original), MappingRow(kind, original, new))
            _put(ds, tag, vr, new, ctx)
        else:
            _put(ds, tag, vr, None, ctx)


def _shift(value: str, vr: str, offset_days: int) -> str | None:
    """Shift a DA or DT value by whole days; a value that cannot be read is emptied."""
    if vr == "TM":
        return value
    match = _DATE_RE.match(value.strip())
    if match is None:
        logger.debug("date %r is not YYYYMMDD...; emptied", vr)
        return None
    digits = match.group(1)
    try:
        # As strptime("%Y%m%d") reads 8 digits: year, month, day as 4, 2, 2.
        day = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        shifted = day + dt.timedelta(days=offset_days)
    except (ValueError, OverflowError):
        logger.debug("date of VR %s is not a valid date; emptied", vr)
        return None
    rest = match.group(2) if vr == "DT" else ""
    return shifted.strftime("%Y%m%d") + rest


def _clean_one(text: str, ctx: _Context) -> str | None:
    words = [w for w in _WORD_SPLIT.split(text.lower()) if w]
    for word in words:
        if _safe_word(word, ctx):
            continue
        # Whole numbers joined by - / \ or . are dates ("12/03/19", "3.12.19",
        # "12/03") or ID numbers ("123-456-789"): at most one per joined word.
        # Decimals and measures ("2.5/2.5", "5mm/5mm") are not whole numbers.
        whole = 0
        for part in (p for p in _JOIN_SPLIT.split(word) if p):
            if _safe_word(part, ctx):
                whole += part.isdigit()
                continue
            subparts = [p for p in _SUBWORD_SPLIT.split(part) if p]
            if not subparts or not all(_safe_word(p, ctx) for p in subparts):
                return None
            whole += sum(p.isdigit() for p in subparts)
        if whole > 1:
            return None
    return text or None


def _safe_word(word: str, ctx: _Context) -> bool:
    return word in ctx.safe_words or ctx.number_re.match(word) is not None


def keep_age(value: str, *, max_years: int) -> str | None:
    """Return an Age String kept within PS3.5 6.2 AS rules, ages above ``max_years`` as 090Y."""
    text = value.strip().upper()
    match = _AS_RE.match(text)
    if match is None:
        digits = re.fullmatch(r"(\d{1,3})\s*Y?", text)
        if digits is None:
            return None
        match = _AS_RE.match(f"{int(digits.group(1)):03d}Y")
        if match is None:  # pragma: no cover - always matches
            return None
    number, unit = int(match.group(1)), match.group(2)
    years = {"D": number / 365.25, "W": number / 52.18, "M": number / 12, "Y": number}[unit]
    if years > max_years:
        return "090Y"
    return f"{number:03d}{unit}"
