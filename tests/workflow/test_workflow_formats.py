"""The real workflow on one folder mixing every format users download."""

from __future__ import annotations

import gzip

import anndata as ad
import numpy as np
import pandas as pd

from conftest import planned_jobs, run_workflow
from helpers.formats import make_cells, write_10x, write_10x_h5, write_csv

PATTERN = (
    r"^(?P<sample_id>GSM\d+)_(?P<sample>(?P<condition>[A-Za-z]+)(?P<donor>\d+))_"
    r"(?:count_matrix\.csv\.gz|matrix\.mtx\.gz|filtered_gene_bc_matrices(?:_h5\.h5)?"
    r"|filtered_feature_bc_matrix(?:\.h5)?)$"
)


def mixed_folder(data):
    """One sample per format (same genes, different cells); sample -> (cells, format)."""
    samples = {}

    def add(sample, seed, fmt, write):
        cells = make_cells(n_genes=40, n_cells=12 + seed, seed=seed)
        write(cells)
        samples[sample] = (cells, fmt)

    add("Ctrl1", 1, "csv", lambda c: write_csv(data / "GSM1_Ctrl1_count_matrix.csv.gz", c))
    add(
        "Ctrl2",
        2,
        "10x_mtx",
        lambda c: write_10x(data / "GSM2_Ctrl2_filtered_gene_bc_matrices" / "hg19", c, version=2),
    )
    add("Pre1", 3, "10x_mtx", lambda c: write_10x(data / "GSM3_Pre1_filtered_feature_bc_matrix", c))
    add("Pre2", 4, "10x_triplet", lambda c: write_10x(data, c, prefix="GSM4_Pre2_"))
    add(
        "Post1",
        5,
        "10x_triplet",
        lambda c: write_10x(data, c, version=2, gz=True, prefix="GSM5_Post1_"),
    )
    add(
        "Post2",
        6,
        "10x_h5",
        lambda c: write_10x_h5(data / "GSM6_Post2_filtered_gene_bc_matrices_h5.h5", c, version=2),
    )
    add(
        "Post3",
        7,
        "10x_h5",
        lambda c: write_10x_h5(data / "GSM7_Post3_filtered_feature_bc_matrix.h5", c),
    )
    return samples


def config(**extra):
    return {"input_dir": "data", "filename_pattern": f"'{PATTERN}'", **extra}


def test_mixed_formats_merge_to_the_inputs_counts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    samples = mixed_folder(data)
    run_workflow(tmp_path, config=config())

    sheet = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t").set_index("sample")
    assert sheet["format"].to_dict() == {s: fmt for s, (_, fmt) in samples.items()}
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    assert merged.n_obs == sum(len(c.barcodes) for c, _ in samples.values())
    assert merged.n_vars == 40
    for sample, (cells, _) in samples.items():
        part = merged[merged.obs["sample"] == sample]
        assert part.obs["barcode"].tolist() == cells.barcodes
        names = ad.utils.make_index_unique(pd.Index(cells.symbols))
        np.testing.assert_array_equal(part[:, names].X.toarray(), cells.counts.toarray())
        assert (part.obs["sample_id"] == sheet.loc[sample, "sample_id"]).all()

    # a change to a triplet's barcodes file reruns that sample (and what follows)
    assert planned_jobs(tmp_path, config()) == {}
    # (Snakemake compares checksums: the content must change, a touch is not enough)
    renamed = [f"X{b}" for b in samples["Pre2"][0].barcodes]
    with gzip.open(data / "GSM4_Pre2_barcodes.tsv.gz", "wt") as fh:
        fh.writelines(f"{b}\n" for b in renamed)
    assert planned_jobs(tmp_path, config()).get("ingest_sample") == 1


def test_bad_inputs_fail_clearly_through_the_workflow(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    cells = make_cells(seed=1)
    write_10x(data, cells, prefix="GSM1_Ctrl1_")
    write_10x(data, make_cells(n_cells=800, seed=2), prefix="GSM2_Ctrl2_")
    (data / "GSM1_Ctrl1_features.tsv.gz").unlink()
    run = run_workflow(tmp_path, config=config(), check=False)
    assert run.returncode != 0
    assert "missing GSM1_Ctrl1_features.tsv[.gz] or GSM1_Ctrl1_genes.tsv[.gz]" in run.output
    assert not (tmp_path / "results" / "samples").exists(), "stopped before any job"

    write_10x(data, cells, prefix="GSM1_Ctrl1_")
    matrix = data / "GSM2_Ctrl2_matrix.mtx.gz"
    matrix.write_bytes(matrix.read_bytes()[:2000])
    run = run_workflow(tmp_path, "--keep-going", config=config(), check=False)
    assert run.returncode != 0
    assert "GSM2_Ctrl2_matrix.mtx.gz: the gzip stream ends early" in run.output
    assert (tmp_path / "results" / "samples" / "Ctrl1.h5ad").exists()
    assert not (tmp_path / "results" / "samples" / "Ctrl2.h5ad").exists()


def test_other_features_kept_in_obsm_through_merge_and_filter(tmp_path):
    """other_features: obsm keeps antibody counts beside the genes, in every output."""
    data = tmp_path / "data"
    data.mkdir()
    samples = {
        "Ctrl1": make_cells(n_cells=14, seed=1, n_antibodies=3),
        "Pre1": make_cells(n_cells=11, seed=2, n_antibodies=3),
    }
    write_10x_h5(data / "GSM1_Ctrl1_filtered_feature_bc_matrix.h5", samples["Ctrl1"])
    write_10x(data / "GSM2_Pre1_filtered_feature_bc_matrix", samples["Pre1"])
    cfg = config(other_features="obsm", filter_merged=True, filter_min_cells=0)
    run_workflow(tmp_path, config=cfg)

    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    antibodies = [f"CD{i}_TotalSeqB" for i in range(3)]
    assert merged.n_vars == 40  # antibodies are not genes
    assert list(merged.uns["feature_names"]["protein_counts"]) == antibodies
    for sample, cells in samples.items():
        rows = (merged.obs["sample"] == sample).to_numpy()
        np.testing.assert_array_equal(
            merged.obsm["protein_counts"][rows].toarray(), cells.counts[:, ~cells.gex].toarray()
        )
    filtered = ad.read_h5ad(tmp_path / "results" / "merged_filtered.h5ad")
    keep = merged.obs["qc_pass"].to_numpy()
    np.testing.assert_array_equal(
        filtered.obsm["protein_counts"].toarray(), merged.obsm["protein_counts"][keep].toarray()
    )
