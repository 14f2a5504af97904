"""Raw matrices (every barcode seen) on the files the tools wrote: told from filtered ones by
the tool's naming, a filtered sibling or the barcode-rank curve, reduced to called cells by
default (the tool's own calls, else CellRanger's), every barcode kept and flagged with
``barcodes: all``. Oracles: the simulation's truth (tests/fixtures/tools), the tools' own
filtered matrices, and :func:`scingest.cells.call_cells` on the counts read as they are
(itself tested against DropletUtils in test_cells.py)."""

from __future__ import annotations

import gzip
import json
import shutil

import matplotlib as mpl
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from matplotlib.figure import Figure

from helpers.droplets import simulate_droplets
from helpers.formats import make_cells
from helpers.layouts import write_alevin_fry
from helpers.tools import TOOLS, gzipped_copy, truth_cells, truth_counts
from scingest.cells import call_cells
from scingest.errors import ScingestError
from scingest.formats import detect_format, input_files, raw_input
from scingest.plots import plot_barcode_rank
from scingest.readers import read_counts

SOLO = TOOLS / "starsolo" / "Solo.out"
KB = TOOLS / "kb"


def _cellranger_outs(tmp_path, *, sibling: bool):
    """A CellRanger-named outs/ from STARsolo's real raw/ (and filtered/) of the simulated run,
    gzipped as CellRanger 3 writes them: the same 10x v3 files under CellRanger's names."""
    outs = tmp_path / "outs"
    raw = gzipped_copy(SOLO / "Gene" / "raw", outs / "raw_feature_bc_matrix")
    if sibling:
        gzipped_copy(SOLO / "Gene" / "filtered", outs / "filtered_feature_bc_matrix")
    return raw


def _seen(path=SOLO / "Gene" / "raw") -> list[str]:
    """The barcodes of a raw matrix with at least one count (what the tool saw)."""
    every = read_counts(path, barcodes="as_cells")
    return every.obs_names[np.asarray(every.X.sum(axis=1)).ravel() > 0].tolist()


def test_raw_is_told_by_the_tools_naming(tmp_path):
    star = raw_input(SOLO / "Gene" / "raw", detect_format(SOLO / "Gene" / "raw"))
    assert "STARsolo's Gene/raw" in star.reason
    assert star.sibling == SOLO / "Gene" / "filtered" / "barcodes.tsv"
    kb = raw_input(KB / "counts_unfiltered", "kb")
    assert "counts_unfiltered" in kb.reason
    assert kb.sibling == KB / "counts_filtered" / "cells_x_genes.barcodes.txt"
    raw = _cellranger_outs(tmp_path, sibling=True)
    cellranger = raw_input(raw, detect_format(raw))
    assert "CellRanger's raw_feature_bc_matrix" in cellranger.reason
    assert cellranger.sibling == raw.parent / "filtered_feature_bc_matrix" / "barcodes.tsv.gz"
    assert cellranger.sibling in input_files(raw, "10x_mtx")  # reruns when the calls change
    # filtered matrices, run folders (they read the filtered matrix) are not raw
    for path in (SOLO / "Gene" / "filtered", KB / "counts_filtered", TOOLS / "starsolo", KB):
        assert raw_input(path, detect_format(path)) is None, path
    # GEO names, CellRanger 2's genome subfolder
    geo = tmp_path / "geo" / "GSM1_Ctrl1_raw_feature_bc_matrix.h5"
    geo.parent.mkdir()
    geo.write_bytes(b"")
    (geo.parent / "GSM1_Ctrl1_filtered_feature_bc_matrix.h5").write_bytes(b"")
    assert raw_input(geo, "10x_h5").sibling.name == "GSM1_Ctrl1_filtered_feature_bc_matrix.h5"
    v2 = shutil.copytree(SOLO / "Gene" / "raw", tmp_path / "raw_gene_bc_matrices" / "hg19")
    assert "raw_gene_bc_matrices" in raw_input(v2, "10x_mtx").reason
    assert raw_input(v2, "10x_mtx").sibling is None
    # alevin-fry: the permit list's own record says unfiltered (alevin-fry's
    # generate_permit_list.json; alevin-fry itself does not install here)
    fry = write_alevin_fry(tmp_path / "fry", make_cells(seed=2))
    assert raw_input(fry, "alevin_fry") is None
    meta = {"permit-list-type": "unfiltered", "velo_mode": False}
    (fry / "af_quant" / "generate_permit_list.json").write_text(json.dumps(meta))
    assert "unfiltered permit list" in raw_input(fry, "alevin_fry").reason


@pytest.mark.parametrize(
    "path",
    [SOLO / "Gene" / "raw", SOLO / "GeneFull" / "raw", KB / "counts_unfiltered", "cellranger"],
)
def test_by_default_a_raw_matrix_gives_the_tools_own_cells(tmp_path, path):
    path = _cellranger_outs(tmp_path, sibling=True) if path == "cellranger" else path
    adata = read_counts(path)
    calls = adata.uns["cell_calls"]
    assert sorted(adata.obs_names) == sorted(truth_cells())
    assert calls["method"] == "tool" and "filtered matrix" in calls["source"]
    assert calls["cells"] == 40 and calls["barcodes_with_counts"] == len(_seen(path))
    kinds = ("spliced", "unspliced") if "GeneFull" in str(path) else ("spliced",)
    ids = adata.var["gene_ids"].tolist()
    np.testing.assert_array_equal(
        adata.X.toarray(), truth_counts(adata.obs_names, ids, kinds=kinds)
    )


def test_without_the_tools_calls_cells_are_called_as_cellranger_does(tmp_path):
    raw = _cellranger_outs(tmp_path, sibling=False)
    adata = read_counts(raw)
    calls = adata.uns["cell_calls"]
    assert sorted(adata.obs_names) == sorted(truth_cells())
    assert calls["method"] == "cellranger" and "EmptyDrops" in calls["source"]
    assert calls["calls"]["emptydrops"].startswith("skipped")  # 431 barcodes: no ambient range
    assert calls["cut_total"] == float(np.asarray(adata.X.sum(axis=1)).min())


@pytest.mark.parametrize("sibling", [True, False])
def test_all_keeps_every_barcode_seen_with_is_cell(tmp_path, sibling):
    raw = _cellranger_outs(tmp_path, sibling=sibling)
    adata = read_counts(raw, barcodes="all")
    seen = _seen()
    assert adata.obs_names.tolist() == seen  # every barcode with counts, the file's order
    is_cell = adata.uns["cell_calls"]["is_cell"]
    np.testing.assert_array_equal(is_cell, np.isin(seen, truth_cells()))
    ids = adata.var["gene_ids"].tolist()
    np.testing.assert_array_equal(adata.X.toarray(), truth_counts(seen, ids))


def test_the_barcode_rank_curve_tells_an_unnamed_raw_matrix(tmp_path):
    counts, _ = simulate_droplets(n_empty=20_000, n_big_empty=20)
    folder = tmp_path / "Sample1"
    folder.mkdir()
    barcodes = [f"BC{i:06d}" for i in range(counts.shape[0])]
    scipy.io.mmwrite(folder / "matrix.mtx", counts.T.tocoo().astype(np.int64), field="integer")
    (folder / "barcodes.tsv").write_text("".join(f"{b}\n" for b in barcodes))
    (folder / "features.tsv").write_text(
        "".join(f"ENSG{j:011d}\tG{j}\tGene Expression\n" for j in range(counts.shape[1]))
    )
    expected = call_cells(counts).is_cell
    adata = read_counts(folder)
    assert "barcode-rank curve" in adata.uns["cell_calls"]["raw"]
    assert adata.obs_names.tolist() == np.asarray(barcodes)[expected].tolist()
    assert read_counts(folder, barcodes="as_cells").n_obs == counts.shape[0]


def test_a_filtered_matrix_of_another_run_is_refused(tmp_path):
    raw = _cellranger_outs(tmp_path, sibling=True)
    sibling = raw.parent / "filtered_feature_bc_matrix" / "barcodes.tsv.gz"
    lines = (SOLO / "Gene" / "filtered" / "barcodes.tsv").read_text() + "TTTTTTTTTTTTTTTT\n"
    with gzip.open(sibling, "wt") as fh:
        fh.write(lines)
    with pytest.raises(ScingestError, match=r"1 of the 41 barcodes of the filtered matrix"):
        read_counts(raw)


def test_a_raw_matrix_without_cells_is_refused_by_default(tmp_path):
    raw = tmp_path / "raw_feature_bc_matrix"
    raw.mkdir()
    scipy.io.mmwrite(raw / "matrix.mtx", sp.coo_matrix((3, 4), dtype=np.int64), field="integer")
    (raw / "barcodes.tsv").write_text("A\nB\nC\nD\n")
    (raw / "features.tsv").write_text(
        "".join(f"ENSG0000000000{j}\tG{j}\tGene Expression\n" for j in range(3))
    )
    with pytest.raises(ScingestError, match=r"no barcode is a cell.*barcodes: all"):
        read_counts(raw)


def test_the_barcode_rank_plot_marks_the_cut(tmp_path):
    raw = _cellranger_outs(tmp_path, sibling=False)
    adata = read_counts(raw, barcodes="all")
    calls = adata.uns["cell_calls"]
    obs = {"S1": adata.obs.assign(total_counts=np.asarray(adata.X.sum(axis=1)).ravel())}
    fig = Figure()
    ax = fig.subplots()
    plot_barcode_rank(obs, calls={"S1": calls}, ax=ax, group_by=None)
    cut = [line for line in ax.lines if "cut" in str(line.get_label())]
    assert len(cut) == 1 and list(cut[0].get_xdata()) == [40, 40]
    assert "40 called cells" in cut[0].get_label()
    # solid up to the cut, faint beyond it: every barcode with counts drawn
    drawn = sorted({x for line in ax.lines[:2] for x in line.get_xdata()})
    assert drawn[-1] == len(_seen())
    assert mpl.colors.to_rgba(ax.lines[0].get_color()) == mpl.colors.to_rgba(
        ax.lines[1].get_color()
    )
    assert ax.lines[1].get_alpha() < ax.lines[0].get_alpha()
