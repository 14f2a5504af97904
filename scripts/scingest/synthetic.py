"""Synthetic count matrices with realistic gene names, for the example, tests and benchmarks.

Not a simulator of biology: enough structure (library sizes, a long-tailed gene
distribution, mitochondrial, ribosomal and haemoglobin genes) that reading, QC and merging
are exercised the way real GEO exports exercise them.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import numpy as np
import scipy.sparse as sp

MT_GENES = [
    "MT-ND1",
    "MT-ND2",
    "MT-CO1",
    "MT-CO2",
    "MT-ATP8",
    "MT-ATP6",
    "MT-CO3",
    "MT-ND3",
    "MT-ND4L",
    "MT-ND4",
    "MT-ND5",
    "MT-ND6",
    "MT-CYB",
]
RIBO_GENES = [f"RPS{i}" for i in range(2, 30)] + [f"RPL{i}" for i in range(3, 42)]
HB_GENES = ["HBA1", "HBA2", "HBB", "HBD", "HBG1", "HBG2", "HBP1"]  # HBP1 is no haemoglobin
COMMON_GENES = [
    "ACTB",
    "GAPDH",
    "B2M",
    "MALAT1",
    "TMSB4X",
    "EEF1A1",
    "FTL",
    "FTH1",
    "CD74",
    "HLA-DRA",
    "LYZ",
    "S100A9",
    "S100A8",
    "CD3E",
    "CD3D",
    "CD4",
    "CD8A",
    "NKG7",
    "GNLY",
    "MS4A1",
    "CD79A",
    "CD14",
    "FCGR3A",
    "PPBP",
    "PF4",
    "IL7R",
    "CCR7",
    "LTB",
    "CST3",
    "TYROBP",
]


def gene_names(n_genes: int) -> list[str]:
    """Gene symbols for a synthetic matrix.

    Parameters
    ----------
    n_genes
        How many.

    Returns
    -------
    MT-, ribosomal, haemoglobin and common genes first (so QC finds its gene sets), then
    ``GENE00001``-style fillers.
    """
    named = MT_GENES + RIBO_GENES + HB_GENES + COMMON_GENES
    names = named[:n_genes]
    names += [f"GENE{i:05d}" for i in range(1, n_genes - len(names) + 1)]
    return names


def barcodes(n_cells: int, rng: np.random.Generator) -> list[str]:
    """Cell barcodes as CellRanger writes them.

    Parameters
    ----------
    n_cells
        How many.
    rng
        The random generator (a seeded one gives the same barcodes).

    Returns
    -------
    Unique 16-base barcodes with the ``-1`` suffix.
    """
    out: list[str] = []
    seen: set[str] = set()
    letters = np.array(list("ACGT"))
    while len(out) < n_cells:
        code = "".join(letters[rng.integers(0, 4, 16)]) + "-1"
        if code not in seen:
            seen.add(code)
            out.append(code)
    return out


def synthetic_counts(
    n_genes: int,
    n_cells: int,
    *,
    seed: int,
    median_counts: float = 2000.0,
    mito_fraction: float = 0.05,
    high_mito_cells: float = 0.0,
) -> tuple[list[str], list[str], sp.csr_matrix]:
    """Gene names, barcodes and a CSR int32 count matrix (cells x genes).

    Per-cell library sizes are log-normal around ``median_counts``; gene proportions
    follow a long-tailed (Zipf-like) distribution; mitochondrial genes take about
    ``mito_fraction`` of each cell's counts, and a fraction ``high_mito_cells`` of cells
    get five times as much (dying cells, for QC to flag).

    Parameters
    ----------
    n_genes, n_cells
        The matrix's size.
    seed
        The random seed: the same seed gives the same matrix.
    median_counts
        The median library size.
    mito_fraction
        The share of a cell's counts in mitochondrial genes.
    high_mito_cells
        The share of cells with five times ``mito_fraction`` (at most 0.9).

    Returns
    -------
    Gene names, barcodes and the counts (cells x genes, CSR, int32).
    """
    rng = np.random.default_rng(seed)
    genes = gene_names(n_genes)
    cells = barcodes(n_cells, rng)
    weights = 1.0 / np.arange(1, n_genes + 1) ** 0.9
    weights = weights[rng.permutation(n_genes)]
    is_mt = np.array([g.startswith("MT-") for g in genes])
    lib = rng.lognormal(np.log(median_counts), 0.5, n_cells)
    mt_frac = np.full(n_cells, mito_fraction)
    n_high = round(high_mito_cells * n_cells)
    if n_high:
        mt_frac[rng.choice(n_cells, n_high, replace=False)] = min(0.9, 5 * mito_fraction)
    rows = []
    for i in range(n_cells):
        p = weights.copy()
        if is_mt.any():
            p[is_mt] *= mt_frac[i] / p[is_mt].sum()
            p[~is_mt] *= (1 - mt_frac[i]) / p[~is_mt].sum()
        p /= p.sum()
        rows.append(rng.poisson(lib[i] * p).astype(np.int32))
    return genes, cells, sp.csr_matrix(np.vstack(rows))


def write_dense(
    path: str | PathLike[str],
    genes: Sequence[str],
    cells: Sequence[str],
    counts: sp.spmatrix,
    *,
    sep: str = ",",
    orientation: str = "genes_x_cells",
    first_cell: str = "",
    quote_names: bool = False,
    line_end: str = "\n",
    float_values: bool = False,
) -> Path:
    """Write counts (cells x genes) as a dense text matrix; gzip when the name ends in .gz.

    The options produce the variants real exports have (quoted names, a named first header
    cell, CRLF, ``3.0``-style values). gzip output has no timestamp, so the bytes are
    reproducible.

    Parameters
    ----------
    path
        The file to write (its folder is made); gzipped when the name ends in .gz.
    genes, cells
        The names of the columns and rows of ``counts``.
    counts
        The counts, cells x genes (sparse or dense).
    sep
        The field separator.
    orientation
        ``genes_x_cells`` (one line per gene, as GEO's exports) or ``cells_x_genes``.
    first_cell
        The header line's first cell (empty by default).
    quote_names
        Put names in double quotes.
    line_end
        The line ending: a newline, or carriage return and newline (CRLF).
    float_values
        Write counts as ``3.0``.

    Returns
    -------
    ``path``.
    """
    path = Path(path)
    dense = counts.toarray() if sp.issparse(counts) else np.asarray(counts)
    if orientation == "genes_x_cells":
        rows, cols, matrix = genes, cells, dense.T
    else:
        rows, cols, matrix = cells, genes, dense

    def name(s: str) -> str:
        return f'"{s}"' if quote_names else s

    lines = [sep.join([name(first_cell) if first_cell or quote_names else "", *map(name, cols)])]
    fmt = (lambda v: f"{v:.1f}") if float_values else str
    for row_name, values in zip(rows, matrix, strict=True):
        lines.append(sep.join([name(row_name), *(fmt(v) for v in values.tolist())]))
    data = (line_end.join(lines) + line_end).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            gz.write(data)
    else:
        path.write_bytes(data)
    return path
