"""The real workflow through Snakemake's SLURM executor, against a real slurmctld/slurmd.

CI starts a one-node cluster on loopback (.ci/slurm-up.sh) before `make test`. Without a
cluster these tests skip with the reason; with CI set they fail instead. Every Snakemake
run and every SLURM command is bounded by a timeout, and jobs a test leaves behind are
cancelled. The requests these jobs make are the resource model's, tested as plain
functions in tests/unit/test_resources.py.
"""

from __future__ import annotations

import gzip
import subprocess
import uuid

import anndata as ad
import numpy as np
import pytest

from conftest import GEO_SAMPLES, make_geo_folder
from helpers.collection import collection_package
from helpers.slurm import (
    CMD_TIMEOUT,
    require_cluster,
    rule_of,
    run_on_slurm,
    scontrol_job,
    slurm_jobs,
    slurmd_log_lines,
)

DATA = {"input_dir": "data"}
#: one Snakemake run through SLURM must end within this many seconds
RUN_TIMEOUT = 480


@pytest.fixture
def slurm(request):
    """A cluster that answers (else skip, or fail under CI), and a job-name prefix whose
    jobs are cancelled when the test ends, whatever happened."""
    require_cluster()
    prefix = f"scingest_test_{uuid.uuid4().hex[:8]}"
    yield prefix
    out = subprocess.run(
        ["squeue", "--noheader", "--format=%i %j"],
        capture_output=True,
        text=True,
        timeout=CMD_TIMEOUT,
        check=False,
    ).stdout
    left = [line.split()[0] for line in out.splitlines() if prefix in line]
    if left:
        subprocess.run(["scancel", *left], timeout=CMD_TIMEOUT, check=False)


def slurm_args(prefix: str, *args: str) -> list[str]:
    return ["--slurm-jobname-prefix", prefix, *args]


@pytest.mark.slurm
@pytest.mark.workflow
def test_workflow_runs_through_slurm(tmp_path, slurm):
    contents = make_geo_folder(tmp_path / "data")
    run = run_on_slurm(tmp_path, *slurm_args(slurm), config=DATA, timeout=RUN_TIMEOUT)

    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    assert merged.n_obs == sum(len(cells) for _, cells, _ in contents.values())
    for sample, (genes, cells, counts) in contents.items():
        part = merged[merged.obs["sample"] == sample]
        assert part.obs_names.tolist() == [f"{sample}-{b}" for b in cells]
        np.testing.assert_array_equal(part[:, genes].X.toarray(), counts.toarray())
        assert (tmp_path / "logs" / "ingest_sample" / f"{sample}.log").is_file()

    jobs = slurm_jobs(run)
    by_rule: dict[str, list] = {}
    for job in jobs:
        by_rule.setdefault(rule_of(job), []).append(job)
    # one SLURM job per sample and one merge; the sheet is a local rule, never submitted
    assert len(by_rule.get("ingest_sample", [])) == len(contents), jobs
    assert len(by_rule.get("merge_samples", [])) == 1, jobs
    assert "write_samplesheet" not in by_rule
    assert all(job.state == "COMPLETED" for job in jobs), jobs
    for job in by_rule["ingest_sample"]:
        info = scontrol_job(job.job_id)
        assert info["ExitCode"] == "0:0" and info["JobState"] == "COMPLETED", info
        # the request is the rule's own (scingest.resources.ingest_mem_mb), not a profile
        # default
        assert job.mem_mb >= 800, job


@pytest.mark.slurm
@pytest.mark.workflow
def test_failing_job_is_reported_and_the_run_fails(tmp_path, slurm):
    make_geo_folder(tmp_path / "data", GEO_SAMPLES[:1])
    bad = tmp_path / "data" / "GSM5320499_Bad1_count_matrix.csv.gz"
    bad.write_bytes(gzip.compress(b",AAACCCAAGAAACACT-1,AAACCCAAGAAACCAT-1\nACTB,1,2\nB2M,3\n"))

    run = run_on_slurm(
        tmp_path,
        *slurm_args(slurm, "--retries", "0"),
        config=DATA,
        check=False,
        timeout=RUN_TIMEOUT,
    )

    assert run.returncode != 0, run.output[-3000:]
    assert "Error in rule ingest_sample" in run.output
    assert "ragged row" in run.output, "the job's log is shown (show-failed-logs)"
    failed = [j for j in slurm_jobs(run) if "Bad1" in j.comment]
    assert len(failed) == 1 and failed[0].state == "FAILED", failed
    assert scontrol_job(failed[0].job_id)["ExitCode"] != "0:0"
    # a failed job's SLURM log is kept, under .snakemake/slurm_logs/rule_<rule>/<wildcards>/
    slurm_logs = list((tmp_path / ".snakemake" / "slurm_logs").rglob(f"{failed[0].job_id}.log"))
    assert slurm_logs and "ragged row" in slurm_logs[0].read_text()
    assert not (tmp_path / "results" / "merged.h5ad").exists()


@pytest.mark.slurm
@pytest.mark.workflow
def test_too_small_memory_request_is_retried_with_more(tmp_path, slurm):
    """Attempt 1 asks for 64 MB, less than Python with scanpy takes; SLURM kills it for
    memory (JobAcctGatherParams=OverMemoryKill on the CI cluster, cgroups on most others),
    Snakemake resubmits (profile: retries), and attempt 2 asks for more and succeeds."""
    contents = make_geo_folder(tmp_path / "data", GEO_SAMPLES[:2])
    first_mb, retry_mb = 64, 1500
    run = run_on_slurm(
        tmp_path,
        *slurm_args(
            slurm,
            "--set-resources",
            f"ingest_sample:mem_mb={first_mb} if attempt == 1 else {retry_mb}",
        ),
        config=DATA,
        timeout=RUN_TIMEOUT,
    )

    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    for sample, (genes, cells, counts) in contents.items():
        part = merged[merged.obs["sample"] == sample]
        assert part.obs_names.tolist() == [f"{sample}-{b}" for b in cells]
        np.testing.assert_array_equal(part[:, genes].X.toarray(), counts.toarray())

    jobs = slurm_jobs(run)
    for sample in contents:
        ingest = [j for j in jobs if j.comment == f"rule_ingest_sample_wildcards_{sample}"]
        assert [j.mem_mb for j in ingest] == [first_mb, retry_mb], ingest
        first, retry = ingest
        assert first.state in ("FAILED", "OUT_OF_MEMORY"), first
        assert retry.state == "COMPLETED", retry
        assert scontrol_job(retry.job_id)["MinMemoryNode"] == f"{retry_mb}M"
        # it was SLURM's memory limit that ended attempt 1, not something else
        log = slurmd_log_lines(first.job_id)
        assert first.state == "OUT_OF_MEMORY" or any(
            "exceeded memory limit" in line for line in log
        ), log
    assert run.output.count("Trying to restart job") >= len(contents)


@pytest.mark.slurm
@pytest.mark.workflow
def test_collection_job_runs_through_slurm_with_its_own_request(tmp_path, slurm):
    # the collection extra is not installed beside pandas 3: CI runs this test on the
    # collection's own stack (make test-collection SLURM=1)
    collection_package("tiledbsoma")
    contents = make_geo_folder(tmp_path / "data")
    config = {**DATA, "collection": "soma"}
    run = run_on_slurm(tmp_path, *slurm_args(slurm), config=config, timeout=RUN_TIMEOUT)
    manifest = (tmp_path / "results" / "collection.manifest.tsv").read_text().splitlines()
    assert len(manifest) == 1 + len(contents)
    jobs = [job for job in slurm_jobs(run) if rule_of(job) == "build_collection"]
    assert len(jobs) == 1 and jobs[0].state == "COMPLETED", jobs
    # scingest.resources.collection_mem_mb's floor, not a profile default
    assert jobs[0].mem_mb >= 2000, jobs
