"""Re-key labels made on the original images to the pseudonyms of their de-identified copies.

Truth files (``ichkit synth``'s ``truth.csv``, a site's own reads) name images
by their ORIGINAL SOPInstanceUIDs; after ``ichkit deid`` the images carry keyed
pseudonymous UIDs, so the labels must be mapped with the same site key before
the central catalog can match them. Every pseudonym here comes from the same
:class:`~ichkit.deid.Pseudonymizer` methods the engine calls (and the patient
key from the same :func:`~ichkit.deid._pseudonym.patient_key_of`), never from a
second implementation, so a mapped id equals the UID written in the output file.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ichkit.deid._profile import Action, Profile
from ichkit.deid._pseudonym import Pseudonymizer, SiteKey, patient_key_of, read_key
from ichkit.deid._store import MappingStore
from ichkit.errors import ConfigError, LabelsError
from ichkit.labels import image_id

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "LabelMapSummary",
    "map_exams",
    "map_labels",
    "map_labels_file",
    "original_sop_instance_uid",
]

logger = logging.getLogger(__name__)

#: Columns of an exams table that are mapped; every other column is kept as it is.
EXAM_COLUMNS = ("patient", "study", "series")
_TAG_SOP = 0x00080018
_TAG_STUDY = 0x0020000D
_TAG_SERIES = 0x0020000E
_TAG_PATIENT_ID = 0x00100020
_KEYWORDS = {
    _TAG_SOP: "SOPInstanceUID",
    _TAG_STUDY: "StudyInstanceUID",
    _TAG_SERIES: "SeriesInstanceUID",
    _TAG_PATIENT_ID: "PatientID",
}


@dataclass(frozen=True)
class LabelMapSummary:
    """What :func:`map_labels_file` wrote.

    Attributes
    ----------
    images
        Images in the labels file (each mapped).
    labels_out
        The mapped labels CSV.
    exams
        Rows of the exams table mapped (0 when none was given).
    exams_out
        The mapped exams CSV, or None.
    key_fingerprint
        Fingerprint of the site key used (as in ``DST/deid-config.json``).
    """

    images: int
    labels_out: str
    exams: int = 0
    exams_out: str | None = None
    key_fingerprint: str = ""


def _site_key(key: SiteKey | str | os.PathLike[str]) -> SiteKey:
    return key if isinstance(key, SiteKey) else read_key(key)


def _check_profile(profile: Profile | None, tags: Sequence[int]) -> None:
    """Refuse a profile under which the engine does not write keyed pseudonyms for ``tags``."""
    if profile is None:
        return
    for tag in tags:
        action = profile.action_for(tag)
        expected = (Action.PATIENT,) if tag == _TAG_PATIENT_ID else (Action.UID, Action.DUMMY)
        if action not in expected:
            raise ConfigError(
                f"profile {profile.name!r} gives {_KEYWORDS[tag]} the action {action.value!r}, "
                f"not {expected[0].value!r}: labels cannot be mapped to its output",
                field=_KEYWORDS[tag],
                value=action.value,
            )


def original_sop_instance_uid(image: str) -> str:
    """Return the SOPInstanceUID that a labels-file image id stands for.

    A labels file drops a leading ``ID_`` from the UID (:func:`ichkit.labels.image_id`).
    DICOM UIDs hold dots (PS3.5 9.1), so an id with a dot is the UID itself; an
    id without one is an RSNA challenge id (``63eb1e259``), whose files hold the
    SOPInstanceUID ``ID_63eb1e259``.

    Examples
    --------
    >>> original_sop_instance_uid("1.2.840.10008.1")
    '1.2.840.10008.1'
    >>> original_sop_instance_uid("63eb1e259")
    'ID_63eb1e259'
    """
    image = image_id(image)
    return image if "." in image else f"ID_{image}"


def map_labels(
    wide: pd.DataFrame, key: SiteKey | str | os.PathLike[str], *, profile: Profile | None = None
) -> pd.DataFrame:
    """Re-key a wide labels table to the pseudonymous SOPInstanceUIDs of ``key``.

    Parameters
    ----------
    wide
        One row per image, indexed by image id (as :func:`ichkit.labels.read_labels`
        returns), keyed by the ORIGINAL SOPInstanceUIDs (see
        :func:`original_sop_instance_uid` for ids without dots).
    key
        The site key (or its file) that ``ichkit deid`` used.
    profile
        The profile ``ichkit deid`` used, to check that it replaces
        SOPInstanceUID with a keyed UID (PS3.15 E.1.1 action U); not checked
        when None (the shipped profile does).

    Returns
    -------
    pandas.DataFrame
        A copy with the index replaced by ``2.25.<int>`` pseudonyms, in the same
        order; the values are unchanged. Images that were quarantined are mapped
        too (harmless: no output file carries their pseudonym).

    Raises
    ------
    ichkit.errors.ConfigError
        If the key file cannot be read, or the profile does not map SOPInstanceUID.
    ichkit.errors.LabelsError
        If an image id is empty.
    """
    import pandas as pd

    _check_profile(profile, (_TAG_SOP,))
    pseudo = Pseudonymizer(_site_key(key))
    mapped = []
    for position, value in enumerate(wide.index):
        image = image_id(str(value))
        if not image:
            raise LabelsError(
                "image id is empty; expected a SOPInstanceUID",
                field=f"row {position + 1}",
                value=value,
            )
        mapped.append(image_id(pseudo.uid(original_sop_instance_uid(image))))
    out = wide.copy()
    out.index = pd.Index(mapped, dtype=object, name="image_id")
    return out


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return ""
    return str(value)


def map_exams(
    exams: pd.DataFrame,
    key: SiteKey | str | os.PathLike[str],
    *,
    profile: Profile | None = None,
    path: str | os.PathLike[str] | None = None,
    lines: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Re-key an exams table (``ichkit synth``'s ``exams.csv``) with ``key``.

    ``patient`` becomes the pseudonymous PatientID (``<site>-<digest>``; an empty
    PatientID is keyed by the study, as the engine does), ``study`` and ``series``
    the pseudonymous StudyInstanceUID and SeriesInstanceUID; every other column
    (``site``, the exam labels) is kept as it is.

    Parameters
    ----------
    exams
        Columns ``patient``, ``study``, ``series`` as text (read the CSV with
        ``dtype=str, keep_default_na=False`` so that IDs keep leading zeros).
    key
        The site key (or its file) that ``ichkit deid`` used.
    profile
        The profile ``ichkit deid`` used, checked as in :func:`map_labels`.
    path
        The file the table came from, named in errors.
    lines
        The file line of each row, named in errors (else rows are counted from 1).

    Returns
    -------
    pandas.DataFrame
        A copy with the three columns mapped.

    Raises
    ------
    ichkit.errors.LabelsError
        If a column is missing, or a study or series UID is empty.
    ichkit.errors.ConfigError
        If the key file cannot be read, or the profile does not map these attributes.
    """
    missing = [c for c in EXAM_COLUMNS if c not in exams.columns]
    if missing:
        raise LabelsError(
            f"exams table lacks column(s) {', '.join(missing)}; expected "
            f"{', '.join(EXAM_COLUMNS)} (other columns are kept)",
            path=path,
            field="columns",
            value=[str(c) for c in exams.columns],
        )
    _check_profile(profile, (_TAG_PATIENT_ID, _TAG_STUDY, _TAG_SERIES))
    pseudo = Pseudonymizer(_site_key(key))
    patients, studies, series = [], [], []
    rows = zip(exams["patient"], exams["study"], exams["series"], strict=True)
    for position, (patient, study, one_series) in enumerate(rows):
        texts = {"patient": _cell(patient), "study": _cell(study), "series": _cell(one_series)}
        for column in ("study", "series"):
            if not texts[column].strip("\x00 "):
                where = f"line {lines[position]}" if lines else f"row {position + 1}"
                raise LabelsError(
                    f"{column} is empty; expected the exam's "
                    f"{_KEYWORDS[_TAG_STUDY if column == 'study' else _TAG_SERIES]}",
                    path=path,
                    field=where,
                    value=texts[column],
                )
        patients.append(pseudo.patient_id(patient_key_of(texts["patient"], texts["study"])))
        studies.append(pseudo.uid(texts["study"]))
        series.append(pseudo.uid(texts["series"]))
    out = exams.copy()
    out["patient"] = patients
    out["study"] = studies
    out["series"] = series
    return out


def _read_exams(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """Read an exams CSV as text (every cell a str), checking its shape; also its rows' lines."""
    import pandas as pd

    try:
        data = path.read_bytes()
    except FileNotFoundError as err:
        raise LabelsError("file not found", path=path) from err
    except OSError as err:
        raise LabelsError(f"cannot read file: {err.strerror or err}", path=path) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LabelsError(f"not a UTF-8 text file: {err}", path=path) from err
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise LabelsError(
                f"file is empty; expected a header with {', '.join(EXAM_COLUMNS)}", path=path
            )
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise LabelsError(
                f"column {repeated[0]!r} appears twice in the header",
                path=path,
                field="line 1",
                value=repeated[0],
            )
        rows: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise LabelsError(
                    f"{len(row)} fields; expected {len(header)} as in the header",
                    path=path,
                    field=f"line {reader.line_num}",
                    value=len(row),
                )
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as err:
        raise LabelsError(str(err), path=path, field=f"line {reader.line_num}") from err
    return pd.DataFrame(rows, columns=header, dtype=object), lines


def map_labels_file(
    labels: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key: SiteKey | str | os.PathLike[str],
    exams: str | os.PathLike[str] | None = None,
    exams_out: str | os.PathLike[str] | None = None,
    profile: Profile | None = None,
    only_in_store: str | os.PathLike[str] | None = None,
) -> LabelMapSummary:
    """Map an RSNA labels CSV (and optionally an exams CSV) with ``key``; write them atomically.

    Both inputs are read and mapped before anything is written, so an error
    leaves no output. An output may replace its input.

    Parameters
    ----------
    labels
        RSNA labels CSV keyed by the original SOPInstanceUIDs.
    out
        Where to write the mapped labels CSV.
    key
        The site key (or its file) that ``ichkit deid`` used.
    exams, exams_out
        An exams CSV (columns ``patient``, ``study``, ``series``, others kept) and
        where to write it mapped; both or neither.
    profile
        The profile ``ichkit deid`` used, checked as in :func:`map_labels`.
    only_in_store
        A mapping store (``<KEYFILE>.mapping.sqlite``): keep only the images
        (and exams) that this site de-identified and wrote, so that a site
        sends labels for its own exams only.

    Returns
    -------
    LabelMapSummary

    Raises
    ------
    ichkit.errors.LabelsError
        For a malformed labels or exams file (naming the file and line).
    ichkit.errors.ConfigError
        For an unreadable key, ``exams`` without ``exams_out`` or the reverse.
    """
    from ichkit._atomic import atomic_open
    from ichkit.labels import read_labels, write_labels

    if exams is not None and exams_out is None:
        raise ConfigError(
            "exams given without exams_out; give both or neither",
            field="exams_out",
            value=os.fspath(exams),
        )
    if exams_out is not None and exams is None:
        raise ConfigError(
            "exams_out given without exams; give both or neither",
            field="exams",
            value=os.fspath(exams_out),
        )
    site_key = _site_key(key)
    wide = read_labels(labels)
    done_instances: set[str] | None = None
    done_studies: set[str] | None = None
    if only_in_store is not None:
        with MappingStore(only_in_store, create=False) as store:
            done_instances = store.originals("instance")
            done_studies = store.originals("study")
        keep = [original_sop_instance_uid(str(i)) in done_instances for i in wide.index]
        wide = wide[keep]
    mapped = map_labels(wide, site_key, profile=profile)
    mapped_exams = None
    if exams is not None:
        exams_path = Path(exams)
        table, lines = _read_exams(exams_path)
        if done_studies is not None:
            keep_rows = [str(study) in done_studies for study in table["study"]]
            table = table[keep_rows].reset_index(drop=True)
            lines = [line for line, k in zip(lines, keep_rows, strict=True) if k]
        mapped_exams = map_exams(table, site_key, profile=profile, path=exams_path, lines=lines)
    write_labels(out, mapped)
    exams_target = None
    if mapped_exams is not None and exams_out is not None:
        exams_target = Path(exams_out)
        with atomic_open(exams_target, "w") as handle:
            text_handle: IO[Any] = handle
            writer = csv.writer(text_handle, lineterminator="\n")
            writer.writerow([str(c) for c in mapped_exams.columns])
            writer.writerows(mapped_exams.itertuples(index=False, name=None))
    logger.info(
        "mapped %d images%s with key %s",
        len(mapped),
        f" and {len(mapped_exams)} exams" if mapped_exams is not None else "",
        site_key.fingerprint,
    )
    return LabelMapSummary(
        images=len(mapped),
        labels_out=os.fspath(out),
        exams=0 if mapped_exams is None else len(mapped_exams),
        exams_out=None if exams_target is None else str(exams_target),
        key_fingerprint=site_key.fingerprint,
    )
