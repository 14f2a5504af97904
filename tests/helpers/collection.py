"""The collection extra in the tests: its packages, or a skip that says why, and ways to make
an installed TileDB-SOMA look missing or incompatible to a workflow run."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

#: set by `make test-collection` (CI's collection run): a missing package fails, not skips
REQUIRE = "SCINGEST_REQUIRE_COLLECTION"


def collection_package(name: str) -> ModuleType:
    """The collection extra's package ``name`` (``tiledbsoma``, ``cellarr``), imported.

    Skips the calling test or module where it is not installed: TileDB-SOMA 2.3 and
    cellarr 0.6 require pandas < 3, so the extra does not install beside pandas 3 (README,
    "Supported versions"). Under ``SCINGEST_REQUIRE_COLLECTION=1`` it fails instead.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        why = f"{name} cannot be imported ({err}): the collection extra needs pandas < 3"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{REQUIRE}=1, but {why}", pytrace=False)
        pytest.skip(f"{why}; `make test-collection` runs these tests", allow_module_level=True)


def hide_package(folder: Path, name: str) -> Path:
    """A folder that, first on ``PYTHONPATH``, makes ``name`` fail to import as if it were
    not installed (``sys.modules[name] = None``, Python's own way to block an import, set by
    a ``sitecustomize`` module at start-up). Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(f"import sys\n\nsys.modules[{name!r}] = None\n")
    return folder


def fake_distribution(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """A folder that, first on ``PYTHONPATH``, holds an importable package ``name`` whose
    installed metadata (``METADATA``'s ``Requires-Dist``) is ``requires``, found before any
    installed one: how a TileDB-SOMA installed for another pandas looks. Returns the folder."""
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "__init__.py").write_text("")
    info = folder / f"{name}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {req}" for req in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    return folder
