"""`collection: soma` where TileDB-SOMA cannot run stops the workflow when it is parsed, before
any job, with the reason and the ways out (scingest.settings.collection_problem).

TileDB-SOMA 2.3 requires pandas < 3, so beside pandas 3 (CI's Python 3.13 run) it is not
installed at all and these runs meet the real case; where it is installed, it is hidden
from the run (Python's import block, ``sys.modules["tiledbsoma"] = None``) or shadowed by
one whose metadata this environment does not satisfy."""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

import pytest

from helpers.collection import fake_distribution, hide_package

SOMA = {"input_dir": "data", "collection": "soma"}
#: the ways out, as the message gives them
WAYS_OUT = (
    "--software-deployment-method conda",
    "envs/collection.yaml",
    "pandas < 3",
    "collection: none",
)


def without_tiledbsoma(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of the workflow from here on find no TileDB-SOMA: it is not installed, or a
    sitecustomize on PYTHONPATH blocks its import."""
    if importlib.util.find_spec("tiledbsoma") is not None:
        folder = hide_package(tmp_path / "hide", "tiledbsoma")
        monkeypatch.setenv("PYTHONPATH", str(folder))


def assert_stopped_before_any_job(run) -> None:
    assert run.returncode != 0
    assert "WorkflowError" in run.output and "common.smk" in run.output
    for way in WAYS_OUT:
        assert way in run.output, f"the message does not name {way!r}:\n{run.output}"
    # stopped while parsing: no DAG, no job, nothing written
    assert "Building DAG of jobs" not in run.output
    assert "rule ingest_sample" not in run.output
    for folder in ("results", "logs", "benchmarks"):
        assert not (run.workdir / folder).exists(), folder


def test_soma_without_tiledbsoma_stops_before_any_job(geo_project, workflow, monkeypatch):
    workdir, _ = geo_project
    without_tiledbsoma(workdir, monkeypatch)
    run = workflow(workdir, config=SOMA, check=False)
    assert_stopped_before_any_job(run)
    assert "collection: soma needs tiledbsoma" in run.output
    assert "tiledbsoma cannot be imported here (not installed)" in run.output


def test_soma_with_a_tiledbsoma_made_for_another_pandas_stops_before_any_job(
    geo_project, workflow, monkeypatch
):
    """As after `pip install 'pandas>=3'` over TileDB-SOMA 2.3 (which requires pandas < 3):
    installed, but its requirements unmet. Here: a TileDB-SOMA whose metadata requires a
    pandas older than this one."""
    workdir, _ = geo_project
    major = int(metadata.version("pandas").split(".")[0])
    folder = fake_distribution(workdir / "fake", "tiledbsoma", "2.3.0", [f"pandas<{major}"])
    monkeypatch.setenv("PYTHONPATH", str(folder))
    run = workflow(workdir, config=SOMA, check=False)
    assert_stopped_before_any_job(run)
    installed = metadata.version("pandas")
    assert (
        f"tiledbsoma 2.3.0 is installed, but needs pandas<{major} (installed: {installed})"
        in run.output
    )


def test_the_check_is_left_to_conda_when_rules_run_in_conda_environments(
    geo_project, workflow, monkeypatch
):
    """With --software-deployment-method conda rule build_collection gets envs/collection.yaml,
    so the environment running Snakemake need not hold TileDB-SOMA: the parse goes on."""
    workdir, _ = geo_project
    without_tiledbsoma(workdir, monkeypatch)
    run = workflow(
        workdir, "--software-deployment-method", "conda", "--dry-run", config=SOMA, check=False
    )
    assert "needs tiledbsoma" not in run.output
    assert "Building DAG of jobs" in run.output  # parsed
    if run.returncode == 0:
        assert "build_collection" in run.output
    else:  # no conda here: Snakemake itself says so when it sets up the environments
        assert "conda" in run.output.lower(), run.output


def test_collection_none_needs_no_collection_package(geo_project, workflow, monkeypatch):
    workdir, _ = geo_project
    without_tiledbsoma(workdir, monkeypatch)
    run = workflow(workdir, "--dry-run", config={"input_dir": "data"})
    assert "build_collection" not in run.output and "ingest_sample" in run.output
