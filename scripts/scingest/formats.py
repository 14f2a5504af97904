"""Input formats: their names, detection from a path, and the files each input is made of.

A sample's ``path`` is one file or folder; some formats read files beside it (a prefixed
10x triplet's barcodes and features, a Matrix Market file's name files).
:func:`input_files` lists every file an input is made of (the one function that knows it),
so the workflow can rerun a sample when any of them changes and size its job, discovery can
group them into one sample, and provenance can hash each.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

from .errors import ScingestError
from .layouts import LAYOUT_FORMATS, detect_layout, raw_input, resolve

#: Every format name a sheet's ``format`` column may hold (besides ``auto``), with what it is.
FORMATS: dict[str, str] = {
    "csv": "dense comma-separated text matrix (.csv, .csv.gz), GEO style",
    "tsv": "dense tab-separated text matrix (.tsv, .txt, optionally .gz)",
    "10x_mtx": "CellRanger matrix folder (matrix.mtx, barcodes.tsv, features.tsv or "
    "genes.tsv; gzipped or not)",
    "10x_triplet": "prefixed 10x files in a flat folder, path = the matrix "
    "(GSM1_A_matrix.mtx.gz beside GSM1_A_barcodes.tsv.gz and GSM1_A_features.tsv.gz)",
    "10x_h5": "CellRanger HDF5 (.h5), v2 (one group per genome) or v3 (/matrix)",
    "mtx": "plain Matrix Market file with name files beside it (counts.mtx, "
    "counts.mtx_rows, counts.mtx_cols; gzipped or not)",
    "h5ad": "AnnData file (.h5ad): counts from X or a named layer",
    **LAYOUT_FORMATS,
}

_DENSE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".tab": "tsv"}
#: A 10x matrix file name: optional prefix, then matrix.mtx, optionally gzipped.
TENX_MATRIX = re.compile(r"^(?P<prefix>.*)matrix\.mtx(?:\.gz)?$", re.IGNORECASE)
#: A 10x barcodes or features file name, with its prefix.
TENX_COMPANION = re.compile(
    r"^(?P<prefix>.*)(?:barcodes|features|genes)\.tsv(?:\.gz)?$", re.IGNORECASE
)
_MTX = re.compile(r"\.mtx(?:\.gz)?$", re.IGNORECASE)
#: A plain Matrix Market file's row or column names file.
MTX_COMPANION = re.compile(r"\.mtx_(?:rows|cols)(?:\.gz)?$", re.IGNORECASE)
#: Stems of the 10x files, in order of preference (features: v3, genes: v2).
_TENX_STEMS = {"matrix": ("matrix.mtx",), "barcodes": ("barcodes.tsv",)}
_TENX_FEATURE_STEMS = ("features.tsv", "genes.tsv")


def _one_of(folder: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` (each plain or .gz) present in ``folder``; both forms is an error."""
    for name in names:
        found = [folder / f"{name}{ext}" for ext in ("", ".gz")]
        found = [p for p in found if p.is_file()]
        if len(found) > 1:
            raise ScingestError(
                f"both {found[0].name} and {found[1].name} are present: expected one of them; "
                "remove the other",
                path=folder,
            )
        if found:
            return found[0]
    return None


def tenx_files(folder: Path, prefix: str = "", *, owner: Path | None = None) -> dict[str, Path]:
    """The matrix, barcodes and features files of a 10x folder or prefixed triplet.

    Parameters
    ----------
    folder
        The folder holding the files.
    prefix
        The file names' prefix (a triplet's ``GSM1_A_``; empty for a CellRanger folder).
    owner
        The input named in the error (default: ``folder``).

    Returns
    -------
    ``matrix``, ``barcodes`` and ``features`` (``features.tsv``, else CellRanger 2's
    ``genes.tsv``), each plain or gzipped.

    Raises
    ------
    ScingestError
        When one of the three is missing (naming the file names looked for), or a file is
        there both plain and gzipped.
    """
    files: dict[str, Path] = {}
    missing: list[str] = []
    for role, stems in (*_TENX_STEMS.items(), ("features", _TENX_FEATURE_STEMS)):
        names = tuple(f"{prefix}{stem}" for stem in stems)
        found = _one_of(folder, names)
        if found is None:
            missing.append(" or ".join(f"{n}[.gz]" for n in names))
        else:
            files[role] = found
    if missing:
        what = f"the 10x files with prefix {prefix!r}" if prefix else "a 10x matrix folder"
        raise ScingestError(
            f"missing {'; '.join(missing)}: {what} needs all three of matrix.mtx, "
            "barcodes.tsv and features.tsv (or genes.tsv), gzipped or not",
            path=folder if owner is None else owner,
        )
    return files


def tenx_folder(path: str | PathLike[str], *, genome: str | None = None) -> Path:
    """The folder holding the 10x files: ``path`` itself, or its one genome subfolder.

    CellRanger 2 writes ``filtered_gene_bc_matrices/<genome>/``; pointing at the outer
    folder works when it has one genome subfolder, or when ``genome`` names one.

    Parameters
    ----------
    path
        A CellRanger matrix folder, or the folder of its genome subfolders.
    genome
        The genome subfolder to take when there are several.

    Returns
    -------
    The folder whose ``matrix.mtx[.gz]`` is read.

    Raises
    ------
    ScingestError
        When no matrix is there or in a subfolder, or several genomes and ``genome`` names
        none of them.
    """
    path = Path(path)
    if _one_of(path, _TENX_STEMS["matrix"]) is not None:
        return path
    subs = sorted(
        p for p in path.iterdir() if p.is_dir() and _one_of(p, _TENX_STEMS["matrix"]) is not None
    )
    if genome is not None and any(p.name == genome for p in subs):
        return path / genome
    if len(subs) == 1 and genome is None:
        return subs[0]
    if not subs:
        raise ScingestError(
            "no matrix.mtx or matrix.mtx.gz here or in a subfolder: expected a CellRanger "
            "matrix folder (matrix.mtx, barcodes.tsv, features.tsv or genes.tsv)",
            path=path,
        )
    names = ", ".join(p.name for p in subs)
    raise ScingestError(
        f"genome {genome!r} is not among the genome subfolders {names}"
        if genome is not None
        else f"several genome subfolders ({names}): set config genome to one of them",
        path=path,
    )


def triplet_files(matrix: str | PathLike[str]) -> dict[str, Path]:
    """The three files of a prefixed 10x triplet, from its matrix file's path.

    Parameters
    ----------
    matrix
        The triplet's ``<prefix>matrix.mtx[.gz]``.

    Returns
    -------
    ``matrix``, ``barcodes`` and ``features``, as :func:`tenx_files`.

    Raises
    ------
    ScingestError
        When the name is not ``<prefix>matrix.mtx[.gz]`` or a file of the triplet is missing.
    """
    matrix = Path(matrix)
    match = TENX_MATRIX.match(matrix.name)
    if match is None:
        raise ScingestError(
            "a 10x_triplet path must be the matrix file, named <prefix>matrix.mtx[.gz] "
            "(e.g. GSM123_Ctrl1_matrix.mtx.gz)",
            path=matrix,
        )
    files = tenx_files(matrix.parent, match["prefix"], owner=matrix)
    if files["matrix"] != matrix:
        raise ScingestError(
            f"expected {files['matrix'].name} to be the triplet's matrix file", path=matrix
        )
    return files


def mtx_name_files(matrix: str | PathLike[str], *, required: bool = True) -> dict[str, Path] | None:
    """The row and column name files of a plain Matrix Market file.

    ``counts.mtx`` (or ``counts.mtx.gz``) has its row names in ``counts.mtx_rows`` and its
    column names in ``counts.mtx_cols`` (each optionally gzipped), the layout of the EBI
    Single Cell Expression Atlas downloads.

    Parameters
    ----------
    matrix
        The Matrix Market file.
    required
        Raise when a name file is missing (else return None).

    Returns
    -------
    ``rows`` and ``cols``, or None when one is missing and not ``required``.

    Raises
    ------
    ScingestError
        When a name file is missing and ``required``.
    """
    matrix = Path(matrix)
    base = matrix.name[: -len(".gz")] if matrix.name.lower().endswith(".gz") else matrix.name
    files: dict[str, Path] = {}
    missing = []
    for role in ("rows", "cols"):
        found = _one_of(matrix.parent, (f"{base}_{role}",))
        if found is None:
            missing.append(f"{base}_{role}[.gz]")
        else:
            files[role] = found
    if missing and required:
        raise ScingestError(
            f"missing {' and '.join(missing)} beside it: a plain Matrix Market file needs "
            f"its row names in {base}_rows and its column names in {base}_cols",
            path=matrix,
        )
    return None if missing else files


def input_files(path: str | PathLike[str], format: str, *, genome: str | None = None) -> list[Path]:
    """Every file an input of ``format`` is made of: the one statement of that rule.

    The workflow reruns a sample when any of them changes and sizes its job by them
    (:mod:`scingest.resources`); discovery groups them into one sample; provenance hashes
    each; the readers check none is empty.

    Parameters
    ----------
    path
        The sample's ``path``: a file, or a folder for 10x folders and tool layouts.
    format
        Its format (:data:`FORMATS`).
    genome
        The genome subfolder of a CellRanger 2 folder holding several.

    Returns
    -------
    The files (never folders): a 10x folder's or triplet's three, a Matrix Market file
    and its name files, a layout's files (:func:`scingest.layouts.resolve`), else ``path``;
    for a raw matrix with the tool's filtered matrix beside it
    (:func:`scingest.layouts.raw_input`), also the file holding that one's barcodes.

    Raises
    ------
    ScingestError
        When a file the format needs is missing.
    """
    path = Path(path)
    if format == "10x_mtx":
        files = list(tenx_files(tenx_folder(path, genome=genome)).values())
    elif format == "10x_triplet":
        files = list(triplet_files(path).values())
    elif format == "mtx":
        files = [path, *mtx_name_files(path).values()]
    elif format in LAYOUT_FORMATS:
        files = resolve(path, format).files
    else:
        files = [path]
    raw = raw_input(path, format)
    if raw is not None and raw.sibling is not None:  # the tool's cell calls, beside it
        files.append(raw.sibling)
    return files


def group_companions(entries: list[Path]) -> tuple[set[Path], dict[Path, str]]:
    """Which entries of a flat folder belong to another entry's input, and which to none.

    Each Matrix Market file claims its 10x triplet files (same prefix) or its
    ``_rows``/``_cols`` name files; a triplet missing one of its files is an error. Returns
    the claimed entries and the orphans: barcodes, features, genes or names files that no
    matrix claims, each with what was expected beside it.

    Parameters
    ----------
    entries
        The entries of one folder.

    Returns
    -------
    The claimed entries, and the orphans with what was expected beside each.

    Raises
    ------
    ScingestError
        When a triplet misses a file, or a Matrix Market file's format cannot be told.
    """
    claimed: set[Path] = set()
    for entry in entries:
        if entry.is_file() and _MTX.search(entry.name):
            format = detect_format(entry)
            if format in ("10x_triplet", "mtx"):  # files beside it, named after it
                claimed.update(p for p in input_files(entry, format) if p != entry)
    orphans: dict[Path, str] = {}
    for entry in entries:
        if entry in claimed or not entry.is_file():
            continue
        match = TENX_COMPANION.match(entry.name)
        if match is not None:
            orphans[entry] = f"{match['prefix']}matrix.mtx[.gz] (10x triplet)"
        elif MTX_COMPANION.search(entry.name):
            orphans[entry] = f"{MTX_COMPANION.sub('.mtx', entry.name)}[.gz] (Matrix Market)"
    return claimed, orphans


def detect_format(path: str | PathLike[str]) -> str:
    """Guess a format name from a path; raise when the guess would be unsure.

    A folder is ``10x_mtx``; ``.h5``/``.hdf5`` is ``10x_h5``; ``.h5ad`` is ``h5ad``;
    ``.mtx[.gz]`` with ``_rows``/``_cols`` name files beside it is ``mtx``, and otherwise
    ``<prefix>matrix.mtx[.gz]`` is ``10x_triplet``; ``.csv``/``.tsv``/``.txt``/``.tab``
    (optionally .gz) are dense text. Tool layouts (run folders, ``.loom``, ``.zarr``,
    ``*_probe_bc_matrix.h5``, ...) are recognised first by their files
    (:func:`scingest.layouts.detect_layout`); a path holding several is an error.

    Parameters
    ----------
    path
        A sample's ``path``.

    Returns
    -------
    A format name of :data:`FORMATS`.

    Raises
    ------
    ScingestError
        When no format, or several, fit the path (listing every format considered).
    """
    path = Path(path)
    name = path.name.lower()
    stem = name[: -len(".gz")] if name.endswith(".gz") else name
    suffix = Path(stem).suffix
    reason = "no known format has this name"
    layouts = detect_layout(path)
    if len(layouts) == 1:
        return layouts[0]
    if layouts:
        reason = f"it holds the files of several layouts: {', '.join(layouts)}"
    elif path.is_dir():
        subs = [p for p in path.iterdir() if p.is_dir()]
        if any(_one_of(p, _TENX_STEMS["matrix"]) is not None for p in [path, *subs]):
            return "10x_mtx"
        reason = "a folder without matrix.mtx[.gz] in it or in a subfolder (10x_mtx)"
    elif path.is_file():
        if name.endswith(".h5ad"):
            return "h5ad"
        if name.endswith((".h5", ".hdf5")):
            return "10x_h5"
        if _MTX.search(name):
            if mtx_name_files(path, required=False) is not None:
                return "mtx"
            if TENX_MATRIX.match(path.name):
                return "10x_triplet"
            reason = (
                "a Matrix Market file, but not named <prefix>matrix.mtx[.gz] (10x_triplet) "
                f"and without {stem}_rows/{stem}_cols beside it (mtx)"
            )
        elif suffix in _DENSE_SUFFIXES:
            return _DENSE_SUFFIXES[suffix]
    considered = "; ".join(f"{k} ({v})" for k, v in FORMATS.items())
    raise ScingestError(
        f"cannot tell the format from the path ({reason}). Considered: {considered}. "
        "Set the sheet's format column",
        path=path,
    )
