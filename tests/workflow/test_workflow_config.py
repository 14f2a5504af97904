"""The workflow as a new user runs it: YAML spellings on the command line, per-sample reader
options in the sheet, any working directory, the report, use as a Snakemake module
(issue 16, items 4, 5 and 7, and the sheet's rough edges)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from conftest import REPO, make_geo_folder, run_workflow, snakemake_cmd
from scingest.synthetic import write_dense


def snakemake_in(cwd, *args, check=True):
    """``snakemake ARGS`` run in ``cwd`` exactly as a user types it (no --configfile added)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [*snakemake_cmd(), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )
    output = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{output[-6000:]}")
    return proc.returncode, output


def test_yaml_spellings_on_the_command_line_and_the_hint_as_written(tmp_path):
    make_geo_folder(tmp_path / "data")
    (tmp_path / "data" / "README.txt").write_text("notes of the download\n")
    run = run_workflow(tmp_path, config={"input_dir": "data"}, check=False)
    assert run.returncode != 0
    assert "set ignore_unmatched: true" in run.output  # the hint, followed literally below
    run_workflow(
        tmp_path,
        config={
            "input_dir": "data",
            "ignore_unmatched": "true",
            "filter_merged": "true",
            "percent_top": "[10,20]",
            "qc_max_pct_mt": "null",
        },
    )
    assert (tmp_path / "results" / "merged_filtered.h5ad").exists()
    sample = ad.read_h5ad(tmp_path / "results" / "samples" / "Ctrl1.h5ad")
    tops = sorted(c for c in sample.obs.columns if c.startswith("pct_counts_in_top_"))
    assert tops == ["pct_counts_in_top_10_genes", "pct_counts_in_top_20_genes"]
    params = sample.uns["scingest"]["params"]
    assert list(params["percent_top"]) == [10, 20]
    assert params["outlier_limits"]["max_pct_mt"] == ""  # null: no hard mito limit
    summary = pd.read_csv(tmp_path / "results" / "qc" / "qc_summary.tsv", sep="\t")
    assert "limit_pct_mt_high" in summary.columns
    assert (summary["limit_pct_mt_high"].fillna(np.inf) != 8).all()
    # false and a quoted YAML list of one item read the same way
    run = run_workflow(
        tmp_path,
        "--dry-run",
        config={"input_dir": "data", "ignore_unmatched": "false"},
        check=False,
    )
    assert run.returncode != 0 and "match no filename_pattern" in run.output


def test_config_typo_names_the_closest_key_and_its_doc_line(tmp_path):
    make_geo_folder(tmp_path / "data")
    run = run_workflow(tmp_path, config={"input_dri": "data"}, check=False)
    assert run.returncode != 0
    assert "unknown config key 'input_dri': did you mean input_dir?" in run.output
    doc = (REPO / "config" / "README.md").read_text().splitlines()
    line = next(i for i, text in enumerate(doc, start=1) if text.startswith("| `input_dir` |"))
    assert f"config/README.md line {line}: | `input_dir` |" in run.output
    assert "additionalProperties" not in run.output  # not the whole schema
    assert len(run.output.splitlines()) < 40
    assert not (tmp_path / "results").exists()


def _cells_x_genes_sheet(tmp_path):
    """A GEO folder where Pre1 is exported cells x genes, and a sheet saying so on its row."""
    contents = make_geo_folder(tmp_path / "data")
    genes, cells, counts = contents["Pre1"]
    pre1 = tmp_path / "data" / "GSM5320463_Pre1_count_matrix.csv.gz"
    write_dense(pre1, genes, cells, counts, orientation="cells_x_genes")
    sheet = pd.DataFrame(
        {
            "sample": ["Ctrl1", "Pre1", "Post2"],
            "path": [str(p) for p in sorted((tmp_path / "data").iterdir())],
            "orientation": ["", "cells_x_genes ", ""],
            # one float column with an NA, a text column with a trailing space and a gap
            "viability": ["70.5", "NA", "91"],
            "treatment": ["Stim ", "", "Ctrl"],
        }
    )
    # sorted paths: GSM5320459_Ctrl1, GSM5320463_Pre1, GSM5320467_Post2
    assert [Path(p).name.split("_")[1] for p in sheet["path"]] == ["Ctrl1", "Pre1", "Post2"]
    sheet.to_csv(tmp_path / "sheet.tsv", sep="\t", index=False)
    return contents


def test_orientation_per_sample_and_sheet_values_typed_once(tmp_path):
    contents = _cells_x_genes_sheet(tmp_path)
    # without the sheet column, no single orientation reads the folder
    for orientation in ("genes_x_cells", "cells_x_genes"):
        run = run_workflow(
            tmp_path, config={"input_dir": "data", "orientation": orientation}, check=False
        )
        assert run.returncode != 0, orientation
    for folder in ("results", "logs"):
        shutil.rmtree(tmp_path / folder, ignore_errors=True)
    run_workflow(tmp_path, config={"samples": "sheet.tsv"})
    for name, (genes, cells, counts) in contents.items():
        sample = ad.read_h5ad(tmp_path / "results" / "samples" / f"{name}.h5ad")
        assert list(sample.var_names) == list(genes), name
        assert list(sample.obs["barcode"]) == list(cells), name
        np.testing.assert_array_equal(sample.X.toarray(), counts.toarray())
        assert "orientation" not in sample.obs.columns
        # every checkpoint has every sheet column, whatever its row holds
        assert {"viability", "treatment"} <= set(sample.obs.columns), name
        assert sample.obs["viability"].dtype == np.float64
    pre1 = ad.read_h5ad(tmp_path / "results" / "samples" / "Pre1.h5ad")
    assert pre1.uns["scingest"]["params"]["orientation"] == "cells_x_genes"
    ctrl1 = ad.read_h5ad(tmp_path / "results" / "samples" / "Ctrl1.h5ad")
    assert ctrl1.uns["scingest"]["params"]["orientation"] == "auto"  # the config default
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    assert "orientation" not in merged.obs.columns
    viability = merged.obs.groupby("sample", observed=True)["viability"].first()
    assert viability["Ctrl1"] == 70.5 and viability["Post2"] == 91.0
    assert merged.obs.loc[merged.obs["sample"] == "Pre1", "viability"].isna().all()
    assert merged.obs["viability"].dtype == np.float64  # a number, not a text category
    treatment = merged.obs["treatment"]
    assert set(treatment.dropna().unique()) == {"Stim", "Ctrl"}  # stripped
    assert treatment[merged.obs["sample"] == "Pre1"].isna().all()
    resolved = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t")
    assert resolved.set_index("sample").loc["Pre1", "orientation"] == "cells_x_genes"


def test_sheet_refuses_case_collisions_and_run_wide_reader_columns(tmp_path):
    make_geo_folder(tmp_path / "data")
    paths = [str(p) for p in sorted((tmp_path / "data").iterdir())]
    pd.DataFrame({"sample": ["Ctrl1", "ctrl1"], "path": paths[:2]}).to_csv(
        tmp_path / "case.tsv", sep="\t", index=False
    )
    run = run_workflow(tmp_path, config={"samples": "case.tsv"}, check=False)
    assert run.returncode != 0
    assert "'Ctrl1' and 'ctrl1' differ only by case" in run.output
    pd.DataFrame({"sample": ["A", "B"], "path": paths[:2], "var_names": ["gene_ids", ""]}).to_csv(
        tmp_path / "wide.tsv", sep="\t", index=False
    )
    run = run_workflow(tmp_path, config={"samples": "wide.tsv"}, check=False)
    assert run.returncode != 0
    assert "'var_names' name reader settings that must be the same for every sample" in run.output
    assert not (tmp_path / "results").exists()


def test_any_working_directory_report_and_stale_samples(tmp_path):
    """The README's commands, run from a project folder outside the clone."""
    project = tmp_path / "project"
    make_geo_folder(project / "rawdata")
    snakefile = str(REPO / "Snakefile")
    # 1. from the project folder: the default config is found beside the Snakefile
    snakemake_in(project, "--snakefile", snakefile, "--cores", "2", "--config", "input_dir=rawdata")
    assert (project / "results" / "merged.h5ad").exists()
    # 2. the report, as README writes it: the same --config as the run
    snakemake_in(
        project,
        "--snakefile",
        snakefile,
        "--report",
        "report.html",
        "--config",
        "input_dir=rawdata",
    )
    report = project / "report.html"
    assert report.exists() and report.stat().st_size > 10_000
    # 3. --directory from elsewhere, with the user's own config file taking precedence
    (project / "my_config.yaml").write_text("input_dir: rawdata\nqc_max_pct_mt: 50\n")
    (project / "rawdata" / "GSM5320467_Post2_count_matrix.csv.gz").rename(project / "Post2.csv.gz")
    _, output = snakemake_in(
        tmp_path,
        "--snakefile",
        snakefile,
        "--directory",
        "project",
        "--configfile",
        "project/my_config.yaml",
        "--cores",
        "2",
    )
    # Post2's checkpoint is still in results/ but no longer in the sheet: said, not deleted
    assert "results/samples holds 1 checkpoint(s) of samples the current sheet does not name" in (
        output
    )
    assert "(Post2)" in output
    assert (project / "results" / "samples" / "Post2.h5ad").exists()
    merged = ad.read_h5ad(project / "results" / "merged.h5ad")
    assert sorted(merged.obs["sample"].unique()) == ["Ctrl1", "Pre1"]
    ctrl1 = ad.read_h5ad(project / "results" / "samples" / "Ctrl1.h5ad")
    assert ctrl1.uns["scingest"]["params"]["outlier_limits"]["max_pct_mt"] == 50


def test_use_as_a_module(tmp_path):
    """The README's "Use as a module" Snakefile, in a project of its own."""
    make_geo_folder(tmp_path / "rawdata")
    (tmp_path / "config.yaml").write_text("scingest:\n  input_dir: rawdata\n  organism: human\n")
    (tmp_path / "Snakefile").write_text(
        f"""configfile: "config.yaml"


module scingest:
    snakefile:
        "{REPO / "Snakefile"}"
    config:
        config["scingest"]


use rule * from scingest as scingest_*


rule all:
    input:
        "results/merged.h5ad",
        "results/qc/qc_summary.tsv",
"""
    )
    snakemake_in(tmp_path, "--cores", "2")
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    assert sorted(merged.obs["sample"].unique()) == ["Ctrl1", "Post2", "Pre1"]
    summary = pd.read_csv(tmp_path / "results" / "qc" / "qc_summary.tsv", sep="\t")
    assert len(summary) == 3
