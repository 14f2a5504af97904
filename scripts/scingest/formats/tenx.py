"""10x Matrix Market inputs: CellRanger matrix folders (``10x_mtx``) and prefixed triplets of
GEO flat folders (``10x_triplet``), v2 ``genes.tsv`` or v3 ``features.tsv``, gzipped or not.

Read with the Matrix Market helpers of :mod:`scingest.readers.matrix_market`.
``scanpy.read_10x_mtx`` reads the same folders but knows only uncompressed CellRanger 2 and
gzipped CellRanger 3 names, silently drops feature types other than Gene Expression, does
not compare the matrix's shape with its name files, and returns CSC; the conformance tests
check that our result equals scanpy's on real CellRanger folders.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ..options import ReaderOptions
from ._files import (
    MTX,
    TENX_MATRIX,
    TENX_STEMS,
    mtx_name_files,
    one_of,
    tenx_files,
    tenx_folder,
    tenx_raw,
    triplet_files,
)
from ._format import Fit, Format, Read, Source

if TYPE_CHECKING:
    from ..readers._features import RawCounts


def read_tenx(files: dict[str, Path], *, dtype: str, allow_non_integer: bool) -> RawCounts:
    """Read a 10x matrix from its files (``matrix``, ``barcodes``, ``features``), cells x
    features: what 10x folders, triplets and the tools' folders of them share.

    Parameters
    ----------
    files
        The three files (:func:`scingest.formats._files.tenx_files`).
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        For unreadable files, a matrix whose shape does not fit the names files, and values
        that are not counts.
    """
    from ..readers._features import check_counts
    from ..readers.matrix_market import features_table, read_matrix, read_names

    raw = features_table(files["features"])
    barcodes = read_names(files["barcodes"])
    matrix = read_matrix(
        files["matrix"],
        shape=(len(raw.symbols), len(barcodes)),
        names=(files["features"], files["barcodes"]),
    )
    raw.counts = check_counts(
        matrix.T, files["matrix"], dtype=dtype, allow_non_integer=allow_non_integer
    )
    raw.barcodes = barcodes
    return raw


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
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        For missing or unreadable files, and as :func:`read_tenx`.
    """
    files = tenx_files(tenx_folder(path, genome=genome))
    return read_tenx(files, dtype=dtype, allow_non_integer=allow_non_integer)


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
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        As :func:`read_tenx_mtx`.
    """
    return read_tenx(triplet_files(path), dtype=dtype, allow_non_integer=allow_non_integer)


def read_parts(source: Source, options: ReaderOptions) -> Read:
    """The :attr:`~scingest.formats.Format.read` of an input resolved to 10x files."""
    counts = read_tenx(
        source.parts, dtype=options.dtype, allow_non_integer=options.allow_non_integer
    )
    return Read(counts)


def _detect_folder(path: Path) -> Fit:
    if not path.is_dir():
        return Fit.NONE
    subs = [p for p in path.iterdir() if p.is_dir()]
    found = any(one_of(p, TENX_STEMS["matrix"]) is not None for p in [path, *subs])
    return Fit.NAME if found else Fit.NONE


def _folder_hint(path: Path) -> str | None:
    if path.is_dir():
        return "a folder without matrix.mtx[.gz] in it or in a subfolder (10x_mtx)"
    return None


def _resolve_folder(path: Path, options: ReaderOptions) -> Source:
    parts = tenx_files(tenx_folder(path, genome=options.genome))
    raw = tenx_raw(path)
    files = list(parts.values())
    if raw is not None and raw.sibling is not None:  # the tool's cell calls, beside it
        files.append(raw.sibling)
    return Source(path, path, files, parts, raw=raw)


def _detect_triplet(path: Path) -> Fit:
    is_mtx = path.is_file() and MTX.search(path.name) is not None
    if not is_mtx or TENX_MATRIX.match(path.name) is None:
        return Fit.NONE
    return Fit.NONE if mtx_name_files(path, required=False) is not None else Fit.NAME


def _resolve_triplet(path: Path, options: ReaderOptions) -> Source:
    parts = triplet_files(path)
    return Source(path, path, list(parts.values()), parts)


FORMATS = (
    Format(
        "10x_mtx",
        "CellRanger matrix folder (matrix.mtx, barcodes.tsv, features.tsv or genes.tsv; "
        "gzipped or not)",
        detect=_detect_folder,
        resolve=_resolve_folder,
        read=read_parts,
        options=frozenset({"genome"}),
        hint=_folder_hint,
        run_folder=True,
    ),
    Format(
        "10x_triplet",
        "prefixed 10x files in a flat folder, path = the matrix "
        "(GSM1_A_matrix.mtx.gz beside GSM1_A_barcodes.tsv.gz and GSM1_A_features.tsv.gz)",
        detect=_detect_triplet,
        resolve=_resolve_triplet,
        read=read_parts,
    ),
)
