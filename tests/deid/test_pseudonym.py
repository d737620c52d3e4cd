"""Keyed pseudonyms and site keys."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from ichkit.deid import Pseudonymizer, SiteKey, generate_key, read_key
from ichkit.errors import ConfigError

KEY = SiteKey(site="A1", secret=bytes(range(32)))


def test_uid_is_ps35_b2_and_stable() -> None:
    pseudo = Pseudonymizer(KEY)
    uid = pseudo.uid("1.2.840.113619.2.55.3.1")
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", uid)
    assert len(uid) <= 64
    assert uid == Pseudonymizer(KEY).uid("1.2.840.113619.2.55.3.1 ")  # padding ignored
    assert uid != pseudo.uid("1.2.840.113619.2.55.3.2")
    # Keyed: not the plain hash an attacker could recompute.
    plain = int.from_bytes(hashlib.sha256(b"1.2.840.113619.2.55.3.1").digest()[:16], "big")
    assert uid != f"2.25.{plain}"


def test_other_key_unlinkable() -> None:
    other = Pseudonymizer(SiteKey(site="A1", secret=bytes(range(1, 33))))
    pseudo = Pseudonymizer(KEY)
    assert pseudo.uid("1.2.3") != other.uid("1.2.3")
    assert pseudo.patient_id("MRN1") != other.patient_id("MRN1")
    assert pseudo.date_offset_days("MRN1") != other.date_offset_days("MRN1")


def test_patient_id_and_text_lengths() -> None:
    pseudo = Pseudonymizer(KEY)
    pid = pseudo.patient_id("MRN1")
    assert re.fullmatch(r"A1-[0-9A-F]{20}", pid)
    assert len(pseudo.text("ACC123", kind="acc", length=16)) == 16
    offset = pseudo.date_offset_days("MRN1")
    assert -3653 <= offset <= -365
    assert offset == pseudo.date_offset_days("MRN1")


def test_keygen_and_read(tmp_path: Path) -> None:
    path = tmp_path / "k" / "site.key"
    made = generate_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert re.fullmatch(r"S[0-9A-F]{6}", made.site)
    assert read_key(path) == made
    assert made.secret.hex() not in repr(made)
    with pytest.raises(ConfigError, match="key file exists; refusing to overwrite it"):
        generate_key(path)
    with pytest.raises(ConfigError, match="site: site must be 1-16 letters or digits"):
        generate_key(tmp_path / "x.key", site="bad site!")


def test_read_key_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read key file"):
        read_key(tmp_path / "none.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a key file"):
        read_key(bad)
    bad.write_text(json.dumps({"format": "ichkit-deid-key/1", "site": "A", "secret": "00"}))
    with pytest.raises(ConfigError, match=r"secret: secret must be at least 16 bytes"):
        read_key(bad)
