"""The collection extra in the tests: its packages, or a skip that says why, and ways to make
an installed TileDB-SOMA look missing or incompatible to a workflow run; checkpoints to
collect, and the check that a store holds their counts."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

#: set by `make test-collection` (CI's collection run): a missing package fails, not skips
REQUIRE = "SCINGEST_REQUIRE_COLLECTION"


def collection_package(name: str) -> ModuleType:
    """The collection extra's package ``name`` (``tiledbsoma``, ``cellarr``), imported.

    Skips the calling test or module where it is not installed: TileDB-SOMA 2.3 and
    cellarr 0.6 require pandas < 3, so the extra does not install beside pandas 3 (README,
    "Supported versions"). Under ``SCINGEST_REQUIRE_COLLECTION=1`` it fails instead.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        why = f"{name} cannot be imported ({err}): the collection extra needs pandas < 3"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1, but {why}", pytrace=False)
        pytest.skip(f"{why}; `make test-collection` runs these tests", allow_module_level=True)


def hide_package(folder: Path, name: str) -> Path:
    """A folder that, first on ``PYTHONPATH``, makes ``name`` fail to import as if it were
    not installed (``sys.modules[name] = None``, Python's own way to block an import, set by
    a ``sitecustomize`` module at start-up). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(f"import sys\n\nsys.modules[{name!r}] = None\n")
    return folder


def fake_distribution(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """A folder that, first on ``PYTHONPATH``, holds an importable package ``name`` whose
    installed metadata (``METADATA``'s ``Requires-Dist``) is ``requires``, found before any
    installed one: how a TileDB-SOMA installed for another pandas looks. Returns the folder."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "__init__.py").write_text("")
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {req}" for req in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    return folder


def write_checkpoint(
    path: Path,
    sample: str,
    n_cells: int,
    genes: list[str],
    *,
    seed: int,
    extra: dict[str, object] | None = None,
    drop: tuple[str, ...] = (),
    dtype: type = np.float32,
) -> ad.AnnData:
    """A checkpoint shaped like ingest_sample's: CSR counts in X and layers["counts"],
    obs with sample metadata, barcode, QC metrics and flags; var with ids and flags."""
    rng = np.random.default_rng(seed)
    x = sp.random(n_cells, len(genes), density=0.3, format="csr", random_state=rng)
    x.data = np.ceil(x.data * 20).astype(dtype)
    x = x.astype(dtype)
    barcodes = [f"AAAC{seed:02d}{i:05d}-1" for i in range(n_cells)]
    obs = pd.DataFrame(index=pd.Index([f"{sample}-{b}" for b in barcodes]))
    obs["sample"] = pd.Categorical([sample] * n_cells)
    obs["barcode"] = barcodes
    obs["condition"] = pd.Categorical(["Ctrl" if seed % 2 else "Pre"] * n_cells)
    obs["donor"] = np.int64(seed)
    obs["total_counts"] = np.asarray(x.sum(axis=1)).ravel().astype(np.float32)
    obs["n_genes_by_counts"] = np.diff(x.indptr).astype(np.int32)
    obs["qc_pass"] = rng.random(n_cells) > 0.2
    for key, value in (extra or {}).items():
        obs[key] = value
    obs = obs.drop(columns=list(drop))
    var = pd.DataFrame(index=pd.Index(genes))
    var["gene_ids"] = [f"ENSG_{g}" for g in genes]
    var["mt"] = var.index.str.startswith("MT-")
    var["n_cells_by_counts"] = np.diff(x.tocsc().indptr)  # per-sample: left out of the store
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.layers["counts"] = x.copy()
    adata.write_h5ad(path)
    return adata


GENES = ["ACTB", "GAPDH", "MT-CO1", "CD3E", "MS4A1", "LYZ"]


def write_checkpoints(folder: Path) -> dict[str, Path]:
    """Three checkpoints in a new ``folder``, the second with fewer genes, the third with a
    gene the others lack (``NEWGENE``): sample name -> path, in the order written."""
    folder.mkdir()
    write_checkpoint(folder / "Ctrl1.h5ad", "Ctrl1", 40, GENES, seed=1)
    write_checkpoint(folder / "Pre1.h5ad", "Pre1", 30, GENES[:4], seed=2)
    write_checkpoint(folder / "Post2.h5ad", "Post2", 25, ["NEWGENE", *GENES[2:]], seed=3)
    return {p.stem: p for p in sorted(folder.glob("*.h5ad"), key=lambda p: p.stat().st_mtime)}


def assert_counts_equal(result: ad.AnnData, paths: dict[str, Path]) -> None:
    """Every cell of ``result`` has exactly its checkpoint's counts (zeros for genes the
    checkpoint does not have)."""
    for sample, path in paths.items():
        ref = ad.read_h5ad(path)
        cells = result.obs_names[result.obs["sample"] == sample]
        if not len(cells):
            continue
        got = result[cells]
        shared = got.var_names.intersection(ref.var_names)
        expected = ref[cells, shared].X.toarray()
        np.testing.assert_array_equal(got[:, shared].X.toarray(), expected)
        absent = got.var_names.difference(ref.var_names)
        assert got[:, absent].X.nnz == 0 if sp.issparse(got.X) else not got[:, absent].X.any()
