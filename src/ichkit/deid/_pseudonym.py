"""Keyed pseudonyms: HMAC-SHA256 with the site key, never plain hashes.

Every pseudonym is ``HMAC-SHA256(secret, domain || 0x00 || value)`` for a fixed
domain string per kind, so the same key gives the same pseudonyms on every run
and machine, and a different key gives unlinkable ones. Without the key a
pseudonym cannot be recomputed from a guessed original (no dictionary attack on
PatientIDs, as there would be with a plain hash).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ichkit.errors import ConfigError

__all__ = ["Pseudonymizer", "SiteKey", "generate_key", "patient_key_of", "read_key"]

logger = logging.getLogger(__name__)

KEY_FORMAT = "ichkit-deid-key/1"
_SITE_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
# Date shifts are whole days between these bounds (about 1 to 10 years back).
_MIN_SHIFT_DAYS = 365
_SPAN_SHIFT_DAYS = 3288


@dataclass(frozen=True)
class SiteKey:
    """A site's secret key and its short site label.

    Attributes
    ----------
    site
        Label used in patient pseudonyms (``<site>-<digest>``), 1-16 letters or digits.
    secret
        32 random bytes.
    """

    site: str
    secret: bytes

    def __repr__(self) -> str:  # never show the secret
        return f"SiteKey(site={self.site!r}, fingerprint={self.fingerprint!r})"

    @property
    def fingerprint(self) -> str:
        """A keyed digest that identifies the key without revealing it."""
        return hmac.new(self.secret, b"fingerprint", hashlib.sha256).hexdigest()[:16]


def generate_key(path: str | os.PathLike[str], *, site: str | None = None) -> SiteKey:
    """Create a new random site key file with mode 0600.

    Parameters
    ----------
    path
        Where to write the key; must not exist.
    site
        Site label; by default ``S`` and 6 hex digits derived from the key.

    Returns
    -------
    SiteKey

    Raises
    ------
    ConfigError
        If the file exists or the site label is invalid.
    """
    secret = secrets.token_bytes(32)
    if site is None:
        site = "S" + hmac.new(secret, b"site", hashlib.sha256).hexdigest()[:6].upper()
    if not _SITE_RE.match(site):
        raise ConfigError("site must be 1-16 letters or digits", field="site", value=site)
    payload = {
        "format": KEY_FORMAT,
        "site": site,
        "secret": secret.hex(),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError("key file exists; refusing to overwrite it", path=target) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(payload, indent=1) + "\n")
    os.chmod(target, 0o600)
    return SiteKey(site=site, secret=secret)


def read_key(path: str | os.PathLike[str]) -> SiteKey:
    """Read a site key file written by :func:`generate_key`.

    Raises
    ------
    ConfigError
        If the file is missing or malformed (the message never shows the secret).
    """
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read key file: {err.strerror}", path=target) from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(f"not a key file (expected JSON {KEY_FORMAT})", path=target) from None
    if not isinstance(data, dict) or data.get("format") != KEY_FORMAT:
        seen = data.get("format") if isinstance(data, dict) else None
        raise ConfigError(
            f"expected format {KEY_FORMAT!r}", path=target, field="format", value=seen
        )
    site = data.get("site")
    if not isinstance(site, str) or not _SITE_RE.match(site):
        raise ConfigError(
            "site must be 1-16 letters or digits", path=target, field="site", value=site
        )
    try:
        secret = bytes.fromhex(str(data.get("secret", "")))
    except ValueError:
        secret = b""
    if len(secret) < 16:
        raise ConfigError(
            "secret must be at least 16 bytes written as hex (value not shown)",
            path=target,
            field="secret",
        )
    mode = target.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "key file %s is readable by others (mode %o); chmod 600 it", target, mode & 0o777
        )
    return SiteKey(site=site, secret=secret)


def patient_key_of(patient_id: str, study_instance_uid: str) -> str:
    """Return the value a patient's pseudonym and date shift are keyed on.

    The PatientID (without padding); a file without one is its own patient,
    keyed ``study:<StudyInstanceUID>``. The engine and the labels mapping
    (:func:`ichkit.deid.map_exams`) both call this, so their pseudonyms agree.
    """
    patient = patient_id.strip("\x00 ")
    study = study_instance_uid.strip("\x00 ")
    return patient or f"study:{study}"


class Pseudonymizer:
    """Keyed pseudonyms for one site key.

    Parameters
    ----------
    key
        The site key.
    """

    def __init__(self, key: SiteKey) -> None:
        self.key = key
        self._uid_cache: dict[str, str] = {}
        # Pseudonyms are pure functions of (key, value): files of one patient,
        # study or series ask for the same ones again, so they are kept (bounded).
        self._patient_cache: dict[str, str] = {}
        self._text_cache: dict[tuple[str, str, int], str] = {}
        self._date_cache: dict[str, int] = {}

    def _digest(self, domain: str, value: str) -> bytes:
        msg = domain.encode("ascii") + b"\x00" + value.encode("utf-8", "surrogateescape")
        return hmac.new(self.key.secret, msg, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """Return the pseudonymous UID ``2.25.<int>`` for ``original`` (PS3.5 B.2).

        The integer is the first 128 bits of the HMAC, as for a UUID-derived UID,
        so it has at most 39 digits and the UID at most 44 characters.
        """
        original = original.strip().rstrip("\x00")
        cached = self._uid_cache.get(original)
        if cached is None:
            number = int.from_bytes(self._digest("uid", original)[:16], "big") or 1
            cached = f"2.25.{number}"
            if len(self._uid_cache) > 65536:
                self._uid_cache.clear()
            self._uid_cache[original] = cached
        return cached

    def patient_id(self, original: str) -> str:
        """Return ``<site>-<20 hex digits>`` for a patient (fits LO, 64 characters)."""
        cached = self._patient_cache.get(original)
        if cached is None:
            digest = self._digest("patient", original.strip()).hex()[:20].upper()
            cached = f"{self.key.site}-{digest}"
            _remember(self._patient_cache, original, cached)
        return cached

    def text(self, original: str, *, kind: str, length: int) -> str:
        """Return a keyed digest of ``original`` in ``length`` upper-case hex characters."""
        key = (kind, original, length)
        cached = self._text_cache.get(key)
        if cached is None:
            cached = self._digest(kind, original.strip()).hex()[:length].upper()
            _remember(self._text_cache, key, cached)
        return cached

    def path_token(self, relative_path: str) -> str:
        """Return ``in-<16 hex>``, the token that stands for an input path in DST's report."""
        return "in-" + self._digest("path", relative_path).hex()[:16]

    def date_offset_days(self, patient: str) -> int:
        """Return the per-patient date shift in days (negative: 1 to 10 years back)."""
        cached = self._date_cache.get(patient)
        if cached is None:
            number = int.from_bytes(self._digest("date", patient.strip())[:8], "big")
            cached = -(_MIN_SHIFT_DAYS + number % _SPAN_SHIFT_DAYS)
            _remember(self._date_cache, patient, cached)
        return cached


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep ``value`` in a bounded cache (cleared when full: pseudonyms are cheap to redo)."""
    if len(cache) > 65536:
        cache.clear()
    cache[key] = value
