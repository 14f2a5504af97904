"""The checkpoint contract: names, reserved obs columns, validators, the QC-obs reader and the
skeleton of a new h5ad."""

from __future__ import annotations

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.io import write_elem

from scingest.checkpoint import (
    ELEMENT_GROUPS,
    QC_METRIC_COLUMNS,
    RESERVED_OBS_COLUMNS,
    check_csr,
    csr_group,
    feature_names_key,
    is_reserved_obs,
    new_h5ad,
    pct_top_column,
    read_feature_names,
    read_qc_obs,
    read_tables,
    sparse_obsm_keys,
)
from scingest.errors import ScingestError
from scingest.qc import OUTLIER_FLAGS, QC_VARS
from scingest.sample import build_sample, write_h5ad
from scingest.sheet import is_reserved_column
from scingest.synthetic import synthetic_counts, write_dense


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint as the sample job writes it, with metadata and doublet calls."""
    folder = tmp_path_factory.mktemp("checkpoint")
    genes, cells, counts = synthetic_counts(150, 120, seed=4, median_counts=600)
    path = write_dense(folder / "GSM1_Ctrl1_count_matrix.csv.gz", genes, cells, counts)
    adata = build_sample(
        path,
        sample="Ctrl1",
        metadata={"condition": "Ctrl", "donor": 1},
        percent_top=(10, 20),
        doublets="scrublet",
    )
    out = folder / "Ctrl1.h5ad"
    write_h5ad(adata, out)
    return out


def test_every_column_the_workflow_writes_is_reserved(checkpoint):
    obs, _ = read_tables(checkpoint)
    written = [c for c in obs.columns if c not in ("condition", "donor")]
    assert {"sample", "barcode", "qc_pass", "doublet_score", "predicted_doublet"} <= set(written)
    assert [c for c in written if not is_reserved_obs(c)] == []
    # and the sheet refuses them all as metadata columns
    assert all(is_reserved_column(c) for c in written)
    assert not is_reserved_obs("condition") and not is_reserved_obs("donor")


def test_reserved_names_derive_from_the_qc_metric_templates():
    for template in QC_METRIC_COLUMNS:
        for qc_var in QC_VARS:
            name = template.format(n=35, qc_var=qc_var)
            assert is_reserved_obs(name), name
    assert pct_top_column(20) == "pct_counts_in_top_20_genes"
    assert is_reserved_obs(pct_top_column(7))
    assert all(is_reserved_obs(flag) for flag in OUTLIER_FLAGS)
    assert {"sample", "barcode", "total_counts"} <= RESERVED_OBS_COLUMNS
    # a templated name is reserved only in the shape the template gives
    for free in ("n_genes", "donor_total", "mt", "counts_total", "outlier_", "total_counts-x"):
        assert not is_reserved_obs(free), free


def test_the_sheet_may_still_override_qc_settings():
    assert is_reserved_obs("qc_nmads")  # a QC prefix ...
    assert not is_reserved_column("qc_nmads")  # ... but a sheet override column


def test_read_qc_obs_gives_flags_and_limits(checkpoint):
    obs, limits = read_qc_obs(checkpoint)
    assert obs["qc_pass"].dtype == bool and len(obs) == 120
    assert set(limits) == {*OUTLIER_FLAGS, "doublet"}
    for flag in OUTLIER_FLAGS:
        lower, upper = limits[flag]
        assert isinstance(lower, float) and lower <= upper
    lower, upper = limits["outlier_counts"]
    counts = obs["total_counts"]
    np.testing.assert_array_equal(obs["outlier_counts"], (counts < lower) | (counts > upper))


def test_read_qc_obs_refuses_checkpoints_without_flags(tmp_path):
    adata = ad.AnnData(sp.csr_matrix(np.ones((2, 2), dtype=np.float32)))
    adata.write_h5ad(tmp_path / "old.h5ad")
    with pytest.raises(ScingestError, match="qc_pass"):
        read_qc_obs(tmp_path / "old.h5ad")


def test_read_tables_reads_obs_and_var_only(checkpoint):
    obs, var = read_tables(checkpoint)
    back = ad.read_h5ad(checkpoint)
    pd.testing.assert_frame_equal(obs, back.obs)
    pd.testing.assert_frame_equal(var, back.var)


def test_check_csr_and_csr_group(tmp_path, checkpoint):
    with h5py.File(checkpoint) as f:
        check_csr(f["X"], "X")
        group = csr_group(f, "layers/counts")
        assert group.attrs["encoding-type"] == "csr_matrix"
        # the counts layer is X, stored once (a hard link)
        assert group == f["X"]
        assert f["X/indices"].dtype == np.int32 and f["X/indptr"].dtype == np.int32
    dense = ad.AnnData(np.ones((2, 3), dtype=np.float32))
    dense.write_h5ad(tmp_path / "dense.h5ad")
    with h5py.File(tmp_path / "dense.h5ad") as f:
        with pytest.raises(ScingestError, match="X is stored as array, expected csr_matrix"):
            check_csr(f["X"], "X")
        with pytest.raises(ScingestError, match=r"dense\.h5ad"):
            csr_group(f, "X")
        with pytest.raises(ScingestError, match="no layers/counts"):
            csr_group(f, "layers/counts")


def test_sparse_obsm_keys_and_feature_names(tmp_path):
    adata = ad.AnnData(sp.csr_matrix(np.ones((3, 2), dtype=np.float32)))
    adata.obsm["Antibody_Capture_counts"] = sp.csr_matrix(np.eye(3, dtype=np.float32))
    adata.obsm["X_pca"] = np.zeros((3, 2))
    adata.uns["feature_names"] = {"Antibody_Capture_counts": np.array(["CD3", "CD4", "CD8"])}
    adata.write_h5ad(tmp_path / "a.h5ad")
    with h5py.File(tmp_path / "a.h5ad") as f:
        assert sparse_obsm_keys(f) == ["Antibody_Capture_counts"]
        assert feature_names_key("X_pca") == "uns/feature_names/X_pca"
        names = read_feature_names(f, "Antibody_Capture_counts")
        assert names.tolist() == ["CD3", "CD4", "CD8"]
        assert read_feature_names(f, "X_pca") is None
    ad.AnnData(np.ones((1, 1), dtype=np.float32)).write_h5ad(tmp_path / "b.h5ad")
    with h5py.File(tmp_path / "b.h5ad") as f:
        assert sparse_obsm_keys(f) == []


def test_new_h5ad_writes_a_file_anndata_reads(tmp_path):
    out = tmp_path / "sub" / "new.h5ad"
    obs = pd.DataFrame({"sample": pd.Categorical(["a", "a", "b"])}, index=["a-1", "a-2", "b-1"])
    var = pd.DataFrame({"gene_ids": ["E1", "E2"]}, index=["G1", "G2"])
    counts = sp.csr_matrix(np.array([[1, 0], [0, 2], [3, 4]], dtype=np.float32))
    with new_h5ad(out) as f:
        assert not out.exists()  # written under a temporary name
        assert f.attrs["encoding-type"] == "anndata" and f.attrs["encoding-version"] == "0.1.0"
        assert all(f[key].attrs["encoding-type"] == "dict" for key in ELEMENT_GROUPS)
        write_elem(f, "obs", obs)
        write_elem(f, "var", var)
        write_elem(f, "X", counts)
        write_elem(f["layers"], "counts", counts)  # anndata 0.13 refuses "/" in keys
        write_elem(f, "uns", {"scingest": {"n": 1}})
    back = ad.read_h5ad(out)
    assert back.shape == (3, 2) and (back.layers["counts"] != counts).nnz == 0
    assert list(back.obs_names) == ["a-1", "a-2", "b-1"]
    assert back.var["gene_ids"].tolist() == ["E1", "E2"] and back.uns["scingest"]["n"] == 1
    with h5py.File(out) as f:
        # strings in the legacy encoding, whichever anndata writes
        assert f["var/gene_ids"].attrs["encoding-type"] == "string-array"
        for key in ("varm", "obsp", "varp", "obsm"):
            assert key in f and len(f[key]) == 0


def test_new_h5ad_leaves_nothing_when_writing_fails(tmp_path):
    out = tmp_path / "new.h5ad"
    with pytest.raises(RuntimeError, match="disk full"), new_h5ad(out) as f:
        write_elem(f, "obs", pd.DataFrame(index=["c"]))
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []
