"""Cell calling in a raw matrix (every barcode seen): CellRanger's algorithm, ordmag then
EmptyDrops.

A raw matrix (CellRanger's ``raw_feature_bc_matrix``, STARsolo's ``raw/``, kb's
``counts_unfiltered``) holds every barcode a run saw, mostly empty droplets with a few
ambient molecules. Where the counting tool's own calls are not in the files,
:func:`call_cells` calls cells as CellRanger 3 and later do (its ``cell_calling.py`` and
``cell_calling_helpers.py``, STARsolo's ``--soloCellFilter EmptyDrops_CR``,
DropletUtils' ``emptyDropsCellRanger``):

1. **ordmag**, the initial call of high-count barcodes: the number of cells is estimated as
   the ``N`` for which the barcodes with at least 10% of the counts of the 99th percentile of
   the top ``N`` are about ``N`` (a log-spaced grid of ``N``, averaged over 100 bootstrap
   resamples of the barcodes' totals; at least 50); then the barcodes within that order of
   magnitude are the initial cells (their number averaged over 100 more resamples).
2. **EmptyDrops** (Lun et al. 2019, *Genome Biology* 20:63): the ambient profile is the
   Simple Good-Turing estimate (Gale and Sampson 1995) of the summed counts of the barcodes
   ranked 45,000 to 90,000 by total counts; each other barcode with at least
   ``max(500, 1 + the largest total of that range)`` counts is tested against a multinomial
   of that profile (10,000 Monte Carlo simulations of the log-likelihood at its total); the
   p-values are adjusted by Benjamini-Hochberg and a barcode at FDR 0.01 or less is a cell.

A matrix with fewer than 45,001 barcodes has no ambient range: like CellRanger, only the
initial call is made (said in the log and the provenance). Everything runs in time and
memory linear in the barcodes (the bootstrap resamples counts of distinct totals; the
simulations walk each candidate total once per simulation): ``bench/run.py cells`` compares
with DropletUtils.

Importing this module imports numpy and scipy only; numba compiles the kernels on first use.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

#: The method's name, in the provenance (``uns["scingest"]["cells"]["method"]``).
METHOD = "cellranger"
#: What :data:`METHOD` is, in the log and the provenance.
METHOD_TEXT = (
    "CellRanger 3+ cell calling: ordmag initial call, then EmptyDrops (Lun et al. 2019) "
    "against the ambient profile of the barcodes ranked 45,000-90,000, FDR 0.01"
)
#: ordmag: the percentile of the top barcodes whose tenth is the cut (CellRanger's 0.99).
ORDMAG_QUANTILE = 0.99
#: ordmag: the cut is this share of that barcode's counts (one order of magnitude).
ORDMAG_RATIO = 0.1
#: ordmag: bootstrap resamples of the barcodes' totals, for each of its two steps.
ORDMAG_BOOTSTRAPS = 100
#: ordmag: the estimated number of cells is never below this (CellRanger's).
MIN_RECOVERED_CELLS = 50
#: ordmag: the largest number of cells considered (CellRanger's, 3' v3: the start of the
#: ambient range).
MAX_RECOVERED_CELLS = 45_000
#: EmptyDrops: the ranks (0-based, end excluded) of the barcodes whose counts make the
#: ambient profile (CellRanger's for 3' v2/v3 chemistries).
AMBIENT_RANKS = (45_000, 90_000)
#: EmptyDrops: candidates need at least this many counts (CellRanger's ``MIN_UMIS``).
MIN_UMIS = 500
#: EmptyDrops: Monte Carlo simulations per candidate total.
N_SIMS = 10_000
#: EmptyDrops: the Benjamini-Hochberg FDR at or below which a candidate is a cell.
FDR = 0.01
#: Seed of the bootstrap and the simulations: the same matrix gives the same calls.
SEED = 0
#: Simple Good-Turing switches from Turing's to the smoothed estimate where they differ by
#: less than this many standard deviations (Gale and Sampson's own S code, and CellRanger).
SGT_CONFIDENCE = 1.65
#: Simple Good-Turing needs at least this many distinct frequencies (CellRanger's).
SGT_MIN_FREQUENCIES = 10
#: The simulations are split into this many chunks, each seeded on its own: the same calls
#: whatever the number of threads.
_SIM_CHUNKS = 16

#: A matrix "looks raw" (:func:`looks_raw`) with at least this many barcodes ...
RAW_MIN_BARCODES = 2_000
#: ... of which at least this share hold at most :data:`RAW_LOW_COUNTS` counts ...
RAW_LOW_SHARE = 0.5
RAW_LOW_COUNTS = 10
#: ... and the ordmag call keeps at most this share of them.
RAW_MAX_CELL_SHARE = 0.2


class GoodTuringError(ValueError):
    """The Simple Good-Turing estimate does not apply (too few frequencies, or a log-log
    slope above -1); CellRanger then skips EmptyDrops."""


@dataclass
class CellCalls:
    """The cells :func:`call_cells` called in a raw matrix.

    Attributes
    ----------
    is_cell
        One per barcode: True for a called cell.
    initial
        One per barcode: True for the cells of the initial (ordmag) call.
    recovered_cells
        ordmag's estimate of the number of cells.
    ordmag_cutoff
        The least total of the initial cells (0 when there are none).
    candidates
        Indices of the barcodes EmptyDrops tested.
    pvalues, fdr
        Their Monte Carlo p-values and Benjamini-Hochberg adjusted p-values.
    min_umis
        The least total a candidate needed.
    ambient_barcodes
        How many barcodes (with counts) made the ambient profile.
    emptydrops
        None when EmptyDrops ran, else why it did not.
    """

    is_cell: np.ndarray
    initial: np.ndarray
    recovered_cells: int
    ordmag_cutoff: float
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pvalues: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fdr: np.ndarray = field(default_factory=lambda: np.zeros(0))
    min_umis: int = MIN_UMIS
    ambient_barcodes: int = 0
    emptydrops: str | None = None

    def summary(self) -> dict[str, Any]:
        """The calls' figures for the provenance and the log (no per-barcode values)."""
        return {
            "method": METHOD,
            "description": METHOD_TEXT,
            "recovered_cells_estimate": int(self.recovered_cells),
            "initial_cells": int(self.initial.sum()),
            "ordmag_cutoff": float(self.ordmag_cutoff),
            "emptydrops": "ran" if self.emptydrops is None else f"skipped: {self.emptydrops}",
            "emptydrops_candidates": len(self.candidates),
            "emptydrops_min_counts": int(self.min_umis),
            "emptydrops_cells": int(self.is_cell.sum() - self.initial.sum()),
            "ambient_barcodes": int(self.ambient_barcodes),
            "fdr": FDR,
            "simulations": N_SIMS,
            "seed": SEED,
        }


def barcode_totals(counts: sp.spmatrix) -> np.ndarray:
    """Each barcode's total counts (rows of a barcodes x genes matrix), as float64."""
    return np.asarray(sp.csr_matrix(counts).sum(axis=1, dtype=np.float64)).ravel()


# --- ordmag ----------------------------------------------------------------------------------


def _resampled(values: np.ndarray, freq: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How often each distinct total (ascending ``values`` with frequencies ``freq``) is
    drawn by a bootstrap resample of all the totals: the sorted resample without sorting."""
    n = int(freq.sum())
    return rng.multinomial(n, freq / n)


def _within_ordmag(values: np.ndarray, drawn: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """CellRanger's ``find_within_ordmag`` on a resample given as counts of distinct values:
    how many totals are at least a tenth of the ``baseline``-th largest (0-based), for each
    ``baseline`` index."""
    desc_cum = np.cumsum(drawn[::-1])  # how many totals are >= each distinct value, descending
    at = np.searchsorted(desc_cum, np.asarray(baseline) + 1, side="left")
    top = values[::-1][np.minimum(at, len(values) - 1)]
    cutoff = np.maximum(1, np.round(ORDMAG_RATIO * top))
    below = np.searchsorted(values, cutoff, side="left")  # distinct values under the cutoff
    under = np.concatenate([[0], np.cumsum(drawn)])[below]
    return drawn.sum() - under


def ordmag(totals: np.ndarray, *, seed: int = SEED) -> tuple[int, int]:
    """CellRanger's ordmag call without an expected number of cells.

    Parameters
    ----------
    totals
        Each barcode's total counts.
    seed
        Seed of the bootstrap resamples.

    Returns
    -------
    The number of initial cells (the barcodes with the most counts), and the estimated
    number of cells it started from.
    """
    nonzero = totals[totals > 0]
    if nonzero.size == 0:
        return 0, 0
    rng = np.random.default_rng(seed)
    values, freq = np.unique(nonzero, return_counts=True)
    grid = np.unique(
        np.round(np.power(2, np.linspace(1, np.log2(MAX_RECOVERED_CELLS), 2000))).astype(int)
    )
    baselines = np.minimum(np.round(grid * (1 - ORDMAG_QUANTILE)).astype(int), nonzero.size - 1)
    estimates = []
    for _ in range(ORDMAG_BOOTSTRAPS):
        found = _within_ordmag(values, _resampled(values, freq, rng), baselines)
        loss = (found - grid) ** 2 / grid
        best = int(np.argmin(loss))
        estimates.append(grid[best])
    recovered = max(int(np.round(np.mean(estimates))), MIN_RECOVERED_CELLS)
    baseline = min(int(np.round(recovered * (1 - ORDMAG_QUANTILE))), nonzero.size - 1)
    tops = [
        int(_within_ordmag(values, _resampled(values, freq, rng), np.array([baseline]))[0])
        for _ in range(ORDMAG_BOOTSTRAPS)
    ]
    n = int(np.round(np.mean(tops)))
    if n > 0:  # take every barcode tied with the last one, unless that adds over 20%
        ordered = np.sort(nonzero)[::-1]
        ties = int(np.searchsorted(-ordered, -ordered[n - 1], side="right"))
        if ties - n <= 0.2 * n:
            n = ties
    return n, recovered


# --- Simple Good-Turing ----------------------------------------------------------------------


def good_turing_proportions(counts: np.ndarray) -> np.ndarray:
    """Simple Good-Turing estimates of each category's probability (Gale and Sampson 1995).

    Categories with a count share the probability ``n_1 / N`` of unseen ones equally, those
    with counts share the rest in proportion to their smoothed counts ``r*``: Turing's
    estimate ``(r + 1) n_(r+1) / n_r`` while it differs from the log-log linear fit of the
    frequencies of frequencies by more than :data:`SGT_CONFIDENCE` standard deviations,
    then the fit's.

    Parameters
    ----------
    counts
        Non-negative integer counts, one per category (gene).

    Returns
    -------
    Probabilities summing to 1, one per category.

    Raises
    ------
    GoodTuringError
        With fewer than :data:`SGT_MIN_FREQUENCIES` distinct non-zero counts, or a log-log
        slope above -1 (the estimate does not apply).
    """
    counts = np.asarray(counts, dtype=np.int64)
    seen = counts > 0
    r, n_r = np.unique(counts[seen], return_counts=True)
    if len(r) < SGT_MIN_FREQUENCIES:
        raise GoodTuringError(
            f"{len(r)} distinct non-zero counts, fewer than the {SGT_MIN_FREQUENCIES} Simple "
            "Good-Turing needs"
        )
    rf, nf = r.astype(np.float64), n_r.astype(np.float64)
    total = float(np.sum(rf * nf))
    gaps = np.concatenate([[1.0], np.diff(rf)])
    widths = np.concatenate([0.5 * (gaps[1:] + gaps[:-1]), gaps[-1:]])
    slope, _ = np.polyfit(np.log(rf), np.log(nf / widths), 1)
    if slope > -1:
        raise GoodTuringError(f"the log-log slope of the frequencies is {slope:.3g}, above -1")
    smoothed = np.power(1 + 1 / rf, 1 + slope)  # r*/r of the fit
    follows = np.concatenate([r[1:] == r[:-1] + 1, [False]])  # r + 1 observed too
    nxt = np.concatenate([nf[1:], [0.0]])
    turing = np.zeros(len(r))
    turing[follows] = (rf[follows] + 1) / rf[follows] * nxt[follows] / nf[follows]
    sd = np.ones(len(r))
    i = np.flatnonzero(follows)
    sd[i] = (i + 2) / nf[i] * np.sqrt(nxt[i] * (1 + nxt[i] / nf[i]))
    relative = np.empty(len(r))
    use_turing = True
    for k in range(len(r)):
        if use_turing and abs(smoothed[k] - turing[k]) * (k + 1) / sd[k] > SGT_CONFIDENCE:
            relative[k] = turing[k]
        else:
            use_turing = False
            relative[k] = smoothed[k]
    p0 = nf[0] / total  # Gale and Sampson's n_1 / N; CellRanger takes the least r's n_r
    rstar = rf * relative
    scaled = (1 - p0) * rstar / float(np.sum(nf * rstar))
    out = np.zeros(len(counts))
    out[seen] = scaled[np.searchsorted(r, counts[seen])]
    unseen = ~seen
    if unseen.any():
        out[unseen] = p0 / unseen.sum()
    else:
        out /= out.sum()
    return out


# --- EmptyDrops ------------------------------------------------------------------------------


def _alias_table(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of ``prob`` (Vose's construction): draw ``i`` uniformly, keep it
    with probability ``keep[i]``, else take ``alias[i]``."""
    n = len(prob)
    scaled = prob * n / prob.sum()
    keep = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        keep[s] = scaled[s]
        alias[s] = g
        scaled[g] = scaled[g] + scaled[s] - 1.0
        (small if scaled[g] < 1.0 else large).append(g)
    return keep, alias


def _kernels():
    """The numba kernels, compiled (and cached) on first use."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def loglik(data, indices, indptr, rows, logp):  # pragma: no cover - compiled
        out = np.zeros(rows.size)
        for k in range(rows.size):
            i = rows[k]
            acc = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                x = data[j]
                acc += x * logp[indices[j]] - math.lgamma(x + 1.0)
            out[k] = acc
        return out

    @numba.njit(cache=True, parallel=True)
    def simulate(  # pragma: no cover - compiled
        keep, alias, logp, totals, starts, observed, n_sims, n_chunks, seed
    ):
        n_genes = keep.size
        n_obs = observed.size
        largest = totals[-1] if totals.size else 0
        logs = np.log(np.arange(1, largest + 2).astype(np.float64))  # logs[c - 1] = log(c)
        below = np.zeros((n_chunks, n_obs), dtype=np.int64)
        per = (n_sims + n_chunks - 1) // n_chunks
        for c in numba.prange(n_chunks):
            np.random.seed(seed + c)
            tracker = np.zeros(n_genes, dtype=np.int64)
            touched = np.empty(max(largest, 1), dtype=np.int64)
            for _ in range(c * per, min(n_sims, (c + 1) * per)):
                n_touched = 0
                drawn = 0
                current = 0.0
                for k in range(totals.size):
                    while drawn < totals[k]:
                        u = np.random.random() * n_genes
                        g = min(int(u), n_genes - 1)
                        if u - g >= keep[g]:
                            g = alias[g]
                        count = tracker[g]
                        if count == 0:
                            touched[n_touched] = g
                            n_touched += 1
                        tracker[g] = count + 1
                        current += logp[g] - logs[count]
                        drawn += 1
                    lo, hi = starts[k], starts[k + 1]
                    first = lo + np.searchsorted(observed[lo:hi], current, side="right")
                    if first < hi:  # the candidates from here on are more likely than this
                        below[c, first] += 1
                for t in range(n_touched):
                    tracker[touched[t]] = 0
        total = below.sum(axis=0)
        for k in range(totals.size):  # cumulative within each total
            for j in range(starts[k] + 1, starts[k + 1]):
                total[j] += total[j - 1]
        return total

    return loglik, simulate


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (R's ``p.adjust(method = "BH")``)."""
    p = np.asarray(pvalues, dtype=np.float64)
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p)[::-1]
    ranked = p[order] * n / np.arange(n, 0, -1)
    adjusted = np.minimum(1.0, np.minimum.accumulate(ranked))
    out = np.empty(n)
    out[order] = adjusted
    return out


def ambient_pvalues(
    counts: sp.csr_matrix,
    rows: np.ndarray,
    prob: np.ndarray,
    *,
    n_sims: int = N_SIMS,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo p-values of barcodes under a multinomial of the ambient profile.

    A barcode's p-value is ``(1 + s) / (1 + n_sims)``, ``s`` the simulations of its total
    from ``prob`` whose log-likelihood is below its own (CellRanger's
    ``compute_ambient_pvalues``; DropletUtils counts simulations at or below).

    Parameters
    ----------
    counts
        Barcodes x genes counts (CSR).
    rows
        The barcodes to test.
    prob
        The ambient profile over the genes, every value above 0.
    n_sims
        Simulations.
    seed
        Seed of the simulations.

    Returns
    -------
    Each tested barcode's log-likelihood (without the ``log(total!)`` term, the same for
    every draw of one total) and p-value.
    """
    loglik_kernel, simulate = _kernels()
    logp = np.log(prob)
    rows = np.asarray(rows, dtype=np.int64)
    observed = loglik_kernel(
        counts.data.astype(np.float64), counts.indices, counts.indptr.astype(np.int64), rows, logp
    )
    totals = np.round(barcode_totals(counts[rows])).astype(np.int64)
    order = np.lexsort((observed, totals))
    distinct, starts = np.unique(totals[order], return_index=True)
    starts = np.append(starts, len(order)).astype(np.int64)
    keep, alias = _alias_table(prob)
    below = simulate(
        keep, alias, logp, distinct, starts, observed[order], n_sims, _SIM_CHUNKS, seed
    )
    pvalues = np.empty(len(rows))
    pvalues[order] = (1 + below) / (1 + n_sims)
    return observed, pvalues


def emptydrops(
    counts: sp.csr_matrix,
    totals: np.ndarray,
    initial: np.ndarray,
    *,
    n_sims: int = N_SIMS,
    seed: int = SEED,
) -> CellCalls:
    """CellRanger's EmptyDrops step after an initial call (:func:`call_cells` step 2).

    Parameters
    ----------
    counts
        Barcodes x genes counts (CSR), integers.
    totals
        Each barcode's total counts.
    initial
        The initial cells (a boolean mask).
    n_sims
        Monte Carlo simulations.
    seed
        Seed of the simulations.

    Returns
    -------
    The calls, with ``recovered_cells`` and ``ordmag_cutoff`` left 0 for the caller.
    """
    calls = CellCalls(is_cell=initial.copy(), initial=initial, recovered_cells=0, ordmag_cutoff=0)
    order = np.argsort(-totals, kind="stable")  # ties in barcode order, as R's order()
    low, high = AMBIENT_RANKS
    ambient = order[low:high]
    calls.min_umis = int(max(MIN_UMIS, 1 + (totals[ambient].max() if ambient.size else 0)))
    ambient = ambient[totals[ambient] > 0]
    calls.ambient_barcodes = len(ambient)
    if ambient.size == 0:
        calls.emptydrops = (
            f"{len(totals):,} barcodes: none ranks within {low:,}-{high:,} with counts, the "
            "range the ambient profile is taken from"
        )
        return calls
    candidates = np.flatnonzero(~initial & (totals >= calls.min_umis))
    if candidates.size == 0:
        calls.emptydrops = f"no barcode outside the initial call has {calls.min_umis} counts"
        return calls
    genes = np.flatnonzero(np.asarray(counts.sum(axis=0)).ravel() > 0)
    profile = np.asarray(counts[ambient][:, genes].sum(axis=0)).ravel()
    try:
        prob_genes = good_turing_proportions(np.round(profile).astype(np.int64))
    except GoodTuringError as err:
        calls.emptydrops = f"Simple Good-Turing does not apply to the ambient profile ({err})"
        return calls
    tested = counts[candidates][:, genes].tocsr()  # the candidates' rows only: bounded memory
    _, pvalues = ambient_pvalues(
        tested, np.arange(len(candidates)), prob_genes, n_sims=n_sims, seed=seed
    )
    adjusted = benjamini_hochberg(pvalues)
    calls.candidates, calls.pvalues, calls.fdr = candidates, pvalues, adjusted
    calls.is_cell[candidates[adjusted <= FDR]] = True
    return calls


def call_cells(counts: sp.spmatrix, *, n_sims: int = N_SIMS, seed: int = SEED) -> CellCalls:
    """Call cells in a raw matrix as CellRanger 3+ does (this module's docstring).

    Parameters
    ----------
    counts
        Barcodes x genes counts (rows are barcodes), integers.
    n_sims
        EmptyDrops' Monte Carlo simulations.
    seed
        Seed of the bootstrap and the simulations: the same matrix gives the same calls.

    Returns
    -------
    The calls.
    """
    counts = sp.csr_matrix(counts)
    totals = barcode_totals(counts)
    n_initial, recovered = ordmag(totals, seed=seed)
    initial = np.zeros(len(totals), dtype=bool)
    if n_initial:
        initial[np.argsort(-totals, kind="stable")[:n_initial]] = True
    calls = emptydrops(counts, totals, initial, n_sims=n_sims, seed=seed)
    calls.recovered_cells = recovered
    calls.ordmag_cutoff = float(totals[initial].min()) if n_initial else 0.0
    return calls


def looks_raw(totals: np.ndarray) -> str | None:
    """Why a matrix not named raw looks like one from its barcode-rank curve, or None.

    A matrix of cells rarely holds a barcode with 10 counts or fewer; a raw one is mostly
    such barcodes. It looks raw with at least :data:`RAW_MIN_BARCODES` barcodes, of which
    at least :data:`RAW_LOW_SHARE` hold at most :data:`RAW_LOW_COUNTS` counts and the
    ordmag call keeps at most :data:`RAW_MAX_CELL_SHARE` (a knee, far below the number of
    barcodes).

    Parameters
    ----------
    totals
        Each barcode's total counts.

    Returns
    -------
    The reason, for the log; None when it looks like a matrix of cells.
    """
    n = len(totals)
    if n < RAW_MIN_BARCODES:
        return None
    low = float(np.mean(totals <= RAW_LOW_COUNTS))
    if low < RAW_LOW_SHARE:
        return None
    n_cells, _ = ordmag(totals)
    if n_cells > RAW_MAX_CELL_SHARE * n:
        return None
    return (
        f"its barcode-rank curve: {100 * low:.0f}% of its {n:,} barcodes hold "
        f"{RAW_LOW_COUNTS} counts or fewer, and the knee is at about {n_cells:,} barcodes"
    )
