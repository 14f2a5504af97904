"""Streaming CSR writer: anndata's on-disk format, parallel deflate chunks, rows streamed."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
from anndata.io import read_elem

from helpers.csr import random_csr
from scingest.h5write import OUTPUT_CHUNK, CsrWriter, stream_rows, write_csr


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
def test_writer_round_trips_across_chunks_and_blocks(tmp_path, compression):
    # more stored values than two output chunks, so full, partial and padded chunks occur
    matrix = random_csr(3_000, 400, 2 * OUTPUT_CHUNK + 12_345, seed=1)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        writer = CsrWriter(f, "X", 400, np.float32, compression=compression)
        for start in range(0, 3_000, 777):  # uneven row blocks, one empty block
            writer.append(matrix[start : start + 777])
        writer.append(matrix[:0])
        writer.close()
    with h5py.File(tmp_path / "m.h5") as f:
        assert f["X/data"].compression == (None if compression == "none" else compression)
        back = read_elem(f["X"])
    assert isinstance(back, sp.csr_matrix) and back.shape == matrix.shape
    assert (back != matrix).nnz == 0
    np.testing.assert_array_equal(back.indptr, matrix.indptr)


def test_stream_rows_fills_twins(tmp_path):
    matrix = random_csr(500, 300, 40_000, seed=2)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        write_csr(f, "a", matrix, compression="gzip")
        targets = [CsrWriter(f, key, 300, np.float32) for key in ("x", "y")]
        stream_rows(f["a"], targets, block_nnz=1_000)
        for target in targets:
            target.close()
        for key in ("x", "y"):
            assert (read_elem(f[key]) != matrix).nnz == 0
