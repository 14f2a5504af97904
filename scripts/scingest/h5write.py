"""Writing CSR matrices in anndata's on-disk format, row block by row block, in bounded memory.

The sample writer, the filter and the merge append rows to a :class:`CsrWriter`: ``gzip``
chunks are deflated by ISA-L in parallel threads and stored as they are, a plain
deflate-filtered dataset that any HDF5 reader reads. :func:`stream_rows` copies the rows of
a stored matrix (a subset, or with its columns moved) into writers, reading row blocks with
anndata's backed sparse datasets, so memory is bounded by the block size, not by the file.
What the files must hold (and the checks of it) is :mod:`scingest.checkpoint`'s.
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
#: appendable dataset is 1,024 elements, which cuts a large matrix into very many small
#: chunks; 256 Ki elements writes and reads in large pieces.
OUTPUT_CHUNK = 1 << 18
#: Deflate level of ``compression: gzip``: counts compress to about the same size at
#: level 1 as at h5py's default level 4, in much less time (``bench/run.py compression``).
GZIP_LEVEL = 1
#: ISA-L's level for the same chunks (its scale is 0-3): its fastest deflate level.
ISAL_LEVEL = 1
COMPRESSIONS = ("none", "lzf", "gzip")


def row_blocks(indptr: np.ndarray, block_nnz: int = BLOCK_NNZ) -> Iterator[tuple[int, int]]:
    """Row ranges holding at most ``block_nnz`` stored values (at least one row each).

    Parameters
    ----------
    indptr
        A CSR matrix's ``indptr``.
    block_nnz
        The most stored values per range (a single longer row is a range of its own).

    Yields
    ------
    ``(start, stop)`` row ranges covering every row, in order.
    """
    n_rows = len(indptr) - 1
    start = 0
    while start < n_rows:
        stop = int(np.searchsorted(indptr, indptr[start] + block_nnz, side="right")) - 1
        stop = min(max(stop, start + 1), n_rows)
        yield start, stop
        start = stop


def check_compression(compression: str) -> None:
    """Refuse a compression the writers do not know, before any work is done.

    Parameters
    ----------
    compression
        The compression asked for.

    Raises
    ------
    ScingestError
        Unless it is one of :data:`COMPRESSIONS`.
    """
    if compression not in COMPRESSIONS:
        raise ScingestError(f"compression must be none, lzf or gzip, not {compression!r}")


def workers(threads: int | None = None) -> int:
    """Threads for chunk compression.

    Parameters
    ----------
    threads
        A job's declared share; ``None``: the CPUs this process may run on (SLURM's share).

    Returns
    -------
    ``threads`` (at least 1) when given, else the CPUs of this process.
    """
    if threads is not None:
        return max(1, int(threads))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _appendable(parent: h5py.Group, name: str, dtype: np.dtype, **filters: Any) -> h5py.Dataset:
    """An empty, resizable 1-D dataset in OUTPUT_CHUNK chunks."""
    return parent.create_dataset(
        name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(OUTPUT_CHUNK,), **filters
    )


class Appender:
    """Appends to a 1-D chunked dataset; h5py compresses (none or lzf) as it writes."""

    def __init__(self, parent: h5py.Group, name: str, dtype: np.dtype, compression: str | None):
        self.dataset = _appendable(parent, name, dtype, compression=compression)

    def append(self, values: np.ndarray) -> None:
        start = self.dataset.shape[0]
        self.dataset.resize((start + len(values),))
        self.dataset[start:] = values

    def close(self) -> None:
        pass


class DeflateAppender:
    """Appends to a 1-D chunked, deflate-filtered dataset, compressing whole chunks with
    ISA-L in worker threads and storing them with ``write_direct_chunk``.

    Why: HDF5 compresses in the writing thread, one chunk at a time, with zlib; ISA-L is a
    faster deflate, and the threads run in parallel (``bench/run.py compression`` compares
    the result with HDF5's own gzip). The file is a plain deflate-filtered
    HDF5 dataset: any HDF5 reader (anndata, h5py, R, Julia) reads it without plugins.
    Without a pool (a one-thread job), chunks are compressed in the calling thread.
    """

    def __init__(
        self, parent: h5py.Group, name: str, dtype: np.dtype, pool: ThreadPoolExecutor | None
    ):
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
        if self.pool is None:
            done: Future[bytes] = Future()
            done.set_result(isal_zlib.compress(self.buffer.tobytes(), ISAL_LEVEL))
            self.pending.append(done)
        else:
            self.pending.append(
                self.pool.submit(isal_zlib.compress, self.buffer.tobytes(), ISAL_LEVEL)
            )
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
    like ``indices`` while the values fit (:func:`write_indptr`). gzip chunks are
    compressed by ``pool``, else by a pool of its own of :func:`workers` (``threads``)
    threads; ``threads=1`` compresses in the calling thread.

    Parameters
    ----------
    parent
        The group to write into.
    key
        The matrix's name under ``parent`` (e.g. ``X``, ``layers/counts``).
    n_cols
        The number of columns.
    dtype
        The dtype of the stored values.
    compression
        ``none``, ``lzf`` or ``gzip``.
    pool
        Threads that compress gzip chunks, shared with other writers.
    threads
        The threads of a pool of its own, without ``pool``.
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
        threads: int | None = None,
    ) -> None:
        check_compression(compression)
        self.group = parent.create_group(key)
        self.dtype = np.dtype(dtype)
        self.n_cols = n_cols
        self.compression = compression
        self._own_pool = pool is None and compression == "gzip" and workers(threads) > 1
        self.pool = ThreadPoolExecutor(workers(threads)) if self._own_pool else pool

        def appender(name: str, dt: np.dtype) -> Appender | DeflateAppender:
            if compression == "gzip":
                return DeflateAppender(self.group, name, dt, self.pool)
            return Appender(self.group, name, dt, None if compression == "none" else compression)

        self.data = appender("data", self.dtype)
        self.indices = appender("indices", np.dtype(np.int32))
        self.indptr = [np.zeros(1, dtype=np.int64)]
        self.nnz = 0
        self.n_rows = 0

    def append(self, block: sp.csr_matrix) -> None:
        """Append a block's rows, converted to the writer's dtype.

        Parameters
        ----------
        block
            CSR rows with the writer's number of columns.

        Raises
        ------
        ValueError
            When the block has another number of columns.
        """
        if block.shape[1] != self.n_cols:
            raise ValueError(f"block has {block.shape[1]} columns, expected {self.n_cols}")
        block = sp.csr_matrix(block, dtype=self.dtype)
        n = block.indptr[-1]
        self.data.append(block.data[:n])
        self.indices.append(block.indices[:n])
        self.indptr.append(block.indptr[1:].astype(np.int64) + self.nnz)
        self.nnz += int(n)
        self.n_rows += block.shape[0]

    def close_values(self) -> np.ndarray:
        """Finish ``data`` and ``indices`` only, for a caller that writes ``indptr`` itself.

        Returns
        -------
        The ``indptr`` of the rows appended (int64, not written).
        """
        self.data.close()
        self.indices.close()
        if self._own_pool and self.pool is not None:
            self.pool.shutdown()
        return np.concatenate(self.indptr)

    def close(self) -> None:
        """Finish the matrix: ``data``, ``indices``, ``indptr`` and anndata's attributes."""
        indptr = self.close_values()
        write_indptr(self.group, indptr, compression=self.compression)
        set_csr_attrs(self.group, (self.n_rows, self.n_cols))


def write_indptr(group: h5py.Group, indptr: np.ndarray, *, compression: Compression) -> None:
    """Store a CSR ``indptr`` with the file's compression.

    It is stored as int32 like the int32 indices while it fits, as scipy builds it (mixed
    index dtypes break scipy's item assignment).

    Parameters
    ----------
    group
        The matrix's group.
    indptr
        The row pointers.
    compression
        The compression of the file's matrices.
    """
    if len(indptr) and indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    kwargs: dict[str, Any] = {}
    if compression != "none":
        kwargs = {"compression": compression, "chunks": (min(len(indptr), OUTPUT_CHUNK),)}
    if compression == "gzip":
        kwargs["compression_opts"] = GZIP_LEVEL
    group.create_dataset("indptr", data=indptr, **kwargs)


def set_csr_attrs(group: h5py.Group, shape: tuple[int, int]) -> None:
    """Set anndata's encoding attributes of a CSR matrix group.

    Parameters
    ----------
    group
        The matrix's group.
    shape
        ``(rows, columns)``.
    """
    group.attrs["encoding-type"] = "csr_matrix"
    group.attrs["encoding-version"] = "0.1.0"
    group.attrs["shape"] = shape


def write_csr(
    parent: h5py.Group,
    key: str,
    matrix: sp.csr_matrix,
    *,
    compression: Compression = "none",
    pool: ThreadPoolExecutor | None = None,
    threads: int | None = None,
) -> None:
    """Write a whole in-memory CSR matrix with :class:`CsrWriter`.

    Parameters
    ----------
    parent
        The group to write into.
    key
        The matrix's name under ``parent``.
    matrix
        The matrix.
    compression, pool, threads
        As :class:`CsrWriter`.
    """
    writer = CsrWriter(
        parent,
        key,
        matrix.shape[1],
        matrix.dtype,
        compression=compression,
        pool=pool,
        threads=threads,
    )
    writer.append(matrix)
    writer.close()


def reindex_columns(block: sp.csr_matrix, column_map: np.ndarray, n_cols: int) -> sp.csr_matrix:
    """Move a block's columns to new positions: ``column_map[old] = new``, ``-1`` drops.

    Rows keep sorted column indices, as anndata and scanpy expect of CSR.

    Parameters
    ----------
    block
        CSR rows.
    column_map
        For each of the block's columns, its new position, or ``-1`` to drop it.
    n_cols
        The number of columns of the result.

    Returns
    -------
    The rows with re-indexed columns, int32 indices.
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

    Parameters
    ----------
    source
        The stored matrix's group.
    targets
        Writer(s) to append to.
    column_map
        Re-indexes columns (see :func:`reindex_columns`).
    rows, columns
        Boolean masks that subset the rows and columns instead.
    block_nnz
        Stored values read at once.
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
