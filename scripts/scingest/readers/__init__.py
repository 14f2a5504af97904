"""Readers: any supported count file -> AnnData with CSR counts, cells x genes.

:func:`read_counts` is the one entry point; it picks a reader by ``format`` (or detects the
format from the path) and returns raw counts with barcodes as ``obs_names`` and gene names
as ``var_names``.
"""

from __future__ import annotations

import importlib
import logging
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal

import scipy.sparse as sp

from ..errors import ScingestError
from ..files import check_not_empty
from ..formats import FORMATS, detect_format, input_files
from ..layouts import LAYOUT_FORMATS
from .dense import read_dense

if TYPE_CHECKING:
    import anndata as ad

    from ._features import OtherFeatures, VarNames

# Importing this package imports neither anndata nor the readers of the other formats
# (anndata and pandas take 0.6 s): a dense matrix is parsed while anndata loads in the
# background (see scingest.readers.dense), and the rest load when first used.
_LAZY = {
    "read_h5ad_counts": ".h5ad",
    "read_mtx": ".mtx",
    "read_tenx_h5": ".h5",
    "read_tenx_mtx": ".mtx",
    "read_tenx_triplet": ".mtx",
}

logger = logging.getLogger(__name__)

Orientation = Literal["genes_x_cells", "cells_x_genes"]

__all__ = [
    "FORMATS",
    "detect_format",
    "input_files",
    "make_names_unique",
    "read_counts",
    "read_dense",
    "read_h5ad_counts",
    "read_mtx",
    "read_tenx_h5",
    "read_tenx_mtx",
    "read_tenx_triplet",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_counts(
    path: str | PathLike[str],
    format: str | None = None,
    *,
    orientation: Orientation = "genes_x_cells",
    dtype: Literal["float32", "int32"] = "float32",
    allow_non_integer: bool = False,
    make_unique: bool = True,
    genome: str | None = None,
    var_names: VarNames = "gene_symbols",
    other_features: OtherFeatures = "drop",
    h5ad_layer: str | None = None,
    threads: int | None = None,
    loom_layers: Literal["keep", "drop"] = "drop",
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
        header barcodes) or ``cells_x_genes``; for ``mtx``, whether its rows are genes or
        cells.
    dtype
        dtype of the returned counts. float32 is exact for counts below 2**24.
    allow_non_integer
        Accept non-integer counts (logged as a warning) instead of raising.
    make_unique
        Make duplicate gene names unique (``name``, ``name-1``, ...), logging how many.
    genome
        For ``10x_h5`` and ``10x_mtx``: the genome to read when the input has several
        (an error lists them when this is None).
    var_names
        ``gene_symbols``: symbols as ``var_names`` and ids in ``var["gene_ids"]``;
        ``gene_ids``: ids as ``var_names`` and symbols in ``var["gene_symbols"]``.
    other_features
        Features that are not Gene Expression (Antibody Capture, CRISPR Guide Capture,
        Custom): ``drop`` leaves them out (counted in the log); ``obsm`` keeps each type as
        a CSR matrix in ``obsm["<type>_counts"]`` (``protein_counts`` for antibodies) with
        its feature names in ``uns["feature_names"]``.
    h5ad_layer
        For ``h5ad`` and ``zarr``: the layer holding raw counts; None reads ``X``.
    threads
        CPUs the read may keep busy (the dense text reader's helper threads); ``1``: the
        calling thread only; ``None``: as many helpers as help.
    loom_layers
        For ``loom``: ``keep`` keeps its other layers (velocyto's ``spliced``,
        ``unspliced``, ``ambiguous``) in ``layers``; ``drop`` (default) leaves them out.

    Returns
    -------
    AnnData with ``X`` a CSR matrix (cells x genes), ``obs_names`` the barcodes,
    ``var_names`` the gene names (or ids), ``var["gene_ids"]`` (or ``var["gene_symbols"]``)
    and ``var["feature_types"]`` where the input has them.
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
    if var_names not in ("gene_symbols", "gene_ids"):
        raise ScingestError(f"var_names must be gene_symbols or gene_ids, not {var_names!r}")
    if other_features not in ("drop", "obsm"):
        raise ScingestError(f"other_features must be drop or obsm, not {other_features!r}")
    if loom_layers not in ("keep", "drop"):
        raise ScingestError(f"loom_layers must be keep or drop, not {loom_layers!r}")
    check_not_empty(input_files(path, format, genome=genome))
    if format in ("csv", "tsv"):
        adata = read_dense(
            path,
            sep="," if format == "csv" else "\t",
            orientation=orientation,
            dtype=dtype,
            allow_non_integer=allow_non_integer,
            threads=threads,
        )
        if var_names == "gene_ids":
            raise ScingestError(
                "var_names is gene_ids but a dense text matrix has gene names only: set "
                "var_names: gene_symbols",
                path=path,
            )
    else:
        from ._features import assemble
        from .h5 import read_tenx_h5
        from .h5ad import read_h5ad_counts
        from .mtx import read_mtx, read_tenx_mtx, read_tenx_triplet

        counts = {"dtype": dtype, "allow_non_integer": allow_non_integer}
        layers: dict[str, sp.csr_matrix] = {}
        if format in LAYOUT_FORMATS:
            from .layouts import read_layout

            raw, layers = read_layout(
                path,
                format,
                genome=genome,
                h5ad_layer=h5ad_layer,
                loom_layers=loom_layers,
                **counts,
            )
        elif format == "10x_mtx":
            raw = read_tenx_mtx(path, genome=genome, **counts)
        elif format == "10x_triplet":
            raw = read_tenx_triplet(path, **counts)
        elif format == "mtx":
            raw = read_mtx(path, orientation=orientation, **counts)
        elif format == "10x_h5":
            raw = read_tenx_h5(path, genome=genome, **counts)
        elif format == "h5ad":
            raw = read_h5ad_counts(path, layer=h5ad_layer, **counts)
        else:  # pragma: no cover - FORMATS and this dispatch are kept in step
            raise AssertionError(format)
        adata = assemble(raw, path, var_names=var_names, other_features=other_features)
        for key, matrix in layers.items():
            adata.layers[key] = matrix
    check_unique_barcodes(adata, path)
    if make_unique:
        make_names_unique(adata, path)
    if not sp.issparse(adata.X) or adata.X.format != "csr":
        adata.X = sp.csr_matrix(adata.X)
    return adata


def check_unique_barcodes(adata: ad.AnnData, path: str | PathLike[str]) -> None:
    """Raise when one barcode names two cells: the cells cannot be told apart downstream."""
    import pandas as pd

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
    import anndata as ad
    import pandas as pd

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
