"""The cellarr collection (scingest.collection.cellarr): a dataset rebuilt each time, read
back by cellarr with the checkpoints' exact counts, obs types and per-sample table."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from helpers.collection import assert_counts_equal, collection_package, write_checkpoints

# skips the module where the extra is missing (pandas 3), before importing the package,
# which needs pyarrow (it comes with the extra)
cellarr = collection_package("cellarr")

from scingest.collection.cellarr import build_cellarr_collection  # noqa: E402
from scingest.collection.common import LAYER  # noqa: E402


@pytest.fixture
def checkpoints(tmp_path: Path) -> dict[str, Path]:
    return write_checkpoints(tmp_path / "samples")


@pytest.mark.filterwarnings("ignore:Matrix counts has fewer cells:UserWarning")
# cellarr names cells and genes by integers; anndata turns them into strings
@pytest.mark.filterwarnings("ignore:Transforming to str index")
# tiledb-py (cellarr's reader) on NumPy 2.5, seen on Python 3.13: not ours
@pytest.mark.filterwarnings("ignore:Setting the dtype on a NumPy array:DeprecationWarning")
def test_cellarr_reads_back_equal(tmp_path, checkpoints):
    CellArrDataset = cellarr.CellArrDataset

    store, manifest = tmp_path / "collection.cellarr", tmp_path / "m.tsv"
    assert build_cellarr_collection(checkpoints, store, manifest=manifest) == {
        "rebuilt": list(checkpoints)
    }
    ds = CellArrDataset(str(store), assay_tiledb_group="assays", assay_uri=LAYER)
    result = ds[:, :].to_anndata()
    result.obs_names = result.obs["obs_id"].to_numpy()
    result.var_names = result.var["cellarr_gene_index"].to_numpy()
    result.X = result.layers[LAYER]
    assert result.X.dtype == np.float32
    assert result.n_obs == sum(ad.read_h5ad(p).n_obs for p in checkpoints.values())
    assert_counts_equal(result, checkpoints)
    obs = result.obs
    assert obs["donor"].dtype == np.int64
    assert obs["total_counts"].dtype == np.float32
    assert obs["qc_pass"].dtype == bool
    assert result.var.loc["MT-CO1", "mt"]
    assert result.var.loc["ACTB", "gene_ids"].startswith("ENSG")
    samples = ds.get_sample_subset(slice(None))
    assert samples["cellarr_sample"].tolist() == list(checkpoints)
    assert samples["n_cells"].astype(int).tolist() == [
        ad.read_h5ad(p).n_obs for p in checkpoints.values()
    ]
    assert samples["sha256"].str.len().eq(64).all()
    assert pd.read_csv(manifest, sep="\t")["sample"].tolist() == list(checkpoints)
    pre1 = ds.get_cells_for_sample(list(checkpoints).index("Pre1")).to_anndata()
    assert pre1.n_obs == 30
