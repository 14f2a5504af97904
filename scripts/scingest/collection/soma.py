"""A TileDB-SOMA experiment of the checkpoints (``collection: soma``) that grows by appends,
queried without loading it.

The SOMA store ``collection.soma`` is the job's *state*, kept across runs; the job's
declared output is a manifest beside it (:func:`write_manifest`). Each run compares the
checkpoints with the store's ``samples`` table (sha256 of every checkpoint) and

- appends samples it does not hold (time proportional to their cells);
- rebuilds the store (into a hidden folder, swapped in when complete) when a sample it
  holds has changed or is gone;
- writes nothing when nothing changed (and Snakemake does not even start it then).

Writes go through the lower-level SOMA API (``DataFrame.write``, ``SparseNDArray.write`` of
Arrow tables), never ``tiledbsoma.io.from_h5ad``: the checkpoints are read with h5py, so
anndata 0.13's ``layers[None]`` (TileDB-SOMA#4466) never reaches TileDB-SOMA, and the
schema is evolved here (new columns added, missing ones null, types kept).

Crash safety: before a sample is appended, its ``soma_joinid`` ranges are recorded in the
experiment's metadata (``scingest_pending``); then ``var`` (its new genes), ``X``, ``obs``
(one atomic write: a query, which starts from ``obs``, never sees cells whose counts are
not all written) and its ``samples`` row are written, and the record is cleared last. A
run that finds a record deletes what those ranges hold (a rollback to the last complete
state) before anything else. ``soma_joinid`` values are never reused (high-water marks in
the metadata), so a rolled-back range is never confused with later data.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa

from ..checkpoint import csr_group, read_tables
from ..errors import ScingestError
from ..files import sha256sum, write_text_atomic
from ..h5write import BLOCK_NNZ, row_blocks
from .common import LAYER, VAR_TEXT, build_folder, recover_swap, sample_metadata, swap_in

logger = logging.getLogger(__name__)

MEASUREMENT = "RNA"
SAMPLES = "samples"
#: metadata keys of the experiment
PENDING = "scingest_pending"
NEXT_OBS = "scingest_next_obs"
NEXT_VAR = "scingest_next_var"
NEXT_SAMPLE = "scingest_next_sample"
READY = "scingest_store"
#: rows the ``samples`` table can hold (its domain; resizable, but 1 M samples is plenty)
MAX_SAMPLES = 1_000_000

SAMPLES_SCHEMA = pa.schema(
    [
        ("sample", pa.large_string()),
        ("n_cells", pa.int64()),
        ("n_genes", pa.int64()),
        ("obs_joinid_start", pa.int64()),
        ("obs_joinid_stop", pa.int64()),
        ("sha256", pa.large_string()),
        ("path", pa.large_string()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("metadata", pa.large_string()),
    ]
)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint as the collection sees it: name, path, and what identifies its bytes."""

    sample: str
    path: Path
    size: int
    mtime_ns: int
    sha256: str


def _soma():
    try:
        import tiledbsoma
    except ImportError as err:  # pragma: no cover - the extra is part of make install
        raise ScingestError(
            "collection: soma needs TileDB-SOMA: pip install -e '.[collection]'"
        ) from err
    return tiledbsoma


# ---------------------------------------------------------------------------- reading


def iter_count_blocks(path: Path, *, block_nnz: int = BLOCK_NNZ):
    """A checkpoint's ``X`` in row blocks.

    Parameters
    ----------
    path
        A checkpoint.
    block_nnz
        The most stored values per block.

    Yields
    ------
    ``(first row, CSR block)`` pairs, in order.

    Raises
    ------
    ScingestError
        When ``X`` is not a CSR matrix.
    """
    from anndata.io import sparse_dataset

    with h5py.File(path, "r", rdcc_nbytes=0) as f:
        group = csr_group(f, "X")
        matrix = sparse_dataset(group)
        for start, stop in row_blocks(group["indptr"][:], block_nnz):
            yield start, matrix[start:stop]


# ---------------------------------------------------------------------------- types


def _kind(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return "text"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "number"
    return str(t)


def to_arrow_column(values: pd.Series) -> pa.Array:
    """One obs/var column as Arrow.

    Parameters
    ----------
    values
        The column.

    Returns
    -------
    Categoricals as dictionaries of strings (TileDB enumerations), text as large strings,
    numbers and booleans as they are (nullable).
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        strings = values.astype(str).where(values.notna(), None)
        return (
            pa.array(strings, pa.large_string())
            .dictionary_encode()
            .cast(pa.dictionary(pa.int32(), pa.large_string()))
        )
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return pa.Array.from_pandas(values.to_numpy(na_value=None) if values.hasnans else values)
    return pa.array(values.astype(object).where(values.notna(), None), pa.large_string())


def _cast(array: pa.Array, target: pa.DataType, *, column: str, path: Path) -> pa.Array:
    """``array`` as the store's type of ``column``: a column keeps its first type."""
    if array.type == target:
        return array
    if _kind(array.type) != _kind(target):
        raise ScingestError(
            f"column {column!r} is {array.type} here but {target} in the collection "
            "(a column keeps the type of the first sample that had it)",
            path=path,
        )
    try:
        if pa.types.is_dictionary(target):
            if pa.types.is_dictionary(array.type):
                array = array.cast(array.type.value_type)
            return array.cast(pa.large_string()).dictionary_encode().cast(target)
        return array.cast(target)  # safe: refuses 1.5 -> int
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise ScingestError(
            f"column {column!r} ({array.type}) does not fit the collection's {target}: {err}",
            path=path,
        ) from None


def _evolve(sdf: Any, columns: Mapping[str, pa.Array]) -> None:
    """Add the attributes ``columns`` has and the DataFrame lacks (nullable; earlier rows
    read null). TileDB-SOMA's ``update_obs`` does this too but rewrites every row."""
    have = set(sdf.schema.names)
    attrs, enums = {}, {}
    for name, array in columns.items():
        if name in have:
            continue
        t = array.type
        if pa.types.is_dictionary(t):
            attrs[name] = "i"  # int32 indices of an enumeration of large strings
            enums[name] = ("U", False)
        else:
            from tiledbsoma.io._util import get_arrow_str_format

            attrs[name] = get_arrow_str_format(t)
    if attrs:
        logger.info("new columns in %s: %s", Path(sdf.uri).name, ", ".join(attrs))
        sdf._handle._update_dataframe_schema([], attrs, enums)


def _table(
    sdf: Any, joinids: np.ndarray, columns: Mapping[str, pa.Array], *, path: Path
) -> pa.Table:
    """An Arrow table in ``sdf``'s schema: missing columns null, present ones cast."""
    n = len(joinids)
    arrays = {"soma_joinid": pa.array(joinids, pa.int64())}
    for field in sdf.schema:
        if field.name == "soma_joinid":
            continue
        if field.name in columns:
            arrays[field.name] = _cast(
                columns[field.name], field.type, column=field.name, path=path
            )
        else:
            arrays[field.name] = pa.nulls(n, field.type)
    return pa.table(arrays)


# ---------------------------------------------------------------------------- the store


def _create(store: Path, *, dtype: np.dtype) -> None:
    soma = _soma()
    obs_schema = pa.schema([("obs_id", pa.large_string())])
    var_schema = pa.schema([("var_id", pa.large_string())])
    with soma.Experiment.create(str(store)) as exp:
        exp.add_new_dataframe(
            "obs", schema=obs_schema, index_column_names=["soma_joinid"], domain=[(0, 0)]
        )
        exp.add_new_dataframe(
            SAMPLES,
            schema=SAMPLES_SCHEMA,
            index_column_names=["soma_joinid"],
            domain=[(0, MAX_SAMPLES - 1)],
        )
        ms = exp.add_new_collection("ms")
        rna = ms.add_new_collection(MEASUREMENT, soma.Measurement)
        rna.add_new_dataframe(
            "var", schema=var_schema, index_column_names=["soma_joinid"], domain=[(0, 0)]
        )
        x = rna.add_new_collection("X")
        x.add_new_sparse_ndarray(LAYER, type=pa.from_numpy_dtype(dtype), shape=(1, 1))
        exp.metadata.update({NEXT_OBS: 0, NEXT_VAR: 0, NEXT_SAMPLE: 0})
    with soma.Experiment.open(str(store), "w") as exp:
        exp.metadata[READY] = 1  # last: a store without it was killed while being made


def _is_ready(store: Path) -> bool:
    soma = _soma()  # outside the try: a missing package must never look like a bad store
    try:
        with soma.Experiment.open(str(store)) as exp:
            return bool(exp.metadata.get(READY))
    except Exception:  # anything unreadable is rebuilt
        return False


def read_samples(store: str | PathLike[str]) -> pd.DataFrame:
    """The ``samples`` table of a collection.

    Parameters
    ----------
    store
        A SOMA collection.

    Returns
    -------
    One row per complete sample, in the order of its cells (columns of
    :data:`SAMPLES_SCHEMA`).
    """
    soma = _soma()
    with soma.Experiment.open(str(store)) as exp:
        table = exp[SAMPLES].read().concat().to_pandas()
    return table.sort_values("obs_joinid_start").reset_index(drop=True)


def repair(store: Path) -> str | None:
    """Roll back a sample whose append was interrupted.

    Parameters
    ----------
    store
        A SOMA collection.

    Returns
    -------
    The name of the sample rolled back, or ``None`` when no append was pending.
    """
    soma = _soma()
    with soma.Experiment.open(str(store)) as exp:
        pending = exp.metadata.get(PENDING)
    if not pending:
        return None
    record = json.loads(pending)
    obs0, obs1 = record["obs"]
    var0, var1 = record["var"]
    with soma.Experiment.open(str(store), "d") as exp:
        if obs1 > obs0:
            rows = (slice(obs0, obs1 - 1),)  # SOMA slices include their end
            exp.ms[MEASUREMENT].X[LAYER].delete_cells((*rows, slice(None)))
            exp.obs.delete_cells(rows)
        if var1 > var0:
            exp.ms[MEASUREMENT].var.delete_cells((slice(var0, var1 - 1),))
        exp[SAMPLES].delete_cells((slice(record["row"], record["row"]),))
    with soma.Experiment.open(str(store), "w") as exp:
        del exp.metadata[PENDING]
    logger.warning(
        "rolled back sample %s: its append (cells %d-%d) was interrupted",
        record["sample"],
        obs0,
        obs1,
    )
    return record["sample"]


def _grow(store: Path, *, n_obs: int, n_var: int) -> None:
    """Make room for ``n_obs`` cells and ``n_var`` genes (at least doubling: few resizes)."""
    soma = _soma()
    with soma.Experiment.open(str(store)) as exp:
        obs_shape = exp.obs.domain[0][1] + 1
        var_shape = exp.ms[MEASUREMENT].var.domain[0][1] + 1
    if n_obs <= obs_shape and n_var <= var_shape:
        return
    from tiledbsoma.io import resize_experiment

    resize_experiment(
        str(store),
        nobs=max(n_obs, 2 * obs_shape) if n_obs > obs_shape else obs_shape,
        nvars={MEASUREMENT: max(n_var, 2 * var_shape) if n_var > var_shape else var_shape},
    )


def append_sample(store: Path, checkpoint: Checkpoint, *, block_nnz: int = BLOCK_NNZ) -> int:
    """Append one checkpoint to the store (crash-safe: see the module's docstring).

    Parameters
    ----------
    store
        A SOMA collection.
    checkpoint
        The checkpoint and what identifies its bytes.
    block_nnz
        Stored values read and written at once.

    Returns
    -------
    Its number of cells.

    Raises
    ------
    ScingestError
        For duplicate gene names, ``X`` not stored as CSR, or a column whose type differs
        from the collection's.
    """
    soma = _soma()
    path = checkpoint.path
    obs, var = read_tables(path)
    with soma.Experiment.open(str(store)) as exp:
        meta = dict(exp.metadata)
        stored = exp.ms[MEASUREMENT].var.read(column_names=["soma_joinid", "var_id"]).concat()
        obs_schema, var_schema = exp.obs.schema, exp.ms[MEASUREMENT].var.schema
    genes = pd.Index(var.index.astype(str))
    if not genes.is_unique:
        raise ScingestError("expected unique var_names (gene names)", path=path)
    known = pd.Series(
        stored["soma_joinid"].to_numpy(), index=pd.Index(stored["var_id"].to_pylist())
    )
    new_genes = genes[~genes.isin(known.index)]
    obs0, var0, row = int(meta[NEXT_OBS]), int(meta[NEXT_VAR]), int(meta[NEXT_SAMPLE])
    obs1, var1 = obs0 + len(obs), var0 + len(new_genes)
    gene_ids = pd.concat(
        [known, pd.Series(np.arange(var0, var1, dtype=np.int64), index=new_genes)]
    ).reindex(genes)
    column_map = gene_ids.to_numpy(dtype=np.int64)

    var_columns = {"var_id": pa.array(list(new_genes), pa.large_string())}
    for name, values in var.loc[new_genes].items():
        text = name in VAR_TEXT and not pd.api.types.is_numeric_dtype(values.dtype)
        if text or pd.api.types.is_bool_dtype(values.dtype):
            var_columns[name] = to_arrow_column(values)
    obs_columns = {"obs_id": pa.array(obs.index.astype(str), pa.large_string())}
    obs_columns.update({name: to_arrow_column(values) for name, values in obs.items()})
    # a column of the wrong type stops here, before anything is written
    for schema, columns in ((obs_schema, obs_columns), (var_schema, var_columns)):
        for name, array in columns.items():
            if name in schema.names:
                _cast(array, schema.field(name).type, column=name, path=path)

    record = {"sample": checkpoint.sample, "obs": [obs0, obs1], "var": [var0, var1], "row": row}
    with soma.Experiment.open(str(store), "w") as exp:
        exp.metadata.update(
            {PENDING: json.dumps(record), NEXT_OBS: obs1, NEXT_VAR: var1, NEXT_SAMPLE: row + 1}
        )
    _grow(store, n_obs=obs1, n_var=var1)

    with soma.Experiment.open(str(store), "w") as exp:  # new columns, in their own step
        if len(new_genes):
            _evolve(exp.ms[MEASUREMENT].var, var_columns)
        _evolve(exp.obs, obs_columns)

    with soma.Experiment.open(str(store), "w") as exp:
        rna = exp.ms[MEASUREMENT]
        if len(new_genes):
            rna.var.write(_table(rna.var, np.arange(var0, var1), var_columns, path=path))
        x = rna.X[LAYER]
        dtype = x.schema.field("soma_data").type.to_pandas_dtype()
        for start, block in iter_count_blocks(path, block_nnz=block_nnz):
            coo = block.tocoo()
            x.write(
                pa.table(
                    {
                        "soma_dim_0": pa.array(coo.row.astype(np.int64) + obs0 + start),
                        "soma_dim_1": pa.array(column_map[coo.col]),
                        "soma_data": pa.array(coo.data.astype(dtype, copy=False)),
                    }
                )
            )
        # obs last, in one write (one fragment, atomic): queries start from obs
        exp.obs.write(_table(exp.obs, np.arange(obs0, obs1), obs_columns, path=path))
        summary = {
            "sample": checkpoint.sample,
            "n_cells": len(obs),
            "n_genes": len(genes),
            "obs_joinid_start": obs0,
            "obs_joinid_stop": obs1,
            "sha256": checkpoint.sha256,
            "path": str(path),
            "size": checkpoint.size,
            "mtime_ns": checkpoint.mtime_ns,
            "metadata": json.dumps(sample_metadata(obs), default=str),
        }
        samples = exp[SAMPLES]
        samples.write(
            pa.table(
                {"soma_joinid": pa.array([row], pa.int64())}
                | {k: pa.array([v], SAMPLES_SCHEMA.field(k).type) for k, v in summary.items()}
            )
        )
    with soma.Experiment.open(str(store), "w") as exp:
        del exp.metadata[PENDING]  # last: the sample is complete
    return len(obs)


def _identify(sample: str, path: Path, known: Mapping[str, pd.Series] | None) -> Checkpoint:
    """A checkpoint with its sha256, reused from the store when size and mtime agree."""
    stat = path.stat()
    row = (known or {}).get(sample)
    if row is not None and row["size"] == stat.st_size and row["mtime_ns"] == stat.st_mtime_ns:
        digest = row["sha256"]
    else:
        digest = sha256sum(path)
    return Checkpoint(sample, path, stat.st_size, stat.st_mtime_ns, digest)


def _first_dtype(path: Path) -> np.dtype:
    with h5py.File(path, "r") as f:
        return np.dtype(csr_group(f, "X")["data"].dtype)


def _fresh(store: Path, checkpoints: list[Checkpoint]) -> None:
    """Build a store of ``checkpoints`` beside ``store`` and swap it in when complete."""
    build = build_folder(store)
    shutil.rmtree(build, ignore_errors=True)
    dtype = _first_dtype(checkpoints[0].path) if checkpoints else np.dtype(np.float32)
    try:
        _create(build, dtype=dtype)
        for checkpoint in checkpoints:
            n = append_sample(build, checkpoint)
            logger.info("added %s (%d cells)", checkpoint.sample, n)
    except Exception:
        shutil.rmtree(build, ignore_errors=True)
        raise
    swap_in(store)


def write_manifest(store: Path, manifest: str | PathLike[str]) -> pd.DataFrame:
    """Write the manifest: what the store holds, one line per sample (the job's declared
    output).

    Parameters
    ----------
    store
        A SOMA collection.
    manifest
        The TSV file.

    Returns
    -------
    The store's ``samples`` table (:func:`read_samples`).
    """
    table = read_samples(store)
    columns = ["sample", "n_cells", "n_genes", "obs_joinid_start", "sha256", "path"]
    write_text_atomic(manifest, table[columns].to_csv(sep="\t", index=False))
    return table


def build_soma_collection(
    checkpoints: Mapping[str, str | PathLike[str]],
    store: str | PathLike[str],
    *,
    manifest: str | PathLike[str] | None = None,
) -> dict[str, list[str]]:
    """Bring the SOMA collection ``store`` in step with ``checkpoints`` (sample -> h5ad).

    New samples are appended; a changed (sha256) or removed sample rebuilds the store; an
    interrupted append is rolled back first.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path.
    store
        The SOMA collection (created when missing).
    manifest
        Where to write the manifest (:func:`write_manifest`), if anywhere.

    Returns
    -------
    The samples by what was done with them (``added``, ``kept``, ``rebuilt``,
    ``rolled_back``, ``removed``), also logged.
    """
    store = Path(store)
    paths = {sample: Path(p) for sample, p in checkpoints.items()}
    done: dict[str, list[str]] = {
        "added": [],
        "kept": [],
        "rebuilt": [],
        "rolled_back": [],
        "removed": [],
    }
    recover_swap(store)
    if store.exists() and not _is_ready(store):
        logger.warning("%s is incomplete (its creation was interrupted): rebuilding", store)
        shutil.rmtree(store)
    if store.exists():
        rolled = repair(store)
        if rolled:
            done["rolled_back"].append(rolled)
        held = read_samples(store)
        known = {row["sample"]: row for _, row in held.iterrows()}
    else:
        known = {}
    current = [_identify(s, p, known) for s, p in paths.items()]
    changed = [
        c.sample for c in current if c.sample in known and known[c.sample]["sha256"] != c.sha256
    ]
    removed = [s for s in known if s not in paths]
    if not store.exists() or changed or removed:
        if changed or removed:
            logger.info(
                "rebuilding %s: changed %s, removed %s",
                store,
                ", ".join(changed) or "none",
                ", ".join(removed) or "none",
            )
        _fresh(store, current)
        done["rebuilt" if known else "added"] = [c.sample for c in current]
        done["removed"] = removed
    else:
        for checkpoint in current:
            if checkpoint.sample in known:
                done["kept"].append(checkpoint.sample)
                continue
            try:
                n = append_sample(store, checkpoint)
            except Exception:
                repair(store)  # leave the store as it was; a kill is repaired by the next run
                raise
            logger.info("appended %s (%d cells)", checkpoint.sample, n)
            done["added"].append(checkpoint.sample)
    logger.info(
        "collection %s: %s",
        store,
        "; ".join(f"{k} {len(v)}: {', '.join(v)}" for k, v in done.items() if v) or "no change",
    )
    if manifest is not None:
        write_manifest(store, manifest)
    return done
