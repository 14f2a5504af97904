"""Merge per-sample checkpoints into one AnnData on disk, in bounded memory.

Why not ``anndata.experimental.concat_on_disk``, which this module used at first: it keeps
every input open and holds every sample's ``var`` (index and table) in memory at once, so
its peak grows with the number of samples (``bench/run.py merge`` and ``merge-scale``
measure it); it writes the matrices uncompressed; and it aligns ``obsm`` matrices by
position, not by feature name. Here one sample is open at a time: genes, ``var`` and
``obsm`` feature names are merged incrementally (memory grows with the number of distinct
genes, not samples), ``obs`` is written column by column (cell names and plain columns as
each sample's stored column, joined by a virtual dataset), and matrices are joined from
each sample's stored chunks where the genes allow it, else streamed in row blocks
(:class:`scingest.h5concat.CsrConcat`). Counts identical to ``X`` are stored once, as a
hard link. Output semantics follow ``anndata.concat``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd
from anndata.io import read_elem, write_elem

from .checkpoint import (
    FEATURE_NAMES,
    PROVENANCE,
    check_csr,
    has_obsm_column,
    new_h5ad,
    read_feature_names,
    sparse_obsm_keys,
)
from .errors import ScingestError
from .files import atomic_path
from .h5concat import PARTS, CsrConcat, concat_mode, copy_part, same_stored, virtual_concat
from .h5write import BLOCK_NNZ, Compression, check_compression, workers
from .provenance import h5ad_safe, package_versions

logger = logging.getLogger(__name__)

Join = Literal["inner", "outer"]
#: Share of a sample's genes an inner join may drop before the log says how to keep them.
LARGE_DROP = 0.05
_WAY_OUT = (
    ": gene symbols renamed between reference versions? Join on ids with var_names: "
    "gene_ids when the samples' gene ids agree, or keep every gene with join: outer"
)


def _open(path: Path) -> h5py.File:
    # inputs are read once, front to back: no chunk cache (1 MiB per dataset otherwise)
    return h5py.File(path, "r", rdcc_nbytes=0)


def _index(group: h5py.Group) -> pd.Index:
    """The index of a stored dataframe, without reading its columns."""
    return pd.Index(read_elem(group[group.attrs["_index"]]))


def combine_genes(genes: pd.Index | None, other: pd.Index, *, join: Join) -> pd.Index:
    """One step of the gene join: the first sample's order, new genes appended (outer).

    Parameters
    ----------
    genes
        The genes joined so far; ``None`` before the first sample.
    other
        The next sample's genes.
    join
        ``inner`` keeps the genes in both, ``outer`` appends ``other``'s new genes.

    Returns
    -------
    The joined genes, in the order of ``genes``.
    """
    if genes is None:
        return other
    if join == "inner":
        return genes[genes.isin(other)]
    return genes.append(other[~other.isin(genes)])


class VarMerger:
    """Merge ``var`` tables one sample at a time.

    A column is kept where every sample that has a gene agrees on its value (a gene absent
    from a sample does not count as disagreement). A gene *annotation* (a text column:
    symbols, ids, feature types, genome) is kept even where samples disagree on some genes
    (a symbol renamed between reference versions), with the first sample's value and a
    warning naming the genes; other columns that disagree (per-sample metrics such as
    ``n_cells_by_counts``) are left out, and :attr:`left_out` says why.

    Holds one table over the genes seen so far, never one per sample.
    """

    def __init__(self) -> None:
        self._values: pd.DataFrame | None = None
        self._dtypes: dict[str, Any] = {}
        self._first: str | None = None
        #: column -> why it is not in the result
        self.left_out: dict[str, str] = {}

    @property
    def columns(self) -> list[str] | None:
        """The columns still kept (``None`` before the first table): a later table's other
        columns cannot change the result, so a caller need not read them."""
        return None if self._values is None else list(self._values.columns)

    def add(self, frame: pd.DataFrame, sample: str = "") -> None:
        """Take in the next sample's ``var``.

        Parameters
        ----------
        frame
            The sample's ``var`` table, indexed by unique gene names.
        sample
            The sample's name, for the log.
        """
        for column in frame.columns:
            self._dtypes.setdefault(column, frame[column].dtype)
        if self._values is None:
            self._values, self._first = frame, sample
            return
        old = self._values
        for column in old.columns.difference(frame.columns, sort=False):
            self.left_out[column] = f"absent from sample {sample}"
        columns = [c for c in old.columns if c in frame.columns]
        same = frame.index.equals(old.index)
        if same:  # one reference: no gene map needed
            at_old = at_new = slice(None)
            added = frame.iloc[:0]
        else:
            common = old.index.intersection(frame.index)
            at_old, at_new = old.index.get_indexer(common), frame.index.get_indexer(common)
        kept = []
        filled: dict[str, Any] = {}
        for column in columns:
            if same and old[column].equals(frame[column]):
                kept.append(column)
                continue
            a = old[column].to_numpy(dtype=object)[at_old]
            b = frame[column].to_numpy(dtype=object)[at_new]
            gap = pd.isna(a)
            differ = ~(gap | pd.isna(b)) & (a != b)
            if differ.any() and not _is_annotation(self._dtypes[column]):
                self.left_out[column] = "values differ between samples"
                continue
            if differ.any():
                genes = (old.index if same else common)[differ]
                logger.warning(
                    "var column %s: %d gene(s) have another value in sample %s than in %s "
                    "(e.g. %s: %r vs %r); kept: the first sample's values",
                    column,
                    int(differ.sum()),
                    sample,
                    self._first,
                    genes[0],
                    a[differ][0],
                    b[differ][0],
                )
            kept.append(column)
            if gap.any():  # a value missing so far, given by this sample
                values = old[column].to_numpy(dtype=object)
                values[at_old] = np.where(gap, b, a)
                filled[column] = values
        for column in frame.columns.difference(old.columns, sort=False):
            if column not in self.left_out:
                self.left_out[column] = f"absent from sample {self._first}"
        merged = old[kept].copy() if filled or not same else old[kept]
        for column, values in filled.items():
            merged[column] = values
        if not same:
            added = frame.loc[~frame.index.isin(old.index), kept]
            if len(added):
                merged = pd.concat([merged, added])
        self._values = merged

    def result(self, genes: pd.Index) -> pd.DataFrame:
        """The merged ``var`` over ``genes``.

        Parameters
        ----------
        genes
            The merged genes (the join's result).

        Returns
        -------
        ``var`` with the columns kept that have a value for every gene of ``genes``, in
        the first sample's dtypes (columns without are added to :attr:`left_out`).
        """
        out = pd.DataFrame(index=genes)
        if self._values is None:
            return out
        for column in self._values.columns:
            values = self._values[column].reindex(genes)
            if not values.notna().all():
                self.left_out[column] = (
                    f"no value for {int(values.isna().sum())} gene(s) of samples without it"
                )
                continue
            dtype = self._dtypes[column]
            out[column] = (
                pd.Categorical(values)
                if isinstance(dtype, pd.CategoricalDtype)
                else values.astype(dtype)
            )
        return out


def _is_annotation(dtype: Any) -> bool:
    """Whether a var column is a gene annotation (text), not a measurement."""
    return isinstance(dtype, pd.CategoricalDtype | pd.StringDtype) or pd.api.types.is_object_dtype(
        dtype
    )


@dataclass
class _Plan:
    """What the merged file holds, from one pass over the inputs' annotations."""

    genes: pd.Index | None = None
    #: per sample, a digest of its genes: a sample with the merged genes needs no map
    gene_digests: dict[str, str] = field(default_factory=dict)
    gene_maps: dict[str, np.ndarray | None] = field(default_factory=dict)
    var: VarMerger = field(default_factory=VarMerger)
    n_obs: dict[str, int] = field(default_factory=dict)
    n_genes: dict[str, int] = field(default_factory=dict)
    obs_columns: dict[str, None] = field(default_factory=dict)
    #: per obs column, how the samples store it: (encoding, dtype) of plain arrays, per sample
    obs_kinds: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    layers: dict[str, None] | None = None
    #: per sample, the layers stored the same as its X (hard-linked or byte for byte)
    twins: dict[str, set[str]] = field(default_factory=dict)
    obsm: dict[str, pd.Index | None] = field(default_factory=dict)
    obsm_samples: dict[str, set[str]] = field(default_factory=dict)
    obsm_widths: dict[str, set[int]] = field(default_factory=dict)
    dtypes: dict[str, np.dtype] = field(default_factory=dict)
    uns: dict[str, Any] = field(default_factory=dict)


def _plan(paths: Mapping[str, Path], join: Join) -> _Plan:
    plan = _Plan()
    known: dict[str, pd.Index] = {}  # gene lists read so far, by digest
    merged = ""  # digest of plan.genes
    for sample, path in paths.items():
        with _open(path) as f:
            names, digest = _gene_names(f["var"], known)
            if digest not in known:
                if not names.is_unique:
                    dup = names[names.duplicated()][0]
                    raise ScingestError(
                        f"gene {dup!r} occurs twice in var: not a checkpoint", path=path
                    )
                known[digest] = names
            if digest != merged:  # the same genes again leave the join as it is
                plan.genes = combine_genes(plan.genes, names, join=join)
                merged = _digest(plan.genes)
            plan.gene_digests[sample] = digest
            plan.n_genes[sample] = len(names)
            plan.var.add(_var_columns(f["var"], names, plan.var.columns), sample)
            check_csr(f["X"], "X")
            plan.n_obs[sample] = int(f["X"].attrs["shape"][0])
            obs_columns = list(f["obs"].attrs["column-order"])
            plan.obs_columns.update(dict.fromkeys(obs_columns))
            for column in obs_columns:
                plan.obs_kinds.setdefault(column, []).append(_kind(f["obs"].get(column)))
            layers = dict.fromkeys(f["layers"]) if "layers" in f else {}
            plan.layers = (
                layers if plan.layers is None else {k: None for k in plan.layers if k in layers}
            )
            for key in ["X", *(f"layers/{k}" for k in layers)]:
                check_csr(f[key], key)
                dtype = f[f"{key}/data"].dtype
                plan.dtypes[key] = np.result_type(plan.dtypes.get(key, dtype), dtype)
            plan.twins[sample] = {
                f"layers/{k}" for k in layers if same_stored(f["X"], f[f"layers/{k}"])
            }
            obsm = {k: read_feature_names(f, k) for k in sparse_obsm_keys(f)}
            for k, names in obsm.items():
                # joined over the samples that have it; the others get empty rows
                if k not in plan.obsm_samples:
                    plan.obsm[k] = names
                else:
                    seen = plan.obsm[k]
                    plan.obsm[k] = (
                        None
                        if seen is None or names is None
                        else combine_genes(seen, names, join=join)
                    )
                plan.obsm_samples.setdefault(k, set()).add(sample)
            for k in obsm:
                key = f"obsm/{k}"
                dtype = f[f"{key}/data"].dtype
                plan.dtypes[key] = np.result_type(plan.dtypes.get(key, dtype), dtype)
                plan.obsm_widths.setdefault(k, set()).add(int(f[key].attrs["shape"][1]))
            uns = f.get("uns/scingest")
            plan.uns[sample] = read_elem(uns) if uns is not None else {}
    return plan


def _column_part(f: h5py.File, column: str) -> pd.Series | None:
    stored = f["obs"].get(column)
    if stored is None:
        return None
    return pd.Series(read_elem(stored))


def _unified_dtype(dtypes: list[Any], *, has_missing: bool) -> Any:
    """The dtype ``anndata.concat`` gives the parts of a column before pandas joins them:
    categoricals the natural-sorted union of their categories, booleans with missing values
    pandas' nullable ``boolean``; ``None`` where pandas' own concatenation decides."""
    if all(isinstance(d, pd.CategoricalDtype) for d in dtypes):
        from natsort import natsorted

        categories = pd.Index([]).append([pd.Index(d.categories) for d in dtypes]).unique()
        return pd.CategoricalDtype(natsorted(categories))
    if has_missing and all(pd.api.types.is_bool_dtype(d) for d in dtypes):
        return pd.BooleanDtype()
    return None


def _concat_column(parts: list[pd.Series | None], n_obs: list[int]) -> Any:
    """One obs column over all samples, as ``anndata.concat`` joins ``obs`` (outer): parts
    unified as anndata unifies them (:func:`_unified_dtype`), then joined by pandas; a
    sample without the column gives missing values (int columns become float, as there)."""
    present = [p for p in parts if p is not None]
    target = _unified_dtype([p.dtype for p in present], has_missing=len(present) < len(parts))
    frames = [
        pd.DataFrame(index=pd.RangeIndex(n))
        if p is None
        else pd.DataFrame({"v": p if target is None else p.astype(target)}).reset_index(drop=True)
        for p, n in zip(parts, n_obs, strict=True)
    ]
    return _as_writable(pd.concat(frames, join="outer", ignore_index=True)["v"])


def _as_writable(values: pd.Series) -> Any:
    """A joined obs column in a form anndata writes in the legacy encoding: text with
    missing values (or text of mixed kinds) as a categorical, as anndata's own writer
    turns such columns into categoricals."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return values.array
    if isinstance(dtype, pd.StringDtype) or pd.api.types.is_object_dtype(dtype):
        present = values.dropna()
        kinds = {type(v) for v in present}
        if not all(issubclass(k, str) for k in kinds):  # text mixed with numbers
            values = values.where(values.isna(), values.astype(str))
        if values.isna().any():
            return pd.Categorical(values.astype(object))
        return values.to_numpy(dtype=object)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return values.array
    return values.to_numpy()


def _kind(stored: Any) -> tuple[str, str]:
    """How an obs column is stored: a plain array's encoding and dtype, else its encoding."""
    if not isinstance(stored, h5py.Dataset):
        return ("group", "")
    encoding = stored.attrs.get("encoding-type", "")
    if encoding == "string-array":
        return (encoding, "str")
    return (encoding, stored.dtype.str)


def _streamable(plan: _Plan, column: str) -> str | None:
    """The encoding of a column every sample stores as the same plain array (numbers,
    booleans or strings without missing values), which the merge copies sample by sample;
    ``None`` for the others (categoricals, columns missing from some samples)."""
    kinds = plan.obs_kinds.get(column, [])
    if column == "sample" or len(kinds) != len(plan.n_obs) or len(set(kinds)) != 1:
        return None
    encoding = kinds[0][0]
    return encoding if encoding in ("array", "string-array") else None


def _write_obs(
    out: h5py.File, paths: Mapping[str, Path], plan: _Plan, *, compression: Compression
) -> None:
    """obs one column at a time: memory is one column of all cells, not the whole table;
    cell names and plain columns (numbers, booleans, barcodes) are copied sample by sample
    in one pass, so memory for them does not grow with the cells either."""
    write_elem(out, "obs", pd.DataFrame(index=pd.Index([], dtype=object)))
    obs = out["obs"]
    index_name = obs.attrs["_index"]
    del obs[index_name]
    columns = list(plan.obs_columns)
    plain = {c: e for c in columns if (e := _streamable(plan, c)) is not None}
    # cell names and plain columns: each sample's stored column is copied as it is into
    # obs/_parts/<n>/ and joined by a virtual dataset, as X is (CsrConcat)
    encodings = {index_name: "string-array", **plain}
    dtypes = {
        name: h5py.string_dtype() if encoding == "string-array" else np.dtype(kinds[0][1])
        for name, encoding in encodings.items()
        for kinds in [plan.obs_kinds.get(name, [])]
    }
    parts = obs.create_group(PARTS)
    segments: dict[str, list[tuple[str, int]]] = {name: [] for name in encodings}
    hashes = []
    for n, path in enumerate(paths.values()):
        with _open(path) as f:
            group = parts.create_group(str(n))
            for name in encodings:
                source = f["obs"][f["obs"].attrs["_index"] if name == index_name else name]
                if not isinstance(source, h5py.Dataset):
                    # cell names as nullable strings (anndata's default under pandas 3, in a
                    # file we did not write): read, and written in the legacy encoding
                    source = np.asarray(read_elem(source), dtype=object)
                if name == index_name:  # as UTF-8 bytes: hashed as the strings would be
                    hashes.append(pd.util.hash_array(source[()]))
                length = copy_part(source, group, name, dtypes[name], compression)
                segments[name].append((f"{group.name}/{name}", length))
    for name, encoding in encodings.items():
        target = virtual_concat(obs, name, segments[name], dtypes[name])
        target.attrs["encoding-type"] = encoding
        target.attrs["encoding-version"] = "0.2.0"
    _check_unique(obs[index_name], np.concatenate(hashes))
    del hashes
    n_obs = list(plan.n_obs.values())
    for column in columns:
        if column in plain:
            continue
        if column == "sample":
            # from codes: the names as Python strings would be one object per cell, a
            # peak growing with the cells (bench/run.py merge-scale holds it flat)
            codes = np.repeat(np.arange(len(paths), dtype=np.min_scalar_type(len(paths))), n_obs)
            values: Any = pd.Categorical.from_codes(codes, categories=list(paths))
        else:
            parts = []
            for path in paths.values():
                with _open(path) as f:
                    parts.append(_column_part(f, column))
            values = _concat_column(parts, n_obs)
        write_elem(obs, column, values)
    if columns:  # an empty object array has no HDF5 type; write_elem stored it empty
        obs.attrs["column-order"] = np.array(columns, dtype=object)


def _check_unique(names: h5py.Dataset, hashes: np.ndarray) -> None:
    """Refuse cell names that occur twice (found by 64-bit hashes, confirmed by name)."""
    # a sorted copy (8 bytes per cell) rather than np.unique's index and count arrays
    ordered = np.sort(hashes)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    del ordered
    for value in repeated:
        same = np.flatnonzero(hashes == value)
        values = names.asstr()[same]
        if len(set(values)) < len(values):
            dup = pd.Index(values)[pd.Index(values).duplicated()][0]
            raise ScingestError(f"cell name {dup!r} occurs in more than one checkpoint")


def _digest(names: Iterable[str]) -> str:
    """sha256 of the names joined by NUL, as UTF-8 (:func:`_gene_names` gets the same digest
    from the stored bytes)."""
    return hashlib.sha256("\0".join(map(str, names)).encode()).hexdigest()


def _gene_names(var: h5py.Group, known: Mapping[str, pd.Index]) -> tuple[pd.Index, str]:
    """A stored ``var``'s gene names and their :func:`_digest`. The digest is taken from
    the stored UTF-8 bytes, so a gene list seen before (``known``, by digest: samples of
    one reference) is not decoded again."""
    stored = var[var.attrs["_index"]]
    if stored.attrs.get("encoding-type") == "string-array" and stored.dtype.kind == "O":
        raw = stored[()]
        if all(isinstance(v, bytes) for v in raw[:1]):
            digest = hashlib.sha256(b"\0".join(raw)).hexdigest()
            if digest in known:
                return known[digest], digest
            names = pd.Index(np.array([v.decode() for v in raw], dtype=object))
            return names, digest
    names = pd.Index(read_elem(stored))
    return names, _digest(names)


def _var_columns(var: h5py.Group, names: pd.Index, columns: list[str] | None) -> pd.DataFrame:
    """The stored ``var`` over ``names`` with ``columns`` only (all when ``None``)."""
    order = list(var.attrs.get("column-order", []))
    wanted = order if columns is None else [c for c in order if c in columns]
    return pd.DataFrame({c: _read_column(var[c]) for c in wanted}, index=names, columns=wanted)


def _read_column(stored: h5py.Dataset | h5py.Group) -> Any:
    """A stored dataframe column: a plain array read directly (anndata's ``read_elem``
    costs more than the read itself for the short columns of ``var``), others by anndata."""
    if isinstance(stored, h5py.Dataset) and stored.attrs.get("encoding-type") == "array":
        return stored[()]
    return read_elem(stored)


def _genes_map(f: h5py.File, sample: str, plan: _Plan, digest: str) -> np.ndarray | None:
    """Positions of a sample's genes among the merged ones; ``None`` when they are the same
    (known from the digests, without reading the genes again). Maps are kept per distinct
    gene list (a few references), not per sample."""
    assert plan.genes is not None
    own = plan.gene_digests[sample]
    if own == digest:
        return None
    if own not in plan.gene_maps:
        plan.gene_maps[own] = _column_map(_index(f["var"]), plan.genes)
    return plan.gene_maps[own]


def _column_map(source: pd.Index, target: pd.Index) -> np.ndarray | None:
    """Positions of ``source`` in ``target`` (-1 where absent); ``None`` when identical."""
    if source.equals(target):
        return None
    return target.get_indexer(source)


def _write_matrices(
    out: h5py.File,
    paths: Mapping[str, Path],
    plan: _Plan,
    *,
    compression: Compression,
    block_nnz: int,
    threads: int | None = None,
) -> tuple[dict[str, pd.Index | None], dict[str, str]]:
    """Write X, the shared layers and the ``obsm`` matrices (see :class:`CsrConcat`).

    A layer that every sample stores the same as ``X`` (the checkpoints' counts) is stored
    once: ``layers/{name}`` is a hard link to ``X``'s group, which every HDF5 reader
    follows and anndata reads as a second, independent array. Returns the ``obsm`` entries
    written, with their feature names, and per sample how its ``X`` was written.
    """
    assert plan.genes is not None and plan.layers is not None
    widths = plan.obsm_widths
    obsm_keys = []
    for k, names in plan.obsm.items():
        if names is None and len(widths[k]) > 1:
            logger.warning(
                "obsm[%r] has different widths across samples and no feature names: "
                "left out of the merge",
                k,
            )
            continue
        width = len(names) if names is not None else next(iter(widths[k]))
        obsm_keys.append((k, f"obsm/{k}", names, width))
    linked = [
        f"layers/{k}"
        for k in plan.layers
        if all(f"layers/{k}" in twins for twins in plan.twins.values())
        and plan.dtypes[f"layers/{k}"] == plan.dtypes["X"]
    ]
    keys = ["X", *(f"layers/{k}" for k in plan.layers if f"layers/{k}" not in linked)]
    virtual = _copyable(paths, plan, keys, obsm_keys, compression)
    modes: dict[str, str] = {}
    digest = _digest(plan.genes)
    helpers = workers(threads) - 1 if threads is not None else workers()
    with ThreadPoolExecutor(helpers) if helpers else nullcontext() as pool:
        targets = {
            key: CsrConcat(
                out,
                key,
                len(plan.genes),
                plan.dtypes[key],
                compression=compression,
                pool=pool,
                virtual=virtual[key],
                threads=threads,
            )
            for key in keys
        }
        for _, key, _, width in obsm_keys:
            targets[key] = CsrConcat(
                out,
                key,
                width,
                plan.dtypes[key],
                compression=compression,
                pool=pool,
                virtual=virtual[key],
                threads=threads,
            )
        for sample, path in paths.items():
            with _open(path) as f:
                genes_map = _genes_map(f, sample, plan, digest)
                for key in keys:
                    if (
                        key in plan.twins[sample]
                        and virtual[key]
                        and virtual["X"]
                        and targets[key].dtype == targets["X"].dtype
                    ):
                        targets[key].add_like(targets["X"])  # the same values: stored once
                        continue
                    mode = targets[key].add(f[key], column_map=genes_map, block_nnz=block_nnz)
                    if key == "X":
                        modes[sample] = mode
                for k, key, names, _ in obsm_keys:
                    if sample not in plan.obsm_samples[k]:
                        targets[key].add_empty(plan.n_obs[sample])
                        continue
                    column_map = (
                        None if names is None else _column_map(read_feature_names(f, k), names)
                    )
                    targets[key].add(f[key], column_map=column_map, block_nnz=block_nnz)
        for target in targets.values():
            target.close()
    for key in linked:
        out[key] = out["X"]
    n_obs = list(plan.n_obs.values())
    for k, _, _, _ in obsm_keys:
        if len(plan.obsm_samples[k]) < len(paths):
            column = has_obsm_column(k)
            if column in out["obs"]:
                raise ScingestError(
                    f"obs column {column!r} of a checkpoint clashes with the column the merge "
                    f"writes to say which cells have obsm[{k!r}]"
                )
            present = [sample in plan.obsm_samples[k] for sample in paths]
            write_elem(out["obs"], column, np.repeat(present, n_obs))
            order = list(out["obs"].attrs["column-order"])
            out["obs"].attrs["column-order"] = np.array([*order, column], dtype=object)
            logger.warning(
                "obsm[%r] is in only %d of %d samples: kept, with empty rows for the cells of "
                "the others; obs[%r] says which cells have it",
                k,
                len(plan.obsm_samples[k]),
                len(paths),
                column,
            )
    return {k: names for k, _, names, _ in obsm_keys}, modes


#: How a sample's X went into the merged file (the report's ``x_merge`` column).
_MODES = {
    "copy": "copied as stored (compressed chunks, indptr rebased)",
    "remap": "copied with gene indices re-mapped (genes appended by the join)",
    "reindex": "re-indexed row by row (genes reordered or dropped, or stored otherwise)",
}


def _copyable(
    paths: Mapping[str, Path],
    plan: _Plan,
    keys: list[str],
    obsm_keys: list[tuple[str, str, pd.Index | None, int]],
    compression: Compression,
) -> dict[str, bool]:
    """Per matrix, whether every sample's part can be copied (or only its indices
    re-mapped): then it is joined as parts (:class:`CsrConcat` ``virtual``); otherwise,
    since every row is re-encoded anyway, it is written as one plain dataset."""
    assert plan.genes is not None
    result = dict.fromkeys([*keys, *(key for _, key, _, _ in obsm_keys)], True)
    digest = _digest(plan.genes)
    for sample, path in paths.items():
        with _open(path) as f:
            genes_map = _genes_map(f, sample, plan, digest)
            for key in keys:
                if key != "X" and key in plan.twins[sample]:
                    continue  # shares X's part
                mode = concat_mode(f[key], plan.dtypes[key], compression, genes_map)
                result[key] &= mode != "reindex"
            for k, key, names, _ in obsm_keys:
                if sample in plan.obsm_samples[k]:
                    column_map = (
                        None if names is None else _column_map(read_feature_names(f, k), names)
                    )
                    mode = concat_mode(f[key], plan.dtypes[key], compression, column_map)
                    result[key] &= mode != "reindex"
    return result


def merge_report(plan: _Plan) -> pd.DataFrame:
    """Per sample, how many genes the join keeps, drops or fills.

    Counts alone suffice: a sample's genes are unique, the inner join's genes are in every
    sample and the outer join's hold every sample's, so a sample keeps the smaller of its
    gene count and the merged one.

    Parameters
    ----------
    plan
        The merge's plan (one pass over the inputs' annotations).

    Returns
    -------
    One row per sample: ``sample``, ``cells``, ``genes``, ``genes_in_merged``,
    ``genes_dropped`` (the sample's genes an inner join removes) and ``genes_filled``
    (genes an outer join adds to the sample as zeros).
    """
    assert plan.genes is not None
    merged = len(plan.genes)
    rows = []
    for sample, n_genes in plan.n_genes.items():
        kept = min(n_genes, merged)
        rows.append(
            {
                "sample": sample,
                "cells": plan.n_obs[sample],
                "genes": n_genes,
                "genes_in_merged": merged,
                "genes_dropped": n_genes - kept,
                "genes_filled": merged - kept,
            }
        )
    return pd.DataFrame(rows)


def merge_checkpoints(
    checkpoints: Mapping[str, str | PathLike[str]],
    out: str | PathLike[str],
    *,
    join: Join = "inner",
    report: str | PathLike[str] | None = None,
    compression: Compression = "none",
    block_nnz: int = BLOCK_NNZ,
    threads: int | None = None,
) -> pd.DataFrame:
    """Concatenate sample checkpoints on disk into ``out`` and return the merge report.

    The output follows ``anndata.concat`` (``merge="same"``) and the checkpoint contract
    (:mod:`scingest.checkpoint`); memory is bounded by ``block_nnz`` stored values, one
    column of ``obs`` and the genes, whatever the number of samples.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path. Samples are taken in name order.
    out
        The merged h5ad; written under a temporary name and renamed when complete.
    join
        ``inner``: the genes in every sample (as the scanpy tutorial); ``outer``: all
        genes, absent ones as zeros. Genes are in the first sample's order, an outer join
        appending new genes as they appear.
    report
        Where to write the report as TSV too (optional).
    compression
        ``none``, ``lzf`` or ``gzip``, for every matrix and ``obs`` column written.
    block_nnz
        Stored values read at once when rows have to be re-indexed.
    threads
        CPUs the merge may keep busy (the job's declared threads): the calling thread
        reads and re-indexes, ``threads - 1`` others compress (``1``: all in one);
        ``None``: every CPU the process may use.

    Returns
    -------
    The report, one row per sample (:func:`merge_report`) plus ``x_merge``: how its ``X``
    was written, ``copy`` (stored chunks copied), ``remap`` (values copied, gene indices
    re-mapped) or ``reindex`` (re-indexed row by row).

    Raises
    ------
    ScingestError
        For an unknown ``join`` or ``compression``, no checkpoints, an inner join that
        leaves no gene, a cell name in two checkpoints, or an input that breaks the
        checkpoint contract (duplicate genes, matrices not stored as CSR).

    Notes
    -----
    - Cells keep their ``obs_names`` (``{sample}-{barcode}``); ``obs["sample"]`` is the
      categorical batch label; ``obs`` columns missing from a sample are missing values
      there.
    - Genes an inner join drops are counted per sample in the report and logged, never
      dropped silently.
    - ``var`` columns that agree across samples are kept, and gene annotations (symbols,
      ids, feature types, genome) even where some genes disagree (:class:`VarMerger`);
      the log names the columns left out and why.
    - ``X`` and the layers every sample has are merged; a layer every sample stores the
      same as ``X`` (the counts) is stored once, as a hard link to ``X``.
    - ``obsm`` matrices kept by the readers (other feature types) are aligned by feature
      name with the same join, over the samples that have them: the cells of the others
      get empty rows and ``obs["has_{key}"]`` says which cells have it.
    """
    if join not in ("inner", "outer"):
        raise ScingestError(f"join must be inner or outer, not {join!r}")
    check_compression(compression)
    if not checkpoints:
        raise ScingestError("nothing to merge: no sample checkpoints")
    paths = {s: Path(p) for s, p in sorted(checkpoints.items())}
    plan = _plan(paths, join)
    assert plan.genes is not None
    if len(plan.genes) == 0:
        raise ScingestError(
            "the samples share no gene, so an inner join would leave nothing: check that all "
            "samples use the same gene naming (symbols vs ids) or set join: outer"
        )
    table = merge_report(plan)
    for row in table.itertuples():
        if row.genes_dropped:
            share = row.genes_dropped / row.genes
            logger.warning(
                "%s: the inner join drops %d of its %d genes (%.1f%%, not in every sample)%s",
                row.sample,
                row.genes_dropped,
                row.genes,
                100 * share,
                _WAY_OUT if share >= LARGE_DROP else "",
            )
        if row.genes_filled:
            logger.info(
                "%s: the outer join adds %d genes absent from it, as zero counts",
                row.sample,
                row.genes_filled,
            )
    with new_h5ad(out) as f:
        _write_obs(f, paths, plan, compression=compression)
        var = plan.var.result(plan.genes)
        write_elem(f, "var", var)
        logger.info("var columns kept: %s", ", ".join(var.columns) or "none")
        for column, why in plan.var.left_out.items():
            logger.info("var column %s left out: %s", column, why)
        obsm, modes = _write_matrices(
            f, paths, plan, compression=compression, block_nnz=block_nnz, threads=threads
        )
        table["x_merge"] = table["sample"].map(modes)
        for mode, samples in table.groupby("x_merge")["sample"]:
            logger.info("X of %d sample(s) %s: %s", len(samples), _MODES[mode], ", ".join(samples))
        uns: dict[str, Any] = {
            PROVENANCE: h5ad_safe(
                {
                    "samples": plan.uns,
                    "merge": {
                        "join": join,
                        "report": {c: table[c].tolist() for c in table.columns},
                    },
                    "versions": package_versions(),
                }
            )
        }
        if obsm:
            uns[FEATURE_NAMES] = {
                k: np.asarray(names, dtype=object) for k, names in obsm.items() if names is not None
            }
        write_elem(f, "uns", uns)
    if report is not None:
        with atomic_path(report) as tmp:
            table.to_csv(tmp, sep="\t", index=False)
    logger.info(
        "merged %d samples: %d cells x %d genes (%s join)",
        len(paths),
        int(table["cells"].sum()),
        len(plan.genes),
        join,
    )
    return table
