"""A minimal DICOM Part 10 header parser for the discovery scan's hot path.

It reads the first few kilobytes of a file and walks the data elements (PS3.5
§7.1) up to the last tag ichkit needs, (0028,1053) Rescale Slope, which in a
conformant file (elements in ascending tag order) comes well before the
pixel data. It handles the file meta information (PS3.10 §7.1) and the Little
Endian transfer syntaxes, explicit or implicit VR, including sequences of
undefined length. Anything else (no preamble, big endian, deflate, non-ASCII
text, a header longer than the read limit) returns None and the caller falls
back to pydicom.
"""

from __future__ import annotations

import os
import struct

__all__ = ["RawElement", "parse_header"]

#: (VR or None for implicit VR, value bytes)
RawElement = tuple[str | None, bytes]

_UNPACK_TAG_LEN = struct.Struct("<HHL").unpack_from
_UNPACK_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_UNPACK_L = struct.Struct("<L").unpack_from
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN"} | {b"UR", b"UT", b"UV"}
)
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_IMPLICIT_LE = "1.2.840.10008.1.2"
_FALLBACK_SYNTAXES = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})

_FIRST_READ = 8192
_MAX_READ = 1 << 20


class _NeedMoreError(Exception):
    """The buffer ended before the last wanted tag."""


class _UnsupportedError(Exception):
    """Something this parser does not handle; use pydicom."""


def _element(buf: bytes, pos: int, implicit: bool) -> tuple[int, str | None, int, int]:
    """Return (tag, vr, length, value_offset) of the element at ``pos``."""
    if pos + 8 > len(buf):
        raise _NeedMoreError
    if implicit:
        group, elem, length = _UNPACK_TAG_LEN(buf, pos)
        return group << 16 | elem, None, length, pos + 8
    group, elem, vr, length = _UNPACK_EXPLICIT(buf, pos)
    tag = group << 16 | elem
    if group == 0xFFFE:  # item / delimitation tags have no VR (PS3.5 §7.5)
        (length,) = _UNPACK_L(buf, pos + 4)
        return tag, None, length, pos + 8
    if vr in _LONG_VRS:
        if pos + 12 > len(buf):
            raise _NeedMoreError
        (length,) = _UNPACK_L(buf, pos + 8)
        return tag, vr.decode("ascii"), length, pos + 12
    # two upper-case letters (b"AA" <= vr <= b"ZZ" also lets b"C\xaa" through)
    if not (vr.isalpha() and vr.isupper()):
        raise _UnsupportedError
    return tag, vr.decode("ascii"), length, pos + 8


def _skip_undefined(buf: bytes, pos: int, implicit: bool, end_tag: int) -> int:
    """Skip elements until ``end_tag`` (item or sequence delimitation); return the offset after."""
    while True:
        tag, _vr, length, value = _element(buf, pos, implicit)
        if tag == end_tag:
            return value
        if tag == _ITEM:
            if length == _UNDEFINED:
                pos = _skip_undefined(buf, value, implicit, _ITEM_END)
            else:
                pos = value + length
        elif length == _UNDEFINED:
            pos = _skip_undefined(buf, value, implicit, _SEQ_END)
        else:
            pos = value + length
        if pos > len(buf):
            raise _NeedMoreError


def _parse(buf: bytes, wanted: frozenset[int], last: int) -> tuple[str, dict[int, RawElement]]:
    if len(buf) < 132 or buf[128:132] != b"DICM":
        raise _UnsupportedError
    pos = 132
    found: dict[int, RawElement] = {}
    transfer_syntax = ""
    # File meta information: always explicit VR little endian (PS3.10 §7.1).
    while True:
        if pos + 8 > len(buf):
            raise _NeedMoreError
        if int.from_bytes(buf[pos : pos + 2], "little") != 0x0002:
            break
        tag, _vr, length, value = _element(buf, pos, implicit=False)
        if length == _UNDEFINED:
            raise _UnsupportedError
        if value + length > len(buf):
            raise _NeedMoreError
        if tag == 0x00020010:
            transfer_syntax = buf[value : value + length].decode("ascii").strip(" \x00")
        pos = value + length
    if transfer_syntax in _FALLBACK_SYNTAXES:
        raise _UnsupportedError
    implicit = transfer_syntax == _IMPLICIT_LE
    while True:
        if pos >= len(buf):
            raise _NeedMoreError
        tag, vr, length, value = _element(buf, pos, implicit)
        if tag > last:
            return transfer_syntax, found
        if length == _UNDEFINED:
            pos = _skip_undefined(buf, value, implicit, _SEQ_END)
            continue
        end = value + length
        if tag in wanted:
            if end > len(buf):
                raise _NeedMoreError
            found[tag] = (vr, buf[value:end])
        pos = end


def parse_header(
    path: str | os.PathLike[str], wanted: frozenset[int]
) -> tuple[str, dict[int, RawElement]] | None:
    """Read the wanted elements of a Part 10 file; None when pydicom must do it.

    Parameters
    ----------
    path
        The file.
    wanted
        Tags to return; parsing stops after the largest.

    Returns
    -------
    (transfer syntax UID, {tag: (VR or None, value bytes)}) or None
    """
    last = max(wanted)
    size = _FIRST_READ
    with open(path, "rb") as fp:
        buf = fp.read(size)
        while True:
            try:
                return _parse(buf, wanted, last)
            except (_UnsupportedError, UnicodeDecodeError, ValueError):
                return None  # anything odd (a corrupt byte): pydicom judges the file
            except (_NeedMoreError, struct.error):
                if len(buf) < size or size >= _MAX_READ:
                    return None  # short file or very long header: let pydicom judge
                size *= 4
                fp.seek(0)
                buf = fp.read(size)
