"""CellRanger HDF5 (``.h5``), v2 (one group per genome) and v3 (``/matrix``).

The layout is checked first with h5py, so a file that is not CellRanger's gives a clear
error; the reading itself is ``scanpy.read_10x_h5`` (``gex_only=False``: feature types
are split by :func:`scingest.readers._features.assemble`, never dropped silently).
"""

from __future__ import annotations

import logging
import warnings
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd

from ..errors import ScingestError
from ._features import GENOME, RawCounts, check_counts

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

_V2_DATASETS = ("data", "indices", "indptr", "shape", "barcodes", "genes", "gene_names")
_V3_DATASETS = ("data", "indices", "indptr", "shape", "barcodes")
_V3_FEATURES = ("id", "name", "feature_type")


def _layout_error(path: Path, found: str) -> ScingestError:
    return ScingestError(
        f"not a CellRanger HDF5 layout ({found}): expected /matrix with "
        f"{', '.join(_V3_DATASETS)} and features/{{{', '.join(_V3_FEATURES)}}} (CellRanger 3+), "
        f"or one group per genome with {', '.join(_V2_DATASETS)} (CellRanger 2)",
        path=path,
    )


def cellranger_genomes(
    path: str | PathLike[str], *, genome: str | None = None
) -> tuple[list[str], bool]:
    """Check the layout of a CellRanger .h5 and resolve the genomes to read.

    Parameters
    ----------
    path
        The ``.h5`` file.
    genome
        The genome asked for, if any.

    Returns
    -------
    genomes
        ``[genome]`` when one is asked for; else every genome of the file (CellRanger 2:
        its genome groups; CellRanger 3+: the values of ``features/genome``, empty when it
        has none).
    version3
        Whether the file has CellRanger 3's layout (one ``/matrix``).

    Raises
    ------
    ScingestError
        When the file is not HDF5, not a CellRanger layout, or does not hold ``genome``.
    """
    path = Path(path)
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise ScingestError(
            f"cannot open as HDF5 ({err}): expected a CellRanger .h5 file (truncated download?)",
            path=path,
        ) from None
    with fh:
        version3 = "matrix" in fh
        if version3:
            group = fh["matrix"]
            missing = [k for k in _V3_DATASETS if k not in group]
            features = group.get("features")
            if not isinstance(features, h5py.Group):
                missing.append("features")
            else:
                missing += [f"features/{k}" for k in _V3_FEATURES if k not in features]
            if missing:
                raise _layout_error(path, f"/matrix lacks {', '.join(missing)}")
            if "genome" not in features:
                genomes: list[str] = []
            else:
                genomes = sorted({g.decode() for g in np.unique(features["genome"][()])})
        else:
            genomes = sorted(
                name
                for name, item in fh.items()
                if isinstance(item, h5py.Group) and all(k in item for k in _V2_DATASETS)
            )
            if not genomes:
                raise _layout_error(path, f"top-level keys: {', '.join(fh) or 'none'}")
    if genome is not None:
        if genome not in genomes:
            raise ScingestError(
                f"genome {genome!r} is not in this file: its genomes are "
                f"{', '.join(genomes) or 'not named'}",
                path=path,
            )
        return [genome], version3
    return genomes, version3


def _read_genome(path: str | PathLike[str], genome: str | None) -> ad.AnnData:
    """scanpy's reading of one genome (``None``: a CellRanger 3+ file whole)."""
    import scanpy as sc

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* names are not unique", category=UserWarning)
        try:
            adata = sc.read_10x_h5(path, genome=genome, gex_only=False)
        except (KeyError, ValueError, OSError) as err:
            raise _layout_error(Path(path), f"scanpy could not read it: {err}") from None
    if genome is not None and GENOME not in adata.var.columns:
        adata.var[GENOME] = genome  # CellRanger 2: the genome is the group's name
    return adata


def read_tenx_h5(
    path: str | PathLike[str],
    *,
    genome: str | None = None,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """Read a CellRanger v2 or v3 .h5 file: every genome, or the one ``genome`` names.

    A multi-genome ("barnyard") file gives the genes of every genome, as the 10x folder of
    the same run does, with each gene's genome in ``var["genome"]``. CellRanger 2 stores
    each genome as a group of its own: their genes are joined side by side, cells matched
    by barcode (a barcode missing from a genome's group has no counts there).

    Parameters
    ----------
    path
        The ``.h5`` file.
    genome
        Read only this genome.
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids, feature types and, of a
    multi-genome file, each gene's genome.

    Raises
    ------
    ScingestError
        As :func:`cellranger_genomes`, and for values that are not counts.
    """
    import scipy.sparse as sp

    genomes, version3 = cellranger_genomes(path, genome=genome)
    # CellRanger 3+ stores one matrix, of which scanpy selects the genome's features itself
    parts = [_read_genome(path, g) for g in ([genome] if version3 else genomes)]
    if genome is not None or len(genomes) == 1:
        logger.info("%s: genome %s", path, genomes[0])
    elif len(genomes) > 1:
        logger.info("%s: genes of %d genomes: %s", path, len(genomes), ", ".join(genomes))
    barcodes = pd.Index(parts[0].obs_names)
    for part in parts[1:]:
        barcodes = barcodes.append(pd.Index(part.obs_names).difference(barcodes, sort=False))
    blocks = []
    for part in parts:
        rows = barcodes.get_indexer(part.obs_names)
        x = sp.csr_matrix(part.X)
        if not np.array_equal(rows, np.arange(len(barcodes))):
            x = (
                sp.csr_matrix(
                    (np.ones(len(rows)), (rows, np.arange(len(rows)))),
                    shape=(len(barcodes), len(rows)),
                ).astype(x.dtype)
                @ x
            )
        blocks.append(x)
    counts = sp.hstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
    var = pd.concat([part.var for part in parts])
    names = np.concatenate([part.var_names.to_numpy(dtype=str) for part in parts])
    return RawCounts(
        counts=check_counts(counts, path, dtype=dtype, allow_non_integer=allow_non_integer),
        barcodes=barcodes.to_numpy(dtype=str),
        symbols=names,
        ids=var["gene_ids"].to_numpy(dtype=str) if "gene_ids" in var.columns else None,
        feature_types=(
            var["feature_types"].to_numpy(dtype=str) if "feature_types" in var.columns else None
        ),
        # only of a multi-genome file: a one-genome sample reads the same from every format
        var={GENOME: var[GENOME].to_numpy(dtype=str)} if len(genomes) > 1 else {},
    )
