"""scingest: single-cell count files to checkpointed, QC-annotated, sparse AnnData.

The library behind the scingest Snakemake workflow. It never imports snakemake, so a
notebook can use the same reader the workflow uses::

    from scingest.readers import read_counts
    adata = read_counts("GSM5320459_Ctrl1_count_matrix.csv.gz")
"""

from __future__ import annotations

from pathlib import Path


def _version() -> str:
    """scingest's version, stated once: in pyproject.toml.

    Imported from a source checkout (the workflow puts ``scripts/`` first on ``sys.path``),
    it is the checkout's ``pyproject.toml``, which the code run came with, even where
    another scingest is installed in the environment; installed from a wheel, the
    distribution's metadata (which setuptools wrote from that same file).
    """
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        project = tomllib.loads(pyproject.read_text()).get("project", {})
        if project.get("name") == "scingest":
            return str(project["version"])
    from importlib import metadata

    try:
        return metadata.version("scingest")
    except metadata.PackageNotFoundError:  # a copy of the folder, neither checkout nor install
        return "0+unknown"


__version__ = _version()

from .errors import ScingestError  # noqa: E402

__all__ = ["ScingestError", "__version__"]
