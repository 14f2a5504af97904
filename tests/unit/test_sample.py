"""One sample's checkpoint (build_sample, write_h5ad): the data contract, organisms and
regex overrides, percent_top."""

from __future__ import annotations

import hashlib

import anndata as ad
import h5py
import numpy as np
import pytest
import scipy.sparse as sp

from scingest.errors import ScingestError
from scingest.sample import build_sample, write_h5ad
from scingest.synthetic import synthetic_counts, write_dense


@pytest.fixture
def sample_file(tmp_path):
    genes, cells, counts = synthetic_counts(120, 25, seed=3, median_counts=400)
    path = write_dense(tmp_path / "GSM1_Ctrl1_count_matrix.csv.gz", genes, cells, counts)
    return path, genes, cells, counts


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
def test_checkpoint_contract(tmp_path, sample_file, compression):
    path, genes, cells, counts = sample_file
    adata = build_sample(
        path, sample="Ctrl1", metadata={"condition": "Ctrl", "donor": 1, "sample_id": "GSM1"}
    )
    out = tmp_path / "out" / "Ctrl1.h5ad"
    write_h5ad(adata, out, compression=compression)
    back = ad.read_h5ad(out)
    with h5py.File(out) as f:
        for key in ("X/data", "layers/counts/indices", "obs/total_counts"):
            assert f[key].compression == (None if compression == "none" else compression)

    assert isinstance(back.X, sp.csr_matrix) and back.X.dtype == np.float32
    np.testing.assert_array_equal(back.X.toarray(), counts.toarray())
    np.testing.assert_array_equal(back.layers["counts"].toarray(), counts.toarray())
    assert back.obs_names.tolist() == [f"Ctrl1-{b}" for b in cells]
    assert back.obs["barcode"].tolist() == cells
    assert back.obs["sample"].dtype == "category" and set(back.obs["sample"]) == {"Ctrl1"}
    assert (back.obs["condition"] == "Ctrl").all() and back.obs["donor"].dtype.kind == "i"
    assert back.var_names.tolist() == genes and back.var_names.is_unique
    assert back.var["mt"].sum() == 13 and back.var["ribo"].sum() > 0
    assert back.var["hb"].sum() == 6  # HBP1 is not haemoglobin
    assert back.var.loc["HBP1", "hb"] == np.False_
    # QC metrics agree with a direct computation from the counts
    dense = counts.toarray()
    np.testing.assert_allclose(back.obs["total_counts"], dense.sum(1), rtol=1e-6)
    np.testing.assert_array_equal(back.obs["n_genes_by_counts"], (dense > 0).sum(1))
    mt = np.array([g.startswith("MT-") for g in genes])
    np.testing.assert_allclose(
        back.obs["pct_counts_mt"], 100 * dense[:, mt].sum(1) / dense.sum(1), rtol=1e-5
    )
    assert "pct_counts_in_top_20_genes" in back.obs.columns
    assert "pct_counts_in_top_100_genes" in back.obs.columns
    prov = back.uns["scingest"]
    assert prov["input"]["sha256"][0] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert int(prov["input"]["sizes"][0]) == path.stat().st_size
    assert prov["input"]["format"] == "csv"
    assert prov["metadata"]["donor"] == 1
    assert {"anndata", "scanpy", "scingest"} <= set(prov["versions"])
    assert prov["params"]["organism"] == "human"
    assert not list(out.parent.glob(".*")), "no temporary file is left"


def test_organisms_and_regex_overrides(sample_file):
    path = sample_file[0]
    mouse = build_sample(path, sample="S", organism="mouse")
    assert mouse.var["mt"].sum() == 0
    custom = build_sample(path, sample="S", mito_regex="^(MT|mt)-", hb_regex=None)
    assert custom.var["mt"].sum() == 13 and custom.var["hb"].sum() == 6
    with pytest.raises(ScingestError, match="not a valid regex"):
        build_sample(path, sample="S", mito_regex="(")
    with pytest.raises(ScingestError, match="clash with columns the workflow writes"):
        build_sample(path, sample="S", metadata={"barcode": "x"})


def test_percent_top_larger_than_gene_count_does_not_break_qc(tmp_path):
    # scanpy raises for percent_top > n_vars; we leave such sizes out of the metrics, and
    # the top-20 flag, which needs the column, counts all genes (100% with 20 or fewer)
    path = tmp_path / "small.csv"
    path.write_text(",A-1,B-1\nMT-CO1,1,2\nACTB,3,0\n")
    adata = build_sample(path, sample="S", percent_top=(1, 20))
    np.testing.assert_allclose(adata.obs["pct_counts_in_top_1_genes"], [75.0, 100.0])
    np.testing.assert_allclose(adata.obs["pct_counts_in_top_20_genes"], [100.0, 100.0])
    assert not adata.obs["outlier_top20"].any()
