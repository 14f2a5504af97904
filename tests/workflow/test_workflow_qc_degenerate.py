"""Through the real workflow: single nuclei (most without mito counts) keep a sane mito
limit, every documented override moves it, and doublets=scrublet flags doublets."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import yaml

from conftest import REPO, run_workflow
from helpers.qc import doublet_counts, nuclei_counts
from scingest.qc import MIN_LIMIT_PCT_MT, OUTLIER_FLAGS
from scingest.synthetic import write_dense


def _mito_limit(workdir) -> tuple[float, pd.Series]:
    summary = pd.read_csv(workdir / "results/qc/qc_summary.tsv", sep="\t").set_index("sample")
    return float(summary.loc["Nuc1", "limit_pct_mt_high"]), summary.loc["Nuc1"]


def test_single_nucleus_mito_limit_and_its_overrides(tmp_path):
    genes, cells, counts = nuclei_counts(2000, seed=16)
    write_dense(tmp_path / "data" / "GSM1_Nuc1_count_matrix.csv.gz", genes, cells, counts)
    run_workflow(tmp_path, config={"input_dir": "data"})

    limit, row = _mito_limit(tmp_path)
    assert limit >= MIN_LIMIT_PCT_MT, "the limit no longer collapses to the median 0"
    assert row["cells_outlier_mt"] <= 20 and row["pct_cells_pass"] > 90
    log = (tmp_path / "logs/ingest_sample/Nuc1.log").read_text()
    assert "MAD of pct_counts_mt is 0" in log and "degenerate" in log
    assert f"the floor {MIN_LIMIT_PCT_MT:g}%" in log

    # qc_nmads_mt moves the limit (up to qc_max_pct_mt, 8 by default)
    run_workflow(tmp_path, config={"input_dir": "data", "qc_nmads_mt": 1000})
    assert _mito_limit(tmp_path)[0] == 8.0

    # the sheet column qc_max_pct_mt sets this sample's limit
    sheet = pd.read_csv(tmp_path / "results/samplesheet.tsv", sep="\t")
    sheet["qc_max_pct_mt"] = [1.0]
    sheet.to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    run_workflow(tmp_path, config={"samples": "sheet.tsv"})
    limit, row = _mito_limit(tmp_path)
    ckpt = ad.read_h5ad(tmp_path / "results/samples/Nuc1.h5ad")
    assert limit == 1.0
    assert row["cells_outlier_mt"] == (ckpt.obs["pct_counts_mt"] > 1.0).sum() > 0

    # qc_nmads_mt: null (a config file) leaves only the hard limit
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config.update(qc_nmads_mt=None, qc_max_pct_mt=15)
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    run_workflow(tmp_path, "--configfile", "mine.yaml", config={"input_dir": "data"})
    assert _mito_limit(tmp_path)[0] == 15.0


def test_doublets_scrublet_flags_without_removing(tmp_path):
    genes, cells, counts, planted = doublet_counts(600, seed=3, n_doublets=30)
    write_dense(tmp_path / "data" / "GSM2_Mix1_count_matrix.csv.gz", genes, cells, counts)
    write_dense(tmp_path / "data" / "GSM3_Mix2_count_matrix.csv.gz", *nuclei_counts(300)[:3])
    run_workflow(tmp_path, config={"input_dir": "data", "doublets": "scrublet"})
    results = tmp_path / "results"

    merged = ad.read_h5ad(results / "merged.h5ad")
    assert merged.n_obs == 900, "doublets are flagged, never removed"
    obs = merged.obs
    assert {"doublet_score", "predicted_doublet"} <= set(obs.columns)
    outliers = obs[list(OUTLIER_FLAGS)].any(axis=1)
    assert (obs["qc_pass"] == ~(outliers | obs["predicted_doublet"].astype(bool))).all()
    mix1 = obs[obs["sample"] == "Mix1"]
    called = mix1["predicted_doublet"].to_numpy(dtype=bool)
    assert called[planted].mean() > 0.5
    assert called.sum() < 2 * len(planted)

    summary = pd.read_csv(results / "qc/qc_summary.tsv", sep="\t").set_index("sample")
    for sample, frame in obs.groupby("sample", observed=True):
        assert summary.loc[sample, "cells_doublet"] == frame["predicted_doublet"].sum()
    assert np.isfinite(summary.loc["Mix1", "limit_doublet_score"])
    mqc = (results / "qc/qc_summary_mqc.tsv").read_text()
    assert "cells_doublet" in mqc.splitlines()[-3]
    assert (results / "qc/samples/Mix1_qc.png").stat().st_size > 10_000
    log = (tmp_path / "logs/ingest_sample/Mix1.log").read_text()
    assert "scrublet (seed 0) calls" in log
