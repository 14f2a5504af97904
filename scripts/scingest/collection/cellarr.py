"""A cellarr dataset of the checkpoints (``collection: cellarr``), rebuilt whenever one
changes: cellarr cannot append."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..checkpoint import read_tables
from ..errors import ScingestError
from ..files import sha256sum, write_text_atomic
from .common import LAYER, VAR_TEXT, build_folder, recover_swap, sample_metadata, swap_in

logger = logging.getLogger(__name__)


def _cellarr_obs(frames: list[pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """All cells' obs as one table, with cellarr column types: numbers and booleans keep
    their dtype (cellarr would make every column text), everything else is text."""
    obs = pd.concat(frames, axis=0, join="outer")
    table = pd.DataFrame({"obs_id": obs.index.astype(str).to_numpy()})
    types: dict[str, Any] = {"obs_id": "ascii"}
    for name, values in obs.items():
        values = values.reset_index(drop=True)
        if pd.api.types.is_bool_dtype(values.dtype) or (
            pd.api.types.is_numeric_dtype(values.dtype) and not values.hasnans
        ):
            table[name] = values.to_numpy()
            types[name] = table[name].dtype
        elif pd.api.types.is_numeric_dtype(values.dtype):  # integers with gaps: float
            table[name] = values.astype(np.float64).to_numpy()
            types[name] = np.dtype(np.float64)
        else:
            table[name] = values.astype(object).where(values.notna(), "").astype(str).to_numpy()
            types[name] = "ascii"
    return table, types


def build_cellarr_collection(
    checkpoints: Mapping[str, str | PathLike[str]],
    store: str | PathLike[str],
    *,
    manifest: str | PathLike[str] | None = None,
) -> dict[str, list[str]]:
    """Build a CellArrDataset of ``checkpoints`` at ``store`` (a rebuild: cellarr cannot
    append), swapped in when complete.

    Counts are stored as float32 (cellarr's default is uint16), with typed obs columns,
    the per-sample table and gene ids.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path.
    store
        The dataset's folder.
    manifest
        Where to write the manifest, if anywhere.

    Returns
    -------
    ``{"rebuilt": samples}``.

    Raises
    ------
    ScingestError
        When cellarr is not installed.
    """
    try:
        from cellarr import (
            CellMetadataOptions,
            MatrixOptions,
            SampleMetadataOptions,
            build_cellarrdataset,
        )
    except ImportError as err:  # pragma: no cover - the extra is part of make install
        raise ScingestError(
            "collection: cellarr needs cellarr: pip install -e '.[collection]'"
        ) from err
    store = Path(store)
    paths = {sample: Path(p) for sample, p in checkpoints.items()}
    obs_frames, genes, rows = [], None, []
    for sample, path in paths.items():
        obs, var = read_tables(path)
        obs_frames.append(obs)
        keep = [c for c in var.columns if c in VAR_TEXT or pd.api.types.is_bool_dtype(var[c].dtype)]
        part = var[keep]
        genes = part if genes is None else pd.concat([genes, part[~part.index.isin(genes.index)]])
        stat = path.stat()
        rows.append(
            {
                "cellarr_sample": sample,
                "n_cells": len(obs),
                "n_genes": len(var),
                "sha256": sha256sum(path),
                "path": str(path),
                "metadata": json.dumps(sample_metadata(obs), default=str),
                "size": stat.st_size,
            }
        )
    cells, cell_types = _cellarr_obs(obs_frames)
    cells["cellarr_sample"] = np.repeat(list(paths), [len(o) for o in obs_frames])
    del obs_frames
    gene_table = pd.DataFrame(index=pd.Index(genes.index.astype(str)))
    for name, values in genes.items():
        gene_table[name] = (
            values.to_numpy()
            if pd.api.types.is_bool_dtype(values.dtype)
            else values.astype(object).where(values.notna(), "").astype(str).to_numpy()
        )
    samples = pd.DataFrame(rows)
    build = build_folder(store)
    recover_swap(store)
    build.mkdir(parents=True)
    with warnings.catch_warnings():
        # cellarr narrates its steps as UserWarnings ("Scanning all files ..."): not ours
        warnings.filterwarnings("ignore", module=r"cellarr\b")
        build_cellarrdataset(
            files=[str(p) for p in paths.values()],
            output_path=str(build),
            gene_annotation=gene_table,
            sample_metadata=samples,
            cell_metadata=cells,
            sample_metadata_options=SampleMetadataOptions(
                column_types={"n_cells": np.int64, "n_genes": np.int64, "size": np.int64}
            ),
            cell_metadata_options=CellMetadataOptions(column_types=cell_types),
            matrix_options=MatrixOptions(matrix_name=LAYER, dtype=np.float32),
            num_threads=1,
        )
    swap_in(store)
    logger.info("built %s: %d samples, %d cells", store, len(samples), len(cells))
    if manifest is not None:
        table = samples.rename(columns={"cellarr_sample": "sample"})
        columns = ["sample", "n_cells", "n_genes", "sha256", "path"]
        write_text_atomic(manifest, table[columns].to_csv(sep="\t", index=False))
    return {"rebuilt": list(paths)}
