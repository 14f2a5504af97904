"""Input formats: one registry entry per format, each format's code in one module.

A :class:`Format` says how its inputs are recognised (:attr:`~Format.detect`), which files
an input is made of and what is read (:attr:`~Format.resolve`), how it is read
(:attr:`~Format.read`) and which reader options it takes (:attr:`~Format.options`).
:data:`FORMATS` holds every format by name, from the modules named for what they read:
:mod:`.dense` (csv, tsv), :mod:`.tenx` (10x_mtx, 10x_triplet), :mod:`.mtx`, :mod:`.h5`
(10x_h5, 10x_probe_h5), :mod:`.h5ad`, :mod:`.zarr`, :mod:`.loom`, :mod:`.cellranger`
(cellranger_count, cellranger_multi), :mod:`.starsolo`, :mod:`.kb` and :mod:`.alevin`
(alevin, alevin_fry); :mod:`._files` holds the file-set helpers several of them share.

The workflow imports this package at every start (the sheet, each job's input files), so
its modules import only the standard library at the top; a reader imports numpy, h5py,
anndata or scanpy inside its functions, and the reading machinery several formats share
stays in :mod:`scingest.readers` (the Matrix Market helpers, the dense text parser, the
orientation rules, :class:`~scingest.readers._features.RawCounts`).

To add a format: write a module here with its ``FORMATS`` tuple of :class:`Format`, add
the module to :data:`FORMATS` below, add its name to the sheet schema's ``format`` enum and
its row to the formats table of config/README.md (``tests/unit/test_formats.py`` checks
that they agree), and test it on a file its tool wrote.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from os import PathLike
from pathlib import Path

from ..errors import ScingestError
from ..files import check_not_empty
from ..options import ReaderOptions
from . import alevin, cellranger, dense, h5, h5ad, kb, loom, mtx, starsolo, tenx, zarr
from ._files import MTX, MTX_COMPANION, TENX_COMPANION
from ._format import EVERY_FORMAT, Fit, Format, RawInput, Read, Source

logger = logging.getLogger(__name__)

__all__ = [
    "EVERY_FORMAT",
    "FORMATS",
    "Fit",
    "Format",
    "RawInput",
    "Read",
    "Source",
    "detect_format",
    "format_named",
    "group_companions",
    "input_files",
    "raw_input",
    "read_raw",
    "tool_layouts",
]

#: Every format by name, in the order messages list them.
FORMATS: dict[str, Format] = {
    f.name: f
    for module in (dense, tenx, h5, mtx, h5ad, cellranger, starsolo, kb, alevin, loom, zarr)
    for f in module.FORMATS
}


def format_named(name: str, *, path: str | PathLike[str] | None = None) -> Format:
    """The format of a name.

    Parameters
    ----------
    name
        A format name (not ``auto``).
    path
        The input, named in the error.

    Returns
    -------
    Its entry of :data:`FORMATS`.

    Raises
    ------
    ScingestError
        For a name that is no format, listing the formats.
    """
    if name not in FORMATS:
        raise ScingestError(
            f"unknown format {name!r}: expected one of auto, {', '.join(FORMATS)}", path=path
        )
    return FORMATS[name]


def detect_format(path: str | PathLike[str]) -> str:
    """Guess a format name from a path; raise when the guess would be unsure.

    The formats recognised by a tool's files (run folders, ``.loom``, ``.zarr``,
    ``*_probe_bc_matrix.h5``, ``cells_x_genes.mtx``, ...; :attr:`Fit.FILES`) come first: a
    path holding the files of several is an error. Otherwise by name: a folder holding
    ``matrix.mtx[.gz]`` (or one genome subfolder holding it) is ``10x_mtx``; ``.h5``/``.hdf5``
    is ``10x_h5``; ``.h5ad`` is ``h5ad``; ``.mtx[.gz]`` with ``_rows``/``_cols`` name files
    beside it is ``mtx``, and otherwise ``<prefix>matrix.mtx[.gz]`` is ``10x_triplet``;
    ``.csv``/``.tsv``/``.txt``/``.tab`` (optionally .gz) are dense text.

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
    fits = {name: fmt.detect(path) for name, fmt in FORMATS.items()}
    best = max(fits.values())
    found = [name for name, fit in fits.items() if fit == best and fit > Fit.NONE]
    if len(found) == 1:
        return found[0]
    if found:
        reason = f"it holds the files of several layouts: {', '.join(found)}"
    else:
        hints = (fmt.hint(path) for fmt in FORMATS.values() if fmt.hint is not None)
        reason = next((h for h in hints if h), "no known format has this name")
    considered = "; ".join(f"{name} ({fmt.description})" for name, fmt in FORMATS.items())
    raise ScingestError(
        f"cannot tell the format from the path ({reason}). Considered: {considered}. "
        "Set the sheet's format column",
        path=path,
    )


def tool_layouts(path: str | PathLike[str]) -> list[str]:
    """The formats whose counting tool's own files are at ``path`` (:attr:`Fit.FILES`).

    Parameters
    ----------
    path
        A file or folder.

    Returns
    -------
    Their names: none, one, or several when unsure.
    """
    path = Path(path)
    return [name for name, fmt in FORMATS.items() if fmt.detect(path) == Fit.FILES]


def _resolve(
    path: str | PathLike[str], format: str, options: ReaderOptions | None
) -> tuple[Format, Source, ReaderOptions]:
    """The format, the input resolved, and the options it takes (the others at defaults)."""
    fmt = format_named(format, path=path)
    options = ReaderOptions() if options is None else options
    ignored = set(ReaderOptions.names()) - EVERY_FORMAT - fmt.options
    taken = replace(options, **{name: getattr(ReaderOptions, name) for name in ignored})
    return fmt, fmt.resolve(Path(path), taken), taken


def input_files(
    path: str | PathLike[str], format: str, options: ReaderOptions | None = None
) -> list[Path]:
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
    options
        Its reader options (``genome``: the genome subfolder of a CellRanger 2 folder
        holding several); default: the defaults.

    Returns
    -------
    The files (never folders): a 10x folder's or triplet's three, a Matrix Market file
    and its name files, a tool's files, else ``path``; for a raw matrix with the tool's
    filtered matrix beside it, also the file holding that one's barcodes.

    Raises
    ------
    ScingestError
        When a file the format needs is missing, or for an unknown format.
    """
    return _resolve(path, format, options)[1].files


def raw_input(
    path: str | PathLike[str], format: str, options: ReaderOptions | None = None
) -> RawInput | None:
    """Whether an input is a raw matrix by its tool's naming, and its filtered sibling.

    Parameters
    ----------
    path
        The sample's ``path``.
    format
        Its format.
    options
        Its reader options; default: the defaults.

    Returns
    -------
    The reason and sibling (:class:`RawInput`); None when the naming does not say raw.

    Raises
    ------
    ScingestError
        As :func:`input_files`.
    """
    return _resolve(path, format, options)[1].raw


def read_raw(path: str | PathLike[str], format: str, options: ReaderOptions | None = None) -> Read:
    """Read an input with its format's reader: resolved once, empty files refused first.

    The format's reader gets the options it takes (:attr:`Format.options` and
    :data:`EVERY_FORMAT`), the others at their defaults.

    Parameters
    ----------
    path
        The sample's ``path``.
    format
        Its format (not ``auto``).
    options
        The reader options; default: the defaults.

    Returns
    -------
    The counts, further layers, and why the input is raw by its naming (:class:`Read`).

    Raises
    ------
    ScingestError
        For an unknown format, a missing or empty file, and whatever the reader refuses.
    """
    fmt, source, taken = _resolve(path, format, options)
    check_not_empty(source.files)
    if source.target != source.path:
        logger.info("%s (%s): reading %s", path, format, source.target)
    read = fmt.read(source, taken)
    read.raw = source.raw
    return read


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
        if entry.is_file() and MTX.search(entry.name):
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
