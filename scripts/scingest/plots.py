"""QC plots (PNG) from the checkpoints' obs and QC limits only.

Overview plots compare samples; the per-sample figure shows one sample's cells against the
limits its flags applied. Figures grow with the number of samples so that 50 stay readable.
Drawn with matplotlib's :class:`~matplotlib.figure.Figure` directly, not pyplot: no global
backend or figure registry is touched, so importing this module changes nothing for a
notebook that also plots, and the adapters import it with the rest (``frozen_imports``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from .checkpoint import (
    DOUBLET_SCORE,
    IS_CELL,
    PREDICTED_DOUBLET,
    QC_PASS,
    QcSamples,
    read_cell_calls,
    read_qc_obs,
    read_qc_samples,
)
from .files import atomic_path
from .qc import QC_METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The criteria of the violins (:data:`scingest.qc.QC_METRICS`): those of the overview
#: first, then those drawn only in each sample's figure.
VIOLIN_METRICS = (
    *(m for m in QC_METRICS if m.overview),
    *(m for m in QC_METRICS if not m.overview),
)
PASS_COLOUR = "#4C72B0"
FLAG_COLOUR = "#C44E52"
LIMIT_COLOUR = "#D62728"
#: Up to this many samples, plots name each sample in a legend.
MAX_LEGEND = 12
#: Scatter plots draw at most this many cells (a uniform random subset with a fixed seed,
#: said in the title): beyond it points only overplot each other, and a uniform subset
#: keeps the density truthful.
MAX_SCATTER = 20_000
#: Per-sample violins draw at most this many jittered cells (a uniform random subset, so
#: passing and flagged cells keep their proportions), behind the violin, so that the
#: violin stays visible at 100,000 cells.
MAX_JITTER = 3_000


def plural(n: int, word: str) -> str:
    """``"1 sample"``, ``"2 samples"`` (with thousands separators).

    Parameters
    ----------
    n
        The number.
    word
        The singular noun.

    Returns
    -------
    The number and the noun, plural unless ``n`` is 1.
    """
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def subsample(n: int, limit: int, *, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``limit`` of ``n`` items, uniformly at random.

    Parameters
    ----------
    n
        The number of items.
    limit
        The most indices to return.
    seed
        The random seed (the same items every time).

    Returns
    -------
    All indices when ``n <= limit``, else ``limit`` of them, sorted.
    """
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def _save(fig: Figure, out: str | PathLike[str]) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def _log_ticks(ax: Axes) -> None:
    """Round-number ticks of the original values on an axis holding ``log10(1 + v)``."""
    low, high = (10**y - 1 for y in ax.get_ylim())
    for steps in ((1, 2, 5), (1, 2, 3, 5, 7), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10**e for e in range(0, 9) for m in steps]
        ticks = [v for v in ticks if low <= v <= high]
        if len(ticks) >= 4:
            break
    ax.set_yticks(np.log10(1 + np.asarray(ticks, dtype=float)))
    ax.set_yticklabels([f"{v:,.0f}" for v in ticks])


def _plain_log_axes(ax: Axes) -> None:
    """Log-scaled x and y axes labelled with plain numbers (1,000 rather than 10^3)."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        axis.set_minor_formatter(NullFormatter())


def _scale(values: np.ndarray, log: bool) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.log10(1 + np.clip(values, 0, None)) if log else values


#: What a panel says instead of a distribution it cannot show.
NOT_MEASURED = "not measured"


def measured(limits: Mapping[str, Sequence[float]], flag: str) -> bool:
    """Whether a sample's metric of ``flag`` was measured: :func:`scingest.qc.flag_outliers`
    records the limits of a metric without a gene of its set as NaN."""
    return not np.isnan(limits.get(flag, [0.0, 0.0])).all()


def _spread(values: np.ndarray) -> np.ndarray:
    """Values that are all equal, spread by a hair so that a violin can be drawn of them."""
    return values + 1e-9 * np.arange(len(values))


def _style_violins(
    parts: dict,
    colours: Sequence,
    *,
    alpha: float,
    linewidth: float | None = None,
    zorder: float | None = None,
) -> None:
    """Fill each violin of ``ax.violinplot``'s ``parts`` with its colour, black outlines and
    median/extrema lines (drawn above the bodies when ``zorder`` is given)."""
    for body, colour in zip(parts["bodies"], colours, strict=True):
        body.set_facecolor(colour)
        body.set_edgecolor("black")
        body.set_alpha(alpha)
        if linewidth is not None:
            body.set_linewidth(linewidth)
        if zorder is not None:
            body.set_zorder(zorder)
    for key in ("cmedians", "cmins", "cmaxes", "cbars"):
        parts[key].set_color("black")
        if linewidth is not None:
            parts[key].set_linewidth(linewidth + 0.1)
        if zorder is not None:
            parts[key].set_zorder(zorder + 1)


def _not_measured_text(ax: Axes, x: float, why: str, **kwargs) -> None:
    ax.text(x, 0.5, why, ha="center", va="center", transform=ax.get_xaxis_transform(), **kwargs)


def sample_groups(obs: Mapping[str, pd.DataFrame], group_by: str | None) -> dict[str, str]:
    """Each sample's value of the ``group_by`` obs column.

    Parameters
    ----------
    obs
        Sample -> its ``obs`` (:func:`scingest.checkpoint.read_qc_samples`).
    group_by
        An obs column with one value per sample (e.g. ``condition``), or ``None``.

    Returns
    -------
    Sample -> its group, ``"all"`` where the column is missing or not given.
    """
    groups = {}
    for sample, frame in obs.items():
        if group_by and group_by in frame.columns and len(frame):
            groups[sample] = str(frame[group_by].iloc[0])
        else:
            groups[sample] = "all"
    return groups


def _group_colours(groups: Mapping[str, str]) -> dict[str, tuple]:
    names = sorted(set(groups.values()))
    cmap = mpl.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {g: cmap(i % cmap.N) for i, g in enumerate(names)}


def _natural(name: str) -> list[int | str]:
    """Sort key that puts Ctrl2 before Ctrl10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _order(groups: Mapping[str, str]) -> list[str]:
    """Samples ordered by group, then name: samples of a condition sit together."""
    return sorted(groups, key=lambda s: (_natural(groups[s]), _natural(s)))


def plot_violins(
    obs: Mapping[str, pd.DataFrame],
    limits: Mapping[str, Mapping[str, Sequence[float]]],
    out: str | PathLike[str],
    *,
    group_by: str | None = "condition",
) -> None:
    """Violins of total counts, genes and % mito (one row each), one violin per sample,
    coloured by group, with each sample's flag limits drawn as red bars.

    Parameters
    ----------
    obs
        Sample -> its ``obs`` (:func:`scingest.checkpoint.read_qc_samples`).
    limits
        Sample -> ``{flag: [lower, upper]}``.
    out
        The PNG file.
    group_by
        The obs column that colours the samples (:func:`sample_groups`).
    """
    groups = sample_groups(obs, group_by)
    colours = _group_colours(groups)
    samples = _order(groups)
    n = len(samples)
    fig = Figure(figsize=(max(7.0, 0.32 * n + 2.5), 9.5), layout="constrained")
    overview = [m for m in VIOLIN_METRICS if m.overview]
    axes = fig.subplots(len(overview), 1, sharex=True)
    positions = np.arange(n)
    for ax, criterion in zip(axes, overview, strict=True):
        metric, label, log, flag = criterion.metric, criterion.label, criterion.log, criterion.flag
        data = {}
        for i, s in enumerate(samples):
            values = _scale(obs[s][metric].to_numpy(), log)
            values = values[np.isfinite(values)]
            if measured(limits[s], flag) and len(values):
                data[i] = values if len(np.unique(values)) > 1 else _spread(values)
            else:  # no gene of the set, or no cell with counts
                _not_measured_text(ax, i, NOT_MEASURED, rotation=90, fontsize="small")
        if data:
            parts = ax.violinplot(
                list(data.values()), positions=list(data), widths=0.8, showmedians=True
            )
            _style_violins(
                parts, [colours[groups[samples[i]]] for i in data], alpha=0.75, linewidth=0.5
            )
        for i, s in enumerate(samples):
            lower, upper = limits[s].get(flag, [-np.inf, np.inf])
            for value in (lower, upper):
                if np.isfinite(value) and value > 0:
                    y = _scale(np.array([value]), log)[0]
                    ax.hlines(y, i - 0.42, i + 0.42, color=LIMIT_COLOUR, linewidth=1.6)
        ax.set_ylabel(label + (" (log scale)" if log else ""))
        if log:
            _log_ticks(ax)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xticks(positions)
    axes[-1].set_xticklabels(samples, rotation=90 if n > 8 else 0)
    axes[-1].set_xlabel("sample")
    axes[-1].set_xlim(-0.7, n - 0.3)
    handles = [Rectangle((0, 0), 1, 1, facecolor=colours[g], edgecolor="black") for g in colours]
    labels = list(colours)
    handles.append(Line2D([0], [0], color=LIMIT_COLOUR, linewidth=1.6))
    labels.append("flag limit (MADs or hard limit)")
    by = f", coloured by {group_by}" if len(colours) > 1 else ""
    axes[0].legend(
        handles,
        labels,
        loc="lower left",
        bbox_to_anchor=(0, 1.01),
        ncol=min(len(labels), 6),
        frameon=False,
        title=f"Per-cell QC metrics of {plural(n, 'sample')}{by}",
        alignment="left",
    )
    _save(fig, out)


def plot_counts_vs_genes(
    obs: pd.DataFrame,
    out: str | PathLike[str] | None = None,
    *,
    limits: Mapping[str, Sequence[float]] | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> None:
    """Total counts against genes detected per cell (log-log), coloured by % mito; cells
    that fail QC are ringed in red; a sample's count and gene limits are dashed lines.

    Above :data:`MAX_SCATTER` cells a uniform random subset is drawn (said in the title).
    The red rings lie under the points, so they show where failing cells stand apart and
    never hide the cloud of passing cells; the legend counts all failing cells.

    Parameters
    ----------
    obs
        The cells' ``obs`` (one sample or several concatenated).
    out
        The PNG file; ``None`` when drawing into ``ax``.
    limits
        ``{flag: [lower, upper]}`` of one sample, drawn as lines.
    title
        The plot's title.
    ax
        Draw into these axes instead of a figure of its own.
    """
    fig = None
    if ax is None:
        fig = Figure(figsize=(7.5, 6), layout="constrained")
        ax = fig.subplots()
    n_cells = len(obs)
    shown = subsample(n_cells, MAX_SCATTER)
    all_failed = ~obs[QC_PASS].to_numpy(dtype=bool)
    obs = obs.iloc[shown]
    mt = obs["pct_counts_mt"].to_numpy(dtype=float)
    if limits is not None and not measured(limits, "outlier_mt"):
        mt = np.full(len(obs), np.nan)
    known = np.isfinite(mt)
    vmax = max(float(np.percentile(mt[known], 99)) if known.any() else 1.0, 1.0)
    order = np.argsort(mt)
    x = obs["total_counts"].to_numpy(dtype=float)[order]
    y = obs["n_genes_by_counts"].to_numpy(dtype=float)[order]
    size = 12 if len(obs) < 5000 else 2
    points = ax.scatter(
        x,
        y,
        c=mt[order],
        # % mito not measured (no mito gene, or no counts): grey
        cmap=mpl.colormaps["viridis"].with_extremes(bad="0.6"),
        plotnonfinite=True,
        vmin=0,
        vmax=vmax,
        s=size,
        linewidths=0,
        rasterized=True,
        zorder=2,
    )
    failed = ~obs[QC_PASS].to_numpy(dtype=bool)[order]
    if failed.any():
        ax.scatter(
            x[failed],
            y[failed],
            s=size * 4,
            facecolors="none",
            edgecolors=FLAG_COLOUR,
            linewidths=0.8,
            rasterized=True,
            zorder=1,
            label=f"fails QC ({plural(int(all_failed.sum()), 'cell')})",
        )
        ax.legend(loc="upper left", frameon=False)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_axes(ax)
    for flag, line in (("outlier_counts", ax.axvline), ("outlier_genes", ax.axhline)):
        for value in (limits or {}).get(flag, []):
            if np.isfinite(value) and value > 0:
                line(value, color=LIMIT_COLOUR, linestyle="--", linewidth=1)
    ax.set_xlabel("total counts per cell")
    ax.set_ylabel("genes detected per cell")
    cax = ax.inset_axes((0.55, 0.1, 0.4, 0.035))
    ax.figure.colorbar(
        points,
        cax=cax,
        orientation="horizontal",
        label="% counts mitochondrial" + ("" if known.all() else f" (grey: {NOT_MEASURED})"),
        extend="max",
    )
    cax.xaxis.set_label_position("top")
    if len(shown) < n_cells:
        title = f"{title}; {len(shown):,} of {n_cells:,} cells drawn at random".lstrip("; ")
    empty = int((x == 0).sum())
    if empty:  # no place on log axes
        title = f"{title}; {plural(empty, 'cell')} without counts not drawn".lstrip("; ")
    if title:
        ax.set_title(title)
    if fig is not None and out is not None:
        _save(fig, out)


def rank_curve(
    obs: pd.DataFrame, calls: Mapping | None
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """A sample's barcode-rank curve: ranks, total counts, and its number of called cells.

    Parameters
    ----------
    obs
        Its ``obs`` (``total_counts``).
    calls
        Its cell calls (:func:`scingest.checkpoint.read_cell_calls`), or None.

    Returns
    -------
    1-based ranks and totals (descending); the called cells (the cut) of a raw matrix, else
    None. A raw matrix's curve is the one stored with its calls (every barcode with counts,
    also those not kept).
    """
    calls = calls or {}
    if calls.get("raw") and len(calls.get("rank_curve_ranks", [])):
        ranks = np.asarray(calls["rank_curve_ranks"], dtype=float)
        totals = np.asarray(calls["rank_curve_totals"], dtype=float)
        return ranks, totals, int(calls.get("cells", 0))
    totals = np.sort(obs["total_counts"].to_numpy(dtype=float))[::-1]
    return np.arange(1, len(totals) + 1, dtype=float), totals, None


def called_cells(obs: pd.DataFrame) -> pd.DataFrame:
    """The called cells of a sample's ``obs``: all of it, but with ``barcodes: all``
    (``obs["is_cell"]``) only the barcodes called cells."""
    if IS_CELL not in obs.columns:
        return obs
    return obs[obs[IS_CELL].to_numpy(dtype=bool)]


def plot_barcode_rank(
    obs: Mapping[str, pd.DataFrame],
    out: str | PathLike[str] | None = None,
    *,
    group_by: str | None = "condition",
    limits: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    calls: Mapping[str, Mapping] | None = None,
    ax: Axes | None = None,
) -> None:
    """Barcode-rank (knee) plot: total counts of each barcode against its rank, log-log, one
    line per sample, coloured by sample (up to :data:`MAX_LEGEND`) or by group.

    A raw matrix's line is its whole barcode-rank curve (from the checkpoint's cell calls,
    also where only the cells were kept): the called cells drawn solid, the background
    faint, and the cut between them marked (a line with one sample, a dot with several).

    Parameters
    ----------
    obs
        Sample -> its ``obs`` (:func:`scingest.checkpoint.read_qc_samples`).
    out
        The PNG file; ``None`` when drawing into ``ax``.
    group_by
        The obs column that colours the lines beyond :data:`MAX_LEGEND` samples.
    limits
        Sample -> ``{flag: [lower, upper]}``: the lower count limit is marked on its line.
    calls
        Sample -> its cell calls (:func:`scingest.checkpoint.read_cell_calls`).
    ax
        Draw into these axes instead of a figure of its own.
    """
    fig = None
    if ax is None:
        fig = Figure(figsize=(8, 6), layout="constrained")
        ax = fig.subplots()
    groups = sample_groups(obs, group_by)
    by_sample = len(obs) <= MAX_LEGEND or len(set(groups.values())) == 1
    colours = (
        {
            s: mpl.colormaps["tab20" if len(obs) > 10 else "tab10"](i % 20)
            for i, s in enumerate(sorted(obs))
        }
        if by_sample
        else _group_colours(groups)
    )
    seen: set[str] = set()
    most = 0
    for sample in _order(groups):
        ranks, counts, n_cells = rank_curve(obs[sample], (calls or {}).get(sample))
        most = max(most, len(ranks) and int(ranks[-1]))
        key = sample if by_sample else groups[sample]
        label = key if key not in seen else None
        seen.add(key)
        style = {"color": colours[key], "linewidth": 1.2}
        cells = ranks <= (n_cells if n_cells is not None else np.inf)
        ax.plot(
            ranks[cells],
            np.clip(counts[cells], 1, None),
            alpha=0.9 if by_sample else 0.6,
            label=label,
            **style,
        )
        if n_cells is None:
            continue
        if (~cells).any():  # the background, joined to the last cell
            back = np.r_[np.flatnonzero(cells)[-1:], np.flatnonzero(~cells)]
            ax.plot(ranks[back], np.clip(counts[back], 1, None), alpha=0.3, **style)
        if n_cells and len(obs) == 1:
            ax.axvline(
                n_cells,
                color="0.3",
                linestyle=":",
                linewidth=1.2,
                label=f"cut: {n_cells:,} called cells | background",
            )
        elif n_cells:
            at = min(np.searchsorted(ranks, n_cells), len(ranks) - 1)
            ax.plot(
                [ranks[at]],
                [max(counts[at], 1)],
                marker="o",
                markersize=5,
                markeredgecolor="black",
                linestyle="none",
                **style,
            )
        for value in ((limits or {}).get(sample, {}).get("outlier_counts", []))[:1]:
            if len(obs) == 1 and np.isfinite(value) and value > 0:
                ax.axhline(
                    value,
                    color=LIMIT_COLOUR,
                    linestyle="--",
                    linewidth=1,
                    label="lower count limit",
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_axes(ax)
    if most > 10_000:
        ax.xaxis.set_major_locator(LogLocator())  # 1, 10, 100, ...: 1-2-5 labels would collide
    ax.set_xlabel("barcode rank (barcodes sorted by total counts)")
    ax.set_ylabel("total counts per barcode")
    ax.grid(alpha=0.3, which="major")
    ncol = 1 if len(seen) <= 14 else 2
    ax.legend(
        title=None if by_sample else group_by,
        fontsize="small",
        ncol=ncol,
        frameon=False,
        loc="lower left",
    )
    if fig is not None:
        ax.set_title(f"Barcode rank, {plural(len(obs), 'sample')}")
        if out is not None:
            _save(fig, out)


def plot_cells(
    obs: Mapping[str, pd.DataFrame],
    out: str | PathLike[str],
    *,
    group_by: str | None = "condition",
) -> None:
    """Cells per sample and per group, split into passing and flagged cells.

    Parameters
    ----------
    obs
        Sample -> its ``obs`` (:func:`scingest.checkpoint.read_qc_samples`).
    out
        The PNG file.
    group_by
        The obs column that groups the samples (:func:`sample_groups`).
    """
    groups = sample_groups(obs, group_by)
    samples = _order(groups)[::-1]
    n = len(samples)
    passing = np.array([int(obs[s][QC_PASS].sum()) for s in samples])
    flagged = np.array([len(obs[s]) for s in samples]) - passing
    names = sorted(set(groups.values()), key=_natural, reverse=True)
    g_pass = np.array([passing[[groups[s] == g for s in samples]].sum() for g in names])
    g_flag = np.array([flagged[[groups[s] == g for s in samples]].sum() for g in names])
    height = max(3.5, 0.24 * n + 1.8)
    fig = Figure(figsize=(11, height), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    for ax, labels, ok, bad, what in (
        (left, samples, passing, flagged, "sample"),
        (right, names, g_pass, g_flag, group_by or "group"),
    ):
        y = np.arange(len(labels))
        ax.barh(y, ok, color=PASS_COLOUR, label="pass QC")
        ax.barh(y, bad, left=ok, color=FLAG_COLOUR, label="flagged")
        for i, (a, b) in enumerate(zip(ok, bad, strict=True)):
            ax.text(a + b, i, f" {a + b:,}", va="center", fontsize="small")
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.set_xlabel("cells")
        # few ticks, with thousands separators: the default ones ran together above 10,000
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_ylabel(what)
        ax.margins(x=0.15)
        ax.grid(axis="x", alpha=0.3)
    total = int(passing.sum() + flagged.sum())
    left.set_title(f"Cells per sample ({plural(n, 'sample')}, {plural(total, 'cell')})")
    right.set_title(f"Cells per {group_by or 'group'}")
    fig.legend(*left.get_legend_handles_labels(), loc="outside upper right", ncol=2)
    _save(fig, out)


def plot_sample(
    sample: str,
    obs: pd.DataFrame,
    limits: Mapping[str, Sequence[float]],
    out: str | PathLike[str],
    calls: Mapping | None = None,
) -> None:
    """One sample's QC figure: violins of total counts, genes, % mito and % in the top 20
    genes with the limits drawn and flagged cells in red; counts vs genes coloured by % mito;
    the barcode-rank plot with the cut between cells and background of a raw matrix (and
    scrublet's scores, with doublet detection). With ``obs["is_cell"]`` (``barcodes:
    all``) every panel but the barcode rank shows the called cells only.

    Parameters
    ----------
    sample
        The sample's name, for the title.
    obs
        Its ``obs``.
    limits
        Its ``{flag: [lower, upper]}``.
    out
        The PNG file.
    calls
        Its cell calls (:func:`scingest.checkpoint.read_cell_calls`), or None.
    """
    every = obs
    obs = called_cells(obs)
    # margins fixed by hand, not layout="constrained": its layout passes took 0.35 of the
    # figure's 0.9 s, paid by every ingest job (the labels here do not change in length)
    fig = Figure(figsize=(16, 9))
    columns = max(4, len(VIOLIN_METRICS))  # a violin per criterion; 4 panels below
    grid = fig.add_gridspec(
        2, columns, left=0.055, right=0.985, bottom=0.065, top=0.91, wspace=0.3, hspace=0.24
    )
    rng = np.random.default_rng(0)
    failed = ~obs[QC_PASS].to_numpy(dtype=bool)
    drawn = subsample(len(obs), MAX_JITTER)  # the same cells in every panel
    for j, criterion in enumerate(VIOLIN_METRICS):
        metric, label, log, flag = criterion.metric, criterion.label, criterion.log, criterion.flag
        ax = fig.add_subplot(grid[0, j])
        ax.set_title(flag)
        ax.set_xticks([])
        values = _scale(obs[metric].to_numpy(), log)
        finite = np.isfinite(values)
        if not measured(limits, flag) or not finite.any():
            why = "no gene of its set" if not measured(limits, flag) else "no cell with counts"
            _not_measured_text(ax, 0.5, f"{label}:\n{NOT_MEASURED}\n({why})")
            ax.set_xlim(0, 1)
            ax.set_yticks([])
            continue
        spread = values[finite] if len(np.unique(values[finite])) > 1 else _spread(values[finite])
        parts = ax.violinplot([spread], positions=[0], widths=0.8, showmedians=True)
        _style_violins(parts, [PASS_COLOUR], alpha=0.45, zorder=3)  # above the jittered dots
        jitter = rng.uniform(-0.25, 0.25, len(values))
        flagged_here = obs[flag].to_numpy(dtype=bool)
        for cells, size, colour, zorder in (
            (~failed, 3, "0.3", 1),
            (failed & ~flagged_here, 6, "0.6", 1),
            (flagged_here, 10, FLAG_COLOUR, 2),
        ):
            idx = drawn[(cells & finite)[drawn]]
            ax.scatter(
                jitter[idx],
                values[idx],
                s=size,
                color=colour,
                linewidths=0,
                rasterized=True,
                zorder=zorder,
                label=f"flagged here ({int(flagged_here.sum()):,})" if zorder == 2 else None,
            )
        if len(drawn) < len(values):
            ax.set_xlabel(
                f"{len(drawn):,} of {len(values):,} cells drawn at random", fontsize="small"
            )
        for value in limits.get(flag, []):
            if np.isfinite(value) and value > 0:
                y = _scale(np.array([value]), log)[0]
                ax.axhline(y, color=LIMIT_COLOUR, linestyle="--", linewidth=1.2)
                shown = f"{value:,.0f}" if log else f"{value:.1f}"
                ax.annotate(
                    shown,
                    (1, y),
                    xycoords=("axes fraction", "data"),
                    ha="right",
                    va="bottom",
                    color=LIMIT_COLOUR,
                    fontsize="small",
                )
        if log:
            _log_ticks(ax)
        ax.set_ylabel(label + (" (log scale)" if log else ""))
        ax.legend(loc="upper left", fontsize="small", frameon=False)
    plot_counts_vs_genes(
        obs, limits=limits, ax=fig.add_subplot(grid[1, :2]), title="counts vs genes"
    )
    doublets = DOUBLET_SCORE in obs.columns
    plot_barcode_rank(
        {sample: every},
        limits={sample: limits},
        calls={sample: calls} if calls else None,
        ax=fig.add_subplot(grid[1, 2] if doublets else grid[1, 2:]),
        group_by=None,
    )
    if doublets:
        plot_doublet_scores(obs, limits.get("doublet"), fig.add_subplot(grid[1, 3:]))
    n_pass = int((~failed).sum())
    kept = f" (of {len(every):,} barcodes kept)" if len(every) != len(obs) else ""
    fig.suptitle(
        f"{sample}: {len(obs):,} cells{kept}, {n_pass:,} pass QC "
        f"({100 * n_pass / max(len(obs), 1):.0f}%); red: flagged, dashed: limits",
        fontsize="x-large",
    )
    _save(fig, out)


def plot_doublet_scores(obs: pd.DataFrame, limit: Sequence[float] | None, ax: Axes) -> None:
    """Histogram of scrublet's doublet scores, with its threshold and the cells it calls.

    Parameters
    ----------
    obs
        A sample's ``obs`` with ``doublet_score``.
    limit
        ``[lower, upper]`` of the ``doublet`` flag, or ``None``.
    ax
        The axes to draw into.
    """
    scores = obs[DOUBLET_SCORE].to_numpy(dtype=float)
    called = int(obs[PREDICTED_DOUBLET].sum()) if PREDICTED_DOUBLET in obs else 0
    finite = scores[np.isfinite(scores)]
    if len(finite):
        ax.hist(finite, bins=50, color=PASS_COLOUR, log=True)
    else:
        ax.text(0.5, 0.5, "not scored (too few cells)", ha="center", transform=ax.transAxes)
    if limit is not None and np.isfinite(limit[1]):
        ax.axvline(limit[1], color=LIMIT_COLOUR, linestyle="--", linewidth=1.2)
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("doublet score (scrublet)")
    ax.set_ylabel("cells (log scale)")
    ax.set_title(f"doublet: {plural(called, 'cell')} called")


def plot_overview(
    checkpoints: Mapping[str, str | PathLike[str]],
    *,
    violins: str | PathLike[str],
    counts_vs_genes: str | PathLike[str],
    barcode_rank: str | PathLike[str],
    cells: str | PathLike[str],
    group_by: str | None = "condition",
    loaded: QcSamples | None = None,
) -> None:
    """The overview plots of all samples, from their checkpoints' obs.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path.
    violins, counts_vs_genes, barcode_rank, cells
        The PNG files of :func:`plot_violins`, :func:`plot_counts_vs_genes`,
        :func:`plot_barcode_rank` and :func:`plot_cells`.
    group_by
        The obs column that groups the samples (:func:`sample_groups`).
    loaded
        :func:`scingest.checkpoint.read_qc_samples` of ``checkpoints`` when the caller
        has read it already.
    """
    every, limits = read_qc_samples(checkpoints) if loaded is None else loaded
    calls = {sample: read_cell_calls(path) for sample, path in checkpoints.items()}
    obs = {sample: called_cells(frame) for sample, frame in every.items()}
    plot_violins(obs, limits, violins, group_by=group_by)
    # a sample without mito genes has pct_counts_mt 0 (scanpy's value): drawn as not measured
    joined = pd.concat(
        [
            frame if measured(limits[s], "outlier_mt") else frame.assign(pct_counts_mt=np.nan)
            for s, frame in obs.items()
        ],
        ignore_index=True,
    )
    plot_counts_vs_genes(
        joined,
        counts_vs_genes,
        title=f"All cells of {plural(len(obs), 'sample')} ({plural(len(joined), 'cell')})",
    )
    plot_barcode_rank(every, barcode_rank, group_by=group_by, calls=calls)
    plot_cells(obs, cells, group_by=group_by)


def plot_sample_checkpoint(
    sample: str, checkpoint: str | PathLike[str], out: str | PathLike[str]
) -> None:
    """:func:`plot_sample` of one checkpoint.

    Parameters
    ----------
    sample
        The sample's name.
    checkpoint
        Its checkpoint.
    out
        The PNG file.
    """
    obs, limits = read_qc_obs(checkpoint)
    plot_sample(sample, obs, limits, out, calls=read_cell_calls(checkpoint))
