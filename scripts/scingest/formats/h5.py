"""CellRanger HDF5 (``10x_h5``: v2, one group per genome; v3, ``/matrix``) and probe-based
10x HDF5 (``10x_probe_h5``: Flex, Visium HD).

The layout is checked first with h5py, so a file that is not CellRanger's gives a clear
error; the reading itself is ``scanpy.read_10x_h5`` (``gex_only=False``: feature types
are split by :func:`scingest.readers._features.assemble`, never dropped silently). A probe
file's probes are summed into genes (:func:`read_probe_h5`).
"""

from __future__ import annotations

import logging
import warnings
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScingestError
from ..files import open_hdf5
from ..options import ReaderOptions
from ._files import tenx_raw
from ._format import Fit, Format, Source, reads, store_files

if TYPE_CHECKING:
    import anndata as ad
    import h5py
    import numpy as np

    from ..readers._features import RawCounts

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
    import h5py
    import numpy as np

    path = Path(path)
    with open_hdf5(path, "a CellRanger .h5 file (truncated download?)") as fh:
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

    from ..readers._features import GENOME

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
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts (cells x features), barcodes, symbols, ids, feature types and, of a
    multi-genome file, each gene's genome.

    Raises
    ------
    ScingestError
        As :func:`cellranger_genomes`, and for values that are not counts.
    """
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from ..readers._features import GENOME, RawCounts, check_counts

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


def h5_strings(dataset: h5py.Dataset) -> np.ndarray:
    """An HDF5 dataset of names (bytes or text) as an array of str."""
    import numpy as np

    values = dataset[()]
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])


def read_probe_h5(
    path: str | PathLike[str], *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read a probe-based 10x .h5 and sum the probes CellRanger used into gene-level counts.

    The counts are read by :func:`read_tenx_h5` (scanpy's reader); the
    probe-to-gene map (``features/gene_id``, ``gene_name``) and CellRanger's marks by h5py.
    CellRanger writes ``features/filtered_probes`` as True for the probes that *passed* its
    probe filter (the probes its gene-level matrix is made of; the file's ``target_sets``
    lists the same probes); the others (deprecated or off-target probes) are left out.
    ``matrix/filtered_barcodes`` (True for the barcodes CellRanger called cells) is
    returned as :attr:`RawCounts.called_cells`.

    Parameters
    ----------
    path
        The probe-based ``.h5`` file.
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    Gene-level counts of every barcode, barcodes, gene names and ids (all Gene
    Expression), and CellRanger's cell calls where the file has them.

    Raises
    ------
    ScingestError
        As :func:`read_tenx_h5`, for features without
        ``gene_id``/``gene_name``, and for marks that do not give one value per probe or
        per barcode.
    """
    import h5py
    import numpy as np
    import scipy.sparse as sp

    from ..readers._features import GENE_EXPRESSION, RawCounts

    path = Path(path)
    cellranger_genomes(path)  # the layout, checked before its marks are read
    with h5py.File(path, "r") as fh:
        n_probes, n_barcodes = (int(n) for n in fh["matrix/shape"][()])
        features = fh["matrix/features"]
        missing = [k for k in ("gene_id", "gene_name") if k not in features]
        if missing:
            raise ScingestError(
                f"features lack {', '.join(missing)}: expected a probe-based .h5 "
                "(Flex / Visium HD) mapping each probe to gene_id and gene_name; a gene-level "
                ".h5 is format 10x_h5",
                path=path,
            )
        gene_ids = h5_strings(features["gene_id"])
        gene_names = h5_strings(features["gene_name"])
        if not len(gene_ids) == len(gene_names) == n_probes:
            raise ScingestError(
                f"features/gene_id has {len(gene_ids)} and gene_name {len(gene_names)} values "
                f"for {n_probes} probes (matrix/shape): expected one per probe",
                path=path,
            )
        passed = _marks(features, "filtered_probes", n_probes, "probe", path)
        called = _marks(fh["matrix"], "filtered_barcodes", n_barcodes, "barcode", path)
        regions = h5_strings(features["probe_region"]) if "probe_region" in features else None
    # scanpy reads the marks too (as var and obs columns): checked above, before it
    raw = read_tenx_h5(path, dtype=dtype, allow_non_integer=allow_non_integer)
    keep = np.ones(n_probes, dtype=bool) if passed is None else passed.copy()
    if raw.feature_types is not None:
        keep &= raw.feature_types == GENE_EXPRESSION
    uniq, first, inverse = np.unique(gene_ids[keep], return_index=True, return_inverse=True)
    order = np.argsort(first)  # genes in the order of their first probe
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    n_kept = int(keep.sum())
    to_gene = sp.csr_matrix(
        (np.ones(n_kept, dtype=raw.counts.dtype), (np.arange(n_kept), rank[inverse])),
        shape=(n_kept, len(uniq)),
    )
    counts = (raw.counts[:, np.flatnonzero(keep)] @ to_gene).tocsr()
    counts.sort_indices()
    excluded = (
        "no filtered_probes: every probe kept"
        if passed is None
        else f"{n_probes - int(passed.sum())} probes CellRanger's filter excluded "
        "(filtered_probes false) left out"
    )
    logger.warning(
        "%s: %d probes summed into %d genes (%s); probe-level data is not kept: the "
        "per-probe counts%s",
        path,
        n_kept,
        len(uniq),
        excluded,
        " and probe_region (spliced/unspliced probe sites)" if regions is not None else "",
    )
    genes_first = first[order]
    return RawCounts(
        counts=counts,
        barcodes=raw.barcodes,
        symbols=gene_names[keep][genes_first],
        ids=uniq[order],
        feature_types=np.full(len(uniq), GENE_EXPRESSION),
        called_cells=called,
        calls_source=None if called is None else "CellRanger's calls (matrix/filtered_barcodes)",
    )


def _marks(group: h5py.Group, name: str, n: int, what: str, path: Path) -> np.ndarray | None:
    """A boolean per probe or barcode (``filtered_probes``, ``filtered_barcodes``), or None."""
    import numpy as np

    if name not in group:
        return None
    values = np.asarray(group[name][()])
    if values.shape != (n,) or values.dtype.kind not in "biu":
        raise ScingestError(
            f"{group.name}/{name} holds {values.size} {values.dtype} values for {n} "
            f"{what}s: expected one boolean per {what}",
            path=path,
        )
    return values.astype(bool)


def _detect(path: Path) -> Fit:
    return Fit.NAME if path.is_file() and path.name.lower().endswith((".h5", ".hdf5")) else Fit.NONE


def _resolve(path: Path, options: ReaderOptions) -> Source:
    raw = tenx_raw(path)
    sibling = [] if raw is None or raw.sibling is None else [raw.sibling]
    return Source(path, path, [path, *sibling], raw=raw)


def _detect_probe(path: Path) -> Fit:
    named = path.is_file() and path.name.lower().endswith("_probe_bc_matrix.h5")
    return Fit.FILES if named else Fit.NONE


FORMATS = (
    Format(
        "10x_h5",
        "CellRanger HDF5 (.h5), v2 (one group per genome) or v3 (/matrix)",
        detect=_detect,
        resolve=_resolve,
        read=reads(read_tenx_h5, genome="genome"),
        options=frozenset({"genome"}),
    ),
    Format(
        "10x_probe_h5",
        "probe-based 10x HDF5 (Flex, Visium HD *_probe_bc_matrix.h5): the probes "
        "CellRanger used (features/filtered_probes true) summed to gene-level counts, of the "
        "barcodes it called cells (matrix/filtered_barcodes)",
        detect=_detect_probe,
        resolve=store_files,
        read=reads(read_probe_h5),
    ),
)
