"""The real workflow on raw matrices the tools wrote (every barcode seen): by default the
called cells, with ``barcodes: all`` every barcode with counts flagged by ``obs["is_cell"]``,
QC limits over the cells only; the QC summary counts barcodes and called cells, the plots
mark the cut. Oracles: the simulation's truth, the tools' own filtered matrices, and the
same cells read without their background (the limits)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from conftest import run_workflow
from helpers.tools import TOOLS, gzipped_copy, truth_cells
from scingest.qc import OUTLIER_FLAGS

SOLO = TOOLS / "starsolo" / "Solo.out"


def _seen(path) -> list[str]:
    from scingest.readers import read_counts

    every = read_counts(path, barcodes="as_cells")
    return every.obs_names[np.asarray(every.X.sum(axis=1)).ravel() > 0].tolist()


def test_raw_matrices_give_cells_by_default_and_every_barcode_flagged_with_all(tmp_path):
    cellranger = {}
    for name in ("CrRaw1", "CrAll1"):  # CellRanger's names, no filtered sibling: cells called
        cellranger[name] = gzipped_copy(
            SOLO / "Gene" / "raw", tmp_path / "data" / name / "outs" / "raw_feature_bc_matrix"
        )
    # config barcodes: all; the sheet's barcodes column sets cells for three samples
    samples = {
        "StarRaw1": (SOLO / "Gene" / "raw", "cells"),
        "KbRaw1": (TOOLS / "kb" / "counts_unfiltered", "cells"),
        "CrRaw1": (cellranger["CrRaw1"], "cells"),
        "StarAll1": (SOLO / "Gene" / "raw", ""),
        "CrAll1": (cellranger["CrAll1"], ""),
    }
    sheet = pd.DataFrame(
        {
            "sample": list(samples),
            "path": [str(p) for p, _ in samples.values()],
            "barcodes": [b for _, b in samples.values()],
        }
    )
    sheet.to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    run_workflow(tmp_path, config={"samples": "sheet.tsv", "barcodes": "all"}, timeout=900)

    results = tmp_path / "results"
    cells = sorted(truth_cells())
    ckpt = {s: ad.read_h5ad(results / "samples" / f"{s}.h5ad") for s in samples}
    for sample in ("StarRaw1", "KbRaw1", "CrRaw1"):
        adata = ckpt[sample]
        assert sorted(adata.obs["barcode"]) == cells, sample
        assert "is_cell" not in adata.obs.columns
        calls = adata.uns["scingest"]["cells"]
        assert calls["barcodes"] == "cells" and calls["cells"] == 40
    assert ckpt["StarRaw1"].uns["scingest"]["cells"]["method"] == "tool"
    assert ckpt["CrRaw1"].uns["scingest"]["cells"]["method"] == "cellranger"
    assert "EmptyDrops" in ckpt["CrRaw1"].uns["scingest"]["cells"]["source"]

    seen = _seen(SOLO / "Gene" / "raw")
    for sample, like in (("StarAll1", "StarRaw1"), ("CrAll1", "CrRaw1")):
        adata = ckpt[sample]
        obs = adata.obs
        assert obs["barcode"].tolist() == seen, sample  # every barcode with counts
        np.testing.assert_array_equal(obs["is_cell"].to_numpy(), np.isin(seen, cells))
        assert not obs.loc[~obs["is_cell"], "qc_pass"].any(), "a background barcode passed"
        # limits over the called cells only: those of the same cells without background
        limits = adata.uns["scingest"]["qc_thresholds"]
        alone = ckpt[like].uns["scingest"]["qc_thresholds"]
        for flag in OUTLIER_FLAGS:
            np.testing.assert_allclose(limits[flag], alone[flag], err_msg=f"{sample} {flag}")
        mine = obs[obs["is_cell"]].set_index("barcode")
        theirs = ckpt[like].obs.set_index("barcode").loc[mine.index]
        assert mine["qc_pass"].tolist() == theirs["qc_pass"].tolist()

    summary = pd.read_csv(results / "qc" / "qc_summary.tsv", sep="\t").set_index("sample")
    assert (summary["called_cells"] == 40).all()
    assert summary.loc["StarAll1", "barcodes"] == len(seen) == summary.loc["StarRaw1", "barcodes"]
    assert summary.loc["KbRaw1", "barcodes"] == len(_seen(TOOLS / "kb" / "counts_unfiltered"))
    assert summary.loc["StarAll1", "cells"] == len(seen) and summary.loc["StarRaw1", "cells"] == 40
    assert summary.loc["StarAll1", "cells_pass"] == summary.loc["StarRaw1", "cells_pass"]
    for sample in samples:
        assert (results / "qc" / "samples" / f"{sample}_qc.png").stat().st_size > 10_000
    merged = ad.read_h5ad(results / "merged.h5ad")
    assert merged.n_obs == 3 * 40 + 2 * len(seen)
    log = (tmp_path / "logs" / "ingest_sample" / "CrRaw1.log").read_text()
    assert "a raw matrix (CellRanger's raw_feature_bc_matrix" in log
    assert "CellRanger 3+ cell calling" in log
