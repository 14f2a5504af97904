"""Per-sample QC summary table, read from the checkpoints' obs, var and QC thresholds only."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem

from .checkpoint import (
    IS_CELL,
    PREDICTED_DOUBLET,
    QC_PASS,
    QcSamples,
    read_cell_calls,
    read_qc_samples,
)
from .files import atomic_path
from .qc import QC_METRICS

#: Limits reported in the summary: column name -> (outlier flag, 0 lower / 1 upper), of the
#: criteria of :data:`scingest.qc.QC_METRICS` that name their limit columns.
LIMIT_COLUMNS = {
    f"limit_{m.limit}_{name}": (m.flag, side)
    for m in QC_METRICS
    if m.limit is not None
    for name, side in (("low", 0), ("high", 1))
    if side == 1 or m.side == "both"
}
#: Only with ``doublets: scrublet``: the doublet-score threshold scrublet chose.
DOUBLET_LIMIT_COLUMN = "limit_doublet_score"
#: What the written table says for a metric (or its limits) not measured: no gene of its
#: set (% mito without mito genes), or no cell with counts.
NOT_MEASURED = "not measured"
#: What the written table says where a flag has no limit on that side.
NO_LIMIT = "none"
#: The per-gene QC metric the table reads from ``var`` (genes detected: those above 0).
N_CELLS = "n_cells_by_counts"

#: Header of the MultiQC custom-content file (``*_mqc.tsv``): MultiQC reads these comments.
MULTIQC_HEADER = """\
# id: 'scingest_qc'
# section_name: 'scingest: cell QC per sample'
# description: 'Cells, genes and median QC figures per sample, and the cells flagged as
#   outliers by each criterion (flags only: no cell was removed). From results/qc/qc_summary.tsv.'
# format: 'tsv'
# plot_type: 'table'
# pconfig:
#     id: 'scingest_qc_table'
#     title: 'scingest: cell QC per sample'
#     namespace: 'scingest'
"""


def sample_row(
    sample: str,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    thresholds: Mapping[str, Any],
    calls: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One summary row from a sample's ``obs``, ``var``, QC limits and cell calls.

    Parameters
    ----------
    sample
        The sample's name.
    obs
        Its ``obs``, with the QC metrics and flags.
    var
        Its ``var``, with scanpy's per-gene ``n_cells_by_counts``.
    thresholds
        ``{flag: [lower, upper]}``, as :func:`scingest.checkpoint.read_qc_obs` gives.
    calls
        What was decided about its barcodes (:func:`scingest.checkpoint.read_cell_calls`).

    Returns
    -------
    Column name -> value, the columns of :func:`qc_summary`. With ``obs["is_cell"]``
    (``barcodes: all``) the medians and flag counts are those of the called cells.
    """
    calls = calls or {}
    n_rows = len(obs)
    if IS_CELL in obs.columns:
        obs = obs[obs[IS_CELL].to_numpy(dtype=bool)]
    barcodes = calls.get("barcodes_with_counts", calls.get("barcodes_in_input", n_rows))
    row: dict[str, Any] = {
        "sample": sample,
        "barcodes": int(barcodes) if calls.get("raw") else n_rows,
        "called_cells": len(obs),
        "cells": n_rows,
        "genes": len(var),
        "genes_detected": int((var[N_CELLS] > 0).sum()),
    }
    for m in QC_METRICS:
        if m.median is not None:  # a metric that needs a gene set is measured with one
            measured = m.gene_set is None or not np.isnan(thresholds.get(m.flag, [0.0])).all()
            row[m.median] = _median(obs[m.metric]) if measured else np.nan
    for m in QC_METRICS:
        row[f"cells_{m.flag}"] = int(obs[m.flag].sum())
    if PREDICTED_DOUBLET in obs.columns:
        row["cells_doublet"] = int(obs[PREDICTED_DOUBLET].sum())
    row["cells_flagged"] = int((~obs[QC_PASS]).sum())
    row["cells_pass"] = int(obs[QC_PASS].sum())
    row["pct_cells_pass"] = 100.0 * row["cells_pass"] / max(len(obs), 1)
    for column, (flag, side) in LIMIT_COLUMNS.items():
        row[column] = float(thresholds[flag][side]) if flag in thresholds else np.nan
    if "doublet" in thresholds:
        row[DOUBLET_LIMIT_COLUMN] = float(thresholds["doublet"][1])
    return row


def _median(values: pd.Series) -> float:
    """The median of the finite values (a cell without counts has no % values); NaN when
    there are none."""
    finite = values.to_numpy(dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    return float(np.median(finite)) if len(finite) else np.nan


def qc_summary(
    checkpoints: Mapping[str, str | PathLike[str]],
    *,
    loaded: QcSamples | None = None,
) -> pd.DataFrame:
    """The QC summary table of some checkpoints, from their ``obs``, ``var`` and limits.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path, in the table's order.
    loaded
        :func:`scingest.checkpoint.read_qc_samples` of ``checkpoints`` when the caller
        has read it already; else it is read here.

    Returns
    -------
    One row per sample: barcodes (of a raw matrix, those with counts), called cells,
    cells (rows of the checkpoint), genes, genes detected, median QC figures per cell, cells
    flagged by each criterion (``cells_outlier_*``, and ``cells_doublet`` with doublet
    detection), cells flagged by any (``cells_flagged``) and passing, and the limits the
    flags applied (``limit_*``): ``-inf``/``inf`` where there is none, NaN where the
    metric was not measured (no gene of its set, or no cell with counts), which
    :func:`write_qc_summary` writes as :data:`NO_LIMIT` and :data:`NOT_MEASURED`.

    Raises
    ------
    ScingestError
        When a checkpoint has no QC flags (:func:`scingest.checkpoint.read_qc_obs`).
    """
    obs, limits = read_qc_samples(checkpoints) if loaded is None else loaded
    rows = []
    for sample, path in checkpoints.items():
        with h5py.File(path, "r") as f:  # the one var column the row needs
            var = pd.DataFrame({N_CELLS: read_elem(f["var"][N_CELLS])})
        calls = read_cell_calls(path)
        rows.append(sample_row(sample, obs[sample], var, limits[sample], calls))
    return pd.DataFrame(rows)


def _as_text(table: pd.DataFrame) -> pd.DataFrame:
    """The table as written: numbers with 4 significant digits, :data:`NO_LIMIT` for an
    infinite limit and :data:`NOT_MEASURED` for NaN, so that no cell is blank."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype.kind != "f":
            continue
        out[column] = [
            NOT_MEASURED if np.isnan(v) else NO_LIMIT if np.isinf(v) else f"{v:.4g}"
            for v in values.to_numpy()
        ]
    return out


def write_qc_summary(
    checkpoints: Mapping[str, str | PathLike[str]],
    out: str | PathLike[str],
    *,
    multiqc: str | PathLike[str] | None = None,
    loaded: QcSamples | None = None,
) -> pd.DataFrame:
    """Write :func:`qc_summary` as TSV (atomically) and return it.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path.
    out
        The TSV file.
    multiqc
        Also write the table as MultiQC custom content (a ``*_mqc.tsv`` with MultiQC's
        header comments), which ``multiqc results/`` shows as a table.
    loaded
        As :func:`qc_summary`.

    Returns
    -------
    The table, as :func:`qc_summary`.
    """
    table = qc_summary(checkpoints, loaded=loaded)
    text = _as_text(table)
    with atomic_path(out) as tmp:
        text.to_csv(tmp, sep="\t", index=False)
    if multiqc is not None:
        with atomic_path(multiqc) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            fh.write(MULTIQC_HEADER)
            text.to_csv(fh, sep="\t", index=False)
    return table
