"""Tests of ichkit.labels: the RSNA labels CSV (read, write, long ↔ wide)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ichkit import labels
from ichkit.errors import LabelsError
from ichkit.labels import (
    LABEL_WEIGHTS,
    LABELS,
    PROBABILITY_FORMAT,
    SUBTYPES,
    LabelRows,
    exam_labels,
    image_id,
    label_matrix,
    read_label_rows,
    read_labels,
    read_labels_long,
    row_id,
    to_long,
    to_wide,
    write_labels,
)


def _rows(image: str, values: tuple[object, ...]) -> list[str]:
    return [f"ID_{image}_{lab},{v}" for lab, v in zip(LABELS, values, strict=True)]


def _write(path: Path, lines: list[str], *, newline: str = "\n", header: str = "ID,Label") -> Path:
    path.write_text(newline.join([header, *lines]) + newline, encoding="utf-8", newline="")
    return path


def _quoted(path: Path, lines: list[str]) -> Path:
    """Same content, every field quoted: forces the csv-module parser."""
    out = ['"ID","Label"']
    for line in lines:
        rid, _, value = line.rpartition(",")
        out.append(f'"{rid}","{value}"')
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


A = ("0", "1", "0", "0", "0", "1")
B = ("0", "0", "0", "0", "0", "0")


# ------------------------------------------------------------------ constants, ids


def test_label_order_and_weights() -> None:
    assert SUBTYPES == (
        "epidural",
        "intraparenchymal",
        "intraventricular",
        "subarachnoid",
        "subdural",
    )
    assert (*SUBTYPES, "any") == LABELS
    assert LABEL_WEIGHTS == (1.0, 1.0, 1.0, 1.0, 1.0, 2.0)


@pytest.mark.parametrize(
    ("uid", "expected_image", "expected_row"),
    [
        ("ID_abc", "abc", "ID_abc_any"),
        ("1.2.3", "1.2.3", "ID_1.2.3_any"),
        ("  ID_63eb1e259 ", "63eb1e259", "ID_63eb1e259_any"),
        ("1.2.840.113619.2.55_3", "1.2.840.113619.2.55_3", "ID_1.2.840.113619.2.55_3_any"),
    ],
)
def test_image_id_and_row_id(uid: str, expected_image: str, expected_row: str) -> None:
    assert image_id(uid) == expected_image
    assert row_id(uid, "any") == expected_row


def test_row_id_unknown_label() -> None:
    with pytest.raises(LabelsError, match=r"label: unknown label 'anything'; expected one of"):
        row_id("abc", "anything")


# ------------------------------------------------------------------------- reading


def test_read_long_columns_and_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", [*_rows("a", A), *_rows("1.2.3_4", B)])
    long = read_labels_long(path)
    assert list(long.columns) == ["line", "image_id", "label", "label_index", "value"]
    assert long["line"].tolist() == list(range(2, 14))
    assert long["image_id"].tolist() == ["a"] * 6 + ["1.2.3_4"] * 6
    assert long["label"].tolist() == list(LABELS) * 2
    assert long["label_index"].tolist() == list(range(6)) * 2
    assert long["value"].tolist() == [float(v) for v in A + B]


@pytest.mark.parametrize(
    "variant", ["plain", "crlf", "bom", "no-final-newline", "blank-lines", "spaces", "quoted"]
)
def test_read_variants_agree(tmp_path: Path, variant: str) -> None:
    """Every accepted spelling of the same file reads to the same table."""
    lines = [*_rows("a", A), *_rows("b", ("0.25", "1e-05", "0.5", "0", "1", "0.125"))]
    reference = read_labels(_write(tmp_path / "ref.csv", lines))
    path = tmp_path / f"{variant}.csv"
    if variant == "plain":
        _write(path, lines)
    elif variant == "crlf":
        _write(path, lines, newline="\r\n")
    elif variant == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "ref.csv").read_bytes())
    elif variant == "no-final-newline":
        path.write_text("\n".join(["ID,Label", *lines]), encoding="utf-8")
    elif variant == "blank-lines":
        path.write_text("ID,Label\n\n" + "\n".join(lines) + "\n\n\n", encoding="utf-8")
    elif variant == "spaces":
        path.write_text(
            "ID, Label\n" + "\n".join(line.replace(",", ", ") for line in lines) + "\n",
            encoding="utf-8",
        )
    else:
        _quoted(path, lines)
    pd.testing.assert_frame_equal(read_labels(path), reference)


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("ID,Label\n\nID_a_any,0\n\nID_a_epidural,x\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"t\.csv: line 5: Label 'x' of 'ID_a_epidural'"):
        read_labels_long(path)


def test_fast_and_general_parsers_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = [f"{x:09x}" for x in rng.integers(0, 16**9, 300)] + ["1.2.840.10008.5.1.4.1.1.2"]
    images += ["x" * 70, "with_under_score", "ID_double"]
    values = rng.random((len(images), 6))
    lines = [
        f"ID_{im}_{lab},{float(v)!r}"
        for im, row in zip(images, values, strict=True)
        for lab, v in zip(LABELS, row, strict=True)
    ]
    order = rng.permutation(len(lines))
    lines = [lines[i] for i in order]
    data = _write(tmp_path / "t.csv", lines).read_bytes()
    fast = labels._parse_fast(data, tmp_path / "t.csv")
    general = labels._parse_general(data, tmp_path / "t.csv")
    assert fast is not None
    for name in ("line", "image", "label", "value", "images"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(general, name), err_msg=name)
    assert fast.images[0] == images[order[0] // 6]
    assert "ID_double" in fast.images.tolist()


def test_values_parse_exactly_like_float(tmp_path: Path) -> None:
    """The vectorised decimal parser gives float(text) bit for bit."""
    rng = np.random.default_rng(7)
    numbers = np.concatenate(
        [rng.random(4000), rng.random(1000) * 1e-3, rng.random(500) * 1e-6, [0.0, 1.0, 0.5]]
    )
    texts = [repr(float(x)) for x in numbers]
    texts += [f"{x:.6f}" for x in numbers[:500]] + [f"{x:.20f}" for x in numbers[:500]]
    texts += [f"{x:.24f}" for x in numbers[:200]]
    texts += ["0", "1", "1.0", "0.0", "1.", ".5", "5", "2.5", "0.1e1", "1.000000000000000000000"]
    texts += ["0.99999999999999999999", "0.000000000000000000001", "1.0000000000000000000001"]
    images = [f"i{k}" for k in range(len(texts))]
    lines = [f"ID_{im}_any,{t}" for im, t in zip(images, texts, strict=True)]
    rows = read_label_rows(_write(tmp_path / "v.csv", lines))
    expected = np.asarray([float(t) for t in texts])
    np.testing.assert_array_equal(rows.value, expected)


def test_halfway_detection_both_ways() -> None:
    """The x87 bit test and the neighbour test agree on exact midpoints and others."""
    rng = np.random.default_rng(3)
    nearest = rng.random(1000) + 1e-3
    gap = (np.nextafter(nearest, np.inf) - nearest).astype(np.longdouble)
    mid = nearest.astype(np.longdouble) + gap / 2
    off = nearest.astype(np.longdouble) + gap / 3
    extended = np.concatenate([mid, off])
    rounded = extended.astype(np.float64)
    fast = labels._halfway(extended, rounded)
    if np.finfo(np.longdouble).nmant < 63:
        pytest.skip("long double is not wider than double here")
    rest = extended - rounded.astype(np.longdouble)
    up = np.nextafter(rounded, np.inf).astype(np.longdouble) - rounded
    down = rounded - np.nextafter(rounded, -np.inf).astype(np.longdouble)
    generic = (rest != 0) & ((2 * rest == up) | (-2 * rest == down))
    np.testing.assert_array_equal(fast, generic)
    assert fast[:1000].all() and not fast[1000:].any()


def test_nan_and_empty_cells_read_as_nan(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["ID_a_any,nan", "ID_a_epidural,", "ID_a_subdural,NaN"])
    assert np.isnan(read_labels_long(path)["value"]).all()


def test_rows_of_an_image_need_not_be_together(tmp_path: Path) -> None:
    lines = [*_rows("a", A), *_rows("b", B)]
    shuffled = [lines[i] for i in (11, 0, 5, 6, 1, 2, 7, 3, 8, 4, 9, 10)]
    wide = read_labels(_write(tmp_path / "s.csv", shuffled))
    assert wide.index.tolist() == ["b", "a"]
    ref = read_labels(_write(tmp_path / "r.csv", lines))
    pd.testing.assert_frame_equal(wide.loc[["a", "b"]], ref)


# ------------------------------------------------------------------- read errors


@pytest.mark.parametrize("parser", ["fast", "general"])
@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        (["ID_a_any,0", "foo,1"], r"line 3: ID 'foo' is not of the form ID_<image>_<label>"),
        (["ID__any,0"], r"line 2: ID 'ID__any' is not of the form"),
        (["IX_a_any,0"], r"line 2: ID 'IX_a_any' is not of the form"),
        (["ID_a_epidurall,0"], r"line 2: unknown label 'epidurall' in ID 'ID_a_epidurall'"),
        (["ID_a_Any,0"], r"line 2: unknown label 'Any'"),
        (["ID_a_any,0", "ID_a_epidural,0", "ID_a_subdural,abc"], r"line 4: Label 'abc' of"),
        (["ID_a_any,1_0"], r"line 2: Label '1_0' of 'ID_a_any' is not a number"),
        (["ID_a_any,0,1"], r"line 2: expected 2 fields \(ID,Label\), found 3"),
        # the earliest line wins, whatever the kind of problem
        (["ID_a_any,0", "ID_a_subdural,x", "ID_a_foo,0"], r"line 3: Label 'x'"),
    ],
)
def test_read_errors_name_file_line_value(
    tmp_path: Path, parser: str, lines: list[str], pattern: str
) -> None:
    path = tmp_path / "bad.csv"
    if parser == "fast":
        _write(path, lines)
    else:
        path.write_text("ID,Label\n" + "\n".join(lines) + "\n \n", encoding="utf-8")
    with pytest.raises(LabelsError, match=rf"bad\.csv: {pattern}"):
        read_labels_long(path)


def test_read_errors_file_level(tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match=r"missing\.csv: file not found"):
        read_labels(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(LabelsError, match=r"empty\.csv: file is empty; expected the header"):
        read_labels(tmp_path / "empty.csv")
    _write(tmp_path / "hdr.csv", ["ID_a_any,0"], header="Id,Value")
    with pytest.raises(LabelsError, match=r"hdr\.csv: line 1: header is 'Id,Value'; expected"):
        read_labels(tmp_path / "hdr.csv")
    (tmp_path / "latin.csv").write_bytes(b"ID,Label\nID_\xe9_any,0\n")
    with pytest.raises(LabelsError, match=r"latin\.csv: not a UTF-8 text file"):
        read_labels(tmp_path / "latin.csv")
    with pytest.raises(LabelsError, match=r"cannot read file"):
        read_labels(tmp_path)


def test_non_strict_keeps_first_problem(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", ["ID_a_any,0", "ID_a_foo,0", "bar,1"])
    rows = read_label_rows(path, strict=False)
    assert rows.problem is not None
    assert rows.problem.line == 3
    assert rows.image.tolist() == [0, -1, -1]
    assert rows.label.tolist() == [5, -1, -1]


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        (
            [*_rows("a", A), "ID_a_any,0"],
            r"lines 7 and 8: conflicting duplicate rows for ID_a_any: "
            r"line 7 says 1, line 8 says 0",
        ),
        ([*_rows("a", ("0", "0", "0", "0", "0", "1.5"))], r"line 7: value of ID_a_any 1\.5 is"),
        ([*_rows("a", ("0", "0", "nan", "0", "0", "1"))], r"line 4: value of ID_a_intravent"),
        ([*_rows("a", A)[:5]], r"ID: image 'a' has no row for label\(s\) any; every image"),
        (
            [*_rows("a", A)[:5], "ID_b_any,-0.5"],
            r"line 7: value of ID_b_any -0\.5 is outside \[0, 1\]",
        ),
    ],
)
def test_wide_errors(tmp_path: Path, lines: list[str], pattern: str) -> None:
    path = _write(tmp_path / "w.csv", lines)
    with pytest.raises(LabelsError, match=rf"w\.csv: {pattern}"):
        read_labels(path)


def test_identical_duplicates_are_dropped(tmp_path: Path) -> None:
    lines = [*_rows("a", A), *_rows("b", B), *_rows("a", A), "ID_b_any,0"]
    wide = read_labels(_write(tmp_path / "d.csv", lines))
    assert wide.index.tolist() == ["a", "b"]
    np.testing.assert_array_equal(label_matrix(wide), [[float(v) for v in A], [0.0] * 6])


def test_incomplete_allowed_when_not_required(tmp_path: Path) -> None:
    wide = read_labels(_write(tmp_path / "i.csv", _rows("a", A)[:4]), require_complete=False)
    assert np.isnan(label_matrix(wide)[0, 4:]).all()


# ------------------------------------------------------------------- long ↔ wide


def test_long_wide_round_trip(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", [*_rows("a", A), *_rows("b", B)])
    long = read_labels_long(path)
    wide = to_wide(long)
    back = to_long(wide)
    assert back["ID"].tolist()[:2] == ["ID_a_epidural", "ID_a_intraparenchymal"]
    assert back["Label"].tolist() == [float(v) for v in A + B]
    # a long table with label names only (no label_index, no line) works too
    named = long[["image_id", "label", "value"]]
    pd.testing.assert_frame_equal(to_wide(named), wide)
    assert isinstance(read_label_rows(path), LabelRows)
    pd.testing.assert_frame_equal(to_wide(read_label_rows(path)), wide)


def test_to_wide_unknown_label_name() -> None:
    long = pd.DataFrame({"image_id": ["a"], "label": ["bogus"], "value": [0.0], "line": [9]})
    with pytest.raises(LabelsError, match=r"x\.csv: line 9: unknown label 'bogus'"):
        to_wide(long, path="x.csv")


def test_missing_columns_error() -> None:
    wide = pd.DataFrame({"any": [0.0]}, index=["a"])
    with pytest.raises(LabelsError, match=r"columns: labels table lacks column\(s\) epidural"):
        to_long(wide)


# ------------------------------------------------------------------------- writing


def test_write_read_round_trip_binary(tmp_path: Path) -> None:
    wide = pd.DataFrame(
        [[0, 1, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]], index=["ID_abc", "1.2.3"], columns=list(LABELS)
    ).astype(float)
    path = write_labels(tmp_path / "out.csv", wide)
    text = path.read_text(encoding="utf-8").splitlines()
    assert text[:3] == ["ID,Label", "ID_abc_epidural,0", "ID_abc_intraparenchymal,1"]
    assert text[7:9] == ["ID_1.2.3_epidural,0", "ID_1.2.3_intraparenchymal,0"]
    back = read_labels(path)
    assert back.index.tolist() == ["abc", "1.2.3"]
    np.testing.assert_array_equal(label_matrix(back), label_matrix(wide))


def test_write_read_round_trip_floats_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    table = rng.random((500, 6)) ** 3
    table[0, 0], table[0, 1] = 0.0, 1.0
    wide = pd.DataFrame(table, index=[f"img{i}" for i in range(500)], columns=list(LABELS))
    back = read_labels(write_labels(tmp_path / "f.csv", wide))
    np.testing.assert_array_equal(label_matrix(back), table)
    six = read_labels(write_labels(tmp_path / "g.csv", wide, float_format="%.6f"))
    np.testing.assert_allclose(label_matrix(six), table, atol=5e-7)
    assert "ID_img0_any," in (tmp_path / "g.csv").read_text(encoding="utf-8")


def test_probability_format_gives_float32_back(tmp_path: Path) -> None:
    """Predicted probabilities (float32 sigmoids) survive the file exactly, near 1 too."""
    rng = np.random.default_rng(1)
    logits = np.concatenate([rng.normal(0, 8, 594), [15.0, 16.0, 17.0, -20.0, -30.0, 0.0]])
    probs = (1.0 / (1.0 + np.exp(-logits.astype(np.float32)))).astype(np.float32)
    assert float(probs[-6]) > 0.9999995  # the old "%.6g" wrote this as 1
    table = probs.reshape(100, 6).astype(np.float64)
    wide = pd.DataFrame(table, index=[f"img{i}" for i in range(100)], columns=list(LABELS))
    path = write_labels(tmp_path / "p.csv", wide, float_format=PROBABILITY_FORMAT)
    back = label_matrix(read_labels(path))
    np.testing.assert_array_equal(back.astype(np.float32), probs.reshape(100, 6))
    assert "ID_img99_epidural,1\n" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("index", "value", "pattern"),
    [
        (["a", "b"], np.nan, r"Label: value nan of image 'b' label 'any' is not in \[0, 1\]"),
        (["a", "b"], 2.0, r"Label: value 2\.0 of image 'b' label 'any'"),
        (["a", "ID_a"], 0.0, r"image_id: image 'a' appears twice"),
        (["a", "b,c"], 0.0, r"image_id: image id 'b,c' cannot be written"),
        (["a", ""], 0.0, r"image_id: image id '' cannot be written"),
    ],
)
def test_write_errors(tmp_path: Path, index: list[str], value: float, pattern: str) -> None:
    table = np.zeros((2, 6))
    table[1, 5] = value
    wide = pd.DataFrame(table, index=index, columns=list(LABELS))
    with pytest.raises(LabelsError, match=rf"out\.csv: {pattern}"):
        write_labels(tmp_path / "out.csv", wide)
    assert not (tmp_path / "out.csv").exists()


def test_exam_labels_max_and_missing() -> None:
    wide = pd.DataFrame(
        [[0, 1, 0, 0, 0, 1], [1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0]],
        index=["a", "b", "c"],
        columns=list(LABELS),
    ).astype(float)
    exams = exam_labels(wide, {"a": "e1", "b": "e1", "c": "e2"})
    assert exams.index.tolist() == ["e1", "e2"]
    assert label_matrix(exams)[0].tolist() == [1, 1, 0, 0, 0, 1]
    with pytest.raises(LabelsError, match=re.escape("image_id: image 'c' has no exam")):
        exam_labels(wide, {"a": "e1", "b": "e1"})


def test_value_problem_message_is_nan_aware(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.csv", _rows("a", ("0", "0", "0", "0", "0", "")))
    with pytest.raises(LabelsError, match=r"line 7: value of ID_a_any is NaN \(empty or 'nan'\)"):
        read_labels(path)
    assert math.isnan(read_labels_long(path)["value"].iloc[-1])


@pytest.mark.parametrize("kind", ["probabilities", "binary"])
@pytest.mark.parametrize("float_format", [None, "%.6g"])
def test_write_label_matrix_writes_the_bytes_of_write_labels(
    tmp_path: Path, kind: str, float_format: str | None
) -> None:
    from ichkit.labels import write_label_matrix

    rng = np.random.default_rng(5)
    table = rng.random((7, len(LABELS)))
    if kind == "binary":
        table = (table > 0.5).astype(np.float64)
    images = [f"ID_{i:04x}ab" if i == 3 else f"{i:04x}ab" for i in range(7)]
    wide = pd.DataFrame(table, index=images, columns=list(LABELS))
    a = write_labels(tmp_path / "a.csv", wide, float_format=float_format)
    b = write_label_matrix(tmp_path / "b.csv", images, table, float_format=float_format)
    assert a.read_bytes() == b.read_bytes()


def test_write_label_matrix_errors_name_the_field(tmp_path: Path) -> None:
    from ichkit.labels import write_label_matrix

    with pytest.raises(LabelsError, match=r"\(2, 6\) table") as err:
        write_label_matrix(tmp_path / "x.csv", ["a", "b"], np.zeros((2, 5)))
    assert err.value.field == "table"
    with pytest.raises(LabelsError, match="not in") as err:
        write_label_matrix(tmp_path / "x.csv", ["a", "b"], np.full((2, 6), 1.5))
    assert err.value.field == "Label" and err.value.value == 1.5
    with pytest.raises(LabelsError, match="twice"):
        write_label_matrix(tmp_path / "x.csv", ["a", "ID_a"], np.zeros((2, 6)))
    assert not (tmp_path / "x.csv").exists()
