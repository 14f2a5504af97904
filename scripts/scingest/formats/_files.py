"""File-set helpers shared by several formats: 10x matrix files and their prefixes, Matrix
Market name files, one of a plain and a gzipped file, the raw naming of 10x matrices.

Only pathlib and re: the workflow imports the formats at every start.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

from ..errors import ScingestError
from ._format import RawInput

#: A 10x matrix file name: optional prefix, then matrix.mtx, optionally gzipped.
TENX_MATRIX = re.compile(r"^(?P<prefix>.*)matrix\.mtx(?:\.gz)?$", re.IGNORECASE)
#: A 10x barcodes or features file name, with its prefix.
TENX_COMPANION = re.compile(
    r"^(?P<prefix>.*)(?:barcodes|features|genes)\.tsv(?:\.gz)?$", re.IGNORECASE
)
#: A Matrix Market file name (``.mtx``, ``.mtx.gz``).
MTX = re.compile(r"\.mtx(?:\.gz)?$", re.IGNORECASE)
#: A plain Matrix Market file's row or column names file.
MTX_COMPANION = re.compile(r"\.mtx_(?:rows|cols)(?:\.gz)?$", re.IGNORECASE)
#: Stems of the 10x files, in order of preference (features: v3, genes: v2).
TENX_STEMS = {"matrix": ("matrix.mtx",), "barcodes": ("barcodes.tsv",)}
TENX_FEATURE_STEMS = ("features.tsv", "genes.tsv")
#: A CellRanger raw matrix's name (file, folder, or part of a GEO file name), and what its
#: filtered sibling is called: the same name with ``filtered`` for ``raw``.
CELLRANGER_RAW = re.compile(r"(?i)(?<![a-z])raw(?=_(?:feature|gene|probe)_bc_matri(?:x|ces))")
#: STARsolo's feature folders (``Solo.out/<feature>/raw``).
SOLO_FEATURES = ("Gene", "GeneFull", "GeneFull_Ex50pAS", "GeneFull_ExonOverIntron", "Velocyto")


def plain_name(path: Path) -> str:
    """A file's name in lower case, without a ``.gz`` suffix."""
    name = path.name.lower()
    return name[: -len(".gz")] if name.endswith(".gz") else name


def one_of(folder: Path, names: tuple[str, ...]) -> Path | None:
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
    for role, stems in (*TENX_STEMS.items(), ("features", TENX_FEATURE_STEMS)):
        names = tuple(f"{prefix}{stem}" for stem in stems)
        found = one_of(folder, names)
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
    if one_of(path, TENX_STEMS["matrix"]) is not None:
        return path
    subs = sorted(
        p for p in path.iterdir() if p.is_dir() and one_of(p, TENX_STEMS["matrix"]) is not None
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
        found = one_of(matrix.parent, (f"{base}_{role}",))
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


def first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def tenx_barcodes(folder: Path) -> Path | None:
    """The barcodes file of a 10x matrix folder (or of its one genome subfolder)."""
    found = first_file(folder, ("barcodes.tsv",))
    if found is not None or not folder.is_dir():
        return found
    subs = [p for p in sorted(folder.iterdir()) if p.is_dir()]
    found_in = [b for b in (first_file(p, ("barcodes.tsv",)) for p in subs) if b is not None]
    return found_in[0] if len(found_in) == 1 else None


def tenx_raw(path: Path) -> RawInput | None:
    """Whether a 10x matrix (a folder, or an ``.h5``) is raw by its tool's naming, and its
    filtered sibling.

    Raw by name: CellRanger's ``raw_feature_bc_matrix`` (``.h5`` or folder),
    ``raw_gene_bc_matrices`` (CellRanger 2, also its genome subfolder) and GEO files named
    after them (``GSM1_raw_feature_bc_matrix.h5``), sibling ``filtered_...``; STARsolo's
    ``Solo.out/<feature>/raw`` (sibling ``filtered/``). The other tools' raw naming is in
    their formats' modules (``kb``, ``alevin_fry``); run folders (``starsolo``, ``kb`` and
    ``cellranger_*`` given the run) read the filtered matrix and are not raw.

    Parameters
    ----------
    path
        The sample's ``path``.

    Returns
    -------
    The reason and sibling; None when the naming does not say raw.
    """
    folder = path if path.is_dir() else path.parent
    if folder.name == "raw" and (
        folder.parent.name in SOLO_FEATURES or folder.parent.parent.name == "Solo.out"
    ):
        sibling = tenx_barcodes(folder.parent / "filtered")
        reason = f"STARsolo's {folder.parent.name}/raw (every barcode STARsolo saw)"
        return RawInput(reason, sibling)
    for part in (path, path.parent):  # the matrix itself, or CellRanger 2's genome subfolder
        if not CELLRANGER_RAW.search(part.name):
            continue
        twin = part.with_name(CELLRANGER_RAW.sub("filtered", part.name, count=1))
        if part != path:  # a genome subfolder: the same genome in the filtered folder
            twin = twin / path.name
        sibling = None
        if twin.is_file() and twin.suffix.lower() in (".h5", ".hdf5"):
            sibling = twin
        elif twin.is_dir():
            sibling = tenx_barcodes(twin)
        return RawInput(f"CellRanger's {part.name} (every barcode CellRanger saw)", sibling)
    return None
