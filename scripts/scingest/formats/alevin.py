"""salmon alevin (``alevin``) and alevin-fry / simpleaf (``alevin_fry``) output.

- ``alevin_fry``: ``quants_mat.mtx`` is cells x genes with ``quants_mat_rows.txt``
  (barcodes) and ``quants_mat_cols.txt`` (genes); in USA mode (``quant.json``'s
  ``usa_mode``) its columns are the genes' spliced, unspliced and ambiguous counts. Only a
  ``quants.h5ad`` there is read as h5ad. An unfiltered permit list
  (``generate_permit_list.json``) makes it a raw matrix.
- ``alevin`` (salmon alevin): ``quants_mat.gz`` is alevin's own binary sparse matrix
  (cells x genes; see :func:`read_alevin_binary`), or ``quants_mat.mtx.gz`` with
  ``--dumpMtx``; barcodes in ``quants_mat_rows.txt``, genes in ``quants_mat_cols.txt``.

``scanpy.read_mtx`` would read the Matrix Market files too, but it checks neither the
matrix's shape against the name files nor gives our errors for truncated or gzip-misnamed
files, so :mod:`scingest.readers.matrix_market` reads them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScingestError
from ..options import ReaderOptions
from ._format import Fit, Format, RawInput, Read, Source, reads
from .h5ad import read_h5ad_counts

if TYPE_CHECKING:
    import numpy as np
    import scipy.sparse as sp

    from ..readers._features import RawCounts

logger = logging.getLogger(__name__)

_FRY_MTX = "quants_mat.mtx"
#: salmon alevin's matrices: its binary sparse format, and --dumpMtx's Matrix Market
_ALEVIN_MATRICES = ("quants_mat.gz", "quants_mat.mtx.gz")


def _fry_folder(path: Path) -> Path | None:
    if path.is_file():
        return path.parent if path.name in (_FRY_MTX, "quants.h5ad") else None
    for folder in (path, path / "alevin", path / "af_quant" / "alevin"):
        if (folder / _FRY_MTX).is_file() or (folder / "quants.h5ad").is_file():
            return folder
    return None


def _fry_raw(folder: Path) -> RawInput | None:
    """An alevin-fry output of an unfiltered permit list is raw (its
    ``generate_permit_list.json`` says ``"permit-list-type": "unfiltered"``)."""
    meta = folder.parent / "generate_permit_list.json"
    if not meta.is_file():
        return None
    try:
        kind = json.loads(meta.read_text()).get("permit-list-type")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    if kind != "unfiltered":
        return None
    return RawInput(f"alevin-fry with an unfiltered permit list ({meta.name})")


def _resolve_fry(path: Path, options: ReaderOptions) -> Source:
    folder = _fry_folder(path)
    if folder is None:
        raise ScingestError(
            f"expected {_FRY_MTX} (or quants.h5ad) here, in alevin/ or in af_quant/alevin/ "
            "(alevin-fry / simpleaf output)",
            path=path,
        )
    if not (folder / _FRY_MTX).is_file() or path.name == "quants.h5ad":
        h5ad = folder / "quants.h5ad"
        return Source(path, h5ad, [h5ad], raw=_fry_raw(folder))
    parts = {
        "matrix": folder / _FRY_MTX,
        "barcodes": folder / "quants_mat_rows.txt",
        "genes": folder / "quants_mat_cols.txt",
    }
    missing = [p.name for p in parts.values() if not p.is_file()]
    if missing:
        raise ScingestError(
            f"missing {', '.join(missing)} beside {_FRY_MTX}: alevin-fry writes the matrix "
            "(cells x genes) with quants_mat_rows.txt (barcodes) and quants_mat_cols.txt (genes)",
            path=folder,
        )
    for where in (folder, folder.parent, folder.parent.parent):
        if (where / "gene_id_to_name.tsv").is_file():  # simpleaf / pyroe's id -> name map
            parts["names"] = where / "gene_id_to_name.tsv"
            break
    info: dict = {}
    meta = folder.parent / "quant.json"
    if meta.is_file():
        parts["meta"] = meta
        try:
            info = json.loads(meta.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise ScingestError(f"cannot read as JSON ({err})", path=meta) from None
    return Source(path, parts["matrix"], list(parts.values()), parts, info, _fry_raw(folder))


def _alevin_folder(path: Path) -> Path | None:
    if path.is_file():
        return path.parent if path.name in _ALEVIN_MATRICES else None
    for folder in (path, path / "alevin"):
        if any((folder / name).is_file() for name in _ALEVIN_MATRICES):
            return folder
    return None


def _resolve_alevin(path: Path, options: ReaderOptions) -> Source:
    folder = _alevin_folder(path)
    if folder is None:
        raise ScingestError(
            f"expected {' or '.join(_ALEVIN_MATRICES)} here or in alevin/ (salmon alevin output)",
            path=path,
        )
    # the binary matrix is what alevin always writes; --dumpMtx adds the Matrix Market one
    name = path.name if path.is_file() else None
    name = name or next(n for n in _ALEVIN_MATRICES if (folder / n).is_file())
    parts = {
        "matrix": folder / name,
        "barcodes": folder / "quants_mat_rows.txt",
        "genes": folder / "quants_mat_cols.txt",
    }
    missing = [p.name for p in parts.values() if not p.is_file()]
    if missing:
        raise ScingestError(
            f"missing {', '.join(missing)} beside {name}: salmon alevin writes the matrix "
            "(cells x genes) with quants_mat_rows.txt (barcodes) and quants_mat_cols.txt (genes)",
            path=folder,
        )
    return Source(path, parts["matrix"], list(parts.values()), parts)


def _barcodes_and_genes(parts: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """The barcodes (``quants_mat_rows.txt``) and genes (``quants_mat_cols.txt``) of an
    alevin or alevin-fry output."""
    from ..readers.matrix_market import read_names

    return read_names(parts["barcodes"]), read_names(parts["genes"])


def read_alevin_fry(
    source: Source, *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read alevin-fry's ``quants_mat.mtx`` (cells x genes); USA mode gives spliced + ambiguous.

    In USA mode the gene-level counts are S + A (pyroe's and fishpond's ``scRNA`` default);
    the unspliced counts are left out, said in the log.

    Parameters
    ----------
    source
        The input's files and ``quant.json``'s facts, as its format resolved them.
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts, barcodes, gene ids and symbols (from ``gene_id_to_name.tsv`` if present).

    Raises
    ------
    ScingestError
        For names files that do not fit the matrix, and values that are not counts.
    """
    import numpy as np
    import scipy.sparse as sp

    from ..readers._features import RawCounts, check_counts
    from ..readers.matrix_market import read_matrix, read_table

    parts = source.parts
    barcodes, genes = _barcodes_and_genes(parts)
    usa = bool(source.info.get("usa_mode", False))
    n_cols = len(genes)
    if usa and source.info.get("num_genes") == 3 * len(genes):
        n_cols = 3 * len(genes)  # names of the spliced columns only
    matrix = read_matrix(
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
        table = read_table(parts["names"])
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
    import numpy as np
    import scipy.sparse as sp

    from ..files import decompression_errors, open_binary

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
    source: Source, *, dtype: str = "float32", allow_non_integer: bool = False
) -> RawCounts:
    """Read salmon alevin's ``quants_mat.gz`` (or ``quants_mat.mtx.gz``), cells x genes.

    alevin names genes by the gene column of its ``--tgMap`` (usually ids); they are used
    as both ids and names, said in the log. Its counts are estimates: a UMI shared by
    several genes is divided between them, which gives non-integer counts
    (``allow_non_integer`` accepts them).

    Parameters
    ----------
    source
        The input's files, as its format resolved them.
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts, barcodes, and the genes as ids and names.

    Raises
    ------
    ScingestError
        For names files that do not fit the matrix, and values that are not counts.
    """
    from ..readers._features import RawCounts, check_counts
    from ..readers.matrix_market import read_matrix

    parts = source.parts
    barcodes, genes = _barcodes_and_genes(parts)
    if parts["matrix"].name.endswith(".mtx.gz"):
        matrix = read_matrix(
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


_read_quants_h5ad = reads(read_h5ad_counts, layer="h5ad_layer")


def _read_fry(source: Source, options: ReaderOptions) -> Read:
    if not source.parts:  # only a quants.h5ad
        return _read_quants_h5ad(source, options)
    dtype, allow_non_integer = options.dtype, options.allow_non_integer
    return Read(read_alevin_fry(source, dtype=dtype, allow_non_integer=allow_non_integer))


def _read_alevin(source: Source, options: ReaderOptions) -> Read:
    dtype, allow_non_integer = options.dtype, options.allow_non_integer
    return Read(read_alevin(source, dtype=dtype, allow_non_integer=allow_non_integer))


def _detect_fry(path: Path) -> Fit:
    if path.is_file():
        return Fit.FILES if path.name.lower() == _FRY_MTX else Fit.NONE
    return Fit.FILES if path.is_dir() and _fry_folder(path) is not None else Fit.NONE


def _detect_alevin(path: Path) -> Fit:
    if path.is_file():
        return Fit.FILES if path.name.lower() in _ALEVIN_MATRICES else Fit.NONE
    return Fit.FILES if path.is_dir() and _alevin_folder(path) is not None else Fit.NONE


FORMATS = (
    Format(
        "alevin_fry",
        "alevin-fry / simpleaf output: af_quant/ or alevin/ (quants_mat.mtx, "
        "quants_mat_rows.txt, quants_mat_cols.txt; or quants.h5ad); gene names from a "
        "gene_id_to_name.tsv beside them, if any",
        detect=_detect_fry,
        resolve=_resolve_fry,
        read=_read_fry,
        options=frozenset({"h5ad_layer"}),
        run_folder=True,
    ),
    Format(
        "alevin",
        "salmon alevin output: the run folder or its alevin/ (quants_mat.gz, alevin's "
        "binary sparse matrix, or quants_mat.mtx.gz from --dumpMtx; cells x genes, with "
        "quants_mat_rows.txt barcodes and quants_mat_cols.txt genes)",
        detect=_detect_alevin,
        resolve=_resolve_alevin,
        read=_read_alevin,
    ),
)
