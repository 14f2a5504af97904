"""AnnData zarr stores (a ``.zarr`` folder or a ``.zarr.zip``): counts from X or a layer.

Read with ``anndata.read_zarr`` (a zip through zarr's ``ZipStore``); as for h5ad, only the
counts, barcodes and gene names, ids and feature types are taken.
"""

from __future__ import annotations

import logging
import warnings
from os import PathLike
from pathlib import Path

import numpy as np

from ..compat import named_layers
from ..errors import ScingestError
from ._features import RawCounts, check_counts

logger = logging.getLogger(__name__)


def read_zarr_counts(
    path: str | PathLike[str],
    *,
    layer: str | None = None,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """Read the counts of a zarr AnnData store from ``X`` or ``layers[layer]``."""
    import anndata as ad
    import zarr

    path = Path(path)
    store = None
    try:
        if path.is_file():
            store = zarr.storage.ZipStore(path, mode="r")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".* names are not unique")
            # stores of older anndata (legacy encodings) read fine; only X, names are taken
            warnings.filterwarnings("ignore", category=ad.OldFormatWarning)
            adata = ad.read_zarr(store if store is not None else path)
    except Exception as err:  # zarr and zipfile raise many types for a bad store
        raise ScingestError(
            f"cannot read as an AnnData zarr store ({type(err).__name__}: {err}): expected a "
            ".zarr folder or .zarr.zip written by anndata",
            path=path,
        ) from None
    finally:
        if store is not None:
            store.close()
    layers = named_layers(adata)  # anndata 0.13 also lists X as layers[None]
    if layer is None:
        matrix, where = adata.X, "X"
    elif layer in layers:
        matrix, where = layers[layer], f"layers[{layer!r}]"
    else:
        raise ScingestError(
            f"no layer {layer!r} (layers here: {', '.join(layers) or 'none'}): expected "
            "h5ad_layer to name one, or to be null for X",
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
            matrix if hasattr(matrix, "tocsr") else np.asarray(matrix),
            path,
            dtype=dtype,
            allow_non_integer=allow_non_integer,
        ),
        barcodes=adata.obs_names.to_numpy(dtype=str),
        symbols=symbols,
        ids=ids,
        feature_types=types,
    )
