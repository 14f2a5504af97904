"""Writers of small count files in every input format, for the format tests.

Each writer takes the same cells (:class:`Cells`: counts cells x features, barcodes, gene
ids, symbols, feature types) and stores them in one layout, as CellRanger, GEO or anndata
would, so tests can check that every format reads back to the same checkpoint.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from scingest.synthetic import synthetic_counts, write_dense


@dataclass
class Cells:
    """One sample's counts (cells x features, int) and names."""

    counts: sp.csr_matrix
    barcodes: list[str]
    ids: list[str]
    symbols: list[str]
    types: list[str]

    @property
    def gex(self) -> np.ndarray:
        return np.array([t == "Gene Expression" for t in self.types])


def make_cells(
    n_genes: int = 40, n_cells: int = 15, *, seed: int = 0, n_antibodies: int = 0
) -> Cells:
    """Synthetic cells; the last ``n_antibodies`` features are Antibody Capture."""
    symbols, barcodes, counts = synthetic_counts(n_genes, n_cells, seed=seed, median_counts=150)
    symbols = list(symbols)
    symbols[-1] = symbols[-2]  # a duplicate symbol with its own id, as in real references
    ids = [f"ENSG{i:011d}" for i in range(n_genes)]
    types = ["Gene Expression"] * n_genes
    if n_antibodies:
        rng = np.random.default_rng(seed)
        adt = sp.csr_matrix(rng.poisson(20, size=(n_cells, n_antibodies)))
        counts = sp.hstack([counts, adt], format="csr")
        symbols += [f"CD{i}_TotalSeqB" for i in range(n_antibodies)]
        ids += [f"CD{i}" for i in range(n_antibodies)]
        types += ["Antibody Capture"] * n_antibodies
    return Cells(sp.csr_matrix(counts, dtype=np.int64), list(barcodes), ids, symbols, types)


def _write_lines(path: Path, lines: list[str]) -> None:
    text = "".join(f"{line}\n" for line in lines).encode()
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(text)
    else:
        path.write_bytes(text)


def _write_mtx(path: Path, matrix: sp.spmatrix) -> None:
    plain = path.with_name(path.name.removesuffix(".gz"))
    scipy.io.mmwrite(plain, sp.coo_matrix(matrix), field="integer")
    if path.name.endswith(".gz"):
        with open(plain, "rb") as src, gzip.open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        plain.unlink()


def write_10x(
    folder: Path, cells: Cells, *, version: int = 3, gz: bool | None = None, prefix: str = ""
) -> Path:
    """A CellRanger matrix folder (v2: genes.tsv, 2 columns; v3: features.tsv, 3 columns).

    With ``prefix`` the three files are written flat, GEO style; returns the folder, or the
    matrix file when prefixed.
    """
    gz = version == 3 if gz is None else gz
    ext = ".gz" if gz else ""
    folder.mkdir(parents=True, exist_ok=True)
    matrix = folder / f"{prefix}matrix.mtx{ext}"
    _write_mtx(matrix, cells.counts.T)
    _write_lines(folder / f"{prefix}barcodes.tsv{ext}", cells.barcodes)
    if version == 2:
        rows = [f"{i}\t{s}" for i, s in zip(cells.ids, cells.symbols, strict=True)]
        _write_lines(folder / f"{prefix}genes.tsv{ext}", rows)
    else:
        rows = [
            f"{i}\t{s}\t{t}" for i, s, t in zip(cells.ids, cells.symbols, cells.types, strict=True)
        ]
        _write_lines(folder / f"{prefix}features.tsv{ext}", rows)
    return matrix if prefix else folder


def write_plain_mtx(path: Path, cells: Cells, *, orientation: str = "genes_x_cells") -> Path:
    """``counts.mtx[.gz]`` with ``_rows`` (id, symbol) and ``_cols`` (barcodes) beside it."""
    base = path.with_name(path.name.removesuffix(".gz"))
    genes = [f"{i}\t{s}" for i, s in zip(cells.ids, cells.symbols, strict=True)]
    if orientation == "genes_x_cells":
        _write_mtx(path, cells.counts.T)
        rows, cols = genes, cells.barcodes
    else:
        _write_mtx(path, cells.counts)
        rows, cols = cells.barcodes, genes
    _write_lines(Path(f"{base}_rows"), rows)
    _write_lines(Path(f"{base}_cols.gz"), cols)
    return path


def _bytes(values: list[str]) -> np.ndarray:
    return np.array([v.encode() for v in values])


def write_10x_h5(
    path: Path, cells: Cells, *, version: int = 3, genomes: tuple[str, ...] = ("GRCh38",)
) -> Path:
    """A CellRanger HDF5 file: v2 one group per genome (same cells each), v3 ``/matrix``."""
    csc = sp.csc_matrix(cells.counts.T)  # features x cells, compressed by cell
    with h5py.File(path, "w") as fh:
        if version == 2:
            for genome in genomes:
                group = fh.create_group(genome)
                for key, values in (
                    ("data", csc.data.astype(np.int32)),
                    ("indices", csc.indices.astype(np.int64)),
                    ("indptr", csc.indptr.astype(np.int64)),
                    ("shape", np.array(csc.shape, dtype=np.int32)),
                    ("barcodes", _bytes(cells.barcodes)),
                    ("genes", _bytes(cells.ids)),
                    ("gene_names", _bytes(cells.symbols)),
                ):
                    group.create_dataset(key, data=values)
            return path
        n = len(cells.ids)
        per = -(-n // len(genomes))
        genome_of = [genomes[min(i // per, len(genomes) - 1)] for i in range(n)]
        group = fh.create_group("matrix")
        group.create_dataset("data", data=csc.data.astype(np.int32))
        group.create_dataset("indices", data=csc.indices.astype(np.int64))
        group.create_dataset("indptr", data=csc.indptr.astype(np.int64))
        group.create_dataset("shape", data=np.array(csc.shape, dtype=np.int32))
        group.create_dataset("barcodes", data=_bytes(cells.barcodes))
        features = group.create_group("features")
        features.create_dataset("id", data=_bytes(cells.ids))
        features.create_dataset("name", data=_bytes(cells.symbols))
        features.create_dataset("feature_type", data=_bytes(cells.types))
        features.create_dataset("genome", data=_bytes(genome_of))
        features.create_dataset("_all_tag_keys", data=_bytes(["genome"]))
    return path


def write_h5ad(path: Path, cells: Cells, *, layer: str | None = None) -> Path:
    """An h5ad with the counts in X or in ``layers[layer]`` (X then holds log-normalised data)."""
    var = pd.DataFrame(
        {"gene_ids": cells.ids, "feature_types": cells.types},
        index=ad.utils.make_index_unique(pd.Index(cells.symbols)),
    )
    counts = cells.counts.astype(np.float32)
    adata = ad.AnnData(X=counts, obs=pd.DataFrame(index=cells.barcodes), var=var)
    if layer is not None:
        adata.layers[layer] = counts
        adata.X = counts.log1p()
    adata.write_h5ad(path)
    return path


def write_csv(path: Path, cells: Cells) -> Path:
    """A GEO-style dense genes x cells CSV (symbols only; gene expression features only)."""
    gex = np.flatnonzero(cells.gex)
    symbols = list(ad.utils.make_index_unique(pd.Index(np.array(cells.symbols)[gex])))
    write_dense(path, symbols, cells.barcodes, cells.counts[:, gex])
    return path
