"""Every sparse input format: reading, sameness across formats, options, bad input, discovery.

The files are written here (tests/helpers/formats.py); the conformance tests at the end
compare with scanpy on real CellRanger outputs in ../shared/data when that folder exists.
"""

from __future__ import annotations

import gzip
import logging
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from anndata.tests.helpers import assert_equal

from conftest import SHARED_DATA
from helpers.formats import (
    Cells,
    make_cells,
    write_10x,
    write_10x_h5,
    write_csv,
    write_h5ad,
    write_plain_mtx,
)
from helpers.layouts import LAYOUT_WRITERS
from scingest.discovery import discover_samples
from scingest.errors import ScingestError
from scingest.formats import FORMATS, detect_format, input_files
from scingest.readers import read_counts
from scingest.sample import build_sample
from scingest.sheet import read_sample_sheet

CELLS = make_cells(seed=3)

#: id -> (writer of CELLS under tmp_path, expected format, read_counts options)
WRITERS = {
    "10x-v2-folder": (lambda d, c: write_10x(d / "v2", c, version=2), "10x_mtx", {}),
    "10x-v2-folder-gz": (lambda d, c: write_10x(d / "v2", c, version=2, gz=True), "10x_mtx", {}),
    "10x-v3-folder": (lambda d, c: write_10x(d / "v3", c, version=3), "10x_mtx", {}),
    "10x-v3-folder-plain": (lambda d, c: write_10x(d / "v3", c, gz=False), "10x_mtx", {}),
    "10x-v2-genome-subfolder": (
        lambda d, c: write_10x(d / "filtered_gene_bc_matrices" / "hg19", c, version=2).parent,
        "10x_mtx",
        {},
    ),
    "triplet-v3": (
        lambda d, c: write_10x(d, c, version=3, prefix="GSM1_Ctrl1_"),
        "10x_triplet",
        {},
    ),
    "triplet-v2-genes-gz": (
        lambda d, c: write_10x(d, c, version=2, gz=True, prefix="GSM2_Ctrl2_"),
        "10x_triplet",
        {},
    ),
    "h5-v2": (lambda d, c: write_10x_h5(d / "v2.h5", c, version=2), "10x_h5", {}),
    "h5-v3": (lambda d, c: write_10x_h5(d / "v3.h5", c, version=3), "10x_h5", {}),
    "mtx": (lambda d, c: write_plain_mtx(d / "counts.mtx.gz", c), "mtx", {}),
    "mtx-cells-x-genes": (
        lambda d, c: write_plain_mtx(d / "counts.mtx", c, orientation="cells_x_genes"),
        "mtx",
        {"orientation": "cells_x_genes"},
    ),
    "h5ad-X": (lambda d, c: write_h5ad(d / "in.h5ad", c), "h5ad", {}),
    "h5ad-layer": (
        lambda d, c: write_h5ad(d / "in.h5ad", c, layer="counts"),
        "h5ad",
        {"h5ad_layer": "counts"},
    ),
    "csv": (lambda d, c: write_csv(d / "GSM3_A_count_matrix.csv.gz", c), "csv", {}),
    **LAYOUT_WRITERS,
}
#: Formats whose files carry feature types (v3) / gene ids.
V3 = {"10x-v3-folder", "10x-v3-folder-plain", "triplet-v3", "h5-v3", "h5ad-X", "h5ad-layer"}
V2 = {"10x-v2-folder", "10x-v2-folder-gz", "10x-v2-genome-subfolder", "triplet-v2-genes-gz"}
V2 |= {"h5-v2", "mtx", "mtx-cells-x-genes"}


def expected_names(cells: Cells) -> list[str]:
    return list(ad.utils.make_index_unique(pd.Index(np.array(cells.symbols)[cells.gex])))


def check_counts(adata: ad.AnnData, cells: Cells = CELLS) -> None:
    assert adata.X.format == "csr" and adata.X.dtype == np.float32
    assert adata.obs_names.tolist() == cells.barcodes
    assert adata.var_names.tolist() == expected_names(cells)
    expected = cells.counts[:, np.flatnonzero(cells.gex)].toarray()
    np.testing.assert_array_equal(adata.X.toarray(), expected)


@pytest.mark.parametrize("case", list(WRITERS))
def test_every_format_reads_the_same_cells(tmp_path, case):
    writer, fmt, options = WRITERS[case]
    path = writer(tmp_path, CELLS)
    assert detect_format(path) == fmt
    adata = read_counts(path, **options)
    check_counts(adata)
    assert adata.var_names[-1] == f"{CELLS.symbols[-2]}-1", "duplicate symbols stay distinct"
    if case != "csv":
        assert adata.var["gene_ids"].tolist() == CELLS.ids
    if case in V3:
        assert (adata.var["feature_types"] == "Gene Expression").all()
    assert all(p.is_file() for p in input_files(path, fmt))


def test_formats_are_all_listed():
    # alevin names genes by its --tgMap's gene column only (no ids and symbols to compare
    # here): read from its layout in tests/unit/test_readers_tools.py
    assert {w[1] for w in WRITERS.values()} == set(FORMATS) - {"tsv", "alevin"}


def checkpoint(path: Path, **options) -> ad.AnnData:
    adata = build_sample(path, sample="S1", metadata={"condition": "Ctrl"}, **options)
    del adata.uns["scingest"]  # provenance: paths, hashes and format differ by design
    return adata


@pytest.mark.parametrize("family", [sorted(V2), sorted(V3)], ids=["v2-like", "v3-like"])
def test_same_cells_give_identical_checkpoints(tmp_path, family):
    results = {}
    for case in family:
        writer, _, options = WRITERS[case]
        (tmp_path / case).mkdir()
        results[case] = checkpoint(writer(tmp_path / case, CELLS), **options)
    first, *rest = family
    for case in rest:
        assert_equal(results[first], results[case])
    csv = checkpoint(WRITERS["csv"][0](tmp_path, CELLS))
    assert_equal(csv.obs, results[first].obs)
    assert_equal(csv.layers["counts"], results[first].layers["counts"])
    assert csv.var_names.equals(results[first].var_names)


@pytest.mark.parametrize("case", ["10x-v3-folder", "triplet-v3", "h5-v3", "h5ad-X"])
def test_other_feature_types_are_dropped_and_counted_or_kept_in_obsm(tmp_path, case, caplog):
    cells = make_cells(seed=5, n_antibodies=3)
    writer, _, options = WRITERS[case]
    path = writer(tmp_path, cells)
    with caplog.at_level(logging.INFO, logger="scingest"):
        dropped = read_counts(path, **options)
    check_counts(dropped, cells)
    assert "left out 3 Antibody Capture feature(s)" in caplog.text
    assert not dropped.obsm

    kept = read_counts(path, other_features="obsm", **options)
    check_counts(kept, cells)
    adt = cells.counts[:, np.flatnonzero(~cells.gex)].toarray()
    np.testing.assert_array_equal(kept.obsm["protein_counts"].toarray(), adt)
    assert list(kept.uns["feature_names"]["protein_counts"]) == cells.symbols[-3:]

    ckpt = build_sample(path, sample="S", other_features="obsm", **options)
    assert ckpt.n_vars == int(cells.gex.sum()), "antibodies never enter gene QC"
    np.testing.assert_array_equal(ckpt.obsm["protein_counts"].toarray(), adt)


@pytest.mark.parametrize("case", ["10x-v3-folder", "h5-v2", "triplet-v2-genes-gz"])
def test_var_names_by_gene_ids_keeps_symbols(tmp_path, case):
    path = WRITERS[case][0](tmp_path, CELLS)
    adata = read_counts(path, var_names="gene_ids")
    assert adata.var_names.tolist() == CELLS.ids
    assert adata.var["gene_symbols"].tolist() == CELLS.symbols
    ckpt = build_sample(path, sample="S", var_names="gene_ids")
    assert ckpt.var["mt"].sum() == sum(s.startswith("MT-") for s in CELLS.symbols) > 0


def test_var_names_by_gene_ids_needs_ids(tmp_path):
    with pytest.raises(ScingestError, match="gene_ids"):
        read_counts(WRITERS["csv"][0](tmp_path, CELLS), var_names="gene_ids")


def test_genome_choice_in_h5(tmp_path):
    """A multi-genome .h5 gives every genome's genes by default (as its 10x folder does),
    each gene's genome in var; ``genome`` picks one. scanpy's reader is the oracle."""
    import scanpy as sc

    v2 = write_10x_h5(tmp_path / "v2.h5", CELLS, version=2, genomes=("hg19", "mm10"))
    both = read_counts(v2, other_features="obsm")
    with warnings.catch_warnings():  # the fixture repeats a gene name, as real files do
        warnings.filterwarnings("ignore", "Variable names are not unique", UserWarning)
        parts = [sc.read_10x_h5(v2, genome=g, gex_only=False) for g in ("hg19", "mm10")]
    gex = [
        p[:, p.var["feature_types"] == "Gene Expression"] if "feature_types" in p.var else p
        for p in parts
    ]
    np.testing.assert_array_equal(both.X.toarray(), np.hstack([p.X.toarray() for p in gex]))
    assert both.var["genome"].tolist() == ["hg19"] * gex[0].n_vars + ["mm10"] * gex[1].n_vars
    assert both.var["gene_ids"].tolist() == [*gex[0].var["gene_ids"], *gex[1].var["gene_ids"]]
    mouse = read_counts(v2, genome="mm10")
    check_counts(mouse)
    assert "genome" not in mouse.var.columns
    with pytest.raises(ScingestError, match="genome 'GRCm39' is not in this file"):
        read_counts(v2, genome="GRCm39")

    v3 = write_10x_h5(tmp_path / "v3.h5", CELLS, version=3, genomes=("GRCh38", "mm10"))
    both = read_counts(v3, other_features="obsm")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Variable names are not unique", UserWarning)
        theirs = sc.read_10x_h5(v3, gex_only=True)
    np.testing.assert_array_equal(both.X.toarray(), theirs.X.toarray())
    assert both.var["genome"].tolist() == theirs.var["genome"].tolist()
    human = read_counts(v3, genome="GRCh38")
    assert human.n_vars == 20 and human.var["gene_ids"].tolist() == CELLS.ids[:20]


def test_h5ad_counts_checks(tmp_path):
    path = write_h5ad(tmp_path / "norm.h5ad", CELLS, layer="counts")
    with pytest.raises(ScingestError, match=r"layers\['counts'\] holds integer counts") as err:
        read_counts(path)
    assert "set h5ad_layer: counts" in str(err.value)
    assert "allow_non_integer" not in str(err.value)  # the unsafe fix is not offered
    assert read_counts(path, allow_non_integer=True).X.sum() > 0
    with pytest.raises(ScingestError, match="no layer 'raw' \\(layers here: counts\\)"):
        read_counts(path, h5ad_layer="raw")


@pytest.mark.parametrize("name", ["counts", "raw_counts", "raw", "UMI_counts"])
def test_h5ad_normalised_x_names_the_layer_of_raw_counts(tmp_path, name):
    path = write_h5ad(tmp_path / "n.h5ad", CELLS, layer=name)
    with pytest.raises(ScingestError, match=f"set h5ad_layer: {name} ") as err:
        read_counts(path)
    assert str(err.value).startswith(f"{path}: X holds ")
    adata = read_counts(path, h5ad_layer=name)
    assert adata.X.sum() == CELLS.counts[:, np.flatnonzero(CELLS.gex)].sum()


def test_h5ad_counts_in_raw_are_named_and_read(tmp_path):
    expected = read_counts(write_h5ad(tmp_path / "x.h5ad", CELLS))
    adata = ad.read_h5ad(tmp_path / "x.h5ad")
    adata.raw = adata.copy()
    adata.X = adata.X.log1p()
    path = tmp_path / "raw.h5ad"
    adata.write_h5ad(path)
    with pytest.raises(ScingestError, match=r"\.raw holds integer counts: set h5ad_layer: raw"):
        read_counts(path)
    got = read_counts(path, h5ad_layer="raw")
    np.testing.assert_array_equal(got.X.toarray(), expected.X.toarray())
    assert got.var_names.tolist() == expected.var_names.tolist()


def test_h5ad_normalised_without_counts_says_so(tmp_path):
    path = write_h5ad(tmp_path / "n.h5ad", CELLS, layer="lognorm_copy")
    adata = ad.read_h5ad(path)
    adata.layers["lognorm_copy"] = adata.X.copy()
    adata.write_h5ad(path)
    with pytest.raises(ScingestError, match="no layer holds integer counts") as err:
        read_counts(path)
    assert "allow_non_integer: true" in str(err.value)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def bad_inputs(tmp_path: Path):
    """(id, path, format, message regex) of each kind of bad input."""
    cases = []
    folder = write_10x(tmp_path / "nobarcodes", CELLS)
    (folder / "barcodes.tsv.gz").unlink()
    cases.append(("folder-missing-barcodes", folder, None, r"missing barcodes\.tsv\[\.gz\]"))
    matrix = write_10x(tmp_path / "flat", CELLS, prefix="GSM9_X_")
    (tmp_path / "flat" / "GSM9_X_features.tsv.gz").unlink()
    cases.append(("triplet-missing-features", matrix, None, r"missing GSM9_X_features\.tsv"))
    folder = write_10x(tmp_path / "trunc", CELLS)
    truncate(folder / "matrix.mtx.gz")
    cases.append(("truncated-matrix", folder, None, r"matrix\.mtx\.gz: the gzip stream ends early"))
    folder = write_10x(tmp_path / "truncb", make_cells(n_cells=2000, seed=1))
    truncate(folder / "barcodes.tsv.gz")
    cases.append(("truncated-barcodes", folder, None, r"barcodes\.tsv\.gz: the gzip stream ends"))
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh.create_dataset("X", data=np.zeros((2, 2)))
    cases.append(("h5-not-cellranger", tmp_path / "other.h5", None, "not a CellRanger HDF5"))
    (tmp_path / "text.h5").write_text("barcode,count\n")
    cases.append(("h5-not-hdf5", tmp_path / "text.h5", None, "cannot open as HDF5"))
    h5 = write_10x_h5(tmp_path / "trunc.h5", make_cells(n_cells=500, seed=2))
    truncate(h5)
    cases.append(("h5-truncated", h5, None, "cannot open as HDF5"))
    folder = write_10x(tmp_path / "shape", CELLS)
    with gzip.open(folder / "barcodes.tsv.gz", "at") as fh:
        fh.write("EXTRA-1\n")
    cases.append(
        (
            "mtx-shape",
            folder,
            None,
            r"is 40 x 15 but features\.tsv\.gz has 40 names and barcodes\.tsv\.gz has 16",
        )
    )
    (tmp_path / "plain").mkdir()
    mtx = write_plain_mtx(tmp_path / "plain" / "c.mtx", CELLS)
    Path(f"{mtx}_cols.gz").unlink()
    cases.append(("mtx-missing-names", mtx, "mtx", r"missing c\.mtx_cols\[\.gz\]"))
    cases.append(("unknown-format", folder, "gct", "unknown format 'gct': expected one of auto"))
    (tmp_path / "x.mtx").write_text(
        "%%MatrixMarket matrix coordinate integer general\n1 1 1\n1 1 3\n"
    )
    cases.append(("mtx-unsure", tmp_path / "x.mtx", None, "cannot tell the format.*Considered"))
    (tmp_path / "x.rds").write_text("")
    cases.append(("unknown-suffix", tmp_path / "x.rds", None, "cannot tell the format.*10x_h5"))
    return cases


def test_bad_input_is_one_clear_error(tmp_path):
    for name, path, fmt, message in bad_inputs(tmp_path):
        with pytest.raises(ScingestError, match=message) as info:
            read_counts(path, fmt)
        assert str(path) in str(info.value) or Path(path).name in str(info.value), name


MIXED_PATTERN = (
    r"^(?P<sample_id>GSM\d+)_(?P<sample>(?P<condition>[A-Za-z]+)(?P<donor>\d+))_"
    r"(?:count_matrix\.csv\.gz|matrix\.mtx\.gz|filtered_feature_bc_matrix(?:\.h5)?)$"
)


def test_discovery_groups_prefixed_triplets(tmp_path):
    data = tmp_path / "data"
    write_10x(data, CELLS, prefix="GSM1_Ctrl1_")
    write_10x(data, make_cells(seed=8), version=2, gz=True, prefix="GSM2_Ctrl2_")
    write_csv(data / "GSM3_Pre1_count_matrix.csv.gz", CELLS)
    write_10x_h5(data / "GSM4_Pre2_filtered_feature_bc_matrix.h5", CELLS)
    write_10x(data / "GSM5_Post1_filtered_feature_bc_matrix", CELLS)
    sheet = discover_samples(data, MIXED_PATTERN)
    assert sheet["sample"].tolist() == ["Ctrl1", "Ctrl2", "Post1", "Pre1", "Pre2"]
    assert sheet["format"].tolist() == ["10x_triplet", "10x_triplet", "10x_mtx", "csv", "10x_h5"]
    assert Path(sheet["path"][1]).name == "GSM2_Ctrl2_matrix.mtx.gz"
    assert sheet["sample_id"].tolist() == ["GSM1", "GSM2", "GSM5", "GSM3", "GSM4"]
    assert sheet["donor"].tolist() == [1, 2, 1, 1, 2]

    sheet_path = tmp_path / "sheet.tsv"
    sheet.to_csv(sheet_path, sep="\t", index=False)
    pd.testing.assert_frame_equal(read_sample_sheet(sheet_path), sheet)

    (data / "GSM1_Ctrl1_barcodes.tsv.gz").unlink()
    with pytest.raises(ScingestError, match=r"missing GSM1_Ctrl1_barcodes\.tsv\[\.gz\]"):
        discover_samples(data, MIXED_PATTERN)
    with pytest.raises(ScingestError, match=r"GSM1_Ctrl1_barcodes\.tsv\[\.gz\]"):
        read_sample_sheet(sheet_path)

    (data / "GSM1_Ctrl1_matrix.mtx.gz").unlink()
    with pytest.raises(ScingestError, match=r"GSM1_Ctrl1_features\.tsv\.gz \(expected GSM1_Ctrl1_"):
        discover_samples(data, MIXED_PATTERN)
    assert len(discover_samples(data, MIXED_PATTERN, ignore_unmatched=True)) == 4


# --- conformance with scanpy on real CellRanger outputs -------------------------------------

REAL = SHARED_DATA / "10x"
REAL_CASES = {
    "v2-mtx": ("v2/filtered_gene_bc_matrices/hg19_chr21", "10x_mtx"),
    "v2-mtx-outer-folder": ("v2/filtered_gene_bc_matrices", "10x_mtx"),
    "v3-mtx": ("v3/filtered_feature_bc_matrix", "10x_mtx"),
    "v3-matrix-file": ("v3/filtered_feature_bc_matrix/matrix.mtx.gz", "10x_triplet"),
    "v2-h5": ("v2/filtered_gene_bc_matrices_h5.h5", "10x_h5"),
    "v3-h5": ("v3/filtered_feature_bc_matrix.h5", "10x_h5"),
}


def scanpy_reference(path: Path, fmt: str) -> ad.AnnData:
    import scanpy as sc

    if fmt == "10x_h5":
        ref = sc.read_10x_h5(path)
        ref.var_names_make_unique()
        return ref
    folder = path.parent if fmt == "10x_triplet" else path
    if not (folder / "barcodes.tsv").exists() and not (folder / "barcodes.tsv.gz").exists():
        folder = next(p for p in folder.iterdir() if p.is_dir())
    return sc.read_10x_mtx(folder)


@pytest.mark.skipif(
    not REAL.is_dir(), reason=f"real CellRanger outputs not found at {REAL} (../shared/data)"
)
@pytest.mark.parametrize("case", list(REAL_CASES))
def test_conformance_with_scanpy_on_real_cellranger_outputs(case):
    rel, fmt = REAL_CASES[case]
    path = REAL / rel
    assert detect_format(path) == fmt
    ref = scanpy_reference(path, fmt)
    ours = build_sample(path, sample="real")
    np.testing.assert_array_equal(ours.X.toarray(), ref.X.toarray())
    np.testing.assert_array_equal(ours.layers["counts"].toarray(), ref.X.toarray())
    assert ours.obs["barcode"].tolist() == ref.obs_names.tolist()
    assert ours.var_names.tolist() == ref.var_names.tolist()
    assert ours.var["gene_ids"].tolist() == ref.var["gene_ids"].tolist()
    if "feature_types" in ref.var.columns:
        assert ours.var["feature_types"].tolist() == ref.var["feature_types"].tolist()
    by_ids = read_counts(path, var_names="gene_ids")
    assert by_ids.var_names.tolist() == ref.var["gene_ids"].tolist()
    assert len(ours.uns["scingest"]["input"]["files"]) == (1 if fmt == "10x_h5" else 3)


# --- issue 16: mtx orientation from the names, 10x companion files given as the path ---


@pytest.mark.parametrize("orientation", ["genes_x_cells", "cells_x_genes"])
def test_mtx_orientation_is_told_from_the_names(tmp_path, orientation):
    path = write_plain_mtx(tmp_path / "counts.mtx", CELLS, orientation=orientation)
    check_counts(read_counts(path))  # auto
    other = "cells_x_genes" if orientation == "genes_x_cells" else "genes_x_cells"
    with pytest.raises(ScingestError, match=f"set orientation: {orientation}") as err:
        read_counts(path, orientation=other)
    assert str(err.value).startswith(f"{path}: orientation is {other}")
    assert "counts.mtx_" in str(err.value)  # names the names file holding the genes


def test_orientation_value_is_checked_once_for_dense_and_mtx(tmp_path):
    mtx = write_plain_mtx(tmp_path / "counts.mtx", CELLS)
    csv = write_csv(tmp_path / "m.csv", CELLS)
    for path in (mtx, csv):
        with pytest.raises(ScingestError, match="orientation must be one of auto, genes_x_cells"):
            read_counts(path, orientation="rows")


def test_float32_inexact_counts_warn_in_one_wording_for_every_format(tmp_path, caplog):
    """Dense text (its own parser) and the sparse formats (check_counts) share one check."""
    cells = make_cells(seed=3)
    cells.counts = cells.counts.tolil()
    cells.counts[0, 0] = 2**24  # float32 holds it exactly, but the next count up it cannot
    cells.counts = cells.counts.tocsr()
    paths = {
        "csv": write_csv(tmp_path / "m.csv", cells),
        "mtx": write_plain_mtx(tmp_path / "counts.mtx", cells),
        "h5ad": write_h5ad(tmp_path / "in.h5ad", cells),
    }
    messages = {}
    for name, path in paths.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert read_counts(path).X.max() == 2**24
        found = [r.getMessage() for r in caplog.records if "2**24" in r.getMessage()]
        assert len(found) == 1, (name, caplog.text)
        messages[name] = found[0].removeprefix(f"{path}: ")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            read_counts(path, dtype="int32")
        assert "2**24" not in caplog.text  # int32 holds such counts exactly
    assert len(set(messages.values())) == 1, messages
    assert messages["csv"] == (
        "counts up to 16777216 exceed 2**24, which float32 cannot hold exactly: set dtype: int32"
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [("var_names", "ids"), ("other_features", "keep"), ("dtype", "float64")],
)
def test_reader_options_are_checked_before_any_file_is_read(tmp_path, option, value):
    """One check per option in read_counts, the same for every format, even a missing file."""
    for fmt in ("csv", "mtx", "h5ad"):
        with pytest.raises(ScingestError, match=f"^{option} must be"):
            read_counts(tmp_path / f"missing.{fmt}", fmt, **{option: value})


@pytest.mark.parametrize(
    ("prefix", "name", "give"),
    [
        ("", "features.tsv.gz", "the folder"),
        ("", "barcodes.tsv.gz", "the folder"),
        ("GSM1_A_", "GSM1_A_features.tsv.gz", "GSM1_A_matrix.mtx.gz"),
        ("GSM1_A_", "GSM1_A_barcodes.tsv.gz", "GSM1_A_matrix.mtx.gz"),
    ],
)
def test_a_10x_names_file_as_the_path_says_which_path_to_give(tmp_path, prefix, name, give):
    write_10x(tmp_path / "s", CELLS, version=3, prefix=prefix)
    path = tmp_path / "s" / name
    with pytest.raises(ScingestError, match="is part of a 10x matrix") as err:
        read_counts(path)
    assert str(err.value).startswith(f"{path}: {name} is part of a 10x matrix")
    assert give in str(err.value)


def test_a_lone_genes_tsv_is_refused_too(tmp_path):
    folder = write_10x(tmp_path / "v2", CELLS, version=2, gz=False)
    (folder / "matrix.mtx").unlink()
    with pytest.raises(ScingestError, match=r"genes\.tsv is part of a 10x matrix"):
        read_counts(folder / "genes.tsv")
