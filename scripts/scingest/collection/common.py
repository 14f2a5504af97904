"""What both collection stores share: the names and columns they take from a checkpoint,
and a store built beside its place (:func:`build_folder`) and swapped in when complete."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ..checkpoint import BARCODE

#: the counts' name in either store (SOMA's ``X`` layer, cellarr's matrix)
LAYER = "counts"
#: var columns carried into the collection: ids, types and flags of a gene, never the
#: per-sample gene metrics (``n_cells_by_counts`` etc. describe one sample only)
VAR_TEXT = ("gene_ids", "feature_types", "gene_symbols", "genome")


def sample_metadata(obs: pd.DataFrame) -> dict[str, Any]:
    """Columns of ``obs`` with one value for the whole sample (the sheet's metadata)."""
    out = {}
    for name, values in obs.items():
        if name == BARCODE or pd.api.types.is_float_dtype(values.dtype) or not len(values):
            continue
        if values.nunique(dropna=False) == 1:
            value = values.iloc[0]
            out[name] = value.item() if hasattr(value, "item") else value
    return out


def build_folder(store: Path) -> Path:
    """Where a store is built, hidden beside it, before :func:`swap_in`."""
    return store.with_name(f".{store.name}.build")


def _old_folder(store: Path) -> Path:
    return store.with_name(f".{store.name}.old")


def swap_in(store: Path) -> None:
    """Replace ``store`` by its complete :func:`build_folder` (a kill between the two
    renames is undone by :func:`recover_swap`)."""
    old = _old_folder(store)
    if store.exists():
        os.replace(store, old)
    os.replace(build_folder(store), store)
    shutil.rmtree(old, ignore_errors=True)


def recover_swap(store: Path) -> None:
    """Finish or undo a swap a killed run left: the old store back if there is no new one."""
    old = _old_folder(store)
    build = build_folder(store)
    if old.exists() and not store.exists():
        os.replace(old, store)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(build, ignore_errors=True)
