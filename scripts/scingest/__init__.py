"""scingest: single-cell count files to checkpointed, QC-annotated, sparse AnnData.

The library behind the scingest Snakemake workflow. It never imports snakemake, so a
notebook can use the same reader the workflow uses::

    from scingest.readers import read_counts
    adata = read_counts("GSM5320459_Ctrl1_count_matrix.csv.gz")
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ScingestError

__all__ = ["ScingestError", "__version__"]
