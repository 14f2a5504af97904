"""kallisto | bustools output (``kb``): ``kb count``'s ``cells_x_genes`` files.

``cells_x_genes.mtx`` is cells x genes (10x is genes x cells), with ``.barcodes.txt``,
``.genes.txt`` (gene ids) and, in newer kb, ``.genes.names.txt``; the path is the folder
holding them, the ``kb count`` folder holding ``counts_filtered/`` or
``counts_unfiltered/``, or the ``.mtx`` itself. ``counts_unfiltered`` is a raw matrix
(every barcode kb saw), with ``counts_filtered``'s barcodes as kb's cell calls.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScingestError
from ..options import ReaderOptions
from ._format import Fit, Format, RawInput, Read, Source

if TYPE_CHECKING:
    from ..readers._features import RawCounts

logger = logging.getLogger(__name__)

_DIRS = ("counts_filtered", "counts_unfiltered")
_STEM = "cells_x_genes"


def _folder(path: Path) -> Path | None:
    if path.is_file():
        return path.parent if path.name.startswith(f"{_STEM}.") else None
    if (path / f"{_STEM}.mtx").is_file():
        return path
    for name in _DIRS:
        if (path / name / f"{_STEM}.mtx").is_file():
            return path / name
    return None


def _resolve(path: Path, options: ReaderOptions) -> Source:
    folder = _folder(path)
    if folder is None:
        raise ScingestError(
            f"expected {_STEM}.mtx here or in counts_filtered/ or counts_unfiltered/ "
            "(kallisto | bustools kb count output)",
            path=path,
        )
    parts = {
        "matrix": folder / f"{_STEM}.mtx",
        "barcodes": folder / f"{_STEM}.barcodes.txt",
        "genes": folder / f"{_STEM}.genes.txt",
    }
    missing = [p.name for p in parts.values() if not p.is_file()]
    if missing:
        raise ScingestError(
            f"missing {', '.join(missing)} beside {_STEM}.mtx: kb count writes the matrix "
            "(cells x genes) with its .barcodes.txt and .genes.txt",
            path=folder,
        )
    names = folder / f"{_STEM}.genes.names.txt"
    if names.is_file():
        parts["names"] = names
    files = list(parts.values())
    raw = None
    if folder.name == "counts_unfiltered":
        sibling = folder.parent / "counts_filtered" / f"{_STEM}.barcodes.txt"
        sibling = sibling if sibling.is_file() else None
        raw = RawInput("kb's counts_unfiltered (every barcode kb saw)", sibling)
        files += [] if sibling is None else [sibling]  # kb's cell calls
    return Source(path, parts["matrix"], files, parts, raw=raw)


def read_kb(
    source: Source, *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read ``kb count``'s ``cells_x_genes`` files (cells x genes).

    Parameters
    ----------
    source
        The input's files, as its format resolved them.
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts, barcodes, gene ids and symbols (the ids where there are no names).

    Raises
    ------
    ScingestError
        For names files that do not fit each other or the matrix, and values that are
        not counts.
    """
    from ..readers._features import RawCounts, check_counts
    from ..readers.matrix_market import read_matrix, read_names

    parts = source.parts
    barcodes = read_names(parts["barcodes"])
    ids = read_names(parts["genes"])
    if "names" in parts:
        symbols = read_names(parts["names"])
        if len(symbols) != len(ids):
            raise ScingestError(
                f"{len(symbols)} gene names but {len(ids)} gene ids in {parts['genes'].name}: "
                "expected one name per id",
                path=parts["names"],
            )
    else:
        logger.info("%s: no cells_x_genes.genes.names.txt: gene ids used as names", parts["genes"])
        symbols = ids
    matrix = read_matrix(
        parts["matrix"], shape=(len(barcodes), len(ids)), names=(parts["barcodes"], parts["genes"])
    )
    counts = check_counts(matrix, parts["matrix"], dtype=dtype, allow_non_integer=allow_non_integer)
    return RawCounts(counts=counts, barcodes=barcodes, symbols=symbols, ids=ids)


def _detect(path: Path) -> Fit:
    if path.is_file():
        return Fit.FILES if path.name.lower() == f"{_STEM}.mtx" else Fit.NONE
    return Fit.FILES if path.is_dir() and _folder(path) is not None else Fit.NONE


def _read(source: Source, options: ReaderOptions) -> Read:
    return Read(read_kb(source, dtype=options.dtype, allow_non_integer=options.allow_non_integer))


FORMATS = (
    Format(
        "kb",
        "kallisto | bustools output: counts_unfiltered/ (cells_x_genes.mtx, "
        ".barcodes.txt, .genes.txt, .genes.names.txt), or the kb count folder",
        detect=_detect,
        resolve=_resolve,
        read=_read,
        run_folder=True,
    ),
)
