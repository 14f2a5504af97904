"""Seed-size synthetic inputs for the benchmarks, made once with a fixed seed and cached.

The seed sample mimics one GEO export of the project's reference dataset: 33,538 genes x
9,413 cells, about 94.6% zeros, median about 5,500 UMIs per cell, 13 ``MT-`` genes, written
genes x cells as CSV.gz (the layout of ``GSM5320459_Ctrl1_count_matrix.csv.gz``).

Nothing here holds the dense 33,538 x 9,413 matrix: counts are drawn cell by cell into CSR
and the text is formatted gene block by gene block by a numba kernel, then piped through
``gzip -6`` (the level GEO files carry) in a second process.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp

from scingest.synthetic import barcodes, gene_names

DATA = Path(__file__).resolve().parent / "data"
N_GENES = 33_538
N_CELLS = 9_413
SEED = 20_210_519
#: Zipf exponent of the gene weights; 1.1 gives about 94.6% zeros at a 5,500-UMI median.
ZIPF = 1.1
MEDIAN_UMIS = 5_500.0


def seed_counts(
    *, n_cells: int = N_CELLS, n_genes: int = N_GENES, seed: int = SEED
) -> tuple[list[str], list[str], sp.csr_matrix]:
    """Gene names, barcodes and int32 CSR counts (cells x genes) of the seed sample."""
    rng = np.random.default_rng(seed)
    genes = gene_names(n_genes)
    cells = barcodes(n_cells, rng)
    weights = 1.0 / np.arange(1, n_genes + 1) ** ZIPF
    weights = weights[rng.permutation(n_genes)]
    is_mt = np.array([g.startswith("MT-") for g in genes])
    weights[is_mt] *= 0.05 / weights[is_mt].sum() * weights[~is_mt].sum() / 0.95
    weights /= weights.sum()
    lib = rng.lognormal(np.log(MEDIAN_UMIS), 0.5, n_cells)
    indptr = np.zeros(n_cells + 1, np.int64)
    indices: list[np.ndarray] = []
    data: list[np.ndarray] = []
    for i in range(n_cells):
        row = rng.poisson(lib[i] * weights)
        nz = np.flatnonzero(row)
        indices.append(nz.astype(np.int32))
        data.append(row[nz].astype(np.int32))
        indptr[i + 1] = indptr[i] + len(nz)
    counts = sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), indptr), shape=(n_cells, n_genes)
    )
    return genes, cells, counts


@numba.njit(cache=True)
def _format_rows(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_cols: int, out: np.ndarray
) -> int:
    """Write CSR rows as ``,v,v,...\\n`` (the row name goes before) into ``out``; bytes used."""
    p = 0
    digits = np.empty(20, np.uint8)
    for r in range(len(indptr) - 1):
        k = indptr[r]
        for c in range(n_cols):
            out[p] = 44  # ','
            p += 1
            if k < indptr[r + 1] and indices[k] == c:
                v = data[k]
                k += 1
                n = 0
                while v > 0:
                    digits[n] = 48 + v % 10
                    v //= 10
                    n += 1
                for j in range(n - 1, -1, -1):
                    out[p] = digits[j]
                    p += 1
            else:
                out[p] = 48  # '0'
                p += 1
        out[p] = 10
        p += 1
    return p


def write_csv_gz(
    path: Path, genes: list[str], cells: list[str], counts: sp.csr_matrix, *, block: int = 512
) -> Path:
    """Write counts (cells x genes) genes x cells as CSV, gzip -6, atomically."""
    by_gene = counts.T.tocsr()  # rows are genes
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        gz = subprocess.Popen(["gzip", "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=fh)
        assert gz.stdin is not None
        gz.stdin.write(("," + ",".join(cells) + "\n").encode())
        out = np.empty(block * len(cells) * 12, np.uint8)
        for start in range(0, len(genes), block):
            stop = min(start + block, len(genes))
            sub = by_gene[start:stop]
            # one row name before each formatted row: format rows one at a time
            for r in range(stop - start):
                row = sub[r : r + 1]
                n = _format_rows(row.indptr, row.indices, row.data, len(cells), out)
                gz.stdin.write(genes[start + r].encode())
                gz.stdin.write(out[:n].tobytes())
        gz.stdin.close()
        if gz.wait() != 0:
            raise RuntimeError("gzip failed")
    tmp.replace(path)
    return path


def seed_csv_gz() -> Path:
    """The cached seed sample as CSV.gz, made on first use (about a minute)."""
    path = DATA / f"seed_{N_GENES}x{N_CELLS}_{SEED}.csv.gz"
    if not path.exists():
        genes, cells, counts = cached_seed_counts()
        write_csv_gz(path, genes, cells, counts)
    return path


def cached_seed_counts() -> tuple[list[str], list[str], sp.csr_matrix]:
    """:func:`seed_counts`, cached as npz (drawing them takes about 30 s)."""
    path = DATA / f"seed_{N_GENES}x{N_CELLS}_{SEED}.npz"
    if path.exists():
        with np.load(path) as f:
            counts = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
            return f["genes"].tolist(), f["cells"].tolist(), counts
    genes, cells, counts = seed_counts()
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        data=counts.data,
        indices=counts.indices,
        indptr=counts.indptr,
        shape=np.array(counts.shape),
        genes=np.array(genes),
        cells=np.array(cells),
    )
    tmp.replace(path)
    return genes, cells, counts


def tiny_csv_gz() -> Path:
    """A small sample of the same shape, to load numba's caches before timing."""
    path = DATA / "tiny.csv.gz"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        genes, cells, counts = seed_counts(n_cells=50, n_genes=2_000, seed=1)
        write_csv_gz(path, genes, cells, counts)
    return path


def write_checkpoints(
    folder: Path,
    n: int,
    *,
    n_cells: int,
    n_genes: int = N_GENES,
    appended: int = 0,
    compression: str = "lzf",
) -> list[Path]:
    """``n`` synthetic checkpoints of ``n_cells`` cells each, shaped like ingest_sample's and
    written by its writer (``write_h5ad``: counts stored once).

    Cells are consecutive slices of the seed counts (wrapping around), so every
    checkpoint has realistic sparsity; obs and var carry the columns build_sample writes.
    ``n_genes`` keeps the seed's first genes (the merge-scale part). ``appended``: every
    odd-numbered sample has that many genes of its own after the shared ones (as a second
    reference's extra genes; an outer join appends them). Existing files are kept (the
    folder is a cache).
    """
    import anndata as ad
    import pandas as pd
    import scanpy as sc

    from scingest.sample import write_h5ad

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"S{i:02d}.h5ad" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    genes, cells, counts = cached_seed_counts()
    genes, counts = genes[:n_genes], counts[:, :n_genes]
    rng = np.random.default_rng(SEED)
    for i, path in enumerate(paths):
        if path.exists():
            continue
        rows = (np.arange(n_cells) + i * n_cells) % counts.shape[0]
        x = counts[rows].astype(np.float32)
        names = list(genes)
        if appended and i % 2:
            extra = sp.random(n_cells, appended, density=0.05, format="csr", rng=rng)
            extra.data = rng.integers(1, 5, extra.nnz).astype(np.float32)
            x = sp.hstack([x, extra], format="csr", dtype=np.float32)
            names += [f"EXTRA{i:02d}_{j}" for j in range(appended)]
        var = pd.DataFrame(index=pd.Index(names))
        var["mt"] = var.index.str.startswith("MT-")
        var["ribo"] = var.index.str.match(r"^RP[SL]")
        var["hb"] = var.index.str.match(r"^HB[^P]")
        sample = path.stem
        obs = pd.DataFrame(index=pd.Index([f"{sample}-{cells[r]}-{j}" for j, r in enumerate(rows)]))
        obs["sample"] = pd.Categorical([sample] * n_cells)
        # barcodes unique within a sample, as in real data: a sample that wraps around the
        # seed's cells gets its second lap's barcodes as from a second GEM well (-2)
        offset = np.arange(n_cells) + i * n_cells
        laps = offset // counts.shape[0] - (i * n_cells) // counts.shape[0]
        obs["barcode"] = [
            cells[r] if lap == 0 else f"{cells[r].rsplit('-', 1)[0]}-{lap + 1}"
            for r, lap in zip(rows, laps, strict=True)
        ]
        obs["condition"] = pd.Categorical(["Ctrl" if i % 2 else "Pre"] * n_cells)
        adata = ad.AnnData(X=x, obs=obs, var=var)
        adata.layers["counts"] = x.copy()
        sc.pp.calculate_qc_metrics(
            adata, qc_vars=["mt", "ribo", "hb"], percent_top=(20, 50, 100), inplace=True
        )
        adata.uns["scingest"] = {"sample": sample}
        write_h5ad(adata, path, compression=compression)
    return paths


def seed_tenx() -> tuple[Path, Path]:
    """The seed sample as CellRanger 3 outputs: a ``filtered_feature_bc_matrix`` folder
    (``matrix.mtx.gz``, ``features.tsv.gz``, ``barcodes.tsv.gz``, gzip -6) and an ``.h5``
    (``/matrix``, gzip-compressed chunks as CellRanger writes). Made on first use."""
    import h5py
    import scipy.io

    folder = DATA / f"seed_{N_GENES}x{N_CELLS}_{SEED}_filtered_feature_bc_matrix"
    h5 = DATA / f"seed_{N_GENES}x{N_CELLS}_{SEED}_filtered_feature_bc_matrix.h5"
    if folder.exists() and h5.exists():
        return folder, h5
    genes, cells, counts = cached_seed_counts()
    ids = [f"ENSG{i:011d}" for i in range(len(genes))]
    by_cell = counts.astype(np.int32)  # CSR cells x genes = CSC genes x cells
    if not folder.exists():
        tmp = folder.with_name(folder.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        scipy.io.mmwrite(tmp / "matrix.mtx", by_cell.T.tocoo(), field="integer")
        (tmp / "features.tsv").write_text(
            "".join(f"{i}\t{g}\tGene Expression\n" for i, g in zip(ids, genes, strict=True))
        )
        (tmp / "barcodes.tsv").write_text("".join(f"{c}\n" for c in cells))
        for name in ("matrix.mtx", "features.tsv", "barcodes.tsv"):
            subprocess.run(["gzip", "-6", "-f", str(tmp / name)], check=True)
        tmp.replace(folder)
    if not h5.exists():
        tmp_h5 = h5.with_suffix(".tmp.h5")
        with h5py.File(tmp_h5, "w") as f:
            group = f.create_group("matrix")
            for key, values in (
                ("data", by_cell.data),
                ("indices", by_cell.indices.astype(np.int64)),
                ("indptr", by_cell.indptr.astype(np.int64)),
            ):
                chunks = (min(80_000, len(values)),)
                group.create_dataset(key, data=values, compression="gzip", chunks=chunks)
            group.create_dataset("shape", data=np.array([len(genes), len(cells)], dtype=np.int32))
            group.create_dataset("barcodes", data=np.array([c.encode() for c in cells]))
            features = group.create_group("features")
            features.create_dataset("id", data=np.array([i.encode() for i in ids]))
            features.create_dataset("name", data=np.array([g.encode() for g in genes]))
            features.create_dataset("feature_type", data=np.array([b"Gene Expression"] * len(ids)))
            features.create_dataset("genome", data=np.array([b"GRCh38"] * len(ids)))
            features.create_dataset("_all_tag_keys", data=np.array([b"genome"]))
        tmp_h5.replace(h5)
    return folder, h5


def _draws(
    rng: np.random.Generator, totals: np.ndarray, prob: np.ndarray, first: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row and gene of each molecule: rows ``first, first + 1, ...`` of ``totals``
    molecules each, genes drawn from ``prob``."""
    rows = np.repeat(np.arange(first, first + len(totals)), totals)
    genes = rng.choice(len(prob), size=int(totals.sum()), p=prob)
    return rows, genes


def raw_droplets(
    n_barcodes: int = 500_000, n_cells: int = 5_000, n_genes: int = 10_000, seed: int = 23
) -> Path:
    """A raw matrix (barcodes x genes, Matrix Market, cached in bench/data): ``n_cells`` cells
    of three types (lognormal totals around 4,000, a fifth of them small, 300-1,500),
    the rest empty droplets with a few ambient molecules (lognormal around 3, up to 400).
    Its ``.npz`` beside it (scipy CSR) and ``_truth.npy`` (which rows are cells)."""
    path = DATA / f"raw_droplets_{n_barcodes}.mtx"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.gamma(0.3, 1.0, n_genes) + 1e-4
    types = [base * rng.lognormal(0, s, n_genes) for s in (1.0, 0.6, 0.3)]
    types = [t / t.sum() for t in types]
    ambient = np.mean(types, axis=0)
    big = rng.lognormal(np.log(4000), 0.5, n_cells).astype(np.int64)
    small = rng.integers(300, 1500, n_cells)
    totals = np.where(rng.random(n_cells) < 0.2, small, big)
    kind = np.arange(n_cells) % 3
    rows, genes = [], []
    for k in range(3):
        at = np.flatnonzero(kind == k)
        r = np.repeat(at, totals[at])
        rows.append(r)
        genes.append(rng.choice(n_genes, size=len(r), p=types[k]))
    empty = np.clip(rng.lognormal(np.log(3), 1.0, n_barcodes - n_cells).astype(np.int64), 0, 400)
    r, g = _draws(rng, empty, ambient, n_cells)
    rows.append(r)
    genes.append(g)
    rows, genes = np.concatenate(rows), np.concatenate(genes)
    counts = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, genes)), shape=(n_barcodes, n_genes)
    )
    counts.sum_duplicates()
    order = rng.permutation(n_barcodes)
    counts = counts[order]
    truth = order < n_cells
    sp.save_npz(path.with_suffix(".npz"), counts)
    np.save(path.with_name(path.stem + "_truth.npy"), truth)
    import scipy.io

    scipy.io.mmwrite(path, counts.T.tocoo().astype(np.int64), field="integer")
    return path
