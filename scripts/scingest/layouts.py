"""Output layouts of the common counting tools: which files make a sample, and detection.

CellRanger ``multi`` and ``count`` run folders, STARsolo's ``Solo.out``, kallisto|bustools'
``counts_unfiltered``, salmon alevin's and alevin-fry's outputs, probe-based 10x .h5, loom and zarr
AnnData stores each get a format name (:data:`LAYOUT_FORMATS`). Folders are resolved here
to the files the readers read (:func:`resolve`); :func:`detect_layout` recognises each
layout by its files. Only pathlib and json are imported, as for :mod:`scingest.formats`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from .errors import ScingestError

#: Format names of the tool layouts, with what each is (merged into ``FORMATS``).
LAYOUT_FORMATS: dict[str, str] = {
    "cellranger_multi": "CellRanger multi sample folder outs/per_sample_outs/<name> "
    "(count/sample_filtered_feature_bc_matrix.h5, or the folder of that name)",
    "cellranger_count": "CellRanger or Space Ranger count run folder (or its outs/) holding "
    "outs/filtered_feature_bc_matrix.h5 or the folder of that name",
    "10x_probe_h5": "probe-based 10x HDF5 (Flex, Visium HD *_probe_bc_matrix.h5): the probes "
    "CellRanger used (features/filtered_probes true) summed to gene-level counts, of the "
    "barcodes it called cells (matrix/filtered_barcodes)",
    "starsolo": "STARsolo output: Solo.out (or the STAR run folder holding it); reads "
    "Gene/filtered, else GeneFull/filtered",
    "kb": "kallisto | bustools output: counts_unfiltered/ (cells_x_genes.mtx, "
    ".barcodes.txt, .genes.txt, .genes.names.txt), or the kb count folder",
    "alevin_fry": "alevin-fry / simpleaf output: af_quant/ or alevin/ (quants_mat.mtx, "
    "quants_mat_rows.txt, quants_mat_cols.txt; or quants.h5ad); gene names from a "
    "gene_id_to_name.tsv beside them, if any",
    "alevin": "salmon alevin output: the run folder or its alevin/ (quants_mat.gz, alevin's "
    "binary sparse matrix, or quants_mat.mtx.gz from --dumpMtx; cells x genes, with "
    "quants_mat_rows.txt barcodes and quants_mat_cols.txt genes)",
    "loom": "loom file (velocyto, older GEO uploads): genes x cells matrix, row attributes "
    "Gene/Accession, column attribute CellID",
    "zarr": "AnnData zarr store (.zarr folder or .zarr.zip): counts from X or a named layer",
}

_H5_NAMES = ("filtered_feature_bc_matrix.h5", "filtered_gene_bc_matrices_h5.h5")
_MTX_DIRS = ("filtered_feature_bc_matrix", "filtered_gene_bc_matrices")
_MULTI_H5 = "sample_filtered_feature_bc_matrix.h5"
_MULTI_DIR = "sample_filtered_feature_bc_matrix"
_SOLO_FEATURES = ("Gene", "GeneFull")
_KB_DIRS = ("counts_filtered", "counts_unfiltered")
_KB_STEM = "cells_x_genes"
_FRY_MTX = "quants_mat.mtx"
#: salmon alevin's matrices: its binary sparse format, and --dumpMtx's Matrix Market
_ALEVIN_MATRICES = ("quants_mat.gz", "quants_mat.mtx.gz")


@dataclass
class Resolved:
    """A layout resolved to the files that are read.

    Attributes
    ----------
    format
        The reader that reads ``path`` (``10x_h5``, ``10x_mtx``, ``kb``, ...).
    path
        What that reader is given.
    files
        Every file the input is made of (:func:`scingest.formats.input_files` returns them).
    parts
        Named files for the layout readers (``matrix``, ``barcodes``, ...).
    info
        What the layout's own metadata says (alevin-fry's ``quant.json``).
    """

    format: str
    path: Path
    files: list[Path]
    parts: dict[str, Path] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _tenx_inner(folder: Path, h5_names: tuple[str, ...], dir_names: tuple[str, ...]) -> Resolved:
    from .formats import tenx_files, tenx_folder

    for name in h5_names:
        if (folder / name).is_file():
            return Resolved("10x_h5", folder / name, [folder / name])
    for name in dir_names:
        if (folder / name).is_dir():
            inner = tenx_folder(folder / name)
            return Resolved("10x_mtx", folder / name, list(tenx_files(inner).values()))
    raise ScingestError(
        f"none of {', '.join(h5_names + tuple(f'{d}/' for d in dir_names))} in {folder}",
        path=folder,
    )


def _multi(path: Path) -> Resolved:
    count = path / "count" if (path / "count").is_dir() else path
    try:
        return _tenx_inner(count, (_MULTI_H5,), (_MULTI_DIR,))
    except ScingestError:
        raise ScingestError(
            f"expected count/{_MULTI_H5} or count/{_MULTI_DIR}/ in this CellRanger multi "
            "per_sample_outs/<name> folder",
            path=path,
        ) from None


def _count(path: Path) -> Resolved:
    outs = path / "outs" if (path / "outs").is_dir() else path
    try:
        return _tenx_inner(outs, _H5_NAMES, _MTX_DIRS)
    except ScingestError:
        raise ScingestError(
            f"expected outs/{_H5_NAMES[0]} or outs/{_MTX_DIRS[0]}/ (CellRanger 2: "
            f"{_H5_NAMES[1]}, {_MTX_DIRS[1]}/) in this CellRanger/Space Ranger run folder",
            path=path,
        ) from None


def _solo_out(path: Path) -> Path | None:
    """The Solo.out folder of a STAR run folder, Solo.out itself, or None."""
    if path.name == "Solo.out" or any((path / f).is_dir() for f in _SOLO_FEATURES):
        return path
    if (path / "Solo.out").is_dir():
        return path / "Solo.out"
    return None


def _starsolo(path: Path) -> Resolved:
    from .formats import tenx_files

    if (path / "matrix.mtx").is_file():  # a Gene/filtered folder itself
        return Resolved("10x_mtx", path, list(tenx_files(path).values()))
    if path.name in _SOLO_FEATURES and (path / "filtered").is_dir():
        folder = path / "filtered"
        return Resolved("10x_mtx", folder, list(tenx_files(folder).values()))
    solo = _solo_out(path)
    for feature in _SOLO_FEATURES:
        folder = (solo or path) / feature / "filtered"
        if folder.is_dir():
            return Resolved("10x_mtx", folder, list(tenx_files(folder).values()))
    raise ScingestError(
        "expected Solo.out/Gene/filtered/ or Solo.out/GeneFull/filtered/ (matrix.mtx, "
        "features.tsv, barcodes.tsv) in this STARsolo output",
        path=path,
    )


def _kb_folder(path: Path) -> Path | None:
    if path.is_file():
        return path.parent if path.name.startswith(f"{_KB_STEM}.") else None
    if (path / f"{_KB_STEM}.mtx").is_file():
        return path
    for name in _KB_DIRS:
        if (path / name / f"{_KB_STEM}.mtx").is_file():
            return path / name
    return None


def _kb(path: Path) -> Resolved:
    folder = _kb_folder(path)
    if folder is None:
        raise ScingestError(
            f"expected {_KB_STEM}.mtx here or in counts_filtered/ or counts_unfiltered/ "
            "(kallisto | bustools kb count output)",
            path=path,
        )
    parts = {
        "matrix": folder / f"{_KB_STEM}.mtx",
        "barcodes": folder / f"{_KB_STEM}.barcodes.txt",
        "genes": folder / f"{_KB_STEM}.genes.txt",
    }
    missing = [p.name for p in parts.values() if not p.is_file()]
    if missing:
        raise ScingestError(
            f"missing {', '.join(missing)} beside {_KB_STEM}.mtx: kb count writes the matrix "
            "(cells x genes) with its .barcodes.txt and .genes.txt",
            path=folder,
        )
    names = folder / f"{_KB_STEM}.genes.names.txt"
    if names.is_file():
        parts["names"] = names
    return Resolved("kb", parts["matrix"], list(parts.values()), parts)


def _fry_folder(path: Path) -> Path | None:
    if path.is_file():
        return path.parent if path.name in (_FRY_MTX, "quants.h5ad") else None
    for folder in (path, path / "alevin", path / "af_quant" / "alevin"):
        if (folder / _FRY_MTX).is_file() or (folder / "quants.h5ad").is_file():
            return folder
    return None


def _alevin_fry(path: Path) -> Resolved:
    folder = _fry_folder(path)
    if folder is None:
        raise ScingestError(
            f"expected {_FRY_MTX} (or quants.h5ad) here, in alevin/ or in af_quant/alevin/ "
            "(alevin-fry / simpleaf output)",
            path=path,
        )
    if not (folder / _FRY_MTX).is_file() or path.name == "quants.h5ad":
        return Resolved("h5ad", folder / "quants.h5ad", [folder / "quants.h5ad"])
    parts = {
        "matrix": folder / _FRY_MTX,
        "barcodes": folder / "quants_mat_rows.txt",
        "genes": folder / "quants_mat_cols.txt",
    }
    missing = [p.name for p in parts.values() if not p.is_file()]
    if missing:
        raise ScingestError(
            f"missing {', '.join(missing)} beside {_FRY_MTX}: alevin-fry writes the matrix "
            "(cells x genes) with quants_mat_rows.txt (barcodes) and quants_mat_cols.txt (genes)",
            path=folder,
        )
    for where in (folder, folder.parent, folder.parent.parent):
        if (where / "gene_id_to_name.tsv").is_file():  # simpleaf / pyroe's id -> name map
            parts["names"] = where / "gene_id_to_name.tsv"
            break
    info: dict = {}
    meta = folder.parent / "quant.json"
    if meta.is_file():
        parts["meta"] = meta
        try:
            info = json.loads(meta.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ScingestError(f"cannot read as JSON ({err})", path=meta) from None
    return Resolved("alevin_fry", parts["matrix"], list(parts.values()), parts, info)


def _alevin_folder(path: Path) -> Path | None:
    if path.is_file():
        return path.parent if path.name in _ALEVIN_MATRICES else None
    for folder in (path, path / "alevin"):
        if any((folder / name).is_file() for name in _ALEVIN_MATRICES):
            return folder
    return None


def _alevin(path: Path) -> Resolved:
    folder = _alevin_folder(path)
    if folder is None:
        raise ScingestError(
            f"expected {' or '.join(_ALEVIN_MATRICES)} here or in alevin/ (salmon alevin output)",
            path=path,
        )
    # the binary matrix is what alevin always writes; --dumpMtx adds the Matrix Market one
    name = path.name if path.is_file() else None
    name = name or next(n for n in _ALEVIN_MATRICES if (folder / n).is_file())
    parts = {
        "matrix": folder / name,
        "barcodes": folder / "quants_mat_rows.txt",
        "genes": folder / "quants_mat_cols.txt",
    }
    missing = [p.name for p in parts.values() if not p.is_file()]
    if missing:
        raise ScingestError(
            f"missing {', '.join(missing)} beside {name}: salmon alevin writes the matrix "
            "(cells x genes) with quants_mat_rows.txt (barcodes) and quants_mat_cols.txt (genes)",
            path=folder,
        )
    return Resolved("alevin", parts["matrix"], list(parts.values()), parts)


def _store_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def resolve(path: str | PathLike[str], format: str) -> Resolved:
    """The files a layout ``format`` reads at ``path``.

    Parameters
    ----------
    path
        The sample's ``path``.
    format
        A layout format (:data:`LAYOUT_FORMATS`).

    Returns
    -------
    The reader, path and files to read.

    Raises
    ------
    ScingestError
        When the layout's files are not all there, naming what was expected.
    """
    path = Path(path)
    if format == "cellranger_multi":
        return _multi(path)
    if format == "cellranger_count":
        return _count(path)
    if format == "starsolo":
        return _starsolo(path)
    if format == "kb":
        return _kb(path)
    if format == "alevin_fry":
        return _alevin_fry(path)
    if format == "alevin":
        return _alevin(path)
    if format in ("loom", "zarr", "10x_probe_h5"):
        return Resolved(format, path, _store_files(path))
    raise AssertionError(format)  # pragma: no cover - callers pass LAYOUT_FORMATS only


def detect_layout(path: str | PathLike[str]) -> list[str]:
    """The layout formats whose files are at ``path``.

    Parameters
    ----------
    path
        A file or folder.

    Returns
    -------
    The layout format names that fit: none, one, or several when unsure.
    """
    path = Path(path)
    name = path.name.lower()
    found: list[str] = []
    if path.is_file():
        if name.endswith(".loom"):
            found.append("loom")
        if name.endswith(".zarr.zip"):
            found.append("zarr")
        if name.endswith("_probe_bc_matrix.h5"):
            found.append("10x_probe_h5")
        if name == f"{_KB_STEM}.mtx":
            found.append("kb")
        if name == _FRY_MTX:
            found.append("alevin_fry")
        if name in _ALEVIN_MATRICES:
            found.append("alevin")
        return found
    if not path.is_dir():
        return found
    zarr_meta = (path / ".zattrs").is_file() or (path / "zarr.json").is_file()
    if name.endswith(".zarr") or (zarr_meta and (path / "obs").is_dir()):
        found.append("zarr")
    if (path / "count" / _MULTI_H5).is_file() or (path / "count" / _MULTI_DIR).is_dir():
        found.append("cellranger_multi")
    outs = path / "outs" if (path / "outs").is_dir() else path
    is_run = (path / "outs").is_dir() or path.name == "outs"
    tenx = any((outs / n).is_file() for n in _H5_NAMES) or any(
        (outs / d).is_dir() for d in _MTX_DIRS
    )
    # a whole multi run (per_sample_outs) is not one sample: discovery expands it
    if is_run and tenx and not (outs / "per_sample_outs").is_dir():
        found.append("cellranger_count")
    solo = _solo_out(path)
    feature = path.name in _SOLO_FEATURES and (path / "filtered").is_dir()  # Solo.out/GeneFull
    if feature or (
        solo is not None and any((solo / f / "filtered").is_dir() for f in _SOLO_FEATURES)
    ):
        found.append("starsolo")
    if _kb_folder(path) is not None:
        found.append("kb")
    if _fry_folder(path) is not None:
        found.append("alevin_fry")
    if _alevin_folder(path) is not None:
        found.append("alevin")
    return found


def multi_samples(folder: str | PathLike[str]) -> dict[str, Path] | None:
    """A CellRanger multi run's samples (name -> per_sample_outs/<name>), or None.

    Parameters
    ----------
    folder
        The run's ``outs/`` or the run folder holding it.

    Returns
    -------
    Sample name -> its folder, sorted by name (hidden folders skipped); None when
    ``folder`` is not a multi run.
    """
    folder = Path(folder)
    for outs in (folder, folder / "outs"):
        per_sample = outs / "per_sample_outs"
        if per_sample.is_dir():
            return {
                p.name: p
                for p in sorted(per_sample.iterdir())
                if p.is_dir() and not p.name.startswith(".")
            }
    return None


#: A CellRanger raw matrix's name (file, folder, or part of a GEO file name), and what its
#: filtered sibling is called: the same name with ``filtered`` for ``raw``.
_CELLRANGER_RAW = re.compile(r"(?i)(?<![a-z])raw(?=_(?:feature|gene|probe)_bc_matri(?:x|ces))")
#: STARsolo's feature folders (``Solo.out/<feature>/raw``).
_SOLO_ALL_FEATURES = ("Gene", "GeneFull", "GeneFull_Ex50pAS", "GeneFull_ExonOverIntron", "Velocyto")


@dataclass
class RawInput:
    """Why an input is a raw matrix (every barcode seen), from its tool's naming.

    Attributes
    ----------
    reason
        What says so, for the log (``STARsolo's raw/``, ...).
    sibling
        The file listing the barcodes of the tool's filtered matrix beside it (its cell
        calls), when there is one: a barcodes file, or a filtered .h5.
    """

    reason: str
    sibling: Path | None = None


def _first_file(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _tenx_barcodes(folder: Path) -> Path | None:
    """The barcodes file of a 10x matrix folder (or of its one genome subfolder)."""
    found = _first_file(folder, ("barcodes.tsv",))
    if found is not None or not folder.is_dir():
        return found
    subs = [p for p in sorted(folder.iterdir()) if p.is_dir()]
    found_in = [b for b in (_first_file(p, ("barcodes.tsv",)) for p in subs) if b is not None]
    return found_in[0] if len(found_in) == 1 else None


def raw_input(path: str | PathLike[str], format: str) -> RawInput | None:
    """Whether ``path`` is a raw matrix by its tool's naming, and its filtered sibling.

    Raw by name: CellRanger's ``raw_feature_bc_matrix`` (``.h5`` or folder),
    ``raw_gene_bc_matrices`` (CellRanger 2, also its genome subfolder) and GEO files named
    after them (``GSM1_raw_feature_bc_matrix.h5``), sibling ``filtered_...``; STARsolo's
    ``Solo.out/<feature>/raw`` (sibling ``filtered/``); kb's ``counts_unfiltered`` (sibling
    ``counts_filtered``); alevin-fry's output of an unfiltered permit list
    (``generate_permit_list.json`` saying ``"permit-list-type": "unfiltered"``). Run
    folders (``starsolo``, ``kb`` and ``cellranger_*`` formats given the run) read the
    filtered matrix and are not raw.

    Parameters
    ----------
    path
        The sample's ``path``.
    format
        Its format.

    Returns
    -------
    The reason and sibling; None when the naming does not say raw.
    """
    path = Path(path)
    if format == "kb":
        folder = _kb_folder(path)
        if folder is None or folder.name != "counts_unfiltered":
            return None
        sibling = folder.parent / "counts_filtered" / f"{_KB_STEM}.barcodes.txt"
        return RawInput(
            "kb's counts_unfiltered (every barcode kb saw)", sibling if sibling.is_file() else None
        )
    if format == "alevin_fry":
        folder = _fry_folder(path)
        meta = None if folder is None else folder.parent / "generate_permit_list.json"
        if meta is None or not meta.is_file():
            return None
        try:
            kind = json.loads(meta.read_text()).get("permit-list-type")
        except (ValueError, UnicodeDecodeError, AttributeError):
            return None
        if kind != "unfiltered":
            return None
        return RawInput(f"alevin-fry with an unfiltered permit list ({meta.name})")
    if format not in ("10x_mtx", "10x_h5"):
        return None
    folder = path if path.is_dir() else path.parent
    if folder.name == "raw" and (
        folder.parent.name in _SOLO_ALL_FEATURES or folder.parent.parent.name == "Solo.out"
    ):
        sibling = _tenx_barcodes(folder.parent / "filtered")
        reason = f"STARsolo's {folder.parent.name}/raw (every barcode STARsolo saw)"
        return RawInput(reason, sibling)
    for part in (path, path.parent):  # the matrix itself, or CellRanger 2's genome subfolder
        if not _CELLRANGER_RAW.search(part.name):
            continue
        twin = part.with_name(_CELLRANGER_RAW.sub("filtered", part.name, count=1))
        if part != path:  # a genome subfolder: the same genome in the filtered folder
            twin = twin / path.name
        sibling = None
        if twin.is_file() and twin.suffix.lower() in (".h5", ".hdf5"):
            sibling = twin
        elif twin.is_dir():
            sibling = _tenx_barcodes(twin)
        return RawInput(f"CellRanger's {part.name} (every barcode CellRanger saw)", sibling)
    return None
