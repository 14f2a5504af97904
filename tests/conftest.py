"""Shared fixtures: small GEO-style folders made in the test, and a real workflow runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "scripts"))

from scingest.synthetic import synthetic_counts, write_dense  # noqa: E402

#: (GSM id, sample, cells, seed) of the small folder most workflow tests run on
GEO_SAMPLES = [
    ("GSM5320459", "Ctrl1", 40, 11),
    ("GSM5320463", "Pre1", 30, 12),
    ("GSM5320467", "Post2", 25, 13),
]


@dataclass
class Run:
    returncode: int
    output: str
    workdir: Path

    def __str__(self) -> str:
        return self.output


def snakemake_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def run_workflow(
    workdir: Path,
    *args: str,
    config: dict[str, object] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> Run:
    """Run the real workflow in ``workdir`` (``snakemake --directory``) and return its output."""
    cmd = [
        *snakemake_cmd(),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        "--cores",
        "2",
        "--show-failed-logs",
        *args,
    ]
    if config:
        cmd += ["--config", *(f"{k}={v}" for k, v in config.items())]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir
    )
    run = Run(proc.returncode, proc.stdout + proc.stderr, workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{run.output[-6000:]}")
    return run


def planned_jobs(workdir: Path, config: dict[str, object] | None = None) -> dict[str, int]:
    """Rule name -> number of jobs a dry run would execute."""
    run = run_workflow(workdir, "--dry-run", "--quiet", "rules", config=config)
    jobs: dict[str, int] = {}
    in_table = False
    for line in run.output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
    return jobs


def make_geo_folder(
    folder: Path, samples: Sequence[tuple[str, str, int, int]] = GEO_SAMPLES, n_genes: int = 60
) -> dict[str, tuple[list[str], list[str], object]]:
    """Write GEO-style ``GSM*_{sample}_count_matrix.csv.gz`` files; return their contents."""
    contents = {}
    for gsm, name, n_cells, seed in samples:
        genes, cells, counts = synthetic_counts(n_genes, n_cells, seed=seed, median_counts=300)
        write_dense(folder / f"{gsm}_{name}_count_matrix.csv.gz", genes, cells, counts)
        contents[name] = (genes, cells, counts)
    return contents


@pytest.fixture
def geo_project(tmp_path: Path) -> tuple[Path, dict]:
    """A working directory with data/ holding three GEO-style samples."""
    contents = make_geo_folder(tmp_path / "data")
    return tmp_path, contents


@pytest.fixture
def workflow() -> Callable[..., Run]:
    return run_workflow


#: Tests under tests/workflow run the real workflow: the folder gives them the ``workflow``
#: marker (``-m "not workflow"`` leaves them out). Applied here rather than by a conftest of
#: their own, which would be a second module named ``conftest`` beside the one tests import
#: their fixtures from.
WORKFLOW_TESTS = Path(__file__).resolve().parent / "workflow"


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if WORKFLOW_TESTS in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.workflow)
