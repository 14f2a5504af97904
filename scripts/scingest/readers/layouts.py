"""Readers of the counting tools' own layouts: kallisto|bustools, alevin, alevin-fry, probe .h5.

CellRanger ``multi``/``count`` run folders and STARsolo's ``Solo.out`` hold ordinary 10x
files, which :func:`scingest.layouts.resolve` finds and the 10x readers read. The layouts
here differ from 10x:

- ``kb`` (``kb count``): ``cells_x_genes.mtx`` is cells x genes (10x is genes x cells),
  with ``.barcodes.txt``, ``.genes.txt`` (gene ids) and, in newer kb, ``.genes.names.txt``.
- ``alevin_fry``: ``quants_mat.mtx`` is cells x genes with ``quants_mat_rows.txt``
  (barcodes) and ``quants_mat_cols.txt`` (genes); in USA mode (``quant.json``'s
  ``usa_mode``) its columns are the genes' spliced, unspliced and ambiguous counts.
- ``alevin`` (salmon alevin): ``quants_mat.gz`` is alevin's own binary sparse matrix
  (cells x genes; see :func:`read_alevin_binary`), or ``quants_mat.mtx.gz`` with
  ``--dumpMtx``; barcodes in ``quants_mat_rows.txt``, genes in ``quants_mat_cols.txt``.
- ``10x_probe_h5``: a CellRanger v3 .h5 whose features are probes, with ``gene_id`` and
  ``gene_name`` per probe, CellRanger's probe filter (``filtered_probes``) and cell calls
  (``filtered_barcodes``).

``scanpy.read_mtx`` would read these matrices too, but it checks neither the matrix's shape
against the name files nor gives our errors for truncated or gzip-misnamed files, so the
Matrix Market reading of :mod:`scingest.readers.mtx` is used.
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from ..errors import ScingestError
from ..files import decompression_errors, open_binary
from ..layouts import Resolved
from ._features import GENE_EXPRESSION, RawCounts, check_counts
from .mtx import _read_matrix, _read_table

logger = logging.getLogger(__name__)


def _names(path: Path) -> np.ndarray:
    return _read_table(path).iloc[:, 0].to_numpy(dtype=str)


def read_kb(
    resolved: Resolved, *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read ``kb count``'s ``cells_x_genes`` files (cells x genes).

    Parameters
    ----------
    resolved
        The layout's files, as :func:`scingest.layouts.resolve` found them.
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts, barcodes, gene ids and symbols (the ids where there are no names).

    Raises
    ------
    ScingestError
        For names files that do not fit each other or the matrix, and values that are
        not counts.
    """
    parts = resolved.parts
    barcodes = _names(parts["barcodes"])
    ids = _names(parts["genes"])
    if "names" in parts:
        symbols = _names(parts["names"])
        if len(symbols) != len(ids):
            raise ScingestError(
                f"{len(symbols)} gene names but {len(ids)} gene ids in {parts['genes'].name}: "
                "expected one name per id",
                path=parts["names"],
            )
    else:
        logger.info("%s: no cells_x_genes.genes.names.txt: gene ids used as names", parts["genes"])
        symbols = ids
    matrix = _read_matrix(
        parts["matrix"], shape=(len(barcodes), len(ids)), names=(parts["barcodes"], parts["genes"])
    )
    counts = check_counts(matrix, parts["matrix"], dtype=dtype, allow_non_integer=allow_non_integer)
    return RawCounts(counts=counts, barcodes=barcodes, symbols=symbols, ids=ids)


def read_alevin_fry(
    resolved: Resolved, *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read alevin-fry's ``quants_mat.mtx`` (cells x genes); USA mode gives spliced + ambiguous.

    In USA mode the gene-level counts are S + A (pyroe's and fishpond's ``scRNA`` default);
    the unspliced counts are left out, said in the log.

    Parameters
    ----------
    resolved
        The layout's files and ``quant.json``'s facts, as :func:`scingest.layouts.resolve`
        found them.
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts, barcodes, gene ids and symbols (from ``gene_id_to_name.tsv`` if present).

    Raises
    ------
    ScingestError
        For names files that do not fit the matrix, and values that are not counts.
    """
    parts = resolved.parts
    barcodes = _names(parts["barcodes"])
    genes = _names(parts["genes"])
    usa = bool(resolved.info.get("usa_mode", False))
    n_cols = len(genes)
    if usa and resolved.info.get("num_genes") == 3 * len(genes):
        n_cols = 3 * len(genes)  # names of the spliced columns only
    matrix = _read_matrix(
        parts["matrix"], shape=(len(barcodes), n_cols), names=(parts["barcodes"], parts["genes"])
    )
    if usa:
        if n_cols % 3:
            raise ScingestError(
                f"quant.json says usa_mode but {parts['genes'].name} has {n_cols} columns: "
                "expected three per gene (spliced, unspliced, ambiguous)",
                path=parts["genes"],
            )
        n = n_cols // 3
        csc = sp.csc_matrix(matrix)
        spliced, ambiguous = csc[:, :n], csc[:, 2 * n :]
        matrix = spliced + ambiguous
        genes = genes[:n]
        logger.info(
            "%s: USA mode: counts are spliced + ambiguous of %d genes; the unspliced "
            "counts are left out",
            parts["matrix"],
            n,
        )
    counts = check_counts(matrix, parts["matrix"], dtype=dtype, allow_non_integer=allow_non_integer)
    symbols = genes
    if "names" in parts:
        table = _read_table(parts["names"])
        if table.shape[1] < 2:
            raise ScingestError(
                "one column: expected gene id and gene name per line, tab-separated",
                path=parts["names"],
            )
        to_name = dict(zip(table.iloc[:, 0], table.iloc[:, 1], strict=True))
        symbols = np.array([to_name.get(g, g) for g in genes])
        unnamed = int(sum(g not in to_name for g in genes))
        if unnamed:
            logger.warning("%s: %d gene id(s) without a name: ids kept", parts["names"], unnamed)
    else:
        logger.info("%s: no gene_id_to_name.tsv beside it: gene ids used as names", parts["genes"])
    return RawCounts(counts=counts, barcodes=barcodes, symbols=symbols, ids=genes)


def read_alevin_binary(path: Path, *, n_cells: int, n_genes: int) -> sp.csr_matrix:
    """Decode alevin's binary sparse matrix (``quants_mat.gz``), cells x genes.

    The gzipped stream holds one record per cell, in the order of ``quants_mat_rows.txt``:
    ``ceil(n_genes / 8)`` bytes with one bit per gene (most significant bit first) set
    where the cell has counts, then those counts as little-endian float32, in gene order.
    This is the layout alevin's authors' readers decode (vpolo's ``read_quants_bin``,
    fishpond's ``readEDS``); the tests compare with vpolo.

    Parameters
    ----------
    path
        ``quants_mat.gz``.
    n_cells, n_genes
        The lines of ``quants_mat_rows.txt`` and ``quants_mat_cols.txt``.

    Returns
    -------
    The counts as CSR float32.

    Raises
    ------
    ScingestError
        When the stream ends before ``n_cells`` records or holds bytes after them.
    """
    with open_binary(path) as fh, decompression_errors(path):
        data = fh.read()
    n_flags = (n_genes + 7) // 8
    buffer = np.frombuffer(data, dtype=np.uint8)
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    indices, values = [], []
    pos = 0
    for cell in range(n_cells):
        flags = buffer[pos : pos + n_flags]
        genes = np.flatnonzero(np.unpackbits(flags)[:n_genes]) if len(flags) == n_flags else None
        end = pos + n_flags + 4 * (0 if genes is None else len(genes))
        if genes is None or end > len(buffer):
            raise ScingestError(
                f"alevin's binary matrix ends within the record of cell {cell + 1}: expected "
                f"{n_cells} cells (quants_mat_rows.txt) x {n_genes} genes "
                "(quants_mat_cols.txt); a truncated or mismatched file",
                path=path,
            )
        values.append(np.frombuffer(data, dtype="<f4", count=len(genes), offset=pos + n_flags))
        indices.append(genes)
        indptr[cell + 1] = indptr[cell] + len(genes)
        pos = end
    if pos != len(buffer):
        raise ScingestError(
            f"alevin's binary matrix holds {len(buffer) - pos} bytes after the records of "
            f"{n_cells} cells (quants_mat_rows.txt) x {n_genes} genes (quants_mat_cols.txt): "
            "expected one record per cell",
            path=path,
        )
    return sp.csr_matrix(
        (
            np.concatenate(values) if values else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int64),
            indptr,
        ),
        shape=(n_cells, n_genes),
    )


def read_alevin(
    resolved: Resolved, *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read salmon alevin's ``quants_mat.gz`` (or ``quants_mat.mtx.gz``), cells x genes.

    alevin names genes by the gene column of its ``--tgMap`` (usually ids); they are used
    as both ids and names, said in the log. Its counts are estimates: a UMI shared by
    several genes is divided between them, which gives non-integer counts
    (``allow_non_integer`` accepts them).

    Parameters
    ----------
    resolved
        The layout's files, as :func:`scingest.layouts.resolve` found them.
    dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts, barcodes, and the genes as ids and names.

    Raises
    ------
    ScingestError
        For names files that do not fit the matrix, and values that are not counts.
    """
    parts = resolved.parts
    barcodes = _names(parts["barcodes"])
    genes = _names(parts["genes"])
    if parts["matrix"].name.endswith(".mtx.gz"):
        matrix = _read_matrix(
            parts["matrix"],
            shape=(len(barcodes), len(genes)),
            names=(parts["barcodes"], parts["genes"]),
        )
    else:
        matrix = read_alevin_binary(parts["matrix"], n_cells=len(barcodes), n_genes=len(genes))
    counts = check_counts(matrix, parts["matrix"], dtype=dtype, allow_non_integer=allow_non_integer)
    logger.info(
        "%s: alevin names genes as its --tgMap did: used as gene ids and names", parts["genes"]
    )
    return RawCounts(counts=counts, barcodes=barcodes, symbols=genes, ids=genes)


def _strings(dataset: h5py.Dataset) -> np.ndarray:
    values = dataset[()]
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])


def read_probe_h5(
    path: str | PathLike[str], *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read a probe-based 10x .h5 and sum the probes CellRanger used into gene-level counts.

    The counts are read by :func:`scingest.readers.h5.read_tenx_h5` (scanpy's reader); the
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
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    Gene-level counts of every barcode, barcodes, gene names and ids (all Gene
    Expression), and CellRanger's cell calls where the file has them.

    Raises
    ------
    ScingestError
        As :func:`scingest.readers.h5.read_tenx_h5`, for features without
        ``gene_id``/``gene_name``, and for marks that do not give one value per probe or
        per barcode.
    """
    from .h5 import cellranger_genomes, read_tenx_h5

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
        gene_ids = _strings(features["gene_id"])
        gene_names = _strings(features["gene_name"])
        if not len(gene_ids) == len(gene_names) == n_probes:
            raise ScingestError(
                f"features/gene_id has {len(gene_ids)} and gene_name {len(gene_names)} values "
                f"for {n_probes} probes (matrix/shape): expected one per probe",
                path=path,
            )
        passed = _marks(features, "filtered_probes", n_probes, "probe", path)
        called = _marks(fh["matrix"], "filtered_barcodes", n_barcodes, "barcode", path)
        regions = _strings(features["probe_region"]) if "probe_region" in features else None
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


def read_layout(
    path: str | PathLike[str],
    format: str,
    *,
    genome: str | None = None,
    h5ad_layer: str | None = None,
    loom_layers: str = "drop",
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> tuple[RawCounts, dict[str, sp.csr_matrix]]:
    """Read a tool layout (:data:`scingest.layouts.LAYOUT_FORMATS`).

    Run folders are resolved to the 10x file or folder inside them, which the 10x readers read.

    Parameters
    ----------
    path
        The layout's folder or file.
    format
        One of :data:`scingest.layouts.LAYOUT_FORMATS`.
    genome, h5ad_layer, loom_layers, dtype, allow_non_integer
        As for :func:`scingest.readers.read_counts`.

    Returns
    -------
    The counts and names, and further layers (cells x genes CSR) by name (loom only).

    Raises
    ------
    ScingestError
        For a layout that is not found or does not fit, and as the format's reader.
    """
    from ..layouts import resolve

    counts = {"dtype": dtype, "allow_non_integer": allow_non_integer}
    resolved = resolve(path, format)
    if resolved.path != Path(path):
        logger.info("%s (%s): reading %s", path, format, resolved.path)
    if resolved.format == "10x_h5":
        from .h5 import read_tenx_h5

        return read_tenx_h5(resolved.path, genome=genome, **counts), {}
    if resolved.format == "10x_mtx":
        from .mtx import read_tenx_mtx

        return read_tenx_mtx(resolved.path, genome=genome, **counts), {}
    if resolved.format == "h5ad":
        from .h5ad import read_h5ad_counts

        return read_h5ad_counts(resolved.path, layer=h5ad_layer, **counts), {}
    if format == "kb":
        return read_kb(resolved, **counts), {}
    if format == "alevin_fry":
        return read_alevin_fry(resolved, **counts), {}
    if format == "alevin":
        return read_alevin(resolved, **counts), {}
    if format == "10x_probe_h5":
        return read_probe_h5(resolved.path, **counts), {}
    if format == "loom":
        from .loom import read_loom

        return read_loom(resolved.path, layers=loom_layers, **counts)
    if format == "zarr":
        from .zarr import read_zarr_counts

        return read_zarr_counts(resolved.path, layer=h5ad_layer, **counts), {}
    raise AssertionError(format)  # pragma: no cover - LAYOUT_FORMATS and this are kept in step
