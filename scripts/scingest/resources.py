"""The resource model of the workflow: every rule's memory, runtime and threads.

Each rule of ``workflow/rules/*.smk`` asks Snakemake (and through it SLURM) for ``mem_mb``
and ``runtime`` from a function here, through a thin wrapper in ``common.smk`` that only
looks up the sample's path and format. The functions take plain values (paths, a format
name, the attempt, config values), so ``tests/unit/test_resources.py`` tests them as ordinary
functions. Every request grows with ``attempt``: a job killed for memory or time is
resubmitted (the profiles' ``retries``) with twice, then three times the request.

The figures behind each factor are in ``bench/README.md`` ("Resource model"), with the
command that measured them; the docstrings here say why each model has its shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import NamedTuple

from .files import is_gzip

#: Memory of an ingest job per MB of its input as text (decompressed), by format.
#:
#: Peak memory follows the text the reader parses, not the file's size on disk: a gzipped
#: file and the same file unzipped need the same. Dense text (csv, tsv) goes through the
#: fast reader, whose peak stays well under this factor; the factor leaves room for denser
#: data (less text per non-zero) and for the simple fallback reader. Matrix Market inputs
#: hold every non-zero as a line of text that scipy parses whole. HDF5 inputs (10x_h5,
#: h5ad) are compressed binary, so their file size understates the matrix most: their
#: factor is the largest. Measured by ``.ci/measure-ingest-mem.py`` (build_sample +
#: write_h5ad in a fresh process, as a job runs them); figures in bench/README.md.
INGEST_MEM_PER_TEXT_MB: dict[str, int] = {
    "csv": 3,
    "tsv": 3,
    "mtx": 4,
    "10x_mtx": 4,
    "10x_triplet": 4,
    "10x_h5": 20,
    "h5ad": 20,
}
#: The factor of a format not in :data:`INGEST_MEM_PER_TEXT_MB` (the tool layouts): the
#: largest, as their counts may be HDF5 inside a folder.
UNKNOWN_FORMAT_PER_TEXT_MB = 20
#: What any job takes before its data, in MB: Python with scanpy and anndata imported, plus
#: the two ``snakemake`` processes of a SLURM job (the batch script's and the srun step's).
#: Measured with ``sstat`` on the CI cluster's jobs (``tests/workflow/test_slurm.py``).
JOB_BASE_MB = 800
#: A gzip file's text is never taken below this many times its compressed size: the gzip
#: trailer holds the size mod 4 GiB (and of the last member only, for bgzip), and count
#: files compress at least this well.
MIN_GZIP_RATIO = 4


class FixedRequest(NamedTuple):
    """A rule's request that does not grow with the data; Snakemake's attempt multiplies it."""

    #: memory, MB
    mem_mb: int
    #: wall time, minutes
    runtime: int


#: The rules whose needs do not grow with the number of cells or samples, and why:
#:
#: - ``merge_samples``: :mod:`scingest.merge` streams one sample at a time in row blocks of
#:   at most ``BLOCK_NNZ`` stored values and holds one obs column of all cells and one var
#:   table over the genes (``bench/run.py merge`` and ``merge-scale``: the peak does not
#:   grow with the samples); 2,000 MB is :data:`JOB_BASE_MB` for the job's processes, the
#:   streaming peak, and room for obs columns of millions of cells (8 bytes per cell per
#:   column, strings more). 60 minutes: ``bench/run.py merge-scale``.
#: - ``summarize_qc``: reads only the checkpoints' obs, a few numbers per cell.
#: - ``filter_merged``: streams ``merged.h5ad`` in row blocks, like the merge.
FIXED_REQUESTS: dict[str, FixedRequest] = {
    "merge_samples": FixedRequest(mem_mb=2000, runtime=60),
    "summarize_qc": FixedRequest(mem_mb=2000, runtime=15),
    "filter_merged": FixedRequest(mem_mb=2000, runtime=60),
}

#: The merge's inputs (the samples' inputs as text, MB) from which a second thread pays:
#: one reads, the other compresses (``bench/run.py merge``).
MERGE_THREADS_FROM_MB = 50


def gzip_text_size(path: str | PathLike[str]) -> int:
    """Size of a file as text, in bytes: a gzip file's by its trailer, others' on disk.

    Parameters
    ----------
    path
        A file.

    Returns
    -------
    The size on disk; for a gzip file (:func:`scingest.files.is_gzip`) its ISIZE trailer
    (the uncompressed size mod 4 GiB, of the last member only for bgzip), never taken below
    :data:`MIN_GZIP_RATIO` times the compressed size.
    """
    size = Path(path).stat().st_size
    if size < 18 or not is_gzip(path):  # 18 bytes: the smallest gzip member
        return size
    with open(path, "rb") as fh:
        fh.seek(-4, 2)
        return max(int.from_bytes(fh.read(4), "little"), MIN_GZIP_RATIO * size)


def text_mb(files: Iterable[str | PathLike[str]]) -> float:
    """Size of an input as text, in MB: its files, each counted once.

    Parameters
    ----------
    files
        The files of one input (:func:`scingest.formats.input_files`), or of several.

    Returns
    -------
    The sum of :func:`gzip_text_size` over the distinct files, in MB.
    """
    distinct = {Path(f).resolve() for f in files}
    return sum(gzip_text_size(f) for f in distinct) / 1e6


def ingest_mem_mb(text_mb: float, *, format: str, attempt: int) -> int:
    """Memory request of one sample's job (rule ``ingest_sample``), in MB.

    ``(JOB_BASE_MB + factor x input MB as text) x attempt``, the factor by format
    (:data:`INGEST_MEM_PER_TEXT_MB`). The text size, not the file size, because the reader's
    peak follows what it parses, and gzip ratios differ from file to file. Change it for one
    run with ``--set-resources ingest_sample:mem_mb=8000``.

    Parameters
    ----------
    text_mb
        The sample's input as text (:func:`text_mb`).
    format
        Its format; one without a measured factor takes :data:`UNKNOWN_FORMAT_PER_TEXT_MB`.
    attempt
        Snakemake's attempt (1 for the first submission).

    Returns
    -------
    The request in MB.
    """
    factor = INGEST_MEM_PER_TEXT_MB.get(str(format), UNKNOWN_FORMAT_PER_TEXT_MB)
    return int((JOB_BASE_MB + factor * text_mb) * attempt)


def fixed_mem_mb(rule: str, attempt: int) -> int:
    """Memory request of a rule of :data:`FIXED_REQUESTS`, in MB, times the attempt.

    Parameters
    ----------
    rule
        The rule's name.
    attempt
        Snakemake's attempt.

    Returns
    -------
    The request in MB.
    """
    return FIXED_REQUESTS[rule].mem_mb * attempt


def fixed_runtime(rule: str, attempt: int) -> int:
    """Wall time of a rule of :data:`FIXED_REQUESTS`, in minutes, times the attempt.

    Parameters
    ----------
    rule
        The rule's name.
    attempt
        Snakemake's attempt.

    Returns
    -------
    The request in minutes.
    """
    return FIXED_REQUESTS[rule].runtime * attempt


def ingest_runtime(attempt: int) -> int:
    """Wall time of one sample's job, in minutes: 30 x attempt.

    The largest samples read and write in a few minutes on a quiet machine
    (``bench/run.py sample``); 30 leaves room for a loaded cluster node and slow storage.

    Parameters
    ----------
    attempt
        Snakemake's attempt.

    Returns
    -------
    The request in minutes.
    """
    return 30 * attempt


def merge_threads(samples_text_mb: Iterable[float], *, cores: int | None = None) -> int:
    """Threads of the merge: 2 when the samples' inputs hold enough text and the run has a
    core to spare, else 1.

    With two threads the merge inflates and compresses remapped gene indices in one while
    the other reads (1.4x faster on an outer join of 10 seed-size samples); samples that
    share their genes are copied as stored, as fast with one. Below
    :data:`MERGE_THREADS_FROM_MB` of text the second thread's start-up is not paid back
    (``bench/run.py merge``). Judged by the inputs because the checkpoints do not exist yet
    when Snakemake plans the run. With two cores or fewer the merge takes one: the QC
    summary becomes ready with it and then runs beside it, rather than after a merge
    holding both cores (3 s off the 12-sample run, ``bench/run.py workflow``).

    Parameters
    ----------
    samples_text_mb
        :func:`text_mb` of each sample's input.
    cores
        A local run's ``--cores``; ``None`` on a cluster (the planner and each job step on
        a node must agree, and only a local run's cores are shared with the QC summary).

    Returns
    -------
    1 or 2.
    """
    if cores is not None and cores <= 2:
        return 1
    return 2 if sum(samples_text_mb) >= MERGE_THREADS_FROM_MB else 1


def collection_mem_mb(h5ads: Iterable[str | PathLike[str]], *, kind: str, attempt: int) -> int:
    """Memory request of the collection job (rule ``build_collection``), in MB.

    ``soma`` holds one checkpoint's obs and var, one row block of counts and the store's
    gene index: :data:`JOB_BASE_MB` plus 2 MB per MB of the largest checkpoint, at least
    2,000; its peak does not grow with the number of samples. ``cellarr`` holds every cell's
    obs and TileDB's consolidation buffers, most of it not per cell: :data:`JOB_BASE_MB`
    plus 2,500 plus 4 MB per MB of all checkpoints. Both measured by
    ``bench/run.py collection``.

    Parameters
    ----------
    h5ads
        The checkpoints.
    kind
        The config's ``collection``: ``soma`` or ``cellarr``.
    attempt
        Snakemake's attempt.

    Returns
    -------
    The request in MB.
    """
    sizes = [Path(p).stat().st_size / 1e6 for p in h5ads] or [0]
    if kind == "cellarr":
        need = JOB_BASE_MB + 2500 + 4 * sum(sizes)
    else:
        need = max(2000, JOB_BASE_MB + 2 * max(sizes))
    return int(need * attempt)


def collection_runtime(h5ads: Iterable[str | PathLike[str]], *, attempt: int) -> int:
    """Wall time of the collection job, in minutes: 30 plus 1 per 100 MB of checkpoints.

    At the worst the job rebuilds the store from every checkpoint (cellarr always does),
    and a build's time follows the counts written (``bench/run.py collection``).

    Parameters
    ----------
    h5ads
        The checkpoints.
    attempt
        Snakemake's attempt.

    Returns
    -------
    The request in minutes, times ``attempt``.
    """
    total = sum(Path(p).stat().st_size for p in h5ads) / 1e6
    return int((30 + total / 100) * attempt)
