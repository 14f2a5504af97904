"""A cell collection of the checkpoints, queried without loading it: a TileDB-SOMA experiment
kept in step by appends (:mod:`.soma`), or a cellarr dataset rebuilt whenever a checkpoint
changes (:mod:`.cellarr`). What both take from a checkpoint, and how a store built beside
its place is swapped in, is :mod:`.common`'s.

Either store is the job's *state*, kept across runs; the job's declared output is a
manifest beside it, one line per sample (Snakemake deletes declared outputs before a job
runs, so the store itself cannot be one).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

from ..errors import ScingestError
from .cellarr import build_cellarr_collection
from .soma import build_soma_collection


def build_collection(
    checkpoints: Mapping[str, str | PathLike[str]],
    store: str | PathLike[str],
    *,
    kind: str,
    manifest: str | PathLike[str],
) -> dict[str, list[str]]:
    """The workflow's entry: a ``soma`` store kept in step, or a ``cellarr`` one rebuilt.

    Parameters
    ----------
    checkpoints
        Sample name -> checkpoint path.
    store
        The collection.
    kind
        ``soma`` (:func:`~.soma.build_soma_collection`) or ``cellarr``
        (:func:`~.cellarr.build_cellarr_collection`).
    manifest
        The manifest file (the job's declared output).

    Returns
    -------
    The samples by what was done with them.

    Raises
    ------
    ScingestError
        For another ``kind``.
    """
    if kind == "soma":
        return build_soma_collection(checkpoints, store, manifest=manifest)
    if kind == "cellarr":
        return build_cellarr_collection(checkpoints, store, manifest=manifest)
    raise ScingestError(f"collection: expected none, soma or cellarr, got {kind!r}")
