"""The transpose of the parsed rows, written straight from the blocks by two threads.

A GEO matrix is genes x cells and the checkpoint cells x genes, so most reads end here.
It is a counting sort, as scipy's ``tocsr`` of a transpose does, but from the blocks'
arrays as the kernel left them (no concatenated copy first), and split between two
threads: the blocks' first half by nonzeros goes to one and the rest to the other, each
with its own write positions, so they never write the same place. ``bench/run.py reader``
times the whole read.
"""

from __future__ import annotations

import threading

import numba
import numpy as np
import scipy.sparse as sp

from .kernel import Rows


def transposed(rows: Rows, n_cols: int, *, threaded: bool = True) -> sp.csr_matrix:
    """The transpose of the parsed rows as CSR: one row per column of the file.

    Parameters
    ----------
    rows
        The rows of every block, as the kernel gave them.
    n_cols
        Values per line of the file: the rows of the result.
    threaded
        Write half of the result in a second thread; False writes it all in this one.

    Returns
    -------
    An ``n_cols`` x ``len(rows.names)`` CSR matrix of ``rows.dtype``, indices sorted.
    """
    block_rows = [len(r) for r in rows.row_nnz]
    block_nnz = np.array([len(ix) for ix in rows.indices], np.int64)
    counts = [np.bincount(ix, minlength=n_cols) for ix in rows.indices]
    indptr = np.zeros(n_cols + 1, np.int64)
    np.cumsum(sum(counts, np.zeros(n_cols, np.int64)), out=indptr[1:])
    out_indices = np.empty(indptr[-1], np.int32)
    out_data = np.empty(indptr[-1], rows.dtype)
    split = int(np.searchsorted(np.cumsum(block_nnz), block_nnz.sum() / 2))
    starts = np.concatenate([[0], np.cumsum(block_rows)]).astype(np.int64)

    failed: list[BaseException] = []

    def write(blocks: range, pos: np.ndarray) -> None:
        try:
            for b in blocks:
                _scatter(
                    rows.row_nnz[b],
                    rows.indices[b],
                    rows.data[b],
                    starts[b],
                    pos,
                    out_indices,
                    out_data,
                )
        except BaseException as err:  # raised below, in the calling thread
            failed.append(err)

    if not threaded:
        write(range(len(counts)), indptr[:-1].copy())
    else:
        second_pos = indptr[:-1].copy()
        for count in counts[:split]:
            second_pos += count
        second = threading.Thread(
            target=write, args=(range(split, len(counts)), second_pos), name="scingest-transpose"
        )
        second.start()
        write(range(split), indptr[:-1].copy())
        second.join()
    if failed:
        raise failed[0]
    return sp.csr_matrix((out_data, out_indices, indptr), shape=(n_cols, len(rows.names)))


@numba.njit(cache=True, nogil=True)
def _scatter(
    row_nnz: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    first_row: int,
    pos: np.ndarray,
    out_indices: np.ndarray,
    out_data: np.ndarray,
) -> None:
    """Write one block's nonzeros into the transpose: the block's row ``i`` becomes column
    ``first_row + i``; ``pos[c]`` is where row ``c``'s next value goes, and advances."""
    k = 0
    for i in range(row_nnz.size):
        for _ in range(row_nnz[i]):
            c = indices[k]
            p = pos[c]
            out_indices[p] = first_row + i
            out_data[p] = data[k]
            pos[c] = p + 1
            k += 1
