"""Fast path of the dense text reader: chunked inflate plus a numba byte-parsing kernel.

:func:`parse_fast` reads the common shape of a dense count matrix (a header line, then
lines of a name and unsigned integer counts, optionally written ``3.0``) at close to the
speed of decompression. Anything else, whether unusual but valid (quoted numbers,
exponents, fractions, a lone ``\\r`` line end, blank leading lines, quoted names with
doubled quotes or newlines) or an error (non-numbers, ragged rows, bad UTF-8, a truncated
gzip stream), raises :class:`Fallback`; the caller then re-reads the file with the simple
path in :mod:`scingest.readers.dense`, which stays the reference implementation and words
every error. So this module never needs to explain a bad file, only to recognise one.

Measured on the seed-size sample (33,538 x 9,413, 603 MiB of text, 21 MiB gzipped) on a
shared 2-core machine: the kernel parses it in 0.40 CPU-seconds, ISA-L inflates it in
0.3 CPU-seconds in a thread of its own (:class:`_LineBlocks`), and the transpose to cells
x genes takes two threads 0.16-0.29 s; with numba loaded the whole read takes 0.7 s of
wall time. ``bench/run.py reader`` compares it end to end with ``gzip -dc`` and the
tutorial's pandas loader.
"""

from __future__ import annotations

import csv
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numba
import numpy as np
import scipy.sparse as sp

from ..files import open_binary

logger = logging.getLogger(__name__)

#: Bytes inflated per kernel call. At 8 MiB the per-call Python work (decoding row names,
#: copying out the nonzeros) took under 0.15 s of a 2.5 s profiled parse of the seed
#: sample; the three line buffers take 48 MiB, and read_counts peaked at 0.74 GiB RSS.
CHUNK_SIZE = 8 << 20

_NL, _CR, _QUOTE, _DOT, _ZERO = 10, 13, 34, 46, 48

#: kernel status codes
_OK, _FALLBACK = 0, 1
#: integers with more digits could exceed float64's exact range (2**53): simple path
_MAX_DIGITS = 15
#: times a byte pair, repeats it four times in a little-endian uint64
_PAIRS = np.uint64(0x0001_0001_0001_0001)


class Fallback(Exception):
    """The fast path met something it leaves to the simple path."""


@numba.njit(cache=True, nogil=True)
def _scan(
    buf: np.ndarray,
    words: np.ndarray,
    n: int,
    sep: int,
    n_cols: int,
    max_value: int,
    name_bounds: np.ndarray,
    row_nnz: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
) -> tuple[int, int, int, int]:
    """Parse the complete lines in ``buf[:n]`` (``buf[n - 1]`` is ``\\n``).

    ``words`` is :func:`_words` of ``buf``: ``words[p & 7, p >> 3]`` holds bytes ``p`` to
    ``p + 7`` as one integer, so a run of zeros is skipped four values at a time.

    Per data line, writes the name's byte bounds, the number of nonzeros, and the column
    index and value of each nonzero. ``n_cols`` is the number of values per line, or -1
    to take it from the first line. Returns ``(status, rows, nonzeros, n_cols)``; status
    is ``_FALLBACK`` at the first thing outside the common shape.
    """
    p = 0
    rows = 0
    nnz = 0
    n_words = words.shape[1]
    zeros4 = np.uint64(_ZERO | sep << 8) * _PAIRS
    while p < n:
        c = buf[p]
        if c == _NL:  # blank line
            p += 1
            continue
        if c == _CR and buf[p + 1] == _NL:
            p += 2
            continue
        # the name field: "quoted" (no quote, CR or LF inside) or bare (no quote, no CR)
        if c == _QUOTE:
            q = p + 1
            while buf[q] != _QUOTE:
                if buf[q] == _NL or buf[q] == _CR:
                    return _FALLBACK, rows, nnz, n_cols
                q += 1
            name_start, name_end = p + 1, q
            p = q + 1
            c = buf[p]
            if c != sep and c != _NL and c != _CR:
                return _FALLBACK, rows, nnz, n_cols  # doubled quote or text after it
        else:
            q = p
            while True:
                c = buf[q]
                if c == sep or c == _NL or c == _CR:  # noqa: SIM109 - plain compares for numba
                    break
                if c == _QUOTE:
                    return _FALLBACK, rows, nnz, n_cols
                q += 1
            name_start, name_end = p, q
            p = q
        # the values: unsigned integers, optionally followed by "." and zeros
        col = 0
        first = nnz
        while buf[p] == sep:
            p += 1
            # "0,0,0,0," in one compare: a line's LF stops a match, so it never passes n
            while (p >> 3) < n_words and words[p & 7, p >> 3] == zeros4:
                p += 8
                col += 4
            if buf[p] == _ZERO and buf[p + 1] == sep:
                p += 1  # "0," is 95% of the values: this shortcut doubles the throughput
                col += 1
                continue
            v = 0
            digits = 0
            c = buf[p]
            while _ZERO <= c <= _ZERO + 9:
                v = v * 10 + (c - _ZERO)
                digits += 1
                p += 1
                c = buf[p]
            if digits == 0 or digits > _MAX_DIGITS:
                return _FALLBACK, rows, nnz, n_cols
            if c == _DOT:
                p += 1
                c = buf[p]
                while c == _ZERO:
                    p += 1
                    c = buf[p]
            if c != sep and c != _NL and c != _CR:
                return _FALLBACK, rows, nnz, n_cols
            if v != 0:
                if v > max_value:
                    return _FALLBACK, rows, nnz, n_cols
                indices[nnz] = col
                data[nnz] = v
                nnz += 1
            col += 1
        if buf[p] == _CR:
            p += 1
            if buf[p] != _NL:
                return _FALLBACK, rows, nnz, n_cols  # a lone CR ends a line for csv
        p += 1  # the LF
        if n_cols < 0:
            n_cols = col
        elif col != n_cols:
            return _FALLBACK, rows, nnz, n_cols
        name_bounds[rows, 0] = name_start
        name_bounds[rows, 1] = name_end
        row_nnz[rows] = nnz - first
        rows += 1
    return _OK, rows, nnz, n_cols


def _words(buf: bytearray) -> np.ndarray:
    """Every 8-byte window of ``buf`` as a little-endian uint64, without copying.

    Row ``k`` views the buffer from byte ``k`` in steps of 8 (unaligned loads, which x86
    and ARM64 do at full speed). Skipping zeros a word at a time made the kernel 27%
    faster on the seed sample (0.55 s to 0.40 s for its 603 MiB of text).
    """
    n_words = max(0, (len(buf) - 7) // 8)
    return np.ndarray((8, n_words), np.dtype("<u8"), buffer=buf, strides=(1, 8))


def load_kernel() -> None:
    """Load the kernel from numba's cache (compiling it on a first run) by parsing one line.

    The first call in a process takes 0.4-0.8 s, most of it numba importing its own
    modules; :func:`scingest.readers.dense.read_dense` makes that call before it starts
    importing anndata in the background.
    """
    text = bytearray(b"g,1\n" + bytes(8))
    status, *_ = _scan(
        np.frombuffer(text, np.uint8),
        _words(text),
        4,
        ord(","),
        -1,
        1,
        np.empty((1, 2), np.int64),
        np.empty(1, np.int64),
        np.empty(1, np.int32),
        np.empty(1, np.float32),
    )
    assert status == _OK


def _read_header(raw: IO[bytes], chunk_size: int, pending: bytes = b"") -> tuple[bytes, bytes]:
    """Read until the first line (of ``pending`` and then ``raw``) is complete; return it
    (without LF) and the bytes after it."""
    while True:
        block = raw.read(chunk_size)
        pending += block
        end = pending.find(b"\n")
        if end >= 0:
            break
        if not block:
            raise Fallback("no complete header line")
    if pending.startswith(b"\xef\xbb\xbf"):
        pending, end = pending[3:], end - 3  # UTF-8 byte-order mark
    return pending[:end], pending[end + 1 :]


def _n_fields(line: bytes, sep: str) -> int:
    """The number of fields of a line as the csv module splits it."""
    if line.count(b'"') % 2:
        raise Fallback("a quoted newline before the header")
    text = line.rstrip(b"\r").decode("utf-8", errors="replace")
    return len(next(csv.reader([text], delimiter=sep, quotechar='"'), []))


def _parse_header(line: bytes, sep: str) -> list[str]:
    """The header's fields, stripped, as the csv module splits them."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if b"\r" in line or line.count(b'"') % 2:
        raise Fallback("header with a lone CR or a quoted newline")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise Fallback("header not UTF-8") from None
    fields = next(csv.reader([text], delimiter=sep, quotechar='"'), [])
    header = [h.strip() for h in fields]
    if len(header) <= 1 or not any(header):
        raise Fallback("blank or one-field header")
    return header


class _Pieces:
    """The parsed rows so far: names, nonzeros per row, and the nonzeros' columns and values."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.names: list[str] = []
        self.row_nnz: list[np.ndarray] = []
        self.indices: list[np.ndarray] = []
        self.data: list[np.ndarray] = []


class _Scratch:
    """The kernel's output arrays, reused across chunks and grown with the buffer.

    A text of ``n`` bytes has at most ``n // 2`` lines and values (each takes a separator
    or line end and a byte of its own); counting the lines first costs more than the
    kernel's whole pass over "0,0,..." (bytearray.count: 0.75 s on the seed sample).
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.size = -1
        self.arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] = ()  # type: ignore[assignment]

    def fit(self, n: int) -> None:
        if n // 2 + 1 > self.size:
            self.size = max(n // 2 + 1, 2 * self.size)
            self.arrays = (
                np.empty((self.size, 2), np.int64),
                np.empty(self.size, np.int64),
                np.empty(self.size, np.int32),
                np.empty(self.size, self.dtype),
            )


def parse_fast(
    path: str | Path,
    *,
    sep: str,
    dtype: np.dtype,
    chunk_size: int = CHUNK_SIZE,
    transpose: bool | Callable[[list[str], list[str]], bool] = False,
    threads: int | None = None,
) -> tuple[list[str], list[str], sp.csr_matrix]:
    """Parse a dense text matrix into header names, row names and CSR (rows as in the file,
    or, with ``transpose``, one row per header name).

    ``transpose`` may be a function of the header and row names that returns whether to
    transpose (it may raise to refuse the names); it is called once all lines are parsed.
    Lines starting with ``#`` before the header are skipped as comments, unless their
    fields fit the next line's (then the ``#`` line is the header), as the simple path does.

    ``chunk_size`` is the number of bytes inflated per kernel call. ``threads=1`` inflates
    and transposes in the calling thread only; otherwise (``None`` or more) inflating and
    half the transpose run in a helper thread. Raises
    :class:`Fallback` for anything outside the common shape, including every input the
    simple path rejects and decompression errors; raises
    :class:`~scingest.ScingestError` only where the simple path raises the same first
    (a missing file, a ``.gz`` name on plain text).
    """
    if len(sep) != 1 or sep in '"\r\n.0123456789':
        raise Fallback("separator")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    dtype = np.dtype(dtype)
    max_value = np.iinfo(np.int32).max if dtype == np.int32 else np.iinfo(np.int64).max
    pieces = _Pieces(dtype)
    try:
        with open_binary(path) as raw:
            header_line, rest = _read_header(raw, chunk_size)
            comments = 0
            while header_line.lstrip().startswith(b"#"):
                # a comment unless its fields fit the next line's (a header starting with #)
                next_line, after = _read_header(raw, chunk_size, rest)
                if _n_fields(header_line, sep) in (
                    _n_fields(next_line, sep),
                    _n_fields(next_line, sep) - 1,
                ):
                    break
                header_line, rest = next_line, after
                comments += 1
            header = _parse_header(header_line, sep)
            n_cols = _parse_rows(
                raw,
                rest,
                pieces,
                sep=ord(sep),
                max_value=max_value,
                chunk_size=chunk_size,
                threaded=threads != 1,
            )
    except (EOFError, OSError, ValueError) as err:  # includes gzip.BadGzipFile
        raise Fallback(f"reading failed: {err}") from None
    if comments:
        logger.info("%s: skipped %d comment line(s) before the header", path, comments)
    if n_cols < 0 or len(header) not in (n_cols, n_cols + 1):
        raise Fallback("no data lines, or a header that does not fit them")
    if len(header) == n_cols + 1:
        header = header[1:]  # the first header cell labels the name column
    if callable(transpose):
        transpose = transpose(header, pieces.names)
    if transpose:
        return header, pieces.names, _transposed(pieces, n_cols, threaded=threads != 1)
    indptr = np.zeros(len(pieces.names) + 1, np.int64)
    if pieces.row_nnz:
        np.cumsum(np.concatenate(pieces.row_nnz), out=indptr[1:])
    matrix = sp.csr_matrix(
        (_concat(pieces.data, dtype), _concat(pieces.indices, np.int32), indptr),
        shape=(len(pieces.names), n_cols),
    )
    return header, pieces.names, matrix


@numba.njit(cache=True, nogil=True)
def _scatter(
    row_nnz: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    first_row: int,
    pos: np.ndarray,
    out_indices: np.ndarray,
    out_data: np.ndarray,
) -> None:
    """Write one block's nonzeros into the transpose: the block's row ``i`` becomes column
    ``first_row + i``; ``pos[c]`` is where row ``c``'s next value goes, and advances."""
    k = 0
    for i in range(row_nnz.size):
        for _ in range(row_nnz[i]):
            c = indices[k]
            p = pos[c]
            out_indices[p] = first_row + i
            out_data[p] = data[k]
            pos[c] = p + 1
            k += 1


def _transposed(pieces: _Pieces, n_cols: int, *, threaded: bool = True) -> sp.csr_matrix:
    """The transpose of the parsed blocks as CSR, written by two threads (one unless
    ``threaded``).

    Counting sort, as scipy's ``tocsr`` of a transpose does, straight from the blocks (no
    concatenated copy): the blocks' first half by nonzeros goes to one thread and the
    rest to another, each with its own write positions, so they never write the same
    place. On the seed sample, 4 runs in one process: 0.16-0.29 s, against 0.21-0.62 s to
    concatenate the same blocks and transpose them with scipy's ``tocsr``.
    """
    block_rows = [len(r) for r in pieces.row_nnz]
    block_nnz = np.array([len(ix) for ix in pieces.indices], np.int64)
    counts = [np.bincount(ix, minlength=n_cols) for ix in pieces.indices]
    indptr = np.zeros(n_cols + 1, np.int64)
    np.cumsum(sum(counts, np.zeros(n_cols, np.int64)), out=indptr[1:])
    out_indices = np.empty(indptr[-1], np.int32)
    out_data = np.empty(indptr[-1], pieces.dtype)
    split = int(np.searchsorted(np.cumsum(block_nnz), block_nnz.sum() / 2))
    starts = np.concatenate([[0], np.cumsum(block_rows)]).astype(np.int64)

    failed: list[BaseException] = []

    def write(blocks: range, pos: np.ndarray) -> None:
        try:
            for b in blocks:
                _scatter(
                    pieces.row_nnz[b],
                    pieces.indices[b],
                    pieces.data[b],
                    starts[b],
                    pos,
                    out_indices,
                    out_data,
                )
        except BaseException as err:  # raised below, in the calling thread
            failed.append(err)

    if not threaded:
        write(range(len(counts)), indptr[:-1].copy())
    else:
        second_pos = indptr[:-1].copy()
        for count in counts[:split]:
            second_pos += count
        second = threading.Thread(
            target=write, args=(range(split, len(counts)), second_pos), name="scingest-transpose"
        )
        second.start()
        write(range(split), indptr[:-1].copy())
        second.join()
    if failed:
        raise failed[0]
    return sp.csr_matrix((out_data, out_indices, indptr), shape=(n_cols, len(pieces.names)))


class _LineBlocks:
    """Blocks of complete lines, inflated ahead by a background thread.

    Iterating yields ``(buffer, end)``: ``buffer[:end]`` holds whole lines (the file's
    last line gets the LF it may lack). A line split across reads is carried to the front
    of the next buffer; a line longer than a buffer grows it. A buffer is reused once the
    next block is asked for, so a caller keeps no view of it past its turn.

    ISA-L inflates with the GIL released, so the thread inflates the next block while the
    kernel (also GIL-free) parses this one: on the seed sample the parse fell from 1.1-1.4 s
    to 0.75-0.85 s (inflating alone takes 0.3 s). Use as a context manager: leaving it
    stops and joins the thread before the caller closes the file it reads. With
    ``threaded=False`` no thread starts: each block is inflated when it is asked for.
    """

    #: one buffer parsed, one filled, one ready: more never ran faster (the kernel is slower)
    N_BUFFERS = 3

    def __init__(
        self, raw: IO[bytes], rest: bytes, chunk_size: int, *, threaded: bool = True
    ) -> None:
        self._raw, self._chunk_size = raw, chunk_size
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        self._full: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None] = (
            queue.SimpleQueue()
        )
        self._stop = threading.Event()
        for _ in range(self.N_BUFFERS):
            self._free.put(bytearray(2 * chunk_size))
        self._thread: threading.Thread | None = None
        self._steps: Iterator[None] | None = None
        if threaded:
            self._thread = threading.Thread(
                target=self._inflate, args=(rest,), name="scingest-inflate", daemon=True
            )
            self._thread.start()
        else:
            self._steps = self._fill(rest)

    def __enter__(self) -> _LineBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._free.put(None)  # wakes the thread if it waits for a buffer
        if self._thread is not None:
            self._thread.join()

    def __iter__(self) -> Iterator[tuple[bytearray, int]]:
        held = None
        while True:
            if held is not None:
                self._free.put(held)
            if self._steps is not None and self._full.empty():
                next(self._steps, None)  # inflate the next block here (errors raise here)
            item = self._full.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            held = item[0]
            yield item

    def _inflate(self, tail: bytes) -> None:
        """The thread: fill free buffers with whole lines until the end of the file."""
        try:
            for _ in self._fill(tail):
                pass
        except BaseException as err:  # handed to the parsing thread, which raises it
            self._full.put(err)

    def _fill(self, tail: bytes) -> Iterator[None]:
        """Fill free buffers with whole lines until the end of the file, one per step."""
        chunk_size = self._chunk_size
        while not self._stop.is_set():
            text = self._free.get()
            if text is None:
                return
            if len(text) < len(tail) + chunk_size:
                text.extend(bytes(len(tail) + chunk_size - len(text)))
            text[: len(tail)] = tail
            stop, end, got = len(tail), 0, 1
            while got and not end:
                if len(text) - stop < chunk_size:
                    text.extend(bytes(len(text)))
                got = self._raw.readinto(memoryview(text)[stop : stop + chunk_size])
                stop += got
                end = text.rfind(b"\n", 0, stop) + 1  # complete lines end here
            if not got:  # end of file
                if stop and text[stop - 1] != 10:
                    text[stop] = 10  # csv ends the last line at the end of the file
                    stop += 1
                end = stop
            tail = bytes(text[end:stop])
            if end:
                self._full.put((text, end))
            if not got:
                self._full.put(None)
                return
            yield


def _parse_rows(
    raw: IO[bytes],
    rest: bytes,
    pieces: _Pieces,
    *,
    sep: int,
    max_value: int,
    chunk_size: int,
    threaded: bool = True,
) -> int:
    """Feed the lines after the header to the kernel block by block; return values per line."""
    scratch = _Scratch(pieces.dtype)
    n_cols = -1
    with _LineBlocks(raw, rest, chunk_size, threaded=threaded) as blocks:
        for text, end in blocks:
            view, words = np.frombuffer(text, np.uint8), _words(text)
            scratch.fit(end)
            names, row_nnz, indices, data = scratch.arrays
            status, rows, nnz, n_cols = _scan(
                view, words, end, sep, n_cols, max_value, names, row_nnz, indices, data
            )
            del view, words  # the inflating thread grows this buffer when a line needs it
            if status != _OK:
                raise Fallback("unusual line")
            try:
                pieces.names.extend(
                    text[s:e].decode("utf-8").strip() for s, e in names[:rows].tolist()
                )
            except UnicodeDecodeError:
                raise Fallback("row name not UTF-8") from None
            pieces.row_nnz.append(row_nnz[:rows].copy())
            pieces.indices.append(indices[:nnz].copy())
            pieces.data.append(data[:nnz].copy())
    return n_cols


def _concat(pieces: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Concatenate and empty ``pieces`` (so the pieces and the result overlap only once)."""
    out = np.concatenate(pieces) if pieces else np.empty(0, dtype)
    pieces.clear()
    return out
