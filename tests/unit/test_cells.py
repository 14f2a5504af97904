"""Cell calling in raw matrices (scingest.cells) against oracles we did not write.

- Simple Good-Turing and Benjamini-Hochberg: edgeR's ``goodTuring`` (at Gale and Sampson's
  confidence 1.65, CellRanger's) and R's ``p.adjust``.
- The Monte Carlo p-values: a direct simulation with numpy's multinomial and scipy's
  ``gammaln``.
- ordmag: CellRanger's documented rule re-derived naively (bootstrap by resampling and
  sorting, as its ``filter_cellular_barcodes_ordmag`` does).
- The calls: DropletUtils' ``emptyDropsCellRanger`` (the reference EmptyDrops, in its
  CellRanger form) on simulated droplets, and the simulation's truth; on the raw matrices
  STARsolo and kb wrote, the truth.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import gammaln

from helpers.droplets import emptydrops_cellranger, rscript, simulate_droplets
from helpers.tools import TOOLS, truth_cells
from scingest import cells
from scingest.readers import read_counts


@pytest.fixture(scope="module")
def droplets():
    counts, truth = simulate_droplets()
    return counts, truth, cells.call_cells(counts)


# --- Simple Good-Turing, Benjamini-Hochberg --------------------------------------------------

EDGER = r"""
suppressMessages(library(edgeR))
args <- commandArgs(trailingOnly = TRUE)
x <- read.delim(args[1])
x$p <- NA_real_
for (name in unique(x$name)) {
  at <- x$name == name
  counts <- x$count[at]
  g <- goodTuring(counts, conf = 1.65)
  p <- g$proportion[match(counts, g$count)]
  p[counts == 0] <- g$P0 / sum(counts == 0)
  x$p[at] <- p
}
write.table(x, args[2], sep = "\t", quote = FALSE, row.names = FALSE)
p <- read.delim(args[3])$p
write.table(data.frame(bh = p.adjust(p, method = "BH")), args[4], sep = "\t",
  quote = FALSE, row.names = FALSE)
"""


def test_good_turing_and_bh_equal_edger_and_p_adjust(tmp_path, droplets):
    counts, _, _ = droplets
    rng = np.random.default_rng(3)
    totals = cells.barcode_totals(counts)
    order = np.argsort(-totals, kind="stable")
    profiles = {
        "ambient": np.asarray(counts[order[45_000:]].sum(axis=0)).ravel().astype(int),
        "powerlaw": rng.poisson(200.0 / np.arange(1, 3001) ** 1.1),
        "few": np.asarray(counts[order[45_000:47_000]].sum(axis=0)).ravel().astype(int),
    }
    pvalues = np.r_[rng.uniform(size=200), rng.uniform(0, 1e-3, 50), [1e-4] * 5]
    long = pd.concat(pd.DataFrame({"name": k, "count": v}) for k, v in profiles.items())
    long.to_csv(tmp_path / "x.tsv", sep="\t", index=False)
    pd.DataFrame({"p": pvalues}).to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    (tmp_path / "edger.R").write_text(EDGER)
    subprocess.run(
        [rscript("edgeR"), str(tmp_path / "edger.R"), *(str(tmp_path / f) for f in
         ("x.tsv", "sgt.tsv", "p.tsv", "bh.tsv"))],
        check=True,
    )  # fmt: skip
    theirs = pd.read_csv(tmp_path / "sgt.tsv", sep="\t")
    for name, profile in profiles.items():
        ours = cells.good_turing_proportions(profile)
        assert ours.sum() == pytest.approx(1.0)
        expected = theirs.loc[theirs["name"] == name, "p"].to_numpy()
        np.testing.assert_allclose(ours, expected, rtol=1e-9, err_msg=name)
    bh = pd.read_csv(tmp_path / "bh.tsv", sep="\t")["bh"].to_numpy()
    np.testing.assert_allclose(cells.benjamini_hochberg(pvalues), bh, rtol=1e-12)


def test_good_turing_refuses_what_it_does_not_apply_to():
    with pytest.raises(cells.GoodTuringError, match="fewer than the 10"):
        cells.good_turing_proportions(np.array([0, 1, 2, 3, 5, 5, 40]))


# --- Monte Carlo p-values --------------------------------------------------------------------


def test_pvalues_equal_a_direct_simulation():
    """Against 20,000 multinomial draws per total, log-likelihoods by scipy: the p-values of
    ambient draws are uniform, and each is within Monte Carlo error of the direct one."""
    rng = np.random.default_rng(5)
    prob = rng.dirichlet(np.full(60, 0.5))
    prob = np.maximum(prob, 1e-6) / np.maximum(prob, 1e-6).sum()
    totals = rng.choice([120, 300, 301, 700], size=800)
    rows = np.array([rng.multinomial(t, prob) for t in totals])
    rows[:40] = [rng.multinomial(t, rng.dirichlet(np.ones(60))) for t in totals[:40]]  # not ambient
    x = sp.csr_matrix(rows.astype(np.float32))
    loglik, ours = cells.ambient_pvalues(x, np.arange(len(rows)), prob, n_sims=4000)
    naive = (rows * np.log(prob)).sum(1) - gammaln(rows + 1).sum(1)
    np.testing.assert_allclose(loglik, naive, rtol=1e-9)
    n_direct = 20_000
    direct = np.empty(len(rows))
    for total in np.unique(totals):
        sims = rng.multinomial(total, prob, size=n_direct)
        sim_ll = (sims * np.log(prob)).sum(1) - gammaln(sims + 1).sum(1)
        at = totals == total
        direct[at] = (1 + (sim_ll[None, :] < naive[at, None]).sum(1)) / (1 + n_direct)
    se = np.sqrt(direct * (1 - direct) * (1 / 4000 + 1 / n_direct))
    assert (np.abs(ours - direct) <= 5 * se + 2 / 4000).all()
    assert (ours[:40] < 0.01).all(), "draws from another profile are not ambient"
    hist, _ = np.histogram(ours[40:], bins=5, range=(0, 1))
    assert hist.min() > 0.6 * len(rows[40:]) / 5, hist  # uniform under the null


# --- ordmag ----------------------------------------------------------------------------------


def _naive_ordmag(totals: np.ndarray, seed: int) -> int:
    """CellRanger's ordmag without expected cells, as its code states it: resample with
    replacement and sort, 100 times for the estimate and 100 times for the count."""
    rng = np.random.default_rng(seed)
    nonzero = totals[totals > 0]
    grid = np.unique(np.round(2 ** np.linspace(1, np.log2(45_000), 2000)).astype(int))

    def within(x, baseline):  # CellRanger's find_within_ordmag, vectorised over baseline
        ascending = np.sort(x)
        cutoff = np.maximum(1, np.round(0.1 * ascending[-(baseline + 1)]))
        return len(x) - np.searchsorted(ascending, cutoff)

    baselines = np.minimum(np.round(grid * 0.01).astype(int), len(nonzero) - 1)
    picks = []
    for _ in range(100):
        found = within(rng.choice(nonzero, len(nonzero)), baselines)
        picks.append(grid[np.argmin((found - grid) ** 2 / grid)])
    recovered = max(round(float(np.mean(picks))), 50)
    baseline = min(round(recovered * 0.01), len(nonzero) - 1)
    tops = [within(rng.choice(nonzero, len(nonzero)), baseline) for _ in range(100)]
    return round(float(np.mean(tops)))


def test_ordmag_follows_cellrangers_rule(droplets):
    counts, _, _ = droplets
    totals = cells.barcode_totals(counts)
    n, recovered = cells.ordmag(totals)
    naive = _naive_ordmag(totals, seed=11)
    # two bootstraps with their own random draws: the means agree within a few barcodes
    assert abs(n - naive) <= max(3, 0.01 * naive), (n, naive)
    assert 700 < recovered < 900  # 800 large cells, the small ones an order of magnitude down


# --- the calls: DropletUtils and the truth ---------------------------------------------------


def test_calls_agree_with_dropletutils_and_the_truth(tmp_path, droplets):
    """The tolerance: our p-values and DropletUtils' come from independent simulations of
    10,000 draws each, so a candidate whose adjusted p-value is near 0.01 may fall on either
    side (also as DropletUtils adjusts over its initial cells too, at p = 0). Such a
    borderline barcode may differ, at most 1% of the candidates; every other call agrees."""
    counts, truth, ours = droplets
    totals = cells.barcode_totals(counts)
    baseline = round(ours.recovered_cells * (1 - cells.ORDMAG_QUANTILE))
    theirs = emptydrops_cellranger(
        counts, tmp_path, expected_cells=100 * (baseline + 1), min_umis=ours.min_umis
    )
    np.testing.assert_array_equal(theirs["total"].to_numpy(), totals)
    assert ours.emptydrops is None and len(ours.candidates) > 300
    # the same candidates are tested (DropletUtils also tests our initial cells it did not
    # call, those between its cut and ours)
    tested = theirs["pvalue"].notna().to_numpy()
    assert tested[ours.candidates].all()
    assert set(np.flatnonzero(tested)) - set(ours.candidates) <= set(np.flatnonzero(ours.initial))
    p_theirs = theirs["pvalue"].to_numpy()[ours.candidates]
    se = np.sqrt(np.maximum(p_theirs * (1 - p_theirs), 1e-4) * 2 / cells.N_SIMS)
    assert (np.abs(ours.pvalues - p_theirs) <= 5 * se).all()
    called_theirs = (theirs["fdr"] <= cells.FDR).to_numpy()
    differ = np.flatnonzero(ours.is_cell != called_theirs)
    assert len(differ) <= 0.01 * len(ours.candidates), differ
    fdr_ours = pd.Series(ours.fdr, index=ours.candidates)
    for i in differ:
        assert 0.002 <= min(fdr_ours.get(i, 1.0), theirs["fdr"].iloc[i]) <= 0.05, i
    # the truth: every large cell called, few empty droplets called, most small cells found
    called = ours.is_cell
    assert called[truth & (totals >= 2000)].all()
    assert (called & ~truth).sum() <= 0.02 * called.sum()
    testable = truth & (totals >= ours.min_umis)
    assert called[testable].mean() >= 0.9
    assert not called[totals < ours.min_umis].any(), "below CellRanger's floor"


def test_calls_are_reproducible(droplets):
    counts, _, first = droplets
    again = cells.call_cells(counts)
    np.testing.assert_array_equal(first.is_cell, again.is_cell)
    np.testing.assert_array_equal(first.pvalues, again.pvalues)


def test_a_tool_raw_matrix_too_small_for_an_ambient_range_gives_the_initial_call():
    """STARsolo's raw/ of the simulated run (431 barcodes with counts): like CellRanger,
    no ambient range (ranks 45,000-90,000), so only ordmag, which finds the 40 cells."""
    raw = read_counts(TOOLS / "starsolo" / "Solo.out" / "Gene" / "raw", barcodes="as_cells")
    calls = cells.call_cells(raw.X)
    assert sorted(raw.obs_names[calls.is_cell]) == sorted(truth_cells())
    assert "none ranks within 45,000-90,000" in calls.emptydrops
    assert calls.summary()["emptydrops"].startswith("skipped")


def test_looks_raw_tells_the_barcode_rank_curve(droplets):
    counts, truth, ours = droplets
    reason = cells.looks_raw(cells.barcode_totals(counts))
    assert reason is not None and "barcode-rank curve" in reason
    assert cells.looks_raw(cells.barcode_totals(counts[ours.is_cell])) is None
    assert cells.looks_raw(cells.barcode_totals(counts[truth])) is None
    assert cells.looks_raw(np.arange(1, 500, dtype=float)) is None  # too few barcodes
