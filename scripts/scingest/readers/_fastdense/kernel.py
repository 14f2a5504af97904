"""The scan kernel: one block of complete lines in, each row's name bounds and nonzeros out.

:func:`scan` is what the rest of the package calls: it runs the numba kernel
:func:`_scan` over one block and returns a :class:`ScanResult`. The kernel itself takes
its arrays positionally (numba compiles one signature per argument types, and a Python
object of buffers would cost it its ``nogil`` speed); :class:`ScanOutput` names them.
:class:`Rows` collects what the blocks gave, in file order, for the assembly in
:mod:`scingest.readers._fastdense` and :mod:`~scingest.readers._fastdense.transpose`.

``cache=True`` keeps the compiled kernel in numba's on-disk cache (``__pycache__`` beside
this file), which ``python -m scingest.warm`` fills at install time.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

_NL, _CR, _QUOTE, _DOT, _ZERO = 10, 13, 34, 46, 48

#: kernel status codes
_OK, _FALLBACK = 0, 1
#: integers with more digits could exceed float64's exact range (2**53): simple path
_MAX_DIGITS = 15
#: times a byte pair, repeats it four times in a little-endian uint64
_PAIRS = np.uint64(0x0001_0001_0001_0001)


class ScanResult(NamedTuple):
    """What :func:`scan` found in one block."""

    #: False at the first thing outside the common shape (the caller then falls back)
    ok: bool
    #: data lines parsed: the first ``rows`` entries of the output's row arrays
    rows: int
    #: nonzero values stored: the first ``nnz`` entries of its value arrays
    nnz: int
    #: values per line (from the first line when the caller passed -1)
    n_cols: int


class ScanOutput:
    """The kernel's output arrays, reused across blocks and grown with the block.

    A text of ``n`` bytes has at most ``n // 2`` lines and values (each takes a separator
    or line end and a byte of its own), so the arrays are sized from the block's bytes
    rather than by counting its lines first, which would cost a pass of its own.

    Attributes
    ----------
    name_bounds
        Per row: the start and end byte of its name in the block.
    row_nnz
        Per row: its number of nonzero values.
    indices, data
        Per nonzero value, in row order: its column and the value.
    """

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.size = -1
        self.fit(0)

    def fit(self, n_bytes: int) -> None:
        """Grow the arrays to hold the rows and values of a block of ``n_bytes`` bytes."""
        if n_bytes // 2 + 1 > self.size:
            self.size = max(n_bytes // 2 + 1, 2 * self.size)
            self.name_bounds = np.empty((self.size, 2), np.int64)
            self.row_nnz = np.empty(self.size, np.int64)
            self.indices = np.empty(self.size, np.int32)
            self.data = np.empty(self.size, self.dtype)


class Rows:
    """The rows parsed so far, one array per block: names, nonzeros per row, and the
    nonzeros' columns and values."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.names: list[str] = []
        self.row_nnz: list[np.ndarray] = []
        self.indices: list[np.ndarray] = []
        self.data: list[np.ndarray] = []


def scan(
    text: bytearray, end: int, *, sep: int, n_cols: int, max_value: int, out: ScanOutput
) -> ScanResult:
    """Parse the complete lines in ``text[:end]`` into ``out``.

    Parameters
    ----------
    text
        A block from :class:`~scingest.readers._fastdense.blocks.LineBlocks`:
        ``text[end - 1]`` is a line end, and bytes follow ``end`` (the kernel reads a
        byte past a line's values, and 8-byte words, without bounds checks).
    end
        Where the complete lines end.
    sep
        The separator's byte.
    n_cols
        Values per line; -1 takes it from the first line.
    max_value
        The largest value the output dtype holds exactly; a larger one falls back.
    out
        Arrays for the rows and values found; grown here to fit the block.

    Returns
    -------
    Whether the block had the common shape, how many rows and nonzero values it gave
    (the leading entries of ``out``'s arrays) and the values per line.
    """
    out.fit(end)
    status, rows, nnz, n_cols = _scan(
        np.frombuffer(text, np.uint8),
        _words(text),
        end,
        sep,
        n_cols,
        max_value,
        out.name_bounds,
        out.row_nnz,
        out.indices,
        out.data,
    )
    return ScanResult(status == _OK, rows, nnz, n_cols)


def load_kernel() -> None:
    """Load the kernel from numba's cache (compiling it on a first run) by parsing one line.

    Most of a first call's time is numba importing its own modules;
    :func:`scingest.readers.dense.read_dense` makes that call before it starts importing
    anndata in the background, so the two never import the same module at once.
    """
    text = bytearray(b"g,1\n" + bytes(8))
    result = scan(text, 4, sep=ord(","), n_cols=-1, max_value=1, out=ScanOutput(np.float32))
    assert result.ok


def _words(buf: bytearray) -> np.ndarray:
    """Every 8-byte window of ``buf`` as a little-endian uint64, without copying.

    Row ``k`` views the buffer from byte ``k`` in steps of 8 (unaligned loads, which x86
    and ARM64 do at full speed), so the kernel compares four "0," values at once.
    """
    n_words = max(0, (len(buf) - 7) // 8)
    return np.ndarray((8, n_words), np.dtype("<u8"), buffer=buf, strides=(1, 8))


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
    """Parse the complete lines in ``buf[:n]``: :func:`scan` with its arrays positional.

    ``words`` is :func:`_words` of ``buf``: ``words[p & 7, p >> 3]`` holds bytes ``p`` to
    ``p + 7`` as one integer, so a run of zeros is skipped four values at a time.
    Returns ``(status, rows, nonzeros, n_cols)``; status is ``_FALLBACK`` at the first
    thing outside the common shape.
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
                p += 1  # most values of a count matrix are "0,": skip them without the digit loop
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
