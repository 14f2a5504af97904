"""Readers: any supported count file -> AnnData with CSR counts, cells x genes.

:func:`read_counts` is the one entry point; it picks a reader by ``format`` (or detects the
format from the path) and returns raw counts with barcodes as ``obs_names`` and gene names
as ``var_names``.
"""

from __future__ import annotations

import logging
from os import PathLike
from typing import Literal

import anndata as ad
import pandas as pd
import scipy.sparse as sp

from ..errors import ScingestError
from ..formats import FORMATS, detect_format
from .dense import read_dense

logger = logging.getLogger(__name__)

Orientation = Literal["genes_x_cells", "cells_x_genes"]

__all__ = ["FORMATS", "detect_format", "make_names_unique", "read_counts", "read_dense"]


def read_counts(
    path: str | PathLike[str],
    format: str | None = None,
    *,
    orientation: Orientation = "genes_x_cells",
    dtype: Literal["float32", "int32"] = "float32",
    allow_non_integer: bool = False,
    make_unique: bool = True,
) -> ad.AnnData:
    """Read one sample's count matrix.

    Parameters
    ----------
    path
        The count file (or folder, for formats that are folders).
    format
        One of :data:`scingest.formats.FORMATS`; ``None`` or ``"auto"`` detects it from the path.
    orientation
        For dense text matrices: ``genes_x_cells`` (GEO convention: first column gene names,
        header barcodes) or ``cells_x_genes``.
    dtype
        dtype of the returned counts. float32 is exact for counts below 2**24.
    allow_non_integer
        Accept non-integer counts (logged as a warning) instead of raising.
    make_unique
        Make duplicate gene names unique (``name``, ``name-1``, ...), logging how many.

    Returns
    -------
    AnnData with ``X`` a CSR matrix (cells x genes), ``obs_names`` the barcodes,
    ``var_names`` the gene names, and ``var["gene_ids"]`` where the input has gene ids.
    """
    if format in (None, "auto"):
        format = detect_format(path)
    if format not in FORMATS:
        raise ScingestError(
            f"unknown format {format!r}: expected one of auto, {', '.join(FORMATS)}", path=path
        )
    if dtype not in ("float32", "int32"):
        raise ScingestError(f"dtype must be float32 or int32, not {dtype!r}")
    if allow_non_integer and dtype == "int32":
        raise ScingestError("allow_non_integer needs dtype float32: int32 cannot hold fractions")
    if format in ("csv", "tsv"):
        adata = read_dense(
            path,
            sep="," if format == "csv" else "\t",
            orientation=orientation,
            dtype=dtype,
            allow_non_integer=allow_non_integer,
        )
    else:  # pragma: no cover - FORMATS and this dispatch are kept in step
        raise AssertionError(format)
    check_unique_barcodes(adata, path)
    if make_unique:
        make_names_unique(adata, path)
    if not sp.issparse(adata.X) or adata.X.format != "csr":
        adata.X = sp.csr_matrix(adata.X)
    return adata


def check_unique_barcodes(adata: ad.AnnData, path: str | PathLike[str]) -> None:
    """Raise when one barcode names two cells: the cells cannot be told apart downstream."""
    names = pd.Index(adata.obs_names)
    if names.is_unique:
        return
    dups = names[names.duplicated()].unique()
    shown = ", ".join(map(str, dups[:5])) + (" ..." if len(dups) > 5 else "")
    raise ScingestError(
        f"{len(dups)} barcode(s) occur more than once: {shown}. Expected one column (or row) "
        "per cell with a unique barcode",
        path=path,
    )


def make_names_unique(adata: ad.AnnData, path: str | PathLike[str]) -> None:
    """Make duplicate gene names unique in place, keeping the genes distinct (never summed)."""
    names = pd.Index(adata.var_names)
    if names.is_unique:
        return
    dups = names[names.duplicated()].unique()
    logger.warning(
        "%s: %d gene name(s) occur more than once (e.g. %s); kept as distinct genes with "
        "suffixes -1, -2, ...",
        path,
        len(dups),
        ", ".join(map(str, dups[:5])),
    )
    adata.var_names = ad.utils.make_index_unique(names)
