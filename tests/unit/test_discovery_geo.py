"""Discovery of a GEO series as downloaded: the default pattern over GEO's supplementary
names, GSE<n>_RAW.tar, raw/filtered siblings, tool run folders named after themselves.

Expected sheets are written out by hand from the documented rule (GSM<n>_<condition><donor>
then one of GEO's common names), not computed by the code under test.
"""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from helpers.formats import make_cells, write_10x, write_csv
from helpers.layouts import (
    write_alevin_fry,
    write_cellranger_count,
    write_cellranger_multi,
    write_kb,
    write_starsolo,
)
from scingest.discovery import DEFAULT_PATTERN, discover_samples
from scingest.errors import ScingestError
from scingest.sheet import read_sample_sheet


def touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("x")


def table(sheet) -> dict[str, tuple]:
    """sample -> (format, sample_id, condition, donor), missing values as None."""
    out = {}
    for row in sheet.to_dict("records"):
        meta = [row.get(k) for k in ("sample_id", "condition", "donor")]
        meta = [None if v != v else v for v in meta]  # NaN -> None
        out[row["sample"]] = (row["format"], *meta)
    return out


def test_config_default_is_the_librarys():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["filename_pattern"] == DEFAULT_PATTERN


def test_default_pattern_reads_a_geo_series_as_unpacked(tmp_path):
    touch(
        tmp_path,
        # 10x triplets (CellRanger 3 features, CellRanger 2 genes; '_', '-' and '.' joins)
        "GSM4058901_Ctrl1_matrix.mtx.gz",
        "GSM4058901_Ctrl1_barcodes.tsv.gz",
        "GSM4058901_Ctrl1_features.tsv.gz",
        "GSM4058902_Ctrl2_matrix.mtx.gz",
        "GSM4058902_Ctrl2_barcodes.tsv.gz",
        "GSM4058902_Ctrl2_genes.tsv.gz",
        "GSM4058903_Ctrl_3-matrix.mtx.gz",
        "GSM4058903_Ctrl_3-barcodes.tsv.gz",
        "GSM4058903_Ctrl_3-features.tsv.gz",
        "GSM4058904_Ctrl4.matrix.mtx.gz",
        "GSM4058904_Ctrl4.barcodes.tsv.gz",
        "GSM4058904_Ctrl4.features.tsv.gz",
        # CellRanger HDF5 (3+ and 2), a bare .h5, AnnData, loom
        "GSM4058905_Pre1_filtered_feature_bc_matrix.h5",
        "GSM4058906_day0_filtered_gene_bc_matrices_h5.h5",
        "GSM4058907_Pre2.h5",
        "GSM4058908_Post1.h5ad",
        "GSM4058909_Post2.loom",
        # dense text as GEO series commonly name it
        "GSM4058910_Stim1_count_matrix.csv.gz",
        "GSM4058911_Stim2_counts.tsv.gz",
        "GSM4058912_Stim3_raw_counts.txt.gz",
        "GSM4058913_Stim4_UMI_counts.csv",
        "GSM4058914_Stim5_dge.txt.gz",
        "GSM4058915_human1_umifm_counts.csv.gz",
    )
    write_10x(tmp_path / "GSM4058916_Ctrl5_filtered_feature_bc_matrix", make_cells())
    sheet = discover_samples(tmp_path, DEFAULT_PATTERN)
    assert table(sheet) == {
        "Ctrl1": ("10x_triplet", "GSM4058901", "Ctrl", 1),
        "Ctrl2": ("10x_triplet", "GSM4058902", "Ctrl", 2),
        "Ctrl_3": ("10x_triplet", "GSM4058903", "Ctrl", 3),
        "Ctrl4": ("10x_triplet", "GSM4058904", "Ctrl", 4),
        "Pre1": ("10x_h5", "GSM4058905", "Pre", 1),
        "day0": ("10x_h5", "GSM4058906", "day", 0),
        "Pre2": ("10x_h5", "GSM4058907", "Pre", 2),
        "Post1": ("h5ad", "GSM4058908", "Post", 1),
        "Post2": ("loom", "GSM4058909", "Post", 2),
        "Stim1": ("csv", "GSM4058910", "Stim", 1),
        "Stim2": ("tsv", "GSM4058911", "Stim", 2),
        "Stim3": ("tsv", "GSM4058912", "Stim", 3),
        "Stim4": ("csv", "GSM4058913", "Stim", 4),
        "Stim5": ("tsv", "GSM4058914", "Stim", 5),
        "human1": ("csv", "GSM4058915", "human", 1),
        "Ctrl5": ("10x_mtx", "GSM4058916", "Ctrl", 5),
    }
    assert sheet["donor"].dtype == "int64"
    # a triplet's path is its matrix file; its barcodes and features files are not samples
    paths = dict(zip(sheet["sample"], sheet["path"], strict=True))
    assert Path(paths["Ctrl2"]).name == "GSM4058902_Ctrl2_matrix.mtx.gz"


def test_files_that_are_not_counts_are_named_as_unmatched(tmp_path):
    touch(
        tmp_path,
        "GSM1_Ctrl1_filtered_feature_bc_matrix.h5",
        "GSM1_Ctrl1_molecule_info.h5",
        "GSM1_Ctrl1_atac_fragments.tsv.gz",
        "GSM1_Ctrl1_filtered_peak_bc_matrix.h5",
        "GSM1_Ctrl1_metadata.csv.gz",
        "GSM1_Ctrl1.rds",
    )
    with pytest.raises(ScingestError, match=r"5 entries match no filename_pattern \(the default"):
        discover_samples(tmp_path, DEFAULT_PATTERN)
    sheet = discover_samples(tmp_path, DEFAULT_PATTERN, ignore_unmatched=True)
    assert sheet["sample"].tolist() == ["Ctrl1"]


def test_a_raw_matrix_beside_its_filtered_sibling_is_left_out(tmp_path, caplog):
    touch(
        tmp_path,
        "GSM1_Ctrl1_filtered_feature_bc_matrix.h5",
        "GSM1_Ctrl1_raw_feature_bc_matrix.h5",
        "GSM2_Ctrl2_raw_feature_bc_matrix.h5",  # raw only: read
        "GSM3_Flex1_filtered_feature_bc_matrix.h5",
        "GSM3_Flex1_raw_probe_bc_matrix.h5",
    )
    with caplog.at_level(logging.INFO):
        sheet = discover_samples(tmp_path, DEFAULT_PATTERN)
    assert {s: Path(p).name for s, p in zip(sheet["sample"], sheet["path"], strict=True)} == {
        "Ctrl1": "GSM1_Ctrl1_filtered_feature_bc_matrix.h5",
        "Ctrl2": "GSM2_Ctrl2_raw_feature_bc_matrix.h5",
        "Flex1": "GSM3_Flex1_filtered_feature_bc_matrix.h5",
    }
    assert "not its raw sibling GSM1_Ctrl1_raw_feature_bc_matrix.h5" in caplog.text


@pytest.mark.parametrize(
    "names",
    [
        ("GSM1_Ctrl1_filtered_feature_bc_matrix.h5", "GSM1_Ctrl1.h5ad"),
        ("GSM1_Ctrl1_raw_feature_bc_matrix.h5", "GSM2_Ctrl1_raw_feature_bc_matrix.h5"),
    ],
    ids=["two-kinds", "two-raw"],
)
def test_other_repetitions_still_stop(tmp_path, names):
    touch(tmp_path, *names)
    with pytest.raises(ScingestError, match="'Ctrl1' is given by more than one input"):
        discover_samples(tmp_path, DEFAULT_PATTERN)


def test_run_folders_are_named_after_themselves_with_the_default_pattern(tmp_path):
    runs = tmp_path / "runs"
    write_cellranger_count(runs / "Ctrl1", make_cells(seed=1))
    write_starsolo(runs / "Star_2", make_cells(seed=2))
    write_kb(runs / "KbRun", make_cells(seed=3))
    write_alevin_fry(runs / "Fry4", make_cells(seed=4))
    write_10x(runs / "Plain5", make_cells(seed=5))
    write_csv(runs / "GSM6_Pre1_counts.csv.gz", make_cells(seed=6))
    sheet = discover_samples(runs)  # the default pattern
    assert table(sheet) == {
        "Ctrl1": ("cellranger_count", None, "Ctrl", 1),
        "Star_2": ("starsolo", None, "Star", 2),
        "KbRun": ("kb", None, None, None),  # no condition and donor in its name
        "Fry4": ("alevin_fry", None, "Fry", 4),
        "Plain5": ("10x_mtx", None, "Plain", 5),
        "Pre1": ("csv", "GSM6", "Pre", 1),
    }
    # a pattern of the user's own says which names are samples: the folders are unmatched
    with pytest.raises(ScingestError, match=r"5 entries match no filename_pattern '\^GSM"):
        discover_samples(runs, r"^GSM\d+_(?P<sample>\w+?)_counts\.csv\.gz$")


def test_a_multi_run_and_one_run_as_input_dir(tmp_path):
    multi = tmp_path / "Multi"
    write_cellranger_multi(
        multi / "outs", {"Multi1": make_cells(seed=1), "Pool_B": make_cells(seed=2)}
    )
    for where in (multi, multi / "outs"):
        assert table(discover_samples(where)) == {
            "Multi1": ("cellranger_multi", None, "Multi", 1),
            "Pool_B": ("cellranger_multi", None, None, None),
        }
    star = write_starsolo(tmp_path / "Star3", make_cells(seed=3))
    for where in (star, star / "Solo.out"):
        sheet = discover_samples(where)
        assert table(sheet) == {"Star3": ("starsolo", None, "Star", 3)}
    count = tmp_path / "Count4"
    write_cellranger_count(count, make_cells(seed=4))
    sheet = discover_samples(count / "outs")
    assert table(sheet) == {"Count4": ("cellranger_count", None, "Count", 4)}
    assert Path(sheet["path"].iloc[0]) == count
    # a folder of per-sample files that also holds a tool's files is not taken for one run
    mixed = tmp_path / "mixed"
    write_kb(mixed, make_cells(seed=5))  # counts_unfiltered/ inside
    write_csv(mixed / "GSM6_Pre1_counts.csv.gz", make_cells(seed=6))
    with pytest.raises(ScingestError, match=r"3 entries match no .*: 10x_version3_whitelist"):
        discover_samples(mixed)


def test_a_non_ascii_sample_name_is_refused_saying_ascii(tmp_path):
    touch(tmp_path, "a.csv")
    (tmp_path / "sheet.tsv").write_text(f"sample\tpath\nKontrollé2\t{tmp_path / 'a.csv'}\n")
    with pytest.raises(ScingestError) as err:
        read_sample_sheet(tmp_path / "sheet.tsv")
    text = str(err.value)
    assert "line 2: sample name 'Kontrollé2' may contain only ASCII letters" in text
    assert "digits, '.', '_' and '-' (found 'é')" in text


# --- archives --------------------------------------------------------------------------


def tar_folder(archive: Path, folder: Path, *, arcname: str = "") -> Path:
    """A tar of a folder's files, flat as GEO's RAW.tar (or under ``arcname``)."""
    with tarfile.open(archive, "w:gz" if archive.name.endswith("gz") else "w") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = str(path.relative_to(folder))
                tar.add(path, arcname=f"{arcname}/{name}" if arcname else name)
    return archive


def geo_series(staging: Path) -> None:
    write_10x(staging, make_cells(seed=1), prefix="GSM10_Ctrl1_")
    write_10x(staging, make_cells(seed=2), version=2, gz=True, prefix="GSM11_Ctrl2_")
    write_csv(staging / "GSM12_Pre1_counts.csv.gz", make_cells(seed=3))


SERIES = {
    "Ctrl1": ("10x_triplet", "GSM10", "Ctrl", 1),
    "Ctrl2": ("10x_triplet", "GSM11", "Ctrl", 2),
    "Pre1": ("csv", "GSM12", "Pre", 1),
}


def test_a_series_archive_as_input_dir_or_inside_it(tmp_path):
    geo_series(tmp_path / "staging")
    data = tmp_path / "data"
    data.mkdir()
    archive = tar_folder(data / "GSE999_RAW.tar", tmp_path / "staging")
    into = tmp_path / "results" / "input"
    for where in (archive, data):
        sheet = discover_samples(where, unpack_into=into)
        assert table(sheet) == SERIES
        assert all(Path(p).parent == into / "GSE999_RAW" for p in sheet["path"])
    with pytest.raises(ScingestError, match=r"GSE999_RAW\.tar: an archive: give discover_samples"):
        discover_samples(data)  # the library alone does not choose where to unpack


def test_an_archive_already_unpacked_beside_it_is_not_unpacked_again(tmp_path):
    data = tmp_path / "data"
    geo_series(data)
    tar_folder(tmp_path / "GSE999_RAW.tar", data)
    (tmp_path / "GSE999_RAW.tar").rename(data / "GSE999_RAW.tar")
    into = tmp_path / "results" / "input"
    sheet = discover_samples(data, unpack_into=into)
    assert table(sheet) == SERIES
    assert all(Path(p).parent == data for p in sheet["path"])
    assert not (into / "GSE999_RAW").exists()
    # some files of the archive beside it, not all: which to read is a guess, so it stops
    (data / "GSM12_Pre1_counts.csv.gz").unlink()
    with pytest.raises(ScingestError, match=r"GSE999_RAW.tar: 6 of its 7 files are unpacked"):
        discover_samples(data, unpack_into=into)
    assert not (into / "GSE999_RAW").exists()
    (data / "GSM10_Ctrl1_barcodes.tsv.gz").write_bytes(b"other")
    with pytest.raises(ScingestError, match=r"1 of them differ in size.*GSM10_Ctrl1_barcodes"):
        discover_samples(data, unpack_into=into)


def test_sample_archives_inside_a_series_archive_are_one_sample_each(tmp_path):
    """Older GEO series hold one .tar.gz of a CellRanger folder per sample."""
    staging = tmp_path / "staging"
    for seed, name in ((1, "GSM20_Ctrl1_filtered_feature_bc_matrix"), (2, "GSM21_Ctrl2")):
        write_10x(tmp_path / "cr" / name / "filtered_feature_bc_matrix", make_cells(seed=seed))
        staging.mkdir(exist_ok=True)
        tar_folder(staging / f"{name}.tar.gz", tmp_path / "cr" / name)
    archive = tar_folder(tmp_path / "GSE998_RAW.tar", staging)
    into = tmp_path / "results" / "input"
    sheet = discover_samples(archive, unpack_into=into)
    assert table(sheet) == {
        "Ctrl1": ("10x_mtx", "GSM20", "Ctrl", 1),
        "Ctrl2": ("10x_mtx", "GSM21", "Ctrl", 2),
    }
    assert Path(sheet["path"].iloc[0]) == into / "GSM20_Ctrl1_filtered_feature_bc_matrix"


def test_an_unsafe_member_stops_discovery_naming_it(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "GSE997_RAW.tar", "w") as tar:
        link = tarfile.TarInfo("GSM1_Ctrl1_counts.csv.gz")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        evil = tarfile.TarInfo("../../GSM2_Ctrl2_counts.csv.gz")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    into = tmp_path / "results" / "input"
    with pytest.raises(ScingestError, match=r"member 'GSM1_Ctrl1_counts.csv.gz' is a symbolic"):
        discover_samples(data, unpack_into=into)
    assert not into.exists()
