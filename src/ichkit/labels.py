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
(:func:`image_id`). Reading gives a *long* table (one row per CSV row, with its
line number so that errors can name it) or a *wide* table (one row per image,
indexed by image id, one float column per label, in :data:`LABELS` order).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ichkit.errors import LabelsError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "HEADER",
    "LABELS",
    "LABEL_WEIGHTS",
    "SUBTYPES",
    "Label",
    "exam_labels",
    "image_id",
    "read_labels",
    "read_labels_long",
    "row_id",
    "to_long",
    "to_wide",
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

_LABEL_INDEX = {name: i for i, name in enumerate(LABELS)}


def image_id(sop_instance_uid: str) -> str:
    """Return the image id used in labels files for a SOPInstanceUID.

    The RSNA files name images ``ID_<hex>``, and their rows ``ID_<hex>_<label>``;
    a standard UID ``1.2.3`` becomes rows ``ID_1.2.3_<label>``. The image id is
    therefore the UID without a leading ``ID_``.
    """
    uid = sop_instance_uid.strip()
    return uid[3:] if uid.startswith("ID_") else uid


def row_id(image: str, label: str) -> str:
    """Return the CSV row ID ``ID_<image>_<label>`` for an image id and a label."""
    if label not in _LABEL_INDEX:
        raise LabelsError(
            f"unknown label {label!r}; expected one of {', '.join(LABELS)}", field="label"
        )
    return f"ID_{image_id(image)}_{label}"


def _line(index: int) -> int:
    """File line number of data row ``index`` (0-based; line 1 is the header)."""
    return index + 2


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
        number; the message names the file and the first offending line.
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    try:
        frame = pd.read_csv(
            path,
            dtype={"ID": str},
            keep_default_na=False,
            na_values=["", "nan", "NaN", "NAN"],
            encoding="utf-8-sig",
            skipinitialspace=True,
        )
    except FileNotFoundError as err:
        raise LabelsError("file not found", path=path) from err
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise LabelsError(f"not a readable CSV file: {err}", path=path) from err

    columns = tuple(str(c).strip() for c in frame.columns)
    if columns != HEADER:
        raise LabelsError(
            f"header is {','.join(columns)!r}; expected {','.join(HEADER)!r}",
            path=path,
            field="line 1",
            value=columns,
        )
    ids = frame["ID"].astype(str).str.strip()
    parts = ids.str.rsplit("_", n=1, expand=True)
    if parts.shape[1] < 2:
        parts[1] = None
    stems, labels = parts[0], parts[1]
    bad_shape = ~ids.str.startswith("ID_") | labels.isna() | (stems.str.len() <= 3)
    if bool(bad_shape.any()):
        i = int(np.argmax(bad_shape.to_numpy()))
        raise LabelsError(
            f"ID {ids.iloc[i]!r} is not of the form ID_<image>_<label>",
            path=path,
            field=f"line {_line(i)}",
            value=ids.iloc[i],
        )
    label_index = labels.map(_LABEL_INDEX)
    unknown = label_index.isna()
    if bool(unknown.any()):
        i = int(np.argmax(unknown.to_numpy()))
        raise LabelsError(
            f"unknown label {labels.iloc[i]!r} in ID {ids.iloc[i]!r}; "
            f"expected one of {', '.join(LABELS)}",
            path=path,
            field=f"line {_line(i)}",
            value=labels.iloc[i],
        )
    raw = frame["Label"]
    values = pd.to_numeric(raw, errors="coerce")
    not_number = values.isna() & raw.notna()
    if bool(not_number.any()):
        i = int(np.argmax(not_number.to_numpy()))
        raise LabelsError(
            f"Label {raw.iloc[i]!r} of {ids.iloc[i]!r} is not a number",
            path=path,
            field=f"line {_line(i)}",
            value=raw.iloc[i],
        )
    return pd.DataFrame(
        {
            "line": np.arange(2, len(frame) + 2, dtype=np.int64),
            "image_id": stems.str.slice(3).to_numpy(),
            "label": labels.to_numpy(),
            "label_index": label_index.to_numpy(dtype=np.int8),
            "value": values.to_numpy(dtype=np.float64),
        }
    )


def to_wide(
    long: pd.DataFrame,
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
        optionally ``line``.
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
    import numpy as np
    import pandas as pd

    if "label_index" not in long.columns:
        long = long.assign(label_index=long["label"].map(_LABEL_INDEX))
    lines = long["line"].to_numpy() if "line" in long.columns else np.arange(2, len(long) + 2)
    values = long["value"].to_numpy(dtype=np.float64)
    bad_value = ~((values >= 0.0) & (values <= 1.0))
    if bool(bad_value.any()):
        i = int(np.argmax(bad_value))
        raise LabelsError(
            f"value {values[i]!r} for image {long['image_id'].iloc[i]!r} "
            f"label {LABELS[int(long['label_index'].iloc[i])]!r} is outside [0, 1]",
            path=path,
            field=f"line {lines[i]}",
            value=values[i],
        )
    codes, uniques = pd.factorize(long["image_id"], sort=False)
    key = codes.astype(np.int64) * len(LABELS) + long["label_index"].to_numpy(dtype=np.int64)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    dup = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    keep = np.ones(len(key), dtype=bool)
    if dup.size:
        first, second = order[dup], order[dup + 1]
        conflict = values[first] != values[second]
        if bool(conflict.any()):
            j = int(np.argmax(conflict))
            a, b = sorted((int(first[j]), int(second[j])))
            label = LABELS[int(key[a] % len(LABELS))]
            raise LabelsError(
                f"conflicting duplicate rows for image {long['image_id'].iloc[a]!r} "
                f"label {label!r}: line {lines[a]} says {values[a]:g}, "
                f"line {lines[b]} says {values[b]:g}",
                path=path,
                field=f"lines {lines[a]} and {lines[b]}",
                value=(values[a], values[b]),
            )
        keep[second] = False
    table = np.full((len(uniques), len(LABELS)), np.nan)
    table[codes[keep], long["label_index"].to_numpy()[keep]] = values[keep]
    wide = pd.DataFrame(table, index=pd.Index(uniques, name="image_id"), columns=list(LABELS))
    if require_complete:
        missing = np.isnan(table)
        if bool(missing.any()):
            r = int(np.argmax(missing.any(axis=1)))
            absent = [LABELS[c] for c in np.flatnonzero(missing[r])]
            raise LabelsError(
                f"image {uniques[r]!r} has no row for label(s) {', '.join(absent)}; "
                f"every image needs all six ({', '.join(LABELS)})",
                path=path,
                field="ID",
                value=uniques[r],
            )
    return wide


def read_labels(
    path: str | os.PathLike[str], *, require_complete: bool = True
) -> pd.DataFrame:
    """Read an RSNA labels CSV into a wide table (one row per image).

    See :func:`read_labels_long` for the syntax checks and :func:`to_wide` for
    the duplicate and range rules.
    """
    return to_wide(read_labels_long(path), path=path, require_complete=require_complete)


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """Turn a wide labels table into the RSNA long table (columns ``ID``, ``Label``).

    Rows come image by image, six per image, in :data:`LABELS` order.
    """
    import numpy as np
    import pandas as pd

    _check_wide(wide)
    images = np.asarray([image_id(str(i)) for i in wide.index], dtype=object)
    ids = (
        "ID_"
        + np.repeat(images, len(LABELS)).astype(object)
        + "_"
        + np.tile(np.asarray(LABELS, dtype=object), len(images))
    )
    values = wide[list(LABELS)].to_numpy().reshape(-1)
    return pd.DataFrame({"ID": ids, "Label": values})


def write_labels(
    path: str | os.PathLike[str], wide: pd.DataFrame, *, float_format: str | None = None
) -> Path:
    """Write a wide labels table as an RSNA CSV, atomically (temp file, then rename).

    Binary tables (all values 0 or 1) are written as integers; others with
    ``float_format`` (full precision when None).
    """
    import numpy as np

    long = to_long(wide)
    values = long["Label"].to_numpy(dtype=np.float64)
    if np.isnan(values).any() or (values < 0).any() or (values > 1).any():
        raise LabelsError("values must lie in [0, 1] and not be NaN", path=path, field="Label")
    if np.isin(values, (0.0, 1.0)).all():
        long["Label"] = values.astype(np.int8)
    path = Path(path)
    from ichkit._atomic import atomic_write_text

    atomic_write_text(path, long.to_csv(index=False, float_format=float_format))
    return path


def exam_labels(wide: pd.DataFrame, image_to_exam: Mapping[str, str] | pd.Series) -> pd.DataFrame:
    """Exam-level labels (or probabilities): the maximum over the exam's images.

    Parameters
    ----------
    wide
        Image-level table indexed by image id.
    image_to_exam
        Maps each image id to its exam (study) id; every image must be mapped.
    """
    import pandas as pd

    _check_wide(wide)
    mapping = pd.Series(image_to_exam) if not isinstance(image_to_exam, pd.Series) else image_to_exam
    exams = wide.index.map(mapping)
    if exams.isna().any():
        missing = wide.index[exams.isna()][0]
        raise LabelsError(f"image {missing!r} has no exam in the image-to-exam map", field="image_id")
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
