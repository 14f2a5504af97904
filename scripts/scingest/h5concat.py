"""Joining what the merge copies from other h5ad files, one file after the other.

:class:`CsrConcat` keeps each sample's stored matrix values as a part of the output, copied
chunk for chunk where they are stored as the output wants them, and joins the parts with
HDF5 virtual datasets that every libhdf5 reader reads as one array; rows that must change
are streamed through :mod:`scingest.h5write`. :func:`copy_part` and :func:`virtual_concat`
do the same for 1-D datasets (``obs`` columns); :func:`same_stored` finds a layer stored
identically to ``X``. What the files must hold (and the checks of it) is
:mod:`scingest.checkpoint`'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import h5py
import numpy as np
import scipy.sparse as sp
from isal import isal_zlib

from .h5write import (
    BLOCK_NNZ,
    GZIP_LEVEL,
    ISAL_LEVEL,
    Appender,
    Compression,
    CsrWriter,
    DeflateAppender,
    check_compression,
    set_csr_attrs,
    stream_rows,
    write_indptr,
)

#: The group inside a merged matrix's group that holds each sample's stored values.
PARTS = "_parts"
#: Chunks inflated ahead of the one being used (bounds memory: a few chunks per stream).
_AHEAD = 8


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
        As in :func:`~scingest.h5write.reindex_columns`.

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
        As in :func:`~scingest.h5write.reindex_columns`; ``None``: the same columns.

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
            As in :func:`~scingest.h5write.reindex_columns`.
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
                    DeflateAppender(part, "indices", np.dtype(np.int32), self.pool)
                    if self.compression == "gzip" and self.pool is not None
                    else Appender(
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
