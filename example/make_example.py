"""Make the bundled example: five GEO-style samples, genes x cells CSV.gz, fixed seed.

python example/make_example.py        # rewrites example/data/ (byte-identical)
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))

from scingest.synthetic import synthetic_counts, write_dense  # noqa: E402

SAMPLES = [  # GSM id, sample name, cells, seed
    ("GSM5320459", "Ctrl1", 180, 1),
    ("GSM5320460", "Ctrl2", 150, 2),
    ("GSM5320463", "Pre1", 200, 3),
    ("GSM5320464", "Pre2", 120, 4),
    ("GSM5320467", "Post1", 160, 5),
]
N_GENES = 400


def main(out: Path = HERE / "data") -> None:
    for gsm, name, n_cells, seed in SAMPLES:
        genes, cells, counts = synthetic_counts(
            N_GENES, n_cells, seed=seed, median_counts=1500, high_mito_cells=0.05
        )
        path = write_dense(out / f"{gsm}_{name}_count_matrix.csv.gz", genes, cells, counts)
        print(f"{path}: {len(genes)} genes x {len(cells)} cells, {counts.sum()} counts")


if __name__ == "__main__":
    main()
