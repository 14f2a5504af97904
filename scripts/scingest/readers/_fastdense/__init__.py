"""Fast path of the dense text reader: ISA-L inflate in blocks plus a numba scan kernel.

:func:`parse_fast` reads the common shape of a dense count matrix (a header line, then
lines of a name and unsigned integer counts, optionally written ``3.0``) at close to the
speed of decompression. Anything else, whether unusual but valid (quoted numbers,
exponents, fractions, a lone ``\\r`` line end, blank leading lines, quoted names with
doubled quotes or newlines) or an error (non-numbers, ragged rows, bad UTF-8, a truncated
gzip stream), raises :class:`Fallback`; the caller then re-reads the file with the simple
path in :mod:`scingest.readers.dense`, which stays the reference implementation and words
every error. So this package never needs to explain a bad file, only to recognise one.

A read, top-down:

1. :mod:`.header` reads the header line (skipping ``#`` comments) with the csv module;
2. :mod:`.blocks` inflates the rest in blocks of whole lines, in a thread of its own;
3. :mod:`.kernel` parses each block into row names and the nonzeros' columns and values;
4. :func:`parse_fast` joins the blocks' arrays into CSR, or :mod:`.transpose` writes the
   transpose straight from them (two threads).

``bench/run.py reader`` compares it end to end with ``gzip -dc`` and the tutorial's
pandas loader.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
import scipy.sparse as sp

from ...files import open_binary
from .blocks import BLOCK_SIZE, LineBlocks
from .fallback import Fallback
from .header import read_header
from .kernel import Rows, ScanOutput, load_kernel, scan
from .transpose import transposed

__all__ = ["BLOCK_SIZE", "Fallback", "Parsed", "load_kernel", "parse_fast"]

logger = logging.getLogger(__name__)


class Parsed(NamedTuple):
    """A dense matrix as :func:`parse_fast` read it."""

    #: the header's names, without the name column's label
    header: list[str]
    #: the first field of every data line
    row_names: list[str]
    #: rows as in the file (or, transposed, one row per header name), CSR
    matrix: sp.csr_matrix


def parse_fast(
    path: str | Path,
    *,
    sep: str,
    dtype: np.dtype,
    block_size: int = BLOCK_SIZE,
    transpose: bool | Callable[[list[str], list[str]], bool] = False,
    threads: int | None = None,
) -> Parsed:
    """Parse a dense text matrix into header names, row names and CSR.

    Parameters
    ----------
    path
        The text file, gzipped or not.
    sep
        The separator (one character, not a quote, line end, dot or digit).
    dtype
        The values' dtype (``float32`` or ``int32``); a value it cannot hold falls back.
    block_size
        Bytes inflated per kernel call (small values exist for tests of lines split
        across blocks).
    transpose
        Return one row per header name. May be a function of the header and row names
        that returns whether to transpose (it may raise to refuse the names); it is
        called once all lines are parsed.
    threads
        ``1`` inflates and transposes in the calling thread only; ``None`` or more
        inflates, and writes half the transpose, in a helper thread.

    Returns
    -------
    The header (without a label of the name column), the row names and the matrix.

    Raises
    ------
    Fallback
        For anything outside the common shape, including every input the simple path
        rejects, and decompression errors.
    ScingestError
        Only where the simple path raises the same first (a missing file, a ``.gz``
        name on plain text).
    """
    if len(sep) != 1 or sep in '"\r\n.0123456789':
        raise Fallback("separator")
    if block_size < 1:
        raise ValueError(f"block_size must be positive, not {block_size}")
    dtype = np.dtype(dtype)
    max_value = np.iinfo(np.int32).max if dtype == np.int32 else np.iinfo(np.int64).max
    rows = Rows(dtype)
    threaded = threads != 1
    try:
        with open_binary(path) as raw:
            header, rest, comments = read_header(raw, sep, block_size)
            n_cols = _parse_rows(
                raw,
                rest,
                rows,
                sep=ord(sep),
                max_value=max_value,
                block_size=block_size,
                threaded=threaded,
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
        transpose = transpose(header, rows.names)
    if transpose:
        return Parsed(header, rows.names, transposed(rows, n_cols, threaded=threaded))
    indptr = np.zeros(len(rows.names) + 1, np.int64)
    if rows.row_nnz:
        np.cumsum(np.concatenate(rows.row_nnz), out=indptr[1:])
    matrix = sp.csr_matrix(
        (_concat(rows.data, dtype), _concat(rows.indices, np.int32), indptr),
        shape=(len(rows.names), n_cols),
    )
    return Parsed(header, rows.names, matrix)


def _parse_rows(
    raw: IO[bytes],
    rest: bytes,
    rows: Rows,
    *,
    sep: int,
    max_value: int,
    block_size: int,
    threaded: bool,
) -> int:
    """Feed the lines after the header to the kernel block by block, appending to ``rows``;
    return the values per line (-1 for no data lines)."""
    out = ScanOutput(rows.dtype)
    n_cols = -1
    with LineBlocks(raw, rest, block_size, threaded=threaded) as blocks:
        for text, end in blocks:
            found = scan(text, end, sep=sep, n_cols=n_cols, max_value=max_value, out=out)
            if not found.ok:
                raise Fallback("unusual line")
            n_cols = found.n_cols
            try:
                rows.names.extend(
                    text[s:e].decode("utf-8").strip()
                    for s, e in out.name_bounds[: found.rows].tolist()
                )
            except UnicodeDecodeError:
                raise Fallback("row name not UTF-8") from None
            # copies: the output arrays are reused for the next block
            rows.row_nnz.append(out.row_nnz[: found.rows].copy())
            rows.indices.append(out.indices[: found.nnz].copy())
            rows.data.append(out.data[: found.nnz].copy())
    return n_cols


def _concat(arrays: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """Concatenate and empty ``arrays`` (so the blocks and the result overlap only once)."""
    out = np.concatenate(arrays) if arrays else np.empty(0, dtype)
    arrays.clear()
    return out
