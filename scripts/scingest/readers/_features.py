"""What the sparse readers share: count checks, feature types, gene ids and symbols.

Each sparse reader returns a :class:`RawCounts`; :func:`assemble` turns it into AnnData the
same way for every format, so the same cells give the same checkpoint whatever the file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from os import PathLike
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import ScingestError
from ._common import build_anndata

logger = logging.getLogger(__name__)

VarNames = Literal["gene_symbols", "gene_ids"]
OtherFeatures = Literal["drop", "obsm"]

GENE_EXPRESSION = "Gene Expression"
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

    ``counts`` is cells x features; ``ids`` and ``feature_types`` are None when the input
    has none; ``var`` holds further per-feature columns to keep (e.g. ``genome``).
    """

    counts: sp.csr_matrix
    barcodes: np.ndarray
    symbols: np.ndarray
    ids: np.ndarray | None = None
    feature_types: np.ndarray | None = None
    var: dict[str, np.ndarray] = field(default_factory=dict)


def check_counts(
    matrix: sp.spmatrix | np.ndarray,
    path: str | PathLike[str],
    *,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> sp.csr_matrix:
    """The counts as CSR of ``dtype``; raise on negative, non-finite or non-integer values."""
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
            logger.warning(
                "%s: %d non-integer value(s) accepted (allow_non_integer is set)", path, fractional
            )
    elif values.dtype.kind not in "iub":
        raise ScingestError(f"the matrix has {values.dtype} values: expected counts", path=path)
    if values.size and values.min() < 0:
        raise ScingestError(
            f"negative value {values.min()}: expected non-negative counts", path=path
        )
    if values.size and dtype == "float32" and values.max() >= FLOAT32_EXACT:
        logger.warning(
            "%s: counts up to %s exceed 2**24, which float32 cannot hold exactly; "
            "consider dtype: int32",
            path,
            values.max(),
        )
    counts = counts.astype(dtype, copy=False)
    counts.sum_duplicates()
    return counts


def obsm_key(feature_type: str) -> str:
    """The obsm key a feature type is kept under (``Antibody Capture`` -> ``protein_counts``)."""
    if feature_type in OBSM_KEYS:
        return OBSM_KEYS[feature_type]
    return re.sub(r"[^a-z0-9]+", "_", feature_type.lower()).strip("_") + "_counts"


def assemble(
    raw: RawCounts,
    path: str | PathLike[str],
    *,
    var_names: VarNames = "gene_symbols",
    other_features: OtherFeatures = "drop",
) -> ad.AnnData:
    """AnnData of the Gene Expression features of ``raw``, named by symbols or ids.

    Features of other types are left out (counted in the log) or, with
    ``other_features="obsm"``, kept as CSR matrices in ``obsm[<type>_counts]`` with their
    names in ``uns["feature_names"][<type>_counts]``. With ``var_names="gene_symbols"``
    ``var["gene_ids"]`` keeps the ids; with ``"gene_ids"`` ``var["gene_symbols"]`` keeps
    the symbols.
    """
    if var_names not in ("gene_symbols", "gene_ids"):
        raise ScingestError(f"var_names must be gene_symbols or gene_ids, not {var_names!r}")
    if other_features not in ("drop", "obsm"):
        raise ScingestError(f"other_features must be drop or obsm, not {other_features!r}")
    if var_names == "gene_ids" and raw.ids is None:
        raise ScingestError(
            "var_names is gene_ids but this input has gene names only: expected a features "
            "or genes file with an id column, or set var_names: gene_symbols",
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
    idx = np.flatnonzero(keep)
    counts = raw.counts if keep.all() else raw.counts[:, idx].tocsr()
    symbols = np.asarray(raw.symbols, dtype=str)[idx]
    var = pd.DataFrame(index=pd.RangeIndex(len(idx)))
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
    adata = build_anndata(counts, np.asarray(raw.barcodes, dtype=str), index, var=var)
    for key, matrix in obsm.items():
        adata.obsm[key] = matrix
    if names:
        adata.uns["feature_names"] = names
    return adata
