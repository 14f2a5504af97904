"""Honest threads: a job uses the threads it declares; install leaves SLURM out; warm caches.

The ingest and merge jobs pass their declared ``threads`` to scingest, which then starts no
more helper threads than that: 1 means the calling thread alone.
"""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import threading
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from anndata.tests.helpers import assert_equal

from conftest import REPO, make_geo_folder, run_workflow
from scingest import qc
from scingest.merge import merge_checkpoints
from scingest.readers import _fastdense, read_counts
from scingest.sample import build_sample, write_h5ad
from scingest.synthetic import synthetic_counts, write_dense


@pytest.fixture
def started(monkeypatch):
    """Names of the threads started while the test runs (recorded by Thread.start)."""
    names: list[str] = []
    real_start = threading.Thread.start

    def start(self):
        names.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    return names


@pytest.fixture
def dense_file(tmp_path) -> Path:
    """A small genes x cells csv.gz, as GEO has them."""
    genes, cells, counts = synthetic_counts(n_genes=300, n_cells=80, seed=5)
    path = tmp_path / "GSM1_Ctrl1_count_matrix.csv.gz"
    write_dense(path, genes, cells, counts)
    return path


def pool_threads(names: list[str]) -> list[str]:
    return [n for n in names if n.startswith("ThreadPoolExecutor")]


def test_one_thread_reads_and_writes_in_the_calling_thread(dense_file, tmp_path, started):
    adata = read_counts(dense_file, threads=1)
    write_h5ad(adata, tmp_path / "one.h5ad", compression="gzip", threads=1)
    assert started == []
    # the same file and matrix as with every helper thread
    started.clear()
    helped = read_counts(dense_file)
    write_h5ad(helped, tmp_path / "all.h5ad", compression="gzip")
    assert "scingest-inflate" in started and "scingest-transpose" in started
    assert pool_threads(started)
    assert_equal(adata, helped)
    assert_equal(ad.read_h5ad(tmp_path / "one.h5ad"), ad.read_h5ad(tmp_path / "all.h5ad"))


def test_an_ingest_job_imports_no_scanpy(dense_file, tmp_path):
    """The ingest path (read, QC metrics, checkpoint, figure) imports neither scanpy nor
    scikit-learn (1.5 s of every job's start-up), and its QC kernel starts no numba threads."""
    code = f"""
import sys
sys.path.insert(0, {str(REPO / "scripts")!r})
from scingest.sample import build_sample, write_h5ad
from scingest.plots import plot_sample_checkpoint
import numba.np.ufunc.parallel as parallel
adata = build_sample({str(dense_file)!r}, sample="S", threads=1)
write_h5ad(adata, {str(tmp_path / "S.h5ad")!r})
plot_sample_checkpoint("S", {str(tmp_path / "S.h5ad")!r}, {str(tmp_path / "S.png")!r})
print(sorted(m for m in ("scanpy", "sklearn") if m in sys.modules), parallel._is_initialized)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] == "[] False", out.stdout + out.stderr


def test_parsing_the_workflow_imports_no_anndata(tmp_path, monkeypatch):
    """Every `snakemake` start parses the workflow, which imports scingest for the sheet and
    the contract's names: not anndata, h5py or zarr, which only the jobs that read or write
    files need. Python lists each import it makes
    (PYTHONPROFILEIMPORTTIME); a dry run starts no job, so all of them are the parse's."""
    make_geo_folder(tmp_path / "data")
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    run = run_workflow(tmp_path, "--dry-run", config={"input_dir": "data"})
    imported = {line.split("|")[-1].strip() for line in str(run).splitlines() if "|" in line}
    assert {"snakemake", "scingest.discovery", "pandas"} <= imported, str(run)[-3000:]
    assert not {"anndata", "h5py", "zarr"} & imported


def test_two_threads_add_one_helper_at_a_time(dense_file, tmp_path, started):
    adata = read_counts(dense_file, threads=2)
    assert "scingest-inflate" in started and "scingest-transpose" in started
    assert not [n for n in started if n.startswith("scingest-import")], "a third thread"
    assert_equal(adata, read_counts(dense_file, threads=1))
    started.clear()
    write_h5ad(adata, tmp_path / "two.h5ad", compression="gzip", threads=2)
    assert len(pool_threads(started)) <= 2


def test_one_thread_inline_inflate_handles_lines_across_blocks(tmp_path, started):
    """Small blocks: lines split across inflated blocks, read without the helper thread."""
    genes, cells, counts = synthetic_counts(n_genes=40, n_cells=25, seed=2)
    path = tmp_path / "m.csv.gz"
    write_dense(path, genes, cells, counts)
    one = _fastdense.parse_fast(path, sep=",", dtype=np.float32, block_size=64, threads=1)
    assert started == []
    two = _fastdense.parse_fast(path, sep=",", dtype=np.float32, block_size=64)
    assert one[0] == two[0] and one[1] == two[1]
    assert (one[2] != two[2]).nnz == 0


def test_one_thread_merge_equals_the_threaded_one(dense_file, tmp_path, started):
    paths = {}
    for sample in ("A", "B"):
        paths[sample] = tmp_path / f"{sample}.h5ad"
        write_h5ad(build_sample(dense_file, sample=sample, threads=1), paths[sample])
    started.clear()
    merge_checkpoints(paths, tmp_path / "one.h5ad", compression="gzip", threads=1)
    assert pool_threads(started) == []
    merge_checkpoints(paths, tmp_path / "two.h5ad", compression="gzip", threads=2)
    assert len(set(pool_threads(started))) == 1  # the caller reads, one thread compresses
    assert_equal(ad.read_h5ad(tmp_path / "one.h5ad"), ad.read_h5ad(tmp_path / "two.h5ad"))


def test_warm_caches_compiles_the_ingest_kernels():
    from scingest.warm import warm_caches

    assert warm_caches() > 0
    # both count dtypes of the contract (float32, int32: the kernels' last argument or the
    # QC kernel's first), so that no job of a first run compiles one
    for kernel, position in (
        (_fastdense.kernel._scan, -1),
        (_fastdense.transpose._scatter, -1),
        (qc._qc_sums, 0),
    ):
        dtypes = {str(signature[position].dtype) for signature in kernel.signatures}
        assert {"float32", "int32"} <= dtypes, (kernel, dtypes)


def logged_threads(workdir: Path, rule: str) -> dict[str, int]:
    """The thread count each job of ``rule`` says it was given (from its log)."""
    found = {}
    for log in sorted((workdir / "logs" / rule).glob("*.log")):
        match = re.search(r"threads: (\d+)", log.read_text())
        assert match, f"{log} does not say its threads"
        found[log.stem] = int(match.group(1))
    return found


@pytest.mark.workflow
def test_jobs_pass_their_declared_threads_to_scingest(tmp_path):
    """A sample's job declares 1 thread and scingest is told 1; --set-threads reaches the
    library; the merge of 50 MB of text or more declares 2 when the run has more than two
    cores (seen in the dry run)."""
    make_geo_folder(tmp_path / "data", [("GSM1", "Ctrl1", 20, 1), ("GSM2", "Pre1", 20, 2)])
    config = {"input_dir": "data"}
    run_workflow(tmp_path, "results/merged.h5ad", config=config)
    assert logged_threads(tmp_path, "ingest_sample") == {"Ctrl1": 1, "Pre1": 1}
    assert logged_threads(tmp_path, "merge_samples") == {"merge_samples": 1}
    run_workflow(
        tmp_path,
        "results/merged.h5ad",
        "--forceall",
        "--set-threads",
        "ingest_sample=2",
        "merge_samples=2",
        config=config,
    )
    assert logged_threads(tmp_path, "ingest_sample") == {"Ctrl1": 2, "Pre1": 2}
    assert logged_threads(tmp_path, "merge_samples") == {"merge_samples": 2}

    # a large sample (60 MB of text: mostly zeros, so a small gzip)
    big = tmp_path / "big"
    (big / "data").mkdir(parents=True)
    cells = [f"C{i}" for i in range(3000)]
    row = "," + ",".join(["0"] * 3000) + "\n"
    text = "," + ",".join(cells) + "\n" + "".join(f"G{i}" + row for i in range(10_000))
    assert len(text) > 50e6
    (big / "data" / "GSM3_Post1_count_matrix.csv.gz").write_bytes(
        gzip.compress(text.encode(), compresslevel=1)
    )
    (big / "data" / "GSM4_Post2_count_matrix.csv.gz").write_bytes(
        gzip.compress(b",AAACCTGAGAAACCAT-1\nG1,1\n")
    )
    dry = run_workflow(big, "--dry-run", "results/merged.h5ad", "--cores", "4", config=config)
    assert dry_run_threads(str(dry), "ingest_sample") == {"Post1": 1, "Post2": 1}, str(dry)
    assert dry_run_threads(str(dry), "merge_samples") == {"merge_samples": 2}, str(dry)
    # two cores: one for the merge, one for the QC summary that is ready at the same time
    two = run_workflow(big, "--dry-run", "results/merged.h5ad", "--cores", "2", config=config)
    assert dry_run_threads(str(two), "merge_samples") == {"merge_samples": 1}, str(two)
    small = run_workflow(tmp_path, "--dry-run", "--forceall", "results/merged.h5ad", config=config)
    assert dry_run_threads(str(small), "merge_samples") == {"merge_samples": 1}


def dry_run_threads(output: str, rule: str) -> dict[str, int]:
    """Sample -> threads of each job of ``rule`` in a dry run's job listing (Snakemake
    prints ``threads:`` only above 1)."""
    found = {}
    for block in re.split(r"\n(?=\[)", output):
        if f"rule {rule}:" in block:
            wildcard = re.search(r"wildcards: sample=(\S+)", block)
            sample = wildcard.group(1) if wildcard else rule
            threads = re.search(r"^\s+threads: (\d+)", block, re.M)
            found[sample] = int(threads.group(1)) if threads else 1
    return found


def test_install_leaves_the_slurm_plugin_to_install_slurm():
    makefile = (REPO / "Makefile").read_text()
    recipes = re.split(r"\n(?=\S)", makefile)
    install = next(r for r in recipes if r.startswith("$(BIN)/snakemake:"))
    assert "pip install" in install and "slurm" not in install
    assert "scingest.warm" in install
    slurm = next(r for r in recipes if r.startswith("$(VENV)/.slurm-plugin:"))
    assert "'.[test,slurm]'" in slurm
    assert re.search(r"^test-slurm: install-slurm", makefile, re.M)
    # CI adds the plugin to the venv whose run has the cluster (Python 3.13, newest)
    test313 = next(r for r in recipes if r.startswith("test313:"))
    assert "$(if $(SLURM),install-slurm)" in test313
    ci = (REPO / ".ci" / "run").read_text()
    assert "\nmake test313 SLURM=1" in ci
