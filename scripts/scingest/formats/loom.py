"""loom files (``loom``: velocyto, older GEO uploads): the main matrix (genes x cells) as counts.

loom is HDF5: ``/matrix`` (genes x cells), ``/row_attrs`` (``Gene``, ``Accession``),
``/col_attrs`` (``CellID``) and ``/layers`` (velocyto: ``spliced``, ``unspliced``,
``ambiguous``). It is read with h5py rather than ``anndata.read_loom`` (``scanpy.read_loom``):
that needs loompy, which is not a dependency, and reads every matrix dense at once; here
the dense matrix is read a slab of genes at a time and kept sparse.
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScingestError
from ..files import open_hdf5
from ._format import Fit, Format, reads, store_files
from .h5 import h5_strings

if TYPE_CHECKING:
    import h5py
    import scipy.sparse as sp

    from ..readers._features import RawCounts

logger = logging.getLogger(__name__)

#: Genes read at a time from a dense loom matrix (rows of its HDF5 dataset).
GENES_PER_READ = 2048
_GENE_ATTRS = ("Gene", "gene_symbols", "var_names")
_ID_ATTRS = ("Accession", "gene_ids")
_CELL_ATTRS = ("CellID", "obs_names", "cell_names")


def _first(group: h5py.Group, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in group), None)


def _sparse(dataset: h5py.Dataset) -> sp.csr_matrix:
    """A dense genes x cells dataset as a sparse cells x genes CSR matrix, read
    :data:`GENES_PER_READ` genes at a time."""
    import scipy.sparse as sp

    slabs = [
        sp.csr_matrix(dataset[start : start + GENES_PER_READ, :])
        for start in range(0, dataset.shape[0], GENES_PER_READ)
    ]
    genes_x_cells = sp.vstack(slabs, format="csr") if slabs else sp.csr_matrix(dataset.shape)
    return genes_x_cells.T.tocsr()


def read_loom(
    path: str | PathLike[str],
    *,
    layers: str = "drop",
    dtype: str = "float32",
    allow_non_integer: bool = False,
) -> tuple[RawCounts, dict[str, sp.csr_matrix]]:
    """Read a loom file: the main matrix as counts and, if asked, its other layers.

    Parameters
    ----------
    path
        The ``.loom`` file.
    layers
        ``keep`` also returns the file's other layers (velocyto's ``spliced``,
        ``unspliced``, ``ambiguous``), checked as counts; ``drop`` logs their names.
    dtype, allow_non_integer
        As :class:`scingest.options.ReaderOptions`.

    Returns
    -------
    The counts and names, and the kept layers (cells x genes CSR) by name.

    Raises
    ------
    ScingestError
        For a file that is not HDF5 or not a loom layout, no gene names or barcodes, a
        matrix whose shape does not fit them, or values that are not counts.
    """

    from ..readers._features import RawCounts, check_counts

    path = Path(path)
    with open_hdf5(path, "a loom file (truncated download?)") as fh:
        missing = [k for k in ("matrix", "row_attrs", "col_attrs") if k not in fh]
        if missing:
            raise ScingestError(
                f"not a loom layout (no {', '.join(missing)}; top-level keys: "
                f"{', '.join(fh) or 'none'}): expected /matrix (genes x cells), /row_attrs "
                "and /col_attrs",
                path=path,
            )
        rows, cols = fh["row_attrs"], fh["col_attrs"]
        gene_key, id_key, cell_key = (
            _first(rows, _GENE_ATTRS),
            _first(rows, _ID_ATTRS),
            _first(cols, _CELL_ATTRS),
        )
        if gene_key is None and id_key is None:
            raise ScingestError(
                f"no gene names: row attributes are {', '.join(rows) or 'none'}, expected "
                "Gene or Accession",
                path=path,
            )
        if cell_key is None:
            raise ScingestError(
                f"no cell barcodes: column attributes are {', '.join(cols) or 'none'}, "
                "expected CellID",
                path=path,
            )
        ids = h5_strings(rows[id_key]) if id_key is not None else None
        symbols = h5_strings(rows[gene_key]) if gene_key is not None else ids
        barcodes = h5_strings(cols[cell_key])
        obs = {}  # the other column attributes, one value per cell (e.g. ClusterName)
        for key in cols:
            values = cols[key]
            if key == cell_key or values.ndim != 1 or len(values) != len(barcodes):
                continue
            obs[key] = h5_strings(values) if values.dtype.kind in "OSU" else values[()]
        matrix = fh["matrix"]
        if matrix.shape != (len(symbols), len(barcodes)):
            raise ScingestError(
                f"/matrix is {matrix.shape[0]} x {matrix.shape[1]} but there are "
                f"{len(symbols)} genes ({gene_key or id_key}) and {len(barcodes)} cells "
                f"({cell_key}): expected genes x cells",
                path=path,
            )
        counts = check_counts(
            _sparse(matrix), path, dtype=dtype, allow_non_integer=allow_non_integer
        )
        names = [k for k in fh.get("layers", {}) if k]
        kept: dict[str, sp.csr_matrix] = {}
        if layers == "keep":
            for name in names:
                where = f"{path} (layer {name})"
                kept[name] = check_counts(
                    _sparse(fh["layers"][name]),
                    where,
                    dtype=dtype,
                    allow_non_integer=allow_non_integer,
                )
            if kept:
                logger.info("%s: kept loom layers %s", path, ", ".join(kept))
        elif names:
            logger.info(
                "%s: left out loom layers %s (set loom_layers: keep to keep them)",
                path,
                ", ".join(names),
            )
    raw = RawCounts(counts=counts, barcodes=barcodes, symbols=symbols, ids=ids, obs=obs)
    return raw, kept


def _detect(path: Path) -> Fit:
    return Fit.FILES if path.is_file() and path.name.lower().endswith(".loom") else Fit.NONE


FORMATS = (
    Format(
        "loom",
        "loom file (velocyto, older GEO uploads): genes x cells matrix, row attributes "
        "Gene/Accession, column attribute CellID",
        detect=_detect,
        resolve=store_files,
        read=reads(read_loom, layers="loom_layers"),
        options=frozenset({"loom_layers"}),
    ),
)
