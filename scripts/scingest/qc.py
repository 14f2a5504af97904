"""Per-sample QC: gene flags (mt, ribo, hb), scanpy's QC metrics, outlier and doublet flags."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import anndata as ad
import numba
import numpy as np
import scipy.sparse as sp

from .checkpoint import DOUBLET_SCORE, PREDICTED_DOUBLET, QC_PASS, pct_top_column
from .errors import ScingestError
from .options import DOUBLET_METHODS, QcOptions
from .readers._features import GENOME

logger = logging.getLogger(__name__)

#: Gene-set regexes per organism, as in the scanpy preprocessing tutorial.
GENE_SETS: dict[str, dict[str, str]] = {
    "human": {"mt": r"^MT-", "ribo": r"^RP[SL]", "hb": r"^HB[^P]"},
    "mouse": {"mt": r"^mt-", "ribo": r"^Rp[sl]", "hb": r"^Hb[^p]"},
}
QC_VARS = ("mt", "ribo", "hb")
#: The metric of the ``outlier_top20`` flag.
TOP20 = pct_top_column(20)


def gene_set_patterns(
    organism: Literal["human", "mouse"],
    *,
    overrides: dict[str, str | None] | None = None,
    several_genomes: bool = False,
) -> dict[str, str]:
    """The regex of each gene set (mt, ribo, hb) for an organism, with config overrides.

    Parameters
    ----------
    organism
        A key of :data:`GENE_SETS`.
    overrides
        Gene set -> regex replacing the organism's; an empty or ``None`` value keeps it.
    several_genomes
        The sample holds genes of several genomes (a human + mouse "barnyard" reference):
        a set without an override matches any organism's regex, so that both genomes'
        mito genes (``MT-ND1``, ``mt-Co1``) are found.

    Returns
    -------
    Gene set -> regex.

    Raises
    ------
    ScingestError
        For an unknown organism or a regex that does not compile.
    """
    if organism not in GENE_SETS:
        raise ScingestError(
            f"organism must be one of {', '.join(GENE_SETS)}, not {organism!r} "
            "(or set mito_regex, ribo_regex and hb_regex)"
        )
    patterns = dict(GENE_SETS[organism])
    if several_genomes:
        for key in patterns:
            patterns[key] = "|".join(f"(?:{sets[key]})" for sets in GENE_SETS.values())
    for key, value in (overrides or {}).items():
        if value:
            patterns[key] = value
    for key, value in patterns.items():
        try:
            re.compile(value)
        except re.error as err:
            raise ScingestError(f"{key} regex {value!r} is not a valid regex: {err}") from None
    return patterns


#: An Ensembl gene id, with the version CellRanger and GENCODE may append.
_ENSEMBL_ID = re.compile(r"^(ENS[A-Z]*G\d{11})(?:\.\d+)?$")


def bare_names(names: Sequence[str], genomes: Sequence[str] | None) -> list[str]:
    """Gene names without the genome prefix of a multi-genome reference.

    CellRanger prefixes every gene of a multi-genome ("barnyard") reference with its
    genome: ``GRCh38_MT-ND1``, ``mm10___mt-Co1`` (the genome, then one or more ``_``).

    Parameters
    ----------
    names
        Gene names or ids.
    genomes
        Each gene's genome (``var["genome"]``), or ``None``.

    Returns
    -------
    The names, each without ``{genome}_`` (and further ``_``) where it starts with it.
    """
    if genomes is None:
        return [str(n) for n in names]
    out = []
    for name, genome in zip(names, genomes, strict=True):
        name, genome = str(name), str(genome)
        if genome and name.startswith(genome + "_"):
            name = name[len(genome) :].lstrip("_")
        out.append(name)
    return out


def flag_genes(
    adata: ad.AnnData, patterns: dict[str, str], *, symbols: str | None = None
) -> dict[str, int]:
    """Add a boolean ``var`` column per gene set (``mt``, ``ribo``, ``hb``), in place.

    A gene is in a set when its name (without a genome prefix, :func:`bare_names`) matches
    the set's regex, or when its Ensembl id (in ``var_names``, ``var["gene_ids"]`` or the
    symbols; version and genome prefix stripped) is one of the set's known ids
    (:data:`scingest.gene_ids.KNOWN_IDS`): inputs that name genes by id only get their
    mito genes too.

    Parameters
    ----------
    adata
        The sample.
    patterns
        Gene set -> regex searched in each gene's name (:func:`gene_set_patterns`).
    symbols
        A ``var`` column holding gene symbols, when ``var_names`` are gene ids.

    Returns
    -------
    Gene set -> how many genes it flags.
    """
    from .gene_ids import KNOWN_IDS

    var = adata.var
    genomes = var[GENOME].astype(str).tolist() if GENOME in var.columns else None
    names = bare_names(var[symbols] if symbols else adata.var_names, genomes)
    candidates = [bare_names(adata.var_names, genomes)]
    for column in ("gene_ids", "gene_symbols"):
        if column in var.columns:
            candidates.append(bare_names(var[column], genomes))
    ids = [
        {m.group(1) for name in names_of_gene if (m := _ENSEMBL_ID.match(name))}
        for names_of_gene in zip(*candidates, strict=True)
    ]
    counts = {}
    for key, pattern in patterns.items():
        regex = re.compile(pattern)  # not str.contains: it warns on capturing groups
        known = KNOWN_IDS.get(key, frozenset())
        flags = np.fromiter(
            (
                bool(regex.search(n)) or not known.isdisjoint(i)
                for n, i in zip(names, ids, strict=True)
            ),
            dtype=bool,
            count=len(names),
        )
        var[key] = flags
        counts[key] = int(flags.sum())
    return counts


def compute_qc_metrics(adata: ad.AnnData, *, percent_top: Sequence[int] = (20, 50, 100)) -> None:
    """Per-cell and per-gene QC metrics in place: those of ``scanpy.pp.calculate_qc_metrics``.

    The ``obs`` columns are those of :data:`scingest.checkpoint.QC_METRIC_COLUMNS` for the
    gene sets of :data:`QC_VARS` (flagged by :func:`flag_genes`), in scanpy's order and
    dtypes; ``var`` gets ``n_cells_by_counts``, ``mean_counts``, ``log1p_mean_counts``,
    ``pct_dropout_by_counts``, ``total_counts`` and ``log1p_total_counts``. Explicit zeros
    are dropped from ``X`` first, as scanpy does.

    Computed here, in one pass of :func:`qc_sums` over the CSR rows, rather than by
    scanpy: importing scanpy (scikit-learn with it) took 1.5 s of every ingest job beyond
    anndata's, and its metrics 1.1 s more on the seed sample (``bench/README.md``, "QC
    metrics without scanpy"). Counts are summed in float64 and stored in the dtype scanpy
    gives: for integer counts (exact in float32 below 2**24) every value equals scanpy's,
    under scanpy 1.11 and 1.12 (``tests/unit/test_qc.py``); for non-integer counts the sums
    are at least as exact as scanpy's float32 ones. ``var["mean_counts"]`` and
    ``var["log1p_mean_counts"]`` are float64 (scanpy 1.11's; 1.12 gives float32).

    Parameters
    ----------
    adata
        The sample, raw counts in ``X`` (CSR), with the ``var`` flags of :func:`flag_genes`.
    percent_top
        Sizes of the ``pct_counts_in_top_{n}_genes`` metrics; sizes larger than the
        number of genes are left out (scanpy would raise).
    """
    x = adata.X = _csr(adata.X)
    x.eliminate_zeros()
    n_obs, n_vars = x.shape
    top = np.array(sorted({int(n) for n in percent_top if 0 < int(n) <= n_vars}), dtype=np.int64)
    sums = qc_sums(x, [adata.var[v].to_numpy(bool) for v in QC_VARS], top)
    sum_dtype = _sum_dtype(x.dtype)
    n_genes = np.diff(x.indptr)
    total = sums.totals.astype(sum_dtype)
    cells: dict[str, np.ndarray] = {
        "n_genes_by_counts": n_genes,
        "log1p_n_genes_by_counts": np.log1p(n_genes),
        "total_counts": total,
        "log1p_total_counts": np.log1p(total),
    }
    for j, n in enumerate(top):
        cells[pct_top_column(int(n))] = _percent(sums.top_sums[:, j], total.astype(np.float64))
    for j, qc_var in enumerate(QC_VARS):
        part = sums.set_totals[:, j].astype(sum_dtype)
        cells[f"total_counts_{qc_var}"] = part
        cells[f"log1p_total_counts_{qc_var}"] = np.log1p(part)
        cells[f"pct_counts_{qc_var}"] = _percent(part, total)
    for column, values in cells.items():
        adata.obs[column] = values
    n_cells = sums.gene_cells
    mean = sums.gene_totals / max(n_obs, 1)
    gene_total = sums.gene_totals.astype(sum_dtype)
    genes = {
        "n_cells_by_counts": n_cells,
        "mean_counts": mean,
        "log1p_mean_counts": np.log1p(mean),
        "pct_dropout_by_counts": (1 - n_cells / n_obs) * 100,
        "total_counts": gene_total,
        "log1p_total_counts": np.log1p(gene_total),
    }
    for column, values in genes.items():
        adata.var[column] = values


def _csr(matrix: Any) -> sp.csr_matrix:
    """``matrix`` itself when it is CSR, else a CSR copy."""
    if sp.issparse(matrix) and matrix.format == "csr":
        return matrix
    return sp.csr_matrix(matrix)


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype scanpy's QC sums of counts of ``dtype`` have (float32 for float32, int64
    for int32): the dtype numpy sums them in."""
    return np.sum(np.zeros(1, dtype=dtype)).dtype


def _percent(part: np.ndarray, total: np.ndarray) -> np.ndarray:
    """``part / total * 100`` in their dtype; NaN for cells without counts, as scanpy."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return part / total * 100


class QcSums(NamedTuple):
    """The sums behind the QC metrics (:func:`qc_sums`), all float64 but ``gene_cells``."""

    #: per cell: its total counts
    totals: np.ndarray
    #: per cell and gene set: its counts in the set
    set_totals: np.ndarray
    #: per cell and size ``n``: the sum of its ``n`` largest counts
    top_sums: np.ndarray
    #: per gene: its total counts
    gene_totals: np.ndarray
    #: per gene: the cells with a count of it (int64)
    gene_cells: np.ndarray


def qc_sums(x: sp.csr_matrix, gene_sets: Sequence[np.ndarray], top: np.ndarray) -> QcSums:
    """The sums of the QC metrics, in one pass over the counts.

    Parameters
    ----------
    x
        Counts, CSR without explicit zeros.
    gene_sets
        A boolean mask over the genes per gene set (at most 8).
    top
        Ascending sizes ``n`` (int64) of the sums of each cell's ``n`` largest counts.

    Returns
    -------
    The sums, as :class:`QcSums`.
    """
    bits = np.zeros(x.shape[1], dtype=np.uint8)
    for j, mask in enumerate(gene_sets):
        bits |= np.asarray(mask, dtype=np.uint8) << j
    indptr = x.indptr.astype(np.int64)
    return QcSums(*_qc_sums(x.data, x.indices, indptr, x.shape[1], bits, len(gene_sets), top))


@numba.njit(cache=True, nogil=True)
def _qc_sums(data, indices, indptr, n_cols, bits, n_sets, top):  # pragma: no cover - compiled
    n_rows = indptr.size - 1
    totals = np.zeros(n_rows)
    set_totals = np.zeros((n_rows, n_sets))
    top_sums = np.zeros((n_rows, top.size))
    gene_totals = np.zeros(n_cols)
    gene_cells = np.zeros(n_cols, dtype=np.int64)
    largest = top[-1] if top.size else 0
    heap = np.empty(max(largest, 1))  # a row's largest values: a min-heap, smallest on top
    for i in range(n_rows):
        total = 0.0
        size = 0
        for k in range(indptr[i], indptr[i + 1]):
            value = float(data[k])
            gene = indices[k]
            total += value
            gene_totals[gene] += value
            gene_cells[gene] += 1
            gene_bits = bits[gene]
            for j in range(n_sets):
                if gene_bits >> j & 1:
                    set_totals[i, j] += value
            if size < largest:  # sift the new value up
                at = size
                size += 1
                while at > 0 and heap[(at - 1) // 2] > value:
                    heap[at] = heap[(at - 1) // 2]
                    at = (at - 1) // 2
                heap[at] = value
            elif largest and value > heap[0]:  # replaces the smallest: sift it down
                at = 0
                while True:
                    child = 2 * at + 1
                    if child >= size:
                        break
                    if child + 1 < size and heap[child + 1] < heap[child]:
                        child += 1
                    if heap[child] >= value:
                        break
                    heap[at] = heap[child]
                    at = child
                heap[at] = value
        totals[i] = total
        if largest == 0:
            continue
        row = np.sort(heap[:size])[::-1]  # summed largest first
        acc, j = 0.0, 0
        for k in range(size):
            while j < top.size and top[j] == k:
                top_sums[i, j] = acc
                j += 1
            acc += row[k]
        while j < top.size:
            top_sums[i, j] = acc
            j += 1
    return totals, set_totals, top_sums, gene_totals, gene_cells


#: The % mito limit that MADs give is never below this (a floor; ``qc_max_pct_mt`` still caps
#: it). See :func:`flag_outliers` for why.
MIN_LIMIT_PCT_MT = 2.0


@dataclass(frozen=True)
class QcMetric:
    """One criterion of the outlier flags, and all that the flags, the QC summary, the plots
    and the options need to know of it (:data:`QC_METRICS`).

    Attributes
    ----------
    flag
        The boolean ``obs`` column it sets (``outlier_*``).
    metric
        The ``obs`` column it looks at, on the scale its limits are reported and drawn on.
    label
        The metric's axis label in the QC plots.
    log
        Its MAD limits are taken on ``log1p`` of the metric (and reported back on the
        metric's scale), the plots draw it on a log axis, and a cell without counts is
        flagged by it.
    side
        ``both``: the MAD test flags low and high values; ``upper``: high values only.
    nmads
        The outlier limit (:meth:`scingest.options.QcOptions.outlier_limits`) giving its
        number of MADs.
    lower, upper
        The outlier limits giving its hard lower and upper limits; None: it has none.
    floor
        Its MAD upper limit is never below this; None: no floor.
    gene_set
        The gene set its metric needs: without a gene of it the metric is not measured.
    median
        The QC summary's column of the metric's median; None: the summary has none.
    limit
        The QC summary's limit columns are ``limit_<limit>_low`` (two-sided only) and
        ``limit_<limit>_high``; None: the summary has none.
    overview
        Drawn in the overview's violins (every criterion is drawn in each sample's figure).
    """

    flag: str
    metric: str
    label: str
    log: bool
    side: Literal["both", "upper"]
    nmads: str
    lower: str | None = None
    upper: str | None = None
    floor: float | None = None
    gene_set: str | None = None
    median: str | None = None
    limit: str | None = None
    overview: bool = True


#: The criteria of the outlier flags, in the order of their ``obs`` columns and summary
#: columns: the one table that :func:`flag_outliers`, :mod:`scingest.summary` and
#: :mod:`scingest.plots` read.
QC_METRICS: tuple[QcMetric, ...] = (
    QcMetric(
        "outlier_counts",
        "total_counts",
        "total counts per cell",
        log=True,
        side="both",
        nmads="nmads",
        lower="min_counts",
        upper="max_counts",
        median="median_total_counts",
        limit="total_counts",
    ),
    QcMetric(
        "outlier_genes",
        "n_genes_by_counts",
        "genes detected per cell",
        log=True,
        side="both",
        nmads="nmads",
        lower="min_genes",
        upper="max_genes",
        median="median_genes_by_counts",
        limit="genes",
    ),
    QcMetric(
        "outlier_top20",
        TOP20,
        "% counts in top 20 genes",
        log=False,
        side="both",
        nmads="nmads",
        overview=False,
    ),
    QcMetric(
        "outlier_mt",
        "pct_counts_mt",
        "% counts mitochondrial",
        log=False,
        side="upper",
        nmads="nmads_mt",
        upper="max_pct_mt",
        floor=MIN_LIMIT_PCT_MT,
        gene_set="mt",
        median="median_pct_counts_mt",
        limit="pct_mt",
    ),
)
#: The outlier flags (``obs`` columns), in order.
OUTLIER_FLAGS: tuple[str, ...] = tuple(m.flag for m in QC_METRICS)

#: MeanAD x this is on the scale of the MAD for normal data (0.6745 / 0.7979): the fallback
#: of the modified z-score (Iglewicz and Hoaglin) when the MAD is 0.
MEANAD_TO_MAD = 0.8453
#: Fewer cells with counts than this give no MAD limits (the hard limits still apply): the
#: MAD of fewer values says little about a sample's spread (of 9 cells it rests on 5).
MIN_CELLS_MAD = 10
#: A value this close to a MAD limit (relative to the limit, at least 1 absolute) counts
#: as on it, not beyond it: with integer counts and a whole number of MADs a limit often
#: falls exactly on a cell's value, and which side the last bit of ``log1p`` lands on differs
#: between maths libraries (numpy's and C's ``log1p`` differ by a bit here and there).
LIMIT_SLACK = 1e-9
#: The limits recorded for a metric that could not be measured (no gene of its set).
NOT_MEASURED = [float("nan"), float("nan")]


def robust_spread(values: np.ndarray) -> tuple[float, float, bool]:
    """Median, spread and whether the MAD was degenerate, of the finite ``values``.

    The spread is the unscaled median absolute deviation (MAD). When it is 0 (more than half
    the cells share one value, e.g. single-nucleus data where most nuclei have no mito
    counts) it is replaced by :data:`MEANAD_TO_MAD` times the mean absolute deviation from
    the median, which is on the MAD's scale for normal data and is 0 only when every value
    is equal: so a number of MADs still moves the limit. NaN and infinite values (the %
    metrics of a cell without counts) take no part.

    Parameters
    ----------
    values
        One metric of every cell.

    Returns
    -------
    median
        The median (0 for no finite values).
    spread
        The MAD, or its replacement.
    degenerate
        True when the MAD was 0 (or there were no finite values).
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 0.0, True
    median = float(np.median(values))
    deviation = np.abs(values - median)
    mad = float(np.median(deviation))
    if mad > 0:
        return median, mad, False
    return median, MEANAD_TO_MAD * float(deviation.mean()), True


def mad_limits(values: np.ndarray, nmads: float, *, side: str = "both") -> tuple[float, float]:
    """``median -/+ nmads * MAD`` of the finite ``values`` (unscaled MAD).

    With a MAD of 0 the spread of :func:`robust_spread` (mean absolute deviation) is used;
    when every value is equal the limits are the median itself.

    Parameters
    ----------
    values
        One metric of every cell.
    nmads
        How many MADs from the median.
    side
        ``both``, or ``upper`` for a lower limit of ``-inf``.

    Returns
    -------
    ``(lower, upper)``.
    """
    median, spread, _ = robust_spread(values)
    lower = median - nmads * spread if side == "both" else -np.inf
    return lower, median + nmads * spread


def _pct_top20(adata: ad.AnnData) -> np.ndarray:
    """% of each cell's counts in its 20 most expressed genes, for metrics computed without
    that size; 100 with 20 genes or fewer (a cell's 20 most expressed genes then hold all
    its counts), NaN for a cell without counts (as scanpy's % metrics)."""
    x = _csr(adata.X)
    if adata.n_vars <= 20:
        total = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
        return _percent(total, total)
    sums = qc_sums(x, [], np.array([20], dtype=np.int64))
    total = sums.totals.astype(_sum_dtype(x.dtype)).astype(np.float64)
    return _percent(sums.top_sums[:, 0], total)


def flag_outliers(
    adata: ad.AnnData, *, cells: np.ndarray | None = None, **limits: float | None
) -> dict[str, list[float]]:
    """Flag outlier cells in ``obs``, in place, without removing any.

    Adds a boolean ``obs`` column per criterion of :data:`QC_METRICS` (``outlier_counts``,
    ``outlier_genes``, ``outlier_top20``, ``outlier_mt``) and ``qc_pass`` (no flag). Needs
    the metrics of :func:`compute_qc_metrics` and the ``var`` flags of :func:`flag_genes`.
    The rules (the user guide's docs/guide/qc.md states the same):

    1. A cell without counts (``total_counts`` 0) is flagged ``outlier_counts`` and
       ``outlier_genes`` and never passes; it takes no part in any limit (its % metrics are
       NaN, as scanpy gives them).
    2. MAD limits: over the other cells, the median ``m`` and the unscaled median absolute
       deviation ``d`` of the metric (of its finite values); a cell is flagged beyond
       ``m -/+ n x d``, ``n`` = ``nmads`` (``nmads_mt`` for % mito, upper side only). Total
       counts and genes are taken on the log scale (``log1p``), the % metrics as they are.
       A cell whose value equals the median is therefore never flagged by a MAD limit.
    3. With fewer than :data:`MIN_CELLS_MAD` cells with counts there are no MAD limits
       (said in the log): the hard limits alone decide.
    4. Hard limits always apply: ``total_counts`` below ``min_counts`` or above
       ``max_counts``, ``n_genes_by_counts`` below ``min_genes`` or above ``max_genes``,
       ``pct_counts_mt`` above ``max_pct_mt``.
    5. When the sample has no gene of the ``mt`` set, % mito is not measured:
       ``outlier_mt`` is never set and its limits are recorded as :data:`NOT_MEASURED`.
    6. With a ``cells`` mask (``barcodes: all``: a raw matrix's barcodes, the called cells
       marked), only the called cells take part in the limits (rules 1-3 count and measure
       the called cells alone); every barcode is judged against those limits, and a
       barcode that is not a called cell never passes.

    **Degenerate distributions.** The MAD of a metric that most cells share is 0 (single
    nuclei: most have no mito count at all, the median and the MAD of % mito are 0), and
    ``median + n x MAD`` would flag every cell with a single count. Two safeguards, each
    written to the log when it acts:

    - a MAD of 0 is replaced by the mean absolute deviation on the MAD's scale
      (:func:`robust_spread`, the modified z-score's fallback), so ``nmads`` still moves
      the limit;
    - the MAD limit of % mito is never below :data:`MIN_LIMIT_PCT_MT` (2%): % mito moves in
      steps of ``100 / total counts``, so in a cell of a few hundred counts 1-2 mito counts
      are 0.2-2%, counting noise rather than a sign of a broken cell (the fixed limits of
      scanpy's and sctk's tutorials are 5-20%). ``max_pct_mt`` still caps the limit, so a
      stricter one stays possible.

    Parameters
    ----------
    adata
        The sample, with the metrics of :func:`compute_qc_metrics`.
    cells
        One boolean per barcode, True for the called cells (rule 6); None: every barcode
        is a cell.
    **limits
        The outlier limits, the ``qc_*`` fields of :class:`scingest.options.QcOptions`
        without their prefix: ``nmads``, ``nmads_mt``, ``max_pct_mt``, ``min_counts``,
        ``max_counts``, ``min_genes``, ``max_genes`` (None: no such limit); those not given
        take QcOptions' defaults.

    Returns
    -------
    For each flag, the ``[lower, upper]`` limits it applied on its metric
    (:attr:`QcMetric.metric`; ``-inf``/``inf`` where there is none;
    :data:`NOT_MEASURED` for a metric not measured).

    Raises
    ------
    ScingestError
        When the QC metrics are missing.
    TypeError
        For a limit that is none of the above.
    """
    unknown = [k for k in limits if k not in QcOptions.limit_names()]
    if unknown:
        raise TypeError(
            f"flag_outliers() got unknown limit(s) {', '.join(unknown)}: expected some of "
            f"{', '.join(QcOptions.limit_names())}"
        )
    limits = {**QcOptions().outlier_limits(), **limits}
    obs = adata.obs
    missing = [m.metric for m in QC_METRICS if m.metric not in obs and m.metric != TOP20]
    if missing:
        raise ScingestError(f"QC metrics {', '.join(missing)} missing: compute them first")
    if TOP20 not in obs:  # percent_top without 20, or fewer genes than 20
        obs[TOP20] = _pct_top20(adata)
    empty = obs["total_counts"].to_numpy(dtype=np.float64) == 0
    is_cell = np.ones(adata.n_obs, dtype=bool) if cells is None else np.asarray(cells, dtype=bool)
    if is_cell.shape != (adata.n_obs,):
        raise ScingestError(f"{is_cell.size} cell calls for {adata.n_obs} barcodes")
    pool = ~empty & is_cell  # what the MAD limits are taken over
    n_counted = int(pool.sum())
    use_mads = n_counted >= MIN_CELLS_MAD
    if not use_mads and any(limits[m.nmads] is not None for m in QC_METRICS):
        hard = [f"qc_{k}" for m in QC_METRICS for k in (m.lower, m.upper) if k is not None]
        logger.warning(
            "%d cell(s) with counts are too few for MAD limits (at least %d): only the hard "
            "limits flag cells (%s)",
            n_counted,
            MIN_CELLS_MAD,
            ", ".join(hard),
        )
    if (empty & is_cell).any():
        logger.warning(
            "%d cell(s) without counts: flagged outlier_counts and outlier_genes, and left "
            "out of every limit",
            int((empty & is_cell).sum()),
        )
    if cells is not None:
        logger.info(
            "QC limits over the %d called cells of %d barcodes; the %d others never pass",
            int(is_cell.sum()),
            adata.n_obs,
            int((~is_cell).sum()),
        )
    applied: dict[str, list[float]] = {}
    for criterion in QC_METRICS:
        flag, metric, log = criterion.flag, criterion.metric, criterion.log
        gene_set = criterion.gene_set
        if gene_set in adata.var and not adata.var[gene_set].any():
            obs[flag] = np.zeros(adata.n_obs, dtype=bool)
            applied[flag] = list(NOT_MEASURED)
            continue
        values = obs[metric].to_numpy(dtype=np.float64)
        scaled = np.log1p(values) if log else values
        flagged = np.zeros(adata.n_obs, dtype=bool)
        lower, upper = -np.inf, np.inf
        n = limits[criterion.nmads]
        if n is not None and use_mads:
            median, spread, degenerate = robust_spread(scaled[pool])
            low = median - n * spread if criterion.side == "both" else -np.inf
            high = median + n * spread
            if criterion.floor is not None and high < criterion.floor:
                unit = "%" if metric.startswith("pct_") else ""
                logger.log(
                    logging.WARNING if degenerate else logging.INFO,
                    "%s: %s MADs above the median %s (%.4g, MAD %.4g%s) give %.4g%s, below "
                    "what counts can support: the limit is the floor %g%s (lower it with qc_%s)",
                    flag,
                    f"{n:g}",
                    criterion.label,
                    median,
                    spread,
                    ", degenerate" if degenerate else "",
                    high,
                    unit,
                    criterion.floor,
                    unit,
                    criterion.upper,
                )
                high = criterion.floor
            slack = LIMIT_SLACK * max(1.0, abs(low) if np.isfinite(low) else 0.0, abs(high))
            with np.errstate(invalid="ignore"):
                flagged |= (scaled < low - slack) | (scaled > high + slack)
            if log:
                low, high = float(np.expm1(low)), float(np.expm1(high))
            lower, upper = low, high
            if degenerate:
                logger.warning(
                    "%s: the MAD of %s is 0 (median %.4g, a degenerate distribution): its "
                    "limits use %g x the mean absolute deviation instead (%s MADs: %.4g to "
                    "%.4g on %s)",
                    flag,
                    f"log1p({metric})" if log else metric,
                    median,
                    MEANAD_TO_MAD,
                    f"{n:g}",
                    lower,
                    upper,
                    metric,
                )
        hard_lower = None if criterion.lower is None else limits[criterion.lower]
        hard_upper = None if criterion.upper is None else limits[criterion.upper]
        with np.errstate(invalid="ignore"):
            if hard_lower is not None:
                flagged |= values < float(hard_lower)
                lower = max(lower, float(hard_lower))
            if hard_upper is not None:
                flagged |= values > float(hard_upper)
                upper = min(upper, float(hard_upper))
        if log:
            flagged |= empty
        obs[flag] = flagged
        applied[flag] = [float(lower), float(upper)]
    obs[QC_PASS] = ~obs[list(OUTLIER_FLAGS)].any(axis=1).to_numpy() & is_cell
    return applied


#: Seed of scrublet's simulated doublets and PCA: the same input gives the same calls.
DOUBLET_SEED = 0
#: Fewer cells than this are too few for scrublet's 30 principal components and kNN graph.
MIN_CELLS_DOUBLETS = 100


def flag_doublets(
    adata: ad.AnnData,
    method: str = "scrublet",
    *,
    seed: int = DOUBLET_SEED,
    cells: np.ndarray | None = None,
) -> list[float] | None:
    """Score doublets with scanpy's ``pp.scrublet`` on the raw counts, in place.

    Adds ``obs["doublet_score"]`` and ``obs["predicted_doublet"]`` (the ``doublet`` flag)
    and clears ``qc_pass`` of predicted doublets: flagged like the outliers, never removed.
    A sample too small to score, or whose scores have no threshold scrublet can find, gets
    no doublet calls, with a warning in the log.

    Parameters
    ----------
    adata
        The sample, raw counts in ``X`` (scrublet normalises a copy itself), with
        ``obs["qc_pass"]`` from :func:`flag_outliers`.
    method
        One of :data:`DOUBLET_METHODS`.
    seed
        Seed of scrublet's simulation and PCA: the same input gives the same calls.
    cells
        One boolean per barcode, True for the called cells (``barcodes: all``): only they
        are scored (the others keep a NaN score and no call); None: every barcode.

    Returns
    -------
    ``[-inf, threshold]`` on ``doublet_score`` (the limit above which a cell is called a
    doublet; ``inf`` when no cell could be called), or ``None`` for ``method="none"``.

    Raises
    ------
    ScingestError
        For an unknown method.
    """
    if method not in DOUBLET_METHODS:
        raise ScingestError(f"doublets must be one of {', '.join(DOUBLET_METHODS)}, not {method!r}")
    if method == "none":
        return None
    obs = adata.obs
    obs[DOUBLET_SCORE] = np.full(adata.n_obs, np.nan)
    obs[PREDICTED_DOUBLET] = np.zeros(adata.n_obs, dtype=bool)
    rows = np.arange(adata.n_obs) if cells is None else np.flatnonzero(cells)
    if rows.size < MIN_CELLS_DOUBLETS:
        logger.warning(
            "doublets: %d cells are too few for scrublet (at least %d): no cell is called a "
            "doublet",
            rows.size,
            MIN_CELLS_DOUBLETS,
        )
        return [-np.inf, np.inf]
    import scanpy as sc

    counts = ad.AnnData(X=_csr(adata.X)[rows].copy())
    counts.obs_names = adata.obs_names[rows]
    sc.pp.scrublet(counts, random_state=seed, verbose=False)
    scores = np.full(adata.n_obs, np.nan)
    scores[rows] = counts.obs["doublet_score"].to_numpy(dtype=np.float64)
    obs[DOUBLET_SCORE] = scores
    threshold = (counts.uns.get("scrublet") or {}).get("threshold")
    if threshold is None or "predicted_doublet" not in counts.obs:
        logger.warning(
            "doublets: scrublet found no threshold between singlet and doublet scores: "
            "scores kept, no cell is called a doublet"
        )
        return [-np.inf, np.inf]
    predicted = np.zeros(adata.n_obs, dtype=bool)
    predicted[rows] = counts.obs["predicted_doublet"].to_numpy(dtype=bool)
    obs[PREDICTED_DOUBLET] = predicted
    obs[QC_PASS] = obs[QC_PASS].to_numpy(dtype=bool) & ~predicted
    logger.info(
        "doublets: scrublet (seed %d) calls %d of %d cells doublets (score above %.3g)",
        seed,
        int(predicted.sum()),
        rows.size,
        float(threshold),
    )
    return [-np.inf, float(threshold)]
