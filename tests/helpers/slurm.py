"""Helpers of tests/workflow/test_slurm.py: find a SLURM cluster, run the workflow through it, and
read back what SLURM did with the jobs (squeue --states=all, slurmd's log)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, Run, run_workflow

#: slurmd's log as .ci/slurm-up.sh configures it (SlurmdLogFile)
SLURMD_LOG = Path("/var/log/slurm/slurmd.log")
#: every SLURM command is bounded by this many seconds
CMD_TIMEOUT = 20


def _slurm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=CMD_TIMEOUT, check=False)


def cluster_problem() -> str | None:
    """Why the SLURM tests cannot run here, or None when a cluster answers."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client (sinfo, sbatch) on PATH: run .ci/slurm-up.sh as root"
    try:
        proc = _slurm("sinfo", "--noheader", "--format=%t")
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer within {CMD_TIMEOUT} s"
    if proc.returncode != 0:
        return f"no cluster answers sinfo: {proc.stderr.strip() or proc.returncode}"
    states = set(proc.stdout.split())
    if not states & {"idle", "mix", "mixed", "alloc", "allocated"}:
        return f"no node can take jobs (node states: {sorted(states) or 'none'})"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed: pip install -e '.[slurm]'"
    return None


def require_cluster() -> None:
    """Skip with the reason when no cluster answers; fail instead when CI is set."""
    problem = cluster_problem()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI is set, so SLURM must be up (.ci/run starts it): {problem}")
    pytest.skip(problem)


def default_partition() -> str:
    """The cluster's default partition (the one sinfo marks with *), else the first."""
    parts = _slurm("sinfo", "--noheader", "--format=%P").stdout.split()
    default = [p for p in parts if p.endswith("*")]
    return (default or parts)[0].rstrip("*")


def run_on_slurm(workdir: Path, *args: str, **kwargs) -> Run:
    """The real workflow, run with profiles/slurm against the cluster that answers.

    The local cluster has no accounting, hence no accounts: --slurm-no-account. Jobs run
    `snakemake` inside the job, so this interpreter's bin/ goes first on PATH.
    """
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ['PATH']}"
    return run_workflow(
        workdir,
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--default-resources",
        f"slurm_partition={default_partition()}",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--jobs",
        "4",
        *args,
        **kwargs,
    )


@dataclass
class SlurmJob:
    job_id: str
    state: str
    min_memory: str
    comment: str

    @property
    def mem_mb(self) -> int:
        """The job's memory request in MB (squeue prints 64M, 2G, ...)."""
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", self.min_memory)
        assert m, self.min_memory
        scale = {"K": 1 / 1024, "M": 1, "": 1, "G": 1024, "T": 1024**2}[m.group(2)]
        return round(float(m.group(1)) * scale)


def run_id(run: Run) -> str:
    """The job name the slurm executor gave every job of this run."""
    m = re.search(r"SLURM run ID: (\S+)", run.output)
    assert m, f"no SLURM run ID in Snakemake's output:\n{run.output[-3000:]}"
    return m.group(1)


def slurm_jobs(run: Run) -> list[SlurmJob]:
    """Every job of the run that slurmctld still knows (finished ones: for MinJobAge)."""
    proc = _slurm(
        "squeue", "--states=all", "--noheader", f"--name={run_id(run)}", "--format=%i|%T|%m|%k"
    )
    assert proc.returncode == 0, proc.stderr
    jobs = [SlurmJob(*line.split("|", 3)) for line in proc.stdout.splitlines() if line.strip()]
    return sorted(jobs, key=lambda j: int(j.job_id))


def rule_of(job: SlurmJob) -> str:
    """The rule name in the executor's job comment (rule_<name>_wildcards_<...>)."""
    return job.comment.removeprefix("rule_").split("_wildcards_")[0]


def scontrol_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a mapping (JobState, ExitCode, MinMemoryNode, ...)."""
    proc = _slurm("scontrol", "--oneliner", "show", "job", job_id)
    assert proc.returncode == 0, proc.stderr
    return dict(f.split("=", 1) for f in proc.stdout.split() if "=" in f)


def slurmd_log_lines(job_id: str) -> list[str]:
    """Lines of slurmd's log about one job (empty when the log is not readable here)."""
    try:
        text = SLURMD_LOG.read_text(errors="replace")
    except OSError:
        return []
    pattern = re.compile(rf"(\[{job_id}\.|StepId={job_id}\.|JobId={job_id}\b|job {job_id}\b)")
    return [line for line in text.splitlines() if pattern.search(line)]
