"""Streaming CSR matrices between h5ad files in row blocks, in bounded memory.

The merge and the filtered merge both copy cells x genes matrices from file to file. They
read row blocks with anndata's backed sparse datasets and append them to an output written
in anndata's on-disk format, so memory is bounded by the block size, not by the file.
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

        def appender(name: str, dt: np.dtype) -> _Appender | _DeflateAppender:
            if compression == "gzip":
                return _DeflateAppender(self.group, name, dt, self.pool)
            return _Appender(self.group, name, dt, None if compression == "none" else compression)

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


def same_stored(a: h5py.Group, b: h5py.Group) -> bool:
    """Whether two stored sparse matrices are byte for byte the same.

    They are compared chunk by chunk as stored, without decompressing, e.g. ``X`` and
    ``layers/counts``; a hard link (one group under two names, as checkpoints store
    identical counts) is the same.

    Parameters
    ----------
    a, b
        The matrices' groups.

    Returns
    -------
    True when encoding, shape, dtypes, chunking, filters and every stored chunk agree.
    """
    if a == b:
        return True
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


#: The group inside a merged matrix's group that holds each sample's stored values.
PARTS = "_parts"
#: Chunks inflated ahead of the one being used (bounds memory: a few chunks per stream).
_AHEAD = 8


def _filters(dataset: h5py.Dataset) -> tuple[Any, ...]:
    return (dataset.compression, dataset.shuffle, dataset.scaleoffset, dataset.fletcher32)


def _wanted(compression: Compression) -> tuple[Any, ...]:
    return (None if compression == "none" else compression, False, None, False)


def copy_part(
    source: h5py.Dataset | np.ndarray,
    parent: h5py.Group,
    name: str,
    dtype: Any,
    compression: Compression,
) -> int:
    """Put the 1-D ``source`` (in another file, or an array in memory) into
    ``parent[name]``, as a part of a :func:`virtual_concat`. A dataset stored as the output
    wants (same type and filter) is copied by HDF5 (``H5Ocopy``: compressed chunks as they
    are, nothing decoded); otherwise it is read and written again. Returns its length."""
    stored = isinstance(source, h5py.Dataset)
    same_type = stored and (
        source.dtype == dtype
        if h5py.check_string_dtype(dtype) is None
        else h5py.check_string_dtype(source.dtype) == h5py.check_string_dtype(dtype)
    )
    if same_type and not source.is_virtual and _filters(source) == _wanted(compression):
        parent.copy(source, parent, name=name)
    else:
        filters: dict[str, Any] = {}
        if compression != "none" and len(source):
            filters = {"compression": compression, "chunks": True}
            if compression == "gzip":
                filters["compression_opts"] = GZIP_LEVEL
        parent.create_dataset(name, data=source[()], dtype=dtype, **filters)
    return int(source.shape[0])


def virtual_concat(
    parent: h5py.Group, name: str, segments: list[tuple[str, int]], dtype: Any
) -> h5py.Dataset:
    """``parent[name]``: a 1-D virtual dataset joining ``segments`` (path in this file,
    length) one after the other, which every HDF5 reader (h5py and so anndata, R's
    hdf5r, ...) reads as one array; a plain empty dataset when they hold nothing."""
    total = sum(n for _, n in segments)
    if not total:
        return parent.create_dataset(name, shape=(0,), dtype=dtype)
    layout = h5py.VirtualLayout(shape=(total,), dtype=dtype)
    start = 0
    for path, n in segments:
        if n:
            layout[start : start + n] = h5py.VirtualSource(".", path, shape=(n,), dtype=dtype)
            start += n
    return parent.create_virtual_dataset(name, layout, fillvalue=None)


def appends_only(column_map: np.ndarray) -> bool:
    """Whether a column map keeps every column in its order (new columns only after or
    between them): re-mapped indices then stay sorted within each row.

    Parameters
    ----------
    column_map
        As in :func:`reindex_columns`.

    Returns
    -------
    True when no column is dropped and the map is increasing.
    """
    return bool((column_map >= 0).all() and (np.diff(column_map) > 0).all())


def iter_values(
    dataset: h5py.Dataset,
    stop: int,
    *,
    block: int = BLOCK_NNZ,
    pool: ThreadPoolExecutor | None = None,
) -> Iterator[np.ndarray]:
    """The first ``stop`` values of a 1-D dataset, in pieces and in order.

    Plain deflate chunks are read as stored and inflated by ISA-L in ``pool`` (a few ahead,
    in parallel); anything else is read by h5py in pieces of ``block`` values.

    Parameters
    ----------
    dataset
        A 1-D dataset.
    stop
        How many values to read from its start.
    block
        Values per piece when h5py reads.
    pool
        Threads that inflate chunks; ``None`` leaves it to h5py.

    Yields
    ------
    Consecutive pieces of the values.
    """
    chunks = dataset.chunks
    if pool is None or chunks is None or _filters(dataset) != _wanted("gzip"):
        for start in range(0, stop, block):
            yield dataset[start : min(stop, start + block)]
        return
    size = chunks[0]

    def inflate(raw: bytes, mask: int) -> bytes:
        return raw if mask & 1 else isal_zlib.decompress(raw)

    pending: deque[tuple[int, Future[bytes]]] = deque()
    for offset in range(0, stop, size):
        mask, raw = dataset.id.read_direct_chunk((offset,))
        pending.append((offset, pool.submit(inflate, raw, mask)))
        while len(pending) > _AHEAD:
            first, future = pending.popleft()
            yield np.frombuffer(future.result(), dtype=dataset.dtype)[: min(size, stop - first)]
    while pending:
        first, future = pending.popleft()
        yield np.frombuffer(future.result(), dtype=dataset.dtype)[: min(size, stop - first)]


def remap_chunks(
    source: h5py.Dataset,
    parent: h5py.Group,
    name: str,
    column_map: np.ndarray | None,
    pool: ThreadPoolExecutor | None,
    stop: int,
) -> None:
    """``parent[name]``: the first ``stop`` values of the deflate-filtered 1-D ``source``
    passed through ``column_map`` (``None``: as they are), chunk for chunk, in the chunks of
    ``source``. Each chunk is inflated, mapped and deflated (ISA-L) as one task: by the
    pool's threads and by the calling thread in turn, which also reads and stores the
    chunks as they are (``read_direct_chunk`` / ``write_direct_chunk``). Why: remapping
    the gene indices of a sample is otherwise three passes over its values in one thread
    (``bench/run.py merge``, outer join)."""
    size = source.chunks[0]
    target = parent.create_dataset(
        name,
        shape=(stop,),
        maxshape=(None,),  # lets a chunk exceed a short part, as in its source
        dtype=np.int32,
        chunks=(size,),
        compression="gzip",
        compression_opts=GZIP_LEVEL,
    )
    mapping = None if column_map is None else np.asarray(column_map, dtype=np.int32)

    def work(offset: int, mask: int, raw: bytes) -> bytes:
        values = np.frombuffer(raw if mask & 1 else isal_zlib.decompress(raw), source.dtype)
        valid = min(size, stop - offset)
        out = np.zeros(size, dtype=np.int32)  # an edge chunk is stored whole, zero-padded
        if mapping is None:
            out[:valid] = values[:valid]
        else:
            np.take(mapping, values[:valid], out=out[:valid])
        return isal_zlib.compress(out.tobytes(), ISAL_LEVEL)

    helpers = 0 if pool is None else pool._max_workers
    pending: deque[tuple[int, Future[bytes]]] = deque()
    for i, offset in enumerate(range(0, stop, size)):
        mask, raw = source.id.read_direct_chunk((offset,))
        if pool is not None and i % (helpers + 1) < helpers:
            pending.append((offset, pool.submit(work, offset, mask, raw)))
        else:  # the calling thread's share
            done: Future[bytes] = Future()
            done.set_result(work(offset, mask, raw))
            pending.append((offset, done))
        while len(pending) > _AHEAD:
            first, future = pending.popleft()
            target.id.write_direct_chunk((first,), future.result())
    while pending:
        first, future = pending.popleft()
        target.id.write_direct_chunk((first,), future.result())


def _unless_identity(column_map: np.ndarray | None) -> np.ndarray | None:
    """``None`` for a map that leaves every column where it is (genes appended after a
    sample's own: its indices stay valid as stored)."""
    if column_map is not None and np.array_equal(column_map, np.arange(len(column_map))):
        return None
    return column_map


def concat_mode(
    source: h5py.Group,
    dtype: np.dtype,
    compression: Compression,
    column_map: np.ndarray | None = None,
) -> Literal["copy", "remap", "reindex"]:
    """How :class:`CsrConcat` can append the CSR matrix stored in ``source``.

    Parameters
    ----------
    source
        The stored matrix's group.
    dtype
        The output's value dtype.
    compression
        The output's compression.
    column_map
        As in :func:`reindex_columns`; ``None``: the same columns.

    Returns
    -------
    ``copy`` its stored chunks (values and indices stored as wanted, same columns),
    ``remap`` (values copied, indices re-mapped: columns kept in order) or ``reindex``
    (rows re-indexed).
    """
    column_map = _unless_identity(column_map)
    indptr = source["indptr"]
    data, indices = source["data"], source["indices"]
    nnz = int(indptr[-1]) if len(indptr) else 0
    plain = (
        len(indptr) > 0
        and int(indptr[0]) == 0
        and data.shape == indices.shape == (nnz,)
        and not (data.is_virtual or indices.is_virtual)  # a copy would point elsewhere
    )
    if not plain or data.dtype != dtype or _filters(data) != _wanted(compression):
        return "reindex"
    same_indices = indices.dtype == np.int32 and _filters(indices) == _wanted(compression)
    if column_map is None and same_indices:
        return "copy"
    if column_map is None or appends_only(column_map):
        return "remap"
    return "reindex"


class CsrConcat:
    """Concatenates CSR matrices stored in other files, one after the other, re-encoding
    only what has to change.

    With ``virtual`` (for matrices that :func:`concat_mode` can all copy or remap), each
    added matrix's ``data`` and ``indices`` become datasets of their own under
    ``{key}/_parts/{n}/``, and ``{key}/data`` and ``{key}/indices`` are HDF5 virtual
    datasets joining them (sources in the same file): HDF5 readers (h5py and so anndata,
    R's hdf5r, ...) read them as one array. Why: contiguous CSR arrays cannot be joined
    chunk for chunk, since each matrix after the first would start in the middle of a
    chunk; the virtual dataset lets every part keep its own chunks. A part stored as the
    output wants (same dtype and filter) is copied by HDF5 (``H5Ocopy``: compressed chunks
    as they are); when its columns keep their order (genes appended by an outer join) its
    values are copied and only its indices re-mapped. Without ``virtual`` every row is
    re-indexed into plain datasets (:func:`stream_rows`, :class:`CsrWriter`). ``indptr``
    is rebased and kept in memory (8 bytes per row).

    Parameters
    ----------
    parent, key, n_cols, dtype, compression, pool, threads
        As :class:`CsrWriter`.
    virtual
        Join the matrices' stored values as parts (above) rather than re-index every row.
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
        virtual: bool = True,
        threads: int | None = None,
    ) -> None:
        check_compression(compression)
        self.n_cols = n_cols
        self.dtype = np.dtype(dtype)
        self.compression = compression
        self.pool = pool
        self.virtual = virtual
        if not virtual:
            self.writer = CsrWriter(
                parent, key, n_cols, dtype, compression=compression, pool=pool, threads=threads
            )
            return
        self.group = parent.create_group(key)
        self.parts = self.group.create_group(PARTS)
        self.indptr = [np.zeros(1, dtype=np.int64)]
        self.nnz = 0
        self.n_rows = 0
        self.segments: list[tuple[str, int]] = []
        self.last: tuple[str, int, np.ndarray] | None = None

    def add(
        self,
        source: h5py.Group,
        *,
        column_map: np.ndarray | None = None,
        block_nnz: int = BLOCK_NNZ,
    ) -> Literal["copy", "remap", "reindex"]:
        """Append the rows of the CSR matrix stored in ``source``.

        Parameters
        ----------
        source
            The stored matrix's group (in another file).
        column_map
            As in :func:`reindex_columns`.
        block_nnz
            Stored values read at once where rows are re-indexed.

        Returns
        -------
        How its values were written (:func:`concat_mode`).
        """
        if not self.virtual:
            stream_rows(source, self.writer, column_map=column_map, block_nnz=block_nnz)
            return "reindex"
        column_map = _unless_identity(column_map)
        mode = concat_mode(source, self.dtype, self.compression, column_map)
        indptr = source["indptr"][:].astype(np.int64)
        nnz = int(indptr[-1] - indptr[0])
        data, indices = source["data"], source["indices"]
        name = str(len(self.parts))
        if mode == "reindex":
            writer = CsrWriter(
                self.parts,
                name,
                self.n_cols,
                self.dtype,
                compression=self.compression,
                pool=self.pool,
            )
            stream_rows(source, writer, column_map=column_map, block_nnz=block_nnz)
            indptr = writer.close_values()
            nnz = int(indptr[-1])
        else:
            part = self.parts.create_group(name)
            part.copy(data, part, name="data")
            if mode == "copy":
                part.copy(indices, part, name="indices")
            elif self.compression == "gzip" and _filters(indices) == _wanted("gzip"):
                remap_chunks(indices, part, "indices", column_map, self.pool, nnz)
            else:
                target = (
                    _DeflateAppender(part, "indices", np.dtype(np.int32), self.pool)
                    if self.compression == "gzip" and self.pool is not None
                    else _Appender(
                        part,
                        "indices",
                        np.dtype(np.int32),
                        None if self.compression == "none" else self.compression,
                    )
                )
                for piece in iter_values(indices, nnz, block=block_nnz, pool=self.pool):
                    target.append(piece if column_map is None else column_map[piece])
                target.close()
        self._append(f"{self.parts.name}/{name}", nnz, indptr - indptr[0])
        return mode

    def add_like(self, other: CsrConcat) -> None:
        """Append the matrix last added to ``other`` (same rows, columns and dtype), sharing
        its stored values: a layer that equals ``X`` in this sample.

        Parameters
        ----------
        other
            A virtual concatenation of the same dtype with a matrix added.
        """
        assert self.virtual and other.last is not None and other.dtype == self.dtype
        self._append(*other.last)

    def add_empty(self, n_rows: int) -> None:
        """Append rows without values (a sample without this matrix).

        Parameters
        ----------
        n_rows
            How many rows.
        """
        if not self.virtual:
            self.writer.append(sp.csr_matrix((n_rows, self.n_cols), dtype=self.dtype))
            return
        self.indptr.append(np.full(n_rows, self.nnz, dtype=np.int64))
        self.n_rows += n_rows

    def _append(self, path: str, nnz: int, indptr: np.ndarray) -> None:
        self.last = (path, nnz, indptr)
        self.indptr.append(indptr[1:] + self.nnz)
        self.n_rows += len(indptr) - 1
        if nnz:
            self.segments.append((path, nnz))
        self.nnz += nnz

    def close(self) -> None:
        """Finish the matrix: the virtual datasets, ``indptr`` and anndata's attributes."""
        if not self.virtual:
            self.writer.close()
            return
        for name, dtype in (("data", self.dtype), ("indices", np.dtype(np.int32))):
            segments = [(f"{path}/{name}", n) for path, n in self.segments]
            virtual_concat(self.group, name, segments, dtype)
        write_indptr(self.group, np.concatenate(self.indptr), compression=self.compression)
        set_csr_attrs(self.group, (self.n_rows, self.n_cols))
