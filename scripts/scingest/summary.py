"""Per-sample QC summary table, read from the checkpoints' obs and var only."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem

from .files import atomic_path


def qc_summary(checkpoints: Mapping[str, str | PathLike[str]]) -> pd.DataFrame:
    """One row per sample: cells, genes, genes detected and median QC figures per cell."""
    rows = []
    for sample, path in checkpoints.items():
        with h5py.File(path, "r") as f:
            obs = read_elem(f["obs"])
            var = read_elem(f["var"])
        rows.append(
            {
                "sample": sample,
                "cells": len(obs),
                "genes": len(var),
                "genes_detected": int((var["n_cells_by_counts"] > 0).sum()),
                "median_total_counts": float(np.median(obs["total_counts"])),
                "median_genes_by_counts": float(np.median(obs["n_genes_by_counts"])),
                "median_pct_counts_mt": float(np.median(obs["pct_counts_mt"])),
            }
        )
    return pd.DataFrame(rows)


def write_qc_summary(
    checkpoints: Mapping[str, str | PathLike[str]], out: str | PathLike[str]
) -> pd.DataFrame:
    """Write :func:`qc_summary` as TSV (atomically) and return it."""
    table = qc_summary(checkpoints)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    return table
