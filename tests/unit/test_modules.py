"""The library's shape: no import circle among its files, and the modules the workflow imports
at every start (its parse: the sheet, the formats, the options) stay cheap to import."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from conftest import REPO

SCRIPTS = REPO / "scripts"
LIBRARY = SCRIPTS / "scingest"


def module_of(path: Path) -> str:
    parts = list(path.relative_to(SCRIPTS).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_of(p): p for p in LIBRARY.rglob("*.py")}


def imported(path: Path) -> set[str]:
    """The library's modules a file imports, at its top or inside its functions (not those
    under ``if TYPE_CHECKING:``, which never run): each import's own module, not the
    packages above it."""
    name = module_of(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    tree = ast.parse(path.read_text())
    never_run = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in never_run:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                found.add(target if target in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


def test_no_import_circle_among_the_librarys_files():
    graph = {name: imported(path) for name, path in MODULES.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")


def test_the_graph_sees_imports_inside_functions():
    """An import inside a function is an edge too (a circle through one still tangles)."""
    assert "scingest.readers._features" in imported(LIBRARY / "formats" / "h5.py")
    assert "scingest.formats.cellranger" in imported(LIBRARY / "discovery.py")


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        (
            ["scingest.formats", "scingest.options", "scingest.settings"],
            ["numpy", "pandas", "scipy", "h5py", "anndata", "numba", "zarr", "scanpy"],
        ),
        (
            ["scingest.discovery", "scingest.sheet", "scingest.resources"],
            ["h5py", "anndata", "numba", "zarr"],
        ),
    ],
)
def test_what_the_workflow_imports_at_every_start_is_cheap(modules, absent):
    code = (
        f"import sys; import {', '.join(modules)}; "
        f"print([m for m in {absent!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=SCRIPTS, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
