"""Discovery: sample sheets from file names."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO
from scingest.discovery import compile_pattern, discover_samples
from scingest.errors import ScingestError

DEFAULT_PATTERN = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["filename_pattern"]


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x")


def test_default_pattern_parses_geo_names(tmp_path):
    touch(
        tmp_path,
        "GSM5320459_Ctrl1_count_matrix.csv.gz",
        "GSM5320463_Pre12_count_matrix.csv.gz",
        "GSM5320470_Post3_count_matrix.tsv",
    )
    sheet = discover_samples(tmp_path, DEFAULT_PATTERN)
    assert sheet["sample"].tolist() == ["Ctrl1", "Post3", "Pre12"]
    assert sheet.columns.tolist() == ["sample", "path", "format", "sample_id", "condition", "donor"]
    row = sheet.set_index("sample").loc["Pre12"]
    assert row["sample_id"] == "GSM5320463"
    assert row["condition"] == "Pre"
    assert row["donor"] == 12
    assert sheet["donor"].dtype == "int64"
    assert sheet.set_index("sample").loc["Post3", "format"] == "tsv"
    assert sheet.set_index("sample").loc["Ctrl1", "format"] == "csv"


def test_unmatched_files_are_an_error_listing_them(tmp_path):
    touch(tmp_path, "GSM1_Ctrl1_count_matrix.csv.gz", "notes.txt", "GSM2_counts.csv")
    with pytest.raises(ScingestError, match=r"2 entries match no filename_pattern") as err:
        discover_samples(tmp_path, DEFAULT_PATTERN)
    assert "notes.txt" in str(err.value) and "GSM2_counts.csv" in str(err.value)
    assert str(tmp_path) in str(err.value)
    sheet = discover_samples(tmp_path, DEFAULT_PATTERN, ignore_unmatched=True)
    assert sheet["sample"].tolist() == ["Ctrl1"]


def test_hidden_files_are_ignored(tmp_path):
    touch(tmp_path, "GSM1_Ctrl1_count_matrix.csv.gz", ".DS_Store")
    assert discover_samples(tmp_path, DEFAULT_PATTERN)["sample"].tolist() == ["Ctrl1"]


def test_two_files_one_sample_is_an_error_naming_both(tmp_path):
    touch(tmp_path, "GSM1_Ctrl1_count_matrix.csv.gz", "GSM2_Ctrl1_count_matrix.tsv.gz")
    with pytest.raises(ScingestError, match="'Ctrl1' is given by more than one input") as err:
        discover_samples(tmp_path, DEFAULT_PATTERN)
    assert "GSM1_Ctrl1" in str(err.value) and "GSM2_Ctrl1" in str(err.value)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"^(.*)\.csv$", "no named group 'sample'"),
        (r"^(?P<sample>[a-z+$", "not a valid regular expression"),
    ],
)
def test_bad_patterns(pattern, message):
    with pytest.raises(ScingestError, match=message):
        compile_pattern(pattern)


def test_no_match_at_all_and_missing_folder(tmp_path):
    touch(tmp_path, "a.csv")
    with pytest.raises(ScingestError, match="no file or folder matches"):
        discover_samples(tmp_path, r"^(?P<sample>zzz)\.csv$", ignore_unmatched=True)
    with pytest.raises(ScingestError, match="does not exist or is not a folder"):
        discover_samples(tmp_path / "nope", DEFAULT_PATTERN)


def test_custom_pattern_groups_become_columns(tmp_path):
    touch(tmp_path, "ctrl_rep1.csv.gz", "stim_rep2.csv.gz")
    pattern = r"^(?P<sample>(?P<condition>[a-z]+)_rep(?P<replicate>\d+))\.csv\.gz$"
    sheet = discover_samples(tmp_path, pattern)
    assert sheet[["sample", "condition", "replicate"]].values.tolist() == [
        ["ctrl_rep1", "ctrl", 1],
        ["stim_rep2", "stim", 2],
    ]
