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
    ``var["mean_counts"]`` and ``var["log1p_mean_counts"]`` are float64 from the genes'
    total counts: scanpy 1.11 gives float64, 1.12 float32 means of float32 counts, and the
    checkpoint is the same under both.
    """
    import scanpy as sc

    top = sorted({int(n) for n in percent_top if 0 < int(n) <= adata.n_vars}) or None
    sc.pp.calculate_qc_metrics(
        adata, qc_vars=list(QC_VARS), percent_top=top, log1p=True, inplace=True
    )
    mean = adata.var["total_counts"].to_numpy(dtype=np.float64) / max(adata.n_obs, 1)
    adata.var["mean_counts"] = mean
    adata.var["log1p_mean_counts"] = np.log1p(mean)


#: Outlier flags written to ``obs``, the QC metric each one looks at, and whether the MAD
#: test is two-sided (``both``) or only flags high values (``upper``).
OUTLIER_METRICS: dict[str, tuple[str, str]] = {
    "outlier_counts": ("log1p_total_counts", "both"),
    "outlier_genes": ("log1p_n_genes_by_counts", "both"),
    "outlier_top20": ("pct_counts_in_top_20_genes", "both"),
    "outlier_mt": ("pct_counts_mt", "upper"),
}
#: The linear-scale metric each flag's thresholds are reported (and plotted) on.
THRESHOLD_METRICS = {
    "outlier_counts": "total_counts",
    "outlier_genes": "n_genes_by_counts",
    "outlier_top20": "pct_counts_in_top_20_genes",
    "outlier_mt": "pct_counts_mt",
}
#: Defaults of :func:`flag_outliers`, the config keys ``qc_<name>`` and sheet columns.
OUTLIER_DEFAULTS: dict[str, float | None] = {
    "nmads": 5.0,
    "nmads_mt": 3.0,
    "max_pct_mt": 8.0,
    "min_counts": None,
    "max_counts": None,
    "min_genes": None,
    "max_genes": None,
}


def mad_limits(values: np.ndarray, nmads: float, *, side: str = "both") -> tuple[float, float]:
    """``median -/+ nmads * MAD`` of ``values`` (unscaled median absolute deviation).

    ``side="upper"`` gives ``-inf`` as the lower limit. With a MAD of 0 (more than half the
    cells share one value) the limits are the median itself.
    """
    values = np.asarray(values, dtype=np.float64)
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    lower = median - nmads * mad if side == "both" else -np.inf
    return lower, median + nmads * mad


def _pct_top20(adata: ad.AnnData) -> np.ndarray:
    """% of each cell's counts in its 20 most expressed genes (100 with 20 genes or fewer)."""
    import scipy.sparse as sp

    matrix = sp.csr_matrix(adata.X)
    out = np.full(adata.n_obs, 100.0)
    for i in range(adata.n_obs):
        row = matrix.data[matrix.indptr[i] : matrix.indptr[i + 1]]
        total = row.sum()
        if len(row) > 20 and total > 0:
            out[i] = 100.0 * np.sort(row)[-20:].sum() / total
    return out


def flag_outliers(
    adata: ad.AnnData,
    *,
    nmads: float = 5.0,
    nmads_mt: float = 3.0,
    max_pct_mt: float | None = 8.0,
    min_counts: float | None = None,
    max_counts: float | None = None,
    min_genes: float | None = None,
    max_genes: float | None = None,
) -> dict[str, list[float]]:
    """Flag outlier cells in ``obs``, in place, without removing any.

    Adds boolean ``obs`` columns ``outlier_counts`` (``log1p_total_counts`` beyond
    ``nmads`` MADs of the sample's median, or outside ``min_counts``/``max_counts``),
    ``outlier_genes`` (the same for ``log1p_n_genes_by_counts``, ``min_genes``/``max_genes``),
    ``outlier_top20`` (``pct_counts_in_top_20_genes`` beyond ``nmads`` MADs), ``outlier_mt``
    (``pct_counts_mt`` above ``nmads_mt`` MADs, or above ``max_pct_mt``) and ``qc_pass``
    (no flag). Needs the metrics of :func:`compute_qc_metrics`; ``None`` leaves a hard
    limit out.

    Returns
    -------
    For each flag, the ``[lower, upper]`` limits it applied on the linear metric of
    :data:`THRESHOLD_METRICS` (``-inf``/``inf`` where there is none): a cell is flagged
    when its value is below ``lower`` or above ``upper``.
    """
    obs = adata.obs
    missing = [m for m, _ in OUTLIER_METRICS.values() if m not in obs and "top_20" not in m]
    if missing:
        raise ScingestError(f"QC metrics {', '.join(missing)} missing: compute them first")
    if "pct_counts_in_top_20_genes" not in obs:
        obs["pct_counts_in_top_20_genes"] = _pct_top20(adata)
    hard = {
        "outlier_counts": (min_counts, max_counts),
        "outlier_genes": (min_genes, max_genes),
        "outlier_top20": (None, None),
        "outlier_mt": (None, max_pct_mt),
    }
    limits: dict[str, list[float]] = {}
    for flag, (metric, side) in OUTLIER_METRICS.items():
        n = nmads_mt if flag == "outlier_mt" else nmads
        lower, upper = mad_limits(obs[metric].to_numpy(), n, side=side)
        if metric.startswith("log1p_"):
            lower, upper = float(np.expm1(lower)), float(np.expm1(upper))
        hard_lower, hard_upper = hard[flag]
        if hard_lower is not None:
            lower = max(lower, float(hard_lower))
        if hard_upper is not None:
            upper = min(upper, float(hard_upper))
        values = obs[THRESHOLD_METRICS[flag]].to_numpy(dtype=np.float64)
        obs[flag] = (values < lower) | (values > upper)
        limits[flag] = [float(lower), float(upper)]
    obs["qc_pass"] = ~obs[list(OUTLIER_METRICS)].any(axis=1)
    return limits
