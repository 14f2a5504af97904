"""The on-disk merge of checkpoints (merge_checkpoints), and the filtered merge of its result."""

from __future__ import annotations

import logging
import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scingest.errors import ScingestError
from scingest.merge import merge_checkpoints
from scingest.sample import build_sample, write_h5ad
from scingest.synthetic import write_dense


def _checkpoint(tmp_path, name, genes, rng, n_cells=5):
    counts = sp.csr_matrix(rng.poisson(2, (n_cells, len(genes))).astype(np.float32))
    path = tmp_path / f"{name}.csv"
    write_dense(path, genes, [f"C{i}-1" for i in range(n_cells)], counts.astype(np.int64))
    out = tmp_path / f"{name}.h5ad"
    metadata = {"condition": name[:-1]}
    # G1/C0-1 names say nothing about the orientation: the file is written genes x cells
    write_h5ad(build_sample(path, sample=name, metadata=metadata, orientation="genes_x_cells"), out)
    return out, counts


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_merge_counts_report_and_var(tmp_path, join):
    rng = np.random.default_rng(0)
    a, ca = _checkpoint(tmp_path, "A1", ["MT-CO1", "ACTB", "GAPDH", "ONLY_A"], rng)
    b, cb = _checkpoint(tmp_path, "B1", ["MT-CO1", "GAPDH", "ACTB", "ONLY_B1", "ONLY_B2"], rng, 3)
    out = tmp_path / "merged.h5ad"
    report = merge_checkpoints({"B1": b, "A1": a}, out, join=join, report=tmp_path / "r.tsv")
    merged = ad.read_h5ad(out)

    assert merged.n_obs == 8 and merged.obs_names.is_unique
    assert merged.obs["sample"].cat.categories.tolist() == ["A1", "B1"]
    assert merged.obs_names[:2].tolist() == ["A1-C0-1", "A1-C1-1"]
    expected_genes = {"MT-CO1", "ACTB", "GAPDH"}
    if join == "outer":
        expected_genes |= {"ONLY_A", "ONLY_B1", "ONLY_B2"}
    assert set(merged.var_names) == expected_genes
    a_part = merged[merged.obs["sample"] == "A1"]
    np.testing.assert_array_equal(
        a_part[:, ["MT-CO1", "ACTB", "GAPDH"]].X.toarray(), ca[:, :3].toarray()
    )
    np.testing.assert_array_equal(
        a_part[:, ["MT-CO1", "ACTB", "GAPDH"]].layers["counts"].toarray(), ca[:, :3].toarray()
    )
    b_part = merged[merged.obs["sample"] == "B1"]
    np.testing.assert_array_equal(b_part[:, ["GAPDH"]].X.toarray(), cb[:, [1]].toarray())
    if join == "outer":
        assert b_part[:, ["ONLY_A"]].X.sum() == 0
        np.testing.assert_array_equal(b_part[:, ["ONLY_B2"]].X.toarray(), cb[:, [4]].toarray())

    table = pd.read_csv(tmp_path / "r.tsv", sep="\t").set_index("sample")
    pd.testing.assert_frame_equal(table, report.set_index("sample"))
    if join == "inner":
        assert table.loc["A1", "genes_dropped"] == 1 and table.loc["B1", "genes_dropped"] == 2
        assert table["genes_filled"].sum() == 0
    else:
        assert table.loc["A1", "genes_filled"] == 2 and table.loc["B1", "genes_filled"] == 1
        assert table["genes_dropped"].sum() == 0
    # gene flags agree across samples and are kept; per-sample gene metrics are not
    assert merged.var.loc["MT-CO1", "mt"] and not merged.var.loc["ACTB", "mt"]
    assert "n_cells_by_counts" not in merged.var.columns
    assert set(merged.uns["scingest"]["samples"]) == {"A1", "B1"}
    assert merged.uns["scingest"]["merge"]["join"] == join


def test_merge_refuses_disjoint_genes_for_inner(tmp_path):
    rng = np.random.default_rng(1)
    a, _ = _checkpoint(tmp_path, "A1", ["G1", "G2"], rng)
    b, _ = _checkpoint(tmp_path, "B1", ["G3", "G4"], rng)
    with pytest.raises(ScingestError, match="share no gene"):
        merge_checkpoints({"A1": a, "B1": b}, tmp_path / "m.h5ad", join="inner")
    assert not (tmp_path / "m.h5ad").exists()
    assert not list(tmp_path.glob(".m.h5ad*")), "no temporary file is left"


def test_merge_var_keeps_only_agreeing_columns(tmp_path, caplog):
    def merged_var(frames):
        paths = {}
        for name, var in frames.items():
            adata = ad.AnnData(sp.csr_matrix(np.ones((1, len(var)), dtype=np.float32)), var=var)
            adata.obs_names = [f"{name}-C1"]
            paths[name] = tmp_path / f"{name}.h5ad"
            write_h5ad(adata, paths[name])
        out = tmp_path / "merged.h5ad"
        merge_checkpoints(paths, out, join="outer")
        merged = ad.read_h5ad(out)
        assert merged.var_names.tolist() == ["G1", "G2", "G3"]
        return merged.var

    a = pd.DataFrame({"ids": ["E1", "E2"], "n": [1, 2]}, index=["G1", "G2"])
    b = pd.DataFrame({"ids": ["E2", "E3"], "n": [5, 6]}, index=["G2", "G3"])
    merged = merged_var({"a": a, "b": b})
    assert merged.columns.tolist() == ["ids"]
    assert merged["ids"].tolist() == ["E1", "E2", "E3"]
    # an annotation that disagrees on a gene (a symbol renamed between references) stays,
    # with the first sample's value, and the log names the gene; a per-sample measurement
    # that disagrees ("n") is left out, and the log says why
    b.loc["G2", "ids"] = "OTHER"
    with caplog.at_level(logging.INFO, logger="scingest.merge"):
        assert merged_var({"a": a, "b": b})["ids"].tolist() == ["E1", "E2", "E3"]
    assert "var column ids: 1 gene(s) have another value in sample b than in a" in caplog.text
    assert "G2: 'E2' vs 'OTHER'" in caplog.text
    assert "var column n left out: values differ between samples" in caplog.text


def _reference(paths, join):
    """What anndata's in-memory concat gives, for comparison with the streamed merge."""
    adatas = [ad.read_h5ad(p) for _, p in sorted(paths.items())]
    return ad.concat(adatas, join=join, merge="same")


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_merge_equals_in_memory_concat_whatever_the_block_size(tmp_path, join):
    rng = np.random.default_rng(4)
    genes = [f"G{i}" for i in range(30)]
    paths = {
        "S1": _checkpoint(tmp_path, "S1", genes, rng, 9)[0],
        "S2": _checkpoint(tmp_path, "S2", [*genes[5:], "X1", "X2"], rng, 4)[0],
        "S3": _checkpoint(tmp_path, "S3", genes[::-1], rng, 7)[0],
    }
    expected = _reference(paths, join)
    for block_nnz, compression in [(1, "none"), (25, "gzip"), (10**6, "lzf")]:
        out = tmp_path / f"m_{block_nnz}.h5ad"
        merge_checkpoints(paths, out, join=join, block_nnz=block_nnz, compression=compression)
        merged = ad.read_h5ad(out)
        assert merged.obs_names.tolist() == expected.obs_names.tolist()
        assert set(merged.var_names) == set(expected.var_names)
        assert merged.X.has_sorted_indices and merged.layers["counts"].has_sorted_indices
        merged = merged[:, expected.var_names]
        for got, want in [
            (merged.X, expected.X),
            (merged.layers["counts"], expected.layers["counts"]),
        ]:
            assert sp.isspmatrix_csr(got)
            np.testing.assert_array_equal(got.toarray(), want.toarray())
        pd.testing.assert_frame_equal(
            merged.obs.drop(columns="sample"),
            expected.obs.drop(columns="sample"),
            check_categorical=False,
        )
        with h5py.File(out) as f:
            stored = f["X/data"].compression
        assert stored == (None if compression == "none" else compression)


def test_merge_of_one_sample_is_that_sample(tmp_path):
    rng = np.random.default_rng(5)
    path, counts = _checkpoint(tmp_path, "A1", ["MT-CO1", "ACTB", "GAPDH"], rng)
    merge_checkpoints({"A1": path}, tmp_path / "m.h5ad", report=tmp_path / "r.tsv")
    merged, sample = ad.read_h5ad(tmp_path / "m.h5ad"), ad.read_h5ad(path)
    np.testing.assert_array_equal(merged.X.toarray(), counts.toarray())
    assert merged.obs_names.tolist() == sample.obs_names.tolist()
    assert merged.var_names.tolist() == sample.var_names.tolist()
    assert merged.obs["sample"].cat.categories.tolist() == ["A1"]
    assert pd.read_csv(tmp_path / "r.tsv", sep="\t")["genes_dropped"].tolist() == [0]


def _with_obsm(tmp_path, name, features, rng, n_cells=4, extra=None):
    genes = ["MT-CO1", "ACTB", "GAPDH"]
    x = sp.csr_matrix(rng.poisson(2, (n_cells, 3)).astype(np.float32))
    adata = ad.AnnData(
        x,
        obs=pd.DataFrame(
            {"sample": pd.Categorical([name] * n_cells), **(extra or {})},
            index=[f"{name}-C{i}" for i in range(n_cells)],
        ),
        var=pd.DataFrame(index=genes),
    )
    adata.layers["counts"] = x.copy()
    if features is not None:
        adt = sp.csr_matrix(rng.poisson(5, (n_cells, len(features))).astype(np.float32))
        adata.obsm["protein_counts"] = adt
        adata.uns["feature_names"] = {"protein_counts": np.array(features, dtype=object)}
    path = tmp_path / f"{name}.h5ad"
    write_h5ad(adata, path)
    return path, adata


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_merge_aligns_other_features_by_name(tmp_path, join):
    rng = np.random.default_rng(6)
    a, ada = _with_obsm(tmp_path, "A", ["CD3", "CD4", "CD8"], rng)
    b, adb = _with_obsm(tmp_path, "B", ["CD8", "CD3", "CD19"], rng)
    merge_checkpoints({"A": a, "B": b}, tmp_path / "m.h5ad", join=join, block_nnz=3)
    merged = ad.read_h5ad(tmp_path / "m.h5ad")
    names = list(merged.uns["feature_names"]["protein_counts"])
    expected = ["CD3", "CD8"] if join == "inner" else ["CD3", "CD4", "CD8", "CD19"]
    assert names == expected
    adt = merged.obsm["protein_counts"].toarray()
    for adata, rows, own in [
        (ada, slice(0, 4), ["CD3", "CD4", "CD8"]),
        (adb, slice(4, 8), ["CD8", "CD3", "CD19"]),
    ]:
        for j, feature in enumerate(names):
            want = (
                adata.obsm["protein_counts"][:, own.index(feature)].toarray().ravel()
                if feature in own
                else 0
            )
            np.testing.assert_array_equal(adt[rows, j], want)


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_merge_keeps_obsm_of_some_samples_and_fills_missing_obs(tmp_path, caplog, compression):
    # CITE-seq beside samples without protein: kept, empty rows and an indicator for the others
    rng = np.random.default_rng(7)
    a, ada = _with_obsm(
        tmp_path, "A", ["CD3"], rng, extra={"donor": [1, 1, 2, 2], "ok": [True] * 4}
    )
    b, _ = _with_obsm(tmp_path, "B", None, rng, extra={"batch": ["x", "y", "x", "y"]})
    c, adc = _with_obsm(tmp_path, "C", ["CD4", "CD3"], rng, n_cells=2)
    with caplog.at_level("WARNING"):
        merge_checkpoints({"A": a, "B": b, "C": c}, tmp_path / "m.h5ad", compression=compression)
    assert "obsm['protein_counts'] is in only 2 of 3 samples: kept" in caplog.text
    assert "obs['has_protein_counts']" in caplog.text
    merged = ad.read_h5ad(tmp_path / "m.h5ad")
    adt = merged.obsm["protein_counts"]
    assert sp.isspmatrix_csr(adt) and adt.shape == (10, 1) and adt.has_sorted_indices
    assert list(merged.uns["feature_names"]["protein_counts"]) == ["CD3"]  # inner join
    np.testing.assert_array_equal(adt[:4].toarray(), ada.obsm["protein_counts"].toarray())
    assert adt[4:8].nnz == 0
    np.testing.assert_array_equal(adt[8:].toarray(), adc.obsm["protein_counts"][:, [1]].toarray())
    assert merged.obs["has_protein_counts"].tolist() == [True] * 4 + [False] * 4 + [True] * 2
    # obs as anndata.concat joins it (outer): an int column some samples lack is float there;
    # text with gaps (object in memory) is stored as a categorical, as anndata's writer does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ad.concat([ad.read_h5ad(p) for p in (a, b, c)], join="outer").obs
    for column in ("donor", "ok", "batch"):
        assert merged.obs[column].dtype == theirs[column].dtype or column == "batch", column
    merged = merged[:8]
    assert merged.obs["donor"].tolist()[:4] == [1, 1, 2, 2] and merged.obs["donor"][4:].isna().all()
    assert merged.obs["ok"].dtype == "boolean" and merged.obs["ok"][4:].isna().all()
    assert merged.obs["batch"][:4].isna().all() and merged.obs["batch"][4:].tolist() == [
        "x",
        "y",
        "x",
        "y",
    ]


def test_filtered_merge_keeps_other_features_of_passing_cells(tmp_path):
    from scingest.filtering import filter_merged

    rng = np.random.default_rng(8)
    a, ada = _with_obsm(tmp_path, "A", ["CD3", "CD4"], rng, extra={"qc_pass": [True, False] * 2})
    merge_checkpoints({"A": a}, tmp_path / "m.h5ad")
    filter_merged(tmp_path / "m.h5ad", tmp_path / "f.h5ad", min_cells=0, chunk_nnz=2)
    filtered = ad.read_h5ad(tmp_path / "f.h5ad")
    assert filtered.obs_names.tolist() == ["A-C0", "A-C2"]
    np.testing.assert_array_equal(
        filtered.obsm["protein_counts"].toarray(), ada.obsm["protein_counts"][[0, 2]].toarray()
    )
    assert list(filtered.uns["feature_names"]["protein_counts"]) == ["CD3", "CD4"]


def _same_genes_checkpoints(tmp_path, genes_of, compression, seed=9):
    """Checkpoints built and written as ingest_sample does, with the given genes each."""
    rng = np.random.default_rng(seed)
    paths, counts = {}, {}
    for name, genes in genes_of.items():
        n_cells = int(rng.integers(3, 40))
        matrix = sp.random(n_cells, len(genes), density=0.3, format="csr", random_state=rng)
        matrix.data = rng.integers(1, 30, matrix.nnz).astype(np.float32)
        path = tmp_path / f"{name}.csv"
        write_dense(path, genes, [f"C{i}-1" for i in range(n_cells)], matrix.astype(np.int64))
        out = tmp_path / f"{name}.h5ad"
        # G1/C0-1 names say nothing about the orientation: the file is written genes x cells
        adata = build_sample(path, sample=name, orientation="genes_x_cells")
        write_h5ad(adata, out, compression=compression)
        paths[name], counts[name] = out, matrix
    return paths, counts


def _assert_equals_concat(out, paths, join):
    expected = _reference(paths, join)
    merged = ad.read_h5ad(out)
    assert merged.X.has_sorted_indices and merged.layers["counts"].has_sorted_indices
    # anndata orders an outer join's genes its own way; ours keeps the first sample's order
    assert set(merged.var_names) == set(expected.var_names)
    assert merged.obs_names.tolist() == expected.obs_names.tolist()
    merged = merged[:, expected.var_names].copy()
    for got, want in [
        (merged.X, expected.X),
        (merged.layers["counts"], expected.layers["counts"]),
    ]:
        assert sp.isspmatrix_csr(got) and got.dtype == want.dtype
        assert got.nnz == want.nnz
        np.testing.assert_array_equal(got.toarray(), want.toarray())
    pd.testing.assert_frame_equal(
        merged.obs.drop(columns="sample"), expected.obs.drop(columns="sample")
    )
    return merged


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
def test_checkpoint_stores_counts_once_and_reads_back_independent(tmp_path, compression):
    paths, counts = _same_genes_checkpoints(
        tmp_path, {"A1": [f"G{i}" for i in range(50)]}, compression
    )
    with h5py.File(paths["A1"]) as f:
        assert f["layers/counts"] == f["X"], "layers/counts is a hard link to X"
        assert "None" not in f["layers"]
    back = ad.read_h5ad(paths["A1"])
    back.X.data[:] = -1  # changing X in memory must not change the counts
    back.X.indices[:] = 0
    assert (back.X.toarray() < 0).any()
    np.testing.assert_array_equal(back.layers["counts"].toarray(), counts["A1"].toarray())
    assert back.layers["counts"].data is not back.X.data


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
def test_merge_of_shared_genes_copies_chunks_and_equals_concat(tmp_path, compression):
    genes = [f"G{i}" for i in range(60)]
    paths, _ = _same_genes_checkpoints(tmp_path, {f"S{i}": genes for i in range(4)}, compression)
    out = tmp_path / "m.h5ad"
    report = merge_checkpoints(paths, out, compression=compression, block_nnz=7)
    assert report["x_merge"].tolist() == ["copy"] * 4
    with h5py.File(out) as f:
        assert f["layers/counts"] == f["X"], "identical counts stored once in the merge too"
        assert f["X/data"].is_virtual
        parts = f["X/_parts"]
        assert len(parts) == 4
        for part in parts.values():  # each sample's values keep the requested compression
            assert part["data"].compression == (None if compression == "none" else compression)
    merged = _assert_equals_concat(out, paths, "inner")
    merged.X.data[:] = 0
    assert merged.layers["counts"].sum() > 0, "X and counts read back as independent arrays"
    # the merged file reads the same when backed (rows sliced across the parts)
    backed = ad.read_h5ad(out, backed="r")
    rows = slice(2, merged.n_obs - 3)
    np.testing.assert_array_equal(backed.X[rows].toarray(), ad.read_h5ad(out).X[rows].toarray())
    backed.file.close()
    # the filtered merge reads the joined parts and keeps the counts stored once
    from scingest.filtering import filter_merged

    filter_merged(out, tmp_path / "f.h5ad", min_cells=0, compression=compression)
    filtered, full = ad.read_h5ad(tmp_path / "f.h5ad"), ad.read_h5ad(out)
    with h5py.File(tmp_path / "f.h5ad") as f:
        assert f["layers/counts"] == f["X"]
    keep = full.obs["qc_pass"].to_numpy()
    assert 0 < keep.sum() < len(keep)
    np.testing.assert_array_equal(filtered.X.toarray(), full.X[keep].toarray())
    np.testing.assert_array_equal(filtered.layers["counts"].toarray(), full.X[keep].toarray())


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_outer_join_with_appended_genes_remaps_indices_and_equals_concat(tmp_path, compression):
    genes = [f"G{i}" for i in range(40)]
    genes_of = {
        "S1": genes,
        "S2": [*genes, "NEW1", "NEW2"],  # new genes at the end: values copied, indices remapped
        "S3": [*genes, "NEW3"],
        "S4": genes[:30],  # fewer genes, in the same order
    }
    paths, _ = _same_genes_checkpoints(tmp_path, genes_of, compression, seed=10)
    out = tmp_path / "m.h5ad"
    report = merge_checkpoints(paths, out, join="outer", compression=compression, block_nnz=5)
    # S1, S2 and S4 hold the first genes of the merged ones: their indices stay valid
    assert report["x_merge"].tolist() == ["copy", "copy", "remap", "copy"]
    assert report["genes_filled"].tolist() == [3, 1, 2, 13]
    _assert_equals_concat(out, paths, "outer")
    # an inner join drops genes: rows re-indexed, the dropped genes reported
    inner = tmp_path / "inner.h5ad"
    report = merge_checkpoints(paths, inner, join="inner", compression=compression)
    assert report["x_merge"].tolist() == ["reindex"] * 4
    assert report["genes_dropped"].tolist() == [10, 12, 11, 0]
    with h5py.File(inner) as f:
        assert not f["X/data"].is_virtual and f["layers/counts"] == f["X"]
    _assert_equals_concat(inner, paths, "inner")


def test_merge_of_checkpoints_with_separate_counts_equals_concat(tmp_path):
    # checkpoints written before counts were stored once: two copies, found equal, read once;
    # one sample whose counts differ from X keeps the layer separate in the merge
    rng = np.random.default_rng(11)
    genes = [f"G{i}" for i in range(20)]
    paths = {}
    for name in ("A", "B", "C"):
        x = sp.csr_matrix(rng.poisson(1, (6, 20)).astype(np.float32))
        adata = ad.AnnData(
            x,
            obs=pd.DataFrame(
                {"sample": pd.Categorical([name] * 6)}, index=[f"{name}-{i}" for i in range(6)]
            ),
            var=pd.DataFrame(index=genes),
        )
        adata.layers["counts"] = x * 2 if name == "C" else x.copy()
        paths[name] = tmp_path / f"{name}.h5ad"
        adata.write_h5ad(paths[name], compression="gzip")
    out = tmp_path / "m.h5ad"
    merge_checkpoints(paths, out, compression="gzip")
    with h5py.File(out) as f:
        assert f["layers/counts"] != f["X"]
    _assert_equals_concat(out, paths, "inner")


def test_merge_refuses_a_cell_name_in_two_checkpoints(tmp_path):
    rng = np.random.default_rng(12)
    a, _ = _with_obsm(tmp_path, "A", None, rng)
    b, _ = _with_obsm(tmp_path, "B", None, rng)
    adata = ad.read_h5ad(b)
    adata.obs_names = ["B-C0", "B-C1", "A-C2", "B-C3"]  # a cell of A again
    write_h5ad(adata, b)
    with pytest.raises(ScingestError, match="cell name 'A-C2' occurs in more than one"):
        merge_checkpoints({"A": a, "B": b}, tmp_path / "m.h5ad")
    assert not (tmp_path / "m.h5ad").exists()
