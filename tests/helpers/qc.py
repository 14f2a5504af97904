"""Data for the QC tests, made by the tests: single nuclei and cells with planted doublets."""

from __future__ import annotations

import numpy as np
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
