"""Joining stored CSR matrices: chunk compare, and copy / remap / re-index like vstack."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from anndata.io import read_elem

from helpers.csr import random_csr
from scingest.h5concat import CsrConcat, concat_mode, same_stored
from scingest.h5write import OUTPUT_CHUNK, write_csr


def test_same_stored_compares_chunks(tmp_path):
    matrix = random_csr(500, 300, 40_000, seed=2)
    other = matrix.copy()
    other.data[-1] += 1
    with h5py.File(tmp_path / "m.h5", "w") as f:
        for key, m in (("a", matrix), ("b", matrix), ("c", other)):
            write_csr(f, key, m, compression="gzip")
        write_csr(f, "d", matrix, compression="lzf")
        assert same_stored(f["a"], f["b"])
        assert not same_stored(f["a"], f["c"])  # one value differs
        assert not same_stored(f["a"], f["d"])  # same values, stored differently


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
@pytest.mark.parametrize("virtual", [True, False])
def test_csr_concat_copies_remaps_and_fills_like_vstack(tmp_path, compression, virtual):
    a = random_csr(6_000, 50, OUTPUT_CHUNK + 5_000, seed=3)  # more than one chunk
    b = random_csr(200, 40, 3_000, seed=4)  # 40 columns, placed in order among the 50
    c = random_csr(100, 50, 2_000, seed=5)
    columns = np.sort(np.random.default_rng(6).choice(50, 40, replace=False))
    with h5py.File(tmp_path / "in.h5", "w") as f:
        write_csr(f, "a", a, compression=compression)
        write_csr(f, "b", b, compression=compression)
        write_csr(f, "c", c, compression="none" if compression != "none" else "lzf")
    with h5py.File(tmp_path / "in.h5") as f, h5py.File(tmp_path / "out.h5", "w") as g:
        assert concat_mode(f["a"], np.dtype(np.float32), compression) == "copy"
        assert concat_mode(f["b"], np.dtype(np.float32), compression, columns) == "remap"
        assert concat_mode(f["c"], np.dtype(np.float32), compression) == "reindex"
        assert concat_mode(f["a"], np.dtype(np.float32), compression, columns[::-1]) == "reindex"
        with ThreadPoolExecutor(2) as pool:
            target = CsrConcat(
                g, "X", 50, np.float32, compression=compression, pool=pool, virtual=virtual
            )
            target.add(f["a"], block_nnz=100_000)
            target.add(f["b"], column_map=columns, block_nnz=1_000)
            target.add_empty(7)
            target.add(f["c"])
            target.close()
        assert g["X/data"].is_virtual == virtual
    with h5py.File(tmp_path / "out.h5") as g:
        back = read_elem(g["X"])
    wide = sp.csr_matrix((b.data, columns[b.indices], b.indptr), shape=(200, 50))
    want = sp.vstack([a, wide, sp.csr_matrix((7, 50), dtype=np.float32), c], format="csr")
    assert back.shape == want.shape and back.has_sorted_indices
    assert (back != want).nnz == 0
    np.testing.assert_array_equal(back.indptr, want.indptr)
