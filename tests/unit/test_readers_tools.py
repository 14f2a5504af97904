"""Each layout read from a file its tool wrote, against the simulation's truth and the tool's
own reader.

The files: tests/fixtures/tools (STARsolo, kb, loompy runs on simulated reads; see its
README) and tests/fixtures/probe (a CellRanger probe matrix from scanpy's sources). Where a
tool counts exactly what was simulated (every read maps uniquely, UMIs of a barcode are at
least two mismatches apart, no sequencing errors), the truth is the expected value; the
tool's own reader is the second oracle.
"""

from __future__ import annotations

import logging
import shutil

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from helpers.tools import (
    PROBE_H5,
    TOOLS,
    gzipped_copy,
    truth_cells,
    truth_counts,
    truth_genes,
)
from scingest.compat import named_layers
from scingest.errors import ScingestError
from scingest.formats import detect_format, input_files
from scingest.readers import read_counts


def _ids(adata):
    return adata.var["gene_ids"].tolist()


# --- CellRanger / Space Ranger probe matrix --------------------------------------------------


def _probe_oracle():
    """scanpy's reading of the probe matrix, reduced by CellRanger's own marks (probes that
    passed its filter, barcodes it called cells) and summed per gene: the documented rule."""
    import scanpy as sc

    probes = sc.read_10x_h5(PROBE_H5)
    cells = probes[probes.obs["filtered_barcodes"].to_numpy(bool)]
    used = cells[:, cells.var["filtered_probes"].to_numpy(bool)]
    by_gene = pd.DataFrame(
        used.X.toarray(), index=used.obs_names, columns=used.var["gene_ids"].to_numpy()
    )
    return probes, by_gene.T.groupby(level=0).sum().T


def test_probe_h5_keeps_the_probes_cellranger_used_and_its_cells(caplog):
    assert detect_format(PROBE_H5) == "10x_probe_h5"
    with caplog.at_level(logging.INFO):
        adata = read_counts(PROBE_H5)
    probes, expected = _probe_oracle()
    # the probes kept are target_sets' probe set, which is filtered_probes true (682 of 1000)
    with h5py.File(PROBE_H5) as fh:
        sets = fh["matrix/features/target_sets"]
        (listed,) = (sets[name][()] for name in sets)
    used = np.flatnonzero(probes.var["filtered_probes"].to_numpy(bool))
    np.testing.assert_array_equal(np.sort(listed), used)
    assert 0 < len(used) < probes.n_vars
    # cells: CellRanger's filtered_barcodes, in the file's order
    called = probes.obs_names[probes.obs["filtered_barcodes"].to_numpy(bool)]
    assert adata.obs_names.tolist() == called.tolist()
    assert 0 < adata.n_obs < probes.n_obs
    # gene-level counts: the used probes summed per gene, as CellRanger's gene-level matrix
    assert sorted(_ids(adata)) == sorted(expected.columns)
    np.testing.assert_array_equal(
        adata.X.toarray(), expected.loc[adata.obs_names, _ids(adata)].to_numpy()
    )
    assert not any(g.startswith("DEPRECATED_") for g in _ids(adata))  # excluded probes only
    assert f"{probes.n_vars - len(used)} probes CellRanger's filter excluded" in caplog.text
    assert f"kept the {len(called)} of {probes.n_obs} barcodes" in caplog.text


def test_probe_h5_marks_of_the_wrong_length_are_refused(tmp_path):
    path = tmp_path / "sample_raw_probe_bc_matrix.h5"
    shutil.copy(PROBE_H5, path)
    with h5py.File(path, "r+") as fh:
        values = fh["matrix/filtered_barcodes"][()]
        del fh["matrix/filtered_barcodes"]
        fh["matrix"].create_dataset("filtered_barcodes", data=values[:-1])
    with pytest.raises(
        ScingestError,
        match=r"probe_bc_matrix\.h5: /matrix/filtered_barcodes holds 4986 bool values for "
        r"4987 barcodes: expected one boolean per barcode",
    ):
        read_counts(path)


# --- STARsolo --------------------------------------------------------------------------------

STAR = TOOLS / "starsolo"


@pytest.mark.parametrize(
    ("given", "feature", "kinds"),
    [
        (STAR, "Gene", ("spliced",)),  # the run folder: Gene/filtered first
        (STAR / "Solo.out", "Gene", ("spliced",)),
        (STAR / "Solo.out" / "GeneFull", "GeneFull", ("spliced", "unspliced")),
    ],
)
def test_starsolo_reads_its_filtered_cells_exactly(tmp_path, given, feature, kinds):
    """Truth exact: Gene counts the spliced molecules, GeneFull adds the intronic ones, and
    STARsolo's cell call (CellRanger2.2) separates the cells from the ambient droplets."""
    import scanpy as sc

    assert detect_format(given) == "starsolo"
    adata = read_counts(given)
    folder = STAR / "Solo.out" / feature / "filtered"
    assert input_files(given, "starsolo") == [
        folder / "matrix.mtx",
        folder / "barcodes.tsv",
        folder / "features.tsv",
    ]
    assert sorted(adata.obs_names) == sorted(truth_cells())
    assert _ids(adata) == truth_genes()["gene_id"].tolist()
    np.testing.assert_array_equal(
        adata.X.toarray(), truth_counts(adata.obs_names, kinds=kinds).astype(np.float32)
    )
    oracle = sc.read_10x_mtx(gzipped_copy(folder, tmp_path / "gz"))
    assert adata.obs_names.tolist() == oracle.obs_names.tolist()
    assert adata.var_names.tolist() == oracle.var_names.tolist()  # PINX1, PINX1-1 as scanpy
    np.testing.assert_array_equal(adata.X.toarray(), oracle.X.toarray())
    assert "MT-ND1" in adata.var_names


def test_starsolo_raw_folder_holds_every_whitelisted_barcode():
    raw = STAR / "Solo.out" / "Gene" / "raw"
    # every barcode of the whitelist, read as they are (by default: the called cells,
    # tests/unit/test_raw_matrices.py)
    adata = read_counts(raw, barcodes="as_cells")
    whitelist = (TOOLS / "truth" / "whitelist.txt").read_text().split()
    assert adata.obs_names.tolist() == sorted(whitelist)  # STARsolo sorts the whitelist
    np.testing.assert_array_equal(adata.X.toarray(), truth_counts(adata.obs_names))


# --- kallisto | bustools (kb count) ----------------------------------------------------------

KB = TOOLS / "kb"


def _kb_symbols() -> list[str]:
    """The reference's symbols as kb names genes: a symbol two genes share is replaced by
    each gene's id (kb ref's t2g), so PINX1 appears as its two ids."""
    genes = truth_genes()
    shared = genes["gene_name"].duplicated(keep=False)
    return genes["gene_name"].where(~shared, genes["gene_id"]).tolist()


@pytest.mark.parametrize(
    ("given", "counts"),
    [(KB, "counts_filtered"), (KB / "counts_unfiltered", "counts_unfiltered")],
)
def test_kb_reads_as_kallisto_counted(given, counts):
    """Truth exact for spliced molecules (intronic reads do not pseudoalign to the cDNA
    index); kb's own --h5ad output is the second oracle."""
    assert detect_format(given) == "kb"
    adata = read_counts(given, barcodes="as_cells")  # every barcode, as kb wrote them
    oracle = ad.read_h5ad(KB / counts / "adata.h5ad")
    assert adata.obs_names.tolist() == oracle.obs_names.tolist()
    assert _ids(adata) == oracle.var_names.tolist() == truth_genes()["gene_id"].tolist()
    assert adata.var_names.tolist() == _kb_symbols()
    np.testing.assert_array_equal(adata.X.toarray(), oracle.X.toarray())
    np.testing.assert_array_equal(adata.X.toarray(), truth_counts(adata.obs_names))
    cells = set(truth_cells())
    if counts == "counts_filtered":  # kb's own filter (bustools allowlist) found the cells
        assert set(adata.obs_names) == cells
    else:  # every barcode with a pseudoaligned read: mostly ambient droplets
        assert cells < set(adata.obs_names)
        assert adata.n_obs > 5 * len(cells)


# --- salmon alevin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        TOOLS / "alevin",
        TOOLS / "alevin" / "alevin",
        TOOLS / "alevin" / "alevin" / "quants_mat.gz",
        TOOLS / "alevin_mtx",
    ],
)
def test_alevin_binary_and_mtx_read_as_vpolo_decodes_them(given):
    """alevin's layout here is written by make_fixtures.py (salmon alevin crashes on this
    machine, see the README there); vpolo, the alevin authors' reader, decoded the binary
    matrix into oracle/alevin_vpolo.npz, and scanpy reads the --dumpMtx file."""
    import scanpy as sc

    assert detect_format(given) == "alevin"
    adata = read_counts(given)
    vpolo = np.load(TOOLS / "oracle" / "alevin_vpolo.npz")
    assert adata.obs_names.tolist() == vpolo["barcodes"].tolist()
    assert adata.var_names.tolist() == _ids(adata) == vpolo["genes"].tolist()
    np.testing.assert_array_equal(adata.X.toarray(), vpolo["counts"])
    np.testing.assert_array_equal(adata.X.toarray(), truth_counts(adata.obs_names))
    dumped = sc.read_mtx(TOOLS / "alevin_mtx" / "alevin" / "quants_mat.mtx.gz")
    np.testing.assert_array_equal(adata.X.toarray(), dumped.X.toarray())


def test_alevin_binary_matrix_cut_short_names_the_cell(tmp_path):
    import gzip

    alevin = shutil.copytree(TOOLS / "alevin" / "alevin", tmp_path / "alevin")
    matrix = alevin / "quants_mat.gz"
    data = gzip.decompress(matrix.read_bytes())
    matrix.write_bytes(gzip.compress(data[:-3]))
    with pytest.raises(ScingestError, match=r"quants_mat\.gz: .* ends within the record of cell"):
        read_counts(tmp_path)
    matrix.write_bytes(gzip.compress(data + b"\0"))
    with pytest.raises(ScingestError, match=r"1 bytes after the records of 40 cells"):
        read_counts(tmp_path)


def test_alevin_fractional_counts_need_allow_non_integer(tmp_path):
    """alevin divides a UMI shared by genes between them: such counts are not integers."""
    alevin = shutil.copytree(TOOLS / "alevin_mtx" / "alevin", tmp_path / "alevin")
    matrix = alevin / "quants_mat.mtx.gz"
    counts = sp.coo_matrix(read_counts(alevin).X, dtype=np.float64)
    counts.data[0] = 0.5
    import gzip

    import scipy.io

    with gzip.open(matrix, "wb") as fh:
        scipy.io.mmwrite(fh, counts)
    with pytest.raises(ScingestError, match=r"1 non-integer value.*allow_non_integer"):
        read_counts(alevin)
    assert read_counts(alevin, allow_non_integer=True).X.data[0] == 0.5


# --- loom (loompy) ---------------------------------------------------------------------------

LOOM = TOOLS / "loom" / "sample.loom"


def test_loom_written_by_loompy_reads_as_loompy_reads_it():
    """loompy wrote the file from the truth (main matrix: spliced; layers spliced and
    unspliced, velocyto's layout); loompy.connect's reading is oracle/loom_loompy.npz."""
    assert detect_format(LOOM) == "loom"
    adata = read_counts(LOOM, loom_layers="keep")
    loompy = np.load(TOOLS / "oracle" / "loom_loompy.npz")
    assert adata.obs_names.tolist() == loompy["cells"].tolist() == truth_cells()
    assert _ids(adata) == loompy["ids"].tolist()
    assert adata.var_names.tolist() == ["PINX1-1" if i == 31 else g for i, g in
                                        enumerate(loompy["genes"])]  # fmt: skip
    np.testing.assert_array_equal(adata.X.toarray(), loompy["matrix"])
    assert sorted(named_layers(adata)) == ["spliced", "unspliced"]
    for layer in ("spliced", "unspliced"):
        np.testing.assert_array_equal(adata.layers[layer].toarray(), loompy[layer])
        expected = truth_counts(adata.obs_names, kinds=(layer,))
        np.testing.assert_array_equal(adata.layers[layer].toarray(), expected)
        assert sp.isspmatrix_csr(adata.layers[layer])
    assert list(named_layers(read_counts(LOOM))) == []  # anndata 0.13 lists X as layers[None]


def test_loom_without_cell_ids_fails_clearly(tmp_path):
    path = shutil.copy(LOOM, tmp_path / "bad.loom")
    with h5py.File(path, "r+") as fh:
        del fh["col_attrs/CellID"]
    with pytest.raises(ScingestError, match=r"bad\.loom: no cell barcodes.*expected CellID"):
        read_counts(path)


def test_discovery_finds_each_tools_run_folder(tmp_path):
    from scingest.discovery import discover_samples

    for name, tool in (("Ctrl2", "starsolo"), ("Ctrl3", "kb"), ("Ctrl5", "alevin")):
        shutil.copytree(TOOLS / tool, tmp_path / name)
    sheet = discover_samples(tmp_path, r"^(?P<sample>Ctrl\d)$")
    assert sheet.set_index("sample")["format"].to_dict() == {
        "Ctrl2": "starsolo",
        "Ctrl3": "kb",
        "Ctrl5": "alevin",
    }
