"""AnnData zarr stores (``zarr``: a ``.zarr`` folder or a ``.zarr.zip``): counts from X or a layer.

Read with ``anndata.read_zarr`` (a zip through zarr's ``ZipStore``); the counts, barcodes
and gene names, ids and feature types are then taken as for h5ad (one code path:
:func:`scingest.formats.h5ad.counts_of`).
"""

from __future__ import annotations

import logging
import warnings
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScingestError
from ._format import Fit, Format, reads, store_files
from .h5ad import counts_of

if TYPE_CHECKING:
    from ..readers._features import RawCounts

logger = logging.getLogger(__name__)


def read_zarr_counts(
    path: str | PathLike[str],
    *,
    layer: str | None = None,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """Read the counts of a zarr AnnData store from ``X`` or ``layers[layer]``, as
    :func:`scingest.formats.h5ad.read_h5ad_counts` reads an h5ad file.

    Parameters
    ----------
    path
        A ``.zarr`` folder or a ``.zarr.zip`` file.
    layer, dtype, allow_non_integer
        As :func:`scingest.formats.h5ad.read_h5ad_counts`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        For a store anndata cannot read, and as :func:`~scingest.formats.h5ad.counts_of`.
    """
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
    return counts_of(adata, path, layer=layer, dtype=dtype, allow_non_integer=allow_non_integer)


def _detect(path: Path) -> Fit:
    name = path.name.lower()
    if path.is_file():
        return Fit.FILES if name.endswith(".zarr.zip") else Fit.NONE
    metadata = (path / ".zattrs").is_file() or (path / "zarr.json").is_file()
    is_store = path.is_dir() and (name.endswith(".zarr") or (metadata and (path / "obs").is_dir()))
    return Fit.FILES if is_store else Fit.NONE


FORMATS = (
    Format(
        "zarr",
        "AnnData zarr store (.zarr folder or .zarr.zip): counts from X or a named layer",
        detect=_detect,
        resolve=store_files,
        read=reads(read_zarr_counts, layer="h5ad_layer"),
        options=frozenset({"h5ad_layer"}),
    ),
)
