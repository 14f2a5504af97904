"""Streaming CSR matrices between h5ad files in row blocks, in bounded memory.

The merge and the filtered merge both copy cells x genes matrices from file to file. They
read row blocks with anndata's backed sparse datasets and append them to an output written
in anndata's on-disk format, so memory is bounded by the block size, not by the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import h5py
import numpy as np
import scipy.sparse as sp
from anndata.io import sparse_dataset, write_elem

from .errors import ScingestError

Compression = Literal["none", "lzf", "gzip"]

#: Stored values read at once (about 12 bytes each for float32 counts with int32 indices,
#: twice that while a block is re-indexed): bounds a stream's memory whatever the file size.
BLOCK_NNZ = 4_000_000
#: HDF5 chunk of the appendable output datasets, in elements. anndata's default for an
#: appendable dataset is 1,024 elements, which made 100 million stored values 100,000
#: chunks; 256 Ki elements (1 MiB of float32) writes and reads in large pieces.
OUTPUT_CHUNK = 1 << 18


def row_blocks(indptr: np.ndarray, block_nnz: int = BLOCK_NNZ) -> Iterator[tuple[int, int]]:
    """Row ranges holding at most ``block_nnz`` stored values (at least one row each)."""
    n_rows = len(indptr) - 1
    start = 0
    while start < n_rows:
        stop = int(np.searchsorted(indptr, indptr[start] + block_nnz, side="right")) - 1
        stop = min(max(stop, start + 1), n_rows)
        yield start, stop
        start = stop


def check_csr(group: h5py.Group | h5py.Dataset, key: str) -> None:
    """Refuse a matrix that is not stored as CSR (the checkpoint contract)."""
    kind = group.attrs.get("encoding-type", "dense array")
    if kind != "csr_matrix":
        raise ScingestError(
            f"{key} is stored as {kind}, expected csr_matrix", path=group.file.filename
        )


def create_csr(
    parent: h5py.Group,
    key: str,
    n_cols: int,
    dtype: np.dtype,
    *,
    compression: Compression = "none",
) -> sp.csr_matrix:
    """Create an empty, appendable CSR matrix ``parent[key]`` and return its backed dataset."""
    empty = sp.csr_matrix((0, n_cols), dtype=dtype)
    empty.indptr = empty.indptr.astype(np.int64)  # offsets beyond 2**31 stored values
    kwargs: dict[str, object] = {"chunks": (OUTPUT_CHUNK,)}
    if compression != "none":
        kwargs["compression"] = compression
    write_elem(parent, key, empty, dataset_kwargs=kwargs)
    return sparse_dataset(parent[key])


def reindex_columns(block: sp.csr_matrix, column_map: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """Move a block's columns to new positions: ``column_map[old] = new``, ``-1`` drops.

    Rows keep sorted column indices, as anndata and scanpy expect of CSR.
    """
    new_indices = column_map[block.indices]
    keep = new_indices >= 0
    if keep.all():
        indptr = block.indptr
        data = block.data
    else:
        rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        per_row = np.bincount(rows[keep], minlength=block.shape[0])
        indptr = np.concatenate([[0], np.cumsum(per_row)])
        data = block.data[keep]
        new_indices = new_indices[keep]
    out = sp.csr_matrix(
        (data, new_indices.astype(np.int32, copy=False), indptr), shape=(block.shape[0], n_cols)
    )
    out.sort_indices()
    return out


def stream_rows(
    source: h5py.Group,
    target: sp.csr_matrix,
    *,
    column_map: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    columns: np.ndarray | None = None,
    block_nnz: int = BLOCK_NNZ,
) -> None:
    """Append the rows of the CSR matrix stored in ``source`` to ``target``, block by block.

    ``column_map`` re-indexes columns (see :func:`reindex_columns`); ``rows`` and
    ``columns`` (boolean masks) subset instead.
    """
    matrix = sparse_dataset(source)
    n_cols = target.shape[1]
    for start, stop in row_blocks(source["indptr"][:], block_nnz):
        block = matrix[start:stop]
        if rows is not None:
            block = block[rows[start:stop]]
        if columns is not None:
            block = block[:, columns]
        if column_map is not None:
            block = reindex_columns(block, column_map, n_cols)
        if block.shape[0]:
            target.append(sp.csr_matrix(block, dtype=target.dtype))
