"""The optional filtered merge: cells that pass QC, genes seen in enough of them.

Streams the merged file's matrices in row blocks, so memory stays bounded by the block size
(plus one value per cell and per gene) however many cells there are.
"""

from __future__ import annotations

import logging
from os import PathLike

import h5py
import numpy as np
from anndata.io import read_elem, sparse_dataset, write_elem

from .checkpoint import PROVENANCE, QC_PASS, check_csr, new_h5ad, sparse_obsm_keys
from .errors import ScingestError
from .h5write import BLOCK_NNZ, Compression, CsrWriter, row_blocks, stream_rows
from .provenance import h5ad_safe

logger = logging.getLogger(__name__)


def _matrices(f: h5py.File) -> list[str]:
    """Keys of the per-cell matrices of a file: ``X``, each layer and each ``obsm`` CSR."""
    keys = ["X"]
    keys += [f"layers/{name}" for name in f.get("layers", [])]
    for key in keys:
        check_csr(f[key], key)
    return keys + [f"obsm/{name}" for name in sparse_obsm_keys(f)]


def filter_merged(
    merged: str | PathLike[str],
    out: str | PathLike[str],
    *,
    min_cells: int = 3,
    chunk_nnz: int = BLOCK_NNZ,
    compression: Compression = "none",
) -> dict[str, int]:
    """Write the cells of ``merged`` with ``obs["qc_pass"]`` and the genes detected in at
    least ``min_cells`` of those cells to ``out``.

    ``X``, every layer, ``obs`` and ``var`` are subset (``obsm`` matrices by cell only);
    ``var["n_cells_pass"]`` holds each kept gene's number of passing cells;
    ``uns["scingest"]["filter"]`` records the numbers. A layer stored as a hard link to
    ``X`` stays one.

    Parameters
    ----------
    merged
        A merged file (:func:`scingest.merge.merge_checkpoints`).
    out
        The filtered h5ad; written under a temporary name and renamed when complete.
    min_cells
        Keep the genes detected in at least this many passing cells.
    chunk_nnz
        Stored values read at once.
    compression
        ``none``, ``lzf`` or ``gzip``, for the matrices written.

    Returns
    -------
    ``cells_in``, ``cells_out``, ``genes_in``, ``genes_out`` and ``min_cells``.

    Raises
    ------
    ScingestError
        When ``merged`` has no ``obs["qc_pass"]`` or a matrix not stored as CSR.
    """
    with h5py.File(merged, "r") as f:
        obs = read_elem(f["obs"])
        var = read_elem(f["var"])
        uns = read_elem(f["uns"]) if "uns" in f else {}
        if QC_PASS not in obs.columns:
            raise ScingestError(
                f"no obs column {QC_PASS}: the checkpoints predate QC flags", path=merged
            )
        keep_cells = obs[QC_PASS].to_numpy(dtype=bool)
        keys = _matrices(f)
        matrix = sparse_dataset(f["X"])
        n_cells = np.zeros(len(var), dtype=np.int64)
        for start, stop in row_blocks(f["X/indptr"][:], chunk_nnz):
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
        scingest = dict(uns.get(PROVENANCE, {}))
        scingest["filter"] = stats
        uns[PROVENANCE] = h5ad_safe(scingest)
        with new_h5ad(out) as g:
            write_elem(g, "obs", obs.loc[keep_cells])
            write_elem(g, "var", new_var)
            for key in keys:
                if key != "X" and f[key] == f["X"]:
                    continue  # a hard link to X (counts stored once): linked again below
                # obsm matrices (other feature types) keep all their columns
                columns = None if key.startswith("obsm/") else keep_genes
                width = int(f[key].attrs["shape"][1]) if columns is None else int(columns.sum())
                dtype = f[f"{key}/data"].dtype
                target = CsrWriter(g, key, width, dtype, compression=compression)
                stream_rows(f[key], target, rows=keep_cells, columns=columns, block_nnz=chunk_nnz)
                target.close()
            for key in keys:
                if key != "X" and f[key] == f["X"]:
                    g[key] = g["X"]
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
