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

import h5py
import numpy as np

from ..errors import ScingestError
from ._features import RawCounts, check_counts

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


def cellranger_genome(path: str | PathLike[str], *, genome: str | None = None) -> str | None:
    """Check the layout of a CellRanger .h5 and resolve the genome to read.

    Parameters
    ----------
    path
        The ``.h5`` file.
    genome
        The genome asked for, if any.

    Returns
    -------
    The genome to read (None for a v3 file with a single genome and none asked for).

    Raises
    ------
    ScingestError
        When the file is not HDF5, not a CellRanger layout, or holds several genomes and
        ``genome`` does not pick one of them.
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
        if "matrix" in fh:
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
            if len(genomes) == 1 and genome is None:
                return genomes[0]
    if genome is not None and genome not in genomes:
        raise ScingestError(
            f"genome {genome!r} is not in this file: its genomes are {', '.join(genomes)}",
            path=path,
        )
    if genome is None and len(genomes) > 1:
        raise ScingestError(
            f"several genomes ({', '.join(genomes)}): set config genome to one of them",
            path=path,
        )
    return genome


def read_tenx_h5(
    path: str | PathLike[str],
    *,
    genome: str | None = None,
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> RawCounts:
    """Read a CellRanger v2 or v3 .h5 file (one genome: ``genome``, or the only one).

    Parameters
    ----------
    path
        The ``.h5`` file.
    genome
        The genome to read, when there are several.
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids and feature types.

    Raises
    ------
    ScingestError
        As :func:`cellranger_genome`, and for values that are not counts.
    """
    import scanpy as sc

    genome = cellranger_genome(path, genome=genome)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* names are not unique", category=UserWarning)
        try:
            adata = sc.read_10x_h5(path, genome=genome, gex_only=False)
        except (KeyError, ValueError, OSError) as err:
            raise _layout_error(Path(path), f"scanpy could not read it: {err}") from None
    var = adata.var
    if genome is not None:
        logger.info("%s: genome %s", path, genome)
    return RawCounts(
        counts=check_counts(adata.X, path, dtype=dtype, allow_non_integer=allow_non_integer),
        barcodes=adata.obs_names.to_numpy(dtype=str),
        symbols=adata.var_names.to_numpy(dtype=str),
        ids=var["gene_ids"].to_numpy(dtype=str) if "gene_ids" in var.columns else None,
        feature_types=(
            var["feature_types"].to_numpy(dtype=str) if "feature_types" in var.columns else None
        ),
    )
