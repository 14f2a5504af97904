"""The optional filtered merge: cells that pass QC, genes seen in enough of them.

Streams the merged file's matrices in row blocks, so memory stays bounded by the block size
(plus one value per cell and per gene) however many cells there are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from os import PathLike

import h5py
import numpy as np
import scipy.sparse as sp
from anndata.io import read_elem, sparse_dataset, write_elem

from .errors import ScingestError
from .files import atomic_path
from .provenance import h5ad_safe

logger = logging.getLogger(__name__)

#: Stored values read at once; bounds memory (about 12 bytes each for float32 counts).
CHUNK_NNZ = 20_000_000


def _row_blocks(indptr: np.ndarray, chunk_nnz: int) -> Iterator[tuple[int, int]]:
    """Row ranges holding at most ``chunk_nnz`` stored values (at least one row each)."""
    n_rows = len(indptr) - 1
    start = 0
    while start < n_rows:
        stop = int(np.searchsorted(indptr, indptr[start] + chunk_nnz, side="right")) - 1
        stop = min(max(stop, start + 1), n_rows)
        yield start, stop
        start = stop


def _matrices(f: h5py.File) -> list[str]:
    """Keys of the cells x genes matrices of a file: ``X`` and each layer."""
    keys = ["X"]
    if "layers" in f:
        keys += [f"layers/{name}" for name in f["layers"]]
    for key in keys:
        if f[key].attrs.get("encoding-type") != "csr_matrix":
            raise ScingestError(
                f"{key} is {f[key].attrs.get('encoding-type', 'dense')}, expected csr_matrix",
                path=f.filename,
            )
    return keys


def filter_merged(
    merged: str | PathLike[str],
    out: str | PathLike[str],
    *,
    min_cells: int = 3,
    chunk_nnz: int = CHUNK_NNZ,
) -> dict[str, int]:
    """Write the cells of ``merged`` with ``obs["qc_pass"]`` and the genes detected in at
    least ``min_cells`` of those cells to ``out``.

    ``X``, every layer, ``obs`` and ``var`` are subset; ``var["n_cells_pass"]`` holds each
    kept gene's number of passing cells; ``uns["scingest"]["filter"]`` records the numbers.
    Returns cells and genes before and after.
    """
    with h5py.File(merged, "r") as f:
        obs = read_elem(f["obs"])
        var = read_elem(f["var"])
        uns = read_elem(f["uns"]) if "uns" in f else {}
        if "qc_pass" not in obs.columns:
            raise ScingestError(
                "no obs column qc_pass: the checkpoints predate QC flags", path=merged
            )
        keep_cells = obs["qc_pass"].to_numpy(dtype=bool)
        keys = _matrices(f)
        indptr = f["X/indptr"][:]
        blocks = list(_row_blocks(indptr, chunk_nnz))
        matrix = sparse_dataset(f["X"])
        n_cells = np.zeros(len(var), dtype=np.int64)
        for start, stop in blocks:
            block = matrix[start:stop][keep_cells[start:stop]]
            block.eliminate_zeros()
            n_cells += np.bincount(block.indices, minlength=len(var))
        keep_genes = n_cells >= min_cells
        new_var = var.loc[keep_genes].copy()
        new_var["n_cells_pass"] = n_cells[keep_genes]
        stats = {
            "cells_in": len(obs),
            "cells_out": int(keep_cells.sum()),
            "genes_in": len(var),
            "genes_out": int(keep_genes.sum()),
            "min_cells": int(min_cells),
        }
        uns = dict(uns)
        scingest = dict(uns.get("scingest", {}))
        scingest["filter"] = stats
        uns["scingest"] = h5ad_safe(scingest)
        with atomic_path(out) as tmp, h5py.File(tmp, "w") as g:
            g.attrs["encoding-type"] = "anndata"
            g.attrs["encoding-version"] = "0.1.0"
            write_elem(g, "obs", obs.loc[keep_cells])
            write_elem(g, "var", new_var)
            for key in ("layers", "obsm", "varm", "obsp", "varp"):
                write_elem(g, key, {})
            for key in keys:
                source = sparse_dataset(f[key])
                dtype = f[f"{key}/data"].dtype
                empty = sp.csr_matrix((0, int(keep_genes.sum())), dtype=dtype)
                empty.indptr = empty.indptr.astype(np.int64)
                write_elem(g, key, empty)
                target = sparse_dataset(g[key])
                for start, stop in blocks:
                    block = source[start:stop][keep_cells[start:stop]][:, keep_genes]
                    if block.shape[0]:
                        target.append(sp.csr_matrix(block))
            write_elem(g, "uns", uns)
    logger.info(
        "filtered %s: %d of %d cells pass QC, %d of %d genes in at least %d of them",
        merged,
        stats["cells_out"],
        stats["cells_in"],
        stats["genes_out"],
        stats["genes_in"],
        min_cells,
    )
    return stats
