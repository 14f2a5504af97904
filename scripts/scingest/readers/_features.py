"""What every reader shares: the intermediate, count checks, feature types, ids and symbols.

Each reader returns a :class:`RawCounts`; :func:`assemble` turns it into AnnData the same
way for every format, so the same cells give the same checkpoint whatever the file.
Importing this module imports neither pandas nor anndata: the dense reader parses while
anndata loads in the background (see :mod:`scingest.readers.dense`).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass, field
from os import PathLike
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from ..errors import ScingestError
from ..options import BARCODES_MODES, Barcodes, OtherFeatures, VarNames

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

logger = logging.getLogger(__name__)

GENE_EXPRESSION = "Gene Expression"
#: The ``var`` column naming each gene's genome (several in a "barnyard" reference).
GENOME = "genome"
#: obsm keys of the feature types CellRanger writes besides Gene Expression.
OBSM_KEYS = {
    "Antibody Capture": "protein_counts",
    "CRISPR Guide Capture": "crispr_counts",
    "Multiplexing Capture": "multiplexing_counts",
    "Custom": "custom_counts",
}
#: float32 represents every integer up to 2**24 exactly.
FLOAT32_EXACT = 2**24


@dataclass
class RawCounts:
    """Counts as read, before feature types are split and var_names chosen.

    Attributes
    ----------
    counts
        CSR, cells x features.
    barcodes
        One per cell.
    symbols
        One gene name (or feature name) per feature.
    ids
        Gene ids, one per feature; None when the input has none.
    feature_types
        One per feature (``Gene Expression``, ``Antibody Capture``, ...); None when the
        input has none (then all are genes).
    var
        Further per-feature columns to keep (e.g. ``genome``).
    obs
        The input's own per-cell columns (an h5ad's or zarr's ``obs``, a loom's column
        attributes: a collaborator's cell types, donors, earlier QC), one value per cell.
    called_cells
        The counting tool's own cell calls, one per barcode (True: the tool called it a
        cell), where the files carry them (a probe .h5's ``matrix/filtered_barcodes``, the
        filtered matrix beside a raw one); None where they do not.
        :func:`keep_called_cells` applies them.
    calls_source
        Where :attr:`called_cells` come from, for the log and the provenance.
    """

    counts: sp.csr_matrix
    barcodes: np.ndarray
    symbols: np.ndarray
    ids: np.ndarray | None = None
    feature_types: np.ndarray | None = None
    var: dict[str, np.ndarray] = field(default_factory=dict)
    obs: dict[str, Any] = field(default_factory=dict)
    called_cells: np.ndarray | None = None
    calls_source: str | None = None


#: Points of the barcode-rank curve kept in the provenance (log-spaced ranks).
RANK_CURVE_POINTS = 400


def rank_curve(
    totals: np.ndarray, *, points: int = RANK_CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The barcode-rank curve of ``totals`` at up to ``points`` log-spaced ranks.

    Parameters
    ----------
    totals
        Each barcode's total counts.
    points
        How many ranks to keep at most (the first and the last always).

    Returns
    -------
    1-based ranks (by descending totals) and the total at each, as float64 arrays.
    """
    ordered = np.sort(np.asarray(totals, dtype=np.float64))[::-1]
    if ordered.size == 0:
        return np.zeros(0), np.zeros(0)
    ranks = np.unique(np.round(np.geomspace(1, ordered.size, points)).astype(np.int64))
    return ranks.astype(np.float64), ordered[ranks - 1]


@dataclass
class CellSelection:
    """What :func:`keep_called_cells` decided, for the checkpoint.

    Attributes
    ----------
    rows
        The barcodes (rows of the input) kept, in input order.
    is_cell
        One per kept barcode: True for a called cell (None when the input is not raw:
        every barcode is a cell).
    info
        For the provenance and the QC summary: the mode, why the input is raw, whose
        calls, how many barcodes and cells, the barcode-rank curve, the calls' figures.
    """

    rows: np.ndarray
    is_cell: np.ndarray | None
    info: dict[str, Any]


def keep_called_cells(
    raw: RawCounts,
    path: str | PathLike[str],
    *,
    barcodes: Barcodes = "cells",
    raw_reason: str | None = None,
) -> tuple[RawCounts, CellSelection]:
    """Reduce a raw matrix to its called cells, or flag them: the one place this is decided.

    A matrix holding every barcode seen (``raw_reason`` from its tool's naming, a file
    that carries the tool's calls, or a barcode-rank curve that looks raw,
    :func:`scingest.cells.looks_raw`) is mostly empty droplets. Its cells are the tool's
    own calls where the files carry them (:attr:`RawCounts.called_cells`: a probe .h5's
    ``filtered_barcodes``, the barcodes of the filtered matrix beside it), else those of
    :func:`scingest.cells.call_cells` (CellRanger's ordmag + EmptyDrops). The log says
    which.

    Parameters
    ----------
    raw
        The counts as a reader returned them.
    path
        The input, named in the log.
    barcodes
        ``cells``: keep the called cells; ``all``: keep every barcode with counts, the
        calls in :attr:`CellSelection.is_cell`; ``as_cells``: keep every barcode as a cell
        (no detection, the file's own calls ignored).
    raw_reason
        Why the input is raw by its naming (:func:`scingest.formats.raw_input`), or None.

    Returns
    -------
    The counts kept, and what was decided.

    Raises
    ------
    ScingestError
        When the calls do not give one value per barcode, or an unknown ``barcodes``.
    """
    from ..cells import METHOD, METHOD_TEXT, barcode_totals, call_cells, looks_raw

    if barcodes not in BARCODES_MODES:
        raise ScingestError(
            f"barcodes must be one of {', '.join(BARCODES_MODES)}, not {barcodes!r}"
        )
    n = len(raw.barcodes)
    info: dict[str, Any] = {"barcodes": barcodes, "barcodes_in_input": n}
    everything = np.arange(n)
    if barcodes == "as_cells":
        info.update(raw=None, source="none: every barcode taken as a cell (barcodes: as_cells)")
        info["cells"] = n
        return _without_calls(raw), CellSelection(everything, None, info)
    totals = barcode_totals(raw.counts)
    calls = raw.called_cells
    reason = raw_reason
    if calls is not None:
        calls = np.asarray(calls, dtype=bool)
        if calls.shape != (n,):
            raise ScingestError(
                f"{calls.size} cell calls for {n} barcodes: expected one per barcode", path=path
            )
        reason = reason or "the file marks which of its barcodes are cells"
        info["source"] = raw.calls_source or "the counting tool's own calls"
        info["method"] = "tool"
    else:
        reason = reason or looks_raw(totals)
        if reason is None:
            info.update(raw=None, source="none: not a raw matrix, every barcode is a cell")
            info["cells"] = n
            return raw, CellSelection(everything, None, info)
        called = call_cells(raw.counts)
        calls = called.is_cell
        info["source"] = METHOD_TEXT
        info["method"] = METHOD
        info["calls"] = called.summary()
    with_counts = totals > 0
    info.update(
        raw=reason,
        barcodes_with_counts=int(with_counts.sum()),
        cells=int(calls.sum()),
        cut_total=float(totals[calls].min()) if calls.any() else float("nan"),
    )
    info["rank_curve_ranks"], info["rank_curve_totals"] = rank_curve(totals[with_counts])
    logger.info(
        "%s: a raw matrix (%s): %d barcodes, %d with counts; %d called cells (%s)",
        path,
        reason,
        n,
        info["barcodes_with_counts"],
        info["cells"],
        info["source"],
    )
    if barcodes == "cells":
        rows = np.flatnonzero(calls)
        if rows.size == 0:
            raise ScingestError(
                f"a raw matrix ({reason}) in which no barcode is a cell ({info['source']}): "
                "expected cells among its barcodes; set barcodes: all to keep every barcode "
                "(flagged), or barcodes: as_cells to take every barcode as a cell",
                path=path,
            )
        logger.info(
            "%s: kept the %d of %d barcodes that are called cells; the other %d are left out "
            "(barcodes: all keeps them, flagged)",
            path,
            rows.size,
            n,
            n - rows.size,
        )
        return _subset(raw, rows), CellSelection(rows, None, info)
    rows = np.flatnonzero(with_counts)
    logger.info(
        "%s: barcodes: all: kept the %d barcodes with counts (%d called cells, obs is_cell); "
        "%d barcodes without any count are left out",
        path,
        rows.size,
        int(calls[rows].sum()),
        n - rows.size,
    )
    return _subset(raw, rows), CellSelection(rows, calls[rows], info)


def _without_calls(raw: RawCounts) -> RawCounts:
    """``raw`` without its cell calls."""
    if raw.called_cells is None:
        return raw
    return RawCounts(
        counts=raw.counts,
        barcodes=raw.barcodes,
        symbols=raw.symbols,
        ids=raw.ids,
        feature_types=raw.feature_types,
        var=raw.var,
        obs=raw.obs,
    )


def _subset(raw: RawCounts, rows: np.ndarray) -> RawCounts:
    """The barcodes ``rows`` of ``raw`` (its calls dropped: they were applied)."""
    return RawCounts(
        counts=raw.counts[rows].tocsr(),
        barcodes=np.asarray(raw.barcodes)[rows],
        symbols=raw.symbols,
        ids=raw.ids,
        feature_types=raw.feature_types,
        var=raw.var,
        obs={k: (np.asarray(v) if isinstance(v, list) else v)[rows] for k, v in raw.obs.items()},
    )


def check_counts(
    matrix: sp.spmatrix | np.ndarray,
    path: str | PathLike[str],
    *,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> sp.csr_matrix:
    """The counts as CSR of ``dtype``, duplicate entries summed.

    Parameters
    ----------
    matrix
        The counts as read (sparse or dense), cells x features.
    path
        The file they were read from, named in errors and warnings.
    dtype
        ``float32`` or ``int32``.
    allow_non_integer
        Accept non-integer values (logged as a warning) instead of raising.

    Returns
    -------
    The counts as a CSR matrix of ``dtype``.

    Raises
    ------
    ScingestError
        For negative, non-finite or (unless ``allow_non_integer``) non-integer values, and
        for values that are not numbers.
    """
    counts = sp.csr_matrix(matrix)
    values = counts.data
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ScingestError(
                "the matrix holds NaN or infinite values: expected counts", path=path
            )
        is_fraction = values != np.round(values)
        fractional = int(np.count_nonzero(is_fraction))
        if fractional and not allow_non_integer:
            raise ScingestError(
                f"{fractional} non-integer value(s) (e.g. {values[is_fraction][0]}): "
                "expected raw integer counts; set allow_non_integer: true to accept normalised "
                "data",
                path=path,
            )
        if fractional:
            log_non_integer(path, fractional)
    elif values.dtype.kind not in "iub":
        raise ScingestError(f"the matrix has {values.dtype} values: expected counts", path=path)
    if values.size and values.min() < 0:
        raise ScingestError(
            f"negative value {values.min()}: expected non-negative counts", path=path
        )
    if values.size:
        warn_inexact_float32(values.max(), path, dtype=dtype)
    counts = counts.astype(dtype, copy=False)
    counts.sum_duplicates()
    return counts


def warn_inexact_float32(largest: float, path: str | PathLike[str], *, dtype: str) -> None:
    """Warn when counts stored as float32 reach :data:`FLOAT32_EXACT`.

    Parameters
    ----------
    largest
        The largest count read.
    path
        The file, named in the warning.
    dtype
        The dtype the counts are stored as; only ``float32`` can lose counts.
    """
    if np.dtype(dtype) == np.float32 and largest >= FLOAT32_EXACT:
        logger.warning(
            "%s: counts up to %d exceed 2**24, which float32 cannot hold exactly: set dtype: int32",
            path,
            int(largest),
        )


def log_non_integer(path: str | PathLike[str], n: int) -> None:
    """Warn that ``n`` non-integer values were accepted (``allow_non_integer`` is set).

    Parameters
    ----------
    path
        The file, named in the warning.
    n
        How many values are not whole numbers.
    """
    logger.warning(
        "%s: %d non-integer value(s) accepted (allow_non_integer is set): these may not be "
        "raw counts",
        path,
        n,
    )


def obsm_key(feature_type: str) -> str:
    """The obsm key a feature type is kept under (``Antibody Capture`` -> ``protein_counts``).

    Parameters
    ----------
    feature_type
        A feature type as CellRanger writes it.

    Returns
    -------
    The key in :data:`OBSM_KEYS`, or ``<type>_counts`` in snake case for other types.
    """
    if feature_type in OBSM_KEYS:
        return OBSM_KEYS[feature_type]
    return re.sub(r"[^a-z0-9]+", "_", feature_type.lower()).strip("_") + "_counts"


#: A gene id of a multi-genome CellRanger reference: the genome, ``_`` (one or more), the id.
_PREFIXED_ID = re.compile(r"^([A-Za-z0-9.-]+?)_+(ENS[A-Z]*G\d{11}(?:\.\d+)?)$")


def genome_prefixes(ids: np.ndarray) -> np.ndarray | None:
    """Each gene's genome, from the prefixes of a multi-genome ("barnyard") reference.

    CellRanger prefixes the ids and names of such a reference with their genome
    (``GRCh38_ENSG00000198888``, ``mm10___ENSMUSG00000064341``); its ``.h5`` also says so
    in ``features/genome``, its ``features.tsv.gz`` does not.

    Parameters
    ----------
    ids
        The gene ids.

    Returns
    -------
    The genome of each gene when every id carries a prefix and there are at least two;
    else ``None``.
    """
    found = [_PREFIXED_ID.match(i) for i in ids]
    if not found or not all(found):
        return None
    genomes = np.array([m.group(1) for m in found if m is not None])
    return genomes if len(set(genomes)) > 1 else None


def assemble(
    raw: RawCounts,
    path: str | PathLike[str],
    *,
    var_names: VarNames = "gene_symbols",
    other_features: OtherFeatures = "drop",
) -> ad.AnnData:
    """AnnData of the Gene Expression features of ``raw``, named by symbols or ids.

    The one assembly path of every reader (:func:`scingest.readers.read_counts` checks
    the options first).

    Parameters
    ----------
    raw
        The counts and names as a reader returned them.
    path
        The input, named in errors and in the log.
    var_names
        ``gene_symbols``: symbols as ``var_names``, ids in ``var["gene_ids"]``;
        ``gene_ids``: ids as ``var_names``, symbols in ``var["gene_symbols"]``.
    other_features
        Features that are not Gene Expression: ``drop`` leaves them out (counted in the
        log); ``obsm`` keeps each type as a CSR matrix in ``obsm[<type>_counts]`` with its
        names in ``uns["feature_names"][<type>_counts]``.

    Returns
    -------
    AnnData with ``X`` the Gene Expression counts (CSR, cells x genes), the barcodes as
    ``obs_names``, ``raw.obs``'s columns in ``obs``, and ``var["feature_types"]`` and
    ``raw.var``'s columns where present;
    ``var["genome"]`` for genes of several genomes (:func:`genome_prefixes`).

    Raises
    ------
    ScingestError
        For ``var_names="gene_ids"`` on an input without ids, and for an input with
        feature types of which none is Gene Expression.
    """
    import pandas as pd

    if var_names == "gene_ids" and raw.ids is None:
        raise ScingestError(
            "var_names is gene_ids but this input has gene names only: expected a features "
            "or genes file with an id column (or, in a text matrix, a gene id column before "
            "the names), or set var_names: gene_symbols",
            path=path,
        )
    keep = np.ones(len(raw.symbols), dtype=bool)
    obsm: dict[str, sp.csr_matrix] = {}
    names: dict[str, list[str]] = {}
    if raw.feature_types is not None:
        types = np.asarray(raw.feature_types, dtype=str)
        keep = types == GENE_EXPRESSION
        if not keep.any():
            found = ", ".join(sorted(set(types)))
            raise ScingestError(
                f"no {GENE_EXPRESSION} features (feature types here: {found}): expected a "
                "gene expression matrix",
                path=path,
            )
        for feature_type in sorted(set(types) - {GENE_EXPRESSION}):
            mask = types == feature_type
            if other_features == "drop":
                logger.info(
                    "%s: left out %d %s feature(s) (set other_features: obsm to keep them)",
                    path,
                    int(mask.sum()),
                    feature_type,
                )
                continue
            key = obsm_key(feature_type)
            obsm[key] = raw.counts[:, np.flatnonzero(mask)].tocsr()
            names[key] = [str(s) for s in raw.symbols[mask]]
            logger.info(
                "%s: kept %d %s feature(s) in obsm[%r]", path, mask.sum(), feature_type, key
            )
    idx = slice(None) if keep.all() else np.flatnonzero(keep)
    counts = raw.counts if keep.all() else raw.counts[:, idx].tocsr()
    symbols = np.asarray(raw.symbols, dtype=str)[idx]
    var = pd.DataFrame(index=pd.RangeIndex(len(symbols)))
    if raw.ids is not None:
        ids = np.asarray(raw.ids, dtype=str)[idx]
        if var_names == "gene_ids":
            index, var["gene_symbols"] = ids, symbols
        else:
            index, var["gene_ids"] = symbols, ids
    else:
        index = symbols
    if raw.feature_types is not None:
        var["feature_types"] = np.asarray(raw.feature_types, dtype=str)[idx]
    for column, values in raw.var.items():
        var[column] = np.asarray(values)[idx]
    if GENOME not in var.columns and raw.ids is not None:
        genomes = genome_prefixes(np.asarray(raw.ids, dtype=str)[idx])
        if genomes is not None:
            var[GENOME] = genomes
    adata = _anndata(counts, np.asarray(raw.barcodes, dtype=str), index, var=var)
    for column, values in raw.obs.items():
        adata.obs[column] = np.asarray(values) if isinstance(values, list) else values
    for key, matrix in obsm.items():
        adata.obsm[key] = matrix
    if names:
        adata.uns["feature_names"] = names
    return adata


def _anndata(
    counts: sp.csr_matrix, barcodes: np.ndarray, genes: np.ndarray, *, var: pd.DataFrame
) -> ad.AnnData:
    """AnnData from counts and names, before names are checked or made unique.

    anndata warns about duplicate names at construction; :func:`scingest.readers.read_counts`
    deals with them right after (unique barcodes required, duplicate genes made unique
    with a logged warning), so the constructor's warning would only repeat it.
    """
    import anndata as ad
    import pandas as pd

    var.index = pd.Index(genes, dtype=str)
    obs = pd.DataFrame(index=pd.Index(barcodes, dtype=str))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* names are not unique", category=UserWarning)
        return ad.AnnData(X=counts, obs=obs, var=var)
