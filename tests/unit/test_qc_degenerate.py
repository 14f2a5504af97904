"""QC on degenerate distributions (single nuclei: most have no mito count), the mito
overrides, doublet flags (scrublet) and plots that stay truthful at 50,000 cells."""

from __future__ import annotations

import logging

import anndata as ad
import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.collections import PathCollection

from conftest import REPO
from helpers.qc import doublet_counts, nuclei_counts
from scingest.plots import (
    MAX_JITTER,
    MAX_SCATTER,
    plot_counts_vs_genes,
    plot_overview,
    plot_sample,
    plural,
)
from scingest.qc import (
    MIN_LIMIT_PCT_MT,
    compute_qc_metrics,
    flag_doublets,
    flag_genes,
    flag_outliers,
    gene_set_patterns,
    robust_spread,
)
from scingest.sample import build_sample, write_h5ad
from scingest.summary import write_qc_summary
from scingest.synthetic import write_dense


def _annotated(genes, cells, counts) -> ad.AnnData:
    adata = ad.AnnData(counts.astype(np.float32))
    adata.obs_names = cells
    adata.var_names = genes
    flag_genes(adata, gene_set_patterns("human"))
    compute_qc_metrics(adata)
    return adata


@pytest.fixture(scope="module")
def nuclei_50k() -> ad.AnnData:
    return _annotated(*nuclei_counts(50_000, seed=5))


def test_robust_spread_falls_back_to_the_mean_absolute_deviation():
    values = np.array([0.0] * 6 + [1.0, 2.0, 1.0, 2.0])
    median, spread, degenerate = robust_spread(values)
    assert (median, degenerate) == (0.0, True)
    assert spread == pytest.approx(0.8453 * 0.6)
    assert robust_spread(np.array([1.0, 2.0, 4.0])) == (2.0, 1.0, False)
    assert robust_spread(np.zeros(5)) == (0.0, 0.0, True)


def test_nuclei_mito_limit_does_not_collapse_to_zero(nuclei_50k, caplog):
    obs = nuclei_50k.obs
    assert (obs["pct_counts_mt"] == 0).mean() == pytest.approx(0.6, abs=0.01)
    assert 0 < obs["pct_counts_mt"].max() <= 1.77
    with caplog.at_level(logging.WARNING, logger="scingest.qc"):
        limits = flag_outliers(nuclei_50k)
    assert limits["outlier_mt"][1] >= MIN_LIMIT_PCT_MT
    assert obs["outlier_mt"].sum() == 0, "1-2 mito counts of a nucleus are not an outlier"
    assert obs["qc_pass"].mean() > 0.95
    text = caplog.text
    assert "MAD of pct_counts_mt is 0" in text and "degenerate" in text
    assert f"the floor {MIN_LIMIT_PCT_MT:g}%" in text


def test_mito_overrides_change_the_limit(nuclei_50k):
    default = flag_outliers(nuclei_50k)["outlier_mt"][1]
    wide = flag_outliers(nuclei_50k, nmads_mt=1000, max_pct_mt=None)["outlier_mt"][1]
    assert wide > 50 * default, "with a MAD of 0, nmads_mt still moves the limit"
    assert flag_outliers(nuclei_50k, max_pct_mt=0.5)["outlier_mt"][1] == 0.5
    assert nuclei_50k.obs["outlier_mt"].sum() == (nuclei_50k.obs["pct_counts_mt"] > 0.5).sum()
    unset = flag_outliers(nuclei_50k, nmads_mt=None, max_pct_mt=15)
    assert unset["outlier_mt"] == [-np.inf, 15.0]
    none = flag_outliers(nuclei_50k, nmads_mt=None, max_pct_mt=None)
    assert none["outlier_mt"] == [-np.inf, np.inf]
    assert not nuclei_50k.obs["outlier_mt"].any()


def test_schema_accepts_null_nmads_mt_and_the_doublet_methods():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    assert config["doublets"] == "none" and config["qc_nmads_mt"] == 3
    for change in ({"qc_nmads_mt": None}, {"doublets": "scrublet"}):
        jsonschema.validate({**config, **change}, schema)
    for bad in ({"qc_nmads_mt": 0}, {"doublets": "DoubletFinder"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**config, **bad}, schema)


def test_scrublet_flags_planted_doublets_deterministically(tmp_path):
    genes, cells, counts, planted = doublet_counts(600, seed=3)
    path = write_dense(tmp_path / "Mix1.csv.gz", genes, cells, counts)
    first = build_sample(path, sample="Mix1", doublets="scrublet")
    second = build_sample(path, sample="Mix1", doublets="scrublet")
    pd.testing.assert_frame_equal(first.obs, second.obs)
    obs = first.obs
    score = obs["doublet_score"].to_numpy()
    singlets = np.setdiff1d(np.arange(len(obs)), planted)
    assert score[planted].mean() > 2 * score[singlets].mean()
    called = obs["predicted_doublet"].to_numpy()
    assert called[planted].mean() > 0.5 and called[singlets].mean() < 0.05
    # flagged, never removed: qc_pass is cleared, every cell stays
    assert len(obs) == 600 and not obs.loc[called, "qc_pass"].any()
    threshold = first.uns["scingest"]["qc_thresholds"]["doublet"][1]
    np.testing.assert_array_equal(called, score > threshold)

    out = tmp_path / "Mix1.h5ad"
    write_h5ad(first, out)
    table = write_qc_summary({"Mix1": out}, tmp_path / "qc.tsv", multiqc=tmp_path / "m.tsv")
    assert table.loc[0, "cells_doublet"] == called.sum()
    assert table.loc[0, "limit_doublet_score"] == pytest.approx(threshold)
    assert "cells_doublet" in (tmp_path / "m.tsv").read_text()


def test_scrublet_scores_a_sample_of_thousands_of_cells():
    """Above ~2,000 cells scanpy's scrublet finds neighbours with pynndescent (with the
    simulated doublets, over 4,096 observations): a seed-size sample takes that path, the
    600 cells above do not. pynndescent 0.7 broke it under scanpy 1.11.5 and 1.12.4 (an
    AttributeError on csr_array.getnnz), hence pyproject.toml's pynndescent < 0.7."""
    genes, cells, counts, planted = doublet_counts(3_000, seed=5, n_doublets=150)
    adata = _annotated(genes, cells, counts)
    flag_outliers(adata)
    low, threshold = flag_doublets(adata, "scrublet")
    score = adata.obs["doublet_score"].to_numpy()
    assert np.isfinite(score).all() and low == -np.inf and np.isfinite(threshold)
    singlets = np.setdiff1d(np.arange(len(score)), planted)
    assert score[planted].mean() > 2 * score[singlets].mean()
    called = adata.obs["predicted_doublet"].to_numpy()
    assert called[planted].mean() > 0.5 and called[singlets].mean() < 0.05


def test_doublets_none_adds_nothing_and_small_samples_are_not_scored(caplog):
    genes, cells, counts, _ = doublet_counts(60, seed=4, n_doublets=3)
    adata = _annotated(genes, cells, counts)
    flag_outliers(adata)
    before = adata.obs.copy()
    assert flag_doublets(adata, "none") is None
    pd.testing.assert_frame_equal(adata.obs, before)
    with caplog.at_level(logging.WARNING, logger="scingest.qc"):
        assert flag_doublets(adata, "scrublet") == [-np.inf, np.inf]
    assert "too few for scrublet" in caplog.text
    assert adata.obs["doublet_score"].isna().all() and not adata.obs["predicted_doublet"].any()


def test_plots_stay_truthful_at_50000_cells(nuclei_50k, tmp_path):
    from matplotlib.figure import Figure

    adata = nuclei_50k
    limits = flag_outliers(adata, nmads=1)  # many failing cells
    obs = adata.obs.assign(sample="Nuc1")
    failing = int((~obs["qc_pass"]).sum())
    assert failing > 5000
    ax = Figure().subplots()
    plot_counts_vs_genes(obs, limits=limits, ax=ax, title="Nuc1")
    drawn = [len(c.get_offsets()) for c in ax.collections if len(c.get_offsets())]
    assert sum(drawn) <= 2 * MAX_SCATTER and max(drawn) == MAX_SCATTER
    rings = [c for c in ax.collections if c.get_label().startswith("fails QC")]
    points = [c for c in ax.collections if len(c.get_offsets()) == MAX_SCATTER]
    assert rings[0].get_zorder() < points[0].get_zorder(), "rings never hide the cloud"
    assert f"fails QC ({failing:,} cells)" == rings[0].get_label()
    assert f"{MAX_SCATTER:,} of 50,000 cells drawn" in ax.get_title()
    plot_sample("Nuc1", obs, limits, tmp_path / "Nuc1_qc.png")
    assert (tmp_path / "Nuc1_qc.png").stat().st_size > 10_000
    assert plural(1, "sample") == "1 sample" and plural(2, "sample") == "2 samples"
    assert plural(1000, "cell") == "1,000 cells"


def test_per_sample_violins_draw_a_bounded_number_of_points(nuclei_50k, tmp_path, monkeypatch):
    import matplotlib.figure

    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    limits = flag_outliers(nuclei_50k, nmads=1)
    plot_sample("Nuc1", nuclei_50k.obs, limits, tmp_path / "x.png")
    (fig,) = saved
    violin_axes = fig.axes[:4]
    for ax in violin_axes:
        points = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
        assert 0 < points <= 3 * MAX_JITTER
        assert "of 50,000 cells drawn" in ax.get_xlabel()
        bodies = [c for c in ax.collections if c.get_zorder() == 3]
        assert bodies, "the violin lies above the points"


def test_overview_titles_say_one_sample(tmp_path, monkeypatch):
    import matplotlib.figure

    genes, cells, counts = nuclei_counts(300, seed=2)
    path = write_dense(tmp_path / "Nuc1.csv.gz", genes, cells, counts)
    write_h5ad(build_sample(path, sample="Nuc1"), tmp_path / "Nuc1.h5ad")
    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    outs = {k: tmp_path / f"{k}.png" for k in ("violins", "counts_vs_genes", "barcode_rank")}
    plot_overview({"Nuc1": tmp_path / "Nuc1.h5ad"}, cells=tmp_path / "cells.png", **outs)
    titles = " | ".join(
        t
        for fig in saved
        for ax in fig.axes
        for t in (ax.get_title(), *[leg.get_title().get_text() for leg in [ax.get_legend()] if leg])
    )
    assert "All cells of 1 sample (300 cells)" in titles
    assert "Barcode rank, 1 sample" in titles and "1 samples" not in titles
    assert "Cells per sample (1 sample, 300 cells)" in titles
