"""Hemorrhage labels and the RSNA labels CSV format.

The five subtypes, in this order everywhere (files, tensors, columns), then
``any`` (at least one subtype). Label names are exactly the RSNA spellings.

The RSNA CSV format (RSNA 2019 Intracranial Hemorrhage Detection challenge)
has the header ``ID,Label`` and six rows per image::

    ID,Label
    ID_63eb1e259_epidural,0
    ID_63eb1e259_intraparenchymal,0
    ...
    ID_63eb1e259_any,0

where the middle part is the image's SOPInstanceUID without a leading ``ID_``
(:func:`image_id`). Reading gives

- :class:`LabelRows` (:func:`read_label_rows`): the rows as numpy arrays, the
  fast form that scoring uses;
- a *long* table (:func:`read_labels_long`): one row per CSV row, with its line
  number so that errors can name it;
- a *wide* table (:func:`read_labels`): one row per image, indexed by image id,
  one float column per label, in :data:`LABELS` order.

Reading is vectorised: a clean machine-written file (ASCII, no quotes or
spaces, one comma per line) is parsed with numpy on its bytes; any other file
goes through the :mod:`csv` module, with the same results and messages. Errors
name the file, the line and the value; when several rows are wrong, the
earliest line is named.
"""

from __future__ import annotations

import csv
import enum
import io
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ichkit.errors import LabelsError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "HEADER",
    "LABELS",
    "LABEL_WEIGHTS",
    "PROBABILITY_FORMAT",
    "SUBTYPES",
    "Label",
    "LabelRows",
    "RowProblem",
    "exam_labels",
    "image_id",
    "label_matrix",
    "read_label_rows",
    "read_labels",
    "read_labels_long",
    "row_id",
    "to_long",
    "to_wide",
    "write_label_matrix",
    "write_labels",
]


class Label(enum.StrEnum):
    """The six labels of an image, in the fixed order."""

    EPIDURAL = "epidural"
    INTRAPARENCHYMAL = "intraparenchymal"
    INTRAVENTRICULAR = "intraventricular"
    SUBARACHNOID = "subarachnoid"
    SUBDURAL = "subdural"
    ANY = "any"


#: The five hemorrhage subtypes, in the fixed order.
SUBTYPES: tuple[str, ...] = tuple(str(lab) for lab in Label if lab is not Label.ANY)
#: The five subtypes then ``any``: the column order of every labels table.
LABELS: tuple[str, ...] = (*SUBTYPES, Label.ANY.value)
#: Weights of the challenge metric, in :data:`LABELS` order (``any`` counts twice).
LABEL_WEIGHTS: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 2.0)
#: The header of an RSNA labels CSV.
HEADER: tuple[str, str] = ("ID", "Label")
#: How predicted probabilities are written (``ichkit predict``, ``ichkit evaluate``):
#: nine significant digits give every float32 back exactly. Six would write any
#: probability from 0.9999995 up as ``1``, which the metric clips to 1 - 1e-15, so a
#: confident false positive's loss would jump from ~15 to ~34.5 in the file.
PROBABILITY_FORMAT: str = "%.9g"

_LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}
_NA_TEXT = frozenset({"", "nan", "NaN", "NAN"})
_BOM = b"\xef\xbb\xbf"


def image_id(sop_instance_uid: str) -> str:
    """Return the image id used in labels files for a SOPInstanceUID.

    The RSNA files name images ``ID_<hex>``, and their rows ``ID_<hex>_<label>``;
    a standard UID ``1.2.3`` becomes rows ``ID_1.2.3_<label>``. The image id is
    therefore the UID without a leading ``ID_``.

    Examples
    --------
    >>> image_id("ID_63eb1e259")
    '63eb1e259'
    >>> image_id("1.2.840.10008.1")
    '1.2.840.10008.1'
    """
    uid = sop_instance_uid.strip()
    return uid[3:] if uid.startswith("ID_") else uid


def row_id(image: str, label: str) -> str:
    """Return the CSV row ID ``ID_<image>_<label>`` for an image id and a label.

    Examples
    --------
    >>> row_id("ID_abc", "any")
    'ID_abc_any'
    >>> row_id("1.2.3", "epidural")
    'ID_1.2.3_epidural'
    """
    if label not in _LABEL_INDEX:
        raise LabelsError(
            f"unknown label {label!r}; expected one of {', '.join(LABELS)}", field="label"
        )
    return f"ID_{image_id(image)}_{label}"


class RowProblem(NamedTuple):
    """A malformed data row of a labels CSV: its file line, what is wrong and the value."""

    line: int
    message: str
    value: Any


@dataclass(frozen=True, eq=False)
class LabelRows:
    """The data rows of an RSNA labels CSV as numpy arrays (one entry per row).

    Attributes
    ----------
    line
        int64 file line numbers (the header is line 1; blank lines are skipped).
    image
        int64 index into :attr:`images` of each row's image; -1 for a malformed row.
    label
        int8 index into :data:`LABELS`; -1 for a malformed row.
    value
        float64 values as written (NaN for an empty cell or ``nan``); NaN for a
        malformed row.
    images
        The distinct image ids of the well-formed rows (str array), in order of
        first appearance.
    path
        The file read, for error messages.
    problem
        The earliest malformed row (bad ID, unknown label, value that is not a
        number, wrong number of fields), or None.
    image_keys
        When the fast parser read the file: (images, w) uint64 array holding
        each image id's ASCII bytes, zero-padded (for matching images by
        numeric sort instead of hashing strings); else None.
    """

    line: np.ndarray
    image: np.ndarray
    label: np.ndarray
    value: np.ndarray
    images: np.ndarray
    path: Path | None = None
    problem: RowProblem | None = None
    image_keys: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.line.shape[0])

    def problem_error(self, error: type[LabelsError] = LabelsError) -> LabelsError | None:
        """The error for :attr:`problem` (an instance of ``error``), or None."""
        if self.problem is None:
            return None
        return error(
            self.problem.message,
            path=self.path,
            field=f"line {self.problem.line}",
            value=self.problem.value,
        )

    def to_frame(self) -> pd.DataFrame:
        """The long table of :func:`read_labels_long` (well-formed rows only)."""
        import numpy as np
        import pandas as pd

        ok = self.image >= 0
        images = np.asarray(self.images, dtype=object)
        label_names = np.asarray(LABELS, dtype=object)
        return pd.DataFrame(
            {
                "line": self.line[ok],
                "image_id": images[self.image[ok]],
                "label": label_names[self.label[ok]],
                "label_index": self.label[ok].astype(np.int8),
                "value": self.value[ok],
            }
        )

    @classmethod
    def from_frame(
        cls, long: pd.DataFrame, *, path: str | os.PathLike[str] | None = None
    ) -> LabelRows:
        """Build from a long table (columns ``image_id``, ``label_index`` or ``label``,
        ``value`` and optionally ``line``)."""
        import numpy as np
        import pandas as pd

        file = None if path is None else Path(path)
        n = len(long)
        lines = (
            long["line"].to_numpy(dtype=np.int64)
            if "line" in long.columns
            else np.arange(2, n + 2, dtype=np.int64)
        )
        if "label_index" in long.columns:
            label = long["label_index"].to_numpy(dtype=np.int64)
            unknown = (label < 0) | (label >= len(LABELS))
            shown = label
        else:
            names = long["label"].to_numpy(dtype=object)
            label = np.asarray([_LABEL_INDEX.get(str(s), -1) for s in names], dtype=np.int64)
            unknown = label < 0
            shown = names
        if bool(unknown.any()):
            i = int(np.argmax(unknown))
            raise LabelsError(
                f"unknown label {shown[i]!r}; expected one of {', '.join(LABELS)}",
                path=file,
                field=f"line {lines[i]}",
                value=shown[i],
            )
        codes, uniques = pd.factorize(long["image_id"].to_numpy(dtype=object), sort=False)
        return cls(
            line=lines,
            image=codes.astype(np.int64),
            label=label.astype(np.int8),
            value=long["value"].to_numpy(dtype=np.float64),
            images=np.asarray([str(u) for u in uniques], dtype=str),
            path=file,
        )

    def to_matrix(self, *, require_complete: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The wide form: ``(images, table)``, table float64 of shape (images, 6).

        Identical duplicate rows (same image, label and value) are dropped, as the
        real RSNA training file holds some; conflicting duplicates are an error
        naming both lines. Values must lie in [0, 1].

        Raises
        ------
        LabelsError
            At the earliest offending line: a malformed row (:attr:`problem`), a
            value outside [0, 1] or NaN, or the second of two conflicting rows;
            then (``require_complete``) the first image lacking one of the labels.
        """
        import numpy as np

        n_images = len(self.images)
        ok = self.image >= 0
        value = self.value
        candidates: list[tuple[int, LabelsError]] = []
        problem = self.problem_error()
        if problem is not None and self.problem is not None:
            candidates.append((self.problem.line, problem))
        bad_value = ok & ~((value >= 0.0) & (value <= 1.0))
        if bool(bad_value.any()):
            i = int(np.argmax(bad_value))
            candidates.append((int(self.line[i]), self._value_error(i)))
        rows = np.flatnonzero(ok)
        key = self.image[rows] * len(LABELS) + self.label[rows]
        keep = rows
        if rows.size and int(np.bincount(key, minlength=1).max()) > 1:
            order = np.argsort(key, kind="stable")
            same = np.flatnonzero(key[order][1:] == key[order][:-1])
            first, second = rows[order[same]], rows[order[same + 1]]
            conflict = ~(value[first] == value[second]) & ~bad_value[first] & ~bad_value[second]
            if bool(conflict.any()):
                j = int(np.argmin(np.where(conflict, self.line[second], np.iinfo(np.int64).max)))
                a, b = int(first[j]), int(second[j])
                candidates.append((int(self.line[b]), self._conflict_error(a, b)))
            drop = np.zeros(len(self), dtype=bool)
            drop[second] = True
            keep = rows[~drop[rows]]
        if candidates:
            raise min(candidates, key=lambda c: c[0])[1]
        table = np.full((n_images, len(LABELS)), np.nan)
        table[self.image[keep], self.label[keep]] = value[keep]
        if require_complete and n_images:
            missing = np.isnan(table)
            incomplete = missing.any(axis=1)
            if bool(incomplete.any()):
                r = int(np.argmax(incomplete))
                absent = [LABELS[c] for c in np.flatnonzero(missing[r])]
                raise LabelsError(
                    f"image {str(self.images[r])!r} has no row for label(s) {', '.join(absent)}; "
                    f"every image needs all six ({', '.join(LABELS)})",
                    path=self.path,
                    field="ID",
                    value=str(self.images[r]),
                )
        return self.images, table

    def row_text(self, i: int) -> str:
        """The CSV ID of well-formed row ``i`` (``ID_<image>_<label>``)."""
        return f"ID_{self.images[self.image[i]]}_{LABELS[self.label[i]]}"

    def _value_error(self, i: int, error: type[LabelsError] = LabelsError) -> LabelsError:
        v = float(self.value[i])
        what = "is NaN (empty or 'nan')" if math.isnan(v) else f"{v!r} is outside [0, 1]"
        return error(
            f"value of {self.row_text(i)} {what}; expected a number in [0, 1]",
            path=self.path,
            field=f"line {self.line[i]}",
            value=v,
        )

    def _conflict_error(self, a: int, b: int) -> LabelsError:
        return LabelsError(
            f"conflicting duplicate rows for {self.row_text(a)}: line {self.line[a]} says "
            f"{float(self.value[a]):g}, line {self.line[b]} says {float(self.value[b]):g}",
            path=self.path,
            field=f"lines {self.line[a]} and {self.line[b]}",
            value=(float(self.value[a]), float(self.value[b])),
        )


# --------------------------------------------------------------------------- reading


def read_label_rows(path: str | os.PathLike[str], *, strict: bool = True) -> LabelRows:
    """Read the rows of an RSNA labels CSV into numpy arrays, checking their syntax.

    Parameters
    ----------
    path
        The CSV file (``ID,Label`` header; rows ``ID_<image>_<label>,<value>``);
        UTF-8, optional BOM, ``\\n`` or ``\\r\\n`` line ends; blank lines skipped.
    strict
        Raise for the earliest malformed row. When False, malformed rows are
        kept with image and label -1 and the earliest is in
        :attr:`LabelRows.problem` (so that a caller can compare it with other
        problems it finds).

    Returns
    -------
    LabelRows

    Raises
    ------
    LabelsError
        Missing or unreadable file, wrong header; with ``strict``, an ID not of
        the form ``ID_<image>_<label>``, an unknown label name, a value that is
        not a number or a row without exactly two fields. The message names
        the file, the line and the value.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError as err:
        raise LabelsError("file not found", path=file) from err
    except OSError as err:
        raise LabelsError(f"cannot read file: {err.strerror or err}", path=file) from err
    rows = _parse_fast(data, file)
    if rows is None:
        rows = _parse_general(data, file)
    if strict:
        error = rows.problem_error()
        if error is not None:
            raise error
    return rows


def read_labels_long(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an RSNA labels CSV into a long table, checking only its syntax.

    Parameters
    ----------
    path
        The CSV file (``ID,Label`` header; rows ``ID_<image>_<label>,<value>``).

    Returns
    -------
    pandas.DataFrame
        Columns ``line`` (file line number, header = 1), ``image_id`` (str),
        ``label`` (str, one of :data:`LABELS`), ``label_index`` (int8 column in
        :data:`LABELS`) and ``value`` (float64, may be NaN where the file holds
        ``nan`` or an empty cell: callers decide whether that is allowed).

    Raises
    ------
    LabelsError
        Unreadable file, wrong header, an ID not of the form
        ``ID_<image>_<label>``, an unknown label name or a value that is not a
        number; the message names the file and the earliest offending line.
    """
    return read_label_rows(path).to_frame()


def read_labels(path: str | os.PathLike[str], *, require_complete: bool = True) -> pd.DataFrame:
    """Read an RSNA labels CSV into a wide table (one row per image).

    See :func:`read_label_rows` for the syntax checks and :func:`to_wide` for
    the duplicate and range rules.

    Returns
    -------
    pandas.DataFrame
        Index ``image_id`` (order of first appearance), columns :data:`LABELS`,
        float64 values.
    """
    images, table = read_label_rows(path).to_matrix(require_complete=require_complete)
    return _wide_frame(images, table)


def to_wide(
    long: pd.DataFrame | LabelRows,
    *,
    path: str | os.PathLike[str] | None = None,
    require_complete: bool = True,
) -> pd.DataFrame:
    """Turn a long labels table (from :func:`read_labels_long`) into a wide one.

    Identical duplicate rows (same image, label and value) are dropped, as the
    real RSNA training file holds some; conflicting duplicates are an error
    naming both lines. Values must lie in [0, 1].

    Parameters
    ----------
    long
        Columns ``image_id``, ``label_index`` (or ``label``), ``value`` and
        optionally ``line``; or a :class:`LabelRows`.
    path
        The file the table came from, for error messages.
    require_complete
        Raise when an image lacks one of the six labels (else leave NaN).

    Returns
    -------
    pandas.DataFrame
        Index ``image_id`` (order of first appearance), columns :data:`LABELS`,
        float64 values.
    """
    rows = long if isinstance(long, LabelRows) else LabelRows.from_frame(long, path=path)
    images, table = rows.to_matrix(require_complete=require_complete)
    return _wide_frame(images, table)


def _wide_frame(images: np.ndarray, table: np.ndarray) -> pd.DataFrame:
    import pandas as pd

    index = pd.Index(images.tolist(), name="image_id")
    return pd.DataFrame(table, index=index, columns=list(LABELS))


# ---------------------------------------------------------------- row-level parsing


def _parse_row(fields: list[str]) -> tuple[str, int, float, str | None, Any]:
    """Parse one data row: ``(image, label index, value, problem or None, bad value)``."""
    if len(fields) != 2:
        shown = ",".join(fields)
        return "", -1, math.nan, f"expected 2 fields (ID,Label), found {len(fields)}", shown
    rid = fields[0].strip()
    stem, sep, label = rid.rpartition("_")
    if not sep or not stem.startswith("ID_") or len(stem) <= 3:
        return "", -1, math.nan, f"ID {rid!r} is not of the form ID_<image>_<label>", rid
    index = _LABEL_INDEX.get(label, -1)
    if index < 0:
        return (
            "",
            -1,
            math.nan,
            f"unknown label {label!r} in ID {rid!r}; expected one of {', '.join(LABELS)}",
            label,
        )
    raw = fields[1].strip()
    value = _parse_value(raw)
    if value is None:
        return "", -1, math.nan, f"Label {raw!r} of {rid!r} is not a number", raw
    return stem[3:], index, value, None, None


def _parse_value(text: str) -> float | None:
    """A Label cell as a float: NaN for empty/``nan``, None when not a number."""
    t = text.strip()
    if t in _NA_TEXT:
        return math.nan
    if "_" in t:  # float() accepts "1_0"; a CSV number does not
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _factorize_words(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Factorize the rows of a (n, w) uint64 array: codes (int64) and the row index of
    each distinct key's first appearance, distinct keys in order of first appearance.

    Runs of equal consecutive keys (the six rows of an image) are collapsed
    first, so that only one key per run is sorted (numerically, by lexsort).
    """
    import numpy as np

    n = keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    np.not_equal(keys[1:, 0], keys[:-1, 0], out=change[1:])
    for j in range(1, keys.shape[1]):
        change[1:] |= keys[1:, j] != keys[:-1, j]
    starts = np.flatnonzero(change)
    run_keys = keys[starts]
    if run_keys.shape[1] == 1:
        order = np.argsort(run_keys[:, 0], kind="stable")
    else:
        order = np.lexsort(run_keys.T)
    ordered = run_keys[order]
    new = np.concatenate(([True], (ordered[1:] != ordered[:-1]).any(axis=1)))
    group = np.empty(len(order), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    first_run = order[new]  # lexsort is stable: the earliest run of each key
    by_appearance = np.argsort(first_run, kind="stable")
    rank = np.empty(len(first_run), dtype=np.int64)
    rank[by_appearance] = np.arange(len(first_run), dtype=np.int64)
    lengths = np.diff(np.append(starts, n))
    return np.repeat(rank[group], lengths), starts[first_run[by_appearance]]


def _factorize_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Codes (int64) and distinct strings (str array) in order of first appearance."""
    import numpy as np

    index: dict[str, int] = {}
    codes = [index.setdefault(v, len(index)) for v in values]
    return np.asarray(codes, dtype=np.int64), np.asarray(list(index), dtype=str)


def _parse_general(data: bytes, path: Path) -> LabelRows:
    """Parse any CSV text with the csv module (quotes, spaces, odd line ends)."""
    import numpy as np

    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelsError(f"not a UTF-8 text file: {err}", path=path) from err
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise LabelsError(f"file is empty; expected the header {','.join(HEADER)!r}", path=path)
        columns = tuple(c.strip() for c in header)
        if columns != HEADER:
            raise LabelsError(
                f"header is {','.join(columns)!r}; expected {','.join(HEADER)!r}",
                path=path,
                field="line 1",
                value=columns,
            )
        lines: list[int] = []
        images: list[str] = []
        labels: list[int] = []
        values: list[float] = []
        problem: RowProblem | None = None
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            image, label, value, message, bad = _parse_row(fields)
            lines.append(reader.line_num)
            images.append(image)
            labels.append(label)
            values.append(value)
            if message is not None and problem is None:
                problem = RowProblem(reader.line_num, message, bad)
    except csv.Error as err:
        raise LabelsError(
            f"not a readable CSV file: {err}", path=path, field=f"line {reader.line_num}"
        ) from err
    label_arr = np.asarray(labels, dtype=np.int8)
    ok = label_arr >= 0
    codes = np.full(len(lines), -1, dtype=np.int64)
    good_codes, uniques = _factorize_strings(
        [im for im, lab in zip(images, labels, strict=True) if lab >= 0]
    )
    codes[ok] = good_codes
    return LabelRows(
        line=np.asarray(lines, dtype=np.int64),
        image=codes,
        label=label_arr,
        value=np.where(ok, np.asarray(values, dtype=np.float64), np.nan),
        images=uniques,
        path=path,
        problem=problem,
    )


# ------------------------------------------------------------- vectorised fast path

_U64 = "<u8"
_ZERO_CHARS = 0x3030303030303030
_HIGH_BITS = 0xF0F0F0F0F0F0F0F0
_PLUS_SIX = 0x0606060606060606


def _byte_masks() -> np.ndarray:
    """``masks[k]`` keeps the first ``k`` bytes (string order) of a little-endian word."""
    import numpy as np

    return np.asarray([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


def _words(buf: np.ndarray) -> np.ndarray:
    """Unaligned little-endian uint64 view: ``words[p]`` holds bytes ``p .. p+7``."""
    import numpy as np

    return np.ndarray(shape=(buf.shape[0] - 7,), dtype=_U64, buffer=buf, offset=0, strides=(1,))


def _parse_fast(data: bytes, path: Path) -> LabelRows | None:
    """Parse a clean machine-written file on its bytes; None when it needs the csv module.

    Clean means: ASCII, header exactly ``ID,Label``, no quote, space, tab or NUL,
    ``\\r`` only before ``\\n``, exactly one comma on each non-blank line.
    """
    import numpy as np

    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data.isascii() or any(c in data for c in (b'"', b" ", b"\t", b"\0")):
        return None
    head_end = data.find(b"\n")
    if head_end < 0 or data[:head_end].removesuffix(b"\r") != b"ID,Label":
        return None
    n = len(data)
    buf = np.zeros(n + 24, dtype=np.uint8)
    buf[:n] = np.frombuffer(data, dtype=np.uint8)
    if not data.endswith(b"\n"):
        buf[n] = 10
        n += 1
    arr = buf[:n]
    scratch = np.empty(n, dtype=bool)
    newlines = np.flatnonzero(np.equal(arr, 10, out=scratch))
    starts = newlines[:-1] + 1
    ends = newlines[1:].copy()
    line = np.arange(2, len(newlines) + 1, dtype=np.int64)
    if b"\r" in data:
        cr = (buf[ends - 1] == 13) & (ends > starts)
        if data.count(b"\r") != int(cr.sum()) + int(data[head_end - 1 : head_end] == b"\r"):
            return None
        ends -= cr
    blank = ends == starts
    if bool(blank.any()):
        keep = ~blank
        starts, ends, line = starts[keep], ends[keep], line[keep]
    # Exactly one comma per line: as many commas as lines, the i-th inside line i.
    commas = np.flatnonzero(np.equal(arr, 44, out=scratch))[1:]
    if commas.shape != starts.shape or not bool(((commas > starts) & (commas < ends)).all()):
        return None
    comma = commas
    words = _words(buf)
    masks = _byte_masks()

    # ID_<image>_<label>: recognise the label by the 8 bytes before the comma,
    # then check the whole "_<label>" and the "ID_" prefix.
    label, under = _match_labels(buf, words, starts, comma)

    value, value_ok = _parse_values(buf, words, comma + 1, ends - comma - 1)
    ok = (label >= 0) & value_ok
    problem = None
    if not bool(ok.all()):
        i = int(np.argmax(~ok))
        fields = data[starts[i] : ends[i]].decode("ascii").split(",")
        message, bad = _parse_row(fields)[3:]
        problem = RowProblem(int(line[i]), message or "malformed row", bad)

    # Image ids: bytes starts+3 .. under, as fixed-width byte strings.
    good = np.flatnonzero(ok)
    id_start = starts[good] + 3
    id_len = under[good] - id_start
    width = int(id_len.max()) if good.size else 0
    n_words = max(1, -(-width // 8))
    if n_words > 64:
        return None
    keys = np.empty((good.size, n_words), dtype=_U64)
    for j in range(n_words):
        pos = np.minimum(id_start + 8 * j, words.shape[0] - 1)
        keys[:, j] = words[pos] & masks[np.clip(id_len - 8 * j, 0, 8)]
    good_codes, first = _factorize_words(keys)
    uniques = np.ascontiguousarray(keys[first]).view(f"S{8 * n_words}").reshape(-1)
    codes = np.full(starts.shape[0], -1, dtype=np.int64)
    codes[good] = good_codes
    return LabelRows(
        line=line,
        image=codes,
        label=np.where(ok, label, -1).astype(np.int8),
        value=np.where(ok, value, np.nan),
        images=uniques.astype(str),
        path=path,
        problem=problem,
        image_keys=keys[first],
    )


def _label_tables() -> dict[str, np.ndarray]:
    """Per label: its last 8 bytes, and "_<label>" split in 8-byte words, as uint64."""
    import numpy as np

    tail, head, head_mask, mid, size = [], [], [], [], []
    for name in LABELS:
        raw = b"_" + name.encode()
        tail.append(int.from_bytes(raw[-8:].rjust(8, b"\0"), "little"))
        head.append(int.from_bytes(raw[:8].ljust(8, b"\0"), "little"))
        head_mask.append((1 << (8 * min(len(raw), 8))) - 1)
        mid.append(int.from_bytes(raw[8:16].ljust(8, b"\0"), "little"))
        size.append(len(name))
    return {
        "tail": np.asarray(tail, dtype=np.uint64),
        "head": np.asarray(head, dtype=np.uint64),
        "head_mask": np.asarray(head_mask, dtype=np.uint64),
        "mid": np.asarray(mid, dtype=np.uint64),
        "size": np.asarray(size, dtype=np.int64),
    }


def _match_labels(
    buf: np.ndarray, words: np.ndarray, starts: np.ndarray, comma: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Label index of each line (-1: malformed ID or unknown label) and its last '_'.

    A label is recognised by the 8 bytes before the comma (``any`` by the 4
    bytes ``_any``), then checked whole with the '_' before it; the line must
    start with ``ID_`` and hold at least one image character.
    """
    import numpy as np

    tables = _label_tables()
    any_index = LABELS.index(Label.ANY.value)
    tail = words[comma - 8]
    patterns = np.delete(tables["tail"], any_index)
    pattern_label = np.delete(np.arange(len(LABELS)), any_index)
    order = np.argsort(patterns)
    slot = np.minimum(np.searchsorted(patterns[order], tail), len(order) - 1)
    label = np.where(patterns[order][slot] == tail, pattern_label[order][slot], -1)
    label[(tail >> np.uint64(32)) == tables["tail"][any_index] >> np.uint64(32)] = any_index
    rows = np.flatnonzero(label >= 0)
    guess = label[rows]
    at = comma[rows] - tables["size"][guess] - 1
    head = words[np.maximum(at, 0)]
    ok = (head & tables["head_mask"][guess]) == tables["head"][guess]
    ok &= at - starts[rows] > 3
    long_label = np.flatnonzero(tables["size"][guess] > 15)
    ok[long_label] &= words[at[long_label] + 8] == tables["mid"][guess[long_label]]
    prefix = np.uint64(int.from_bytes(b"ID_", "little"))
    ok &= (words[starts[rows]] & np.uint64(0xFFFFFF)) == prefix
    label[rows[~ok]] = -1
    under = np.zeros(starts.shape[0], dtype=np.int64)
    under[rows] = at
    return label.astype(np.int8), under


def _digits_value(word: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer value of the first ``count`` (0..8) ASCII digits of each word, and validity.

    SWAR: bytes past ``count`` are set to '0', all eight are checked to be
    digits, then shifted so that the padding acts as leading zeros and
    combined in three multiply-and-shift steps (as in simdjson's
    ``parse_eight_digits_unrolled``). In-place operations: no temporaries.
    """
    import numpy as np

    tables = _swar_tables()
    w = word & tables["keep"][count]
    w |= tables["fill"][count]
    check = w & np.uint64(_HIGH_BITS)
    ok = check == np.uint64(_ZERO_CHARS)
    np.add(w, np.uint64(_PLUS_SIX), out=check)
    check &= np.uint64(_HIGH_BITS)
    ok &= check == np.uint64(_ZERO_CHARS)
    w -= np.uint64(_ZERO_CHARS)
    w <<= tables["shift"][count]
    np.right_shift(w, np.uint64(8), out=check)
    w *= np.uint64(10)
    w += check
    np.bitwise_and(w, np.uint64(0x000000FF000000FF), out=check)
    check *= np.uint64(100 + (1000000 << 32))
    w >>= np.uint64(16)
    w &= np.uint64(0x000000FF000000FF)
    w *= np.uint64(1 + (10000 << 32))
    w += check
    w >>= np.uint64(32)
    return w, ok


def _swar_tables() -> dict[str, np.ndarray]:
    """Lookup tables by digit count 0..8: byte masks, '0' fill, shifts, powers of ten."""
    import numpy as np

    keep = [(1 << (8 * k)) - 1 for k in range(9)]
    return {
        "keep": np.asarray(keep, dtype=np.uint64),
        "fill": np.asarray([_ZERO_CHARS & ~m & (2**64 - 1) for m in keep], dtype=np.uint64),
        "shift": np.asarray([56] + [8 * (8 - k) for k in range(1, 9)], dtype=np.uint64),
        "pow10": np.asarray([10**k for k in range(9)], dtype=np.uint64),
    }


def _halfway(extended: np.ndarray, nearest: np.ndarray) -> np.ndarray:
    """Where an extended-precision value lies exactly halfway between two float64s.

    Rounding such a value to float64 may differ from rounding the exact decimal
    (double rounding); elsewhere both agree. With the x87 80-bit format the
    test is on the bits (the 11 mantissa bits below float64 precision are
    ``10000000000``; all values here are normal float64 numbers); other
    formats compare with the neighbouring float64s.
    """
    import numpy as np

    info = np.finfo(np.longdouble)
    if info.nmant == 63 and info.nexp == 15 and extended.dtype.itemsize in (12, 16):
        mantissa = extended.view(np.uint64).reshape(extended.shape[0], -1)[:, 0]
        return np.asarray((mantissa & np.uint64(0x7FF)) == np.uint64(0x400))
    rest = extended - nearest.astype(np.longdouble)
    up = np.nextafter(nearest, np.inf).astype(np.longdouble) - nearest
    down = nearest - np.nextafter(nearest, -np.inf).astype(np.longdouble)
    return np.asarray((rest != 0) & ((2 * rest == up) | (-2 * rest == down)))


def _parse_values(
    buf: np.ndarray, words: np.ndarray, start: np.ndarray, length: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the Label cells: float64 values and a mask of cells that are numbers.

    ``0``, ``1`` and ``d.ddd…`` (up to 24 decimals, integer part 0 or 1) are
    parsed vectorised and exactly: the decimals as an integer M (uint64), then
    M / 10**k in extended precision, which is correctly rounded to float64
    except where the extended result is exactly halfway between two doubles
    (those, and every other form such as ``1e-05`` or ``nan``, go through
    :func:`float`, like the csv path).
    """
    import numpy as np

    count = start.shape[0]
    value = np.full(count, np.nan)
    done = np.zeros(count, dtype=bool)
    first = buf[start]
    lead_digit = (first >= ord("0")) & (first <= ord("9"))
    single = (length == 1) & lead_digit
    value[single] = first[single] - ord("0")
    done |= single
    n_dec = length - 2
    exact_ld = np.finfo(np.longdouble).nmant >= 63
    decimal = (
        (n_dec >= 1)
        & (n_dec <= 24)
        & ((first == ord("0")) | (first == ord("1")))
        & (buf[start + 1] == ord("."))
    )
    rows = np.flatnonzero(decimal) if exact_ld else np.zeros(0, dtype=np.int64)
    if rows.size:
        pos = start[rows] + 2
        nd = n_dec[rows]
        pow10 = _swar_tables()["pow10"]
        word_at = words.shape[0] - 1
        with np.errstate(over="ignore"):
            mantissa, valid = _digits_value(words[np.minimum(pos, word_at)], np.minimum(nd, 8))
            cnt = np.clip(nd - 8, 0, 8)
            part, is_digit = _digits_value(words[np.minimum(pos + 8, word_at)], cnt)
            valid &= is_digit
            mantissa *= pow10[cnt]
            mantissa += part
            long_rows = np.flatnonzero(nd > 16)
            if long_rows.size:
                cnt = nd[long_rows] - 16
                part, is_digit = _digits_value(words[np.minimum(pos[long_rows] + 16, word_at)], cnt)
                head = mantissa[long_rows]
                # < 2**64 for sure below 1.8e19 (the float product errs by far less)
                fits = head.astype(np.float64) * pow10[cnt].astype(np.float64) < 1.8e19
                valid[long_rows] &= is_digit & fits
                mantissa[long_rows] = head * pow10[cnt] + part
        integer = first[rows] - ord("0")
        valid &= (integer == 0) | (mantissa == 0)
        powers = np.asarray([10**e for e in range(25)], dtype=np.longdouble)
        quotient = mantissa.astype(np.longdouble) / powers[nd]
        nearest = quotient.astype(np.float64)
        valid &= ~_halfway(quotient, nearest)
        result = nearest + integer
        rows = rows[valid]
        value[rows] = result[valid]
        done[rows] = True
    value_ok = np.ones(count, dtype=bool)
    for i in np.flatnonzero(~done).tolist():
        text = bytes(buf[start[i] : start[i] + length[i]]).decode("ascii")
        parsed = _parse_value(text)
        if parsed is None:
            value_ok[i] = False
        else:
            value[i] = parsed
    return value, value_ok


# --------------------------------------------------------------------------- writing


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """Turn a wide labels table into the RSNA long table (columns ``ID``, ``Label``).

    Rows come image by image, six per image, in :data:`LABELS` order.
    """
    import numpy as np
    import pandas as pd

    images = _writable_images(wide)
    ids = [f"ID_{im}_{lab}" for im in images for lab in LABELS]
    values = label_matrix(wide).reshape(-1)
    return pd.DataFrame({"ID": np.asarray(ids, dtype=object), "Label": values})


def _writable_images(wide: pd.DataFrame, path: str | os.PathLike[str] | None = None) -> list[str]:
    _check_wide(wide)
    return _writable_ids([str(i) for i in wide.index], path)


def _writable_ids(images: list[str], path: str | os.PathLike[str] | None = None) -> list[str]:
    """The image ids as written (a leading ``ID_`` and spaces removed), checked."""
    joined = "\n" + "\n".join(images) + "\n"
    if "\nID_" in joined or any(c in joined for c in " \t\f\v"):  # rare: normalise each
        images = [image_id(im) for im in images]
        joined = "\n" + "\n".join(images) + "\n"
    if (
        "\n\n" in joined
        or any(c in joined for c in ',"\r')
        or joined.count("\n") != len(images) + 1
    ):
        for im in images:
            if im and not any(c in im for c in ',"\r\n'):
                continue
            raise LabelsError(
                f"image id {im!r} cannot be written: it must be non-empty and hold no "
                "comma, quote or line break",
                path=path,
                field="image_id",
                value=im,
            )
    if len(set(images)) != len(images):
        seen: set[str] = set()
        for im in images:
            if im in seen:
                raise LabelsError(
                    f"image {im!r} appears twice in the table (after removing a leading 'ID_')",
                    path=path,
                    field="image_id",
                    value=im,
                )
            seen.add(im)
    return images


def write_labels(
    path: str | os.PathLike[str], wide: pd.DataFrame, *, float_format: str | None = None
) -> Path:
    """Write a wide labels table as an RSNA CSV, atomically (temp file, then rename).

    Binary tables (all values 0 or 1) are written as integers; others with
    ``float_format`` (a ``%`` format such as ``"%.6f"``), or with the shortest
    text that reads back to the same float when None.

    Raises
    ------
    LabelsError
        A value outside [0, 1] or NaN, a missing label column, an image id that
        is empty, repeated or holds a comma, quote or line break.
    """
    table = label_matrix(wide)  # checks the label columns
    return write_label_matrix(path, [str(i) for i in wide.index], table, float_format=float_format)


def write_label_matrix(
    path: str | os.PathLike[str],
    images: Sequence[str],
    table: np.ndarray,
    *,
    float_format: str | None = None,
) -> Path:
    """:func:`write_labels` of an (images, 6) array in :data:`LABELS` order, without pandas.

    The same file as ``write_labels(path, DataFrame(table, index=images,
    columns=LABELS))``, for callers that would import pandas only for it
    (``ichkit predict``: pandas costs a few tenths of a second to import).

    Raises
    ------
    LabelsError
        ``table`` is not (len(images), 6), or as :func:`write_labels`.
    """
    import numpy as np

    from ichkit._atomic import atomic_write_text

    path = Path(path)
    table = np.asarray(table, dtype=np.float64)
    if table.shape != (len(images), len(LABELS)):
        raise LabelsError(
            f"expected a ({len(images)}, {len(LABELS)}) table of labels, one row per image; "
            f"got shape {table.shape}",
            path=path,
            field="table",
            value=list(table.shape),
        )
    images = _writable_ids([str(i) for i in images], path)
    bad = ~((table >= 0.0) & (table <= 1.0))
    if bool(bad.any()):
        r, c = (int(x) for x in np.argwhere(bad)[0])
        raise LabelsError(
            f"value {float(table[r, c])!r} of image {images[r]!r} label {LABELS[c]!r} "
            "is not in [0, 1]",
            path=path,
            field="Label",
            value=float(table[r, c]),
        )
    columns: list[list[str]]
    if bool(np.isin(table, (0.0, 1.0)).all()):
        text = np.asarray(["0", "1"], dtype=object)
        columns = [text[table[:, c].astype(np.intp)].tolist() for c in range(len(LABELS))]
    elif float_format is None:
        columns = [list(map(repr, table[:, c].tolist())) for c in range(len(LABELS))]
    else:
        columns = [[float_format % v for v in table[:, c].tolist()] for c in range(len(LABELS))]
    template = "".join(f"ID_{{0}}_{lab},{{{j + 1}}}\n" for j, lab in enumerate(LABELS))
    body = "".join(map(template.format, images, *columns))
    atomic_write_text(path, ",".join(HEADER) + "\n" + body)
    return path


# ---------------------------------------------------------------------- wide tables


def exam_labels(wide: pd.DataFrame, image_to_exam: Mapping[str, str] | pd.Series) -> pd.DataFrame:
    """Exam-level labels (or probabilities): the maximum over the exam's images.

    Parameters
    ----------
    wide
        Image-level table indexed by image id.
    image_to_exam
        Maps each image id to its exam (study) id; every image must be mapped.

    Returns
    -------
    pandas.DataFrame
        Index ``exam_id`` (order of first appearance), columns :data:`LABELS`.
    """
    import pandas as pd

    _check_wide(wide)
    lookup = image_to_exam.to_dict() if isinstance(image_to_exam, pd.Series) else image_to_exam
    exams = wide.index.map(dict(lookup))
    if exams.isna().any():
        missing = wide.index[exams.isna()][0]
        raise LabelsError(
            f"image {missing!r} has no exam in the image-to-exam map",
            field="image_id",
            value=missing,
        )
    out = wide[list(LABELS)].groupby(exams.to_numpy(), sort=False).max()
    out.index.name = "exam_id"
    return out


def _check_wide(wide: pd.DataFrame) -> None:
    missing = [lab for lab in LABELS if lab not in wide.columns]
    if missing:
        raise LabelsError(
            f"labels table lacks column(s) {', '.join(missing)}; expected {', '.join(LABELS)}",
            field="columns",
            value=list(wide.columns),
        )


def label_matrix(wide: pd.DataFrame) -> np.ndarray:
    """The (images, 6) float64 array of a wide table, in :data:`LABELS` order."""
    import numpy as np

    _check_wide(wide)
    return np.ascontiguousarray(wide[list(LABELS)].to_numpy(dtype=np.float64))
