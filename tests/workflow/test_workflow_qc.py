"""QC through the real workflow: flags, summary, plots, report, filtered merge, overrides."""

from __future__ import annotations

import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import make_geo_folder, planned_jobs, run_workflow
from scingest.qc import OUTLIER_FLAGS

SAMPLES = [
    ("GSM5320459", "Ctrl1", 60, 11),
    ("GSM5320463", "Pre1", 50, 12),
    ("GSM5320467", "Post2", 45, 13),
]
OVERVIEW = ("violins", "counts_vs_genes", "barcode_rank", "cells_per_sample")


@pytest.fixture
def project(tmp_path):
    contents = make_geo_folder(tmp_path / "data", SAMPLES)
    return tmp_path, contents


def test_flags_summary_plots_report_and_filtered_merge(project):
    workdir, contents = project
    # a first run discovers the files; the resolved sheet then gets a per-sample override
    run_workflow(workdir, "--until", "write_samplesheet", config={"input_dir": "data"})
    sheet = pd.read_csv(workdir / "results" / "samplesheet.tsv", sep="\t")
    sheet["qc_max_pct_mt"] = [np.nan, 1.0, np.nan]  # Ctrl1, Post2, Pre1
    sheet.to_csv(workdir / "sheet.tsv", sep="\t", index=False)
    config = {"samples": "sheet.tsv", "filter_merged": True, "filter_min_cells": 5}
    run_workflow(workdir, config=config)
    results = workdir / "results"

    merged = ad.read_h5ad(results / "merged.h5ad")
    assert merged.n_obs == sum(len(c) for _, c, _ in contents.values()), "no cell is lost"
    assert {"qc_pass", *OUTLIER_FLAGS} <= set(merged.obs.columns)
    assert "qc_max_pct_mt" not in merged.obs.columns

    # the override reached Post2 only: its mito limit is 1%, the others' is 8% or less
    limits = {}
    for sample in contents:
        ckpt = ad.read_h5ad(results / "samples" / f"{sample}.h5ad")
        limits[sample] = ckpt.uns["scingest"]["qc_thresholds"]["outlier_mt"][1]
        assert (ckpt.obs["qc_pass"] == ~ckpt.obs[list(OUTLIER_FLAGS)].any(axis=1)).all()
    assert limits["Post2"] == 1.0 and limits["Ctrl1"] > 1.0 and limits["Pre1"] > 1.0
    post2 = merged.obs[merged.obs["sample"] == "Post2"]
    assert post2["outlier_mt"].all(), "5% mito is above Post2's 1% limit"

    summary = pd.read_csv(results / "qc" / "qc_summary.tsv", sep="\t").set_index("sample")
    for sample, obs in merged.obs.groupby("sample", observed=True):
        row = summary.loc[sample]
        assert row["cells"] == len(obs)
        assert row["cells_pass"] == obs["qc_pass"].sum()
        for flag in OUTLIER_FLAGS:
            assert row[f"cells_{flag}"] == obs[flag].sum()
        assert row["median_total_counts"] == pytest.approx(obs["total_counts"].median(), 1e-3)
    assert summary.loc["Post2", "limit_pct_mt_high"] == 1.0
    mqc = (results / "qc" / "qc_summary_mqc.tsv").read_text()
    assert "# plot_type: 'table'" in mqc and "# id: 'scingest_qc'" in mqc

    filtered = ad.read_h5ad(results / "merged_filtered.h5ad")
    assert filtered.obs_names.tolist() == merged.obs_names[merged.obs["qc_pass"]].tolist()
    assert (filtered.var["n_cells_pass"] >= 5).all()

    for name in OVERVIEW:
        assert (results / "qc" / "plots" / f"{name}.png").stat().st_size > 10_000
    for sample in contents:
        assert (results / "qc" / "samples" / f"{sample}_qc.png").stat().st_size > 10_000

    # the report holds the plots, grouped by sample, with their captions
    run_workflow(workdir, "--report", "report.html", config=config)
    html = (workdir / "report.html").read_text()
    for text in ("violins.png", "barcode_rank.png", "qc_summary.tsv", "Post2_qc.png"):
        assert text in html
    assert "QC per sample" in html and "QC overview" in html
    assert re.search(r"Barcode-rank", html)

    # an override changed in the sheet reruns that sample and what follows, nothing else
    sheet.loc[sheet["sample"] == "Post2", "qc_max_pct_mt"] = 2.0
    sheet.to_csv(workdir / "sheet.tsv", sep="\t", index=False)
    jobs = planned_jobs(workdir, config)
    assert jobs["ingest_sample"] == 1  # which draws its QC figure too
    # a changed config limit reruns every sample
    jobs = planned_jobs(workdir, {**config, "qc_nmads": 4})
    assert jobs["ingest_sample"] == 3


def test_filtered_merge_is_off_by_default(project):
    workdir, _ = project
    jobs = planned_jobs(workdir, {"input_dir": "data"})
    assert "filter_merged" not in jobs
    assert jobs["ingest_sample"] == 3 and jobs["summarize_qc"] == 1
