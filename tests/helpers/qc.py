"""Data for the QC tests, made by the tests (single nuclei, cells with planted doublets), and
the QC rules of docs/guide/qc.md re-derived naively, the oracle of the flags
(:func:`reference_flags`)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import scipy.sparse as sp

from scingest.synthetic import barcodes, gene_names


def nuclei_counts(
    n_cells: int, *, seed: int = 0, n_genes: int = 200
) -> tuple[list[str], list[str], sp.csr_matrix]:
    """Single-nucleus-like counts: 60% of nuclei have no mito count, 40% have 1 or 2, and
    no nucleus is above 1.77% mito (at least 111 other counts)."""
    rng = np.random.default_rng(seed)
    genes = gene_names(n_genes)
    cells = barcodes(n_cells, rng)
    is_mt = np.array([g.startswith("MT-") for g in genes])
    weights = 1.0 / np.arange(1, (~is_mt).sum() + 1) ** 0.9
    weights = weights[rng.permutation(len(weights))]
    other = np.clip(rng.lognormal(np.log(600), 0.6, n_cells).astype(np.int64), 111, None)
    counts = np.zeros((n_cells, n_genes), dtype=np.int32)
    counts[:, ~is_mt] = rng.multinomial(other, weights / weights.sum())
    with_mt = rng.permutation(n_cells)[: round(0.4 * n_cells)]
    mt_genes = np.flatnonzero(is_mt)
    for cell in with_mt:
        for _ in range(rng.integers(1, 3)):
            counts[cell, rng.choice(mt_genes)] += 1
    return genes, cells, sp.csr_matrix(counts)


def doublet_counts(
    n_cells: int, *, seed: int = 0, n_genes: int = 400, n_doublets: int = 30
) -> tuple[list[str], list[str], sp.csr_matrix, np.ndarray]:
    """Three cell types with their own marker genes, and ``n_doublets`` planted doublets
    (the sum of cells of two types). Returns genes, barcodes, counts and the indices of
    the planted doublets."""
    rng = np.random.default_rng(seed)
    genes = gene_names(n_genes)
    cells = barcodes(n_cells, rng)
    types = []
    for k in range(3):  # three types, each with its own 40 marker genes
        weights = 1.0 / np.arange(1, n_genes + 1) ** 0.9
        weights = weights[rng.permutation(n_genes)]
        weights[40 * (k + 1) : 40 * (k + 2)] *= 30
        types.append(weights / weights.sum())
    kind = rng.integers(0, 3, n_cells)
    lib = rng.lognormal(np.log(1500), 0.3, n_cells).astype(np.int64)
    counts = np.vstack([rng.multinomial(lib[i], types[kind[i]]) for i in range(n_cells)])
    doublets = rng.choice(n_cells, n_doublets, replace=False)
    for i in doublets:
        a, b = rng.choice(3, 2, replace=False)
        counts[i] = rng.multinomial(lib[i], types[a]) + rng.multinomial(lib[i], types[b])
    return genes, cells, sp.csr_matrix(counts.astype(np.int32)), np.sort(doublets)


#: docs/guide/qc.md: "Fewer than 10 cells with counts give no MAD limits".
RULE_MIN_CELLS = 10
#: docs/guide/qc.md: "a MAD of 0 is replaced by 0.8453 x the mean absolute deviation".
RULE_MEANAD = 0.8453
#: docs/guide/qc.md: "the % mito limit from MADs is never below 2%".
RULE_MT_FLOOR = 2.0
#: docs/guide/qc.md: "a value within 1e-9 of a MAD limit (relative, at least 1e-9) is on it".
RULE_SLACK = 1e-9


def _median_and_spread(values: list[float]) -> tuple[float, float]:
    median = statistics.median(values)
    mad = statistics.median([abs(v - median) for v in values])
    if mad == 0:
        mad = RULE_MEANAD * (math.fsum(abs(v - median) for v in values) / len(values))
    return median, mad


def reference_flags(
    obs: pd.DataFrame, params: dict, mito_genes: int, cells: list[bool] | None = None
) -> dict[str, list[bool]]:
    """Each cell's flags from the rules of docs/guide/qc.md, cell by cell; ``cells`` marks
    the called cells of a raw matrix's barcodes (``barcodes: all``): only they make the limits, and
    no other barcode passes."""
    n = len(obs)
    is_cell = [True] * n if cells is None else [bool(c) for c in cells]
    total = [float(v) for v in obs["total_counts"]]
    genes = [float(v) for v in obs["n_genes_by_counts"]]
    top20 = [float(v) for v in obs["pct_counts_in_top_20_genes"]]
    mito = [float(v) for v in obs["pct_counts_mt"]]
    with_counts = [t > 0 for t in total]
    counted = [c and cell for c, cell in zip(with_counts, is_cell, strict=True)]
    use_mads = sum(counted) >= RULE_MIN_CELLS
    # (values to judge, the scale the MADs are taken on, nmads, sides, hard lower, hard upper)
    rules = {
        "outlier_counts": (total, "log", params["nmads"], "both", "min_counts", "max_counts"),
        "outlier_genes": (genes, "log", params["nmads"], "both", "min_genes", "max_genes"),
        "outlier_top20": (top20, "linear", params["nmads"], "both", None, None),
        "outlier_mt": (mito, "linear", params["nmads_mt"], "upper", None, "max_pct_mt"),
    }
    flags = {}
    for flag, (values, scale, nmads, side, hard_low, hard_high) in rules.items():
        cell_flags = [False] * n
        if flag == "outlier_mt" and mito_genes == 0:
            flags[flag] = cell_flags  # % mito not measured
            continue
        on_scale = [math.log1p(v) if scale == "log" else v for v in values]
        if use_mads and nmads is not None:
            pool = [v for v, c in zip(on_scale, counted, strict=True) if c and math.isfinite(v)]
            median, spread = _median_and_spread(pool)
            low = median - nmads * spread if side == "both" else -math.inf
            high = median + nmads * spread
            if flag == "outlier_mt":
                high = max(high, RULE_MT_FLOOR)
            slack = RULE_SLACK * max(1, abs(low) if math.isfinite(low) else 0, abs(high))
            for i, v in enumerate(on_scale):
                if math.isfinite(v) and (v < low - slack or v > high + slack):
                    cell_flags[i] = True
        for i, v in enumerate(values):
            low_limit = params.get(hard_low) if hard_low else None
            high_limit = params.get(hard_high) if hard_high else None
            if low_limit is not None and v < low_limit:
                cell_flags[i] = True
            if high_limit is not None and v > high_limit:
                cell_flags[i] = True
            if scale == "log" and not with_counts[i]:
                cell_flags[i] = True  # a cell without counts never passes
        flags[flag] = cell_flags
    flags["qc_pass"] = [is_cell[i] and not any(flags[f][i] for f in rules) for i in range(n)]
    return flags
