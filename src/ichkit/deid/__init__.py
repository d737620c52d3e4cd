"""De-identification of head CT DICOM (DICOM PS3.15 Annex E), run at each site.

The rules are data (:func:`load_profile`, ``profiles/default.json``: the Basic
Application Level Confidentiality Profile for CT Image Storage with the Retain
Longitudinal Temporal Information Modified Dates, Retain Patient
Characteristics and Clean Descriptors options); pseudonyms are keyed with the
site key (HMAC-SHA256), so the same key gives the same output everywhere and a
different key gives unlinkable output.

Examples
--------
>>> from ichkit.deid import DeidConfig, deidentify_tree, generate_key, map_labels_file
>>> key = generate_key("site.key")                       # doctest: +SKIP
>>> config = DeidConfig(workers=2)
>>> summary = deidentify_tree("in", "out", key="site.key", config=config)  # doctest: +SKIP
>>> summary.exit_status                                  # doctest: +SKIP
0
>>> map_labels_file("truth.csv", "truth-deid.csv", key="site.key")  # doctest: +SKIP
"""

from __future__ import annotations

from ichkit.deid._batch import DeidSummary, FileOutcome, deidentify_file, deidentify_tree
from ichkit.deid._config import DeidConfig
from ichkit.deid._engine import DeidResult, Reason, Status, check_accept, deidentify_dataset
from ichkit.deid._labelmap import (
    LabelMapSummary,
    map_exams,
    map_labels,
    map_labels_file,
    original_sop_instance_uid,
)
from ichkit.deid._profile import DEFAULT_PROFILE_PATH, AcceptRules, Action, Profile, load_profile
from ichkit.deid._pseudonym import Pseudonymizer, SiteKey, generate_key, read_key
from ichkit.deid._store import MappingRow, MappingStore, store_path_for

__all__ = [
    "DEFAULT_PROFILE_PATH",
    "AcceptRules",
    "Action",
    "DeidConfig",
    "DeidResult",
    "DeidSummary",
    "FileOutcome",
    "LabelMapSummary",
    "MappingRow",
    "MappingStore",
    "Profile",
    "Pseudonymizer",
    "Reason",
    "SiteKey",
    "Status",
    "check_accept",
    "deidentify_dataset",
    "deidentify_file",
    "deidentify_tree",
    "generate_key",
    "load_profile",
    "lookup",
    "map_exams",
    "map_labels",
    "map_labels_file",
    "original_sop_instance_uid",
    "read_key",
    "store_path_for",
]


def lookup(key: str, value: str, *, store: str | None = None) -> list[MappingRow]:
    """Find ``value`` (an original or a pseudonym) in the mapping store beside ``key``.

    Parameters
    ----------
    key
        The site key file; its store is ``<key>.mapping.sqlite``.
    value
        A PatientID, UID, accession number, input path, or any of their pseudonyms.
    store
        Another mapping store file.

    Returns
    -------
    list of MappingRow
        Empty when nothing matches.

    Raises
    ------
    ichkit.errors.ConfigError
        If the store does not exist.
    """
    path = store if store is not None else store_path_for(key)
    with MappingStore(path, create=False) as opened:
        return opened.lookup(value)
