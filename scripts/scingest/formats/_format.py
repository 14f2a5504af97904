"""A format's entry in the registry, and what its functions hand on to each other."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import scipy.sparse as sp

    from ..options import ReaderOptions
    from ..readers._features import RawCounts


class Fit(enum.IntEnum):
    """How surely a path is an input of a format (:attr:`Format.detect`)."""

    #: Not this format.
    NONE = 0
    #: By its name or shape alone: a suffix, a folder holding ``matrix.mtx``.
    NAME = 1
    #: By the files a counting tool writes (a run folder, ``cells_x_genes.mtx``): wins
    #: over :attr:`NAME` (a ``*_probe_bc_matrix.h5`` is an ``.h5`` too).
    FILES = 2


@dataclass(frozen=True)
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


@dataclass
class Source:
    """A sample's input as its format resolved it: what is read, and every file it is made of.

    Attributes
    ----------
    path
        The sample's ``path``.
    target
        What the reader reads: ``path``, or the file or folder inside it (a run folder's
        ``.h5``, a Solo.out's ``Gene/filtered``).
    files
        Every file (never a folder) the input is made of, the raw sibling's included: the
        workflow reruns a sample when one changes and sizes its job by them, discovery
        groups them into one sample, provenance hashes each, and none may be empty.
    parts
        The files by role, for the reader (``matrix``, ``barcodes``, ``features``, ...).
    info
        What the input's own metadata says (alevin-fry's ``quant.json``).
    raw
        Why the input is a raw matrix by its tool's naming, or None.
    """

    path: Path
    target: Path
    files: list[Path]
    parts: dict[str, Path] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    raw: RawInput | None = None


def one_file(path: Path, options: ReaderOptions) -> Source:
    """The :attr:`Format.resolve` of a format whose input is ``path`` alone."""
    return Source(path, path, [path])


def store_files(path: Path, options: ReaderOptions) -> Source:
    """The :attr:`Format.resolve` of a format whose input is one file, or a folder of files
    (a ``.zarr`` store): every file in it."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return Source(path, path, files)


def reads(reader: Callable[..., Any], **taken: str) -> Callable[[Source, ReaderOptions], Read]:
    """A :attr:`Format.read` that calls ``reader(source.target, dtype=..., allow_non_integer=...,
    **{argument: options.<field>})``, for ``taken`` mapping argument names to option fields.

    ``reader`` returns the counts (:class:`~scingest.readers._features.RawCounts`), or the
    counts and further layers.
    """

    def read(source: Source, options: ReaderOptions) -> Read:
        result = reader(
            source.target,
            dtype=options.dtype,
            allow_non_integer=options.allow_non_integer,
            **{argument: getattr(options, field) for argument, field in taken.items()},
        )
        return Read(*result) if isinstance(result, tuple) else Read(result)

    return read


@dataclass
class Read:
    """What a format's reader returns.

    Attributes
    ----------
    counts
        The counts and names, before feature types are split and ``var_names`` chosen.
    layers
        Further count matrices by name (cells x genes CSR; a loom's ``spliced``, ...).
    raw
        Why the input is a raw matrix by its naming (:attr:`Source.raw`; set by
        :func:`scingest.formats.read_raw`).
    """

    counts: RawCounts
    layers: dict[str, sp.csr_matrix] = field(default_factory=dict)
    raw: RawInput | None = None


@dataclass(frozen=True)
class Format:
    """One input format: its name, how it is recognised, its files, its reader.

    Attributes
    ----------
    name
        The sheet's ``format`` value.
    description
        What it is, in one line (error messages list it; the docs' formats tables say more).
    detect
        How surely a path is one of its inputs (:class:`Fit`); it looks at names and files
        only, never reads one.
    resolve
        The input at a path with the reader options: every file it is made of, what is
        read, and whether it is raw by its tool's naming; raises
        :class:`~scingest.errors.ScingestError` naming what is missing.
    read
        The counts of a resolved input; the reader options it is given are those of
        :data:`EVERY_FORMAT` and :attr:`options`, the others at their defaults.
    options
        The reader options beyond :data:`EVERY_FORMAT` it takes (``orientation``,
        ``genome``, ``h5ad_layer``, ``loom_layers``, ``threads``); the others do not apply.
    hint
        Why a path that looks like one of its inputs is not one, for the error when no
        format fits (None: nothing to say).
    run_folder
        A folder of it is one sample as its tool wrote it: discovery names the sample after
        the folder (with the default filename pattern).
    """

    name: str
    description: str
    detect: Callable[[Path], Fit]
    resolve: Callable[[Path, ReaderOptions], Source]
    read: Callable[[Source, ReaderOptions], Read]
    options: frozenset[str] = frozenset()
    hint: Callable[[Path], str | None] | None = None
    run_folder: bool = False


#: The reader options every format takes: :func:`scingest.readers.read_counts` applies them
#: to whatever a format reads (``dtype`` and ``allow_non_integer`` by the reader's count
#: checks).
EVERY_FORMAT = frozenset(
    {"dtype", "allow_non_integer", "var_names", "other_features", "barcodes", "make_unique"}
)
