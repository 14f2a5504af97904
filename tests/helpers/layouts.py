"""Writers of the counting tools' output layouts, for the layout tests.

Each writer lays out :class:`helpers.formats.Cells` exactly as the tool does (file names,
header lines, orientation, compression), with the files the tool writes beside them, so
the tests read what a user downloads.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from helpers.formats import Cells, _bytes, _write_lines, _write_mtx, write_10x, write_10x_h5


def _extra_cells(cells: Cells, n: int = 5) -> Cells:
    """The same genes with ``n`` more barcodes (empty droplets): what raw/ folders hold."""
    counts = sp.vstack([cells.counts, sp.csr_matrix((n, cells.counts.shape[1]), dtype=np.int64)])
    barcodes = cells.barcodes + [f"EMPTY{i:04d}-1" for i in range(n)]
    return Cells(sp.csr_matrix(counts), barcodes, cells.ids, cells.symbols, cells.types)


def write_cellranger_multi(outs: Path, samples: dict[str, Cells], *, h5: bool = True) -> Path:
    """A CellRanger multi run's outs/: per_sample_outs/<name>/count/sample_filtered_...

    ``h5`` writes the .h5 and the matrix folder (as CellRanger does); otherwise the folder
    only (as often uploaded).
    """
    (outs / "multi" / "count").mkdir(parents=True, exist_ok=True)
    first = next(iter(samples.values()))
    write_10x_h5(outs / "multi" / "count" / "raw_feature_bc_matrix.h5", _extra_cells(first))
    for name, cells in samples.items():
        count = outs / "per_sample_outs" / name / "count"
        count.mkdir(parents=True)
        if h5:
            write_10x_h5(count / "sample_filtered_feature_bc_matrix.h5", cells)
        write_10x(count / "sample_filtered_feature_bc_matrix", cells)
        (outs / "per_sample_outs" / name / "metrics_summary.csv").write_text("Metric,Value\n")
    return outs


def write_cellranger_count(run: Path, cells: Cells, *, h5: bool = True) -> Path:
    """A CellRanger (or Space Ranger) count run folder: <run>/outs/filtered_feature_bc_..."""
    outs = run / "outs"
    outs.mkdir(parents=True)
    if h5:
        write_10x_h5(outs / "filtered_feature_bc_matrix.h5", cells)
        write_10x_h5(outs / "raw_feature_bc_matrix.h5", _extra_cells(cells))
    write_10x(outs / "filtered_feature_bc_matrix", cells)
    write_10x(outs / "raw_feature_bc_matrix", _extra_cells(cells))
    (outs / "metrics_summary.csv").write_text("Estimated Number of Cells\n1\n")
    (run / "_log").write_text("")
    return run


def write_spaceranger(run: Path, cells: Cells) -> Path:
    """A Space Ranger count run: outs/filtered_feature_bc_matrix.h5 beside spatial/."""
    write_cellranger_count(run, cells)
    spatial = run / "outs" / "spatial"
    spatial.mkdir()
    pd.DataFrame(
        {"barcode": cells.barcodes, "in_tissue": 1, "array_row": 0, "array_col": 0}
    ).to_csv(spatial / "tissue_positions.csv", index=False)
    (spatial / "scalefactors_json.json").write_text('{"spot_diameter_fullres": 89.4}')
    return run


def write_probe_h5(path: Path, cells: Cells, *, seed: int = 0, empty: int = 3) -> Cells:
    """A Flex / Visium HD probe-level .h5 as CellRanger writes it: each gene split into 1-3
    probes, plus one probe its filter excluded, and ``empty`` barcodes it did not call cells.

    ``features/filtered_probes`` is True for the probes that passed CellRanger's filter
    (one ``target_sets`` entry lists the same probes) and ``matrix/filtered_barcodes`` True
    for the barcodes it called cells, as in the real file (tests/fixtures/probe/). Returns
    the gene-level cells CellRanger would report (excluded probe and empty barcodes left out).
    """
    rng = np.random.default_rng(seed)
    dense = cells.counts.toarray()
    dense = np.vstack([dense, rng.poisson(0.05, size=(empty, dense.shape[1]))])
    barcodes = cells.barcodes + [f"EMPTY{i:04d}-1" for i in range(empty)]
    columns, ids, names, gene_ids, gene_names, regions, passed = [], [], [], [], [], [], []
    for g, (gid, sym) in enumerate(zip(cells.ids, cells.symbols, strict=True)):
        n_probes = 1 + g % 3
        split = np.zeros((dense.shape[0], n_probes), dtype=np.int64)
        for c in range(dense.shape[0]):
            split[c] = rng.multinomial(dense[c, g], [1 / n_probes] * n_probes)
        for p in range(n_probes):
            tag = f"{g:03d}{p}"
            columns.append(split[:, p])
            ids.append(f"{gid}|{sym}|{tag}")
            names.append(f"{sym}|{tag}")
            gene_ids.append(gid)
            gene_names.append(sym)
            regions.append("spliced" if p % 2 == 0 else "unspliced")
            passed.append(True)
    # a probe CellRanger's filter excluded (deprecated): its counts are not the gene's
    columns.append(rng.poisson(3, size=dense.shape[0]))
    ids.append(f"DEPRECATED_{cells.ids[0]}|{cells.symbols[0]}|deprecated")
    names.append(f"{cells.symbols[0]}|deprecated")
    gene_ids.append(f"DEPRECATED_{cells.ids[0]}")
    gene_names.append(f"DEPRECATED_{cells.ids[0]}")
    regions.append("none")
    passed.append(False)
    probes = Cells(
        sp.csr_matrix(np.column_stack(columns)),
        barcodes,
        ids,
        names,
        ["Gene Expression"] * len(ids),
    )
    write_10x_h5(path, probes)
    with h5py.File(path, "r+") as fh:
        features = fh["matrix/features"]
        features.create_dataset("gene_id", data=_bytes(gene_ids))
        features.create_dataset("gene_name", data=_bytes(gene_names))
        features.create_dataset("probe_region", data=_bytes(regions))
        features.create_dataset("filtered_probes", data=np.array(passed, dtype=bool))
        features.create_dataset(
            "target_sets/Probe Set", data=np.flatnonzero(passed).astype(np.uint32)
        )
        del features["_all_tag_keys"]
        tags = ["genome", "gene_id", "gene_name", "probe_region", "filtered_probes"]
        features.create_dataset("_all_tag_keys", data=_bytes(tags))
        called = np.arange(len(barcodes)) < len(cells.barcodes)
        fh["matrix"].create_dataset("filtered_barcodes", data=called)
    return cells


def write_starsolo(run: Path, cells: Cells, *, features: tuple[str, ...] = ("Gene",)) -> Path:
    """A STAR run folder: Solo.out/<Gene|GeneFull>/{filtered,raw}/ uncompressed, as STARsolo."""
    solo = run / "Solo.out"
    for feature in features:
        write_10x(solo / feature / "filtered", cells, version=3, gz=False)
        write_10x(solo / feature / "raw", _extra_cells(cells), version=3, gz=False)
        (solo / feature / "Summary.csv").write_text("Number of Reads,1000\n")
        (solo / feature / "Features.stats").write_text("nUnmapped 0\n")
    (solo / "Barcodes.stats").write_text("nNoAdapter 0\n")
    (run / "Log.final.out").write_text("Uniquely mapped reads % | 90.00%\n")
    return run


def write_kb(out: Path, cells: Cells, *, names: bool = True) -> Path:
    """``kb count`` output: counts_unfiltered/cells_x_genes.* (cells x genes, uncompressed)."""
    counts = out / "counts_unfiltered"
    counts.mkdir(parents=True)
    _write_mtx(counts / "cells_x_genes.mtx", cells.counts)  # rows are cells
    _write_lines(counts / "cells_x_genes.barcodes.txt", cells.barcodes)
    _write_lines(counts / "cells_x_genes.genes.txt", cells.ids)
    if names:
        _write_lines(counts / "cells_x_genes.genes.names.txt", cells.symbols)
    (out / "run_info.json").write_text(json.dumps({"n_targets": len(cells.ids)}))
    (out / "inspect.json").write_text("{}")
    (out / "10x_version3_whitelist.txt").write_text("AAAC\n")
    return out


def write_alevin_fry(
    out: Path, cells: Cells, *, usa: bool = False, names: bool = False, seed: int = 0
) -> Path:
    """simpleaf / alevin-fry output: af_quant/alevin/quants_mat.mtx (cells x genes).

    ``names`` writes simpleaf's ``gene_id_to_name.tsv`` beside af_quant. With ``usa`` the
    columns are spliced, unspliced, ambiguous of each gene (in that order) and quant.json
    says ``usa_mode``; the counts the reader should give are S + A, so the cells' counts
    are split into S and A and random U counts are added.
    """
    alevin = out / "af_quant" / "alevin"
    alevin.mkdir(parents=True)
    n = len(cells.ids)
    matrix = cells.counts
    genes = list(cells.ids)
    if usa:
        rng = np.random.default_rng(seed)
        dense = cells.counts.toarray()
        spliced = rng.binomial(dense, 0.8)
        ambiguous = dense - spliced
        unspliced = rng.poisson(2, size=dense.shape)
        matrix = sp.csr_matrix(np.hstack([spliced, unspliced, ambiguous]))
        genes = genes + [f"{g}-U" for g in cells.ids] + [f"{g}-A" for g in cells.ids]
    _write_mtx(alevin / "quants_mat.mtx", matrix)
    _write_lines(alevin / "quants_mat_rows.txt", cells.barcodes)
    _write_lines(alevin / "quants_mat_cols.txt", genes)
    meta = {"alt_resolved_cell_numbers": [], "num_genes": n * (3 if usa else 1), "usa_mode": usa}
    (out / "af_quant" / "quant.json").write_text(json.dumps(meta))
    (out / "af_quant" / "featureDump.txt").write_text("CB\tCorrectedReads\n")
    if names:  # simpleaf's index map, copied beside the quantification
        rows = [f"{i}\t{s}" for i, s in zip(cells.ids, cells.symbols, strict=True)]
        _write_lines(out / "gene_id_to_name.tsv", rows)
    return out


def write_loom(path: Path, cells: Cells, *, seed: int = 0) -> dict[str, np.ndarray]:
    """A velocyto loom: /matrix (genes x cells, = spliced), layers spliced/unspliced/ambiguous.

    Returns the layers (cells x genes) the file holds.
    """
    rng = np.random.default_rng(seed)
    main = cells.counts.toarray().T.astype(np.uint32)  # genes x cells
    layers = {
        "spliced": main,
        "unspliced": rng.poisson(1, size=main.shape).astype(np.uint32),
        "ambiguous": rng.poisson(0.2, size=main.shape).astype(np.uint32),
    }
    opts = {"chunks": (min(64, main.shape[0]), min(64, main.shape[1])), "compression": "gzip"}
    with h5py.File(path, "w") as fh:
        fh.attrs["LOOM_SPEC_VERSION"] = "3.0.0"
        fh.create_dataset("matrix", data=main, **opts)
        group = fh.create_group("layers")
        for name, values in layers.items():
            group.create_dataset(name, data=values, **opts)
        rows = fh.create_group("row_attrs")
        rows.create_dataset("Gene", data=_bytes(cells.symbols))
        rows.create_dataset("Accession", data=_bytes(cells.ids))
        rows.create_dataset("Chromosome", data=_bytes(["1"] * len(cells.ids)))
        cols = fh.create_group("col_attrs")
        cols.create_dataset("CellID", data=_bytes(cells.barcodes))
        cols.create_dataset("_X", data=np.zeros(len(cells.barcodes)))
        fh.create_group("row_graphs")
        fh.create_group("col_graphs")
        fh.create_group("attrs")
    return {name: values.T for name, values in layers.items()}


def write_h5ad_07(path: Path, cells: Cells) -> Path:
    """An h5ad as anndata 0.7 wrote it: encoding 0.1.0 dataframes, categoricals as codes
    with a ``categories`` reference into ``__categories``, CSR X with a ``shape`` attr."""
    csr = sp.csr_matrix(cells.counts, dtype=np.float32)
    string = h5py.string_dtype()
    with h5py.File(path, "w") as fh:
        fh.attrs["encoding-type"] = "anndata"
        fh.attrs["encoding-version"] = "0.1.0"
        x = fh.create_group("X")
        x.attrs["encoding-type"] = "csr_matrix"
        x.attrs["encoding-version"] = "0.1.0"
        x.attrs["shape"] = np.array(csr.shape)
        x.create_dataset("data", data=csr.data)
        x.create_dataset("indices", data=csr.indices)
        x.create_dataset("indptr", data=csr.indptr)
        for key, index, columns in (
            ("obs", cells.barcodes, {"batch": ["a"] * len(cells.barcodes)}),
            (
                "var",
                list(ad.utils.make_index_unique(pd.Index(cells.symbols))),
                {"gene_ids": cells.ids, "feature_types": cells.types},
            ),
        ):
            frame = fh.create_group(key)
            frame.attrs["encoding-type"] = "dataframe"
            frame.attrs["encoding-version"] = "0.1.0"
            frame.attrs["_index"] = "index"
            frame.attrs["column-order"] = np.array(list(columns), dtype=object)
            frame.create_dataset("index", data=np.array(index, dtype=object), dtype=string)
            cats = frame.create_group("__categories")
            for name, values in columns.items():
                if name == "gene_ids":
                    frame.create_dataset(name, data=np.array(values, dtype=object), dtype=string)
                    continue
                categories, codes = np.unique(values, return_inverse=True)
                cats.create_dataset(name, data=categories.astype(object), dtype=string)
                codes_ds = frame.create_dataset(name, data=codes.astype(np.int8))
                codes_ds.attrs["categories"] = cats[name].ref
        for key in ("uns", "obsm", "varm", "layers"):
            fh.create_group(key)
    return path


def write_zarr(path: Path, cells: Cells, *, zipped: bool = False) -> Path:
    """An AnnData zarr store (zarr format 2, as older anndata wrote), or a .zarr.zip of it."""
    var = pd.DataFrame(
        {"gene_ids": cells.ids, "feature_types": cells.types},
        index=ad.utils.make_index_unique(pd.Index(cells.symbols)),
    )
    adata = ad.AnnData(
        X=cells.counts.astype(np.float32), obs=pd.DataFrame(index=cells.barcodes), var=var
    )
    folder = path.with_name(path.name.removesuffix(".zip")) if zipped else path
    with warnings.catch_warnings():
        # anndata announces its next default (zarr v3); older tools wrote v2, as here
        warnings.simplefilter("ignore", UserWarning)
        adata.write_zarr(folder)
    if zipped:
        # a .zarr.zip holds the store's files at the archive's root
        shutil.make_archive(str(folder), "zip", folder)
        Path(f"{folder}.zip").rename(path)
        shutil.rmtree(folder)
    return path


def _probe(folder: Path, cells: Cells) -> Path:
    path = folder / "sample_filtered_probe_bc_matrix.h5"
    write_probe_h5(path, cells)
    return path


def _loom(folder: Path, cells: Cells) -> Path:
    write_loom(folder / "velocyto.loom", cells)
    return folder / "velocyto.loom"


#: id -> (writer of cells under a folder, returning the path; format; read_counts options),
#: as tests/unit/test_readers_formats.py's WRITERS.
LAYOUT_WRITERS = {
    "cellranger-multi": (
        lambda d, c: write_cellranger_multi(d / "outs", {"S1": c}) / "per_sample_outs" / "S1",
        "cellranger_multi",
        {},
    ),
    "cellranger-count": (lambda d, c: write_cellranger_count(d / "run", c), "cellranger_count", {}),
    "spaceranger": (lambda d, c: write_spaceranger(d / "visium", c), "cellranger_count", {}),
    "probe-h5": (_probe, "10x_probe_h5", {}),
    "starsolo": (lambda d, c: write_starsolo(d / "star", c), "starsolo", {}),
    "kb": (lambda d, c: write_kb(d / "kb", c), "kb", {}),
    "alevin-fry": (lambda d, c: write_alevin_fry(d / "fry", c, names=True), "alevin_fry", {}),
    "loom": (_loom, "loom", {}),
    "zarr": (lambda d, c: write_zarr(d / "in.zarr", c), "zarr", {}),
    "zarr-zip": (lambda d, c: write_zarr(d / "in.zarr.zip", c, zipped=True), "zarr", {}),
    "h5ad-anndata-0.7": (lambda d, c: write_h5ad_07(d / "old.h5ad", c), "h5ad", {}),
}
