"""The TileDB-SOMA collection (scingest.collection.soma): a store that grows by appends,
repairs an interrupted append, and answers queries with the checkpoints' exact counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from helpers.collection import (
    GENES,
    assert_counts_equal,
    collection_package,
    write_checkpoint,
    write_checkpoints,
)

soma = collection_package("tiledbsoma")

from scingest.collection.common import LAYER  # noqa: E402
from scingest.collection.soma import (  # noqa: E402  (needs pyarrow, which comes with the extra)
    MEASUREMENT,
    PENDING,
    build_soma_collection,
    read_samples,
)
from scingest.errors import ScingestError  # noqa: E402


@pytest.fixture
def checkpoints(tmp_path: Path) -> dict[str, Path]:
    return write_checkpoints(tmp_path / "samples")


def query(store: Path, value_filter: str | None = None, genes: list[str] | None = None):
    """The user guide's query: obs value_filter and a list of genes -> AnnData."""
    with soma.Experiment.open(str(store)) as exp:
        var_query = soma.AxisQuery()
        if genes is not None:
            names = " or ".join(f"var_id == '{g}'" for g in genes)
            var_query = soma.AxisQuery(value_filter=names)
        obs_query = soma.AxisQuery(value_filter=value_filter) if value_filter else soma.AxisQuery()
        with exp.axis_query(MEASUREMENT, obs_query=obs_query, var_query=var_query) as q:
            return q.to_anndata(X_name=LAYER, obs_id_name="obs_id", var_id_name="var_id")


def store_nnz(store: Path) -> int:
    with soma.Experiment.open(str(store)) as exp:
        return sum(len(t) for t in exp.ms[MEASUREMENT].X[LAYER].read().tables())


def test_build_holds_every_cell_and_count_of_the_checkpoints(tmp_path, checkpoints):
    store, manifest = tmp_path / "collection.soma", tmp_path / "collection.manifest.tsv"
    done = build_soma_collection(checkpoints, store, manifest=manifest)
    assert done["added"] == list(checkpoints)

    result = query(store)
    refs = {s: ad.read_h5ad(p) for s, p in checkpoints.items()}
    assert result.n_obs == sum(r.n_obs for r in refs.values())
    assert set(result.obs_names) == {c for r in refs.values() for c in r.obs_names}
    assert set(result.var_names) == {"NEWGENE", *GENES}
    assert_counts_equal(result, checkpoints)
    # counts stored once: nothing beyond the checkpoints' non-zeros
    assert store_nnz(store) == sum(r.X.nnz for r in refs.values())
    # obs: every column of the checkpoints, with its type
    obs = result.obs
    for column in ("sample", "barcode", "condition", "donor", "total_counts", "qc_pass"):
        assert column in obs
    assert obs["donor"].dtype == np.int64
    assert obs["total_counts"].dtype == np.float32
    assert obs["n_genes_by_counts"].dtype == np.int32
    assert obs["qc_pass"].dtype == bool
    assert isinstance(obs["condition"].dtype, pd.CategoricalDtype)
    ref = refs["Ctrl1"].obs
    pd.testing.assert_series_equal(
        obs.loc[ref.index, "qc_pass"], ref["qc_pass"], check_names=False, check_index=False
    )
    # var: gene ids and flags, never per-sample gene metrics
    var = result.var
    assert var.loc["MT-CO1", "mt"] and not var.loc["ACTB", "mt"]
    assert var.loc["ACTB", "gene_ids"] == refs["Ctrl1"].var.loc["ACTB", "gene_ids"]
    assert "n_cells_by_counts" not in var

    samples = read_samples(store)
    assert samples["sample"].tolist() == list(checkpoints)
    assert samples["n_cells"].tolist() == [r.n_obs for r in refs.values()]
    meta = json.loads(samples.loc[0, "metadata"])
    assert meta["condition"] == "Ctrl" and meta["donor"] == 1
    table = pd.read_csv(manifest, sep="\t")
    assert table["sample"].tolist() == list(checkpoints)
    assert table["n_cells"].tolist() == samples["n_cells"].tolist()
    assert table["sha256"].str.len().eq(64).all()


def test_queries_by_obs_filter_and_genes_equal_the_checkpoints(tmp_path, checkpoints):
    store = tmp_path / "collection.soma"
    build_soma_collection(checkpoints, store)
    ctrl = query(store, "condition == 'Ctrl'", ["MT-CO1", "ACTB", "NEWGENE"])
    assert set(ctrl.obs["sample"]) == {"Ctrl1", "Post2"}
    assert list(ctrl.var_names) == ["ACTB", "MT-CO1", "NEWGENE"]  # store order
    assert_counts_equal(ctrl, checkpoints)
    # NEWGENE came with Post2: Ctrl1's cells read it as zero
    ctrl1 = ctrl[ctrl.obs["sample"] == "Ctrl1"]
    assert ctrl1[:, "NEWGENE"].X.nnz == 0
    one = query(store, "sample == 'Pre1'")
    assert one.n_obs == 30
    assert_counts_equal(one, checkpoints)


def test_append_adds_only_the_new_sample(tmp_path, checkpoints):
    store = tmp_path / "collection.soma"
    first = dict(list(checkpoints.items())[:2])
    build_soma_collection(first, store)
    with soma.Experiment.open(str(store)) as exp:
        before = exp.obs.read().concat().to_pandas()
    done = build_soma_collection(checkpoints, store)
    assert done["added"] == ["Post2"] and done["kept"] == ["Ctrl1", "Pre1"]
    assert not done["rebuilt"]
    with soma.Experiment.open(str(store)) as exp:
        after = exp.obs.read().concat().to_pandas()
    # the earlier cells keep their joinids and values
    pd.testing.assert_frame_equal(
        after.iloc[: len(before)][before.columns].reset_index(drop=True),
        before.reset_index(drop=True),
        check_categorical=False,  # the categories grow with the new sample's values
    )
    assert_counts_equal(query(store), checkpoints)
    # nothing changed: nothing written
    again = build_soma_collection(checkpoints, store)
    assert again["kept"] == list(checkpoints) and not again["added"] and not again["rebuilt"]


def test_changed_or_removed_sample_rebuilds(tmp_path, checkpoints):
    store = tmp_path / "collection.soma"
    build_soma_collection(checkpoints, store)
    write_checkpoint(checkpoints["Pre1"], "Pre1", 12, GENES[:4], seed=7)
    done = build_soma_collection(checkpoints, store)
    assert done["rebuilt"] == list(checkpoints)
    result = query(store)
    assert (result.obs["sample"] == "Pre1").sum() == 12
    assert_counts_equal(result, checkpoints)
    del checkpoints["Ctrl1"]
    done = build_soma_collection(checkpoints, store)
    assert done["removed"] == ["Ctrl1"]
    result = query(store)
    assert set(result.obs["sample"]) == {"Pre1", "Post2"}
    assert_counts_equal(result, checkpoints)
    assert read_samples(store)["sample"].tolist() == ["Pre1", "Post2"]


def test_schema_evolves_new_columns_nulls_and_types_kept(tmp_path):
    folder = tmp_path / "samples"
    folder.mkdir()
    paths = {
        "A": folder / "A.h5ad",
        "B": folder / "B.h5ad",
        "C": folder / "C.h5ad",
    }
    write_checkpoint(paths["A"], "A", 10, GENES, seed=1)
    write_checkpoint(
        paths["B"],
        "B",
        8,
        GENES,
        seed=2,
        extra={
            "treatment": pd.Categorical(["drug"] * 8),
            "batch_no": np.int16(3),
            "doublet": False,
            "note": "x",
        },
    )
    write_checkpoint(paths["C"], "C", 6, GENES, seed=3, drop=("donor", "qc_pass"))
    store = tmp_path / "s.soma"
    for n in (1, 2, 3):
        build_soma_collection(dict(list(paths.items())[:n]), store)
    obs = query(store).obs
    a, b, c = (obs[obs["sample"] == s] for s in "ABC")
    assert a["treatment"].isna().all() and (b["treatment"] == "drug").all()
    assert isinstance(obs["treatment"].dtype, pd.CategoricalDtype)
    assert a["note"].isna().all() and (b["note"] == "x").all()
    assert a["batch_no"].isna().all() and (b["batch_no"] == 3).all()
    assert c["donor"].isna().all() and (a["donor"] == 1).all()
    assert c["qc_pass"].isna().all() and b["qc_pass"].isin([True, False]).all()
    with soma.Experiment.open(str(store)) as exp:
        schema = exp.obs.schema
    assert str(schema.field("donor").type) == "int64"
    assert str(schema.field("batch_no").type) == "int16"
    assert str(schema.field("doublet").type) == "bool"
    assert str(schema.field("qc_pass").type) == "bool"
    assert str(schema.field("total_counts").type) == "float"
    assert "dictionary" in str(schema.field("condition").type)


def test_a_column_keeps_its_type_or_the_append_stops(tmp_path, checkpoints):
    store = tmp_path / "s.soma"
    build_soma_collection(checkpoints, store)
    bad = tmp_path / "Bad.h5ad"
    write_checkpoint(bad, "Bad", 5, GENES, seed=4, extra={"donor": "D4"})
    with pytest.raises(ScingestError, match=r"Bad\.h5ad.*donor.*int64") as err:
        build_soma_collection({**checkpoints, "Bad": bad}, store)
    assert "large_string" in str(err.value)
    # nothing of the refused sample was written; the store is as before
    with soma.Experiment.open(str(store)) as exp:
        assert PENDING not in exp.metadata
    done = build_soma_collection(checkpoints, store)
    assert not done["rolled_back"] and done["kept"] == list(checkpoints)
    result = query(store)
    assert "Bad" not in set(result.obs["sample"])
    assert_counts_equal(result, checkpoints)


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {scripts!r})
    import scingest.collection.soma as c

    point = sys.argv[1]
    original = c.iter_count_blocks
    original_write = c.write_manifest

    def blocks(path, **kw):
        for i, item in enumerate(original(path, block_nnz=100)):  # many small blocks
            if point == "x" and i == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # a third of the counts written
            yield item
        if point == "obs":  # counts complete; obs and the samples row not yet written
            os.kill(os.getpid(), signal.SIGKILL)

    c.iter_count_blocks = blocks
    paths = dict(arg.split("=", 1) for arg in sys.argv[3:])
    c.build_soma_collection(paths, sys.argv[2])
    """
)


@pytest.mark.parametrize("point", ["x", "obs"])
def test_sigkill_mid_append_is_rolled_back_on_the_next_run(tmp_path, checkpoints, point):
    store = tmp_path / "collection.soma"
    first = dict(list(checkpoints.items())[:2])
    build_soma_collection(first, store)
    big = tmp_path / "Big.h5ad"
    write_checkpoint(big, "Big", 400, [*GENES, "EXTRA1"], seed=5, extra={"lane": "L1"})
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(scripts=str(REPO / "scripts")))
    args = [f"{k}={v}" for k, v in {**first, "Big": big}.items()]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(script), point, str(store), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    # the killed store: the pending record is there; queries never see Big as complete
    with soma.Experiment.open(str(store)) as exp:
        assert json.loads(exp.metadata[PENDING])["sample"] == "Big"
    assert read_samples(store)["sample"].tolist() == list(first)
    seen = query(store)
    assert "Big" not in set(seen.obs["sample"])
    assert_counts_equal(seen, first)

    # the next run rolls it back, then appends it whole
    paths = {**first, "Big": big}
    done = build_soma_collection(paths, store)
    assert done["rolled_back"] == ["Big"] and done["added"] == ["Big"]
    assert not done["rebuilt"]
    result = query(store)
    assert (result.obs["sample"] == "Big").sum() == 400
    assert result.obs_names.is_unique
    assert_counts_equal(result, paths)
    refs = [ad.read_h5ad(p) for p in paths.values()]
    assert store_nnz(store) == sum(r.X.nnz for r in refs)  # no leftovers of the killed one
    with soma.Experiment.open(str(store)) as exp:
        var_ids = exp.ms[MEASUREMENT].var.read().concat()["var_id"].to_pylist()
        assert PENDING not in exp.metadata
    assert sorted(var_ids) == sorted({*GENES, "EXTRA1"})


def test_a_killed_rebuild_leaves_the_old_store(tmp_path, checkpoints):
    store = tmp_path / "collection.soma"
    build_soma_collection(checkpoints, store)
    # what a kill between the two renames of a swap leaves: no store, the old one hidden
    old = store.with_name(f".{store.name}.old")
    os.replace(store, old)
    (store.with_name(f".{store.name}.build")).mkdir()
    done = build_soma_collection(checkpoints, store)
    assert done["kept"] == list(checkpoints)
    assert not old.exists() and not store.with_name(f".{store.name}.build").exists()
    assert_counts_equal(query(store), checkpoints)


def test_int32_counts_are_kept_as_int32(tmp_path):
    path = tmp_path / "I.h5ad"
    write_checkpoint(path, "I", 10, GENES, seed=1, dtype=np.int32)
    store = tmp_path / "s.soma"
    build_soma_collection({"I": path}, store)
    result = query(store)
    assert result.X.dtype == np.int32
    assert_counts_equal(result, {"I": path})


def test_the_readme_query_runs_as_written(tmp_path, checkpoints):
    """The user guide's Atlas collection example (docs/guide/collection.md), run on a store
    of these checkpoints."""
    import re

    guide = (REPO / "docs" / "guide" / "collection.md").read_text()
    code = re.search(r"```python\n(.*?)```", guide, re.S).group(1)
    code = code.replace("'CD3E', 'MS4A1', 'LYZ'", "'CD3E', 'MS4A1', 'NEWGENE'")
    store = tmp_path / "results" / "collection.soma"
    build_soma_collection(checkpoints, store)
    # TileDB resolves relative paths against the directory its context was made in
    code = code.replace('"results/collection.soma"', repr(str(store)))
    scope: dict[str, object] = {}
    exec(code, scope)
    adata, samples = scope["adata"], scope["samples"]
    assert list(adata.var_names) == ["CD3E", "MS4A1", "NEWGENE"]
    assert set(adata.obs["condition"]) == {"Ctrl"} and adata.obs["qc_pass"].all()
    refs = {s: ad.read_h5ad(p) for s, p in checkpoints.items()}
    ctrl_pass = sum(
        int((r.obs["condition"].eq("Ctrl") & r.obs["qc_pass"]).sum()) for r in refs.values()
    )
    assert adata.n_obs == ctrl_pass
    assert_counts_equal(adata, checkpoints)
    assert samples["sample"].tolist() == list(checkpoints)
