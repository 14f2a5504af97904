"""Issue 22's cases through the real workflow, with data made here and expected values from
oracles we did not write: scanpy's QC metrics, the README's QC rules re-derived naively
(:func:`helpers.qc.reference_flags`), scanpy's 10x reader and ``anndata.concat``.

One run holds every QC case as a sample of its own (a sheet with a metadata column some
samples leave empty, so the merge joins columns present in some samples only):

- ``Zero1``: 300 cells, 20 above 8% mito, and one barcode without counts (case 1);
- ``Barn1``: a human + mouse CellRanger ``.h5`` with genome-prefixed genes (case 2);
- ``One1``: a single cell (case 3);
- ``Ens1``: genes named by Ensembl ids only (case 4);
- ``NoMt1``: no mito gene at all (the summary and plots say "not measured");
- ``Ann1``: an h5ad with a collaborator's own obs columns (kept, renamed where they clash).
"""

from __future__ import annotations

import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import run_workflow
from helpers.qc import reference_flags
from scingest.synthetic import barcodes, synthetic_counts, write_dense

#: The 13 human mito genes' Ensembl ids (tests/unit/test_gene_sets.py checks them).
HUMAN_MT_IDS = [
    "ENSG00000198888",
    "ENSG00000198763",
    "ENSG00000198804",
    "ENSG00000198712",
    "ENSG00000228253",
    "ENSG00000198899",
    "ENSG00000198938",
    "ENSG00000198840",
    "ENSG00000212907",
    "ENSG00000198886",
    "ENSG00000198786",
    "ENSG00000198695",
    "ENSG00000198727",
]
QC = {"nmads": 5.0, "nmads_mt": 3.0, "max_pct_mt": 8.0}


def _dying(counts: np.ndarray, mito: np.ndarray, rows: np.ndarray, factor: int) -> None:
    counts[np.ix_(rows, np.flatnonzero(mito))] *= factor


def _zero_cell_sample(path):
    genes, cells, counts = synthetic_counts(300, 300, seed=21, median_counts=2000)
    counts = counts.toarray()
    mito = np.array([g.startswith("MT-") for g in genes])
    _dying(counts, mito, np.arange(20), 8)
    counts[299] = 0  # an empty barcode
    write_dense(path, genes, cells, sp.csr_matrix(counts))
    return genes, counts


def _ids_sample(path):
    symbols, cells, counts = synthetic_counts(200, 400, seed=22, median_counts=1500)
    counts = counts.toarray()
    mito = np.array([s.startswith("MT-") for s in symbols])
    assert mito.sum() == 13
    ids = [f"ENSG9{i:010d}" for i in range(len(symbols))]
    for j, k in enumerate(np.flatnonzero(mito)):
        ids[k] = HUMAN_MT_IDS[j]
    _dying(counts, mito, np.arange(60), 6)
    write_dense(path, ids, cells, sp.csr_matrix(counts))
    return ids, counts, mito


def _barnyard(path):
    """A CellRanger 3 .h5 of a GRCh38 + mm10 reference: 60 human and 60 mouse cells, each
    with counts in its own genome's genes only, 10 dying cells of each."""
    rng = np.random.default_rng(23)
    human = ["MT-ND1", "MT-CO1", "MT-CYB", *[f"HGENE{i}" for i in range(40)]]
    mouse = ["mt-Nd1", "mt-Co1", "mt-Cytb", *[f"Mgene{i}" for i in range(40)]]
    names = [f"GRCh38_{g}" for g in human] + [f"mm10___{g}" for g in mouse]
    ids = [f"GRCh38_ENSG{i:011d}" for i in range(43)] + [
        f"mm10___ENSMUSG{i:011d}" for i in range(43)
    ]
    genome = ["GRCh38"] * 43 + ["mm10"] * 43
    counts = np.zeros((120, 86), dtype=np.int64)
    counts[:60, :43] = rng.poisson(8, (60, 43))
    counts[60:, 43:] = rng.poisson(8, (60, 43))
    counts[:60, :3] = rng.poisson(2, (60, 3))
    counts[60:, 43:46] = rng.poisson(2, (60, 3))
    counts[:10, :3] *= 15  # dying human cells
    counts[60:70, 43:46] *= 15  # dying mouse cells
    csc = sp.csc_matrix(counts.T)
    cells = barcodes(120, rng)
    with h5py.File(path, "w") as fh:
        group = fh.create_group("matrix")
        for key, values in (
            ("data", csc.data.astype(np.int32)),
            ("indices", csc.indices.astype(np.int64)),
            ("indptr", csc.indptr.astype(np.int64)),
            ("shape", np.array(csc.shape, dtype=np.int32)),
            ("barcodes", np.array([b.encode() for b in cells])),
        ):
            group.create_dataset(key, data=values)
        features = group.create_group("features")
        for key, values in (
            ("id", ids),
            ("name", names),
            ("feature_type", ["Gene Expression"] * 86),
            ("genome", genome),
            ("_all_tag_keys", ["genome"]),
        ):
            features.create_dataset(key, data=np.array([v.encode() for v in values]))
    return names, genome, counts


def _annotated_h5ad(path):
    genes, cells, counts = synthetic_counts(80, 40, seed=24, median_counts=600)
    obs = pd.DataFrame(index=cells)
    obs["cell_type"] = pd.Categorical(np.where(np.arange(40) % 2, "T", "B"))
    obs["total_counts"] = np.arange(40.0)  # a collaborator's earlier QC: clashes with ours
    obs["donor_age"] = np.arange(40) % 3 + 30
    ad.AnnData(
        X=sp.csr_matrix(counts, dtype=np.float32), obs=obs, var=pd.DataFrame(index=genes)
    ).write_h5ad(path)
    return obs


@pytest.fixture(scope="module")
def trust_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("trust")
    data = work / "data"
    data.mkdir()
    made = {
        "Zero1": _zero_cell_sample(data / "GSM1_Zero1_count_matrix.csv.gz"),
        "Ens1": _ids_sample(data / "GSM2_Ens1_count_matrix.csv.gz"),
        "Barn1": _barnyard(data / "Barn1_filtered_feature_bc_matrix.h5"),
        "Ann1": _annotated_h5ad(data / "Ann1.h5ad"),
    }
    genes, cells, counts = synthetic_counts(50, 1, seed=25, median_counts=452)
    write_dense(data / "One1.csv.gz", genes, cells, counts)
    made["One1"] = counts.toarray()
    genes, cells, counts = synthetic_counts(60, 50, seed=26, median_counts=400)
    keep = [i for i, g in enumerate(genes) if not g.startswith("MT-")]
    write_dense(data / "NoMt1.csv.gz", [genes[i] for i in keep], cells, counts[:, keep].tocsr())
    sheet = pd.DataFrame(
        {
            "sample": ["Zero1", "Ens1", "Barn1", "Ann1", "One1", "NoMt1"],
            "path": [
                "data/GSM1_Zero1_count_matrix.csv.gz",
                "data/GSM2_Ens1_count_matrix.csv.gz",
                "data/Barn1_filtered_feature_bc_matrix.h5",
                "data/Ann1.h5ad",
                "data/One1.csv.gz",
                "data/NoMt1.csv.gz",
            ],
            # numeric metadata some samples leave empty: the merge joins it (case 5)
            "age": ["61", "", "48", "", "", "70"],
        }
    )
    sheet.to_csv(work / "sheet.tsv", sep="\t", index=False)
    run = run_workflow(work, config={"samples": "sheet.tsv", "join": "outer"})
    return work, made, run


def _checkpoint(work, sample):
    return ad.read_h5ad(work / "results" / "samples" / f"{sample}.h5ad")


def _scanpy_metrics(x, genes, mito):
    import scanpy as sc

    adata = ad.AnnData(sp.csr_matrix(x, dtype=np.float32))
    adata.var_names = genes
    adata.var["mt"] = mito
    sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], percent_top=[20], inplace=True)
    return adata.obs


def test_a_zero_count_cell_leaves_the_mito_flags_on(trust_run):
    work, made, _ = trust_run
    genes, counts = made["Zero1"]
    ckpt = _checkpoint(work, "Zero1")
    theirs = _scanpy_metrics(counts, genes, np.array([g.startswith("MT-") for g in genes]))
    np.testing.assert_array_equal(ckpt.obs["pct_counts_mt"], theirs["pct_counts_mt"])
    assert np.isnan(ckpt.obs["pct_counts_mt"].iloc[-1])  # scanpy's value for no counts
    expected = reference_flags(ckpt.obs, QC, mito_genes=13)
    for flag, values in expected.items():
        assert ckpt.obs[flag].tolist() == values, flag
    assert ckpt.obs["outlier_mt"].iloc[:20].all()  # every planted cell above 8% is flagged
    assert not ckpt.obs["qc_pass"].iloc[-1]


def test_a_barnyard_h5_reads_both_genomes_and_their_mito_genes(trust_run):
    work, made, _ = trust_run
    names, genome, counts = made["Barn1"]
    ckpt = _checkpoint(work, "Barn1")
    assert ckpt.n_vars == 86 and ckpt.var["genome"].tolist() == genome
    mito = [n.split("_")[-1].lower().startswith("mt-") for n in names]
    assert ckpt.var["mt"].tolist() == mito
    theirs = _scanpy_metrics(counts, names, np.array(mito))
    np.testing.assert_array_equal(ckpt.obs["pct_counts_mt"], theirs["pct_counts_mt"])
    dying = np.r_[0:10, 60:70]
    assert ckpt.obs["outlier_mt"].iloc[dying].all()  # human and mouse cells alike
    expected = reference_flags(ckpt.obs, QC, mito_genes=6)
    assert ckpt.obs["qc_pass"].tolist() == expected["qc_pass"]


def test_one_cell_passes(trust_run):
    work, _, _ = trust_run
    ckpt = _checkpoint(work, "One1")
    assert ckpt.obs["qc_pass"].tolist() == [True]
    log = (work / "logs" / "ingest_sample" / "One1.log").read_text()
    assert "too few for MAD limits" in log


def test_ensembl_ids_only_find_the_mito_genes(trust_run):
    work, made, _ = trust_run
    ids, counts, mito = made["Ens1"]
    ckpt = _checkpoint(work, "Ens1")
    assert ckpt.var["mt"].tolist() == mito.tolist()
    theirs = _scanpy_metrics(counts, ids, mito)
    np.testing.assert_array_equal(ckpt.obs["pct_counts_mt"], theirs["pct_counts_mt"])
    expected = reference_flags(ckpt.obs, QC, mito_genes=13)
    assert ckpt.obs["outlier_mt"].tolist() == expected["outlier_mt"]
    assert ckpt.obs["outlier_mt"].iloc[:60].sum() >= 55


def test_the_summary_never_shows_a_blank(trust_run):
    work, _, _ = trust_run
    text = (work / "results" / "qc" / "qc_summary.tsv").read_text().splitlines()
    header = text[0].split("\t")
    rows = {
        line.split("\t")[0]: dict(zip(header, line.split("\t"), strict=True)) for line in text[1:]
    }
    for sample, row in rows.items():
        for column, value in row.items():
            assert value != "", (sample, column)
            if column != "sample" and value not in ("none", "not measured"):
                float(value)  # a number
    assert rows["NoMt1"]["median_pct_counts_mt"] == "not measured"
    assert rows["NoMt1"]["limit_pct_mt_high"] == "not measured"
    assert rows["Zero1"]["median_pct_counts_mt"] != "not measured"
    assert rows["One1"]["limit_total_counts_low"] == "none"
    log = (work / "logs" / "ingest_sample" / "NoMt1.log").read_text()
    assert "% mito is not measured" in log


def test_the_merge_joins_columns_some_samples_lack(trust_run):
    work, _, _ = trust_run
    merged = ad.read_h5ad(work / "results" / "merged.h5ad")
    paths = sorted((work / "results" / "samples").glob("*.h5ad"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ad.concat({p.stem: ad.read_h5ad(p) for p in paths}, join="outer")
    assert merged.obs_names.tolist() == theirs.obs_names.tolist()
    for column in ("age", "cell_type", "input_total_counts", "pct_counts_in_top_100_genes"):
        a, b = merged.obs[column], theirs.obs[column]
        assert a.isna().tolist() == b.isna().tolist(), column
        assert a.dropna().astype(str).tolist() == b.dropna().astype(str).tolist(), column


def test_an_h5ads_own_obs_columns_are_kept(trust_run):
    work, made, _ = trust_run
    given = made["Ann1"]
    ckpt = _checkpoint(work, "Ann1")
    assert ckpt.obs["cell_type"].tolist() == given["cell_type"].tolist()
    assert ckpt.obs["donor_age"].tolist() == given["donor_age"].tolist()
    assert ckpt.obs["input_total_counts"].tolist() == given["total_counts"].tolist()
    log = (work / "logs" / "ingest_sample" / "Ann1.log").read_text()
    assert "total_counts -> input_total_counts" in log


def test_a_failing_merge_ends_its_log_with_the_error(trust_run):
    """Case 6: an error scingest did not expect (here: a checkpoint broken after it was
    written) ends the merge job's log, traceback included."""
    work, _, _ = trust_run
    with h5py.File(work / "results" / "samples" / "One1.h5ad", "r+") as f:
        del f["obs"].attrs["_index"]
    run = run_workflow(work, config={"samples": "sheet.tsv", "join": "outer"}, check=False)
    assert run.returncode != 0
    log = (work / "logs" / "merge_samples" / "merge_samples.log").read_text()
    assert "unexpected KeyError" in log and log.rstrip().splitlines()[-1].startswith("KeyError")
