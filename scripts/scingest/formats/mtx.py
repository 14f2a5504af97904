"""Plain Matrix Market files (``mtx``) with their row and column names files beside them.

``counts.mtx`` (or ``counts.mtx.gz``) has its row names in ``counts.mtx_rows`` and its
column names in ``counts.mtx_cols`` (each optionally gzipped), the layout of the EBI Single
Cell Expression Atlas downloads; rows are genes or cells as ``orientation`` says (``auto``:
told from the names). Read with :mod:`scingest.readers.matrix_market`.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ..options import Orientation, ReaderOptions
from ._files import MTX, TENX_MATRIX, mtx_name_files, plain_name
from ._format import Fit, Format, Read, Source

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..readers._features import RawCounts


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
        (:class:`scingest.options.ReaderOptions`).
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts (cells x genes), barcodes, symbols and, where given, ids.

    Raises
    ------
    ScingestError
        For missing names files, an orientation the names do not tell or contradict, a
        matrix whose shape does not fit the names, and values that are not counts.
    """
    return _read_mtx(
        Path(path),
        mtx_name_files(path),
        orientation=orientation,
        dtype=dtype,
        allow_non_integer=allow_non_integer,
    )


def _read_mtx(
    path: Path, files: dict[str, Path], *, orientation: str, dtype: str, allow_non_integer: bool
) -> RawCounts:
    from ..readers._features import check_counts
    from ..readers._orientation import resolve
    from ..readers.matrix_market import features_table, read_matrix, read_table

    tables = {role: read_table(files[role]) for role in ("rows", "cols")}

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
    raw = features_table(files[genes_role], tables[genes_role])
    barcodes = tables[cells_role].iloc[:, 0].to_numpy(dtype=str)
    shape = (len(raw.symbols), len(barcodes))
    if orientation == "cells_x_genes":
        shape = shape[::-1]
    matrix = read_matrix(path, shape=shape, names=(files["rows"], files["cols"]))
    if orientation == "genes_x_cells":
        matrix = matrix.T
    raw.counts = check_counts(matrix, path, dtype=dtype, allow_non_integer=allow_non_integer)
    raw.barcodes = barcodes
    return raw


def _detect(path: Path) -> Fit:
    is_mtx = path.is_file() and MTX.search(path.name) is not None
    return Fit.NAME if is_mtx and mtx_name_files(path, required=False) is not None else Fit.NONE


def _hint(path: Path) -> str | None:
    if not path.is_file() or MTX.search(path.name) is None or TENX_MATRIX.match(path.name):
        return None
    stem = plain_name(path)
    return (
        "a Matrix Market file, but not named <prefix>matrix.mtx[.gz] (10x_triplet) "
        f"and without {stem}_rows/{stem}_cols beside it (mtx)"
    )


def _resolve(path: Path, options: ReaderOptions) -> Source:
    parts = mtx_name_files(path)
    return Source(path, path, [path, *parts.values()], parts)


def _read(source: Source, options: ReaderOptions) -> Read:
    counts = _read_mtx(
        source.path,
        source.parts,
        orientation=options.orientation,
        dtype=options.dtype,
        allow_non_integer=options.allow_non_integer,
    )
    return Read(counts)


FORMATS = (
    Format(
        "mtx",
        "plain Matrix Market file with name files beside it (counts.mtx, "
        "counts.mtx_rows, counts.mtx_cols; gzipped or not)",
        detect=_detect,
        resolve=_resolve,
        read=_read,
        options=frozenset({"orientation"}),
        hint=_hint,
    ),
)
