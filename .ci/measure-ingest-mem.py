"""Peak RSS of one sample's job (build_sample + write_h5ad), for resources.ingest_mem_mb.

Writes synthetic GEO-style dense matrices of a few sizes, then runs each in a fresh Python
process (as a SLURM job does) and reports its peak RSS (os.wait4's ru_maxrss) next to the
file's size on disk and decompressed. Peak RSS comes from `/usr/bin/time -f %M`: a child
of this (large) process would inherit its high-water mark across fork+exec. Usage:

    .venv/bin/python .ci/measure-ingest-mem.py [workdir]
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from scingest.synthetic import synthetic_counts, write_dense  # noqa: E402

#: (genes, cells, gzip?) of the files measured; 33,538 genes is CellRanger's human reference
SIZES = [
    (2_000, 200, True),
    (33_538, 250, True),
    (33_538, 1_000, True),
    (33_538, 3_000, True),
    (33_538, 6_000, True),
    (33_538, 1_000, False),
]

CHILD = """
import sys
sys.path.insert(0, {scripts!r})
from scingest.sample import build_sample, write_h5ad
adata = build_sample({path!r}, sample="s")
write_h5ad(adata, {out!r})
"""


def peak_rss_mb(code: str) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    kib = int(proc.stderr.strip().splitlines()[-1])
    return kib / 1024, time.perf_counter() - start


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    base, _ = peak_rss_mb("import scanpy, anndata")
    # warm numba's cache so compilation is not in the figures
    warm = work / "warm.csv.gz"
    write_dense(warm, *synthetic_counts(100, 20, seed=0))
    peak_rss_mb(
        CHILD.format(scripts=str(REPO / "scripts"), path=str(warm), out=str(work / "w.h5ad"))
    )
    print(f"imports only: {base:.0f} MB peak RSS")
    print("genes\tcells\tfile_MB\ttext_MB\tpeak_MB\tpeak-imports_MB\tper_file_MB\tseconds")
    for n_genes, n_cells, gz in SIZES:
        path = work / f"g{n_genes}_c{n_cells}.csv{'.gz' if gz else ''}"
        if not path.exists():
            write_dense(path, *synthetic_counts(n_genes, n_cells, seed=1, median_counts=3000))
        size = path.stat().st_size / 1e6
        with (gzip.open if gz else open)(path, "rb") as fh:
            text = sum(len(b) for b in iter(lambda fh=fh: fh.read(1 << 24), b"")) / 1e6
        code = CHILD.format(scripts=str(REPO / "scripts"), path=str(path), out=str(path) + ".h5ad")
        peak, secs = peak_rss_mb(code)
        print(
            f"{n_genes}\t{n_cells}\t{size:.2f}\t{text:.1f}\t{peak:.0f}\t{peak - base:.0f}"
            f"\t{(peak - base) / size:.1f}\t{secs:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
