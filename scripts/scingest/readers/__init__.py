"""Readers: any supported count file -> AnnData with CSR counts, cells x genes.

:func:`read_counts` is the one entry point: it checks every option once
(:class:`~scingest.options.ReaderOptions`), reads with the reader of ``format`` (or of the
format detected from the path; :func:`scingest.formats.read_raw`) and returns raw counts
with barcodes as ``obs_names`` and gene names as ``var_names``. Every format's reader
(:mod:`scingest.formats`) returns the same intermediate,
:class:`~scingest.readers._features.RawCounts`; here the cells of a raw matrix are called
(:func:`~scingest.readers._features.keep_called_cells`) and
:func:`~scingest.readers._features.assemble` makes the AnnData of all of them.

This package also holds the reading machinery several formats share: the dense text parser
(:mod:`.dense`, :mod:`._fastdense`), the Matrix Market helpers (:mod:`.matrix_market`),
the orientation rules (:mod:`._orientation`) and :mod:`._features`.
"""

from __future__ import annotations

import importlib
import logging
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ScingestError
from ..formats import FORMATS, detect_format, input_files, read_raw
from ..options import (
    Barcodes,
    Dtype,
    LoomLayers,
    Orientation,
    OtherFeatures,
    ReaderOptions,
    VarNames,
)
from ._features import assemble, keep_called_cells
from .dense import read_dense

if TYPE_CHECKING:
    import anndata as ad

# Importing this package imports neither anndata nor the readers of the other formats
# (anndata and pandas take a noticeable part of a fresh process's read: bench/run.py
# reader): a dense matrix is parsed while anndata loads in the background (see
# scingest.readers.dense), and the rest load when first used.
_LAZY = {
    "read_h5ad_counts": "scingest.formats.h5ad",
    "read_mtx": "scingest.formats.mtx",
    "read_tenx_h5": "scingest.formats.h5",
    "read_tenx_mtx": "scingest.formats.tenx",
    "read_tenx_triplet": "scingest.formats.tenx",
}

logger = logging.getLogger(__name__)

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
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_counts(
    path: str | PathLike[str],
    format: str | None = None,
    *,
    orientation: Orientation = "auto",
    dtype: Dtype = "float32",
    allow_non_integer: bool = False,
    make_unique: bool = True,
    genome: str | None = None,
    var_names: VarNames = "gene_symbols",
    other_features: OtherFeatures = "drop",
    h5ad_layer: str | None = None,
    threads: int | None = None,
    loom_layers: LoomLayers = "drop",
    barcodes: Barcodes = "cells",
) -> ad.AnnData:
    """Read one sample's count matrix.

    Parameters
    ----------
    path
        The count file (or folder, for formats that are folders).
    format
        One of :data:`scingest.formats.FORMATS`; ``None`` or ``"auto"`` detects it from the path.
    orientation, dtype, allow_non_integer, make_unique, genome, var_names, other_features
        The fields of :class:`scingest.options.ReaderOptions`, which says what each does.
    h5ad_layer, threads, loom_layers, barcodes
        The fields of :class:`scingest.options.ReaderOptions`, which says what each does.

    Returns
    -------
    AnnData with ``X`` a CSR matrix (cells x genes), ``obs_names`` the barcodes (of a raw
    matrix, its called cells unless ``barcodes`` says otherwise), ``var_names`` the gene
    names (or ids), ``var["gene_ids"]`` (or ``var["gene_symbols"]``) and
    ``var["feature_types"]`` where the input has them; ``uns["cell_calls"]``: what was
    decided about the barcodes (:class:`~scingest.readers._features.CellSelection`'s info,
    and ``is_cell`` with ``barcodes="all"``).
    """
    # the keywords above are ReaderOptions' fields (tests/unit/test_options.py checks it)
    options = ReaderOptions(**{k: v for k, v in locals().items() if k in ReaderOptions.names()})
    if format in (None, "auto"):
        format = detect_format(path)
    read = read_raw(path, format, options)
    raw, layers = read.counts, read.layers
    named_raw = read.raw if barcodes != "as_cells" else None
    if named_raw is not None and named_raw.sibling is not None and raw.called_cells is None:
        raw.called_cells = sibling_calls(raw.barcodes, named_raw.sibling, path=path)
        raw.calls_source = (
            f"the tool's own calls: the barcodes of its filtered matrix {named_raw.sibling}"
        )
    raw, selection = keep_called_cells(
        raw, path, barcodes=barcodes, raw_reason=None if named_raw is None else named_raw.reason
    )
    if layers:  # layers follow the barcodes kept
        layers = {key: matrix[selection.rows].tocsr() for key, matrix in layers.items()}
    adata = assemble(raw, path, var_names=var_names, other_features=other_features)
    for key, matrix in layers.items():
        adata.layers[key] = matrix
    adata.uns["cell_calls"] = dict(selection.info)
    if selection.is_cell is not None:
        adata.uns["cell_calls"]["is_cell"] = selection.is_cell
    check_parsed(adata, path)
    check_unique_barcodes(adata, path)
    if make_unique:
        make_names_unique(adata, path)
    return adata


def sibling_calls(barcodes: np.ndarray, sibling: Path, *, path: str | PathLike[str]) -> np.ndarray:
    """Which of a raw matrix's ``barcodes`` its tool called cells: those of the filtered
    matrix beside it.

    Parameters
    ----------
    barcodes
        The raw matrix's barcodes.
    sibling
        The filtered matrix's barcodes file (10x ``barcodes.tsv[.gz]``, kb's
        ``cells_x_genes.barcodes.txt``) or its ``.h5``.
    path
        The raw input, named in the error.

    Returns
    -------
    One boolean per barcode.

    Raises
    ------
    ScingestError
        When the filtered matrix holds barcodes the raw one does not (not its sibling).
    """
    import numpy as np

    if sibling.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        with h5py.File(sibling, "r") as fh:
            groups = ["matrix"] if "matrix" in fh else [k for k in fh if "barcodes" in fh[k]]
            found = [b for g in groups for b in fh[g]["barcodes"][()]]
        cells = {b.decode() if isinstance(b, bytes) else str(b) for b in found}
    else:
        from ..files import open_binary

        with open_binary(sibling) as fh:
            cells = {line.split(b"\t")[0].strip().decode() for line in fh if line.strip()}
    called = np.isin(np.asarray(barcodes, dtype=str), list(cells))
    missing = len(cells) - int(called.sum())
    if missing:
        raise ScingestError(
            f"{missing} of the {len(cells)} barcodes of the filtered matrix beside it "
            f"({sibling}) are not in this raw matrix: expected the filtered matrix of the same "
            "run (its cells are a subset of the raw barcodes); set barcodes: as_cells to take "
            "every barcode as a cell",
            path=path,
        )
    logger.info(
        "%s: the tool's own cell calls: the %d barcodes of its filtered matrix %s",
        path,
        len(cells),
        sibling,
    )
    return called


def check_parsed(adata: ad.AnnData, path: str | PathLike[str]) -> None:
    """Refuse a result with no cells or no genes: never hand on a matrix that was not parsed
    (a separator that was not found makes whole lines into names and leaves no values).

    Parameters
    ----------
    adata
        The assembled result.
    path
        The input, named in the error.

    Raises
    ------
    ScingestError
        When ``adata`` has no cells or no genes, showing a name that was read.
    """
    if adata.n_obs and adata.n_vars:
        return
    if adata.n_obs == 0 and adata.n_vars and not _is_text(path):
        raise ScingestError(
            f"the file holds no cells (0 cells x {adata.n_vars} genes): expected at least one "
            "cell; leave this sample out",
            path=path,
        )
    example = ""
    names = adata.var_names if adata.n_vars else adata.obs_names
    if len(names):
        example = f" (the names read, e.g. {str(names[0])[:60]!r}, may be whole lines)"
    raise ScingestError(
        f"read {adata.n_obs} cells x {adata.n_vars} genes{example}: expected a matrix with "
        "at least one cell and one gene; check the format (and, for text, its separator)",
        path=path,
    )


def _is_text(path: str | PathLike[str]) -> bool:
    """Whether a path names dense text (where no cells may mean a separator not found)."""
    from pathlib import Path

    name = Path(path).name.lower().removesuffix(".gz")
    return name.endswith((".csv", ".tsv", ".txt", ".tab"))


def check_unique_barcodes(adata: ad.AnnData, path: str | PathLike[str]) -> None:
    """Raise when one barcode names two cells: the cells cannot be told apart downstream.

    Parameters
    ----------
    adata
        The assembled result.
    path
        The input, named in the error.

    Raises
    ------
    ScingestError
        Naming up to five of the repeated barcodes.
    """
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
    """Make duplicate gene names unique in place, keeping the genes distinct (never summed).

    Parameters
    ----------
    adata
        The assembled result; its ``var_names`` get suffixes ``-1``, ``-2``, ...
    path
        The input, named in the logged warning.
    """
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
