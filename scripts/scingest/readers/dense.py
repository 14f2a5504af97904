"""Dense text count matrices (CSV/TSV, gzipped or not), the format of GEO exports.

GEO's convention is genes x cells: the first column holds gene names and the header holds
barcodes. Real exports vary, and all of these are read the same way: quoted or unquoted
names, an empty or named first header cell (or a header one field short, as R's
``write.csv`` without ``row.names`` label writes), CRLF line endings, a UTF-8 byte-order mark,
and integral floats such as ``3.0``.

Two parsers share this module's contract. :mod:`scingest.readers._fastdense` (chunked
ISA-L inflate and a numba kernel) reads the common shape of these files at close to the
speed of decompression (``bench/run.py reader``); anything unusual, and every error,
makes it step aside, and :func:`_parse` here, the simple reference implementation, reads
the file again and words the error. Both give the same matrix and names
(``tests/test_dense_fast.py``).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import logging
import re
import threading
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..errors import ScingestError
from ..files import decompression_errors, open_binary

if TYPE_CHECKING:
    import anndata as ad

try:  # numba is a scanpy dependency; without it every file takes the simple path
    from . import _fastdense
except ImportError:  # pragma: no cover
    _fastdense = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_BARCODE = re.compile(r"^[ACGTN]{8,}(-\d+)?$")
#: float32 represents every integer up to 2**24 exactly.
FLOAT32_EXACT = 2**24


def read_dense(
    path: str | PathLike[str],
    *,
    sep: str = ",",
    orientation: str = "genes_x_cells",
    dtype: str = "float32",
    allow_non_integer: bool = False,
    fast: bool = True,
    chunk_size: int | None = None,
    threads: int | None = None,
) -> ad.AnnData:
    """Read a dense text count matrix into AnnData with CSR counts, cells x genes.

    See :func:`scingest.readers.read_counts` for the parameters. ``fast`` tries the fast
    parser first (it hands anything unusual to the simple one); ``False`` uses only the
    simple parser. ``chunk_size`` is the fast parser's bytes per step (``None``: its
    default; small values exist for tests of lines split across chunks). ``threads``: the
    CPUs the read may keep busy; ``1`` reads in the calling thread alone, ``2`` adds one
    thread that inflates ahead (and writes half the transpose), ``None`` or more also
    imports anndata in a third thread during the parse. Raises
    :class:`~scingest.ScingestError` naming file, line and column for a value that is not a
    finite, non-negative (integer, unless ``allow_non_integer``) number, for a row whose
    length differs from the header's, and for an empty or header-only file.
    """
    if orientation not in ("genes_x_cells", "cells_x_genes"):
        raise ScingestError(
            f"orientation must be genes_x_cells or cells_x_genes, not {orientation!r}"
        )
    path = Path(path)
    dtype = np.dtype(dtype)
    transpose = orientation == "genes_x_cells"  # the file's rows are genes
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
                chunk_size=chunk_size,
                transpose=transpose,
                threads=threads,
            )
        finally:
            if loading is not None:
                loading.join()
    if parsed is not None:
        header, row_names, counts = parsed  # cells x genes already
        non_integer = 0  # the fast parser leaves fractions to the simple one
    else:
        header, row_names, matrix, non_integer = _parse_simple(
            path, sep=sep, dtype=dtype, allow_non_integer=allow_non_integer
        )
        counts = matrix.T.tocsr() if transpose else matrix
    if non_integer:
        logger.warning(
            "%s: %d non-integer value(s) accepted (allow_non_integer is set): these may "
            "not be raw counts",
            path,
            non_integer,
        )
    genes, cells = (row_names, header) if transpose else (header, row_names)
    _check_orientation(path, genes=genes, cells=cells, orientation=orientation)
    if counts.nnz and dtype == np.float32 and counts.data.max() >= FLOAT32_EXACT:
        logger.warning(
            "%s: counts up to %d exceed 2**24, which float32 cannot hold exactly: set dtype: int32",
            path,
            int(counts.data.max()),
        )
    from ._common import build_anndata

    return build_anndata(counts, cells, genes)


def _import_in_background(module: str) -> threading.Thread:
    """Start importing ``module`` in a thread; join it before importing it here.

    Importing anndata (with pandas, h5py and zarr) holds the GIL for about 0.6 s; the fast
    parser spends most of its time in ISA-L and numba with the GIL released, so on a second
    core the import costs a fresh process little. A failed import is left for the
    caller's own import to raise.
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
    chunk_size: int | None,
    transpose: bool,
    threads: int | None = None,
) -> tuple[list[str], list[str], sp.csr_matrix] | None:
    """The fast parser's result, or None when it steps aside (then the simple one runs)."""
    kwargs = {} if chunk_size is None else {"chunk_size": chunk_size}
    try:
        return _fastdense.parse_fast(
            path, sep=sep, dtype=dtype, transpose=transpose, threads=threads, **kwargs
        )
    except _fastdense.Fallback as why:
        logger.info("%s: read by the simple parser (the fast one stepped aside: %s)", path, why)
        return None


def _parse_simple(
    path: Path, *, sep: str, dtype: np.dtype, allow_non_integer: bool
) -> tuple[list[str], list[str], sp.csr_matrix, int]:
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


def _parse(
    text: io.TextIOBase, path: Path, *, sep: str, dtype: np.dtype, allow_non_integer: bool
) -> tuple[list[str], list[str], sp.csr_matrix, int]:
    """Parse rows into CSR (rows as in the file), with the header's column names."""
    reader = csv.reader(text, delimiter=sep, quotechar='"', skipinitialspace=False)
    header = next(reader, None)
    while header is not None and not any(f.strip() for f in header):
        header = next(reader, None)  # leading blank lines
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
    indptr = [0]
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    n_cols: int | None = None
    non_integer = 0
    for fields in reader:
        line = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line (e.g. a trailing newline pair)
        if n_cols is None:
            n_cols = len(fields) - 1
            if len(header) == n_cols + 1:
                header = header[1:]  # first header cell labels the name column
            elif len(header) != n_cols:
                raise ScingestError(
                    f"the header has {len(header)} fields but this line has {len(fields)}: "
                    "expected a header with one name per column (optionally after a label "
                    "for the name column)",
                    path=path,
                    line=line,
                )
        elif len(fields) - 1 != n_cols:
            raise ScingestError(
                f"expected {n_cols + 1} fields like the lines before, found {len(fields)} "
                "(ragged row: a truncated or malformed file?)",
                path=path,
                line=line,
            )
        values = _to_numbers(fields, path, line)
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ScingestError(
                f"value {fields[j + 1]!r} is not a count: expected a finite, non-negative number",
                path=path,
                line=line,
                column=j + 2,
            )
        frac = values != np.floor(values)
        if frac.any():
            j = int(np.flatnonzero(frac)[0])
            non_integer += int(frac.sum())
            if not allow_non_integer:
                raise ScingestError(
                    f"value {fields[j + 1]!r} is not an integer count: expected raw counts "
                    "(set allow_non_integer: true to accept normalised values)",
                    path=path,
                    line=line,
                    column=j + 2,
                )
        nz = np.flatnonzero(values)
        indices.append(nz.astype(np.int32))
        data.append(values[nz].astype(dtype))
        indptr.append(indptr[-1] + len(nz))
        row_names.append(fields[0].strip())
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
    return header, row_names, matrix, non_integer


def _to_numbers(fields: list[str], path: Path, line: int) -> np.ndarray:
    """The row's values as float64; a field that is no number is an error naming its column."""
    try:
        return np.asarray(fields[1:], dtype=np.float64)
    except ValueError:
        for j, field in enumerate(fields[1:]):
            try:
                float(field)
            except ValueError:
                raise ScingestError(
                    f"value {field!r} is not a number: expected a count",
                    path=path,
                    line=line,
                    column=j + 2,
                ) from None
        raise  # pragma: no cover - numpy refused what float() accepts


def _looks_like_barcodes(names: list[str]) -> bool:
    sample = names[:200]
    return bool(sample) and sum(bool(_BARCODE.match(n)) for n in sample) > 0.8 * len(sample)


def _check_orientation(path: Path, *, genes: list[str], cells: list[str], orientation: str) -> None:
    """Refuse a matrix whose gene names look like barcodes while its cell names do not."""
    if _looks_like_barcodes(genes) and not _looks_like_barcodes(cells):
        where = "header" if orientation == "cells_x_genes" else "first column"
        other = "genes_x_cells" if orientation == "cells_x_genes" else "cells_x_genes"
        raise ScingestError(
            f"the gene names (the {where}) look like cell barcodes (e.g. {genes[0]!r}) and the "
            f"cell names do not: the file is probably {other}; set orientation: {other}",
            path=path,
        )
