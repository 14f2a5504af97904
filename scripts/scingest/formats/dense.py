"""Dense text count matrices: ``csv`` and ``tsv`` (GEO exports), gzipped or not.

Recognised by their suffix; read by the dense text parser of :mod:`scingest.readers.dense`
(with its fast path, :mod:`scingest.readers._fastdense`), which both formats share.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ScingestError
from ..options import ReaderOptions
from ._files import TENX_COMPANION, plain_name
from ._format import Fit, Format, Read, Source, one_file

#: The format of each dense text suffix (the name without ``.gz``).
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".tab": "tsv"}


def _detect(name: str):
    def detect(path: Path) -> Fit:
        suffix = Path(plain_name(path)).suffix
        return Fit.NAME if path.is_file() and SUFFIXES.get(suffix) == name else Fit.NONE

    return detect


def _read(sep: str):
    def read(source: Source, options: ReaderOptions) -> Read:
        from ..readers.dense import read_dense

        refuse_tenx_companion(source.path)
        counts = read_dense(
            source.path,
            sep=sep,
            orientation=options.orientation,
            dtype=options.dtype,
            allow_non_integer=options.allow_non_integer,
            threads=options.threads,
        )
        return Read(counts)

    return read


def refuse_tenx_companion(path: Path) -> None:
    """Refuse a 10x barcodes/features/genes file given as a dense matrix, naming what to give.

    Parameters
    ----------
    path
        The sample's path.

    Raises
    ------
    ScingestError
        When ``path`` is named like a 10x names file and is one (a matrix beside it, or
        three columns or fewer), naming the folder or matrix file to give instead.
    """
    match = TENX_COMPANION.match(path.name)
    if match is None or not path.is_file():
        return
    matrices = [path.parent / f"{match['prefix']}matrix.mtx{gz}" for gz in (".gz", "")]
    matrix = next((m for m in matrices if m.is_file()), None)
    if matrix is None:
        from ..files import open_binary

        try:
            with open_binary(path) as fh:
                first = fh.readline(1 << 16).decode("utf-8", errors="replace")
        except (OSError, EOFError, ScingestError):
            return
        if len(first.split("\t")) > 3:
            return  # many columns: a dense matrix that happens to have this name
    matrix_name = str(matrix or matrices[0])
    give = (
        f"the folder {str(path.parent)!r} (format 10x_mtx)"
        if not match["prefix"]
        else f"the matrix file {matrix_name!r} (format 10x_triplet)"
    )
    if matrix is not None and not match["prefix"]:
        give += f" or its matrix file {str(matrix)!r}"
    raise ScingestError(
        f"{path.name} is part of a 10x matrix (matrix.mtx, barcodes.tsv, features.tsv or "
        f"genes.tsv), not a count matrix by itself: give {give} as the sample's path",
        path=path,
    )


FORMATS = tuple(
    Format(
        name,
        description,
        detect=_detect(name),
        resolve=one_file,
        read=_read(sep),
        options=frozenset({"orientation", "threads"}),
    )
    for name, sep, description in (
        ("csv", ",", "dense comma-separated text matrix (.csv, .csv.gz), GEO style"),
        ("tsv", "\t", "dense tab-separated text matrix (.tsv, .txt, optionally .gz)"),
    )
)
