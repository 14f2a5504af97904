"""The tool-written fixtures (tests/fixtures/tools, tests/fixtures/probe) and their truth.

``tests/fixtures/tools/make_fixtures.py`` simulated the reads and ran the tools; the truth
is what it simulated: per barcode and gene, the molecules read from the mature transcript
(spliced) and from inside an intron (unspliced).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOOLS = FIXTURES / "tools"
#: CellRanger/Space Ranger 2.1 probe matrix from scanpy 1.11's source distribution
PROBE_H5 = FIXTURES / "probe" / "raw_probe_bc_matrix.h5"


def truth_genes() -> pd.DataFrame:
    """gene_id, gene_name, chromosome, strand, exons of the simulated reference, in order."""
    return pd.read_csv(TOOLS / "truth" / "genes.tsv", sep="\t")


def truth_cells() -> list[str]:
    """The barcodes simulated as cells (the others are empty droplets)."""
    table = pd.read_csv(TOOLS / "truth" / "barcodes.tsv", sep="\t")
    return table.loc[table["is_cell"], "barcode"].tolist()


def truth_counts(barcodes, gene_ids=None, *, kinds=("spliced",)) -> np.ndarray:
    """Unique molecules per barcode (rows, in the order given) and gene (columns: the
    reference's order, or ``gene_ids``), of the kinds given (spliced, unspliced)."""
    table = pd.read_csv(TOOLS / "truth" / "counts.tsv.gz", sep="\t")
    table["n"] = table[list(kinds)].sum(axis=1)
    wide = table.pivot_table(index="barcode", columns="gene_id", values="n", aggfunc="sum")
    genes = truth_genes()["gene_id"] if gene_ids is None else gene_ids
    wide = wide.reindex(index=list(barcodes), columns=list(genes)).fillna(0)
    return wide.to_numpy(dtype=np.float64)


def gzipped_copy(folder: Path, dest: Path) -> Path:
    """``folder``'s files gzipped into ``dest``: STARsolo writes its 10x files plain, and
    ``scanpy.read_10x_mtx`` reads CellRanger 3's names only gzipped (the usual recipe)."""
    dest.mkdir(parents=True)
    for path in folder.iterdir():
        with open(path, "rb") as src, gzip.open(dest / f"{path.name}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return dest
