"""The counting tools' layouts read to the same counts, names and ids, and fail clearly."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.formats import make_cells, write_10x, write_10x_h5, write_csv, write_h5ad
from helpers.layouts import (
    write_alevin_fry,
    write_cellranger_count,
    write_cellranger_multi,
    write_h5ad_07,
    write_kb,
    write_probe_h5,
    write_spaceranger,
    write_starsolo,
    write_zarr,
)
from scingest.discovery import discover_samples
from scingest.errors import ScingestError
from scingest.formats import detect_format, input_files
from scingest.options import ReaderOptions
from scingest.readers import read_counts


def _check(adata, cells, *, ids=True, symbols=True):
    assert sp.isspmatrix_csr(adata.X) and adata.X.dtype == np.float32
    assert adata.obs_names.tolist() == cells.barcodes
    gex = cells.gex
    np.testing.assert_array_equal(adata.X.toarray(), cells.counts[:, gex].toarray())
    if symbols:
        names = ad.utils.make_index_unique(pd.Index(np.array(cells.symbols)[gex]))
        assert adata.var_names.tolist() == names.tolist()
    if ids:
        assert adata.var["gene_ids"].tolist() == list(np.array(cells.ids)[gex])


# format -> writer returning the path to give. STARsolo, kb, loom and probe .h5 are read
# from files their tools wrote in tests/unit/test_readers_tools.py; the writers here give
# the layouts no tool runs for here, and edge cases.
LAYOUTS = {
    "cellranger_multi": lambda d, c: (
        write_cellranger_multi(d / "outs", {"S1": c}) / "per_sample_outs" / "S1"
    ),
    "cellranger_count": lambda d, c: write_cellranger_count(d / "run1", c),
    "alevin_fry": lambda d, c: write_alevin_fry(d / "fry1", c) / "af_quant",
    "zarr": lambda d, c: write_zarr(d / "s.zarr", c),
}


@pytest.mark.parametrize("fmt", sorted(LAYOUTS))
def test_each_layout_reads_to_the_cells_and_is_detected(tmp_path, fmt):
    cells = make_cells(seed=3)
    path = LAYOUTS[fmt](tmp_path, cells)
    assert detect_format(path) == fmt
    adata = read_counts(path)
    _check(adata, cells, symbols=fmt not in ("alevin_fry",), ids=True)
    assert all(p.is_file() for p in input_files(path, fmt))


def test_alevin_fry_names_are_gene_ids(tmp_path):
    cells = make_cells(seed=4)
    path = write_alevin_fry(tmp_path / "fry", cells)
    adata = read_counts(path, "alevin_fry", var_names="gene_ids")
    assert adata.var_names.tolist() == cells.ids
    # the matrix file itself, and the alevin folder, are the same input
    for other in (path / "af_quant" / "alevin", path / "af_quant" / "alevin" / "quants_mat.mtx"):
        assert detect_format(other) == "alevin_fry"
        np.testing.assert_array_equal(read_counts(other).X.toarray(), adata.X.toarray())


def test_alevin_fry_gene_names_from_gene_id_to_name(tmp_path):
    cells = make_cells(seed=4)
    path = write_alevin_fry(tmp_path / "fry", cells, names=True)
    assert input_files(path / "af_quant", "alevin_fry")[-2] == path / "gene_id_to_name.tsv"
    _check(read_counts(path / "af_quant"), cells)


def test_alevin_fry_usa_mode_gives_spliced_plus_ambiguous(tmp_path, caplog):
    cells = make_cells(seed=5)
    path = write_alevin_fry(tmp_path / "fry", cells, usa=True)
    with caplog.at_level(logging.INFO):
        adata = read_counts(path, var_names="gene_ids")
    assert adata.var_names.tolist() == cells.ids
    np.testing.assert_array_equal(adata.X.toarray(), cells.counts.toarray())
    assert "unspliced counts are left out" in caplog.text


def test_alevin_fry_quants_h5ad(tmp_path):
    cells = make_cells(seed=6)
    alevin = tmp_path / "af_quant" / "alevin"
    alevin.mkdir(parents=True)
    write_h5ad(alevin / "quants.h5ad", cells)
    assert detect_format(tmp_path / "af_quant") == "alevin_fry"
    _check(read_counts(tmp_path / "af_quant"), cells)


def test_kb_without_names_uses_ids_and_says_so(tmp_path, caplog):
    cells = make_cells(seed=7)
    path = write_kb(tmp_path / "kb", cells, names=False)
    with caplog.at_level(logging.INFO):
        adata = read_counts(path / "counts_unfiltered" / "cells_x_genes.mtx")
    assert adata.var_names.tolist() == cells.ids
    assert "gene ids used as names" in caplog.text


def test_kb_shape_mismatch_names_the_files(tmp_path):
    cells = make_cells(seed=7)
    path = write_kb(tmp_path / "kb", cells)
    genes = path / "counts_unfiltered" / "cells_x_genes.genes.txt"
    genes.write_text("".join(f"{g}\n" for g in cells.ids[:-1]))
    names = path / "counts_unfiltered" / "cells_x_genes.genes.names.txt"
    names.write_text("".join(f"{g}\n" for g in cells.symbols[:-1]))
    with pytest.raises(ScingestError, match=r"cells_x_genes\.mtx: the matrix is 15 x 40"):
        read_counts(path)


def test_cellranger_count_mtx_only_and_spaceranger(tmp_path):
    cells = make_cells(seed=8)
    run = write_cellranger_count(tmp_path / "run", cells, h5=False)
    assert detect_format(run / "outs") == "cellranger_count"
    _check(read_counts(run), cells)
    visium = write_spaceranger(tmp_path / "visium", cells)
    assert detect_format(visium) == "cellranger_count"
    _check(read_counts(visium), cells)
    assert input_files(visium, "cellranger_count") == [
        visium / "outs" / "filtered_feature_bc_matrix.h5"
    ]


def test_cellranger2_run_folder_reads_the_genome_asked_for(tmp_path):
    """A CellRanger 2 run's filtered_gene_bc_matrices/ holds one folder per genome."""
    human, mouse = make_cells(seed=10), make_cells(seed=11)
    matrices = tmp_path / "run" / "outs" / "filtered_gene_bc_matrices"
    write_10x(matrices / "hg19", human, version=2)
    write_10x(matrices / "mm10", mouse, version=2)
    run = tmp_path / "run"
    assert detect_format(run) == "cellranger_count"
    _check(read_counts(run, genome="mm10"), mouse)
    assert input_files(run, "cellranger_count", ReaderOptions(genome="hg19"))[0].parent.name == (
        "hg19"
    )
    with pytest.raises(ScingestError, match=r"several genome subfolders \(hg19, mm10\)"):
        read_counts(run)


def test_probe_h5_sums_probes_to_genes_of_the_called_cells(tmp_path, caplog):
    cells = make_cells(seed=9)
    path = tmp_path / "sample_raw_probe_bc_matrix.h5"
    write_probe_h5(path, cells, empty=4)
    assert detect_format(path) == "10x_probe_h5"
    with caplog.at_level(logging.INFO):
        adata = read_counts(path)
    _check(adata, cells)
    assert "probe-level data is not kept" in caplog.text
    assert "1 probes CellRanger's filter excluded (filtered_probes false)" in caplog.text
    assert f"kept the {len(cells.barcodes)} of {len(cells.barcodes) + 4} barcodes" in caplog.text


def test_probe_h5_without_marks_keeps_every_probe_and_barcode(tmp_path, caplog):
    import h5py

    cells = make_cells(seed=9)
    path = tmp_path / "sample_raw_probe_bc_matrix.h5"
    write_probe_h5(path, cells, empty=2)
    with h5py.File(path, "r+") as fh:
        del fh["matrix/features/filtered_probes"], fh["matrix/filtered_barcodes"]
    with caplog.at_level(logging.INFO):
        adata = read_counts(path)
    assert adata.n_obs == len(cells.barcodes) + 2
    assert adata.n_vars == len(set(cells.ids)) + 1  # the excluded probe's gene too
    assert "no filtered_probes: every probe kept" in caplog.text
    assert "called cells" not in caplog.text


def test_probe_h5_refuses_a_gene_level_h5(tmp_path):
    path = tmp_path / "x_probe_bc_matrix.h5"
    write_10x_h5(path, make_cells())
    with pytest.raises(ScingestError, match="features lack gene_id, gene_name"):
        read_counts(path)


def test_zarr_zip_and_anndata_07_h5ad(tmp_path):
    cells = make_cells(seed=11)
    zipped = write_zarr(tmp_path / "s.zarr.zip", cells, zipped=True)
    assert detect_format(zipped) == "zarr"
    _check(read_counts(zipped), cells)
    old = write_h5ad_07(tmp_path / "old.h5ad", cells)
    _check(read_counts(old), cells)


@pytest.mark.parametrize(
    "name",
    [
        "counts.csv.gz",
        "counts.tsv",
        "GSM1_A_matrix.mtx.gz",
        "x.h5",
        "x.h5ad",
        "x.loom",
        "x.zarr.zip",
        "x_probe_bc_matrix.h5",
    ],
)
def test_empty_file_says_empty_in_every_format(tmp_path, name):
    path = tmp_path / name
    if name.startswith("GSM1"):
        from helpers.formats import write_10x

        write_10x(tmp_path, make_cells(), prefix="GSM1_A_")
    path.write_bytes(b"")
    with pytest.raises(ScingestError, match=rf"{name}: the file is empty \(0 bytes\)"):
        read_counts(path)


def test_empty_names_file_of_a_layout_says_empty(tmp_path):
    path = write_kb(tmp_path / "kb", make_cells())
    (path / "counts_unfiltered" / "cells_x_genes.barcodes.txt").write_bytes(b"")
    with pytest.raises(ScingestError, match=r"barcodes\.txt: the file is empty"):
        read_counts(path)


def test_detection_unsure_lists_what_it_considered(tmp_path):
    folder = tmp_path / "both"
    write_kb(folder, make_cells())
    write_alevin_fry(folder, make_cells())
    folder_kb = folder / "counts_unfiltered"
    (folder_kb / "quants_mat.mtx").write_bytes((folder_kb / "cells_x_genes.mtx").read_bytes())
    with pytest.raises(ScingestError, match=r"several layouts: kb, alevin_fry.*Considered:.*loom"):
        detect_format(folder_kb)


def test_discovery_finds_multi_samples_and_run_folders(tmp_path):
    multi = tmp_path / "multi_run"
    write_cellranger_multi(
        multi / "outs", {"Ctrl1": make_cells(seed=1), "Pre1": make_cells(seed=2)}
    )
    for where in (multi, multi / "outs"):
        sheet = discover_samples(where, r"^(?P<sample>[A-Za-z]+\d)$")
        assert sheet["sample"].tolist() == ["Ctrl1", "Pre1"]
        assert set(sheet["format"]) == {"cellranger_multi"}
        assert sheet["path"].tolist() == [
            str(multi / "outs" / "per_sample_outs" / s) for s in ("Ctrl1", "Pre1")
        ]
    runs = tmp_path / "runs"
    write_cellranger_count(runs / "Ctrl1", make_cells(seed=1))
    write_starsolo(runs / "Ctrl2", make_cells(seed=2))
    write_kb(runs / "Ctrl3", make_cells(seed=3))
    write_alevin_fry(runs / "Ctrl4", make_cells(seed=4))
    write_csv(runs / "Ctrl5.csv.gz", make_cells(seed=5))
    sheet = discover_samples(runs, r"^(?P<sample>Ctrl\d)(?:\.csv\.gz)?$")
    assert sheet.set_index("sample")["format"].to_dict() == {
        "Ctrl1": "cellranger_count",
        "Ctrl2": "starsolo",
        "Ctrl3": "kb",
        "Ctrl4": "alevin_fry",
        "Ctrl5": "csv",
    }
