"""CellRanger run folders: ``cellranger_count`` (also Space Ranger) and one sample of a
``cellranger_multi`` run (``outs/per_sample_outs/<name>``).

A run folder holds ordinary 10x files: its filtered ``.h5`` (read when present) or matrix
folder, which :mod:`.h5` and :mod:`.tenx` read. :func:`multi_samples` lists a multi run's
samples for discovery.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from ..errors import ScingestError
from ..options import ReaderOptions
from ._files import tenx_files, tenx_folder
from ._format import Fit, Format, Read, Source, reads
from .h5 import read_tenx_h5
from .tenx import read_parts

_H5_NAMES = ("filtered_feature_bc_matrix.h5", "filtered_gene_bc_matrices_h5.h5")
_MTX_DIRS = ("filtered_feature_bc_matrix", "filtered_gene_bc_matrices")
_MULTI_H5 = "sample_filtered_feature_bc_matrix.h5"
_MULTI_DIR = "sample_filtered_feature_bc_matrix"


def _inner(
    path: Path, folder: Path, names: tuple[tuple[str, ...], tuple[str, ...]], genome: str | None
) -> Source | None:
    """The run's filtered .h5, else its matrix folder (its genome subfolder ``genome`` names,
    CellRanger 2); None: neither is there."""
    h5_names, dir_names = names
    for name in h5_names:
        if (folder / name).is_file():
            return Source(path, folder / name, [folder / name])
    for name in dir_names:
        if (folder / name).is_dir():
            parts = tenx_files(tenx_folder(folder / name, genome=genome))
            return Source(path, folder / name, list(parts.values()), parts)
    return None


def _resolve_multi(path: Path, options: ReaderOptions) -> Source:
    count = path / "count" if (path / "count").is_dir() else path
    source = _inner(path, count, ((_MULTI_H5,), (_MULTI_DIR,)), options.genome)
    if source is None:
        raise ScingestError(
            f"expected count/{_MULTI_H5} or count/{_MULTI_DIR}/ in this CellRanger multi "
            "per_sample_outs/<name> folder",
            path=path,
        )
    return source


def _resolve_count(path: Path, options: ReaderOptions) -> Source:
    outs = path / "outs" if (path / "outs").is_dir() else path
    source = _inner(path, outs, (_H5_NAMES, _MTX_DIRS), options.genome)
    if source is None:
        raise ScingestError(
            f"expected outs/{_H5_NAMES[0]} or outs/{_MTX_DIRS[0]}/ (CellRanger 2: "
            f"{_H5_NAMES[1]}, {_MTX_DIRS[1]}/) in this CellRanger/Space Ranger run folder",
            path=path,
        )
    return source


def _read(source: Source, options: ReaderOptions) -> Read:
    # a matrix folder, or the .h5
    return read_parts(source, options) if source.parts else _read_h5(source, options)


_read_h5 = reads(read_tenx_h5, genome="genome")


def _detect_multi(path: Path) -> Fit:
    found = (path / "count" / _MULTI_H5).is_file() or (path / "count" / _MULTI_DIR).is_dir()
    return Fit.FILES if path.is_dir() and found else Fit.NONE


def _detect_count(path: Path) -> Fit:
    if not path.is_dir():
        return Fit.NONE
    outs = path / "outs" if (path / "outs").is_dir() else path
    is_run = (path / "outs").is_dir() or path.name == "outs"
    tenx = any((outs / n).is_file() for n in _H5_NAMES) or any(
        (outs / d).is_dir() for d in _MTX_DIRS
    )
    # a whole multi run (per_sample_outs) is not one sample: discovery expands it
    return Fit.FILES if is_run and tenx and not (outs / "per_sample_outs").is_dir() else Fit.NONE


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


FORMATS = (
    Format(
        "cellranger_multi",
        "CellRanger multi sample folder outs/per_sample_outs/<name> "
        "(count/sample_filtered_feature_bc_matrix.h5, or the folder of that name)",
        detect=_detect_multi,
        resolve=_resolve_multi,
        read=_read,
        options=frozenset({"genome"}),
        run_folder=True,
    ),
    Format(
        "cellranger_count",
        "CellRanger or Space Ranger count run folder (or its outs/) holding "
        "outs/filtered_feature_bc_matrix.h5 or the folder of that name",
        detect=_detect_count,
        resolve=_resolve_count,
        read=_read,
        options=frozenset({"genome"}),
        run_folder=True,
    ),
)
