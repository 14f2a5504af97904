"""One sample's checkpoint: read, counts layer, metadata, QC metrics, provenance."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from os import PathLike
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checkpoint import (
    BARCODE,
    CELL_CALLS,
    COUNTS_LAYER,
    IS_CELL,
    PROVENANCE,
    QC_PASS,
    QC_THRESHOLDS,
    SAMPLE,
)
from .compat import legacy_strings, named_layers, plain_strings
from .errors import ScingestError
from .files import atomic_path
from .formats import detect_format, input_files
from .h5write import GZIP_LEVEL, Compression, workers, write_csr
from .options import QcOptions, ReaderOptions, split_options
from .provenance import file_provenance, h5ad_safe, package_versions
from .qc import (
    compute_qc_metrics,
    flag_doublets,
    flag_genes,
    flag_outliers,
    gene_set_patterns,
)
from .readers import read_counts
from .readers._features import GENOME
from .sheet import is_reserved_column

logger = logging.getLogger(__name__)


def build_sample(
    path: str | PathLike[str],
    *,
    sample: str,
    format: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    reader: ReaderOptions | None = None,
    qc: QcOptions | None = None,
    **options: Any,
) -> ad.AnnData:
    """Read one sample and annotate it to the checkpoint data contract.

    See :mod:`scingest.checkpoint` for the contract. Outlier cells are flagged, never
    removed.

    Parameters
    ----------
    path
        The sample's count file (or folder, for formats made of several files).
    sample
        The sample's name: ``obs["sample"]`` and the prefix of ``obs_names``.
    format
        The input format; ``None`` or ``"auto"`` detects it from the name
        (:func:`scingest.formats.detect_format`).
    metadata
        Columns for ``obs``, one value per sample (the sheet's metadata); names the
        workflow writes itself are refused.
    reader
        How the input is read (:func:`scingest.readers.read_counts`); default: the
        defaults. With ``barcodes="all"`` a raw matrix keeps every barcode with counts:
        ``obs["is_cell"]`` says which are called cells; the QC limits are computed over
        those, and the others never pass.
    qc
        The gene sets, QC metrics, outlier limits (:func:`scingest.qc.flag_outliers`) and
        doublet detection (``scrublet``: :func:`scingest.qc.flag_doublets`); default: the
        defaults.
    **options
        Fields of :class:`~scingest.options.ReaderOptions` or
        :class:`~scingest.options.QcOptions` replacing those of ``reader`` and ``qc``
        (``threads=2``, ``organism="mouse"``).

    Returns
    -------
    AnnData with CSR counts in ``X`` and ``layers["counts"]``, ``obs_names``
    ``{sample}-{barcode}``, ``obs`` with ``sample``, ``barcode``, the metadata, the QC
    metrics and flags (``outlier_*``, ``qc_pass``; with ``barcodes="all"`` also
    ``is_cell``), ``var`` with ``mt``/``ribo``/``hb`` flags and per-gene QC, and
    ``uns["scingest"]`` provenance (of every file the input is made of) with the options,
    the QC limits applied and, under ``cells``, what was decided about the barcodes (a raw
    matrix: why, whose cell calls, how many).

    Raises
    ------
    ScingestError
        For a metadata column the workflow writes itself or with ``/`` in its name, an
        input without cells or genes, and whatever the reader refuses.
    TypeError
        For an option that is a field of neither options class.
    """
    reader, qc = split_options(options, reader, qc)
    metadata = dict(metadata or {})
    clash = [k for k in metadata if is_reserved_column(k)]
    if clash:
        raise ScingestError(
            f"metadata column(s) {', '.join(clash)} clash with columns the workflow writes"
        )
    slashed = [k for k in metadata if "/" in k]
    if slashed:
        raise ScingestError(
            f"metadata column(s) {', '.join(slashed)} contain '/', which h5ad reads as a group "
            "path: expected names without '/'"
        )
    if format in (None, "auto"):
        format = detect_format(path)
    adata = read_counts(path, format, **dataclasses.asdict(reader))
    calls = dict(adata.uns.pop("cell_calls", {}))
    is_cell = calls.pop(IS_CELL, None)
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ScingestError(
            f"no cells or no genes ({adata.n_obs} x {adata.n_vars}): expected a count matrix",
            path=path,
        )
    barcodes = adata.obs_names.astype(str)
    obs = pd.DataFrame(index=pd.Index([f"{sample}-{b}" for b in barcodes]))
    obs[SAMPLE] = pd.Categorical([sample] * adata.n_obs)
    obs[BARCODE] = barcodes.to_numpy()
    for key, value in metadata.items():
        if value is None:  # missing in a text column: text categories, so merges can join
            obs[key] = pd.Categorical([None] * adata.n_obs, categories=pd.Index([], dtype=object))
        else:
            obs[key] = pd.Categorical([value] * adata.n_obs) if isinstance(value, str) else value
    if is_cell is not None:
        obs[IS_CELL] = np.asarray(is_cell, dtype=bool)
    for key, values in input_obs_columns(adata.obs, taken=set(obs.columns), path=path).items():
        obs[key] = values
    adata.obs = obs
    adata.layers[COUNTS_LAYER] = adata.X.copy()

    genomes = adata.var[GENOME].unique() if GENOME in adata.var.columns else []
    patterns = gene_set_patterns(
        qc.organism, overrides=qc.gene_set_regex(), several_genomes=len(genomes) > 1
    )
    if len(genomes) > 1:
        logger.info(
            "%s: genes of %d genomes (%s): the gene sets take every organism's names",
            path,
            len(genomes),
            ", ".join(map(str, genomes)),
        )
    symbols = "gene_symbols" if "gene_symbols" in adata.var.columns else None
    flagged = flag_genes(adata, patterns, symbols=symbols)
    if flagged["mt"] == 0:
        logger.warning(
            "%s: no gene matches the mitochondrial pattern %r (organism %s) or is one of the "
            "13 mitochondrial genes' Ensembl ids (human, mouse): %% mito is not measured (0 in "
            "pct_counts_mt, 'not measured' in the QC summary and plots); check organism or "
            "mito_regex",
            path,
            patterns["mt"],
            qc.organism,
        )
    compute_qc_metrics(adata, percent_top=qc.percent_top)
    cells = None if is_cell is None else obs[IS_CELL].to_numpy(dtype=bool)
    thresholds = flag_outliers(adata, **qc.outlier_limits(), cells=cells)
    doublet_limits = flag_doublets(adata, qc.doublets, cells=cells)
    if doublet_limits is not None:
        thresholds["doublet"] = doublet_limits
    adata.uns[PROVENANCE] = h5ad_safe(
        {
            "sample": sample,
            "input": {
                "path": str(path),
                "format": format,
                **_provenance(path, format, reader),
            },
            "reader": f"scingest.readers.read_counts (format {format})",
            "metadata": metadata,
            "versions": package_versions(),
            "params": {
                **reader.params(),
                "organism": qc.organism,
                "gene_set_regex": patterns,
                "percent_top": list(qc.percent_top),
                "outlier_limits": qc.outlier_limits(),
                "doublets": qc.doublets,
            },
            "genes_flagged": flagged,
            CELL_CALLS: calls,
            QC_THRESHOLDS: thresholds,
        }
    )
    logger.info(
        "%s: %d %s x %d genes, %d counts; flagged genes %s; %d cells pass QC",
        sample,
        adata.n_obs,
        "cells" if cells is None else f"barcodes ({int(cells.sum())} called cells)",
        adata.n_vars,
        int(adata.X.sum()),
        flagged,
        int(adata.obs[QC_PASS].sum()),
    )
    return adata


#: The prefix of an input's own obs column whose name scingest writes itself.
INPUT_PREFIX = "input_"


def input_obs_columns(
    columns: pd.DataFrame, *, taken: set[str], path: str | PathLike[str]
) -> dict[str, Any]:
    """An input's own obs columns (an h5ad's cell types, donors, earlier QC), as the
    checkpoint keeps them.

    A name the workflow writes itself (``total_counts``, ``sample``, ``qc_pass``, ...) or
    the sheet's metadata takes gets :data:`INPUT_PREFIX` (``input_total_counts``); ``/``
    (a group path in h5ad) becomes ``_``; dates become ISO text (h5ad stores no dates). The
    log says what was kept and renamed.

    Parameters
    ----------
    columns
        The input's obs columns, one row per cell.
    taken
        The obs names already given (sample, barcode, the sheet's metadata).
    path
        The input, named in the log.

    Returns
    -------
    New name -> values.
    """
    kept: dict[str, Any] = {}
    renamed = []
    for name in columns.columns:
        new = str(name).replace("/", "_")
        while new in taken or new in kept or is_reserved_column(new):
            new = INPUT_PREFIX + new
        if new != name:
            renamed.append(f"{name} -> {new}")
        values = columns[name]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            values = values.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object)
        kept[new] = values.to_numpy() if values.dtype.kind in "biuf" else values.array
    if kept:
        logger.info(
            "%s: kept the input's own obs column(s) %s%s",
            path,
            ", ".join(kept),
            f" (renamed, as scingest writes these names: {', '.join(renamed)})" if renamed else "",
        )
    return kept


def _provenance(path: str | PathLike[str], format: str, reader: ReaderOptions) -> dict[str, list]:
    """:func:`file_provenance` of each file of the input, as one set of parallel lists."""
    merged: dict[str, list] = {"files": [], "sizes": [], "sha256": []}
    for part in input_files(path, format, reader):
        for key, values in file_provenance(part).items():
            merged[key] += values
    return merged


def write_h5ad(
    adata: ad.AnnData,
    path: str | PathLike[str],
    *,
    compression: Compression = "none",
    threads: int | None = None,
) -> None:
    """Write a checkpoint under a temporary name and rename it when complete.

    CSR ``X`` and layers are written by :class:`scingest.h5write.CsrWriter`: ``gzip`` is
    deflate level 1 with chunks compressed in parallel by ISA-L, since HDF5 deflates one
    chunk at a time in the writing thread (``bench/run.py compression`` compares them).
    A layer equal to ``X`` (the counts) is stored once, as an HDF5 hard link to ``X``'s
    group: every HDF5 reader follows it, and anndata reads it as a second, independent
    array. The rest is anndata's writer. The file holds ``X`` and the named layers (never
    anndata 0.13's ``layers[None]``), and strings in the legacy encoding
    (:func:`scingest.compat.legacy_strings`) under anndata 0.12 and 0.13 alike. Matrices
    that are not all CSR are left to anndata's writer.

    Parameters
    ----------
    adata
        The sample, e.g. from :func:`build_sample`.
    path
        The h5ad file.
    compression
        ``none``, ``lzf`` or ``gzip``, for the matrices and anndata's elements.
    threads
        Compressing threads (the calling thread only stores the chunks); ``1`` compresses
        in the calling thread; ``None``: every CPU the process may use.
    """
    layers = named_layers(adata)
    matrices = {"X": adata.X, **{f"layers/{k}": v for k, v in layers.items()}}
    own = all(sp.isspmatrix_csr(m) for m in matrices.values())
    comp = None if compression == "none" else compression
    opts = GZIP_LEVEL if compression == "gzip" else None
    obs, var = plain_strings(adata.obs), plain_strings(adata.var)
    with atomic_path(path) as tmp, legacy_strings():
        if not own:
            out = adata
            if obs is not adata.obs or var is not adata.var:  # same matrices, plain strings
                out = ad.AnnData(
                    X=adata.X,
                    obs=obs,
                    var=var,
                    uns=adata.uns,
                    obsm=adata.obsm,
                    varm=adata.varm,
                    layers=layers,
                )
            out.write_h5ad(tmp, compression=comp, compression_opts=opts)
            return
        rest = ad.AnnData(obs=obs, var=var, uns=adata.uns, obsm=adata.obsm, varm=adata.varm)
        rest.write_h5ad(tmp, compression=comp, compression_opts=opts)
        n = workers(threads) if compression == "gzip" else 1
        with h5py.File(tmp, "r+") as f, ThreadPoolExecutor(n) if n > 1 else nullcontext() as pool:
            if "X" in f:
                del f["X"]
            for key, matrix in matrices.items():
                if key != "X" and _same_csr(matrix, adata.X):
                    f[key] = f["X"]  # hard link: the same counts, stored once
                else:
                    write_csr(f, key, matrix, compression=compression, pool=pool, threads=n)


def _same_csr(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    """Whether two CSR matrices hold the same stored structure and values."""
    if a is b:
        return True
    return (
        a.shape == b.shape
        and a.dtype == b.dtype
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )
