"""Write a de-identified Dataset, copying untouched elements' bytes as read.

:func:`pydicom.dcmwrite` converts every element it writes (parse, validate,
re-encode), which dominates the cost of de-identifying a CT slice. Elements the
profile keeps as they are (``keep``) are still pydicom ``RawDataElement``
objects holding the bytes read from the file; here they are written back
verbatim (tag, VR, length, value), and only the elements the engine changed go
through pydicom's encoder. Pixel Data is therefore copied bit for bit, native
or encapsulated (the fragments, then the sequence delimiter, PS3.5 A.4).

The File Meta Information is written by pydicom (PS3.10 7.1). Big-endian and
deflated transfer syntaxes, or a dataset whose read encoding differs from the
one it is written in, fall back to :func:`pydicom.dcmwrite`.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import dcmwrite, write_data_element, write_file_meta_info
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

__all__ = ["write_deidentified"]

_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UR", "UT", "UN", "SV", "UV"}
)
# Raw sequences written verbatim: only the engine's pre-encoded ones (a source
# sequence is always parsed and cleaned item by item before it is written).
_RAW_SEQUENCES = frozenset({0x00120064})  # DeidentificationMethodCodeSequence
_META_VRS = {
    0x00020002: "UI",
    0x00020003: "UI",
    0x00020010: "UI",
    0x00020012: "UI",
    0x00020013: "SH",
}
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_PREAMBLE = b"\x00" * 128 + b"DICM"


def write_deidentified(fp: BinaryIO, ds: Dataset, *, source: str | None = None) -> None:
    """Write ``ds`` (with its ``file_meta``) as a DICOM file (PS3.10) to ``fp``.

    Parameters
    ----------
    fp
        A binary file object open for writing (a real file when ``source`` is given).
    ds
        The dataset, as de-identified by :func:`ichkit.deid.deidentify_dataset`.
    source
        The file ``ds`` was read from with ``defer_size``: deferred values (Pixel
        Data) are copied from it by the kernel (``os.copy_file_range``), never
        passing through Python.

    Raises
    ------
    OSError
        If a deferred value cannot be copied in full (the source is truncated).
    """
    raw = ds.file_meta.get_item(0x00020010, keep_deferred=True)
    if isinstance(raw, RawDataElement) and raw.VR == "UI" and raw.value is not None:
        # As the engine wrote it: not converted (and validated) again by pydicom.
        syntax = UID(raw.value.decode("ascii").rstrip("\x00 "))
    else:
        syntax = UID(str(ds.file_meta.TransferSyntaxUID))
    implicit = bool(syntax.is_implicit_VR)
    little = bool(syntax.is_little_endian)
    original = getattr(ds, "original_encoding", (None, None))
    if not little or syntax == DeflatedExplicitVRLittleEndian or original != (implicit, little):
        # pydicom writes the dataset's own preamble: the source's 128 bytes, which
        # may hold anything (a name, an MRN); PS3.10 allows zeros
        ds.preamble = _PREAMBLE[:128]
        dcmwrite(fp, ds, enforce_file_format=True)
        return
    out = DicomFileLike(fp)
    out.is_little_endian = True
    out.is_implicit_VR = False
    write = fp.write
    meta = _encode_meta(ds.file_meta)
    if meta is None:
        write(_PREAMBLE)
        write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    else:
        write(_PREAMBLE + meta)
    out.is_implicit_VR = implicit
    # Read before the loop, as pydicom does: this converts SpecificCharacterSet.
    encodings = ds._character_set
    src = -1
    try:
        # Sorted by int value: BaseTag's own comparisons are Python code.
        for tag, elem in sorted(ds.items(), key=_tag_value):
            if isinstance(elem, RawDataElement):
                if elem.value is None and source is not None and elem.length not in (0, _UNDEFINED):
                    header = _raw_header(elem._replace(value=b""), implicit, length=elem.length)
                    if header is not None:
                        write(header)
                        if src < 0:
                            src = os.open(source, os.O_RDONLY)
                        _copy_range(src, fp, elem.value_tell, elem.length)
                        continue
                header = _raw_header(elem, implicit)
                if header is not None and elem.value is not None:
                    write(header)
                    write(elem.value)
                    if elem.length == _UNDEFINED:
                        write(_SEQUENCE_DELIMITER)
                    continue
            write_data_element(out, ds[tag], encodings)
    finally:
        if src >= 0:
            os.close(src)


def _tag_value(item: tuple[BaseTag, object]) -> int:
    return int(item[0])


def _copy_range(src: int, dst: BinaryIO, offset: int, length: int) -> None:
    """Copy ``length`` bytes at ``offset`` of the file open as ``src`` to the end of ``dst``."""
    dst.flush()
    done = 0
    try:
        out = dst.fileno()
        while done < length:
            n = os.copy_file_range(src, out, length - done, offset + done)
            if n == 0:
                break
            done += n
    except (AttributeError, OSError):  # no copy_file_range here: plain copy
        while done < length:
            chunk = os.pread(src, min(1 << 20, length - done), offset + done)
            if not chunk:
                break
            dst.write(chunk)
            done += len(chunk)
    dst.seek(0, os.SEEK_END)
    if done != length:
        raise OSError(f"source holds {done} of the {length} bytes of a value at offset {offset}")


def _raw_header(elem: RawDataElement, implicit: bool, *, length: int | None = None) -> bytes | None:
    """Return the header to write before the element's value as read, or None
    when pydicom must encode the element."""
    value = elem.value
    if value is None or (elem.VR == "SQ" and int(elem.tag) not in _RAW_SEQUENCES):
        return None
    undefined = elem.length == _UNDEFINED
    if undefined and int(elem.tag) != _PIXEL_DATA:
        return None
    if length is None:
        length = _UNDEFINED if undefined else len(value)
    key = (int(elem.tag), elem.VR, length, implicit)
    header = _HEADERS.get(key)
    if header is None:
        header = _pack_header(*key)
        if header is not None and len(_HEADERS) < 8192:
            _HEADERS[key] = header
    return header


_HEADERS: dict[tuple[int, str | None, int, bool], bytes | None] = {}


def _pack_header(tag: int, vr_: str | None, length: int, implicit: bool) -> bytes | None:
    group, element = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHI", group, element, length)
    vr = str(vr_ or "")
    if len(vr) != 2:
        return None
    if vr in _LONG_VRS:
        return struct.pack("<HH2s2xI", group, element, vr.encode("ascii"), length)
    if length <= 0xFFFF:
        return struct.pack("<HH2sH", group, element, vr.encode("ascii"), length)
    return None


def _encode_meta(meta: Dataset) -> bytes | None:
    """Encode File Meta Information of the five elements the engine writes (PS3.10 7.1).

    Returns None for anything else, which pydicom then writes.
    """
    tags = {int(t) for t in meta.keys()}  # noqa: SIM118 - iterating a Dataset yields elements
    if tags - {0x00020000, 0x00020001} != set(_META_VRS):
        return None
    body = [struct.pack("<HH2s2xI", 2, 1, b"OB", 2) + b"\x00\x01"]
    for tag, vr in _META_VRS.items():
        elem = meta.get_item(tag, keep_deferred=True)
        if isinstance(elem, RawDataElement) and vr == elem.VR and elem.value is not None:
            text = elem.value  # encoded by the engine, padded to even length
        else:
            text = str(meta[tag].value).encode("ascii")
        if len(text) % 2:
            text += b"\x00" if vr == "UI" else b" "
        body.append(struct.pack("<HH2sH", 2, tag & 0xFFFF, vr.encode("ascii"), len(text)) + text)
    payload = b"".join(body)
    return struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(payload)) + payload
