"""Datasets: find the labels and DICOM files, group them into series, split by patient.

Two layouts are read as they are, without conversion:

* an ``ichkit synth`` output: ``truth.csv`` + ``dicom/<site>/<patient>/<study>/<series>/*.dcm``;
* the RSNA Kaggle layout: ``stage_2_train.csv`` + a flat ``stage_2_train/`` of
  ``ID_*.dcm`` (also ``stage_1_train``), as the ``ichkit curate`` export writes it.
  Where the test images come with their truth (``stage_2_test/`` +
  ``stage_2_test_truth.csv``, as an ``ichkit export`` of a split writes them for
  the organiser), they are the test split: the exams of the curated test set,
  never trained on.

Files are grouped into series by (0020,000E) SeriesInstanceUID from their
headers (:func:`ichkit.dicom.iter_headers`); a series whose images have no
labels (scouts, dose reports) is left out. One series is one exam.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ichkit.errors import DatasetError
from ichkit.labels import LABELS, image_id

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SPLITS",
    "DatasetLayout",
    "SeriesFiles",
    "assign_splits",
    "check_patient_disjoint",
    "discover_series",
    "find_layout",
    "label_arrays",
    "read_split_file",
    "split_file_patients",
]

logger = logging.getLogger(__name__)

#: The split names.
SPLITS: tuple[str, ...] = ("train", "val", "test")

_RSNA_STEMS = ("stage_2_train", "stage_1_train", "train")
#: The labelled test set an ``ichkit export`` of a split writes beside the training set.
_RSNA_TEST_IMAGES = "stage_2_test"
_RSNA_TEST_TRUTH = "stage_2_test_truth.csv"


@dataclass(frozen=True)
class DatasetLayout:
    """Where a dataset's labels and images are.

    Parameters
    ----------
    root
        The dataset folder.
    labels
        The RSNA-format labels CSV.
    images
        The folder holding the DICOM files (searched recursively).
    kind
        ``synth``, ``rsna`` or ``custom``.
    test_labels, test_images
        A labelled test set kept apart from ``images`` (the RSNA layout's
        ``stage_2_test_truth.csv`` + ``stage_2_test/``), or None.
    """

    root: Path
    labels: Path
    images: Path
    kind: str
    test_labels: Path | None = None
    test_images: Path | None = None

    def test_part(self) -> DatasetLayout | None:
        """The labelled test set as a layout of its own, or None."""
        if self.test_labels is None or self.test_images is None:
            return None
        return DatasetLayout(self.root, self.test_labels, self.test_images, self.kind)


def find_layout(
    data: str | os.PathLike[str], *, labels: str = "", images: str = ""
) -> DatasetLayout:
    """Recognise a dataset folder (synth output or RSNA layout).

    Parameters
    ----------
    data
        The dataset folder.
    labels, images
        Explicit labels CSV and DICOM folder (relative to ``data`` or absolute).

    Raises
    ------
    DatasetError
        The folder is missing, or neither layout is found; the message says
        what was looked for.
    """
    root = Path(data)
    if not str(data) or not root.is_dir():
        raise DatasetError(
            "dataset folder not found (set --data or data = ... in the config)",
            path=root,
            field="data",
            value=str(data),
        )
    if labels or images:
        lab = root / labels if labels else None
        img = root / images if images else None
        if lab is None or img is None:
            raise DatasetError(
                "give both labels and images, or neither", path=root, field="labels/images"
            )
        for p, name in ((lab, "labels"), (img, "images")):
            if not p.exists():
                raise DatasetError("not found", path=p, field=name, value=str(p))
        return DatasetLayout(root, lab, img, "custom")
    if (root / "truth.csv").is_file() and (root / "dicom").is_dir():
        return DatasetLayout(root, root / "truth.csv", root / "dicom", "synth")
    for stem in _RSNA_STEMS:
        if (root / f"{stem}.csv").is_file() and (root / stem).is_dir():
            truth, test = root / _RSNA_TEST_TRUTH, root / _RSNA_TEST_IMAGES
            has_test = truth.is_file() and test.is_dir()
            return DatasetLayout(
                root,
                root / f"{stem}.csv",
                root / stem,
                "rsna",
                test_labels=truth if has_test else None,
                test_images=test if has_test else None,
            )
    raise DatasetError(
        "no dataset found: expected truth.csv + dicom/ (ichkit synth output) or "
        "stage_2_train.csv + stage_2_train/ (RSNA Kaggle layout)",
        path=root,
        field="data",
        value=sorted(p.name for p in root.iterdir())[:10],
    )


@dataclass(frozen=True)
class SeriesFiles:
    """One labelled series found in a dataset (not yet decoded).

    Parameters
    ----------
    series_instance_uid, study_instance_uid, patient_id
        Identification from the headers.
    files
        The series' files, in slice order.
    sop_instance_uids
        SOPInstanceUID of each file.
    source
        :func:`ichkit.model._cache.source_fingerprint` of ``files`` when it
        is known from the scan (the cache then checks its entries without
        another ``stat`` of every file); None: the cache computes it.
    """

    series_instance_uid: str
    study_instance_uid: str
    patient_id: str
    files: tuple[Path, ...]
    sop_instance_uids: tuple[str, ...]
    source: str | None = None

    @property
    def key(self) -> str:
        """A file-name-safe key for the cache."""
        return hashlib.sha1(self.series_instance_uid.encode()).hexdigest()[:20]


def _files_digest(files: Sequence[Path], keep: dict[str, tuple[int, int]] | None = None) -> str:
    """The file list with sizes and modification times: a file written again changes it.

    ``keep``, when given, receives each file's (size, mtime in ns), so that
    the series' cache fingerprints need no second ``stat`` of every file.
    """
    h = hashlib.sha1()
    for p in files:
        st = os.stat(p)
        name = os.fspath(p)
        h.update(name.encode())
        h.update(f"\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        if keep is not None:
            keep[name] = (st.st_size, st.st_mtime_ns)
    return h.hexdigest()


def _fingerprint(files: Sequence[Path], stats: dict[str, tuple[int, int]]) -> str:
    """:func:`ichkit.model._cache.source_fingerprint` of ``files`` from their kept stats."""
    from ichkit.model._cache import fingerprint_of

    return fingerprint_of(
        (os.path.basename(p), size, mtime_ns)
        for p in files
        for size, mtime_ns in [stats[os.fspath(p)]]
    )


def discover_series(
    layout: DatasetLayout,
    labelled: set[str],
    *,
    workers: int = 1,
    index_file: Path | None = None,
    on_item: Callable[[], None] | None = None,
) -> list[SeriesFiles]:
    """Group a dataset's DICOM files into series and keep the labelled ones.

    Parameters
    ----------
    layout
        From :func:`find_layout`.
    labelled
        Image ids (SOPInstanceUIDs without ``ID_``) that have labels.
    workers
        Header-reading processes.
    index_file
        A JSON file where the grouping is stored and reused while the file
        list is unchanged (the RSNA layout holds 750k files).
    on_item
        Called once per file read.

    Returns
    -------
    list of SeriesFiles
        Series with at least one labelled image, sorted by patient, study, series.
    """
    from ichkit.dicom import SliceHeader, group_series, iter_files, iter_headers

    files = sorted(iter_files(layout.images))
    # each file is stat-ed once: for the digest, and for the series' fingerprints
    stats: dict[str, tuple[int, int]] = {}
    digest = _files_digest(files, keep=stats)
    if index_file is not None and index_file.is_file():
        try:
            stored = json.loads(index_file.read_text(encoding="utf-8"))
            if stored.get("digest") == digest:
                series = [_from_json(s) for s in stored["series"]]
                if any(s.source is None for s in series):
                    # an older ichkit's index: add the fingerprints once, from the stats taken
                    series = [replace(s, source=_fingerprint(s.files, stats)) for s in series]
                    try:
                        _write_index(index_file, digest, series)
                    except OSError as err:  # e.g. a read-only shared cache: used as it is
                        logger.debug("%s: series index not updated: %s", index_file, err)
                return _filter(series, labelled)
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("%s: ignoring unreadable series index: %s", index_file, err)
    uids: dict[Path, str] = {}

    def tap(item: object) -> None:
        if isinstance(item, SliceHeader):
            uids[item.path] = item.sop_instance_uid
        if on_item is not None:
            on_item()

    scan = group_series(iter_headers(files, workers=workers), on_item=tap)
    for bad in scan.unreadable:
        logger.debug("not DICOM or unreadable: %s", bad.reason)
    found = [
        SeriesFiles(
            series_instance_uid=r.series_instance_uid,
            study_instance_uid=r.study_instance_uid,
            patient_id=r.patient_id,
            files=tuple(r.files),
            sop_instance_uids=tuple(uids[p] for p in r.files),
            # the index is reused only while no file changed, so neither did this
            source=_fingerprint(r.files, stats),
        )
        for r in scan.series
    ]
    if index_file is not None:
        _write_index(index_file, digest, found)
    return _filter(found, labelled)


def _write_index(path: Path, digest: str, series: Sequence[SeriesFiles]) -> None:
    from ichkit._atomic import atomic_write_text

    atomic_write_text(path, json.dumps({"digest": digest, "series": [_to_json(s) for s in series]}))


def _to_json(s: SeriesFiles) -> dict[str, object]:
    return {
        "series": s.series_instance_uid,
        "study": s.study_instance_uid,
        "patient": s.patient_id,
        "files": [os.fspath(p) for p in s.files],
        "sops": list(s.sop_instance_uids),
        "source": s.source,
    }


def _from_json(d: dict[str, object]) -> SeriesFiles:
    return SeriesFiles(
        series_instance_uid=str(d["series"]),
        study_instance_uid=str(d["study"]),
        patient_id=str(d["patient"]),
        files=tuple(Path(str(p)) for p in d["files"]),  # type: ignore[attr-defined]
        sop_instance_uids=tuple(str(u) for u in d["sops"]),  # type: ignore[attr-defined]
        source=str(d["source"]) if d.get("source") else None,  # an older index has none
    )


#: Series left out for unlabelled images named one by one at WARNING; the
#: rest go to DEBUG, after one summary line (RSNA-size data can have thousands).
_NAMED_LEFT_OUT = 5


def _filter(found: list[SeriesFiles], labelled: set[str]) -> list[SeriesFiles]:
    """The series whose images are all labelled (a series with none is not this dataset's).

    A series with some images unlabelled is left out whole: the series
    model needs a label for every slice of a series it trains or is scored on.
    """
    kept = []
    partial: list[tuple[SeriesFiles, int]] = []
    for s in found:
        have = [image_id(u) in labelled for u in s.sop_instance_uids]
        if not any(have):
            continue
        if not all(have):
            partial.append((s, have.count(False)))
            continue
        kept.append(s)
    for k, (s, missing) in enumerate(partial):
        (logger.warning if k < _NAMED_LEFT_OUT else logger.debug)(
            "series %s: %d of %d images have no labels; left out",
            s.series_instance_uid,
            missing,
            len(s.sop_instance_uids),
        )
    if len(partial) > _NAMED_LEFT_OUT:
        logger.warning(
            "%d series left out in all because some of their images have no labels "
            "(%d images without labels; -v names every series)",
            len(partial),
            sum(m for _, m in partial),
        )
    return kept


#: A split file's split column, and its ID columns (with the series attribute each names).
_SPLIT_COLUMNS = ("split", "subset")
_ID_COLUMNS = (
    (("series_instance_uid", "series"), "series_instance_uid"),
    (("study_instance_uid", "study"), "study_instance_uid"),
    (("patient_id", "patient"), "patient_id"),
)


def _first_column(table: pd.DataFrame, names: Sequence[str]) -> str | None:
    return next((c for c in names if c in table.columns), None)


def _uids(cell: object) -> Iterator[str]:
    """The IDs of one split-file cell (several joined by ``;``, as exams.csv joins series)."""
    return (u for u in (x.strip() for x in str(cell).split(";")) if u)


def _split_names(table: pd.DataFrame, path: Path) -> list[str]:
    """Each row's split (lower case, ``""`` none), checked against :data:`SPLITS`."""
    column = _first_column(table, _SPLIT_COLUMNS)
    if column is None:
        raise DatasetError(
            "split file has no 'split' (or 'subset') column",
            path=path,
            field="columns",
            value=list(table.columns),
        )
    names = [str(n).strip().lower() for n in table[column].fillna("")]
    bad = sorted(set(names) - set(SPLITS))
    if bad:
        raise DatasetError(
            f"unknown split name(s) {bad}; expected {', '.join(SPLITS)}",
            path=path,
            field=column,
            value=bad[0],
        )
    return names


def _unit_hash(seed: int, text: str) -> float:
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(
    series: Sequence[SeriesFiles],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    split_file: Path | None = None,
    split_table: pd.DataFrame | None = None,
) -> list[str]:
    """The split (``train``, ``val`` or ``test``) of each series.

    By default each *patient* is placed by a seeded hash of its PatientID, so
    splits are patient-disjoint and do not change when exams are added. A
    ``split_file`` overrides it: a CSV with a ``split`` (or ``subset``) column
    and a ``series_instance_uid``, ``study_instance_uid`` or ``patient_id``
    column, such as the ``exams.csv`` an ``ichkit export`` writes (columns
    ``series``, ``study``, ``patient``, ``subset``; several series of a study
    joined by ``;``). Series it does not name are left out (``""``).
    ``split_table`` is that file already read (:func:`read_split_file`), so
    that callers needing it twice read it once.
    """
    if split_file is None:
        out = []
        keys = _patient_groups(series)
        for key in keys:
            u = _unit_hash(seed, key)
            out.append(
                "test"
                if u < test_fraction
                else "val"
                if u < test_fraction + val_fraction
                else "train"
            )
        return out
    table = read_split_file(split_file) if split_table is None else split_table
    names = _split_names(table, split_file)
    for columns, attr in _ID_COLUMNS:
        column = _first_column(table, columns)
        if column is None:
            continue
        mapping: dict[str, str] = {}
        for ids, name in zip(table[column].fillna(""), names, strict=True):
            for uid in _uids(ids):
                if mapping.setdefault(uid, name) != name:
                    raise DatasetError(
                        f"{uid!r} is given both {mapping[uid]!r} and {name!r}",
                        path=split_file,
                        field=column,
                        value=uid,
                    )
        return [mapping.get(getattr(s, attr), "") for s in series]
    raise DatasetError(
        "split file needs a series_instance_uid, study_instance_uid or patient_id column "
        "(or series, study, patient as in an ichkit export's exams.csv)",
        path=split_file,
        field="columns",
        value=list(table.columns),
    )


#: How to accept shared patients where patient IDs do not name patients.
_OPT_OUT = (
    " (if patient IDs do not name patients here: ichkit train --set patient_disjoint=false, "
    "ichkit evaluate --allow-shared-patients)"
)


def split_file_patients(
    split_file: Path,
    series: Sequence[SeriesFiles],
    *,
    strict: bool = True,
    table: pd.DataFrame | None = None,
) -> list[str] | None:
    """Each series' patient as the split file names it (None: the file names no patients).

    An ``ichkit export``'s ``exams.csv`` has ``site`` and ``patient``
    columns: the catalog's patients are per site, so two sites' PatientID
    "12345" are two patients there, and are keyed so here. Series the file
    does not name get ``""`` (then their images' PatientID counts).
    ``table`` is the file already read (:func:`read_split_file`).

    Raises
    ------
    DatasetError
        Rows give one patient two different splits (the file's own test rows
        are checked too, so training sees a leak into a test folder it never
        reads); with ``strict`` false that is a warning.
    """
    if table is None:
        table = read_split_file(split_file)
    patient_col = _first_column(table, _ID_COLUMNS[2][0])
    if patient_col is None or _first_column(table, _SPLIT_COLUMNS) is None:
        return None
    patients = [str(p).strip() for p in table[patient_col].fillna("")]
    sites = [str(x).strip() for x in table["site"].fillna("")] if "site" in table.columns else None
    # a NUL cannot occur in either, so (site, patient) pairs stay apart
    keys = (
        patients if sites is None else [f"{x}\0{p}" for x, p in zip(sites, patients, strict=True)]
    )
    names = _split_names(table, split_file)
    given: dict[str, str] = {}
    clashes: list[tuple[int, str]] = []  # (row, the split given first)
    for k, (key, patient, name) in enumerate(zip(keys, patients, names, strict=True)):
        if patient and name and given.setdefault(key, name) != name:
            clashes.append((k, given[key]))
    if clashes:
        k, first = clashes[0]
        where = "" if sites is None else f" of site {sites[k]!r}"
        more = f" ({len(clashes)} rows in all)" if len(clashes) > 1 else ""
        text = (
            f"the splits are not patient-disjoint: patient {patients[k]!r}{where} is given "
            f"both {first!r} and {names[k]!r}{more}"
        )
        if not strict:
            logger.warning("%s: %s", split_file, text)
        else:
            raise DatasetError(
                text + _OPT_OUT, path=split_file, field=patient_col, value=patients[k]
            )
    by_uid: dict[str, str] = {}
    site_of: dict[str, set[str]] = {}  # PatientID -> the file's keys for it
    for column in (*_ID_COLUMNS[0][0], *_ID_COLUMNS[1][0]):
        if column in table.columns:
            for ids, key, patient in zip(table[column].fillna(""), keys, patients, strict=True):
                for uid in _uids(ids) if patient else ():
                    by_uid.setdefault(uid, key)
    for key, patient in zip(keys, patients, strict=True):
        if patient:
            site_of.setdefault(patient, set()).add(key)

    def key_of(s: SeriesFiles) -> str:
        named = by_uid.get(s.series_instance_uid) or by_uid.get(s.study_instance_uid)
        if named:
            return named
        # a series the file does not name: its PatientID, as the file keys it when
        # the file has that patient at one site only (else it stays apart, unmatched)
        mine = site_of.get(s.patient_id, set())
        return next(iter(mine)) if len(mine) == 1 else ""

    return [key_of(s) for s in series]


def check_patient_disjoint(
    series: Sequence[SeriesFiles],
    names: Sequence[str],
    *,
    patients: Sequence[str] | None = None,
    source: Path | None = None,
    strict: bool = True,
) -> None:
    """Refuse splits that share a patient (``names[i]`` is series *i*'s split, ``""`` none).

    A series' patient is ``patients[i]`` when given and not empty (e.g.
    :func:`split_file_patients`), else its PatientID (its study without one);
    patients that share a study are joined as :func:`assign_splits` joins
    them, so a patient whose exams were sent under two PatientIDs counts
    once. A model evaluated on a patient it was trained on (or picked its
    epoch on) reports figures that do not hold for new patients. With
    ``strict`` false this is a warning.

    Raises
    ------
    DatasetError
        Some patient has series in two splits (the first one is named, with
        one series of each split and how many patients are affected).
    """
    keys = _patient_groups(series, patients)
    seen: dict[str, dict[str, SeriesFiles]] = {}
    for key, name, s in zip(keys, names, series, strict=True):
        if name:
            seen.setdefault(key, {}).setdefault(name, s)
    shared = sorted(key for key, found in seen.items() if len(found) > 1)
    if not shared:
        return
    first = seen[shared[0]]
    one = next(iter(first.values()))
    who = (
        f"patient {one.patient_id!r}"
        if one.patient_id
        else f"the patient (no PatientID) of study {one.study_instance_uid}"
    )
    message = (
        f"the splits are not patient-disjoint: {who} has series in "
        + " and ".join(f"{n} ({first[n].series_instance_uid})" for n in sorted(first))
        + (f"; {len(shared)} patients in all" if len(shared) > 1 else "")
        + "; give each patient (every series of every study) one split"
    )
    if not strict:
        logger.warning("%s: %s", source, message)
        return
    raise DatasetError(message + _OPT_OUT, path=source, field="PatientID", value=one.patient_id)


def _patient_groups(
    series: Sequence[SeriesFiles], patients: Sequence[str] | None = None
) -> list[str]:
    """The key each series is split by: its patient, joined across shared studies.

    The patient is ``patients[i]`` when given and not empty, else the
    series' PatientID. Patients that share a StudyInstanceUID (a re-keyed
    PatientID, an exam sent by two sites) are one group, keyed by the
    smallest of their keys, as ``ichkit split`` groups them; a series
    without either is keyed by its study. A patient alone keeps its own key,
    so ordinary data splits exactly as before.
    """
    from ichkit._unionfind import UnionFind

    own = [
        (patients[i] if patients is not None and patients[i] else "") or s.patient_id
        for i, s in enumerate(series)
    ]

    def node(i: int) -> str:
        return f"p:{own[i]}" if own[i] else f"s:{series[i].study_instance_uid}"

    sets = UnionFind[str]()
    for i, s in enumerate(series):
        sets.union(node(i), f"s:{s.study_instance_uid}")
    best: dict[str, str] = {}
    for i, s in enumerate(series):
        key = own[i] or s.study_instance_uid
        root = sets.find(node(i))
        best[root] = min(best.get(root, key), key)
    return [best[sets.find(node(i))] for i in range(len(series))]


def read_split_file(path: Path) -> pd.DataFrame:
    """A split file's rows, every column as text (:class:`DatasetError` if unreadable)."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read split file: {err}", path=path) from err


def label_arrays(
    series_uids: Sequence[Sequence[str]], table: pd.DataFrame
) -> list[npt.NDArray[np.float32]]:
    """The (slices, 6) labels of each series' images, with one index lookup.

    One ``table.loc`` per series cost ~1.2 ms on RSNA's 752k-row table, about
    25 s for its 21.7k series; one ``get_indexer`` over every image is one pass.

    Raises
    ------
    DatasetError
        An image has no labels (naming it).
    """
    import pandas as pd

    ids = [image_id(u) for uids in series_uids for u in uids]
    rows = table.index.get_indexer(pd.Index(ids))
    if (rows < 0).any():
        missing = ids[int(np.flatnonzero(rows < 0)[0])]
        raise DatasetError(
            f"image {missing!r} has no labels", field="SOPInstanceUID", value=missing
        )
    values = table[list(LABELS)].to_numpy(dtype=np.float32)[rows]
    bounds = np.cumsum([0] + [len(uids) for uids in series_uids])
    return [
        np.ascontiguousarray(values[bounds[k] : bounds[k + 1]]) for k in range(len(series_uids))
    ]
