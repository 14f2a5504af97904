"""The sample sheet: reading, typing from its schema, validation, per-sample metadata and
overrides, stale checkpoints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from scingest.errors import ScingestError
from scingest.sheet import (
    SHEET_SCHEMA_PATH,
    read_sample_sheet,
    sample_metadata,
    validate_rows,
)

SHEET_SCHEMA = yaml.safe_load(SHEET_SCHEMA_PATH.read_text())


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x")


@pytest.mark.parametrize("sep", ["\t", ","])
def test_sheet_tsv_and_csv(tmp_path, sep):
    touch(tmp_path / "d", "a.csv.gz", "b.txt")
    suffix = ".csv" if sep == "," else ".tsv"
    sheet_path = tmp_path / f"sheet{suffix}"
    sheet_path.write_text(
        sep.join(["sample", "path", "format", "donor", "batch"])
        + "\n"
        + sep.join(["S1", str(tmp_path / "d/a.csv.gz"), "", "7", "x"])
        + "\n"
        + sep.join(["S2", str(tmp_path / "d/b.txt"), "tsv", "8", ""])
        + "\n"
    )
    sheet = read_sample_sheet(sheet_path)
    assert sheet["format"].tolist() == ["csv", "tsv"]
    assert sheet["donor"].tolist() == [7, 8]
    assert sample_metadata(sheet, "S1") == {"donor": 7, "batch": "x"}
    # an empty cell is a missing value, so every checkpoint has the same obs columns
    assert sample_metadata(sheet, "S2") == {"donor": 8, "batch": None}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["bad name", "{a}"]], r"line 2: sample name 'bad name' may contain only"),
        ([["../x", "{a}"]], r"line 2: sample name '../x' may contain only"),
        ([["..", "{a}"]], r"line 2: sample name '..' may contain only"),
        ([[".hidden", "{a}"]], r"may not start with '\.'"),
        ([["S1", "{a}"], ["S2", "missing.csv"]], r"line 3: path 'missing.csv' of sample 'S2'"),
        ([["S1", "{a}"], ["S1", "{a}"]], r"sample name 'S1' is given by more than one input"),
    ],
)
def test_sheet_errors_name_line(tmp_path, rows, message):
    touch(tmp_path, "a.csv")
    text = "sample\tpath\n" + "".join(f"{s}\t{p.format(a=tmp_path / 'a.csv')}\n" for s, p in rows)
    (tmp_path / "sheet.tsv").write_text(text)
    with pytest.raises(ScingestError, match=message) as err:
        read_sample_sheet(tmp_path / "sheet.tsv")
    assert "sheet.tsv" in str(err.value)


def test_sheet_unknown_format_and_reserved_columns(tmp_path):
    touch(tmp_path, "a.csv")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"sample\tpath\tformat\nS1\t{tmp_path / 'a.csv'}\tgct\n")
    with pytest.raises(ScingestError, match=r"line 2: unknown format 'gct'.*expected one of"):
        read_sample_sheet(sheet)
    sheet.write_text(f"sample\tpath\ttotal_counts\nS1\t{tmp_path / 'a.csv'}\t3\n")
    with pytest.raises(ScingestError, match="'total_counts' clash with columns the workflow"):
        read_sample_sheet(sheet)


def test_sheet_missing_required_column(tmp_path):
    (tmp_path / "sheet.tsv").write_text("name\tfile\nS1\ta.csv\n")
    with pytest.raises(ScingestError, match="no column 'sample'"):
        read_sample_sheet(tmp_path / "sheet.tsv")
    with pytest.raises(ScingestError, match="sample sheet not found"):
        read_sample_sheet(tmp_path / "nope.tsv")


def test_schema_validation_names_line_and_column(tmp_path):
    sheet = pd.DataFrame({"sample": ["ok", "S 2"], "path": ["a", "b"], "format": ["csv", "csv"]})
    with pytest.raises(ScingestError, match=r"sheet.tsv, line 3, column sample: 'S 2' does not"):
        validate_rows(sheet, SHEET_SCHEMA, source="sheet.tsv")


def test_reading_a_sheet_checks_each_row_against_the_schema(tmp_path):
    """One validation path: read_sample_sheet applies the schema, naming the row's line in
    the file (not its place after sorting by sample)."""
    a, b = str(tmp_path / "a.csv"), str(tmp_path / "b.csv")
    path = write_sheet(tmp_path, ["sample", "path", "qc_nmads"], ["S2", a, "3"], ["S1", b, "-1"])
    with pytest.raises(ScingestError, match=r"sheet.tsv, line 3, column qc_nmads: -1.0 is"):
        read_sample_sheet(path)


def test_sample_name_pattern_is_the_schemas():
    from scingest.sheet import SAMPLE_NAME

    assert SAMPLE_NAME.pattern == SHEET_SCHEMA["properties"]["sample"]["pattern"]


def write_sheet(folder: Path, header: list[str], *rows: list[str]) -> Path:
    touch(folder, "a.csv", "b.csv", "c.csv")
    sheet = folder / "sheet.tsv"
    sheet.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    return sheet


def test_sheet_columns_typed_once_for_the_whole_sheet(tmp_path):
    a, b, c = (str(tmp_path / n) for n in ("a.csv", "b.csv", "c.csv"))
    path = write_sheet(
        tmp_path,
        ["sample", "path", "viability", "treatment", "donor", "lane"],
        ["S1", a, "70.5", "Stim ", "1", " 2"],
        ["S2", b, "NA", "", "", "3 "],
        ["S3", c, " 91", "Ctrl", "2", "4"],
    )
    sheet = read_sample_sheet(path)
    assert sheet["viability"].dtype == "float64"
    assert sheet["donor"].dtype == "float64"  # integers with a gap: numbers, NaN missing
    assert sheet["lane"].dtype == "int64" and sheet["lane"].tolist() == [2, 3, 4]
    assert sample_metadata(sheet, "S1") == {
        "viability": 70.5,
        "treatment": "Stim",
        "donor": 1.0,
        "lane": 2,
    }
    s2 = sample_metadata(sheet, "S2")
    assert set(s2) == {"viability", "treatment", "donor", "lane"}  # nothing dropped
    assert s2["viability"] != s2["viability"] and s2["treatment"] is None


def test_sample_names_differing_by_case_are_refused(tmp_path):
    path = write_sheet(
        tmp_path,
        ["sample", "path"],
        ["Ctrl1", str(tmp_path / "a.csv")],
        ["ctrl1", str(tmp_path / "b.csv")],
    )
    with pytest.raises(ScingestError, match=r"'Ctrl1' and 'ctrl1' differ only by case"):
        read_sample_sheet(path)


def test_reader_columns_are_per_sample_options_not_metadata(tmp_path):
    from scingest.sheet import is_reserved_column, sample_reader_overrides

    a, b = str(tmp_path / "a.csv"), str(tmp_path / "b.csv")
    path = write_sheet(
        tmp_path,
        ["sample", "path", "orientation", "allow_non_integer", "genome", "h5ad_layer", "batch"],
        ["S1", a, "cells_x_genes ", "TRUE", "", "", "x"],
        ["S2", b, "", "", "GRCh38", "counts", "y"],
    )
    sheet = read_sample_sheet(path)
    assert sample_reader_overrides(sheet, "S1") == {
        "orientation": "cells_x_genes",
        "allow_non_integer": True,
    }
    assert sample_reader_overrides(sheet, "S2") == {"genome": "GRCh38", "h5ad_layer": "counts"}
    assert sample_metadata(sheet, "S1") == {"batch": "x"}
    assert all(is_reserved_column(c) for c in ("orientation", "genome", "h5ad_layer"))
    path.write_text(f"sample\tpath\torientation\nS1\t{a}\tsideways\n")
    with pytest.raises(ScingestError, match=r"line 2, column orientation: 'sideways' is not one"):
        read_sample_sheet(path)
    path.write_text(f"sample\tpath\tallow_non_integer\nS1\t{a}\tmaybe\n")
    with pytest.raises(ScingestError, match=r"line 2, column allow_non_integer.*expected true"):
        read_sample_sheet(path)
    for key in ("dtype", "var_names", "other_features"):
        path.write_text(f"sample\tpath\t{key}\nS1\t{a}\tx\n")
        with pytest.raises(ScingestError, match=rf"'{key}' name reader settings that must be"):
            read_sample_sheet(path)


def test_stale_checkpoints(tmp_path):
    from scingest.sheet import stale_checkpoints

    assert stale_checkpoints(tmp_path / "results", ["A"]) == []
    touch(tmp_path / "results" / "samples", "A.h5ad", "B.h5ad", ".C.x1.tmp.h5ad")
    assert stale_checkpoints(tmp_path / "results", ["A"]) == ["B"]
