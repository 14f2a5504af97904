"""scingest.flatten: a copy of merged.h5ad without virtual datasets, read the same by anndata."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import REPO, make_geo_folder
from scingest.errors import ScingestError
from scingest.flatten import flatten_h5ad
from scingest.merge import merge_checkpoints
from scingest.sample import build_sample, write_h5ad


def _virtual(path) -> list[str]:
    found = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, item: (
                found.append(name) if isinstance(item, h5py.Dataset) and item.is_virtual else None
            )
        )
    return found


@pytest.fixture
def merged(tmp_path):
    contents = make_geo_folder(tmp_path / "data")
    paths = {}
    for name in contents:
        (source,) = (tmp_path / "data").glob(f"*_{name}_count_matrix.csv.gz")
        paths[name] = tmp_path / f"{name}.h5ad"
        write_h5ad(build_sample(source, sample=name), paths[name], compression="gzip")
    out = tmp_path / "merged.h5ad"
    merge_checkpoints(paths, out, compression="gzip")
    return out


def test_the_flat_copy_has_no_virtual_dataset_and_reads_the_same(merged, tmp_path):
    assert _virtual(merged), "the merge wrote no virtual dataset: nothing to test"
    out = tmp_path / "flat.h5ad"
    done = subprocess.run(
        [sys.executable, "-m", "scingest.flatten", str(merged), str(out)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "scripts")},
        check=True,
    )
    assert "virtual dataset(s) written out" in done.stdout
    assert _virtual(out) == []
    with h5py.File(out, "r") as f:
        assert "_parts" not in f["X"] and "_parts" not in f["obs"]
        assert f["layers/counts"] == f["X"]  # the counts stay one object
    a, b = ad.read_h5ad(merged), ad.read_h5ad(out)
    np.testing.assert_array_equal(a.X.toarray(), b.X.toarray())
    np.testing.assert_array_equal(a.layers["counts"].toarray(), b.layers["counts"].toarray())
    pd.testing.assert_frame_equal(a.obs, b.obs)
    pd.testing.assert_frame_equal(a.var, b.var)


def test_refuses_to_overwrite_its_input(merged):
    with pytest.raises(ScingestError, match="another file"):
        flatten_h5ad(merged, merged)
