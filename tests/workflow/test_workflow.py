"""The real workflow, run end to end on small GEO-style folders made here."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd

from conftest import REPO, make_geo_folder, planned_jobs, run_workflow

DATA = {"input_dir": "data"}


def test_outputs_match_inputs_cell_for_cell(geo_project):
    workdir, contents = geo_project
    run_workflow(workdir, config=DATA)
    results = workdir / "results"
    merged = ad.read_h5ad(results / "merged.h5ad")

    sheet = pd.read_csv(results / "samplesheet.tsv", sep="\t")
    assert sheet["sample"].tolist() == ["Ctrl1", "Post2", "Pre1"]
    assert sheet["donor"].dtype.kind == "i"
    assert set(sheet.columns) == {"sample", "path", "format", "sample_id", "condition", "donor"}

    assert merged.obs["sample"].dtype == "category"
    assert merged.obs_names.is_unique
    total_cells = sum(len(cells) for _, cells, _ in contents.values())
    assert merged.n_obs == total_cells
    expected_meta = {
        "Ctrl1": ("GSM5320459", "Ctrl", 1),
        "Pre1": ("GSM5320463", "Pre", 1),
        "Post2": ("GSM5320467", "Post", 2),
    }
    for sample, (genes, cells, counts) in contents.items():
        part = merged[merged.obs["sample"] == sample]
        assert part.obs_names.tolist() == [f"{sample}-{b}" for b in cells]
        assert part.obs["barcode"].tolist() == cells
        sid, condition, donor = expected_meta[sample]
        assert (part.obs["sample_id"] == sid).all()
        assert (part.obs["condition"] == condition).all()
        assert (part.obs["donor"] == donor).all()
        assert part.obs["donor"].dtype.kind == "i"
        reordered = part[:, genes]
        np.testing.assert_array_equal(reordered.X.toarray(), counts.toarray())
        np.testing.assert_array_equal(reordered.layers["counts"].toarray(), counts.toarray())

        ckpt = ad.read_h5ad(results / "samples" / f"{sample}.h5ad")
        assert ckpt.X.format == "csr" and ckpt.X.dtype == np.float32
        np.testing.assert_array_equal(ckpt[:, genes].X.toarray(), counts.toarray())
        assert ckpt.var["mt"].sum() == 13
        assert {"pct_counts_mt", "pct_counts_ribo", "pct_counts_hb"} <= set(ckpt.obs.columns)
        prov = ckpt.uns["scingest"]
        assert prov["input"]["format"] == "csv"
        assert prov["params"]["organism"] == "human"
        assert len(prov["input"]["sha256"][0]) == 64

    report = pd.read_csv(results / "merge_report.tsv", sep="\t")
    assert report["genes_dropped"].sum() == 0
    # every job imports its modules before its work, with the collector paused, and freezes
    # them out of its passes (a job's own imports before that are ~22,000 objects)
    for log in ("ingest_sample/Ctrl1", "merge_samples/merge_samples", "summarize_qc/summarize_qc"):
        text = (workdir / "logs" / f"{log}.log").read_text()
        frozen = re.search(r"imports: [\d.]+ s \((\d+) objects kept out of garbage", text)
        assert frozen and int(frozen[1]) > 100_000, (log, text)
    summary = pd.read_csv(results / "qc" / "qc_summary.tsv", sep="\t")
    assert summary.set_index("sample")["cells"].to_dict() == {
        s: len(c) for s, (_, c, _) in contents.items()
    }


def test_twelve_tutorial_style_samples(tmp_path):
    """The tutorial's shape: 12 GEO CSV.gz files, three conditions, four donors each."""
    samples = [
        (f"GSM53204{59 + i}", f"{cond}{donor}", 15 + i, 100 + i)
        for i, (cond, donor) in enumerate(
            (c, d) for c in ("Ctrl", "Pre", "Post") for d in range(1, 5)
        )
    ]
    contents = make_geo_folder(tmp_path / "data", samples, n_genes=50)
    run_workflow(tmp_path, config=DATA)
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    assert merged.obs["sample"].nunique() == 12
    for gsm, name, _, _ in samples:
        genes, cells, counts = contents[name]
        part = merged[merged.obs["sample"] == name]
        np.testing.assert_array_equal(part[:, genes].X.toarray(), counts.toarray())
        assert part.obs_names.tolist() == [f"{name}-{b}" for b in cells]
        assert (part.obs["sample_id"] == gsm).all()
        assert (part.obs["condition"] == name.rstrip("0123456789")).all()
        assert (part.obs["donor"] == int(name[-1])).all()


def test_reruns_only_what_changed(geo_project):
    workdir, _ = geo_project
    run_workflow(workdir, config=DATA)
    assert planned_jobs(workdir, DATA) == {}, "a second run with nothing changed does nothing"

    # a new sample file: only that sample, the merge and the summaries
    make_geo_folder(workdir / "data", [("GSM5320470", "Post3", 20, 21)])
    assert planned_jobs(workdir, DATA) == {
        "ingest_sample": 1,
        "write_samplesheet": 1,
        "merge_samples": 1,
        "summarize_qc": 1,  # the summary and the overview plots
        "all": 1,
    }
    run_workflow(workdir, config=DATA)
    assert ad.read_h5ad(workdir / "results/merged.h5ad").obs["sample"].nunique() == 4

    # a changed QC parameter: the jobs that use it (every sample) and what follows
    changed = {**DATA, "organism": "mouse"}
    jobs = planned_jobs(workdir, changed)
    assert jobs.get("ingest_sample") == 4 and "write_samplesheet" not in jobs
    run_workflow(workdir, config=changed)
    ckpt = ad.read_h5ad(workdir / "results/samples/Ctrl1.h5ad")
    assert ckpt.var["mt"].sum() == 0  # mouse mt- does not match human MT- genes

    # a changed join: only the merge
    outer = {**changed, "join": "outer"}
    assert planned_jobs(workdir, outer) == {"merge_samples": 1, "all": 1}

    # a replaced input file: that sample and what follows. (A touch alone reruns nothing:
    # Snakemake 9 sees the same checksum.)
    make_geo_folder(workdir / "data", [("GSM5320463", "Pre1", 33, 99)])
    jobs = planned_jobs(workdir, changed)
    assert jobs == {
        "ingest_sample": 1,
        "merge_samples": 1,
        "summarize_qc": 1,  # the summary and the overview plots
        "all": 1,
    }


def test_sample_sheet_route_and_resolved_sheet_reuse(geo_project):
    workdir, contents = geo_project
    run_workflow(workdir, config=DATA)
    resolved = workdir / "results" / "samplesheet.tsv"
    sheet = pd.read_csv(resolved, sep="\t")
    sheet["treatment"] = ["a", "b", "c"]
    sheet.to_csv(workdir / "my_sheet.tsv", sep="\t", index=False)
    shutil.rmtree(workdir / "results")
    run_workflow(workdir, config={"samples": "my_sheet.tsv"})
    merged = ad.read_h5ad(workdir / "results" / "merged.h5ad")
    assert merged.n_obs == sum(len(c) for _, c, _ in contents.values())
    by_sample = merged.obs.groupby("sample", observed=True)["treatment"].first().to_dict()
    assert by_sample == {"Ctrl1": "a", "Post2": "b", "Pre1": "c"}


def test_bad_input_fails_clearly_and_keep_going_keeps_good_samples(geo_project):
    workdir, _ = geo_project
    bad = workdir / "data" / "GSM5320499_Bad1_count_matrix.csv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write(",AAAC-1,AAAG-1\nMT-CO1,1,2\nACTB,3,2.5\n")
    run = run_workflow(workdir, "--keep-going", config=DATA, check=False)
    assert run.returncode != 0
    assert "GSM5320499_Bad1_count_matrix.csv.gz, line 3, column 3" in run.output
    assert "'2.5' is not an integer count" in run.output
    samples = workdir / "results" / "samples"
    assert not (samples / "Bad1.h5ad").exists()
    assert not list(samples.glob(".*tmp*")), "no half-written checkpoint is left behind"
    assert sorted(p.name for p in samples.glob("*.h5ad")) == [
        "Ctrl1.h5ad",
        "Post2.h5ad",
        "Pre1.h5ad",
    ]
    assert "Traceback" not in (workdir / "logs" / "ingest_sample" / "Bad1.log").read_text()


def test_discovery_errors_stop_before_any_job(geo_project):
    workdir, _ = geo_project
    (workdir / "data" / "README.txt").write_text("notes")
    run = run_workflow(workdir, config=DATA, check=False)
    assert run.returncode != 0
    assert "README.txt" in run.output and "match no filename_pattern" in run.output
    assert not (workdir / "results").exists()
    run_workflow(workdir, config={**DATA, "ignore_unmatched": True})
    assert (workdir / "results" / "merged.h5ad").exists()


def test_wrong_config_type_is_refused(geo_project):
    workdir, _ = geo_project
    run = run_workflow(workdir, config={**DATA, "join": "sideways"}, check=False)
    assert run.returncode != 0
    assert "sideways" in run.output
    assert not (workdir / "results").exists()


def test_a_run_ends_without_waiting_for_the_schedulers_timer(tmp_path):
    """Snakemake's scheduler re-checks for jobs on a 1 s timer thread that is not a daemon,
    so Python waited up to 1 s for the last one before exiting; the workflow's onsuccess
    cancels it. Run in-process, then list the timers still pending. (A failed run had none
    pending, with or without --keep-going: no onerror is needed.)"""
    make_geo_folder(tmp_path / "data", [("GSM1", "Ctrl1", 20, 1)])
    code = f"""
import sys, threading
from snakemake.cli import main
sys.argv = ["snakemake", "--snakefile", {str(REPO / "Snakefile")!r}, "--directory",
            {str(tmp_path)!r}, "--cores", "2", "--config", "input_dir=data", "--quiet"]
try:
    main()
except SystemExit as end:
    status = end.code
pending = [t for t in threading.enumerate()
           if isinstance(t, threading.Timer) and not t.finished.is_set()]
print("status", status, "pending timers", len(pending))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "status 0 pending timers 0" in run.stdout, run.stdout + run.stderr[-3000:]
