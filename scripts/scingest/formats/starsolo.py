"""STARsolo output (``starsolo``): ``Solo.out`` or the STAR run folder holding it.

``Solo.out/Gene/filtered/`` (else ``GeneFull/filtered/``) is an uncompressed 10x matrix
folder (``matrix.mtx``, ``features.tsv``, ``barcodes.tsv``), read by :mod:`.tenx`. A
``raw/`` folder given as the path is a ``10x_mtx`` raw matrix (:func:`._files.tenx_raw`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ScingestError
from ..options import ReaderOptions
from ._files import tenx_files
from ._format import Fit, Format, Source
from .tenx import read_parts

#: The feature folders read, in order of preference.
_FEATURES = ("Gene", "GeneFull")


def _solo_out(path: Path) -> Path | None:
    """The Solo.out folder of a STAR run folder, Solo.out itself, or None."""
    if path.name == "Solo.out" or any((path / f).is_dir() for f in _FEATURES):
        return path
    if (path / "Solo.out").is_dir():
        return path / "Solo.out"
    return None


def _filtered(path: Path) -> Path | None:
    """The filtered matrix folder that ``path`` is or holds, or None."""
    if (path / "matrix.mtx").is_file():  # a Gene/filtered folder itself
        return path
    if path.name in _FEATURES and (path / "filtered").is_dir():
        return path / "filtered"
    solo = _solo_out(path)
    for feature in _FEATURES:
        folder = (solo or path) / feature / "filtered"
        if folder.is_dir():
            return folder
    return None


def _resolve(path: Path, options: ReaderOptions) -> Source:
    folder = _filtered(path)
    if folder is None:
        raise ScingestError(
            "expected Solo.out/Gene/filtered/ or Solo.out/GeneFull/filtered/ (matrix.mtx, "
            "features.tsv, barcodes.tsv) in this STARsolo output",
            path=path,
        )
    parts = tenx_files(folder)
    return Source(path, folder, list(parts.values()), parts)


def _detect(path: Path) -> Fit:
    if not path.is_dir():
        return Fit.NONE
    solo = _solo_out(path)
    feature = path.name in _FEATURES and (path / "filtered").is_dir()  # Solo.out/GeneFull
    found = feature or (
        solo is not None and any((solo / f / "filtered").is_dir() for f in _FEATURES)
    )
    return Fit.FILES if found else Fit.NONE


FORMATS = (
    Format(
        "starsolo",
        "STARsolo output: Solo.out (or the STAR run folder holding it); reads "
        "Gene/filtered, else GeneFull/filtered",
        detect=_detect,
        resolve=_resolve,
        read=read_parts,
        run_folder=True,
    ),
)
