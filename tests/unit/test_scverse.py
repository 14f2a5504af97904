"""Both scverse generations write the same files, and every reader opens them.

scingest supports anndata 0.12 / scanpy 1.11 (Python 3.11+) and anndata 0.13 / scanpy 1.12
(Python 3.12+); CI runs the suite under each (README, "Supported versions"). Here:

- checkpoints and merged files hold exactly ``X`` and ``layers/counts`` (anndata 0.13 lists
  ``X`` as ``layers[None]``, which a loop over layers writes out as a layer ``"None"``);
- strings are written in the legacy encoding, which R's readers and anndata < 0.11 open;
- what the workflow wrote under anndata 0.12 (``tests/fixtures/generation/``, made by
  ``python tests/unit/test_scverse.py`` on Python 3.11) equals what this run writes;
- R (Debian's r-base-core + r-cran-hdf5r) reads ``merged.h5ad`` with the counts Python reads;
- a standard scanpy analysis runs on ``merged.h5ad`` of 12 GEO-style samples.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from anndata.io import write_elem

from conftest import REPO, make_geo_folder, run_workflow
from scingest.compat import legacy_strings, named_layers, plain_strings
from scingest.merge import merge_checkpoints
from scingest.sample import build_sample, write_h5ad
from scingest.synthetic import synthetic_counts, write_dense

ANNDATA = metadata.version("anndata")
FIXTURE = REPO / "tests" / "fixtures" / "generation"
#: (GSM id, sample, cells, seed) of the fixture's workflow run (tests/fixtures/generation)
GENERATION_SAMPLES = [("GSM7000001", "Ctrl1", 12, 41), ("GSM7000002", "Pre2", 9, 42)]
GENERATION_GENES = 30
R_SCRIPT = REPO / "tests" / "r" / "read_merged.R"


# --- helpers ---------------------------------------------------------------------------------


def visit_links(group: h5py.Group, visit: Callable[[str, Any], None], prefix: str = "") -> None:
    """Call ``visit(name, obj)`` for every name in ``group``, recursively. Unlike h5py's
    ``visititems``, which visits each object once, a hard link (``layers/counts`` naming
    ``X``'s group) is visited under each of its names, as anndata reads it."""
    for key in group:
        obj = group[key]
        name = f"{prefix}{key}"
        visit(name, obj)
        if isinstance(obj, h5py.Group):
            visit_links(obj, visit, f"{name}/")


def csr_keys(path: Path) -> list[str]:
    """Every element of an h5ad stored as a CSR matrix."""
    keys: list[str] = []
    with h5py.File(path, "r") as f:
        visit_links(
            f,
            lambda name, obj: (
                keys.append(name) if obj.attrs.get("encoding-type") == "csr_matrix" else None
            ),
        )
    return sorted(keys)


def encodings(path: Path) -> dict[str, str]:
    """Element path -> anndata encoding-type, for every encoded element of an h5ad."""
    out: dict[str, str] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: Any) -> None:
            kind = obj.attrs.get("encoding-type")
            if kind is not None:
                out[name] = str(kind)

        visit_links(f, visit)
    return out


def layout(path: Path) -> dict[str, tuple]:
    """Every element of an h5ad: encoding type and version, and for datasets dtype kind and
    shape. Values are left out: they are compared through anndata."""
    out: dict[str, tuple] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: Any) -> None:
            entry: tuple = (
                str(obj.attrs.get("encoding-type")),
                str(obj.attrs.get("encoding-version")),
            )
            if isinstance(obj, h5py.Dataset):
                entry += (obj.dtype.kind, obj.shape)
            out[name] = entry

        visit_links(f, visit)
    return out


def assert_legacy_strings(path: Path, frames: tuple[str, ...] = ("obs", "var")) -> None:
    """No nullable strings anywhere; every string column and index of obs/var is stored as
    ``string-array`` or as a categorical of ``string-array`` categories."""
    found = encodings(path)
    nullable = sorted(k for k, v in found.items() if v == "nullable-string-array")
    assert not nullable, f"{path.name}: nullable strings in {nullable}"
    with h5py.File(path, "r") as f:
        for frame in frames:
            group = f[frame]
            for name in [group.attrs["_index"], *group.attrs["column-order"]]:
                kind = found[f"{frame}/{name}"]
                if kind == "categorical":
                    cats = f[f"{frame}/{name}/categories"]
                    if cats.dtype.kind == "O":
                        assert found[f"{frame}/{name}/categories"] == "string-array"
                elif isinstance(group[name], h5py.Dataset) and group[name].dtype.kind == "O":
                    assert kind == "string-array", f"{path.name}: {frame}/{name} is {kind}"


def plain(value: Any) -> Any:
    """uns as plain Python values (lists, str, int, float), for comparison across versions."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def stable_uns(uns: dict) -> Any:
    """uns without what differs by run and not by content: package versions, input paths."""

    def drop(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop(v) for k, v in value.items() if k not in ("versions", "path", "files")}
        return value

    return drop(plain(uns))


def assert_same_h5ad(ours: Path, theirs: Path) -> None:
    """Counts, obs, var and uns equal, and the same elements stored the same way."""
    assert layout(ours) == layout(theirs)
    a, b = ad.read_h5ad(ours), ad.read_h5ad(theirs)
    assert sorted(named_layers(a)) == sorted(named_layers(b)) == ["counts"]
    for x, y in [(a.X, b.X), (a.layers["counts"], b.layers["counts"])]:
        assert x.format == y.format == "csr" and x.dtype == y.dtype
        np.testing.assert_array_equal(x.toarray(), y.toarray())
    pd.testing.assert_frame_equal(a.obs, b.obs)
    pd.testing.assert_frame_equal(a.var, b.var)
    assert_same_values(stable_uns(a.uns), stable_uns(b.uns))


def assert_same_values(a: Any, b: Any, where: str = "uns") -> None:
    """Equal plain values; floats (QC thresholds from log1p/expm1) to 1e-12: numpy 1.26's
    and 2.x's transcendental functions differ in the last bit."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_same_values(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_values(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12), f"{where}: {a} != {b}"
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def write_generation_outputs(workdir: Path) -> Path:
    """Run the workflow on the fixture's inputs in ``workdir``; return its results folder."""
    make_geo_folder(workdir / "data", GENERATION_SAMPLES, n_genes=GENERATION_GENES)
    run_workflow(workdir, config={"input_dir": "data"})
    return workdir / "results"


def _sample_csv(tmp_path: Path, n_cells: int = 20, seed: int = 3) -> Path:
    genes, cells, counts = synthetic_counts(40, n_cells, seed=seed, median_counts=200)
    path = tmp_path / f"S{seed}.csv.gz"
    write_dense(path, genes, cells, counts)
    return path


# --- unit tests --------------------------------------------------------------------------------


def test_named_layers_leave_out_x():
    adata = ad.AnnData(np.eye(3, dtype=np.float32))
    adata.layers["counts"] = adata.X.copy()
    assert list(named_layers(adata)) == ["counts"]
    # anndata 0.13 lists X as layers[None]; 0.12 does not: named_layers is the same on both
    assert (None in adata.layers) == ANNDATA.startswith("0.13")


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
def test_checkpoints_and_merge_hold_exactly_x_and_counts(tmp_path, compression):
    checkpoints = {}
    for seed, sample in [(3, "A1"), (4, "B1")]:
        adata = build_sample(_sample_csv(tmp_path, seed=seed), sample=sample)
        checkpoints[sample] = tmp_path / f"{sample}.h5ad"
        write_h5ad(adata, checkpoints[sample], compression=compression)
        assert csr_keys(checkpoints[sample]) == ["X", "layers/counts"]
    merge_checkpoints(checkpoints, tmp_path / "merged.h5ad", compression=compression)
    assert csr_keys(tmp_path / "merged.h5ad") == ["X", "layers/counts"]
    for path in [*checkpoints.values(), tmp_path / "merged.h5ad"]:
        with h5py.File(path, "r") as f:
            assert list(f["layers"]) == ["counts"]
            for key in ("X", "layers/counts"):
                # as scipy stores CSR; scanpy 1.12's normalize_total refuses mixed dtypes
                assert f[f"{key}/indptr"].dtype == f[f"{key}/indices"].dtype == np.int32


def test_legacy_strings_is_set_explicitly():
    with legacy_strings():
        assert ad.settings.allow_write_nullable_strings is False


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_strings_are_written_in_the_legacy_encoding(tmp_path, compression):
    """pandas' nullable ``string`` columns too: anndata 0.12 refuses to write them in the
    legacy encoding, 0.13 writes them nullable unless told, pandas 3 makes every string one."""
    adata = build_sample(_sample_csv(tmp_path), sample="A1", metadata={"condition": "Ctrl"})
    n = adata.n_obs
    adata.obs["note"] = pd.array([f"cell {i}" for i in range(n)], dtype="string")
    adata.obs["tag"] = pd.array(["x", None] * (n // 2), dtype="string")
    adata.var["symbol"] = pd.array(adata.var_names, dtype="string")
    adata.obs.index = pd.Index(adata.obs_names, dtype="string")
    before = adata.obs.copy()
    path = tmp_path / "A1.h5ad"
    write_h5ad(adata, path, compression=compression)
    pd.testing.assert_frame_equal(adata.obs, before)  # the caller's object is left as it was
    assert_legacy_strings(path)
    found = encodings(path)
    assert found["obs/note"] == "string-array"
    assert found["obs/_index"] == "string-array"
    assert found["obs/tag"] == "categorical"
    back = ad.read_h5ad(path)
    assert back.obs["note"].tolist() == [f"cell {i}" for i in range(n)]
    assert back.obs["tag"].isna().sum() == n // 2
    assert back.var["symbol"].astype(str).tolist() == adata.var_names.tolist()

    merge_checkpoints({"A1": path}, tmp_path / "merged.h5ad", compression=compression)
    assert_legacy_strings(tmp_path / "merged.h5ad")


def test_plain_strings_leaves_other_frames_alone():
    # object strings stated: under pandas 3 ["x", "y"] alone would infer the `str` dtype
    frame = pd.DataFrame(
        {"a": [1, 2], "b": pd.Series(["x", "y"], index=["c1", "c2"], dtype=object)},
        index=pd.Index(["c1", "c2"], dtype=object),
    )
    assert plain_strings(frame) is frame


def test_plain_strings_turns_inferred_strings_into_object_strings():
    """Under pandas 3 a frame built from Python strings holds ``str`` columns and index
    (pandas 2.x: object); either way what comes out holds object strings only."""
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=["c1", "c2"])
    pandas3 = int(pd.__version__.split(".")[0]) >= 3
    assert isinstance(frame["b"].dtype, pd.StringDtype) == pandas3
    out = plain_strings(frame)
    assert out["b"].dtype == object and out.index.dtype == object
    assert out["b"].tolist() == ["x", "y"] and out.index.tolist() == ["c1", "c2"]
    assert out["a"].dtype == frame["a"].dtype


def test_write_elem_inside_legacy_strings_never_writes_nullable(tmp_path):
    """The settings that :func:`legacy_strings` sets are those anndata's writers consult:
    a nullable string array is refused (0.12) or written legacy (0.13), never nullable."""
    values = pd.array(["a", "b"], dtype="string")
    with h5py.File(tmp_path / "s.h5", "w") as f, legacy_strings():
        try:
            write_elem(f, "s", values)
        except RuntimeError as err:
            assert ANNDATA.startswith("0.12"), err
            assert "allow_write_nullable_strings" in str(err)
        else:
            assert f["s"].attrs["encoding-type"] == "string-array"


def test_metadata_column_with_a_slash_is_a_clear_error(tmp_path):
    # anndata 0.13 refuses '/' in keys by default, 0.12 nests them: refused before both
    from scingest.errors import ScingestError

    with pytest.raises(ScingestError, match="'/'"):
        build_sample(_sample_csv(tmp_path), sample="A1", metadata={"dose/unit": "mg"})


# --- the real workflow -------------------------------------------------------------------------


@pytest.mark.workflow
def test_what_anndata_012_wrote_equals_what_this_run_writes(tmp_path):
    """tests/fixtures/generation holds a checkpoint and the merged file the workflow wrote under
    Python 3.11 / anndata 0.12; this run (0.12 or 0.13) must write the same."""
    with h5py.File(FIXTURE / "merged.h5ad", "r") as f:
        written_by = f["uns/scingest/versions/anndata"][()].decode()
    assert written_by.startswith("0.12"), f"fixture written by anndata {written_by}"
    results = write_generation_outputs(tmp_path)
    assert_same_h5ad(results / "samples" / "Ctrl1.h5ad", FIXTURE / "Ctrl1.h5ad")
    assert_same_h5ad(results / "merged.h5ad", FIXTURE / "merged.h5ad")
    for path in (results / "samples" / "Ctrl1.h5ad", results / "merged.h5ad"):
        assert_legacy_strings(path)


@pytest.mark.workflow
def test_the_workflow_writes_legacy_strings_under_this_pandas(tmp_path):
    """Under pandas 3, where ``str`` is the default string dtype (CI's Python 3.13 run), as
    under 2.x: every string of the checkpoints and of merged.h5ad is stored as
    ``string-array`` or a categorical of it, never ``nullable-string-array`` (which R's
    anndataR cannot read): cell and gene names, barcodes, and text metadata from a sheet,
    one column with a missing value."""
    pandas3 = int(pd.__version__.split(".")[0]) >= 3
    assert isinstance(pd.Series(["a"]).dtype, pd.StringDtype) == pandas3
    make_geo_folder(tmp_path / "data", GENERATION_SAMPLES, n_genes=GENERATION_GENES)
    rows = ["sample\tpath\ttissue\tsite"]
    for (gsm, sample, _, _), tissue in zip(GENERATION_SAMPLES, ["lung", ""], strict=True):
        rows.append(f"{sample}\tdata/{gsm}_{sample}_count_matrix.csv.gz\t{tissue}\tsite {gsm}")
    (tmp_path / "sheet.tsv").write_text("\n".join(rows) + "\n")
    run_workflow(tmp_path, config={"samples": "sheet.tsv"})
    results = tmp_path / "results"
    paths = [*sorted((results / "samples").glob("*.h5ad")), results / "merged.h5ad"]
    assert len(paths) == len(GENERATION_SAMPLES) + 1
    for path in paths:
        assert_legacy_strings(path)
        found = encodings(path)
        for name in ("obs/_index", "obs/barcode", "var/_index"):
            assert found[name] == "string-array", (path.name, name, found[name])
        assert found["obs/site"] in ("string-array", "categorical"), path.name
    merged = ad.read_h5ad(results / "merged.h5ad")
    assert merged.obs["site"].astype(str).str.startswith("site GSM").all()
    tissue = merged.obs["tissue"].astype(object)
    assert (tissue[merged.obs["sample"] == "Ctrl1"] == "lung").all()
    assert tissue[merged.obs["sample"] == "Pre2"].isna().all()


#: the tutorial's shape: 12 GEO CSV.gz files, three conditions, four donors each
TWELVE = [
    (f"GSM80000{10 + i}", f"{cond}{donor}", 30 + 2 * i, 500 + i)
    for i, (cond, donor) in enumerate((c, d) for c in ("Ctrl", "Pre", "Post") for d in range(1, 5))
]


@pytest.fixture(scope="module")
def twelve_samples(tmp_path_factory) -> Path:
    """merged.h5ad of the workflow run on 12 small GEO-style samples (run once per module)."""
    workdir = tmp_path_factory.mktemp("twelve")
    make_geo_folder(workdir / "data", TWELVE, n_genes=150)
    run_workflow(workdir, config={"input_dir": "data"})
    return workdir / "results" / "merged.h5ad"


@pytest.mark.workflow
def test_scanpy_analysis_of_merged_twelve_samples(twelve_samples):
    """What a user does next: normalise, log1p, seurat_v3 HVGs on the counts by sample, PCA."""
    import scanpy as sc

    assert csr_keys(twelve_samples) == ["X", "layers/counts"]
    adata = sc.read_h5ad(twelve_samples)
    counts = adata.layers["counts"].copy()
    assert adata.n_obs == sum(n for _, _, n, _ in TWELVE)
    assert adata.obs["sample"].cat.categories.tolist() == sorted(s for _, s, _, _ in TWELVE)

    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(
        adata, n_top_genes=40, flavor="seurat_v3", layer="counts", batch_key="sample"
    )
    sc.pp.pca(adata, n_comps=10, mask_var="highly_variable")

    assert adata.var["highly_variable"].sum() == 40
    assert adata.var["highly_variable_nbatches"].max() <= len(TWELVE)
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 10)
    assert np.isfinite(adata.obsm["X_pca"]).all()
    totals = np.asarray(np.expm1(adata.X).sum(axis=1)).ravel()
    np.testing.assert_allclose(totals, 1e4, rtol=1e-3)
    # the counts layer is what was written, untouched by the analysis
    np.testing.assert_array_equal(adata.layers["counts"].toarray(), counts.toarray())


def _r_unavailable() -> str | None:
    """Why R cannot read h5ad here, or None when Rscript and hdf5r are installed."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return "Rscript not found (apt-get install r-base-core r-cran-hdf5r; .ci/run does)"
    probe = subprocess.run(
        [rscript, "-e", "library(hdf5r)"], capture_output=True, text=True, timeout=120
    )
    if probe.returncode != 0:
        return f"R has no hdf5r (apt-get install r-cran-hdf5r): {probe.stderr.strip()[-300:]}"
    return None


@pytest.mark.workflow
def test_r_reads_merged_h5ad_with_the_counts_python_reads(twelve_samples):
    """R's hdf5r opens the merged file (ISA-L-written deflate chunks included) and finds the
    shape, the sum of X, the cell names, the sample categories and cells per sample that
    Python finds. Skipped only where R is absent and CI is not set."""
    why = _r_unavailable()
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must read merged.h5ad in R: {why}")
        pytest.skip(why)
    with h5py.File(twelve_samples, "r") as f:
        # config default: our parallel ISA-L chunks, in the merged file's per-sample parts
        # when X is joined as a virtual dataset (scingest.h5concat.CsrConcat)
        data = f["X/data"]
        stored = [f[s.dset_name] for s in data.virtual_sources()] if data.is_virtual else [data]
        assert stored and all(d.compression == "gzip" for d in stored)
    proc = subprocess.run(
        ["Rscript", str(R_SCRIPT), str(twelve_samples)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    records = [line.split("\t") for line in proc.stdout.splitlines()]
    by_kind: dict[str, list[list[str]]] = {}
    for kind, *fields in records:
        by_kind.setdefault(kind, []).append(fields)

    adata = ad.read_h5ad(twelve_samples)
    assert by_kind["shape"] == [[str(adata.n_obs), str(adata.n_vars)]]
    total = float(adata.X.sum(dtype=np.float64))
    assert float(by_kind["sum"][0][0]) == total and total > 0
    assert [name for (name,) in by_kind["obs_name"]] == adata.obs_names.tolist()
    cell_sums = np.asarray(adata.X.sum(axis=1, dtype=np.float64)).ravel()
    expected = [
        [str(s), str(int(n)), f"{cell_sums[(adata.obs['sample'] == s).to_numpy()].sum():.1f}"]
        for s, n in adata.obs["sample"].value_counts(sort=False).items()
    ]
    assert by_kind["sample"] == expected
    assert [s for s, _, _ in by_kind["sample"]] == sorted(s for _, s, _, _ in TWELVE)


if __name__ == "__main__":
    # Regenerate tests/fixtures/generation under the oldest generation (Python 3.11, anndata
    # 0.12): `PYTHONPATH=tests:scripts .venv/bin/python tests/unit/test_scverse.py`.
    import tempfile

    if not ANNDATA.startswith("0.12"):
        sys.exit(f"write the fixture under anndata 0.12, not {ANNDATA}")
    with tempfile.TemporaryDirectory() as tmp:
        results = write_generation_outputs(Path(tmp))
        FIXTURE.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results / "samples" / "Ctrl1.h5ad", FIXTURE / "Ctrl1.h5ad")
        shutil.copyfile(results / "merged.h5ad", FIXTURE / "merged.h5ad")
    for path in sorted(FIXTURE.glob("*.h5ad")):
        print(path, path.stat().st_size, "bytes")
