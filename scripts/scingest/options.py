"""The reader and QC options of one sample: each defined once, typed, with its default.

:class:`ReaderOptions` (how a count file is read) and :class:`QcOptions` (how its cells are
measured and flagged) are what the sample builder (:func:`scingest.sample.build_sample`),
the readers (:func:`scingest.readers.read_counts`, each :class:`scingest.formats.Format`),
the settings (:func:`scingest.settings.reader_options`, :func:`~scingest.settings.qc_options`:
the config with a sample's sheet row) and the sheet (:mod:`scingest.sheet`: which columns
override an option) take. A field's name is its config key and, where a sheet column may
set it, that column's name; a field's ``sheet`` metadata says which:

- :data:`OVERRIDE`: a sheet column of the same name sets it for one sample (an empty cell
  keeps the config value);
- :data:`RUN_WIDE`: it must be the same for every sample (the merge joins on it): a sheet
  column of that name is refused;
- none: the config sets it for every sample.

A field with ``config`` metadata False is no config key (the job's threads, the notebook's
``make_unique``). Values are checked when an object is made: a value outside a field's
``Literal`` type raises :class:`~scingest.errors.ScingestError`. The config schema
(``workflow/schemas/config.schema.yaml``), ``config/config.yaml``, ``config/README.md`` and
the sheet schema are kept in step with these fields by ``tests/unit/test_options.py``.

Only the standard library is imported: the workflow imports this module at every start.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import field
from typing import Any, Literal, get_args, get_origin, get_type_hints

from .errors import ScingestError

Orientation = Literal["auto", "genes_x_cells", "cells_x_genes"]
Dtype = Literal["float32", "int32"]
VarNames = Literal["gene_symbols", "gene_ids"]
OtherFeatures = Literal["drop", "obsm"]
LoomLayers = Literal["keep", "drop"]
Barcodes = Literal["cells", "all", "as_cells"]
Organism = Literal["human", "mouse"]
Doublets = Literal["none", "scrublet"]

#: ``sheet`` metadata: a sheet column of the field's name overrides it for one sample.
OVERRIDE = "override"
#: ``sheet`` metadata: the same for every sample; a sheet column of the field's name is refused.
RUN_WIDE = "run_wide"

#: The ``orientation`` values (:class:`ReaderOptions`).
ORIENTATIONS: tuple[str, ...] = get_args(Orientation)
#: The ``barcodes`` values (:class:`ReaderOptions`).
BARCODES_MODES: tuple[str, ...] = get_args(Barcodes)
#: The ``doublets`` values (:class:`QcOptions`).
DOUBLET_METHODS: tuple[str, ...] = get_args(Doublets)
#: The gene set (``var`` flag, :data:`scingest.qc.QC_VARS`) each regex field replaces.
GENE_SET_FIELDS = {"mt": "mito_regex", "ribo": "ribo_regex", "hb": "hb_regex"}
#: The prefix of the QC limit fields (config keys and sheet columns ``qc_nmads``, ...); the
#: limits are :func:`scingest.qc.flag_outliers`' keywords without it.
LIMIT_PREFIX = "qc_"


class _Options:
    """What both option classes share: value checks, derived field lists, params."""

    def __post_init__(self) -> None:
        for name, kind in _types(type(self)).items():
            value = getattr(self, name)
            choices = _choices(kind)
            if choices and value not in choices:
                how = " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}"
                raise ScingestError(f"{name} must be {how}, not {value!r}")

    @classmethod
    def names(cls, *, sheet: str | None = None, config: bool | None = None) -> tuple[str, ...]:
        """The field names, in order: all, or those of one ``sheet`` kind or ``config`` flag.

        Parameters
        ----------
        sheet
            :data:`OVERRIDE` or :data:`RUN_WIDE`: only the fields of that kind.
        config
            True: only config keys; False: only the fields that are none.

        Returns
        -------
        The names.
        """
        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if (sheet is None or f.metadata.get("sheet") == sheet)
            and (config is None or f.metadata.get("config", True) == config)
        )

    def params(self) -> dict[str, Any]:
        """The options the config and the sheet set, by key, in field order.

        A rule's ``params`` (Snakemake reruns a job when its params change, and compares
        plain values only, not objects); ``type(self)(**params)`` gives the options back.

        Returns
        -------
        Config key -> value, for every field that is a config key.
        """
        return {name: getattr(self, name) for name in self.names(config=True)}

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (checked as a new object)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@functools.cache
def _types(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def _choices(kind: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` type allows (also inside ``Literal[...] | None``)."""
    if get_origin(kind) is Literal:
        return get_args(kind)
    return ()


@dataclasses.dataclass(frozen=True)
class ReaderOptions(_Options):
    """How one sample's count file is read (:func:`scingest.readers.read_counts`).

    Every format takes ``dtype``, ``allow_non_integer``, ``var_names``,
    ``other_features``, ``barcodes`` and ``make_unique`` (applied to what any format
    reads); the others only the formats whose :attr:`scingest.formats.Format.options`
    name them, the rest ignore them.

    Attributes
    ----------
    orientation
        Dense text and ``mtx``: ``genes_x_cells`` (GEO: gene names in the first column,
        barcodes in the header) or ``cells_x_genes``; ``auto`` tells from the names (gene
        symbols or ids on one axis, 10x barcodes on the other), then from the sizes, and
        raises when it cannot tell; an explicit orientation the names contradict raises too.
        Sheet column: overrides.
    dtype
        dtype of the counts. float32 is exact for counts below 2**24. Run-wide.
    allow_non_integer
        Accept non-integer counts (logged as a warning) instead of raising; needs float32.
        Sheet column: overrides.
    genome
        ``10x_h5`` and ``10x_mtx`` (and the run folders holding them): the genome to read
        when the input has several; None reads every genome of an .h5 (``var["genome"]``
        says which) and the only one of a folder. Sheet column: overrides.
    var_names
        ``gene_symbols``: symbols as ``var_names``, ids in ``var["gene_ids"]``;
        ``gene_ids``: ids as ``var_names``, symbols in ``var["gene_symbols"]``. Run-wide.
    other_features
        Features that are not Gene Expression (Antibody Capture, CRISPR Guide Capture,
        Custom): ``drop`` leaves them out (counted in the log); ``obsm`` keeps each type as
        a CSR matrix in ``obsm["<type>_counts"]`` (``protein_counts`` for antibodies) with
        its feature names in ``uns["feature_names"]``. Run-wide.
    h5ad_layer
        ``h5ad`` and ``zarr``: the layer holding raw counts (``raw``: ``.raw`` when there
        is no layer of that name); None reads ``X``. Sheet column: overrides.
    loom_layers
        ``loom``: ``keep`` keeps its other layers (velocyto's ``spliced``, ``unspliced``,
        ``ambiguous``) in ``layers``; ``drop`` leaves them out.
    barcodes
        A raw matrix (every barcode seen: :func:`scingest.readers._features.keep_called_cells`
        says how one is told): ``cells`` keeps its called cells (the tool's own calls where
        the files carry them, else CellRanger's ordmag + EmptyDrops,
        :func:`scingest.cells.call_cells`); ``all`` keeps every barcode with counts, with
        ``uns["cell_calls"]["is_cell"]`` saying which are cells; ``as_cells`` takes every
        barcode as a cell. Sheet column: overrides.
    make_unique
        Make duplicate gene names unique (``name``, ``name-1``, ...), logging how many.
        No config key (always on in the workflow).
    threads
        CPUs the read may keep busy (the dense text reader's helper threads); ``1``: the
        calling thread only; None: as many helpers as help. No config key: the job's.
    """

    orientation: Orientation = field(default="auto", metadata={"sheet": OVERRIDE})
    dtype: Dtype = field(default="float32", metadata={"sheet": RUN_WIDE})
    allow_non_integer: bool = field(default=False, metadata={"sheet": OVERRIDE})
    genome: str | None = field(default=None, metadata={"sheet": OVERRIDE})
    var_names: VarNames = field(default="gene_symbols", metadata={"sheet": RUN_WIDE})
    other_features: OtherFeatures = field(default="drop", metadata={"sheet": RUN_WIDE})
    h5ad_layer: str | None = field(default=None, metadata={"sheet": OVERRIDE})
    loom_layers: LoomLayers = "drop"
    barcodes: Barcodes = field(default="cells", metadata={"sheet": OVERRIDE})
    make_unique: bool = field(default=True, metadata={"config": False})
    threads: int | None = field(default=None, metadata={"config": False})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.allow_non_integer and self.dtype == "int32":
            raise ScingestError(
                "allow_non_integer needs dtype float32: int32 cannot hold fractions"
            )


@dataclasses.dataclass(frozen=True)
class QcOptions(_Options):
    """How one sample's cells are measured and flagged (:mod:`scingest.qc`).

    The ``qc_*`` fields are the limits of the outlier flags: :func:`scingest.qc.flag_outliers`
    takes them without the prefix (:meth:`outlier_limits`), and
    :data:`scingest.qc.QC_METRICS` says which criterion uses which. ``None`` sets no limit.

    Attributes
    ----------
    organism
        Chooses the gene sets' regexes (:data:`scingest.qc.GENE_SETS`).
    mito_regex, ribo_regex, hb_regex
        Regex of the mitochondrial, ribosomal protein and haemoglobin gene names, replacing
        the organism's (None keeps it).
    percent_top
        Sizes of the ``pct_counts_in_top_{n}_genes`` metrics (sizes above a sample's gene
        count are left out).
    qc_nmads
        MADs from the median of log1p total counts, log1p genes and the top-20 share
        beyond which a cell is flagged. Sheet column: overrides.
    qc_nmads_mt
        MADs above the median % mito beyond which a cell is flagged (the limit is never
        below :data:`scingest.qc.MIN_LIMIT_PCT_MT`). Sheet column: overrides.
    qc_max_pct_mt
        Hard limit of % mito. Sheet column: overrides.
    qc_min_counts, qc_max_counts
        Hard limits of total counts. Sheet columns: override.
    qc_min_genes, qc_max_genes
        Hard limits of genes detected. Sheet columns: override.
    doublets
        ``scrublet`` also scores doublets (:func:`scingest.qc.flag_doublets`); ``none``.
    """

    organism: Organism = "human"
    mito_regex: str | None = None
    ribo_regex: str | None = None
    hb_regex: str | None = None
    percent_top: tuple[int, ...] = (20, 50, 100)
    qc_nmads: float | None = field(default=5.0, metadata={"sheet": OVERRIDE})
    qc_nmads_mt: float | None = field(default=3.0, metadata={"sheet": OVERRIDE})
    qc_max_pct_mt: float | None = field(default=8.0, metadata={"sheet": OVERRIDE})
    qc_min_counts: float | None = field(default=None, metadata={"sheet": OVERRIDE})
    qc_max_counts: float | None = field(default=None, metadata={"sheet": OVERRIDE})
    qc_min_genes: float | None = field(default=None, metadata={"sheet": OVERRIDE})
    qc_max_genes: float | None = field(default=None, metadata={"sheet": OVERRIDE})
    doublets: Doublets = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.percent_top, tuple):  # a config list
            object.__setattr__(self, "percent_top", tuple(self.percent_top))

    @classmethod
    def limit_names(cls) -> tuple[str, ...]:
        """The outlier limits' names: the ``qc_*`` fields without their prefix."""
        return tuple(
            name.removeprefix(LIMIT_PREFIX) for name in cls.names() if name.startswith(LIMIT_PREFIX)
        )

    def outlier_limits(self) -> dict[str, float | None]:
        """The keyword arguments of :func:`scingest.qc.flag_outliers`: each ``qc_*`` field
        without its prefix (``nmads``, ``max_pct_mt``, ...)."""
        return {name: getattr(self, LIMIT_PREFIX + name) for name in self.limit_names()}

    def gene_set_regex(self) -> dict[str, str | None]:
        """Gene set -> the regex replacing the organism's (None: keep it), for
        :func:`scingest.qc.gene_set_patterns`."""
        return {key: getattr(self, name) for key, name in GENE_SET_FIELDS.items()}


#: Sheet columns that override a reader option of the same name for one sample.
READER_OVERRIDE_COLUMNS = ReaderOptions.names(sheet=OVERRIDE)
#: Reader options that must be the same for every sample: a sheet column so named is refused.
RUN_WIDE_READER_KEYS = ReaderOptions.names(sheet=RUN_WIDE)
#: Sheet columns that override a QC limit of the same name for one sample (numbers).
QC_OVERRIDE_COLUMNS = QcOptions.names(sheet=OVERRIDE)


def split_options(
    options: Mapping[str, Any],
    reader: ReaderOptions | None = None,
    qc: QcOptions | None = None,
) -> tuple[ReaderOptions, QcOptions]:
    """``reader`` and ``qc`` (default: the defaults) with ``options`` applied, each key to
    the class that has that field.

    Parameters
    ----------
    options
        Field name -> value, of either class.
    reader, qc
        The options to start from.

    Returns
    -------
    The reader and the QC options.

    Raises
    ------
    TypeError
        For a key that is a field of neither class, naming the fields.
    """
    reader = ReaderOptions() if reader is None else reader
    qc = QcOptions() if qc is None else qc
    unknown = [k for k in options if k not in ReaderOptions.names() and k not in QcOptions.names()]
    if unknown:
        known = ", ".join((*ReaderOptions.names(), *QcOptions.names()))
        raise TypeError(f"unknown option(s) {', '.join(unknown)}: expected some of {known}")
    reader = reader.replace(**{k: v for k, v in options.items() if k in ReaderOptions.names()})
    qc = qc.replace(**{k: v for k, v in options.items() if k in QcOptions.names()})
    return reader, qc
