"""Fill numba's on-disk caches once, so that a first run does not compile in every job.

``make install`` runs ``python -m scingest.warm``: it builds a tiny sample through the
ingest path (the dense reader's kernels and the QC metrics' kernel are numba functions
with ``cache=True``), and runs the cell calling's kernels (:mod:`scingest.cells`) once.
Without it, every ingest job of a first run compiles the same functions at the same time,
which dominated the first demo's jobs (``bench/run.py firstrun`` measures a first run
against a warm one); afterwards each job only loads the cache.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)


def warm_caches() -> float:
    """Compile the ingest path's numba functions into their on-disk caches.

    Builds and discards a 3-gene x 2-cell sample the way rule ingest_sample does (reader,
    transpose, QC metrics, outlier flags), with one thread and with two, and with the
    counts as float32 (the default) and int32 (``dtype: int32``): each dtype is a kernel
    signature of its own, which a job would otherwise compile on a first run.

    Returns
    -------
    The seconds it took.
    """
    from .sample import build_sample

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="scingest-warm-") as tmp:
        path = Path(tmp) / "warm.csv.gz"
        text = "gene,AAACCTGAGAAACCAT-1,AAACCTGAGAAACCGC-1\nMT-ND1,1,0\nRPL3,2,3\nACTB,0,5\n"
        path.write_bytes(gzip.compress(text.encode()))
        for threads in (1, 2):  # both of the reader's paths: inline and with helper threads
            build_sample(path, sample="warm", threads=threads)
        build_sample(path, sample="warm", threads=1, dtype="int32")
    import numpy as np
    import scipy.sparse as sp

    from .cells import ambient_pvalues

    tiny = sp.csr_matrix(np.array([[1, 2, 0], [0, 1, 3]], dtype=np.float32))
    ambient_pvalues(tiny, np.arange(2), np.array([0.5, 0.3, 0.2]), n_sims=16)
    return time.perf_counter() - start


def main() -> None:
    """``python -m scingest.warm``: warm the caches and say how long it took."""
    seconds = warm_caches()
    print(f"scingest: numba caches ready ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
