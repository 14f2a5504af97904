"""Dense text count matrices (CSV/TSV, gzipped or not), the format of GEO exports.

GEO's convention is genes x cells: the first column holds gene names and the header holds
barcodes. Real exports vary, and all of these are read the same way: quoted or unquoted
names, an empty or named first header cell (or a header one field short, as R's
``write.csv`` without ``row.names`` label writes), CRLF line endings, a UTF-8 byte-order mark,
and integral floats such as ``3.0``.

Two parsers share this module's contract. :mod:`scingest.readers._fastdense` (ISA-L
inflate in blocks and a numba kernel) reads the common shape of these files at close to the
speed of decompression (``bench/run.py reader``); anything unusual, and every error,
makes it step aside, and :func:`_parse` here, the simple reference implementation, reads
the file again and words the error. Both give the same matrix and names
(``tests/unit/test_dense_fast.py``).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import itertools
import logging
import re
import threading
from collections.abc import Callable
from os import PathLike
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..errors import ScingestError
from ..files import decompression_errors, open_binary
from ..options import Orientation
from ._features import RawCounts, log_non_integer, warn_inexact_float32
from ._orientation import id_hits, resolve

try:  # numba is a scanpy dependency; without it every file takes the simple path
    from . import _fastdense
except ImportError:  # pragma: no cover
    _fastdense = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

#: Header labels of name columns (gene_id, gene_name, Symbol, Geneid, ...).
#: Characters that separate values in some text matrix: a line holding none of them holds
#: one value.
_SEPARATORS = re.compile(r"[,\t;| ]")
_NAME_LABEL = re.compile(r"(?i)^(?:gene|feature|ensembl|symbol|name|id$|id_|description)")


def read_dense(
    path: str | PathLike[str],
    *,
    sep: str = ",",
    orientation: Orientation = "auto",
    dtype: str = "float32",
    allow_non_integer: bool = False,
    fast: bool = True,
    block_size: int | None = None,
    threads: int | None = None,
) -> RawCounts:
    """Read a dense text count matrix: CSR counts, cells x genes, and the names.

    A second text column (``gene_id,gene_name,<cells>``) gives ids (first) and symbols
    (second). The options are checked by :func:`scingest.readers.read_counts`, which
    also assembles the result into AnnData.

    Parameters
    ----------
    path
        The text file, gzipped or not.
    sep
        The expected separator; a file whose first lines have none of it but hold spaces
        is read as whitespace-separated (R's ``write.table``).
    orientation, dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.
    fast
        Try the fast parser first (it hands anything unusual to the simple one); False
        uses only the simple parser.
    block_size
        The fast parser's bytes per block (None: its default; small values exist for
        tests of lines split across blocks).
    threads
        The CPUs the read may keep busy: ``1`` reads in the calling thread alone, ``2``
        adds one thread that inflates ahead (and writes half the transpose), ``None`` or
        more also imports anndata in a third thread during the parse.

    Returns
    -------
    The counts (cells x genes), barcodes, gene symbols and, with two name columns, ids.

    Raises
    ------
    ScingestError
        Naming file, line and column for a value that is not a finite, non-negative
        (integer, unless ``allow_non_integer``) number, for a row whose length differs
        from the header's, for an empty or header-only file, and when the orientation
        cannot be told.
    """
    path = Path(path)
    dtype = np.dtype(dtype)
    sep = _sniff_separator(path, sep)
    found: list[str] = []

    def transpose_for(header: list[str], row_names: list[str]) -> bool:
        found.append(resolve(path, rows=row_names, cols=header, orientation=orientation))
        return found[-1] == "genes_x_cells"  # the file's rows are genes

    parsed = None
    if fast and _fastdense is not None:
        # numba loads the kernel (importing what it needs) before anndata starts loading
        # in a thread, so the two never import the same module at once
        _fastdense.load_kernel()
        loading = _import_in_background("anndata") if threads is None or threads > 2 else None
        try:
            parsed = _parse_fast(
                path,
                sep=sep,
                dtype=dtype,
                block_size=block_size,
                transpose=transpose_for,
                threads=threads,
            )
        finally:
            if loading is not None:
                loading.join()
    ids = None
    if parsed is not None:
        header, row_names, counts = parsed  # cells x genes already
        transpose = found[-1] == "genes_x_cells"
        non_integer = 0  # the fast parser leaves fractions to the simple one
    else:
        header, row_names, matrix, non_integer, ids = _parse_simple(
            path, sep=sep, dtype=dtype, allow_non_integer=allow_non_integer
        )
        if ids is not None:
            if orientation == "cells_x_genes":
                raise ScingestError(
                    "orientation is cells_x_genes but the lines start with two names (e.g. "
                    f"{ids[0]!r}, {row_names[0]!r}), as gene id and gene name do: expected "
                    "one name per line for cells; set orientation: genes_x_cells (or auto)",
                    path=path,
                )
            transpose = True
            logger.info(
                "%s: two name columns: gene ids (e.g. %s) and symbols (e.g. %s)",
                path,
                ids[0],
                row_names[0],
            )
        else:
            transpose = transpose_for(header, row_names)
        counts = matrix.T.tocsr() if transpose else matrix
    if non_integer:
        log_non_integer(path, non_integer)
    if counts.nnz:
        warn_inexact_float32(counts.data.max(), path, dtype=dtype)
    genes, cells = (row_names, header) if transpose else (header, row_names)
    return RawCounts(
        counts=counts,
        barcodes=np.asarray(cells, dtype=str),
        symbols=np.asarray(genes, dtype=str),
        ids=None if ids is None else np.asarray(ids, dtype=str),
    )


def _sniff_separator(path: Path, sep: str) -> str:
    """``sep``, or ``" "`` when the first two lines (after ``#`` comments) lack ``sep`` and
    the other usual separator but hold spaces: R's ``write.table`` default.

    Problems opening or inflating the file are left to the parsers, which word them.
    """
    lines: list[str] = []
    try:
        with open_binary(path) as raw:
            while len(lines) < 2:
                line = raw.readline(1 << 24)
                if not line:
                    break
                text = line.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
                if text and not text.startswith("#"):
                    lines.append(text)
    except (OSError, EOFError, ValueError, ScingestError):
        return sep
    others = {",", "\t"} - {sep}
    if (
        lines
        and not any(sep in ln or any(o in ln for o in others) for ln in lines)
        and any(" " in ln for ln in lines)
    ):
        logger.info("%s: no %r in the first lines: read as whitespace-separated", path, sep)
        return " "
    return sep


def _import_in_background(module: str) -> threading.Thread:
    """Start importing ``module`` in a thread; join it before importing it here.

    Importing anndata (with pandas, h5py and zarr) holds the GIL for a noticeable part of
    a fresh process's read (``bench/run.py reader`` times the whole process); the fast
    parser spends most of its time in ISA-L and numba with the GIL released, so on a
    second core the import costs little. A failed import is left for the caller's own
    import to raise.
    """

    def run() -> None:
        with contextlib.suppress(Exception):  # the caller's own import raises it, in context
            importlib.import_module(module)

    thread = threading.Thread(target=run, name=f"scingest-import-{module}", daemon=True)
    thread.start()
    return thread


def _parse_fast(
    path: Path,
    *,
    sep: str,
    dtype: np.dtype,
    block_size: int | None,
    transpose: Callable[[list[str], list[str]], bool],
    threads: int | None = None,
) -> _fastdense.Parsed | None:
    """The fast parser's result, or None when it steps aside (then the simple one runs)."""
    kwargs = {} if block_size is None else {"block_size": block_size}
    try:
        return _fastdense.parse_fast(
            path, sep=sep, dtype=dtype, transpose=transpose, threads=threads, **kwargs
        )
    except _fastdense.Fallback as why:
        logger.info("%s: read by the simple parser (the fast one stepped aside: %s)", path, why)
        return None


def _parse_simple(
    path: Path, *, sep: str, dtype: np.dtype, allow_non_integer: bool
) -> tuple[list[str], list[str], sp.csr_matrix, int, list[str] | None]:
    """The reference parser: the csv module over a decoded text stream."""
    with open_binary(path) as raw, decompression_errors(path):
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        try:
            return _parse(text, path, sep=sep, dtype=dtype, allow_non_integer=allow_non_integer)
        except UnicodeDecodeError as err:
            raise ScingestError(
                f"not UTF-8 text ({err.reason} at byte {err.start}): expected a text matrix",
                path=path,
            ) from None


def _labels_two_names(header: list[str], n_fields: int) -> bool:
    """Whether the header fits lines of two names and ``n_fields - 2`` values: no labels, or
    labels such as ``gene_id,gene_name`` (empty or named) over the name columns."""
    labels = header[: len(header) - (n_fields - 2)] if len(header) >= n_fields - 2 else None
    if labels is None or len(labels) > 2:
        return False
    return all(not h or _NAME_LABEL.match(h) for h in labels)


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _parse(
    text: io.TextIOBase, path: Path, *, sep: str, dtype: np.dtype, allow_non_integer: bool
) -> tuple[list[str], list[str], sp.csr_matrix, int, list[str] | None]:
    """Parse rows into CSR (rows as in the file), with the header's column names.

    Returns the header, the row names, the matrix, the number of non-integer values and,
    when the lines start with two names (gene id and symbol), the first names (else None;
    the row names are then the second names).
    """
    if sep == " ":  # whitespace-separated: runs of spaces or tabs, no leading or trailing ones
        lines = (re.sub(r"[ \t]+", " ", ln.strip(" \t\r\n")) + "\n" for ln in text)
        reader = csv.reader(lines, delimiter=" ", quotechar='"')
    else:
        reader = csv.reader(text, delimiter=sep, quotechar='"', skipinitialspace=False)

    def next_line() -> list[str] | None:
        fields = next(reader, None)
        while fields is not None and not any(f.strip() for f in fields):
            fields = next(reader, None)  # blank lines
        return fields

    header = next_line()
    pushed: list[list[str]] = []
    comments = 0
    while header is not None and header[0].lstrip().startswith("#"):
        following = next_line()
        if following is None or len(header) in (len(following), len(following) - 1):
            pushed = [] if following is None else [following]
            break  # a header whose first name starts with "#"
        comments += 1
        header = following
    if comments:
        logger.info("%s: skipped %d comment line(s) before the header", path, comments)
    if header is None:
        raise ScingestError(
            "the file is empty: expected a header line of barcodes (or genes) and then one "
            "line per gene (or cell)",
            path=path,
        )
    header = [h.strip() for h in header]
    if len(header) == 1 and sep not in ("\t",) and "\t" in header[0]:
        raise ScingestError(
            "the header has no commas but has tabs: this looks tab-separated; set format: tsv",
            path=path,
            line=1,
        )
    if len(header) == 1 and sep == "\t" and "," in header[0]:
        raise ScingestError(
            "the header has no tabs but has commas: this looks comma-separated; set format: csv",
            path=path,
            line=1,
        )
    row_names: list[str] = []
    id_names: list[str] | None = None
    n_names = 1  # name fields per line: 2 for gene id and symbol
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    n_cols: int | None = None
    non_integer = 0
    for fields in itertools.chain(pushed, reader):
        line = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line (e.g. a trailing newline pair)
        if n_cols is None:
            if (
                len(fields) == 1
                and len(header) == 1
                and not _SEPARATORS.search(header[0] + fields[0])
            ):
                raise ScingestError(
                    f"the file holds no cells: the header and this line hold one name each "
                    f"({fields[0][:40]!r}) and no counts, and no separator is in them (a gene "
                    "list without count columns, or a sample with 0 cells). Expected a name "
                    "and then one count per cell; leave this sample out",
                    path=path,
                    line=line,
                )
            if len(fields) == 1:
                what = "whitespace" if sep == " " else repr(sep)
                raise ScingestError(
                    f"this line has one field: no {what} separates its values (expected a "
                    "name and then one count per column; for comma-separated text set "
                    "format: csv, for tab- or space-separated text format: tsv)",
                    path=path,
                    line=line,
                )
            if (
                len(fields) > 2
                and not _is_number(fields[1])
                and all(_is_number(f) for f in fields[2:12])
                and _labels_two_names(header, len(fields))
            ):
                n_names, id_names = 2, []  # gene id and gene name
            n_cols = len(fields) - n_names
            if len(header) in (n_cols + 1, n_cols + 2) and len(header) <= n_cols + n_names:
                header = header[len(header) - n_cols :]  # header cells label the names
            elif len(header) != n_cols:
                raise ScingestError(
                    f"the header has {len(header)} fields but this line has {len(fields)}: "
                    "expected a header with one name per column (optionally after a label "
                    "for the name column; lines starting with # before it are skipped as "
                    "comments)",
                    path=path,
                    line=line,
                )
        elif len(fields) - n_names != n_cols:
            raise ScingestError(
                f"expected {n_cols + n_names} fields like the lines before, found "
                f"{len(fields)} (ragged row: a truncated or malformed file?)",
                path=path,
                line=line,
            )
        values = _to_numbers(fields, path, line, skip=n_names)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ScingestError(
                f"value {fields[j + n_names]!r} is not a count: expected a finite, "
                "non-negative number",
                path=path,
                line=line,
                column=j + n_names + 1,
            )
        frac = values != np.floor(values)
        if frac.any():
            j = int(np.flatnonzero(frac)[0])
            non_integer += int(frac.sum())
            if not allow_non_integer:
                raise ScingestError(
                    f"value {fields[j + n_names]!r} is not an integer count: expected raw "
                    "counts (set allow_non_integer: true to accept normalised values)",
                    path=path,
                    line=line,
                    column=j + n_names + 1,
                )
        nz = np.flatnonzero(values)
        indices.append(nz.astype(np.int32))
        data.append(values[nz].astype(dtype))
        indptr.append(indptr[-1] + len(nz))
        row_names.append(fields[n_names - 1].strip())
        if id_names is not None:
            id_names.append(fields[0].strip())
    if n_cols is None:
        raise ScingestError(
            "the file has a header but no data lines: expected one line per gene (or cell)",
            path=path,
        )
    matrix = sp.csr_matrix(
        (
            np.concatenate(data) if data else np.empty(0, dtype),
            np.concatenate(indices) if indices else np.empty(0, np.int32),
            np.asarray(indptr, dtype=np.int64),
        ),
        shape=(len(row_names), n_cols),
    )
    if id_names is not None and id_hits(id_names) < id_hits(row_names):
        id_names, row_names = row_names, id_names  # the symbols came first
    return header, row_names, matrix, non_integer, id_names


def _to_numbers(fields: list[str], path: Path, line: int, *, skip: int = 1) -> np.ndarray:
    """The row's values (after ``skip`` names) as float64; a field that is no number is an
    error naming its column."""
    try:
        return np.asarray(fields[skip:], dtype=np.float64)
    except ValueError:
        for j, field in enumerate(fields[skip:]):
            try:
                float(field)
            except ValueError:
                raise ScingestError(
                    f"value {field!r} is not a number: expected a count",
                    path=path,
                    line=line,
                    column=j + skip + 1,
                ) from None
        raise  # pragma: no cover - numpy refused what float() accepts
