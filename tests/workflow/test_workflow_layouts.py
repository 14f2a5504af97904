"""The real workflow on a sheet mixing the counting tools' layouts, and on run folders.

STARsolo, kb, loompy and CellRanger probe matrices written by the tools themselves are run
through the workflow in test_workflow_tools.py; the files here are written by our helpers.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from conftest import run_workflow
from helpers.formats import make_cells, write_csv
from helpers.layouts import (
    write_alevin_fry,
    write_cellranger_count,
    write_cellranger_multi,
    write_h5ad_07,
    write_kb,
    write_loom,
    write_spaceranger,
    write_starsolo,
    write_zarr,
)
from scingest.compat import named_layers


def test_sheet_mixing_every_layout_merges_to_each_inputs_counts(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    samples = {}  # sample -> (cells, path, detected format)
    seeds = iter(range(1, 100))

    def cells_for(sample):
        cells = make_cells(n_genes=40, n_cells=10 + len(samples), seed=next(seeds))
        samples[sample] = [cells, None, None]
        return cells

    def add(sample, fmt, write):
        cells = cells_for(sample)
        samples[sample][1:] = [write(cells), fmt]

    add("Csv1", "csv", lambda c: write_csv(data / "GSM1_Csv1_count_matrix.csv.gz", c))
    multi = {"Multi1": cells_for("Multi1"), "Multi2": cells_for("Multi2")}
    write_cellranger_multi(data / "multi" / "outs", multi)
    for name in multi:
        samples[name][1:] = [data / "multi" / "outs" / "per_sample_outs" / name, "cellranger_multi"]
    add("Count1", "cellranger_count", lambda c: write_cellranger_count(data / "Count1", c))
    add("Visium1", "cellranger_count", lambda c: write_spaceranger(data / "Visium1", c))
    add("Fry1", "alevin_fry", lambda c: write_alevin_fry(data / "Fry1", c, names=True))
    add("Loom1", "loom", lambda c: (write_loom(data / "Loom1.loom", c), data / "Loom1.loom")[1])
    add("Old1", "h5ad", lambda c: write_h5ad_07(data / "Old1.h5ad", c))
    add("Zarr1", "zarr", lambda c: write_zarr(data / "Zarr1.zarr", c))
    add("Zip1", "zarr", lambda c: write_zarr(data / "Zip1.zarr.zip", c, zipped=True))
    sheet = pd.DataFrame(
        {
            "sample": list(samples),
            "path": [str(p) for _, p, _ in samples.values()],
            "format": "",  # detected
            "condition": ["ctrl" if i % 2 else "treated" for i in range(len(samples))],
        }
    )
    sheet.to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    # 10 samples: the merge is the point here, the plots are tested elsewhere
    cfg = {"samples": "sheet.tsv", "loom_layers": "keep"}
    run_workflow(
        tmp_path, "results/merged.h5ad", "results/samplesheet.tsv", config=cfg, timeout=1500
    )

    resolved = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t")
    assert resolved.set_index("sample")["format"].to_dict() == {
        s: fmt for s, (_, _, fmt) in samples.items()
    }
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    assert merged.n_vars == 40
    assert merged.n_obs == sum(len(c.barcodes) for c, _, _ in samples.values())
    for sample, (cells, _, _) in samples.items():
        part = merged[merged.obs["sample"] == sample]
        assert part.obs["barcode"].tolist() == cells.barcodes, sample
        names = ad.utils.make_index_unique(pd.Index(cells.symbols))
        np.testing.assert_array_equal(
            part[:, names].X.toarray(), cells.counts.toarray(), err_msg=sample
        )
        np.testing.assert_array_equal(
            part[:, names].layers["counts"].toarray(), cells.counts.toarray()
        )
    # loom_layers: keep puts velocyto's layers in the loom sample's checkpoint only
    loom = ad.read_h5ad(tmp_path / "results" / "samples" / "Loom1.h5ad")
    # named_layers: anndata 0.13 also lists X as layers[None]
    assert sorted(named_layers(loom)) == ["ambiguous", "counts", "spliced", "unspliced"]
    csv = ad.read_h5ad(tmp_path / "results" / "samples" / "Csv1.h5ad")
    assert list(named_layers(csv)) == ["counts"]
    assert list(named_layers(merged)) == ["counts"]  # layers not every sample has: left out


def test_discovery_of_run_folders_and_a_multi_run(tmp_path):
    runs = tmp_path / "runs"
    samples = {
        "Ctrl1": make_cells(n_cells=12, seed=1),
        "Ctrl2": make_cells(n_cells=13, seed=2),
        "Ctrl3": make_cells(n_cells=14, seed=3),
    }
    write_cellranger_count(runs / "Ctrl1", samples["Ctrl1"])
    write_starsolo(runs / "Ctrl2", samples["Ctrl2"])
    write_kb(runs / "Ctrl3", samples["Ctrl3"])
    cfg = {"input_dir": "runs", "filename_pattern": r"'^(?P<sample>Ctrl\d)$'"}
    run_workflow(tmp_path, config=cfg)
    sheet = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t")
    assert sheet["format"].tolist() == ["cellranger_count", "starsolo", "kb"]
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    for sample, cells in samples.items():
        part = merged[merged.obs["sample"] == sample]
        names = ad.utils.make_index_unique(pd.Index(cells.symbols))
        np.testing.assert_array_equal(part[:, names].X.toarray(), cells.counts.toarray())

    multi = tmp_path / "multi"
    multi.mkdir()
    pools = {"Pool1": make_cells(n_cells=11, seed=4), "Pool2": make_cells(n_cells=9, seed=5)}
    write_cellranger_multi(multi / "run" / "outs", pools, h5=False)
    cfg = {"input_dir": "run", "filename_pattern": r"'^(?P<sample>Pool\d)$'"}
    run_workflow(multi, config=cfg)
    sheet = pd.read_csv(multi / "results" / "samplesheet.tsv", sep="\t")
    assert sheet["sample"].tolist() == ["Pool1", "Pool2"]
    assert set(sheet["format"]) == {"cellranger_multi"}
    merged = ad.read_h5ad(multi / "results" / "merged.h5ad")
    assert merged.obs["sample"].value_counts().to_dict() == {"Pool1": 11, "Pool2": 9}
