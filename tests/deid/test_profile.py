"""The profile as data: provenance, PS3.15 Table E.1-1 coverage, loading errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from deid_helpers import table_rows

from ichkit.deid import DEFAULT_PROFILE_PATH, Action, load_profile
from ichkit.errors import ConfigError

# Retained under the options the default profile applies (Table E.1-1 columns
# rtnPatCharsOpt = K for these four; rtnLongModifDatesOpt = C for dates/times).
OPTION_KEPT = {0x00100040, 0x00101010, 0x00101020, 0x00101030}


def test_default_profile_provenance() -> None:
    profile = load_profile()
    assert profile.base["package"] == "grand-challenge-dicom-de-id-procedure"
    assert profile.base["dicom_edition"] == "2025c"
    assert profile.base["sop_class"] == "1.2.840.10008.5.1.4.1.1.2"
    assert profile.default_action is Action.REMOVE
    assert profile.apply_options == (
        "retain_longitudinal_modified_dates",
        "retain_patient_characteristics",
        "clean_descriptors",
    )
    codes = {o.name: o.code for o in profile.options.values()}
    # CID 7050 (PS3.16): the option codes the engine writes.
    assert codes == {
        "retain_longitudinal_modified_dates": "113107",
        "retain_patient_characteristics": "113108",
        "clean_descriptors": "113105",
        "retain_safe_private": "113111",
    }


def test_every_basic_profile_attribute_is_acted_on() -> None:
    """Every Table E.1-1 attribute with Basic action X, Z, D or U is not kept as is,
    except where an applied option says so."""
    profile = load_profile()
    kept = []
    checked = 0
    for row in table_rows():
        if row["basicProfile"] in ("K", "C"):
            continue
        group, element = row["tag"].strip("()").split(",")
        try:
            tag = int(group + element, 16)
        except ValueError:
            continue  # (50XX,XXXX), (60XX,...), private: removed by default / by the private rule
        checked += 1
        action = profile.action_for(tag)
        if action is Action.KEEP and tag not in OPTION_KEPT and not row.get("rtnLongModifDatesOpt"):
            kept.append(row["tag"] + " " + row["name"])
        if action is Action.SHIFT:
            assert row.get("rtnLongModifDatesOpt") == "C", row
        if action is Action.CLEAN:
            assert row.get("cleanDescOpt") == "C", row
    assert checked > 600
    assert kept == []


def test_basic_only_keeps_nothing_from_table() -> None:
    profile = load_profile().with_options([])
    for row in table_rows():
        if row["basicProfile"] in ("K", "C"):
            continue
        group, element = row["tag"].strip("()").split(",")
        try:
            tag = int(group + element, 16)
        except ValueError:
            continue
        assert profile.action_for(tag) is not Action.KEEP, row


def _write(tmp_path: Path, mutate: object) -> Path:
    data = json.loads(DEFAULT_PROFILE_PATH.read_text(encoding="utf-8"))
    mutate(data)  # type: ignore[operator]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_user_profile_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d.update(name="my-site"))
    assert load_profile(path).name == "my-site"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="v0"), r"format: expected format 'ichkit-deid-profile/1'"),
        (lambda d: d["tags"].update({"(0010,0010)": "scramble"}), r"unknown action 'scramble'"),
        (
            lambda d: d["tags"].update({"0010,0010": "keep"}),
            r"expected a tag written \(GGGG,EEEE\)",
        ),
        (lambda d: d.update(apply_options=["nope"]), r"apply_options: unknown option 'nope'"),
        (lambda d: d.pop("accept"), r"accept: missing key"),
        (lambda d: d.update(safe_private=[{"group": "zz"}]), r"safe_private\[0\]"),
    ],
)
def test_bad_profiles_are_config_errors(tmp_path: Path, mutate: object, message: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message):
        load_profile(path)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_profile(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_profile(bad)
