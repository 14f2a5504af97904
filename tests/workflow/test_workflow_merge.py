"""The merge through the real workflow: chunk copy, counts stored once, CITE-seq beside
samples without protein."""

from __future__ import annotations

import anndata as ad
import h5py
import numpy as np
import pandas as pd

from conftest import run_workflow
from helpers.formats import make_cells, write_10x, write_10x_h5

PATTERN = (
    r"^(?P<sample_id>GSM\d+)_(?P<sample>(?P<condition>[A-Za-z]+)(?P<donor>\d+))_"
    r"(?:filtered_feature_bc_matrix(?:\.h5)?)$"
)


def test_cite_seq_beside_rna_only_samples_copied_merge_and_filter(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    samples = {
        "Ctrl1": make_cells(n_cells=14, seed=1, n_antibodies=3),
        "Post1": make_cells(n_cells=9, seed=3, n_antibodies=3),
        "Pre1": make_cells(n_cells=11, seed=2),  # no protein
    }
    write_10x_h5(data / "GSM1_Ctrl1_filtered_feature_bc_matrix.h5", samples["Ctrl1"])
    write_10x(data / "GSM3_Post1_filtered_feature_bc_matrix", samples["Post1"])
    write_10x(data / "GSM2_Pre1_filtered_feature_bc_matrix", samples["Pre1"])
    cfg = {
        "input_dir": "data",
        "filename_pattern": f"'{PATTERN}'",
        "other_features": "obsm",
        "filter_merged": True,
        "filter_min_cells": 0,
    }
    run_workflow(tmp_path, config=cfg)

    results = tmp_path / "results"
    for sample in samples:  # every checkpoint stores its counts once
        with h5py.File(results / "samples" / f"{sample}.h5ad") as f:
            assert f["layers/counts"] == f["X"]
    report = pd.read_csv(results / "merge_report.tsv", sep="\t").set_index("sample")
    assert report["x_merge"].tolist() == ["copy"] * 3  # one reference: chunks copied
    with h5py.File(results / "merged.h5ad") as f:
        assert f["X/data"].is_virtual and f["layers/counts"] == f["X"]

    merged = ad.read_h5ad(results / "merged.h5ad")
    assert merged.obs["sample"].cat.categories.tolist() == ["Ctrl1", "Post1", "Pre1"]
    antibodies = [f"CD{i}_TotalSeqB" for i in range(3)]
    assert list(merged.uns["feature_names"]["protein_counts"]) == antibodies
    for sample, cells in samples.items():
        rows = (merged.obs["sample"] == sample).to_numpy()
        np.testing.assert_array_equal(
            merged.X[rows].toarray(), cells.counts[:, cells.gex].toarray()
        )
        adt = merged.obsm["protein_counts"][rows]
        has = merged.obs["has_protein_counts"].to_numpy()[rows]
        if sample == "Pre1":
            assert adt.nnz == 0 and not has.any()
        else:
            np.testing.assert_array_equal(adt.toarray(), cells.counts[:, ~cells.gex].toarray())
            assert has.all()
    merged.X.data[:] = 0
    assert merged.layers["counts"].sum() > 0
    log = (tmp_path / "logs" / "merge_samples" / "merge_samples.log").read_text()
    assert "obsm['protein_counts'] is in only 2 of 3 samples: kept" in log

    filtered = ad.read_h5ad(results / "merged_filtered.h5ad")
    keep = merged.obs["qc_pass"].to_numpy()
    assert (
        filtered.obs["has_protein_counts"].tolist()
        == merged.obs["has_protein_counts"][keep].tolist()
    )
    np.testing.assert_array_equal(
        filtered.obsm["protein_counts"].toarray(), merged.obsm["protein_counts"][keep].toarray()
    )
    with h5py.File(results / "merged_filtered.h5ad") as f:
        assert f["layers/counts"] == f["X"]
