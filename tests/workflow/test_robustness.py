"""Bad input refused by name, interruptions survived, outputs deterministic (issue 6)."""

from __future__ import annotations

import gzip
import os
import random
import shutil
import signal
import subprocess
import zlib
from pathlib import Path

import anndata as ad
import pytest
from anndata.tests.helpers import assert_equal

from conftest import REPO, make_geo_folder, planned_jobs, run_workflow, snakemake_cmd
from scingest.synthetic import synthetic_counts, write_dense

DATA = {"input_dir": "data"}
HEADER = ",AAACCTGAGAAACCAT-1,AAACCTGAGAAACCGC-1\n"

#: name -> (file bytes, text the failed job's log must hold). Each sits beside good samples.
BAD_INPUTS: dict[str, tuple[bytes, str]] = {
    "Empty1": (b"", "the file is empty"),
    "Headeronly1": (HEADER.encode(), "header but no data lines"),
    "Ragged1": ((HEADER + "MT-CO1,1,2\nACTB,3\n").encode(), "line 3: expected 3 fields"),
    "Text1": ((HEADER + "MT-CO1,1,x\n").encode(), "line 2, column 3: value 'x' is not a number"),
    "Negative1": ((HEADER + "MT-CO1,1,-4\n").encode(), "line 2, column 3: value '-4' is not a"),
    "Fraction1": ((HEADER + "MT-CO1,1,0.5\n").encode(), "line 2, column 3: value '0.5' is not"),
    "Nan1": ((HEADER + "MT-CO1,NaN,1\n").encode(), "line 2, column 2: value 'NaN' is not"),
    "Inf1": ((HEADER + "MT-CO1,1,Inf\n").encode(), "line 2, column 3: value 'Inf' is not"),
    "Dupbarcode1": (
        b",AAACCTGAGAAACCAT-1,AAACCTGAGAAACCAT-1\nMT-CO1,1,2\n",
        "barcode(s) occur more than once: AAACCTGAGAAACCAT-1",
    ),
    "Undecided1": (
        b",C1,C2\nG1,1,2\nG2,0,1\n",
        "cannot tell whether the genes are in the first column",
    ),
}
#: good but unusual: must read fine (the log may warn)
ODD_GOOD: dict[str, tuple[bytes, str]] = {
    "Bom1": (b"\xef\xbb\xbf" + (HEADER + "MT-CO1,1,2\nACTB,0,5\n").encode(), ""),
    "Crlf1": ((HEADER + "MT-CO1,1,2\nACTB,0,5\n").replace("\n", "\r\n").encode(), ""),
    "Dupgene1": ((HEADER + "MT-CO1,1,2\nACTB,0,5\nACTB,1,1\n").encode(), "occur more than once"),
    # cells x genes: the gene names in the header tell the orientation (issue 16)
    "Transposed1": (
        b",MT-CO1,ACTB,GAPDH\nAAACCTGAGAAACCAT-1,1,2,3\nAAACCTGAGAAACCGC-1,0,1,0\n",
        "orientation cells_x_genes",
    ),
}


def write_gz(folder: Path, sample: str, data: bytes) -> Path:
    path = folder / f"GSM9{zlib.crc32(sample.encode()) % 10**6:06d}_{sample}_count_matrix.csv.gz"
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(data)
    return path


def test_bad_input_corpus_keep_going(geo_project):
    workdir, _ = geo_project
    data = workdir / "data"
    for sample, (content, _) in {**BAD_INPUTS, **ODD_GOOD}.items():
        write_gz(data, sample, content)
    lines = "".join(f"GENE{i},1,{i % 7}\n" for i in range(4000))
    truncated = write_gz(data, "Truncated1", (HEADER + lines).encode())
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    (data / "GSM9000001_Notgz1_count_matrix.csv.gz").write_text(HEADER + "MT-CO1,1,2\n")

    run = run_workflow(workdir, "--keep-going", config=DATA, check=False)
    assert run.returncode != 0
    samples = workdir / "results" / "samples"
    logs = workdir / "logs" / "ingest_sample"
    expected = {
        **{s: m for s, (_, m) in BAD_INPUTS.items()},
        "Truncated1": "gzip stream ends early",
        "Notgz1": "not gzip-compressed",
    }
    for sample, message in expected.items():
        log = (logs / f"{sample}.log").read_text()
        assert message in log, f"{sample}: {log}"
        assert "_count_matrix.csv.gz" in log, f"{sample}: the message names the file"
        assert "Traceback" not in log
        assert not (samples / f"{sample}.h5ad").exists()
    good = {"Ctrl1", "Pre1", "Post2", *ODD_GOOD}
    assert {p.stem for p in samples.glob("*.h5ad")} == good
    assert "occur more than once" in (logs / "Dupgene1.log").read_text()
    dup = ad.read_h5ad(samples / "Dupgene1.h5ad")
    assert dup.var_names.tolist() == ["MT-CO1", "ACTB", "ACTB-1"]
    bom = ad.read_h5ad(samples / "Bom1.h5ad")
    assert bom.var_names[0] == "MT-CO1" and bom.obs["barcode"].iloc[0] == "AAACCTGAGAAACCAT-1"
    transposed = ad.read_h5ad(samples / "Transposed1.h5ad")
    assert transposed.var_names.tolist() == ["MT-CO1", "ACTB", "GAPDH"]
    assert transposed.obs["barcode"].tolist() == ["AAACCTGAGAAACCAT-1", "AAACCTGAGAAACCGC-1"]
    assert "orientation cells_x_genes" in (logs / "Transposed1.log").read_text()
    assert not list(samples.glob(".*")), "no temporary file is left"
    assert not (workdir / "results" / "merged.h5ad").exists()


def _sheet(workdir: Path, text: str) -> dict[str, str]:
    (workdir / "sheet.tsv").write_text(text)
    return {"samples": "sheet.tsv"}


@pytest.mark.parametrize(
    ("make_config", "message"),
    [
        (lambda w: _sheet(w, "sample\tpath\nS1\tdata/nope.csv\n"), "line 2: path 'data/nope.csv'"),
        (
            lambda w: _sheet(w, "sample\tpath\nS1\tdata/a.csv\nS1\tdata/a.csv\n"),
            "sample name 'S1' is given by more than one input",
        ),
        (lambda w: _sheet(w, "sample\tpath\na/b\tdata/a.csv\n"), "sample name 'a/b' may contain"),
        (
            lambda w: _sheet(w, "sample\tpath\tformat\nS1\tdata/a.csv\tgct\n"),
            "unknown format 'gct'",
        ),
        (
            lambda w: _sheet(w, "sample\tpath\tpct_counts_mt\nS1\tdata/a.csv\t3\n"),
            "'pct_counts_mt' clash with columns",
        ),
        (lambda w: {**DATA, "filename_pattern": r"^GSM\d+_.*$"}, "has no named group 'sample'"),
        (lambda w: {**DATA, "percent_top": "twenty"}, "percent_top"),
        (lambda w: {**DATA, "ignore_unmatched": "maybe"}, "ignore_unmatched"),
    ],
    ids=[
        "missing-path",
        "duplicate-sample",
        "bad-name",
        "unknown-format",
        "qc-column-clash",
        "pattern-without-groups",
        "wrong-type-list",
        "wrong-type-bool",
    ],
)
def test_sheet_and_config_errors_stop_before_any_job(tmp_path, make_config, message):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text(HEADER + "MT-CO1,1,2\n")
    run = run_workflow(tmp_path, config=make_config(tmp_path), check=False)
    assert run.returncode != 0
    assert message in run.output
    assert not (tmp_path / "results").exists()


def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "needs root to mount a tiny tmpfs"
    if shutil.which("mount") is None:
        return "no mount command"
    return None


@pytest.mark.skipif(_can_mount() is not None, reason=str(_can_mount()))
def test_disk_full_ends_in_a_clear_error(geo_project):
    workdir, _ = geo_project
    results = workdir / "results"
    results.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(results)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        run = run_workflow(workdir, "--keep-going", config=DATA, check=False)
        assert run.returncode != 0
        assert "writing failed: No space left on device" in run.output
        for h5ad in results.rglob("*.h5ad"):
            ad.read_h5ad(h5ad)  # whatever exists is complete
        assert not list(results.rglob(".*.tmp.h5ad"))
    finally:
        subprocess.run(["umount", str(results)], check=True)


def _run_and_kill(workdir: Path, delay: float) -> None:
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
        "--rerun-incomplete",
        "--config",
        "input_dir=data",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _assert_same_outputs(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a) for p in (a / "results").rglob("*.h5ad"))
    assert names == sorted(p.relative_to(b) for p in (b / "results").rglob("*.h5ad"))
    assert names, "no outputs to compare"
    for name in names:
        assert_equal(ad.read_h5ad(a / name), ad.read_h5ad(b / name))
    for tsv in ("merge_report.tsv", "samplesheet.tsv", "qc/qc_summary.tsv"):
        assert (a / "results" / tsv).read_text() == (b / "results" / tsv).read_text()


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    make_geo_folder(workdir / "data")
    run_workflow(workdir, config=DATA)
    return workdir


def test_outputs_are_deterministic(reference_run, tmp_path):
    make_geo_folder(tmp_path / "data")
    run_workflow(tmp_path, config=DATA)
    _assert_same_outputs(reference_run, tmp_path)


def test_killed_runs_resume_to_the_same_outputs(reference_run, tmp_path):
    make_geo_folder(tmp_path / "data")
    rng = random.Random(20261124)
    for _ in range(4):
        _run_and_kill(tmp_path, delay=rng.uniform(2.0, 12.0))
        for h5ad in (tmp_path / "results").rglob("*.h5ad"):
            ad.read_h5ad(h5ad)  # every file that exists after a kill is complete
    run_workflow(tmp_path, "--unlock", config=DATA)
    run_workflow(tmp_path, "--rerun-incomplete", config=DATA)
    _assert_same_outputs(reference_run, tmp_path)
    assert not list((tmp_path / "results").rglob(".*.tmp.*"))


def test_remove_sample_and_change_join_rerun_exactly(geo_project):
    workdir, _ = geo_project
    run_workflow(workdir, config=DATA)
    next((workdir / "data").glob("*_Post2_*")).unlink()
    assert planned_jobs(workdir, DATA) == {
        "write_samplesheet": 1,
        "merge_samples": 1,
        "summarize_qc": 1,  # cells per sample changes
        "all": 1,
    }
    run_workflow(workdir, config=DATA)
    merged = ad.read_h5ad(workdir / "results" / "merged.h5ad")
    assert set(merged.obs["sample"]) == {"Ctrl1", "Pre1"}
    # a sample with an extra gene: inner drops it (reported), outer keeps it
    g2, c2, m2 = synthetic_counts(61, 10, seed=5, median_counts=300)
    write_dense(workdir / "data" / "GSM5320480_Extra1_count_matrix.csv.gz", g2, c2, m2)
    run_workflow(workdir, config=DATA)
    inner = ad.read_h5ad(workdir / "results" / "merged.h5ad")
    assert inner.n_vars == 60
    outer_cfg = {**DATA, "join": "outer"}
    assert planned_jobs(workdir, outer_cfg) == {"merge_samples": 1, "all": 1}
    run_workflow(workdir, config=outer_cfg)
    outer = ad.read_h5ad(workdir / "results" / "merged.h5ad")
    assert outer.n_vars == 61 and g2[-1] in outer.var_names
