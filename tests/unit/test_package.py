"""scingest is a real package: it builds (sdist and wheel that `twine check` accepts), installs
from the wheel into a clean virtual environment and reads a count file outside the clone,
and reports one version, pyproject.toml's, also in every checkpoint's provenance."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import h5py
import pytest

import scingest
from conftest import REPO
from scingest.sample import build_sample, write_h5ad
from scingest.sheet import SHEET_SCHEMA_PATH

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

#: a GEO-style dense matrix: genes x cells, header of barcodes; its counts are the oracle
GENES = ["MT-ND1", "ACTB", "CD3E", "LYZ", "MS4A1"]
CELLS = ["AAACCTGAGAAACCAT-1", "AAACCTGAGAAACCGC-1", "AAACCTGAGAAACCTA-1", "AAACCTGAGAAACGAG-1"]
COUNTS = [  # genes x cells
    [3, 0, 1, 2],
    [10, 7, 0, 5],
    [0, 2, 0, 0],
    [1, 0, 9, 4],
    [0, 1, 0, 6],
]


def write_geo_csv(path: Path) -> None:
    """The matrix as GEO serves it, written with the standard library only."""
    lines = ["," + ",".join(CELLS)]
    lines += [gene + "," + ",".join(map(str, row)) for gene, row in zip(GENES, COUNTS, strict=True)]
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines) + "\n")


def test_the_version_is_pyprojects_everywhere():
    assert scingest.__version__ == VERSION
    # the metadata pip recorded when it installed this checkout (make install: editable)
    assert metadata.version("scingest") == VERSION


def test_each_checkpoint_records_the_version(tmp_path):
    path = tmp_path / "GSM1_Ctrl1_count_matrix.csv.gz"
    write_geo_csv(path)
    out = tmp_path / "Ctrl1.h5ad"
    write_h5ad(build_sample(path, sample="Ctrl1"), out)
    with h5py.File(out, "r") as f:
        assert f["uns/scingest/versions/scingest"][()].decode() == VERSION


def test_the_sheet_schema_is_package_data():
    package = Path(scingest.__file__).parent
    assert SHEET_SCHEMA_PATH.is_file() and package in SHEET_SCHEMA_PATH.parents
    assert not (REPO / "workflow" / "schemas" / "samples.schema.yaml").exists()  # one copy
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = data["package-data"]["scingest"]
    assert any(SHEET_SCHEMA_PATH.relative_to(package).match(p) for p in shipped)


#: run by the wheel's interpreter, in a folder outside the clone
WHEEL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from importlib import metadata

    import scingest
    from scingest.discovery import discover_samples
    from scingest.provenance import package_versions
    from scingest.readers import read_counts

    adata = read_counts("data/GSM1_Ctrl1_count_matrix.csv.gz")
    sheet = discover_samples("data", sys.argv[1])
    files = sorted(
        m.__file__ for name, m in sys.modules.items()
        if name.split(".")[0] == "scingest" and getattr(m, "__file__", None)
    )
    print(json.dumps({
        "version": scingest.__version__,
        "metadata": metadata.version("scingest"),
        "provenance": package_versions()["scingest"],
        "files": files,
        "path": sys.path,
        "obs": adata.obs_names.tolist(),
        "var": adata.var_names.tolist(),
        "x": adata.X.toarray().tolist(),
        "dtype": str(adata.X.dtype),
        "format": adata.X.format,
        "sheet": sheet.astype(str).to_dict("records"),
    }))
    """
)


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    proc = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """`python -m build`: the sdist, then the wheel built from it (as PyPI would get them),
    with this environment's setuptools (no download)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO)
    return out


def test_build_gives_an_sdist_and_a_wheel_twine_accepts(dist):
    names = sorted(p.name for p in dist.iterdir())
    assert names == [f"scingest-{VERSION}-py3-none-any.whl", f"scingest-{VERSION}.tar.gz"]
    proc = run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    assert proc.stdout.count("PASSED") == 2, proc.stdout


def test_the_wheel_reads_counts_in_a_clean_venv_outside_the_clone(dist, tmp_path):
    """A venv without system site-packages gets the wheel alone (`--no-deps`, no index); the
    dependencies come from this environment's site-packages through a .pth file, which adds
    that folder to sys.path without running its .pth files (so not this checkout's editable
    install). The interpreter runs in a folder outside the clone."""
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    purelib = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
    )
    here = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (purelib / "dependencies-of-the-test-env.pth").write_text(
        "".join(f"{p}\n" for p in sorted(here))
    )
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel
    )

    work = tmp_path / "analysis"
    (work / "data").mkdir(parents=True)
    write_geo_csv(work / "data" / "GSM1_Ctrl1_count_matrix.csv.gz")
    pattern = r"^(?P<sample_id>GSM\d+)_(?P<sample>[A-Za-z]+\d+)_count_matrix\.csv\.gz$"
    proc = run(python, "-c", WHEEL_SCRIPT, pattern, cwd=work)
    got = json.loads(proc.stdout.splitlines()[-1])

    assert REPO not in work.parents and work != REPO
    # every scingest module came from the wheel, none from the clone; the only folder of the
    # clone on sys.path is this environment's site-packages (here: .venv), for the dependencies
    assert got["files"] and all(Path(f).is_relative_to(purelib) for f in got["files"]), got["files"]
    clone = [p for p in got["path"] if p and Path(p).is_relative_to(REPO) and p not in here]
    assert not clone, got["path"]
    assert got["version"] == got["metadata"] == got["provenance"] == VERSION
    # the counts as written: cells x genes, sparse CSR float32
    assert got["obs"] == CELLS and got["var"] == GENES
    assert got["x"] == [list(map(float, col)) for col in zip(*COUNTS, strict=True)]
    assert (got["format"], got["dtype"]) == ("csr", "float32")
    # the sheet, validated against the schema the wheel ships
    assert got["sheet"] == [
        {
            "sample": "Ctrl1",
            "path": "data/GSM1_Ctrl1_count_matrix.csv.gz",
            "format": "csv",
            "sample_id": "GSM1",
        }
    ]
