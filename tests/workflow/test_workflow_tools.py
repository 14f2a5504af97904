"""The real workflow on files the counting tools wrote (tests/fixtures/tools, probe): each
checkpoint holds what the simulation put there (where the tool counts exactly) and what the
tool's own reader reads."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from conftest import run_workflow
from helpers.tools import PROBE_H5, TOOLS, truth_cells, truth_counts, truth_genes

SOLO = TOOLS / "starsolo" / "Solo.out"
#: sample -> (path, detected format, what the truth counts for it, or None)
SAMPLES = {
    "Star1": (TOOLS / "starsolo", "starsolo", ("spliced",)),
    "StarFull1": (SOLO / "GeneFull", "starsolo", ("spliced", "unspliced")),
    "Kb1": (TOOLS / "kb", "kb", ("spliced",)),
    "KbRaw1": (TOOLS / "kb" / "counts_unfiltered", "kb", ("spliced",)),
    "Alevin1": (TOOLS / "alevin", "alevin", ("spliced",)),
    "Loom1": (TOOLS / "loom" / "sample.loom", "loom", ("spliced",)),
    "Probe1": (PROBE_H5, "10x_probe_h5", None),
}  # fmt: skip


def test_checkpoints_of_tool_written_files_hold_the_truth(tmp_path):
    import scanpy as sc

    sheet = pd.DataFrame(
        {
            "sample": list(SAMPLES),
            "path": [str(p) for p, _, _ in SAMPLES.values()],
            "format": "",  # detected
        }
    )
    sheet.to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    targets = [f"results/samples/{s}.h5ad" for s in SAMPLES]
    cfg = {"samples": "sheet.tsv", "loom_layers": "keep"}
    run_workflow(tmp_path, *targets, "results/samplesheet.tsv", config=cfg, timeout=900)

    resolved = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t")
    assert resolved.set_index("sample")["format"].to_dict() == {
        s: fmt for s, (_, fmt, _) in SAMPLES.items()
    }
    genes = truth_genes()
    mito = genes["gene_name"].str.startswith("MT-").to_numpy()
    for sample, (_, fmt, kinds) in SAMPLES.items():
        ckpt = ad.read_h5ad(tmp_path / "results" / "samples" / f"{sample}.h5ad")
        barcodes = ckpt.obs["barcode"].tolist()
        assert (ckpt.obs["sample"] == sample).all()
        if kinds is None:
            continue
        # the tool's own cell calls (for kb's counts_unfiltered, those of counts_filtered
        # beside it), or the loom's cells, are the simulated cells
        assert sorted(barcodes) == sorted(truth_cells()), sample
        ids = ckpt.var["gene_ids"].tolist()
        assert sorted(ids) == sorted(genes["gene_id"]), sample
        expected = truth_counts(barcodes, ids, kinds=kinds)
        np.testing.assert_array_equal(ckpt.X.toarray(), expected, err_msg=sample)
        np.testing.assert_array_equal(ckpt.layers["counts"].toarray(), expected)
        # mitochondrial genes are flagged by symbol; alevin names genes by id only
        flagged = ckpt.var["mt"].to_numpy()
        by_id = dict(zip(genes["gene_id"], mito, strict=True))
        expected_mt = [by_id[g] and fmt != "alevin" for g in ids]
        np.testing.assert_array_equal(flagged, expected_mt, err_msg=sample)
    loom = ad.read_h5ad(tmp_path / "results" / "samples" / "Loom1.h5ad")
    for layer in ("spliced", "unspliced"):
        expected = truth_counts(loom.obs["barcode"], loom.var["gene_ids"], kinds=(layer,))
        np.testing.assert_array_equal(loom.layers[layer].toarray(), expected)

    # the probe matrix: scanpy's reading, reduced by CellRanger's marks, summed per gene
    probe = ad.read_h5ad(tmp_path / "results" / "samples" / "Probe1.h5ad")
    probes = sc.read_10x_h5(PROBE_H5)
    cells = probes[probes.obs["filtered_barcodes"].to_numpy(bool)]
    used = cells[:, cells.var["filtered_probes"].to_numpy(bool)]
    by_gene = pd.DataFrame(used.X.toarray(), index=used.obs_names, columns=used.var["gene_ids"])
    by_gene = by_gene.T.groupby(level=0).sum().T
    assert probe.obs["barcode"].tolist() == cells.obs_names.tolist()
    np.testing.assert_array_equal(
        probe.X.toarray(), by_gene.loc[:, probe.var["gene_ids"]].to_numpy()
    )
    log = (tmp_path / "logs" / "ingest_sample" / "Probe1.log").read_text()
    assert f"kept the {cells.n_obs} of {probes.n_obs} barcodes" in log
    assert "probe-level data is not kept" in log
