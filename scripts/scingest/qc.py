"""Per-sample QC: gene flags (mt, ribo, hb) and scanpy's QC metrics."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from .errors import ScingestError

#: Gene-set regexes per organism, as in the scanpy preprocessing tutorial.
GENE_SETS: dict[str, dict[str, str]] = {
    "human": {"mt": r"^MT-", "ribo": r"^RP[SL]", "hb": r"^HB[^P]"},
    "mouse": {"mt": r"^mt-", "ribo": r"^Rp[sl]", "hb": r"^Hb[^p]"},
}
QC_VARS = ("mt", "ribo", "hb")


def gene_set_patterns(
    organism: Literal["human", "mouse"],
    *,
    overrides: dict[str, str | None] | None = None,
) -> dict[str, str]:
    """The regex of each gene set (mt, ribo, hb) for an organism, with config overrides."""
    if organism not in GENE_SETS:
        raise ScingestError(
            f"organism must be one of {', '.join(GENE_SETS)}, not {organism!r} "
            "(or set mito_regex, ribo_regex and hb_regex)"
        )
    patterns = dict(GENE_SETS[organism])
    for key, value in (overrides or {}).items():
        if value:
            patterns[key] = value
    for key, value in patterns.items():
        try:
            re.compile(value)
        except re.error as err:
            raise ScingestError(f"{key} regex {value!r} is not a valid regex: {err}") from None
    return patterns


def flag_genes(
    adata: ad.AnnData, patterns: dict[str, str], *, symbols: str | None = None
) -> dict[str, int]:
    """Add boolean ``var`` columns ``mt``, ``ribo``, ``hb``; return how many genes each flags.

    ``symbols`` names a ``var`` column holding gene symbols when ``var_names`` are gene ids.
    """
    names = pd.Index(adata.var[symbols] if symbols else adata.var_names).astype(str)
    counts = {}
    for key, pattern in patterns.items():
        regex = re.compile(pattern)  # not str.contains: it warns on capturing groups
        flags = np.fromiter((bool(regex.search(n)) for n in names), dtype=bool, count=len(names))
        adata.var[key] = flags
        counts[key] = int(flags.sum())
    return counts


def compute_qc_metrics(adata: ad.AnnData, *, percent_top: Sequence[int] = (20, 50, 100)) -> None:
    """Per-cell and per-gene QC metrics in place, with ``scanpy.pp.calculate_qc_metrics``.

    ``percent_top`` sizes larger than the number of genes are left out (scanpy would raise).
    """
    import scanpy as sc

    top = sorted({int(n) for n in percent_top if 0 < int(n) <= adata.n_vars}) or None
    sc.pp.calculate_qc_metrics(
        adata, qc_vars=list(QC_VARS), percent_top=top, log1p=True, inplace=True
    )
