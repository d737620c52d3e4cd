"""Choose one series per study: the non-contrast axial brain series.

When a study holds several series that pass QC (a brain and a bone kernel
reconstruction, thin and thick slices, a post-contrast series), the RSNA 2019
dataset kept the non-contrast axial series reconstructed for brain (soft
tissue) at about 5 mm (Flanders et al. 2020, "Data curation"). The rules are
a ranking, documented in :func:`series_rank`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SeriesCandidate", "choose_series", "is_contrast", "series_rank"]

# POST and WITH only with a contrast word after them: "POST-OP", "POST TRAUMA" and
# "WITH RECON" head CTs are plain ones (post-operative ICH is a core population)
_CONTRAST = re.compile(
    r"(\bC\+|\+C\b|\bW/?\s*CON(TRAST)?\b|\bPOST\s*[-/]?\s*(CON|C\b|GAD|IV\b|INJ)"
    r"|\bCTA\b|ANGIO|\bWITH\s+(IV\s+)?CON)",
    re.I,
)
_NON_CONTRAST = re.compile(r"(\bW/?O\b|WITHOUT|NON[- ]?CON|\bNC\b|C-)", re.I)
#: ContrastBolusAgent values that say "no agent" ("NONE", "NO CONTRAST", "N/A", "-").
_NO_AGENT = re.compile(r"^\s*(NONE\b.*|NO\b.*|NOT\b.*|N/?A|N|NIL|-+|0)\s*$", re.I)
_BONE = re.compile(r"(BONE|\bH[67]\d|\bB[67]\d|SHARP|LUNG)", re.I)
_BRAIN = re.compile(r"(BRAIN|HEAD|CEREBRUM|\bH[2-4]\d|\bJ[34]\d|SOFT|STND|STANDARD)", re.I)


@dataclass(frozen=True, slots=True)
class SeriesCandidate:
    """What selection looks at for one series that passed QC."""

    series_id: int
    n_slices: int
    series_number: int | None = None
    series_description: str | None = None
    convolution_kernel: str | None = None
    contrast_bolus_agent: str | None = None
    slice_thickness: float | None = None


def is_contrast(description: str | None, contrast_bolus_agent: str | None) -> bool:
    """Whether a series looks contrast-enhanced.

    ContrastBolusAgent (0018,0010, PS3.3 C.7.6.4) present, or a
    SeriesDescription naming contrast (``C+``, ``W CONTRAST``, ``POST``, ``CTA``)
    and not its absence (``W/O``, ``WITHOUT``, ``NON-CON``).
    """
    agent = (contrast_bolus_agent or "").strip()
    if agent and not _NO_AGENT.match(agent) and not _NON_CONTRAST.search(agent):
        return True
    text = description or ""
    return bool(_CONTRAST.search(text)) and not _NON_CONTRAST.search(text)


def series_rank(c: SeriesCandidate) -> tuple[int, int, float, int, int]:
    """Sort key (lower is better) of a candidate.

    1. non-contrast before contrast;
    2. brain / soft-tissue reconstruction (description or kernel) before
       bone or lung kernels;
    3. slice thickness closest to 5 mm (unknown counts as 2.5 mm off: after a
       known 5 mm series, so that a thin series without SliceThickness and with
       more slices does not win the tie; before a known 1.25 mm one);
    4. more slices;
    5. lower SeriesNumber.
    """
    text = f"{c.series_description or ''} {c.convolution_kernel or ''}"
    contrast = int(is_contrast(c.series_description, c.contrast_bolus_agent))
    kernel = 2 if _BONE.search(text) else (0 if _BRAIN.search(text) else 1)
    thickness = abs(c.slice_thickness - 5.0) if c.slice_thickness else 2.5
    number = c.series_number if c.series_number is not None else 1 << 30
    return (contrast, kernel, thickness, -c.n_slices, number)


def choose_series(candidates: Sequence[SeriesCandidate]) -> SeriesCandidate | None:
    """Return the best candidate of a study by :func:`series_rank` (None when empty)."""
    if not candidates:
        return None
    return min(candidates, key=lambda c: (series_rank(c), c.series_id))
