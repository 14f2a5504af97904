"""Random CSR count matrices, for the tests of the matrix writers (h5write, h5concat)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def random_csr(n_rows: int, n_cols: int, nnz: int, seed: int) -> sp.csr_matrix:
    """About ``nnz`` stored float32 counts from 1 to 49 at random places."""
    rng = np.random.default_rng(seed)
    density = nnz / (n_rows * n_cols)
    # random_state: scipy 1.13 (the lowest we support) knows no rng=
    matrix = sp.random(n_rows, n_cols, density=density, format="csr", random_state=rng)
    matrix.data = rng.integers(1, 50, size=matrix.nnz).astype(np.float32)
    return matrix
