"""Simulated droplets of a raw matrix (cells and empty droplets, with their truth), and
DropletUtils, the reference EmptyDrops, run in R on them: the oracles of the cell calls."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp


def simulate_droplets(
    *,
    seed: int = 1,
    n_genes: int = 400,
    n_big: int = 800,
    n_small: int = 300,
    n_empty: int = 60_000,
    n_big_empty: int = 150,
    spread: tuple[float, ...] = (1.2, 0.6, 0.25),
) -> tuple[sp.csr_matrix, np.ndarray]:
    """A raw matrix (barcodes x genes) and which barcodes are cells.

    Three cell types whose expression departs from a shared base profile by lognormal
    factors of the given ``spread`` (the last close to the ambient profile, hard to tell
    from it); ``n_big`` cells of about 4,000 molecules, ``n_small`` of 400-1,100 (around and
    below the initial call's cut, for EmptyDrops to find), ``n_empty`` empty droplets with a
    few molecules of the ambient profile (the mean of the types) and ``n_big_empty`` with
    500-900, which a test of cells must not call. Rows in random order.
    """
    rng = np.random.default_rng(seed)
    base = rng.gamma(0.3, 1.0, n_genes) + 1e-3
    base /= base.sum()
    types = [base * rng.lognormal(0, s, n_genes) for s in spread]
    types = [t / t.sum() for t in types]
    ambient = np.mean(types, axis=0)
    rows, truth = [], []
    for i in range(n_big):
        rows.append(rng.multinomial(int(rng.lognormal(np.log(4000), 0.5)), types[i % 3]))
        truth.append(True)
    for i in range(n_small):
        rows.append(rng.multinomial(int(rng.uniform(400, 1100)), types[i % 3]))
        truth.append(True)
    totals = np.clip(rng.lognormal(np.log(3), 1.0, n_empty).astype(int), 0, 400)
    totals = np.r_[totals, rng.integers(500, 900, n_big_empty)]
    rows += [rng.multinomial(t, ambient) for t in totals]
    truth += [False] * len(totals)
    counts = sp.csr_matrix(np.array(rows, dtype=np.float32))
    order = rng.permutation(counts.shape[0])
    return counts[order], np.array(truth)[order]


def rscript(*packages: str) -> str:
    """``Rscript`` when it and ``packages`` load; else skip (fail under CI=true, where
    .ci/run installs them from Debian)."""
    found = shutil.which("Rscript")
    if found is not None:
        probe = "".join(f"suppressMessages(library({p}));" for p in packages)
        if subprocess.run([found, "-e", probe], capture_output=True).returncode == 0:
            return found
    what = f"Rscript with {', '.join(packages)} (Debian r-bioc-{packages[0].lower()})"
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI")
    pytest.skip(f"needs {what}")


EMPTYDROPS_CR = r"""
suppressMessages({library(DropletUtils); library(Matrix)})
args <- commandArgs(trailingOnly = TRUE)
m <- as(readMM(args[1]), "CsparseMatrix")  # genes x barcodes
set.seed(as.integer(args[6]))
out <- emptyDropsCellRanger(
  m, n.expected.cells = as.integer(args[3]), umi.min = as.numeric(args[4]),
  umi.min.frac.median = 0, cand.max.n = 1e9, ind.min = as.integer(args[5]),
  ind.max = as.integer(args[5]) + 44999L
)
write.table(
  data.frame(total = out$Total, pvalue = out$PValue, fdr = out$FDR),
  args[2], sep = "\t", quote = FALSE, row.names = FALSE
)
"""


def emptydrops_cellranger(
    counts: sp.csr_matrix,
    folder: Path,
    *,
    expected_cells: int,
    min_umis: int,
    ambient_from: int = 45_000,
    seed: int = 1,
) -> pd.DataFrame:
    """``DropletUtils::emptyDropsCellRanger`` on ``counts`` (barcodes x genes).

    Parameters
    ----------
    counts
        The raw matrix.
    folder
        Where its files are written.
    expected_cells
        ``n.expected.cells``: its simple initial call cuts at a tenth of the barcode
        ranked ``round(expected_cells / 100)``.
    min_umis
        The least total of a candidate (DropletUtils tests totals above ``umi.min``).
    ambient_from
        The 0-based rank where the 45,000 barcodes of the ambient profile start.
    seed
        R's seed.

    Returns
    -------
    Per barcode: ``total``, ``pvalue`` (NaN where not tested) and ``fdr`` (DropletUtils'
    Benjamini-Hochberg over the tested barcodes and, at p = 0, those of its initial call).
    """
    rscript_path = rscript("DropletUtils")
    matrix = folder / "raw.mtx"
    scipy.io.mmwrite(matrix, counts.T.tocoo().astype(np.int64), field="integer")
    script = folder / "emptydrops.R"
    script.write_text(EMPTYDROPS_CR)
    out = folder / "dropletutils.tsv"
    subprocess.run(
        [
            rscript_path,
            str(script),
            str(matrix),
            str(out),
            str(expected_cells),
            str(min_umis - 1),
            str(ambient_from + 1),  # R's ranks start at 1
            str(seed),
        ],
        check=True,
        capture_output=True,
    )
    return pd.read_csv(out, sep="\t")
