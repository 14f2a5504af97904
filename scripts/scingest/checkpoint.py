"""The on-disk contract of a checkpoint and of the merged and filtered files.

Every module that reads or writes these files takes their names and checks from here
(:mod:`scingest.sample` writes checkpoints; :mod:`scingest.merge`, :mod:`scingest.filtering`,
:mod:`scingest.summary`, :mod:`scingest.plots` and :mod:`scingest.collection` read them;
:mod:`scingest.sheet` refuses sheet columns that would clash with them).

A checkpoint (``results/samples/{sample}.h5ad``) is an h5ad file holding one sample:

- ``X``: the raw counts, cells x genes, stored as ``csr_matrix`` (:func:`check_csr`) with
  int32 ``indices`` and, while the values fit, int32 ``indptr`` (as scipy builds it; mixed
  index dtypes break scipy's item assignment); float32 by default, int32 on request.
- ``layers["counts"]`` (:data:`COUNTS_LAYER`): the same counts, stored once: an HDF5 hard
  link to ``X``'s group, which every HDF5 reader follows and anndata reads as a second,
  independent array. The merge keeps the link where every sample has it.
- ``obs``: ``obs_names`` ``{sample}-{barcode}``; :data:`SAMPLE` (categorical, the batch
  label), :data:`BARCODE` (the input's cell barcode), the sheet's metadata columns, the
  per-cell QC metrics of ``scanpy.pp.calculate_qc_metrics`` (:data:`QC_METRIC_COLUMNS`),
  the outlier flags (``outlier_*``) and :data:`QC_PASS`, and with doublet detection
  :data:`DOUBLET_SCORE` and :data:`PREDICTED_DOUBLET`. A metadata column may take none of
  these names (:func:`is_reserved_obs`).
- ``var``: unique gene names as ``var_names`` (symbols made unique by default, ids with
  ``var_names: gene_ids``), ``gene_ids``/``feature_types`` where the input has them,
  boolean ``mt``/``ribo``/``hb`` (the mito pattern follows the organism or a config regex)
  and scanpy's per-gene QC metrics.
- ``obsm``: other feature types of the input (antibody capture, ...) as CSR matrices
  (:func:`sparse_obsm_keys`), their column names in ``uns["feature_names"][key]``
  (:func:`feature_names_key`).
- ``uns["scingest"]`` (:data:`PROVENANCE`): input files, sizes and sha256, format and
  reader, metadata, package versions, the parameters, and the QC limits the flags applied
  (``uns["scingest"]["qc_thresholds"]``, :data:`QC_THRESHOLDS_KEY`, read by
  :func:`read_qc_obs`).
- Strings in anndata's legacy encoding (:func:`scingest.compat.legacy_strings`), the same
  under anndata 0.12 and 0.13, so that R readers and older anndata open every file.

The merged file (``results/merged.h5ad``) follows the same contract over all samples
(``uns["scingest"]`` then holds every sample's provenance and the merge report); cells of
samples without an ``obsm`` entry are named in ``obs["has_{key}"]`` (:func:`has_obsm_column`).
The filtered file keeps the cells with ``qc_pass`` and adds ``var["n_cells_pass"]``.
New files of either kind start from :func:`new_h5ad`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from os import PathLike
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import ScingestError
from .files import atomic_path

if TYPE_CHECKING:
    import h5py

# h5py and anndata (and .compat, which needs anndata) are imported by the functions that read
# or write files: the workflow imports this module for its names when it parses the
# Snakefile (sheet columns may not take them), and every `snakemake` start would pay for
# those imports (bench/README, "Issue 13, job start-up, second pass").

#: The layer holding the raw counts (the same as ``X`` in a checkpoint).
COUNTS_LAYER = "counts"
#: The batch label of every cell (categorical; one value per checkpoint).
SAMPLE = "sample"
#: The cell barcode as the input names it (``obs_names`` are ``{sample}-{barcode}``).
BARCODE = "barcode"
#: Per-cell QC metrics in ``obs``, as ``scanpy.pp.calculate_qc_metrics`` names and computes them
#: (:func:`scingest.qc.compute_qc_metrics`): ``{qc_var}`` stands for each gene set
#: (``mt``, ``ribo``, ``hb``), ``{n}`` for each size of ``percent_top``.
QC_METRIC_COLUMNS = (
    "n_genes_by_counts",
    "log1p_n_genes_by_counts",
    "total_counts",
    "log1p_total_counts",
    "pct_counts_in_top_{n}_genes",
    "total_counts_{qc_var}",
    "log1p_total_counts_{qc_var}",
    "pct_counts_{qc_var}",
)
#: Prefix of the outlier flags (:data:`scingest.qc.OUTLIER_FLAGS`), one per criterion.
OUTLIER_PREFIX = "outlier_"
#: Prefix of the QC verdicts; :data:`QC_PASS` is the one written today.
QC_PREFIX = "qc_"
#: True for the cells that no QC flag (outlier or doublet) caught.
QC_PASS = "qc_pass"
#: With ``barcodes: all``, True for the barcodes called cells (the others are background,
#: kept and flagged: they never pass QC).
IS_CELL = "is_cell"
#: What was decided about a raw matrix's barcodes, in ``uns["scingest"]``
#: (:class:`scingest.readers._features.CellSelection`'s info).
CELL_CALLS = "cells"
#: The same, as a path inside the file.
CELL_CALLS_KEY = f"uns/scingest/{CELL_CALLS}"
#: Doublet detection's score and call (:func:`scingest.qc.flag_doublets`).
DOUBLET_SCORE = "doublet_score"
PREDICTED_DOUBLET = "predicted_doublet"
#: obs columns written by the workflow, by exact name.
RESERVED_OBS_COLUMNS = frozenset(
    {
        SAMPLE,
        BARCODE,
        IS_CELL,
        DOUBLET_SCORE,
        PREDICTED_DOUBLET,
        *(c for c in QC_METRIC_COLUMNS if "{" not in c),
    }
)
#: obs columns written by the workflow, by pattern: the templated QC metrics (any gene set,
#: any size) and every name under the QC prefixes.
RESERVED_OBS_PATTERNS = (
    *(
        re.compile(
            "^" + re.escape(c).replace(r"\{n\}", r"\d+").replace(r"\{qc_var\}", r"\w+") + "$"
        )
        for c in QC_METRIC_COLUMNS
        if "{" in c
    ),
    re.compile(rf"^{QC_PREFIX}\w+$"),
    re.compile(rf"^{OUTLIER_PREFIX}\w+$"),
)

#: The provenance group: ``uns["scingest"]``.
PROVENANCE = "scingest"
#: The QC limits each flag applied, ``{flag: [lower, upper]}``, in ``uns["scingest"]``.
QC_THRESHOLDS = "qc_thresholds"
#: The same, as a path inside the file.
QC_THRESHOLDS_KEY = f"uns/{PROVENANCE}/{QC_THRESHOLDS}"
#: The group of ``uns`` naming the columns of each ``obsm`` matrix.
FEATURE_NAMES = "feature_names"
#: Groups of an AnnData file that a new file starts with, empty until written.
ELEMENT_GROUPS = ("layers", "obsm", "varm", "obsp", "varp")


def pct_top_column(n: int) -> str:
    """The obs column of the % of counts in a cell's ``n`` most expressed genes.

    Parameters
    ----------
    n
        The number of genes (a size of ``percent_top``).

    Returns
    -------
    The column name, e.g. ``pct_counts_in_top_20_genes``.
    """
    return f"pct_counts_in_top_{int(n)}_genes"


def has_obsm_column(key: str) -> str:
    """The obs column of a merged file saying which cells have ``obsm[key]``.

    Parameters
    ----------
    key
        An ``obsm`` key that only some samples have.

    Returns
    -------
    The column name, ``has_{key}``.
    """
    return f"has_{key}"


def feature_names_key(key: str) -> str:
    """Where the column names of ``obsm[key]`` are stored.

    Parameters
    ----------
    key
        An ``obsm`` key.

    Returns
    -------
    The path inside the h5ad file, ``uns/feature_names/{key}``.
    """
    return f"uns/{FEATURE_NAMES}/{key}"


def is_reserved_obs(name: str) -> bool:
    """Whether the workflow writes an obs column of this name itself.

    Parameters
    ----------
    name
        A column name, e.g. of a sample sheet.

    Returns
    -------
    True for :data:`RESERVED_OBS_COLUMNS` and names that match
    :data:`RESERVED_OBS_PATTERNS`.
    """
    return name in RESERVED_OBS_COLUMNS or any(p.match(name) for p in RESERVED_OBS_PATTERNS)


def check_csr(group: h5py.Group | h5py.Dataset, key: str) -> None:
    """Refuse a stored matrix that is not a CSR matrix.

    Parameters
    ----------
    group
        The stored element (a group for sparse matrices, a dataset for dense ones).
    key
        Its name in the file, for the message.

    Raises
    ------
    ScingestError
        When ``group`` is not encoded as ``csr_matrix``; names the file.
    """
    kind = group.attrs.get("encoding-type", "dense array")
    if kind != "csr_matrix":
        raise ScingestError(
            f"{key} is stored as {kind}, expected csr_matrix", path=group.file.filename
        )


def csr_group(f: h5py.File, key: str) -> h5py.Group:
    """The group of the CSR matrix stored under ``key``.

    Parameters
    ----------
    f
        An open h5ad file.
    key
        The matrix's path, e.g. ``X`` or ``layers/counts``.

    Returns
    -------
    The matrix's group (``data``, ``indices``, ``indptr``).

    Raises
    ------
    ScingestError
        When there is no ``key`` or it is not a CSR matrix; names the file.
    """
    group = f.get(key)
    if group is None:
        raise ScingestError(f"no {key}: expected a csr_matrix", path=f.filename)
    check_csr(group, key)
    return group


def sparse_obsm_keys(f: h5py.File) -> list[str]:
    """Names of the ``obsm`` entries stored as CSR (the readers' other feature types).

    Parameters
    ----------
    f
        An open h5ad file.

    Returns
    -------
    The keys, in the file's order; empty without ``obsm``.
    """
    return [
        k for k in f.get("obsm", []) if f[f"obsm/{k}"].attrs.get("encoding-type") == "csr_matrix"
    ]


def read_feature_names(f: h5py.File, key: str) -> pd.Index | None:
    """The column names of ``obsm[key]``, as the readers store them in ``uns``.

    Parameters
    ----------
    f
        An open h5ad file.
    key
        An ``obsm`` key.

    Returns
    -------
    The names, or ``None`` when the file does not name the columns.
    """
    from anndata.io import read_elem

    stored = f.get(feature_names_key(key))
    return None if stored is None else pd.Index(read_elem(stored))


def read_tables(path: str | PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A checkpoint's ``obs`` and ``var``, without its matrices.

    Parameters
    ----------
    path
        An h5ad file.

    Returns
    -------
    ``obs`` and ``var`` as data frames.
    """
    import h5py
    from anndata.io import read_elem

    with h5py.File(path, "r") as f:
        return read_elem(f["obs"]), read_elem(f["var"])


def read_qc_obs(path: str | PathLike[str]) -> tuple[pd.DataFrame, dict[str, list[float]]]:
    """A checkpoint's ``obs`` and the QC limits its flags applied.

    Reads neither ``X`` nor the layers, so it is cheap however large the sample.

    Parameters
    ----------
    path
        A checkpoint.

    Returns
    -------
    obs
        The cells' metadata, QC metrics and flags.
    thresholds
        ``{flag: [lower, upper]}`` from ``uns["scingest"]["qc_thresholds"]`` (empty when
        the file has none), as floats.

    Raises
    ------
    ScingestError
        When ``obs`` has no :data:`QC_PASS` column (a checkpoint of an older scingest).
    """
    import h5py
    from anndata.io import read_elem

    with h5py.File(path, "r") as f:
        obs = read_elem(f["obs"])
        thresholds = read_elem(f[QC_THRESHOLDS_KEY]) if QC_THRESHOLDS_KEY in f else {}
    if QC_PASS not in obs.columns:
        raise ScingestError(
            f"checkpoint has no QC flags (obs column {QC_PASS}): it was written by an older "
            "scingest; delete it so the workflow rewrites it",
            path=path,
        )
    return obs, {k: [float(x) for x in v] for k, v in thresholds.items()}


def read_cell_calls(path: str | PathLike[str]) -> dict[str, Any]:
    """What was decided about a checkpoint's barcodes (``uns["scingest"]["cells"]``).

    Parameters
    ----------
    path
        A checkpoint.

    Returns
    -------
    The info of :class:`scingest.readers._features.CellSelection` (``raw``, ``cells``,
    ``barcodes_with_counts``, ``cut_total``, ``rank_curve``, ...); empty for a checkpoint
    written before scingest called cells.
    """
    import h5py
    from anndata.io import read_elem

    with h5py.File(path, "r") as f:
        return read_elem(f[CELL_CALLS_KEY]) if CELL_CALLS_KEY in f else {}


#: Each sample's ``obs`` and QC limits (:func:`read_qc_samples`): sample -> ``obs``, and
#: sample -> ``{flag: [lower, upper]}``.
QcSamples = tuple[dict[str, pd.DataFrame], dict[str, dict[str, list[float]]]]


def read_qc_samples(checkpoints: Mapping[str, str | PathLike[str]]) -> QcSamples:
    """:func:`read_qc_obs` of each checkpoint: every sample's ``obs`` and QC limits.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path.

    Returns
    -------
    obs
        Sample -> its ``obs``.
    limits
        Sample -> ``{flag: [lower, upper]}``.
    """
    obs, limits = {}, {}
    for sample, path in checkpoints.items():
        obs[sample], limits[sample] = read_qc_obs(path)
    return obs, limits


@contextmanager
def new_h5ad(path: str | PathLike[str]) -> Iterator[h5py.File]:
    """Write a new h5ad file element by element, atomically.

    The file is opened under a temporary name and starts with anndata's file attributes
    (``encoding-type`` ``anndata``, ``encoding-version`` ``0.1.0``) and the empty groups of
    :data:`ELEMENT_GROUPS`; the caller writes ``obs``, ``var``, the matrices (into the
    groups, e.g. ``layers/counts``) and ``uns``. Strings are written in the legacy
    encoding. The file is renamed to ``path`` when the block ends, and removed if it
    raises.

    Parameters
    ----------
    path
        Where the complete file goes.

    Yields
    ------
    The open, writable :class:`h5py.File`.
    """
    import h5py
    from anndata.io import write_elem

    from .compat import legacy_strings

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f, legacy_strings():
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        for key in ELEMENT_GROUPS:
            write_elem(f, key, {})
        yield f
