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

#: The packages whose versions a checkpoint records (they decide what it holds).
PACKAGES = ("anndata", "scanpy", "numpy", "scipy", "pandas", "h5py", "numba")


def package_versions() -> dict[str, str]:
    """Versions of scingest, Python and the packages that shape a checkpoint.

    Returns
    -------
    Package name -> version (``scingest``, ``python`` and :data:`PACKAGES`).
    """
    versions = {"scingest": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[name] = "not installed"
    return versions


def file_provenance(path: str | PathLike[str]) -> dict[str, list[Any]]:
    """Path, size and sha256 of one file of an input, as parallel lists.

    Lists rather than a mapping keyed by path: h5ad would read the ``/`` of a path key as
    nested groups. The files of an input are listed by :func:`scingest.formats.input_files`
    (the one owner of that rule); the lists of each file are concatenated.

    Parameters
    ----------
    path
        One file.

    Returns
    -------
    ``files`` (the path as text), ``sizes`` (bytes) and ``sha256`` (hex), one item each.
    """
    path = Path(path)
    return {"files": [str(path)], "sizes": [path.stat().st_size], "sha256": [sha256sum(path)]}


def h5ad_safe(value: Any) -> Any:
    """A value h5ad can store in ``uns``.

    Parameters
    ----------
    value
        A config value, provenance record or any nesting of mappings and lists of them.

    Returns
    -------
    The value with ``None`` as "", mappings recursed with text keys, and lists of mixed
    types (which h5ad cannot store) as lists of text.
    """
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
