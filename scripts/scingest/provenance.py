"""Provenance recorded in ``uns["scingest"]``: inputs, versions, configuration."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from importlib import metadata
from os import PathLike
from pathlib import Path
from typing import Any

from . import __version__
from .files import sha256sum

PACKAGES = ("anndata", "scanpy", "numpy", "scipy", "pandas", "h5py", "numba")


def package_versions() -> dict[str, str]:
    """Versions of scingest, Python and the packages that shape a checkpoint."""
    versions = {"scingest": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[name] = "not installed"
    return versions


def input_files(path: str | PathLike[str]) -> list[Path]:
    """The files that make up an input: the file itself, or a folder's files, sorted."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [path]


def file_provenance(path: str | PathLike[str]) -> dict[str, list[Any]]:
    """Path, size and sha256 of each file of an input, as parallel lists.

    Lists rather than a mapping keyed by path: h5ad would read the ``/`` of a path key as
    nested groups.
    """
    files = input_files(path)
    return {
        "files": [str(p) for p in files],
        "sizes": [p.stat().st_size for p in files],
        "sha256": [sha256sum(p) for p in files],
    }


def h5ad_safe(value: Any) -> Any:
    """A value h5ad can store in ``uns``: ``None`` becomes "", nested mappings recursed."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return {str(k): h5ad_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [h5ad_safe(v) for v in value]
        if all(isinstance(v, str) for v in items) or all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in items
        ):
            return items
        return [str(v) for v in items]
    return value
