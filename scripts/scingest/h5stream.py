"""Streaming CSR matrices between h5ad files in row blocks, in bounded memory.

The merge and the filtered merge both copy cells x genes matrices from file to file. They
read row blocks with anndata's backed sparse datasets and append them to an output written
in anndata's on-disk format, so memory is bounded by the block size, not by the file.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import h5py
import numpy as np
import scipy.sparse as sp
from anndata.io import sparse_dataset
from isal import isal_zlib

from .errors import ScingestError

Compression = Literal["none", "lzf", "gzip"]

#: Stored values read at once (about 12 bytes each for float32 counts with int32 indices,
#: twice that while a block is re-indexed): bounds a stream's memory whatever the file size.
BLOCK_NNZ = 4_000_000
#: HDF5 chunk of the appendable output datasets, in elements. anndata's default for an
#: appendable dataset is 1,024 elements, which made 100 million stored values 100,000
#: chunks; 256 Ki elements (1 MiB of float32) writes and reads in large pieces.
OUTPUT_CHUNK = 1 << 18
#: Deflate level of ``compression: gzip``. On the seed checkpoint (bench/run.py
#: compression), anndata's writer at level 1 took 3.9 s for 78 MiB, at h5py's default
#: level 4 6.6 s for the same size; with CsrWriter's parallel ISA-L chunks, 1.0 s, 93 MiB.
GZIP_LEVEL = 1
#: ISA-L's level for the same chunks (its scale is 0-3): 586 MB/s on the seed's values.
ISAL_LEVEL = 1
COMPRESSIONS = ("none", "lzf", "gzip")


def row_blocks(indptr: np.ndarray, block_nnz: int = BLOCK_NNZ) -> Iterator[tuple[int, int]]:
    """Row ranges holding at most ``block_nnz`` stored values (at least one row each)."""
    n_rows = len(indptr) - 1
    start = 0
    while start < n_rows:
        stop = int(np.searchsorted(indptr, indptr[start] + block_nnz, side="right")) - 1
        stop = min(max(stop, start + 1), n_rows)
        yield start, stop
        start = stop


def check_compression(compression: str) -> None:
    """Refuse a compression the writers do not know, before any work is done."""
    if compression not in COMPRESSIONS:
        raise ScingestError(f"compression must be none, lzf or gzip, not {compression!r}")


def sparse_obsm_keys(f: h5py.File) -> list[str]:
    """Names of the ``obsm`` entries stored as CSR (the readers' other feature types)."""
    return [
        k for k in f.get("obsm", []) if f[f"obsm/{k}"].attrs.get("encoding-type") == "csr_matrix"
    ]


def check_csr(group: h5py.Group | h5py.Dataset, key: str) -> None:
    """Refuse a matrix that is not stored as CSR (the checkpoint contract)."""
    kind = group.attrs.get("encoding-type", "dense array")
    if kind != "csr_matrix":
        raise ScingestError(
            f"{key} is stored as {kind}, expected csr_matrix", path=group.file.filename
        )


def workers() -> int:
    """Threads for chunk compression: the CPUs this process may run on (SLURM's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _appendable(parent: h5py.Group, name: str, dtype: np.dtype, **filters: Any) -> h5py.Dataset:
    """An empty, resizable 1-D dataset in OUTPUT_CHUNK chunks."""
    return parent.create_dataset(
        name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(OUTPUT_CHUNK,), **filters
    )


class _Appender:
    """Appends to a 1-D chunked dataset; h5py compresses (none or lzf) as it writes."""

    def __init__(self, parent: h5py.Group, name: str, dtype: np.dtype, compression: str | None):
        self.dataset = _appendable(parent, name, dtype, compression=compression)

    def append(self, values: np.ndarray) -> None:
        start = self.dataset.shape[0]
        self.dataset.resize((start + len(values),))
        self.dataset[start:] = values

    def close(self) -> None:
        pass


class _DeflateAppender:
    """Appends to a 1-D chunked, deflate-filtered dataset, compressing whole chunks with
    ISA-L in worker threads and storing them with ``write_direct_chunk``.

    Why: HDF5 compresses in the writing thread, one chunk at a time, with zlib. On the seed
    checkpoint's counts ISA-L level 1 compresses 4x faster than zlib level 1 (586 vs 143
    MB/s on values) and the threads run in parallel. The file is a plain deflate-filtered
    HDF5 dataset: any HDF5 reader (anndata, h5py, R, Julia) reads it without plugins.
    """

    def __init__(self, parent: h5py.Group, name: str, dtype: np.dtype, pool: ThreadPoolExecutor):
        self.dataset = _appendable(
            parent, name, dtype, compression="gzip", compression_opts=GZIP_LEVEL
        )
        self.pool = pool
        self.buffer = np.zeros(OUTPUT_CHUNK, dtype=dtype)
        self.fill = 0
        self.size = 0
        self.written = 0
        self.pending: deque[Future[bytes]] = deque()

    def append(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=self.dataset.dtype)
        pos = 0
        while pos < len(values):
            take = min(OUTPUT_CHUNK - self.fill, len(values) - pos)
            self.buffer[self.fill : self.fill + take] = values[pos : pos + take]
            self.fill += take
            pos += take
            if self.fill == OUTPUT_CHUNK:
                self._submit()
        self.size += len(values)

    def _submit(self) -> None:
        # a partial last chunk is stored zero-padded to full size, as HDF5 stores edge chunks
        self.pending.append(self.pool.submit(isal_zlib.compress, self.buffer.tobytes(), ISAL_LEVEL))
        self.buffer = np.zeros(OUTPUT_CHUNK, dtype=self.dataset.dtype)
        self.fill = 0
        while len(self.pending) > 8:  # bounded: a few chunks in flight
            self._write_one()

    def _write_one(self) -> None:
        compressed = self.pending.popleft().result()
        offset = self.written * OUTPUT_CHUNK
        if self.dataset.shape[0] < offset + OUTPUT_CHUNK:
            self.dataset.resize((offset + OUTPUT_CHUNK,))
        self.dataset.id.write_direct_chunk((offset,), compressed)
        self.written += 1

    def close(self) -> None:
        if self.fill:
            self._submit()
        while self.pending:
            self._write_one()
        self.dataset.resize((self.size,))


class CsrWriter:
    """Writes a CSR matrix in anndata's on-disk format, appended row block by row block.

    ``indptr`` is kept in memory (8 bytes per row) and written on :meth:`close`, as int32
    like ``indices`` while the values fit (int64 beyond 2**31 - 1 stored values).
    """

    def __init__(
        self,
        parent: h5py.Group,
        key: str,
        n_cols: int,
        dtype: np.dtype,
        *,
        compression: Compression = "none",
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        check_compression(compression)
        self.group = parent.create_group(key)
        self.dtype = np.dtype(dtype)
        self.n_cols = n_cols
        self.compression = compression
        self._own_pool = pool is None and compression == "gzip"
        self.pool = ThreadPoolExecutor(workers()) if self._own_pool else pool

        def appender(name: str, dt: np.dtype) -> _Appender | _DeflateAppender:
            if compression == "gzip":
                assert self.pool is not None
                return _DeflateAppender(self.group, name, dt, self.pool)
            return _Appender(self.group, name, dt, None if compression == "none" else compression)

        self.data = appender("data", self.dtype)
        self.indices = appender("indices", np.dtype(np.int32))
        self.indptr = [np.zeros(1, dtype=np.int64)]
        self.nnz = 0
        self.n_rows = 0

    def append(self, block: sp.csr_matrix) -> None:
        if block.shape[1] != self.n_cols:
            raise ValueError(f"block has {block.shape[1]} columns, expected {self.n_cols}")
        block = sp.csr_matrix(block, dtype=self.dtype)
        n = block.indptr[-1]
        self.data.append(block.data[:n])
        self.indices.append(block.indices[:n])
        self.indptr.append(block.indptr[1:].astype(np.int64) + self.nnz)
        self.nnz += int(n)
        self.n_rows += block.shape[0]

    def close(self) -> None:
        self.data.close()
        self.indices.close()
        indptr = np.concatenate(self.indptr)
        if self.nnz <= np.iinfo(np.int32).max:
            # indptr in the indices' dtype, as scipy and anndata store CSR: scanpy 1.12's
            # numba kernels (normalize_total) refuse int64 indptr beside int32 indices
            indptr = indptr.astype(np.int32)
        kwargs: dict[str, Any] = {}
        if self.compression != "none":
            kwargs = {"compression": self.compression, "chunks": (min(len(indptr), OUTPUT_CHUNK),)}
        if self.compression == "gzip":
            kwargs["compression_opts"] = GZIP_LEVEL
        self.group.create_dataset("indptr", data=indptr, **kwargs)
        self.group.attrs["encoding-type"] = "csr_matrix"
        self.group.attrs["encoding-version"] = "0.1.0"
        self.group.attrs["shape"] = (self.n_rows, self.n_cols)
        if self._own_pool and self.pool is not None:
            self.pool.shutdown()


def write_csr(
    parent: h5py.Group,
    key: str,
    matrix: sp.csr_matrix,
    *,
    compression: Compression = "none",
    pool: ThreadPoolExecutor | None = None,
) -> None:
    """Write a whole in-memory CSR matrix with :class:`CsrWriter`."""
    writer = CsrWriter(
        parent, key, matrix.shape[1], matrix.dtype, compression=compression, pool=pool
    )
    writer.append(matrix)
    writer.close()


def same_stored(a: h5py.Group, b: h5py.Group) -> bool:
    """Whether two stored sparse matrices are byte for byte the same (compared chunk by
    chunk as stored, without decompressing), e.g. ``X`` and ``layers/counts``."""
    if a.attrs.get("encoding-type") != b.attrs.get("encoding-type"):
        return False
    if tuple(a.attrs.get("shape", ())) != tuple(b.attrs.get("shape", ())):
        return False
    for name in ("data", "indices", "indptr"):
        x, y = a.get(name), b.get(name)
        if not isinstance(x, h5py.Dataset) or not isinstance(y, h5py.Dataset):
            return False
        if (x.shape, x.dtype, x.chunks, x.compression) != (
            y.shape,
            y.dtype,
            y.chunks,
            y.compression,
        ):
            return False
        if x.chunks is None:
            if not np.array_equal(x[:], y[:]):
                return False
            continue
        n = x.id.get_num_chunks()
        if n != y.id.get_num_chunks():
            return False
        for i in range(n):
            info_x, info_y = x.id.get_chunk_info(i), y.id.get_chunk_info(i)
            if info_x.chunk_offset != info_y.chunk_offset:
                return False
            if x.id.read_direct_chunk(info_x.chunk_offset) != y.id.read_direct_chunk(
                info_y.chunk_offset
            ):
                return False
    return True


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
    targets: CsrWriter | list[CsrWriter],
    *,
    column_map: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    columns: np.ndarray | None = None,
    block_nnz: int = BLOCK_NNZ,
) -> None:
    """Append the rows of the CSR matrix stored in ``source`` to each of ``targets``, block
    by block (several targets: one read for matrices known to be the same).

    ``column_map`` re-indexes columns (see :func:`reindex_columns`); ``rows`` and
    ``columns`` (boolean masks) subset instead.
    """
    targets = targets if isinstance(targets, list) else [targets]
    matrix = sparse_dataset(source)
    n_cols = targets[0].n_cols
    for start, stop in row_blocks(source["indptr"][:], block_nnz):
        block = matrix[start:stop]
        if rows is not None:
            block = block[rows[start:stop]]
        if columns is not None:
            block = block[:, columns]
        if column_map is not None:
            block = reindex_columns(block, column_map, n_cols)
        if block.shape[0]:
            for target in targets:
                target.append(block)
