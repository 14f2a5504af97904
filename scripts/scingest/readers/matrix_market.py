"""Matrix Market reading shared by the formats that hold a coordinate matrix beside names
files: 10x folders and triplets, plain ``.mtx``, kallisto|bustools, alevin and alevin-fry.

The matrix is read with :func:`scipy.io.mmread` (the fast_matrix_market backend of scipy
>= 1.12) after its header is checked against the names files, and the names with pandas.
``scanpy.read_10x_mtx`` and ``scanpy.read_mtx`` read the same files, but check neither the
matrix's shape against its names files nor give an error naming a truncated or
gzip-misnamed file; the conformance tests check that our results equal scanpy's.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from ..compat import mmread
from ..errors import ScingestError
from ..files import decompression_errors, open_binary
from ._features import RawCounts


def read_matrix(path: Path, *, shape: tuple[int, int], names: tuple[Path, Path]) -> sp.coo_matrix:
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


def read_table(path: Path) -> pd.DataFrame:
    """A headerless tab-separated names file as strings (gzipped or not)."""
    with open_binary(path) as fh, decompression_errors(path):
        try:
            table = pd.read_csv(
                fh, sep="\t", header=None, dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE
            )
        except pd.errors.EmptyDataError:
            raise ScingestError("empty names file: expected one name per line", path=path) from None
    return table


def read_names(path: Path) -> np.ndarray:
    """The first column of a names file (barcodes, gene ids), as strings."""
    return read_table(path).iloc[:, 0].to_numpy(dtype=str)


def features_table(path: Path, table: pd.DataFrame | None = None) -> RawCounts:
    """Ids, symbols and feature types from a 10x features/genes file (1, 2 or 3+ columns).

    One column gives names only; two give id and symbol (CellRanger 2); three or more give
    id, symbol and feature type (CellRanger 3). ``table`` is the file already read.
    """
    table = read_table(path) if table is None else table
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
