"""AnnData input (``.h5ad``): raw counts from ``X`` or a named layer.

Only the counts, the barcodes (``obs_names``) and the gene names, ids and feature types
are taken; the file's other obs and var columns (earlier QC, embeddings) are left behind,
so the checkpoint is built from the counts exactly as for any other format.
"""

from __future__ import annotations

import logging
import warnings
from os import PathLike
from pathlib import Path

import anndata as ad
import numpy as np

from ..compat import named_layers
from ..errors import ScingestError
from ._features import RawCounts, check_counts

logger = logging.getLogger(__name__)


def read_h5ad_counts(
    path: str | PathLike[str],
    *,
    layer: str | None = None,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """Read the counts of an h5ad file from ``X`` (``layer=None``) or ``layers[layer]``.

    Gene ids come from ``var["gene_ids"]`` (var_names are symbols) or, when the file has a
    ``var["gene_symbols"]`` column, from ``var_names``; ``var["feature_types"]`` is kept.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".* names are not unique")
            adata = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        raise ScingestError(
            f"cannot read as h5ad ({err}): expected an AnnData .h5ad file", path=path
        ) from None
    if layer is None:
        matrix = adata.X
        where = "X"
    elif layer in (layers := named_layers(adata)):
        matrix = layers[layer]
        where = f"layers[{layer!r}]"
    else:
        found = ", ".join(layers) or "none"
        raise ScingestError(
            f"no layer {layer!r} (layers here: {found}): expected h5ad_layer to name one, or "
            "to be null for X",
            path=path,
        )
    if matrix is None:
        raise ScingestError(f"{where} is empty: expected the counts there", path=path)
    logger.info("%s: counts from %s", path, where)
    var = adata.var
    names = adata.var_names.to_numpy(dtype=str)
    if "gene_symbols" in var.columns:
        symbols, ids = var["gene_symbols"].to_numpy(dtype=str), names
    else:
        symbols = names
        ids = var["gene_ids"].to_numpy(dtype=str) if "gene_ids" in var.columns else None
    types = var["feature_types"].to_numpy(dtype=str) if "feature_types" in var.columns else None
    return RawCounts(
        counts=check_counts(
            np.asarray(matrix) if not hasattr(matrix, "tocsr") else matrix,
            path,
            dtype=dtype,
            allow_non_integer=allow_non_integer,
        ),
        barcodes=adata.obs_names.to_numpy(dtype=str),
        symbols=symbols,
        ids=ids,
        feature_types=types,
    )
