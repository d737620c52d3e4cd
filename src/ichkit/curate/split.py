"""Patient-disjoint train / validation / test splits, stratified on labels and site.

Patients are the unit: all exams of a patient go to one subset, so no
patient is in two sets. Each patient is described by a binary vector: the six
exam-level labels (1 when any of the patient's exams is positive) and a
one-hot site. The vectors are split by *iterative stratification* (Sechidis,
Tsoumakas & Vlahavas, "On the stratification of multi-label data", ECML PKDD
2011), which keeps every label's (and site's) share close to the requested
fractions in every subset; it is implemented here with numpy
(:func:`iterative_stratification`), so no extra dependency is needed.

The RSNA 2019 test set was enriched with positive exams (Flanders et al.
2020); ``balance_positive`` asks for a given fraction of patients with
``any = 1`` in the test set: positives and negatives are then split
separately, each stratified.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, insert, select

from ichkit.catalog import Split, SplitMember, Subset, read_exam_labels
from ichkit.errors import CurationError
from ichkit.labels import LABELS

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "SplitConfig",
    "SplitResult",
    "iterative_stratification",
    "make_split",
    "read_split",
    "split_patients",
    "write_split_outputs",
]

logger = logging.getLogger(__name__)

#: Subsets in the order of the fractions handed to the stratifier.
SUBSETS: tuple[str, ...] = (Subset.TRAIN.value, Subset.VAL.value, Subset.TEST.value)


@dataclass(frozen=True, slots=True)
class SplitConfig:
    """Settings of a split (stored with it in the catalog and written beside outputs).

    Parameters
    ----------
    test, val
        Fractions of patients in the test and validation sets (train gets the rest).
    seed
        Seed of the random tie-breaking; the same seed gives the same split.
    balance_positive
        Wanted fraction of patients with ``any = 1`` in the test set, or None
        to keep the catalog's fraction.
    source
        Label source the exam labels come from (None: the only one).
    name
        Name the split is stored under (a split of the same name is replaced).
    stratify_site
        Stratify on site as well as on the labels.
    """

    test: float = 0.2
    val: float = 0.0
    seed: int = 0
    balance_positive: float | None = None
    source: str | None = None
    name: str = "default"
    stratify_site: bool = True

    def __post_init__(self) -> None:
        for name, value in (("test", self.test), ("val", self.val)):
            if not 0.0 <= value < 1.0 or math.isnan(value):
                raise CurationError("must be a fraction in [0, 1)", field=f"--{name}", value=value)
        if self.test + self.val >= 1.0:
            raise CurationError(
                f"test + val = {self.test + self.val:g} leaves no training patients",
                field="--test/--val",
                value=(self.test, self.val),
            )
        if self.balance_positive is not None and not 0.0 < self.balance_positive < 1.0:
            raise CurationError(
                "must be a fraction in (0, 1)",
                field="--balance-positive",
                value=self.balance_positive,
            )


@dataclass(slots=True)
class SplitResult:
    """A split: the subset of each patient and the distributions achieved.

    ``assignment`` maps the catalog's patient id to ``train``, ``val`` or
    ``test``; ``distribution`` has one row per subset (patients, exams,
    images, then for each label the number and fraction of positive exams);
    ``site_distribution`` one row per (subset, site).
    """

    config: SplitConfig
    assignment: dict[int, str]
    distribution: pd.DataFrame
    site_distribution: pd.DataFrame
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The config, distributions and warnings as JSON (stored in the catalog)."""
        return json.dumps(
            {
                "config": asdict(self.config),
                "distribution": json.loads(self.distribution.to_json(orient="records")),
                "site_distribution": json.loads(self.site_distribution.to_json(orient="records")),
                "warnings": self.warnings,
            },
            indent=2,
        )


def iterative_stratification(
    y: npt.NDArray[Any],
    fractions: Sequence[float],
    *,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """Split examples into subsets keeping each label's share (Sechidis et al. 2011, Alg. 1).

    Repeatedly take the label with the fewest examples still unassigned, and
    give each of those examples (in random order) to the subset that most
    lacks that label, ties broken by the subset that most lacks examples,
    then at random. Examples without any label fill the subsets' remaining
    room at random.

    Parameters
    ----------
    y
        (examples, labels) binary matrix.
    fractions
        Wanted share of each subset; they must sum to 1.
    rng
        Random generator (reproducible with a seed).

    Returns
    -------
    numpy.ndarray
        (examples,) subset index of each example.
    """
    import numpy as np

    y = np.asarray(y, dtype=bool)
    n = y.shape[0]
    r = np.asarray(fractions, dtype=np.float64)
    if r.ndim != 1 or len(r) < 1 or (r < 0).any() or not math.isclose(float(r.sum()), 1.0):
        raise CurationError("fractions must be >= 0 and sum to 1", field="fractions", value=r)
    out = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return out
    order = rng.permutation(n)
    y = y[order]
    desired = r * n
    desired_label = np.outer(y.sum(axis=0), r)  # (labels, subsets)
    remaining = np.ones(n, dtype=bool)
    label_left = y.sum(axis=0).astype(np.int64)
    assigned = np.full(n, -1, dtype=np.int64)
    while True:
        live = np.flatnonzero(label_left > 0)
        if live.size == 0:
            break
        label = int(live[np.argmin(label_left[live])])
        members = np.flatnonzero(remaining & y[:, label])
        for i in members:
            want = desired_label[label]
            best = np.flatnonzero(want == want.max())
            if best.size > 1:
                room = desired[best]
                best = best[room == room.max()]
            j = int(best[int(rng.integers(best.size))]) if best.size > 1 else int(best[0])
            assigned[i] = j
            remaining[i] = False
            labels_i = y[i]
            desired_label[labels_i, j] -= 1.0
            desired[j] -= 1.0
            label_left[labels_i] -= 1
    rest = np.flatnonzero(remaining)
    for i in rest:
        best = np.flatnonzero(desired == desired.max())
        j = int(best[int(rng.integers(best.size))]) if best.size > 1 else int(best[0])
        assigned[i] = j
        desired[j] -= 1.0
    out[order] = assigned
    return out


def _patient_units(exams: pd.DataFrame) -> tuple[dict[int, int], int]:
    """Group patients that share a StudyInstanceUID into one unit of the split.

    A study catalogued under two patients (a re-keyed or merged PatientID, an
    exam sent by two sites) must not land in two subsets. Returns patient id →
    unit id (union-find over shared studies) and how many studies join patients.
    """
    from ichkit._unionfind import UnionFind

    sets = UnionFind[int]()
    shared = 0
    for _uid, pids in exams.groupby("study_instance_uid", sort=False)["patient_id"]:
        ids = sorted({int(p) for p in pids})
        sets.find(ids[0])
        for other in ids[1:]:
            sets.union(ids[0], other)
        shared += len(ids) > 1
    return {pid: sets.find(pid) for pid in sets.items()}, shared


def _patient_table(exams: pd.DataFrame, units: dict[int, int]) -> pd.DataFrame:
    """Per unit of patients (see :func:`_patient_units`): site, exams, images, label maxima.

    Ordered by (site, PatientID) of the unit's first patient, not by catalog
    ids, so that a seed gives the same split whatever order the exams were
    ingested in.
    """
    frame = exams.assign(unit=exams["patient_id"].map(units))
    if "patient_key" in frame:
        frame = frame.assign(
            order=frame["site"].astype(str) + "\0" + frame["patient_key"].astype(str)
        )
    else:
        frame = frame.assign(order=frame["patient_id"].astype(str))
    agg: dict[str, Any] = {
        "site": "first",
        "n_images": "sum",
        "study_instance_uid": "count",
        "order": "min",
    }
    agg.update({lab: "max" for lab in LABELS})
    frame = frame.sort_values("order", kind="stable")
    table = frame.groupby("unit", sort=False).agg(agg).sort_values("order", kind="stable")
    return table.rename(columns={"study_instance_uid": "n_exams"})


def split_patients(exams: pd.DataFrame, config: SplitConfig) -> tuple[dict[int, str], list[str]]:
    """Assign each patient to a subset (the pure core of :func:`make_split`).

    Parameters
    ----------
    exams
        One row per exam with ``patient_id``, ``site``, ``n_images``,
        ``study_instance_uid`` and the six labels (as from
        :func:`ichkit.catalog.read_exam_labels`).
    config
        Fractions, seed and positive balance.

    Returns
    -------
    assignment, warnings
        Patient id → subset name, and warnings about rare labels.
    """
    import numpy as np

    units, shared = _patient_units(exams)
    patients = _patient_table(exams, units)  # one row per unit of patients that share studies
    n = len(patients)
    if n == 0:
        raise CurationError("no labelled exams to split; import labels first", field="--source")
    rng = np.random.default_rng(config.seed)
    positive = patients[list(LABELS)].to_numpy(dtype=np.float64) >= 0.5
    columns = [positive]
    if config.stratify_site:
        sites = patients["site"].astype(str).to_numpy()
        names = sorted(set(sites))
        columns.append(np.stack([sites == s for s in names], axis=1))
    y = np.concatenate(columns, axis=1)
    fractions = [1.0 - config.test - config.val, config.val, config.test]
    warnings: list[str] = []
    smallest = min(f for f in fractions if f > 0)
    for i, lab in enumerate(LABELS):
        count = int(positive[:, i].sum())
        if count * smallest < 2:
            warnings.append(
                f"{lab}: {count} positive patient(s); too rare to stratify into subsets of "
                f"{', '.join(f'{f:.0%}' for f in fractions if f > 0)} "
                f"(fewer than 2 expected in the smallest)"
            )
    subset = np.full(n, -1, dtype=np.int64)
    if config.balance_positive is None:
        subset = iterative_stratification(y, fractions, rng=rng)
    else:
        any_pos = positive[:, LABELS.index("any")]
        n_test = round(config.test * n)
        n_pos_test = round(config.balance_positive * n_test)
        n_neg_test = n_test - n_pos_test
        n_pos, n_neg = int(any_pos.sum()), int((~any_pos).sum())
        if n_pos_test > n_pos or n_neg_test > n_neg:
            raise CurationError(
                f"a test set of {n_test} patients with {config.balance_positive:.0%} positive "
                f"needs {n_pos_test} positive and {n_neg_test} negative patients; the catalog "
                f"has {n_pos} and {n_neg}",
                field="--balance-positive",
                value=config.balance_positive,
            )
        test = np.zeros(n, dtype=bool)
        for group, n_group_test in ((any_pos, n_pos_test), (~any_pos, n_neg_test)):
            idx = np.flatnonzero(group)
            if idx.size == 0:
                continue
            share = n_group_test / idx.size
            part = iterative_stratification(y[idx], [1.0 - share, share], rng=rng)
            # the greedy stratification lands a few patients off the count; move
            # that many at random so the test set holds exactly the asked share
            chosen, others = idx[part == 1], idx[part != 1]
            extra = chosen.size - n_group_test
            if extra > 0:
                chosen = np.delete(chosen, rng.choice(chosen.size, extra, replace=False))
            elif extra < 0:
                chosen = np.concatenate([chosen, rng.choice(others, -extra, replace=False)])
            test[chosen] = True
        subset[test] = 2
        pool = np.flatnonzero(~test)
        val_share = min(0.999, config.val * n / max(pool.size, 1))
        part = iterative_stratification(y[pool], [1.0 - val_share, val_share], rng=rng)
        subset[pool] = np.where(part == 1, 1, 0)
    of_unit = {int(u): SUBSETS[int(s)] for u, s in zip(patients.index, subset, strict=True)}
    assignment = {int(pid): of_unit[unit] for pid, unit in units.items()}
    if shared:
        warnings.append(
            f"{shared} StudyInstanceUID(s) are catalogued under more than one patient "
            "(a re-keyed PatientID, or an exam sent by two sites): those patients are "
            "kept in one subset"
        )
    return assignment, warnings


def _distributions(exams: pd.DataFrame, assignment: dict[int, str]) -> tuple[Any, Any]:
    import pandas as pd

    frame = exams.assign(subset=exams["patient_id"].map(assignment))
    frame = frame[frame["subset"].notna()]
    rows = []
    site_rows = []
    for name in SUBSETS:
        part = frame[frame["subset"] == name]
        row: dict[str, Any] = {
            "subset": name,
            "patients": int(part["patient_id"].nunique()),
            "exams": len(part),
            "images": int(part["n_images"].sum()),
        }
        for lab in LABELS:
            pos = int((part[lab] >= 0.5).sum())
            row[f"{lab}_exams"] = pos
            row[f"{lab}_fraction"] = pos / len(part) if len(part) else 0.0
        rows.append(row)
        for site, site_part in part.groupby("site", sort=True):
            site_rows.append(
                {
                    "subset": name,
                    "site": site,
                    "patients": int(site_part["patient_id"].nunique()),
                    "exams": len(site_part),
                    "images": int(site_part["n_images"].sum()),
                    "any_exams": int((site_part["any"] >= 0.5).sum()),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(site_rows)


def _only_source(engine: Engine) -> str:
    from ichkit.catalog import label_sources

    sources = label_sources(engine)
    if len(sources) != 1:
        raise CurationError(
            f"the catalog has {len(sources)} label sources "
            f"({', '.join(n for n, _, _ in sources) or 'none'}); name one with --source",
            field="--source",
            value=None,
        )
    return sources[0][0]


def make_split(
    engine: Engine, config: SplitConfig | None = None, *, replace: bool = False
) -> SplitResult:
    """Split the catalog's labelled patients and store the split.

    Exam labels come from ``config.source``; only exams of selected series
    count when QC selected any (an exam is labelled through its images).

    Parameters
    ----------
    engine
        An open catalog with exam labels.
    config
        Fractions, seed, positive balance, label source and name.
    replace
        Replace a stored split of the same name whose assignment differs.
        Without it such a split is kept and :class:`CurationError` raised:
        a model trained on it, or a test set already scored, would silently
        lose its meaning. A split drawn again with the same assignment (the
        same seed on the same exams) is stored again either way.

    Returns
    -------
    SplitResult
        Assignment, distributions achieved, warnings.

    Raises
    ------
    CurationError
        A split named ``config.name`` exists with another assignment and
        ``replace`` is false.
    """
    config = config or SplitConfig()
    source = config.source or _only_source(engine)
    exams = read_exam_labels(engine, source)
    kept = _studies_qc_kept(engine)
    if kept is not None:
        dropped = int((~exams.index.isin(kept)).sum())
        if dropped:
            logger.info("split: %d exam(s) left out, QC selected none of their series", dropped)
        exams = exams[exams.index.isin(kept)]
    assignment, warnings = split_patients(exams, config)
    for w in warnings:
        logger.warning("%s", w)
    distribution, site_distribution = _distributions(exams, assignment)
    result = SplitResult(
        config=SplitConfig(**{**asdict(config), "source": source}),
        assignment=assignment,
        distribution=distribution,
        site_distribution=site_distribution,
        warnings=warnings,
    )
    with engine.begin() as connection:
        old_id = connection.execute(select(Split.id).where(Split.name == config.name)).scalar()
        stored: dict[int, str] = {}
        if old_id is not None:
            stored = dict(
                connection.execute(
                    select(SplitMember.patient_id, SplitMember.subset).where(
                        SplitMember.split_id == old_id
                    )
                ).all()
            )
        if old_id is not None and stored != assignment and not replace:
            moved = sum(
                stored.get(p) != assignment.get(p) for p in assignment.keys() | stored.keys()
            )
            raise CurationError(
                f"a split named {config.name!r} is already stored and this one differs "
                f"({moved} patient(s) in another subset or not in both); keep both with another "
                "--name (SplitConfig.name), or replace it with --replace (replace=True)",
                field="name",
                value=config.name,
            )
        connection.execute(delete(Split).where(Split.name == config.name))
        split_id = connection.execute(
            insert(Split)
            .values(
                name=config.name,
                config_json=json.dumps(asdict(result.config)),
                report_json=result.to_json(),
            )
            .returning(Split.id)
        ).scalar_one()
        members = [
            {"split_id": split_id, "patient_id": pid, "subset": s} for pid, s in assignment.items()
        ]
        for start in range(0, len(members), 5000):
            connection.execute(insert(SplitMember), members[start : start + 5000])
    logger.info(
        "split %r: %s",
        config.name,
        ", ".join(f"{r.subset} {r.patients} patients" for r in distribution.itertuples()),
    )
    return result


def _studies_qc_kept(engine: Engine) -> set[int] | None:
    """Catalog ids of studies with a series QC selected; None when QC has not run."""
    from ichkit.catalog import Series
    from ichkit.curate.qc import qc_progress

    with engine.connect() as connection:
        if not qc_progress(connection)[0]:
            return None
        rows = connection.execute(
            select(Series.study_id).where(Series.selected.is_(True)).distinct()
        ).scalars()
        return {int(r) for r in rows}


def read_split(engine: Engine, name: str) -> dict[int, str]:
    """Patient id → subset of a stored split.

    Raises
    ------
    CurationError
        No split of that name (the message lists the stored ones).
    """
    with engine.connect() as connection:
        split_id = connection.execute(select(Split.id).where(Split.name == name)).scalar()
        if split_id is None:
            names = connection.execute(select(Split.name).order_by(Split.name)).scalars().all()
            raise CurationError(
                f"no split {name!r}; the catalog has: {', '.join(names) or '(none)'}",
                field="--split",
                value=name,
            )
        rows = connection.execute(
            select(SplitMember.patient_id, SplitMember.subset).where(
                SplitMember.split_id == split_id
            )
        )
        return {int(p): str(s) for p, s in rows}


def write_split_outputs(result: SplitResult, out: str | os.PathLike[str]) -> list[Path]:
    """Write ``split_config.json``, ``split_distribution.csv`` and ``split_sites.csv``."""
    from ichkit._atomic import atomic_write_text

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        folder / "split_config.json",
        folder / "split_distribution.csv",
        folder / "split_sites.csv",
    ]
    atomic_write_text(paths[0], json.dumps(asdict(result.config), indent=2) + "\n")
    atomic_write_text(paths[1], result.distribution.to_csv(index=False))
    atomic_write_text(paths[2], result.site_distribution.to_csv(index=False))
    return paths
