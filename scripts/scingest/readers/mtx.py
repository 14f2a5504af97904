"""Matrix Market readers: 10x matrix folders, prefixed 10x triplets, plain .mtx with names.

All three read the matrix with :func:`scipy.io.mmread` (the fast_matrix_market backend of
scipy >= 1.12) and the names with pandas. ``scanpy.read_10x_mtx`` reads the same way but
knows only uncompressed CellRanger 2 and gzipped CellRanger 3 names, silently drops
feature types other than Gene Expression, does not compare the matrix's shape with its
name files, and returns CSC; the conformance tests check that our result equals scanpy's
on real CellRanger folders.
"""

from __future__ import annotations

import csv
import logging
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from ..compat import mmread
from ..errors import ScingestError
from ..files import decompression_errors, open_binary
from ..formats import mtx_name_files, tenx_files, tenx_folder, triplet_files
from ..options import Orientation
from ._features import RawCounts, check_counts
from ._orientation import resolve

logger = logging.getLogger(__name__)


def read_tenx_mtx(
    path: str | PathLike[str],
    *,
    genome: str | None = None,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """Read a CellRanger matrix folder (v2 ``genes.tsv`` or v3 ``features.tsv``, gz or not).

    Parameters
    ----------
    path
        The folder; may also be a CellRanger 2 ``filtered_gene_bc_matrices`` folder with
        one genome subfolder, or several with ``genome`` naming one.
    genome
        The genome subfolder to read, when there are several.
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        For missing or unreadable files, a matrix whose shape does not fit the names files,
        and values that are not counts.
    """
    files = tenx_files(tenx_folder(path, genome=genome))
    return _read_tenx(files, dtype=dtype, allow_non_integer=allow_non_integer)


def read_tenx_triplet(
    path: str | PathLike[str], *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read a prefixed 10x triplet from its matrix file (``GSM1_A_matrix.mtx.gz``).

    Parameters
    ----------
    path
        The matrix file; its barcodes and features (or genes) files sit beside it with the
        same prefix.
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        As :func:`read_tenx_mtx`.
    """
    return _read_tenx(triplet_files(path), dtype=dtype, allow_non_integer=allow_non_integer)


def read_mtx(
    path: str | PathLike[str],
    *,
    orientation: Orientation = "auto",
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """Read a plain Matrix Market file with its ``<name>_rows`` and ``<name>_cols`` files.

    A names file with two or more columns gives gene ids (first) and symbols (second).

    Parameters
    ----------
    path
        The ``.mtx`` file (gzipped or not).
    orientation
        ``genes_x_cells``: rows are genes and columns cells; ``auto`` tells from the names
        (see :func:`scingest.readers.read_counts`).
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts (cells x genes), barcodes, symbols and, where given, ids.

    Raises
    ------
    ScingestError
        For missing names files, an orientation the names do not tell or contradict, a
        matrix whose shape does not fit the names, and values that are not counts.
    """
    files = mtx_name_files(path)
    tables = {role: _read_table(files[role]) for role in ("rows", "cols")}

    def names(table: pd.DataFrame) -> np.ndarray:
        return table.iloc[:, 1 if table.shape[1] >= 2 else 0].to_numpy(dtype=str)

    orientation = resolve(
        path,
        rows=names(tables["rows"]),
        cols=names(tables["cols"]),
        orientation=orientation,
        row_label=f"the rows ({files['rows'].name})",
        col_label=f"the columns ({files['cols'].name})",
    )
    genes_role, cells_role = ("rows", "cols")
    if orientation == "cells_x_genes":
        genes_role, cells_role = cells_role, genes_role
    raw = _features_table(files[genes_role], tables[genes_role])
    barcodes = tables[cells_role].iloc[:, 0].to_numpy(dtype=str)
    shape = (len(raw.symbols), len(barcodes))
    if orientation == "cells_x_genes":
        shape = shape[::-1]
    matrix = _read_matrix(Path(path), shape=shape, names=(files["rows"], files["cols"]))
    if orientation == "genes_x_cells":
        matrix = matrix.T
    raw.counts = check_counts(matrix, path, dtype=dtype, allow_non_integer=allow_non_integer)
    raw.barcodes = barcodes
    return raw


def _read_tenx(files: dict[str, Path], *, dtype: str, allow_non_integer: bool) -> RawCounts:
    raw = _features_table(files["features"])
    barcodes = _barcodes(files["barcodes"])
    matrix = _read_matrix(
        files["matrix"],
        shape=(len(raw.symbols), len(barcodes)),
        names=(files["features"], files["barcodes"]),
    )
    raw.counts = check_counts(
        matrix.T, files["matrix"], dtype=dtype, allow_non_integer=allow_non_integer
    )
    raw.barcodes = barcodes
    return raw


def _read_matrix(path: Path, *, shape: tuple[int, int], names: tuple[Path, Path]) -> sp.coo_matrix:
    """Read a coordinate Matrix Market file after checking its header against ``shape``."""
    with decompression_errors(path):
        try:
            rows, cols, _, layout, field, _ = scipy.io.mminfo(str(path))
        except (ValueError, IndexError, UnicodeDecodeError) as err:
            raise ScingestError(
                f"not a Matrix Market file ({err}): expected a '%%MatrixMarket matrix "
                "coordinate' header",
                path=path,
            ) from None
        if layout != "coordinate" or field not in ("integer", "real", "double"):
            raise ScingestError(
                f"Matrix Market {layout} {field}: expected a coordinate matrix of integer or "
                "real counts",
                path=path,
            )
        if (rows, cols) != shape:
            raise ScingestError(
                f"the matrix is {rows} x {cols} but {names[0].name} has {shape[0]} names and "
                f"{names[1].name} has {shape[1]}: expected one row per name in {names[0].name} "
                f"and one column per name in {names[1].name}",
                path=path,
            )
        try:
            matrix = mmread(path)
        except (ValueError, IndexError) as err:
            raise ScingestError(
                f"cannot read the Matrix Market entries ({err}): expected {rows} x {cols} "
                "coordinate entries (truncated file?)",
                path=path,
            ) from None
    return sp.coo_matrix(matrix)


def _read_table(path: Path) -> pd.DataFrame:
    """A headerless tab-separated names file as strings (gzipped or not)."""
    with open_binary(path) as fh, decompression_errors(path):
        try:
            table = pd.read_csv(
                fh, sep="\t", header=None, dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
            )
        except pd.errors.EmptyDataError:
            raise ScingestError("empty names file: expected one name per line", path=path) from None
    return table


def _barcodes(path: Path) -> np.ndarray:
    """The first column of a barcodes file."""
    return _read_table(path).iloc[:, 0].to_numpy(dtype=str)


def _features_table(path: Path, table: pd.DataFrame | None = None) -> RawCounts:
    """Ids, symbols and feature types from a 10x features/genes file (1, 2 or 3+ columns).

    One column gives names only; two give id and symbol (CellRanger 2); three or more give
    id, symbol and feature type (CellRanger 3). ``table`` is the file already read.
    """
    table = _read_table(path) if table is None else table
    n = table.shape[1]
    ids = table.iloc[:, 0].to_numpy(dtype=str) if n >= 2 else None
    symbols = table.iloc[:, 1 if n >= 2 else 0].to_numpy(dtype=str)
    types = table.iloc[:, 2].to_numpy(dtype=str) if n >= 3 else None
    return RawCounts(
        counts=sp.csr_matrix((0, 0)),
        barcodes=np.array([]),
        symbols=symbols,
        ids=ids,
        feature_types=types,
    )
