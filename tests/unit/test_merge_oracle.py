"""The merge against ``anndata.concat`` of the same checkpoints, over generated samples.

``hypothesis`` draws 2-5 checkpoints with random gene sets and random ``obs`` columns: every
dtype a checkpoint can hold (int, float, bool, categoricals with different categories, text,
pandas' nullable ``Int64``/``boolean``/``string`` with missing values), each present in some
samples only. ``merged.h5ad``, read by anndata, must hold what ``anndata.concat`` gives for
the checkpoints read by anndata: the same cells in the same order, the same counts, the
genes of the join, ``obs`` as the outer join of the samples' columns (a missing value where
a sample lacks one) and the ``var`` columns that agree across samples.
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scingest.merge import merge_checkpoints
from scingest.sample import write_h5ad

#: How each generated obs column is made: n cells, a numpy generator -> values.
KINDS = {
    "int": lambda n, rng: rng.integers(0, 5, n),
    "float": lambda n, rng: rng.normal(size=n),
    "bool": lambda n, rng: rng.random(n) < 0.5,
    "category": lambda n, rng: pd.Categorical(rng.choice(["a", "b", "c", "d"], n)),
    "text": lambda n, rng: np.array([f"t{v}" for v in rng.integers(0, 3, n)], dtype=object),
    "Int64": lambda n, rng: pd.array(
        np.where(rng.random(n) < 0.3, None, rng.integers(0, 5, n)), dtype="Int64"
    ),
    "boolean": lambda n, rng: pd.array(
        np.where(rng.random(n) < 0.3, None, rng.random(n) < 0.5), dtype="boolean"
    ),
    "string": lambda n, rng: pd.array(
        np.where(rng.random(n) < 0.3, None, rng.choice(["x", "y"], n)), dtype="string"
    ),
}
GENES = [f"G{i}" for i in range(12)]


@st.composite
def checkpoints(draw):
    """2-5 samples: (name, n_cells, genes, {column: kind}, seed) each."""
    n = draw(st.integers(2, 5))
    columns = draw(
        st.dictionaries(
            st.sampled_from([f"m{i}" for i in range(6)]), st.sampled_from(list(KINDS)), max_size=5
        )
    )
    samples = []
    for i in range(n):
        genes = draw(st.lists(st.sampled_from(GENES), min_size=3, max_size=12, unique=True))
        present = {c: k for c, k in columns.items() if draw(st.booleans())}
        samples.append((f"S{i}", draw(st.integers(1, 6)), genes, present, draw(st.integers(0, 99))))
    return samples


def _write(tmp, name, n_cells, genes, columns, seed) -> str:
    rng = np.random.default_rng(seed)
    x = sp.csr_matrix(rng.poisson(1.0, (n_cells, len(genes))).astype(np.float32))
    obs = pd.DataFrame(index=pd.Index([f"{name}-c{j}" for j in range(n_cells)]))
    obs["sample"] = pd.Categorical([name] * n_cells)
    for column, kind in columns.items():
        obs[column] = KINDS[kind](n_cells, rng)
    var = pd.DataFrame(
        {
            "gene_ids": [f"ID{g[1:]}" for g in genes],
            "n_cells_by_counts": rng.integers(0, 9, len(genes)),
        },
        index=pd.Index(genes),
    )
    adata = ad.AnnData(X=x, obs=obs, var=var, layers={"counts": x.copy()})
    path = tmp / f"{name}.h5ad"
    write_h5ad(adata, path)
    return str(path)


def _values(column: pd.Series) -> list:
    """A column's values as Python objects, missing values as None, numbers as float."""
    out = []
    for v in column.astype(object).tolist():
        if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        elif isinstance(v, bool | np.bool_):
            out.append(bool(v))
        elif isinstance(v, int | float | np.number):
            out.append(float(v))
        else:
            out.append(str(v))
    return out


def _family(dtype) -> str:
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return "text"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return str(dtype)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(samples=checkpoints(), join=st.sampled_from(["inner", "outer"]))
def test_merge_equals_anndata_concat(tmp_path_factory, samples, join):
    tmp = tmp_path_factory.mktemp("merge")
    paths = {name: _write(tmp, name, *rest) for name, *rest in samples}
    if join == "inner" and not set.intersection(*(set(s[2]) for s in samples)):
        return  # no common gene: the merge refuses (tested elsewhere)
    merge_checkpoints(paths, tmp / "merged.h5ad", join=join)
    ours = ad.read_h5ad(tmp / "merged.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anndata's own notes on concatenating
        theirs = ad.concat({n: ad.read_h5ad(p) for n, p in paths.items()}, join=join, merge="same")
        # obs is joined outer whatever the gene join (README: missing values where a sample
        # lacks a column); anndata joins obs with the same join as var
        theirs_obs = ad.concat(
            {n: ad.read_h5ad(p) for n, p in paths.items()}, join="outer", merge="same"
        ).obs
    assert ours.obs_names.tolist() == theirs.obs_names.tolist()
    assert set(ours.var_names) == set(theirs.var_names)
    theirs = theirs[:, ours.var_names]
    np.testing.assert_array_equal(ours.X.toarray(), theirs.X.toarray())
    np.testing.assert_array_equal(ours.layers["counts"].toarray(), theirs.X.toarray())
    assert set(ours.obs.columns) == set(theirs_obs.columns)
    for column in theirs_obs.columns:
        assert _values(ours.obs[column]) == _values(theirs_obs[column]), column
        assert _family(ours.obs[column].dtype) == _family(theirs_obs[column].dtype), column
    for column in theirs.var.columns:
        assert column in ours.var.columns, column
        assert _values(ours.var[column]) == _values(theirs.var[column]), column
