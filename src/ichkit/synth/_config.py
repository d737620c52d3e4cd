"""The frozen settings of a synthetic dataset (:class:`SynthConfig`).

One config describes one dataset completely: the same config (and the same
ichkit version) gives the same bytes. It is saved as ``synth-config.json``
beside the outputs. Run options that do not change the bytes (worker count,
progress bar) are not part of it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ichkit.errors import ConfigError
from ichkit.labels import SUBTYPES

__all__ = ["RSNA_SUBTYPE_WEIGHTS", "SynthConfig"]

#: Relative frequency of each subtype among hemorrhages, in SUBTYPES order
#: (epidural, intraparenchymal, intraventricular, subarachnoid, subdural).
#: From the positive image counts of the RSNA 2019 stage-1 training labels
#: (3,145 / 36,118 / 26,205 / 32,564 / 47,166), rounded.
RSNA_SUBTYPE_WEIGHTS: tuple[float, ...] = (0.022, 0.249, 0.180, 0.224, 0.325)


@dataclass(frozen=True)
class SynthConfig:
    """Settings of a synthetic head CT dataset.

    Parameters
    ----------
    exams
        Number of exams (one axial CT series each, plus a scout and a dose report).
    seed
        Master seed; every exam draws from its own child seed
        (``numpy.random.SeedSequence(seed, spawn_key=(1, exam))``), so an exam
        does not depend on the worker count or the order of generation.
    size
        Rows and columns of each axial image (pixels). Pixel spacing is
        0.42–0.50 mm at 512 and scales so that the field of view stays 215–256 mm.
    slices
        Slices per exam; None draws the count from the head height at
        ``slice_thickness`` (28–38 at 5 mm). With ``slices`` set and
        ``slice_thickness`` None, the thickness is the head coverage / slices.
    slice_thickness
        Slice thickness = spacing in mm (None: 5 mm, or derived from ``slices``).
    sites
        Number of sites; site *i* uses vendor profile *i* modulo the 5 profiles.
    prevalence
        Probability that an exam holds a hemorrhage (RSNA: about 0.4).
    subtype_weights
        Relative frequency of each subtype among hemorrhages (SUBTYPES order).
    max_kinds
        Largest number of subtypes in one positive exam (1–3 drawn).
    min_lesion_area_mm2
        An image is positive for a subtype when that subtype's blood covers at
        least this area in it (pixels where more than half the slab is blood).
    masks
        Also write per-slice lesion masks (``OUT/masks/<series uid>.npz``).
    repeat_patient_fraction
        Fraction of exams that are a second study of an earlier patient at the
        same site (for patient-disjoint splits).
    scout, dose_report
        Also write a lateral scout (localizer) and a dose report Secondary
        Capture with burned-in text per exam (no truth rows).
    """

    exams: int = 10
    seed: int = 0
    size: int = 512
    slices: int | None = None
    slice_thickness: float | None = None
    sites: int = 3
    prevalence: float = 0.4
    subtype_weights: tuple[float, ...] = RSNA_SUBTYPE_WEIGHTS
    max_kinds: int = 3
    min_lesion_area_mm2: float = 6.0
    masks: bool = False
    repeat_patient_fraction: float = 0.1
    scout: bool = True
    dose_report: bool = True
    version: int = field(default=1)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subtype_weights", tuple(float(x) for x in self.subtype_weights))
        _check_int("exams", self.exams, 1, 1_000_000)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_int("size", self.size, 32, 2048)
        if self.slices is not None:
            _check_int("slices", self.slices, 2, 1000)
        if self.slice_thickness is not None and not (
            math.isfinite(self.slice_thickness) and 0.5 <= self.slice_thickness <= 20.0
        ):
            raise ConfigError(
                f"must be between 0.5 and 20 mm; got {self.slice_thickness!r}",
                field="--thickness",
                value=self.slice_thickness,
            )
        _check_int("sites", self.sites, 1, 99)
        if not (math.isfinite(self.prevalence) and 0.0 <= self.prevalence <= 1.0):
            raise ConfigError(
                f"must lie in [0, 1]; got {self.prevalence!r}",
                field="--prevalence",
                value=self.prevalence,
            )
        w = self.subtype_weights
        if len(w) != len(SUBTYPES) or any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
            raise ConfigError(
                f"must be {len(SUBTYPES)} non-negative numbers "
                f"({', '.join(SUBTYPES)}) with a positive sum; got {w!r}",
                field="subtype_weights",
                value=w,
            )
        _check_int("max_kinds", self.max_kinds, 1, len(SUBTYPES))
        if not (math.isfinite(self.min_lesion_area_mm2) and self.min_lesion_area_mm2 >= 0):
            raise ConfigError(
                f"must be >= 0; got {self.min_lesion_area_mm2!r}",
                field="min_lesion_area_mm2",
                value=self.min_lesion_area_mm2,
            )
        if not (0.0 <= self.repeat_patient_fraction <= 0.9):
            raise ConfigError(
                f"must lie in [0, 0.9]; got {self.repeat_patient_fraction!r}",
                field="repeat_patient_fraction",
                value=self.repeat_patient_fraction,
            )

    # -- serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["subtype_weights"] = list(self.subtype_weights)
        return out

    def to_json(self) -> str:
        """The settings as stable, pretty JSON text (sorted keys, trailing newline)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """Build a config from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown synth setting(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(names))}",
                field=unknown[0],
                value=data[unknown[0]],
            )
        values = dict(data)
        if "subtype_weights" in values:
            values["subtype_weights"] = tuple(values["subtype_weights"])
        return cls(**values)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SynthConfig:
        """Read a ``synth-config.json`` written by :func:`~ichkit.synth.write_dataset`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ConfigError("file not found", path=path) from err
        except json.JSONDecodeError as err:
            raise ConfigError(f"not valid JSON: {err}", path=path) from err
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object", path=path, value=type(data).__name__)
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(err.reason, path=path, field=err.field, value=err.value) from err


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"must be an integer from {low} to {high}; got {value!r}",
            field=f"--{name.replace('_', '-')}",
            value=value,
        )
