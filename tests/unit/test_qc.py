"""QC flags, summary, plots and the filtered merge, on data with planted outliers."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import REPO
from scingest.checkpoint import read_qc_samples
from scingest.errors import ScingestError
from scingest.filtering import filter_merged
from scingest.merge import merge_checkpoints
from scingest.plots import plot_overview, plot_sample_checkpoint
from scingest.qc import (
    OUTLIER_FLAGS,
    compute_qc_metrics,
    flag_genes,
    flag_outliers,
    gene_set_patterns,
    mad_limits,
)
from scingest.sample import build_sample, write_h5ad
from scingest.sheet import (
    SHEET_SCHEMA_PATH,
    read_sample_sheet,
    sample_metadata,
    sample_qc_overrides,
)
from scingest.summary import MULTIQC_HEADER, write_qc_summary
from scingest.synthetic import synthetic_counts, write_dense


def planted(n_cells: int = 400, seed: int = 1) -> tuple[ad.AnnData, dict[str, np.ndarray]]:
    """Cells with 5% mito, plus planted dying (25% mito), empty-ish and huge cells."""
    genes, cells, counts = synthetic_counts(300, n_cells, seed=seed, median_counts=2000)
    counts = counts.toarray().astype(np.float32)
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n_cells)
    dying, tiny, huge = idx[:10], idx[10:20], idx[20:25]
    mt = np.array([g.startswith("MT-") for g in genes])
    counts[np.ix_(dying, np.nonzero(mt)[0])] *= 6
    counts[tiny] = np.floor(counts[tiny] / 40)
    counts[huge] *= 30
    adata = ad.AnnData(sp.csr_matrix(counts))
    adata.obs_names = cells
    adata.var_names = genes
    flag_genes(adata, gene_set_patterns("human"))
    compute_qc_metrics(adata)
    return adata, {"dying": dying, "tiny": tiny, "huge": huge}


def test_mad_limits():
    values = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    assert mad_limits(values, 2) == (1.0, 5.0)  # median 3, MAD 1
    assert mad_limits(values, 2, side="upper") == (-np.inf, 5.0)
    assert mad_limits(np.ones(4), 3) == (1.0, 1.0)


def test_planted_outliers_are_flagged_and_no_cell_is_removed():
    adata, planted_cells = planted()
    limits = flag_outliers(adata, max_pct_mt=None)
    obs = adata.obs
    assert adata.n_obs == 400
    assert obs.iloc[planted_cells["dying"]]["outlier_mt"].all()
    assert obs.iloc[planted_cells["tiny"]]["outlier_counts"].all()
    assert obs.iloc[planted_cells["tiny"]]["outlier_genes"].all()
    assert obs.iloc[planted_cells["huge"]]["outlier_counts"].all()
    normal = np.setdiff1d(np.arange(400), np.concatenate(list(planted_cells.values())))
    assert obs.iloc[normal]["qc_pass"].mean() > 0.9
    assert (obs["qc_pass"] == ~obs[list(OUTLIER_FLAGS)].any(axis=1)).all()
    for flag in OUTLIER_FLAGS:
        assert obs[flag].dtype == bool
    lower, upper = limits["outlier_counts"]
    counts = obs["total_counts"]
    np.testing.assert_array_equal(obs["outlier_counts"], (counts < lower) | (counts > upper))
    assert limits["outlier_mt"][0] == -np.inf


def test_hard_limits_tighten_the_mad_limits():
    adata, _ = planted()
    limits = flag_outliers(adata, max_pct_mt=2.0, min_genes=250, nmads=1000)
    assert limits["outlier_mt"][1] == 2.0 and limits["outlier_genes"][0] == 250
    obs = adata.obs
    np.testing.assert_array_equal(obs["outlier_mt"], obs["pct_counts_mt"] > 2.0)
    np.testing.assert_array_equal(obs["outlier_genes"], obs["n_genes_by_counts"] < 250)
    assert not obs["outlier_counts"].any()


def test_top20_is_computed_when_percent_top_leaves_it_out():
    adata, _ = planted(100)
    expected = adata.obs.pop("pct_counts_in_top_20_genes")
    flag_outliers(adata)
    np.testing.assert_array_equal(adata.obs["pct_counts_in_top_20_genes"], expected)


def _counts(kind: str) -> ad.AnnData:
    """A sample whose counts are of ``kind``, with the gene-set flags."""
    rng = np.random.default_rng(5)
    n_cells, n_genes = (60, 15) if kind == "few genes" else (150, 400)
    dense = rng.poisson(rng.gamma(0.3, 4.0, size=(n_cells, n_genes))).astype(np.float32)
    if kind == "non-integer":
        dense *= rng.uniform(0.5, 1.5, size=dense.shape).astype(np.float32)
    if kind == "empty cells":
        dense[:4] = 0
    x = sp.csr_matrix(dense.astype(np.int32) if kind == "int32" else dense)
    if kind == "explicit zeros":
        x.data[::7] = 0  # stored zeros, which scanpy drops before counting genes
    adata = ad.AnnData(x)
    adata.var_names = [
        f"MT-{i}" if i < 6 else f"RPL{i}" if i % 9 == 0 else f"G{i}" for i in range(n_genes)
    ]
    flag_genes(adata, gene_set_patterns("human"))
    return adata


@pytest.mark.parametrize(
    "kind", ["float32", "int32", "few genes", "empty cells", "explicit zeros", "non-integer"]
)
def test_qc_metrics_equal_scanpys(kind):
    """Our QC metrics are scanpy's calculate_qc_metrics (same columns, order, dtypes and, for
    integer counts, the same values bit for bit) under the installed scanpy."""
    import scanpy as sc

    ours, theirs = _counts(kind), _counts(kind)
    compute_qc_metrics(ours)
    sizes = [n for n in (20, 50, 100) if n <= theirs.n_vars] or None
    sc.pp.calculate_qc_metrics(
        theirs, qc_vars=["mt", "ribo", "hb"], percent_top=sizes, inplace=True
    )
    mean = theirs.var["total_counts"].to_numpy(dtype=np.float64) / theirs.n_obs
    theirs.var["mean_counts"], theirs.var["log1p_mean_counts"] = mean, np.log1p(mean)  # 1.11's
    exact = kind != "non-integer"  # float32 sums in another order differ in the last bit
    pd.testing.assert_frame_equal(ours.obs, theirs.obs, check_exact=exact, rtol=1e-6)
    pd.testing.assert_frame_equal(ours.var, theirs.var, check_exact=exact, rtol=1e-6)
    assert ours.X.nnz == theirs.X.nnz  # explicit zeros dropped from X, as scanpy does
    if kind == "empty cells":
        assert ours.obs["pct_counts_mt"].iloc[:4].isna().all()


def _write_sample(tmp_path, name, seed, **kwargs):
    genes, cells, counts = synthetic_counts(
        120, 80, seed=seed, median_counts=800, high_mito_cells=0.1
    )
    path = write_dense(tmp_path / f"{name}.csv.gz", genes, cells, counts)
    adata = build_sample(path, sample=name, metadata={"condition": name[:-1]}, **kwargs)
    out = tmp_path / f"{name}.h5ad"
    write_h5ad(adata, out)
    return out


@pytest.fixture
def checkpoints(tmp_path):
    return {
        "Ctrl1": _write_sample(tmp_path, "Ctrl1", 1),
        "Pre1": _write_sample(tmp_path, "Pre1", 2, qc_max_pct_mt=4.0, qc_nmads=3),
        "Pre2": _write_sample(tmp_path, "Pre2", 3),
    }


def test_checkpoint_keeps_every_cell_with_flags_and_limits(checkpoints):
    ckpt = ad.read_h5ad(checkpoints["Pre1"])
    assert ckpt.n_obs == 80
    assert {"qc_pass", *OUTLIER_FLAGS} <= set(ckpt.obs.columns)
    thresholds = ckpt.uns["scingest"]["qc_thresholds"]
    assert thresholds["outlier_mt"][1] <= 4.0
    assert ckpt.uns["scingest"]["params"]["outlier_limits"]["max_pct_mt"] == 4.0


def test_summary_equals_the_checkpoints(checkpoints, tmp_path):
    table = write_qc_summary(checkpoints, tmp_path / "s.tsv", multiqc=tmp_path / "s_mqc.tsv")
    read = pd.read_csv(tmp_path / "s.tsv", sep="\t").set_index("sample")
    for sample, path in checkpoints.items():
        a = ad.read_h5ad(path)
        row = read.loc[sample]
        assert row["cells"] == a.n_obs and row["genes"] == a.n_vars
        assert row["genes_detected"] == int((a.X.getnnz(axis=0) > 0).sum())
        assert row["median_total_counts"] == pytest.approx(np.median(a.X.sum(axis=1).A1), rel=1e-3)
        assert row["median_pct_counts_mt"] == pytest.approx(
            np.median(a.obs["pct_counts_mt"]), rel=1e-3
        )
        for flag in OUTLIER_FLAGS:
            assert row[f"cells_{flag}"] == a.obs[flag].sum()
        assert row["cells_pass"] == a.obs["qc_pass"].sum()
        assert row["cells_flagged"] + row["cells_pass"] == a.n_obs
        limit = a.uns["scingest"]["qc_thresholds"]["outlier_mt"][1]
        assert row["limit_pct_mt_high"] == pytest.approx(limit, rel=1e-3)
    assert len(table) == 3
    mqc = (tmp_path / "s_mqc.tsv").read_text()
    assert mqc.startswith(MULTIQC_HEADER)
    body = pd.read_csv(tmp_path / "s_mqc.tsv", sep="\t", comment="#")
    pd.testing.assert_frame_equal(body, read.reset_index())
    # the obs and limits the QC job has read already (for its plots) give the same table
    again = write_qc_summary(checkpoints, tmp_path / "t.tsv", loaded=read_qc_samples(checkpoints))
    pd.testing.assert_frame_equal(again, table)


def test_plots_are_pngs(checkpoints, tmp_path):
    names = ("violins", "counts_vs_genes", "barcode_rank", "cells")
    plot_overview(checkpoints, **{n: tmp_path / f"{n}.png" for n in names})
    plot_sample_checkpoint("Pre1", checkpoints["Pre1"], tmp_path / "Pre1_qc.png")
    for name in [*names, "Pre1_qc"]:
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_filtered_merge_streams_the_passing_cells(checkpoints, tmp_path):
    merge_checkpoints(checkpoints, tmp_path / "merged.h5ad")
    merged = ad.read_h5ad(tmp_path / "merged.h5ad")
    passing = merged[merged.obs["qc_pass"].to_numpy()]
    n_cells = (passing.X > 0).sum(axis=0).A1
    min_cells = int(np.median(n_cells))
    expected = passing[:, n_cells >= min_cells]
    stats = filter_merged(
        tmp_path / "merged.h5ad", tmp_path / "f.h5ad", min_cells=min_cells, chunk_nnz=500
    )
    filtered = ad.read_h5ad(tmp_path / "f.h5ad")
    assert 0 < filtered.n_vars < merged.n_vars
    assert stats["cells_out"] == filtered.n_obs == passing.n_obs < merged.n_obs
    assert filtered.obs_names.tolist() == expected.obs_names.tolist()
    assert filtered.var_names.tolist() == expected.var_names.tolist()
    assert filtered.X.format == "csr"
    np.testing.assert_array_equal(filtered.X.toarray(), expected.X.toarray())
    np.testing.assert_array_equal(
        filtered.layers["counts"].toarray(), expected.layers["counts"].toarray()
    )
    np.testing.assert_array_equal(filtered.var["n_cells_pass"], n_cells[n_cells >= min_cells])
    assert filtered.uns["scingest"]["filter"]["cells_in"] == merged.n_obs


def test_sheet_qc_columns_are_overrides_not_metadata(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text(",c1\nG1,1\n")
    sheet_path = tmp_path / "sheet.tsv"
    sheet_path.write_text(
        "sample\tpath\tcondition\tqc_max_pct_mt\tqc_nmads\n"
        f"a\t{tmp_path / 'a.csv'}\tx\t12.5\t\n"
        f"b\t{tmp_path / 'b.csv'}\ty\t\t4\n"
    )
    sheet = read_sample_sheet(sheet_path)
    assert sample_qc_overrides(sheet, "a") == {"qc_max_pct_mt": 12.5}
    assert sample_qc_overrides(sheet, "b") == {"qc_nmads": 4.0}
    assert sample_metadata(sheet, "a") == {"condition": "x"}

    sheet_path.write_text(f"sample\tpath\tqc_nmads\na\t{tmp_path / 'a.csv'}\tmany\n")
    with pytest.raises(ScingestError, match=r"line 2, column qc_nmads: .*expected a number"):
        read_sample_sheet(sheet_path)

    sheet_path.write_text(f"sample\tpath\tqc_other\na\t{tmp_path / 'a.csv'}\t1\n")
    with pytest.raises(ScingestError, match="clash"):
        read_sample_sheet(sheet_path)


def test_sheet_schema_and_docs_name_every_override():
    import yaml

    from scingest.options import QC_OVERRIDE_COLUMNS

    schema = yaml.safe_load(SHEET_SCHEMA_PATH.read_text())
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    doc = (REPO / "config/README.md").read_text()
    for column in QC_OVERRIDE_COLUMNS:
        assert column in schema["properties"]
        assert column in config
        assert f"`{column}`" in doc


def test_plots_say_not_measured_without_mito_genes(tmp_path, monkeypatch):
    """A sample without mito genes: the per-sample and overview figures write "not
    measured" where % mito would be, and still draw the other metrics."""
    import scingest.plots as plots

    genes, cells, counts = synthetic_counts(60, 40, seed=4, median_counts=400)
    keep = [i for i, g in enumerate(genes) if not g.startswith("MT-")]
    path = write_dense(tmp_path / "N.csv.gz", [genes[i] for i in keep], cells, counts[:, keep])
    out = tmp_path / "N.h5ad"
    write_h5ad(build_sample(path, sample="N1"), out)
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, _: figures.append(fig))
    plot_sample_checkpoint("N1", out, tmp_path / "n.png")
    names = ("violins", "counts_vs_genes", "barcode_rank", "cells")
    plot_overview({"N1": out}, **{n: tmp_path / f"{n}.png" for n in names})
    from matplotlib.text import Text

    texts = [[t.get_text() for t in fig.findobj(Text)] for fig in figures]
    assert any("not measured" in t for t in texts[0])  # the per-sample figure
    assert any("not measured" in t for t in texts[1])  # the overview violins
    assert any("grey: not measured" in t for t in texts[2])  # counts vs genes' colour bar


def test_a_criterion_added_to_the_table_is_flagged_summarised_and_drawn(tmp_path):
    """Adding a QC criterion is one entry of qc.QC_METRICS (with its limits in QcOptions):
    one on % ribosomal counts, with the existing qc_nmads, and no other change. Its flags
    are those of the documented rule (median + n x MAD, unscaled, over the cells with
    counts), derived here naively; the summary and both figures take it up."""
    genes, cells, counts = synthetic_counts(120, 80, seed=5, median_counts=800)
    path = write_dense(tmp_path / "S1.csv.gz", genes, cells, counts)
    code = f"""
import json
import numpy as np
import pandas as pd
import scingest.qc as qc

ribo = qc.QcMetric("outlier_ribo", "pct_counts_ribo", "% counts ribosomal", log=False,
                   side="upper", nmads="nmads", gene_set="ribo",
                   median="median_pct_counts_ribo", limit="pct_ribo")
qc.QC_METRICS = (*qc.QC_METRICS, ribo)  # the table's source, as a new entry would read
qc.OUTLIER_FLAGS = (*qc.OUTLIER_FLAGS, ribo.flag)  # derived from it at import
from scingest.plots import plot_overview, plot_sample_checkpoint
from scingest.sample import build_sample, write_h5ad
from scingest.summary import write_qc_summary

adata = build_sample({str(path)!r}, sample="S1", qc_nmads=2)
write_h5ad(adata, {str(tmp_path / "S1.h5ad")!r})
plot_sample_checkpoint("S1", {str(tmp_path / "S1.h5ad")!r}, {str(tmp_path / "S1.png")!r})
out = {{k: str({str(tmp_path)!r} + "/" + k + ".png") for k in
       ("violins", "counts_vs_genes", "barcode_rank", "cells")}}
plot_overview({{"S1": {str(tmp_path / "S1.h5ad")!r}}}, **out)
table = write_qc_summary({{"S1": {str(tmp_path / "S1.h5ad")!r}}}, {str(tmp_path / "qc.tsv")!r})
obs = adata.obs
print(json.dumps({{
    "pct": obs["pct_counts_ribo"].tolist(),
    "flag": obs["outlier_ribo"].tolist(),
    "pass": obs["qc_pass"].tolist(),
    "other": obs[[f for f in qc.OUTLIER_FLAGS if f != "outlier_ribo"]].any(axis=1).tolist(),
    "limit": adata.uns["scingest"]["qc_thresholds"]["outlier_ribo"],
    "summary": table.iloc[0][["cells_outlier_ribo", "limit_pct_ribo_high",
                              "median_pct_counts_ribo"]].tolist(),
}}, default=float))
"""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO / "scripts", capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.splitlines()[-1])
    pct = np.array(got["pct"], dtype=float)
    counted = pct[np.isfinite(pct)]
    median = np.median(counted)
    upper = median + 2 * np.median(np.abs(counted - median))
    assert got["limit"][0] == -np.inf and got["limit"][1] == pytest.approx(upper)
    flagged = np.array(got["flag"])
    assert flagged.any() and not flagged.all()
    assert (flagged == (np.nan_to_num(pct) > upper)).all()
    assert (np.array(got["pass"]) == ~(flagged | np.array(got["other"]))).all()
    assert got["summary"] == [
        int(flagged.sum()),
        pytest.approx(upper),
        pytest.approx(np.median(counted)),
    ]
    for name in ("S1", "violins"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
