"""The resource model (scingest.resources): each rule's memory, runtime and threads follow
its inputs and grow with the attempt; the workflow's rules ask for what it says."""

from __future__ import annotations

import gzip
import os
import re
from functools import partial

import pytest

from conftest import GEO_SAMPLES, REPO, make_geo_folder, run_workflow
from scingest import resources
from scingest.formats import input_files


def ingest_mem(path, fmt="csv", attempt=1):
    """What rule ingest_sample asks for a sample at ``path``, as common.smk computes it."""
    text_mb = resources.text_mb(input_files(path, fmt))
    return resources.ingest_mem_mb(text_mb, format=fmt, attempt=attempt)


def test_ingest_mem_request_follows_the_input_and_grows_with_attempt(tmp_path):
    small = tmp_path / "small.csv.gz"
    big = tmp_path / "big.csv.gz"
    text = b"," + b",".join(b"C%d" % i for i in range(2000)) + b"\n"
    small.write_bytes(gzip.compress(text + b"G1" + b",0" * 2000 + b"\n"))
    big.write_bytes(gzip.compress(text + (b"G1" + b",0" * 2000 + b"\n") * 20000))
    plain = tmp_path / "big.csv"
    plain.write_bytes(gzip.decompress(big.read_bytes()))

    assert ingest_mem(small) < ingest_mem(big)
    # a gzipped file asks for what its text needs, like the same file unzipped
    assert ingest_mem(big) == ingest_mem(plain)
    assert ingest_mem(big, attempt=2) > ingest_mem(big)
    assert ingest_mem(big, attempt=3) > ingest_mem(big, attempt=2)
    # a folder input (10x) is measured by its files
    folder = tmp_path / "tenx"
    folder.mkdir()
    (folder / "matrix.mtx.gz").write_bytes(big.read_bytes())
    (folder / "barcodes.tsv.gz").write_bytes(gzip.compress(b"AAAC-1\n"))
    (folder / "features.tsv.gz").write_bytes(gzip.compress(b"G1\tG1\tGene Expression\n"))
    assert ingest_mem(folder, "10x_mtx") > ingest_mem(small)


def test_ingest_mem_is_base_plus_the_formats_factor_per_text_mb():
    assert resources.ingest_mem_mb(0, format="csv", attempt=1) == resources.JOB_BASE_MB
    for fmt, factor in resources.INGEST_MEM_PER_TEXT_MB.items():
        assert resources.ingest_mem_mb(100, format=fmt, attempt=2) == 2 * (
            resources.JOB_BASE_MB + 100 * factor
        )
    # binary inputs understate their matrix most: their factor is above the text formats'
    assert resources.INGEST_MEM_PER_TEXT_MB["10x_h5"] > resources.INGEST_MEM_PER_TEXT_MB["csv"]
    # a format without a measured factor (a tool layout) takes the largest
    assert resources.ingest_mem_mb(100, format="starsolo", attempt=1) == (
        resources.JOB_BASE_MB + 100 * max(resources.INGEST_MEM_PER_TEXT_MB.values())
    )


def test_text_size_reads_the_gzip_trailer_with_a_floor(tmp_path):
    text = b"0," * 500_000
    packed = tmp_path / "zeros.csv.gz"
    packed.write_bytes(gzip.compress(text))
    assert resources.gzip_text_size(packed) == len(text)
    # incompressible content: never below MIN_GZIP_RATIO x the compressed size
    noise = tmp_path / "noise.gz"
    noise.write_bytes(gzip.compress(os.urandom(100_000)))
    size = noise.stat().st_size
    assert resources.gzip_text_size(noise) == resources.MIN_GZIP_RATIO * size
    # a name ending in .gz is not gzip: by its size (the magic bytes decide, files.is_gzip)
    fake = tmp_path / "fake.csv.gz"
    fake.write_bytes(b"a,b\n" * 100)
    assert resources.gzip_text_size(fake) == 400
    # each file once, however often it is named
    assert resources.text_mb([packed, packed, fake]) == (len(text) + 400) / 1e6


def test_merge_threads_from_enough_text():
    limit = resources.MERGE_THREADS_FROM_MB
    assert resources.merge_threads([]) == 1
    assert resources.merge_threads([limit / 2 - 1, limit / 2]) == 1
    assert resources.merge_threads([limit / 2, limit / 2]) == 2
    assert resources.merge_threads([limit / 2, limit / 2], cores=3) == 2
    # two cores: the merge leaves one to the QC summary, which is ready at the same time
    assert resources.merge_threads([limit / 2, limit / 2], cores=2) == 1


def test_fixed_requests_grow_with_attempt():
    fixed = [resources.ingest_runtime]
    for rule in resources.FIXED_REQUESTS:
        fixed += [partial(resources.fixed_mem_mb, rule), partial(resources.fixed_runtime, rule)]
    for request in fixed:
        assert request(1) > 0 and request(2) == 2 * request(1), request
        assert request(3) == 3 * request(1), request
    # the merge streams: its request is the same whatever the number of cells
    assert resources.fixed_mem_mb("merge_samples", 1) == 2000


def test_every_fixed_request_names_a_rule():
    rules = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for rule in resources.FIXED_REQUESTS:
        assert f"rule {rule}:" in rules
        for request in ("fixed_mem_mb", "fixed_runtime"):
            assert re.search(rf'resources\.{request}\(\s*"{rule}",\s*attempt\s*\)', rules), rule


def test_collection_request_follows_the_checkpoints(tmp_path):
    small, huge = tmp_path / "a.h5ad", tmp_path / "c.h5ad"
    small.write_bytes(b"\0" * 10**5)
    with open(huge, "wb") as fh:
        fh.truncate(3 * 10**9)  # a sparse file: 3 GB by its size, nothing on disk

    def mem(h5ads, attempt, kind="soma"):
        return resources.collection_mem_mb(h5ads, kind=kind, attempt=attempt)

    def runtime(h5ads, attempt):
        return resources.collection_runtime(h5ads, attempt=attempt)

    few = [small]
    one_big = [huge]
    many = [small] * 50 + [huge]
    assert mem(few, 1) == 2000  # the floor
    assert mem(few, 2) == 4000
    assert mem(one_big, 1) == 800 + 2 * 3000
    # soma holds one checkpoint at a time: the request does not grow with their number
    assert mem(many, 1) == mem(one_big, 1)
    assert runtime(few, 1) == 30
    assert runtime(many, 1) > runtime(few, 1)
    assert runtime(many, 2) == 2 * runtime(many, 1)
    # cellarr holds all of them
    assert mem([huge] * 2, 1, kind="cellarr") == 800 + 2500 + 4 * 6000


def dry_run_resources(output: str) -> dict[str, dict[str, int]]:
    """Sample (or rule) -> the resources of each job in a dry run's job listing."""
    found = {}
    for block in re.split(r"\n(?=\[)", output):
        rule = re.search(r"rule (\w+):", block)
        listed = re.search(r"^\s+resources: (.*)$", block, re.M)
        if rule is None or listed is None:
            continue
        wildcard = re.search(r"wildcards: sample=(\S+)", block)
        values = dict(item.split("=", 1) for item in listed.group(1).split(", "))
        found[wildcard.group(1) if wildcard else rule.group(1)] = {
            k: int(v) for k, v in values.items() if v.isdigit()
        }
    return found


@pytest.mark.workflow
def test_rules_ask_for_what_the_model_says(tmp_path):
    contents = make_geo_folder(tmp_path / "data", GEO_SAMPLES[:2])
    run = run_workflow(tmp_path, "--dry-run", config={"input_dir": "data", "filter_merged": True})
    jobs = dry_run_resources(run.output)
    for sample in contents:
        (path,) = (tmp_path / "data").glob(f"*_{sample}_*")
        text_mb = resources.text_mb([path])
        assert jobs[sample]["mem_mb"] == resources.ingest_mem_mb(text_mb, format="csv", attempt=1)
        assert jobs[sample]["runtime"] == resources.ingest_runtime(1)
    assert jobs["merge_samples"]["mem_mb"] == resources.fixed_mem_mb("merge_samples", 1)
    assert jobs["merge_samples"]["runtime"] == resources.fixed_runtime("merge_samples", 1)
    assert jobs["summarize_qc"]["mem_mb"] == resources.fixed_mem_mb("summarize_qc", 1)
    assert jobs["summarize_qc"]["runtime"] == resources.fixed_runtime("summarize_qc", 1)
    assert jobs["filter_merged"]["mem_mb"] == resources.fixed_mem_mb("filter_merged", 1)
    assert jobs["filter_merged"]["runtime"] == resources.fixed_runtime("filter_merged", 1)
