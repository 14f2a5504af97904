"""Helpers shared by the readers."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import anndata as ad
import pandas as pd
import scipy.sparse as sp


def build_anndata(
    counts: sp.csr_matrix,
    barcodes: Sequence[str],
    genes: Sequence[str],
    var: pd.DataFrame | None = None,
) -> ad.AnnData:
    """AnnData from counts and names, before names are checked or made unique.

    anndata warns about duplicate names at construction; :func:`scingest.readers.read_counts`
    deals with them right after (unique barcodes required, duplicate genes made unique
    with a logged warning), so the constructor's warning would only repeat it.
    """
    var = pd.DataFrame(index=pd.Index(genes, dtype=str)) if var is None else var
    var.index = pd.Index(genes, dtype=str)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* names are not unique", category=UserWarning)
        return ad.AnnData(X=counts, obs=pd.DataFrame(index=pd.Index(barcodes, dtype=str)), var=var)
