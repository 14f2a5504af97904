"""The collection job through the real workflow: `collection: soma` builds, appends a new
sample only, rebuilds on a change, and does nothing when nothing changed."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import make_geo_folder, planned_jobs
from helpers.collection import collection_package

soma = collection_package("tiledbsoma")


SOMA = {"input_dir": "data", "collection": "soma"}


def query_all(store):
    with (
        soma.Experiment.open(str(store)) as exp,
        exp.axis_query("RNA") as q,
    ):
        return q.to_anndata(X_name="counts", obs_id_name="obs_id", var_id_name="var_id")


def assert_store_equals_checkpoints(workdir) -> list[str]:
    result = query_all(workdir / "results" / "collection.soma")
    samples = sorted(p.stem for p in (workdir / "results" / "samples").glob("*.h5ad"))
    total = 0
    for sample in samples:
        ref = ad.read_h5ad(workdir / "results" / "samples" / f"{sample}.h5ad")
        got = result[ref.obs_names, ref.var_names]
        np.testing.assert_array_equal(got.X.toarray(), ref.X.toarray())
        pd.testing.assert_series_equal(
            got.obs["pct_counts_mt"], ref.obs["pct_counts_mt"], check_names=False
        )
        total += ref.n_obs
    assert result.n_obs == total
    return samples


def test_collection_is_off_by_default(geo_project, workflow):
    workdir, _ = geo_project
    assert "build_collection" not in planned_jobs(workdir, {"input_dir": "data"})


def test_soma_collection_appends_new_samples_and_rebuilds_changed_ones(geo_project, workflow):
    workdir, _ = geo_project
    workflow(workdir, config=SOMA)
    manifest = workdir / "results" / "collection.manifest.tsv"
    log = workdir / "logs" / "build_collection" / "build_collection.log"
    table = pd.read_csv(manifest, sep="\t")
    assert sorted(table["sample"]) == ["Ctrl1", "Post2", "Pre1"]
    assert table.set_index("sample")["n_cells"].to_dict() == {"Ctrl1": 40, "Pre1": 30, "Post2": 25}
    assert assert_store_equals_checkpoints(workdir) == ["Ctrl1", "Post2", "Pre1"]

    # nothing changed: nothing runs
    assert "build_collection" not in planned_jobs(workdir, SOMA)

    # a 4th sample: only it is appended
    make_geo_folder(workdir / "data", [("GSM5320470", "Post3", 20, 14)])
    jobs = planned_jobs(workdir, SOMA)
    assert jobs.get("ingest_sample") == 1 and jobs.get("build_collection") == 1
    workflow(workdir, config=SOMA)
    text = log.read_text()
    assert "appended Post3 (20 cells)" in text
    assert "added 1: Post3; kept 3" in text
    assert "rebuilding" not in text
    table = pd.read_csv(manifest, sep="\t")
    assert table["sample"].tolist()[-1] == "Post3"
    assert table.set_index("sample")["obs_joinid_start"]["Post3"] == 95
    assert len(assert_store_equals_checkpoints(workdir)) == 4

    # a changed sample: the store is rebuilt, and the log says why
    make_geo_folder(workdir / "data", [("GSM5320463", "Pre1", 18, 99)])
    workflow(workdir, config=SOMA)
    text = log.read_text()
    assert "changed Pre1, removed none" in text
    assert "rebuilt 4" in text
    table = pd.read_csv(manifest, sep="\t")
    assert table.set_index("sample")["n_cells"]["Pre1"] == 18
    assert len(assert_store_equals_checkpoints(workdir)) == 4


@pytest.mark.filterwarnings("ignore:Matrix counts has fewer cells:UserWarning")
@pytest.mark.filterwarnings("ignore:Transforming to str index")
# tiledb-py (cellarr's reader) on NumPy 2.5, seen on Python 3.13: not ours
@pytest.mark.filterwarnings("ignore:Setting the dtype on a NumPy array:DeprecationWarning")
def test_cellarr_collection_through_the_workflow(geo_project, workflow):
    CellArrDataset = collection_package("cellarr").CellArrDataset

    workdir, _ = geo_project
    workflow(workdir, config={"input_dir": "data", "collection": "cellarr"})
    table = pd.read_csv(workdir / "results" / "collection.manifest.tsv", sep="\t")
    assert sorted(table["sample"]) == ["Ctrl1", "Post2", "Pre1"]
    store = workdir / "results" / "collection.cellarr"
    ds = CellArrDataset(str(store), assay_tiledb_group="assays", assay_uri="counts")
    result = ds[:, :].to_anndata()
    result.obs_names = result.obs["obs_id"].to_numpy()
    result.var_names = result.var["cellarr_gene_index"].to_numpy()
    for sample in table["sample"]:
        ref = ad.read_h5ad(workdir / "results" / "samples" / f"{sample}.h5ad")
        got = result[ref.obs_names, ref.var_names].layers["counts"]
        np.testing.assert_array_equal(got.toarray(), ref.X.toarray())
