"""AnnData input (``h5ad``): raw counts from ``X`` or a named layer.

The counts, the barcodes (``obs_names``), the gene names, ids and feature types, and the
file's ``obs`` columns (a collaborator's cell types, donors, earlier QC: kept in the
checkpoint, renamed where they would take a name scingest writes) are taken; its other
``var`` columns, embeddings and graphs are left behind, so the checkpoint's QC is computed
from the counts exactly as for any other format. :func:`counts_of` is shared with the
formats whose files hold an AnnData (``zarr``, alevin-fry's ``quants.h5ad``).
"""

from __future__ import annotations

import logging
import warnings
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScingestError
from ._format import Fit, Format, one_file, reads

if TYPE_CHECKING:
    import anndata as ad
    import numpy as np

    from ..readers._features import RawCounts

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

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        The layer holding raw counts; None reads ``X``, ``"raw"`` (with no layer of that
        name) reads ``.raw``.
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        For a file anndata cannot read, a missing layer, and non-integer counts (naming
        a layer that holds integer counts, if one does).
    """
    import anndata as ad

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".* names are not unique")
            # files of anndata <= 0.7 (legacy encodings) read fine; only X, names are taken
            warnings.filterwarnings("ignore", category=ad.OldFormatWarning)
            adata = ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as err:
        raise ScingestError(
            f"cannot read as h5ad ({err}): expected an AnnData .h5ad file", path=path
        ) from None
    return counts_of(adata, path, layer=layer, dtype=dtype, allow_non_integer=allow_non_integer)


def counts_of(
    adata: ad.AnnData,
    path: Path,
    *,
    layer: str | None = None,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """The counts of an AnnData read from ``path`` (h5ad or zarr), as :func:`read_h5ad_counts`
    describes: from ``X``, ``layers[layer]`` or (``layer="raw"``) ``.raw``, with the gene
    names, ids and feature types of its ``var``.

    Parameters
    ----------
    adata
        The AnnData as read.
    path
        The file it was read from, named in errors.
    layer, dtype, allow_non_integer
        As for :func:`read_h5ad_counts`.

    Returns
    -------
    The counts, barcodes and gene names, unassembled.

    Raises
    ------
    ScingestError
        As :func:`read_h5ad_counts`.
    """
    import numpy as np

    from ..compat import named_layers
    from ..readers._features import RawCounts, check_counts

    var = adata.var
    if layer is None:
        matrix = adata.X
        where = "X"
    elif layer in (layers := named_layers(adata)):
        matrix = layers[layer]
        where = f"layers[{layer!r}]"
    elif layer == "raw" and adata.raw is not None:
        matrix, var = adata.raw.X, adata.raw.var
        where = ".raw.X"
    else:
        found = ", ".join([*layers, *(["raw (.raw)"] if adata.raw is not None else [])])
        raise ScingestError(
            f"no layer {layer!r} (layers here: {found or 'none'}): expected h5ad_layer to "
            "name one, or to be null for X",
            path=path,
        )
    if matrix is None:
        raise ScingestError(f"{where} is empty: expected the counts there", path=path)
    if not allow_non_integer and _fractions(matrix):
        _refuse_normalised(adata, path, where, matrix)
    logger.info("%s: counts from %s", path, where)
    names = var.index.to_numpy(dtype=str)
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
        obs={str(c): adata.obs[c].array for c in adata.obs.columns},
    )


#: Layer names that hold raw counts by convention, in order of preference.
RAW_LAYERS = ("counts", "raw_counts", "raw", "umi_counts", "count")


def _values(matrix: object) -> np.ndarray:
    import numpy as np

    return np.asarray(matrix.data if hasattr(matrix, "tocsr") else matrix).ravel()


def _fractions(matrix: object) -> int:
    """How many values of ``matrix`` are not whole numbers (0 for integer dtypes)."""
    import numpy as np

    values = _values(matrix)
    if values.dtype.kind != "f":
        return 0
    finite = values[np.isfinite(values)]
    return int(np.count_nonzero(finite != np.round(finite)))


def _refuse_normalised(adata: ad.AnnData, path: Path, where: str, matrix: object) -> None:
    """Raise for non-integer counts, naming a layer (or ``.raw``) that holds integer counts."""
    import numpy as np

    from ..compat import named_layers

    values = _values(matrix)
    example = values[np.isfinite(values) & (values != np.round(values))]
    shown = f" (e.g. {example[0]:g})" if example.size else ""
    layers = named_layers(adata)
    candidates = [
        (name, layers[name])
        for name in sorted(layers, key=lambda n: (n.lower() not in RAW_LAYERS, n))
        if name.lower() in RAW_LAYERS or "count" in name.lower()
    ]
    if adata.raw is not None and "raw" not in layers:
        candidates.append(("raw", adata.raw.X))
    for name, counts in candidates:
        values = _values(counts)
        if counts is None or _fractions(counts) or (values.size and values.min() < 0):
            continue
        place = ".raw" if name == "raw" and name not in layers else f"layers[{name!r}]"
        raise ScingestError(
            f"{where} holds {_fractions(matrix)} non-integer value(s){shown}: it is normalised, "
            f"but {place} holds integer counts: set h5ad_layer: {name} (in the config, or for "
            "one sample in a sheet column of the same name) to read the raw counts",
            path=path,
        )
    found = ", ".join(layers) or "none"
    raise ScingestError(
        f"{where} holds {_fractions(matrix)} non-integer value(s){shown} and no layer holds "
        f"integer counts (layers here: {found}; .raw: "
        f"{'not integer' if adata.raw is not None else 'none'}): expected raw integer counts; "
        "set h5ad_layer to the layer that holds them, or allow_non_integer: true to accept "
        "normalised data",
        path=path,
    )


def _detect(path: Path) -> Fit:
    return Fit.NAME if path.is_file() and path.name.lower().endswith(".h5ad") else Fit.NONE


FORMATS = (
    Format(
        "h5ad",
        "AnnData file (.h5ad): counts from X or a named layer",
        detect=_detect,
        resolve=one_file,
        read=reads(read_h5ad_counts, layer="h5ad_layer"),
        options=frozenset({"h5ad_layer"}),
    ),
)
