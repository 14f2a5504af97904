"""The real workflow on a GEO series as downloaded: GSE<n>_RAW.tar with GEO's file names,
unsafe archives refused, tool run folders named after themselves.

The series holds real CellRanger outputs (../shared/data/10x) renamed as GEO names
supplementary files (GSM<n>_ prefixed); the expected counts come from scanpy's and anndata's
readers of the original files.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from conftest import SHARED_DATA, run_workflow
from helpers.formats import make_cells, write_10x
from helpers.layouts import write_cellranger_count, write_cellranger_multi, write_kb, write_starsolo
from scingest.synthetic import synthetic_counts, write_dense

REAL = SHARED_DATA / "10x"
#: What Snakemake writes besides results/: everything else must stay as it was.
WORKFLOW_DIRS = {"results", "logs", "benchmarks", ".snakemake"}


def need_real_data() -> None:
    if REAL.is_dir():
        return
    reason = f"real CellRanger outputs not found at {REAL} (../shared/data)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def snapshot(workdir: Path) -> dict[str, tuple[int, int]]:
    """Every file outside the workflow's own folders: size and modification time."""
    out = {}
    for path in sorted(workdir.rglob("*")):
        rel = path.relative_to(workdir)
        if rel.parts[0] in WORKFLOW_DIRS or not path.is_file():
            continue
        st = path.stat()
        out[str(rel)] = (st.st_size, st.st_mtime_ns)
    return out


def gzip_copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fh, gzip.open(dst, "wb") as out:
        shutil.copyfileobj(fh, out)


def stage_series(staging: Path) -> dict[str, ad.AnnData]:
    """A GEO series' supplementary files as GSE<n>_RAW.tar holds them, with the counts each
    sample must give, read by the reader of the tool that wrote it."""
    import scanpy as sc

    staging.mkdir(parents=True)
    v3, v2 = REAL / "v3" / "filtered_feature_bc_matrix", REAL / "v2"
    expected = {}
    for role in ("matrix.mtx.gz", "barcodes.tsv.gz", "features.tsv.gz"):  # CellRanger 3
        shutil.copy(v3 / role, staging / f"GSM5320459_Ctrl1_{role}")
    expected["Ctrl1"] = sc.read_10x_mtx(v3)
    shutil.copy(
        REAL / "v3" / "filtered_feature_bc_matrix.h5",
        staging / "GSM5320460_Ctrl2_filtered_feature_bc_matrix.h5",
    )
    expected["Ctrl2"] = sc.read_10x_h5(REAL / "v3" / "filtered_feature_bc_matrix.h5")
    # its raw sibling, as GEO series often ship both: a stand-in with other cells, never read
    shutil.copy(
        REAL / "v2" / "filtered_gene_bc_matrices_h5.h5",
        staging / "GSM5320460_Ctrl2_raw_feature_bc_matrix.h5",
    )
    genome = v2 / "filtered_gene_bc_matrices" / "hg19_chr21"
    for role in ("matrix.mtx", "barcodes.tsv", "genes.tsv"):  # CellRanger 2, gzipped by GEO
        gzip_copy(genome / role, staging / f"GSM5320461_Pre1_{role}.gz")
    expected["Pre1"] = sc.read_10x_mtx(genome)
    h5ad = expected["Ctrl1"][:300].copy()  # an AnnData file, written by anndata
    h5ad.write_h5ad(staging / "GSM5320462_Pre2.h5ad")
    expected["Pre2"] = ad.read_h5ad(staging / "GSM5320462_Pre2.h5ad")
    expected["Post1"] = write_counts(staging / "GSM5320463_Post1_counts.csv.gz", seed=1)
    for value in expected.values():
        value.var_names_make_unique()
    return expected


def write_counts(path: Path, *, seed: int) -> ad.AnnData:
    # 120 genes: every percent_top size (up to 100) applies, as in the other samples
    genes, cells, counts = synthetic_counts(120, 20, seed=seed, median_counts=300)
    write_dense(path, genes, cells, counts)
    # read back by pandas, not by scingest: genes x cells, names in the first column
    table = pd.read_csv(path, index_col=0)
    return ad.AnnData(
        sp.csr_matrix(table.T.to_numpy()),
        obs=pd.DataFrame(index=table.columns),
        var=pd.DataFrame(index=table.index),
    )


def make_tar(archive: Path, staging: Path, *, mtime: float | None = None) -> Path:
    """GSE<n>_RAW.tar as GEO builds it: one flat member per file."""
    with tarfile.open(archive, "w") as tar:
        for path in sorted(staging.iterdir()):
            info = tar.gettarinfo(path, arcname=path.name)
            if mtime is not None:
                info.mtime = mtime
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    return archive


def jobs_planned(workdir: Path, config: dict, *args: str) -> dict[str, int]:
    run = run_workflow(workdir, "--dry-run", "--quiet", "rules", *args, config=config)
    jobs, in_table = {}, False
    for line in run.output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            jobs[parts[0]] = int(parts[1])
    return jobs


def test_a_geo_series_archive_is_read_as_geo_ships_it_and_reruns_follow_its_files(tmp_path):
    need_real_data()
    staging = tmp_path.parent / f"{tmp_path.name}-staging"
    expected = stage_series(staging)
    (tmp_path / "download").mkdir()
    archive = make_tar(tmp_path / "download" / "GSE5320_RAW.tar", staging)
    before = snapshot(tmp_path)
    config = {"input_dir": "download/GSE5320_RAW.tar", "join": "outer"}
    run_workflow(tmp_path, config=config, timeout=1200)

    sheet = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t")
    rows = sheet.set_index("sample")
    assert rows["format"].to_dict() == {
        "Ctrl1": "10x_triplet",
        "Ctrl2": "10x_h5",
        "Post1": "csv",
        "Pre1": "10x_triplet",
        "Pre2": "h5ad",
    }
    assert rows[["sample_id", "condition", "donor"]].T.to_dict("list") == {
        "Ctrl1": ["GSM5320459", "Ctrl", 1],
        "Ctrl2": ["GSM5320460", "Ctrl", 2],
        "Pre1": ["GSM5320461", "Pre", 1],
        "Pre2": ["GSM5320462", "Pre", 2],
        "Post1": ["GSM5320463", "Post", 1],
    }
    assert (
        rows.loc["Ctrl2", "path"]
        == "results/input/GSE5320_RAW/GSM5320460_Ctrl2_filtered_feature_bc_matrix.h5"
    )
    assert all(p.startswith("results/input/GSE5320_RAW/") for p in sheet["path"])
    for sample, ref in expected.items():
        ckpt = ad.read_h5ad(tmp_path / "results" / "samples" / f"{sample}.h5ad")
        assert ckpt.obs["barcode"].tolist() == ref.obs_names.tolist(), sample
        assert ckpt.var_names.tolist() == ref.var_names.tolist(), sample
        np.testing.assert_array_equal(ckpt.layers["counts"].toarray(), ref.X.toarray())
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    assert merged.obs["sample"].value_counts().to_dict() == {
        s: r.n_obs for s, r in expected.items()
    }
    # nothing written outside the workflow's folders: the download is as it was
    assert snapshot(tmp_path) == before

    # reruns: nothing changed, nothing to do; the archive touched: still nothing (its
    # stamp's sha256). --max-checksum-file-size 0 makes Snakemake judge by times alone, as
    # it does for inputs above its checksum limit (1 MB): real series' files
    big = ("--max-checksum-file-size", "0")
    assert jobs_planned(tmp_path, config, *big) == {}
    os.utime(archive, (time.time(), time.time()))
    assert jobs_planned(tmp_path, config, *big) == {}
    # re-downloaded with one sample changed and every member's time new: only that sample
    expected["Post1"] = write_counts(staging / "GSM5320463_Post1_counts.csv.gz", seed=2)
    make_tar(archive, staging, mtime=time.time() + 5)
    jobs = jobs_planned(tmp_path, config, *big)
    assert jobs.get("ingest_sample") == 1, jobs
    run_workflow(tmp_path, "results/samples/Post1.h5ad", config=config)
    post1 = ad.read_h5ad(tmp_path / "results" / "samples" / "Post1.h5ad")
    np.testing.assert_array_equal(post1.layers["counts"].toarray(), expected["Post1"].X.toarray())
    shutil.rmtree(staging)


def test_a_series_archive_inside_input_dir_and_an_unsafe_one(tmp_path):
    staging = tmp_path.parent / f"{tmp_path.name}-staging"
    staging.mkdir()
    write_10x(staging, make_cells(seed=1), prefix="GSM1_Ctrl1_")
    write_counts(staging / "GSM2_Pre1_counts.csv.gz", seed=3)
    (tmp_path / "data").mkdir()
    make_tar(tmp_path / "data" / "GSE1_RAW.tar", staging)
    config = {"input_dir": "data"}
    run_workflow(tmp_path, "results/samplesheet.tsv", config=config)
    sheet = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t")
    assert sheet[["sample", "format"]].values.tolist() == [
        ["Ctrl1", "10x_triplet"],
        ["Pre1", "csv"],
    ]

    # an archive whose member would be written outside: refused before any job, naming it
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    with tarfile.open(unsafe / "GSE2_RAW.tar", "w") as tar:
        good = tarfile.TarInfo("GSM3_Ctrl3_counts.csv.gz")
        good.size = 1
        tar.addfile(good, io.BytesIO(b"x"))
        evil = tarfile.TarInfo("../../../escaped_by_scingest.csv")
        evil.size = 1
        tar.addfile(evil, io.BytesIO(b"x"))
    run = run_workflow(tmp_path, "--dry-run", config={"input_dir": "unsafe"}, check=False)
    assert run.returncode != 0
    assert "GSE2_RAW.tar: member '../../../escaped_by_scingest.csv' has '..'" in run.output
    assert not (tmp_path / "results" / "input" / "GSE2_RAW").exists()
    assert not [*tmp_path.rglob("escaped*"), *tmp_path.parent.glob("escaped*")]
    shutil.rmtree(staging)


def test_run_folders_are_samples_named_after_themselves_by_default(tmp_path):
    runs = tmp_path / "runs"
    samples = {"Ctrl1": make_cells(n_cells=12, seed=1), "Star2": make_cells(n_cells=13, seed=2)}
    write_cellranger_count(runs / "Ctrl1", samples["Ctrl1"])
    write_starsolo(runs / "Star2", samples["Star2"])
    samples["KbRun"] = make_cells(n_cells=14, seed=3)
    write_kb(runs / "KbRun", samples["KbRun"])
    run_workflow(tmp_path, config={"input_dir": "runs"})  # the default filename_pattern
    sheet = pd.read_csv(tmp_path / "results" / "samplesheet.tsv", sep="\t")
    assert sheet[["sample", "format", "condition"]].fillna("").values.tolist() == [
        ["Ctrl1", "cellranger_count", "Ctrl"],
        ["KbRun", "kb", ""],
        ["Star2", "starsolo", "Star"],
    ]
    merged = ad.read_h5ad(tmp_path / "results" / "merged.h5ad")
    for sample, cells in samples.items():
        part = merged[merged.obs["sample"] == sample]
        names = ad.utils.make_index_unique(pd.Index(cells.symbols))
        np.testing.assert_array_equal(part[:, names].X.toarray(), cells.counts.toarray())

    # a CellRanger multi run as input_dir: one sample per per_sample_outs/<name>
    multi = tmp_path / "multi"
    multi.mkdir()
    write_cellranger_multi(
        multi / "Multi" / "outs", {"Multi1": make_cells(seed=4), "Multi2": make_cells(seed=5)}
    )
    run_workflow(multi, "results/samplesheet.tsv", config={"input_dir": "Multi"})
    sheet = pd.read_csv(multi / "results" / "samplesheet.tsv", sep="\t")
    assert sheet[["sample", "format", "donor"]].values.tolist() == [
        ["Multi1", "cellranger_multi", 1],
        ["Multi2", "cellranger_multi", 2],
    ]
