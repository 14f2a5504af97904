"""Benchmarks of issue 4: each target as a ratio against its baseline, measured in one run.

Usage::

    .venv/bin/python bench/run.py [PART ...] [--repeat N]

PARTs: reader, tenx, sample, merge, compression, workflow, doublets.

No part named: all of them. Every candidate runs in a fresh subprocess; its wall time is
taken around the subprocess (and, where a part of it is the point, inside it), its peak
RSS from the OS (``os.wait4`` rusage). Data are made once with a fixed seed and cached in
``bench/data/`` (git-ignored). numba's first compile is never timed: a warm-up process
fills numba's on-disk cache first; loading that cache (about 1 s per process) is
included where a whole process is timed and reported on its own line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(BENCH))

PARTS = ("reader", "tenx", "sample", "merge", "compression", "workflow", "doublets")
#: cells per synthetic checkpoint in the merge part: seed-size (9,413) x 48 would write
#: 13 GB twice; 2,500 cells x 33,538 genes keeps 12 vs 48 samples a 4x step in cells.
MERGE_CELLS = 2_500
#: the baseline: inflate to /dev/null (the shell's ``gzip -dc file > /dev/null``)
GZIP = ["sh", "-c", 'exec gzip -dc "$0" > /dev/null']


# ---------------------------------------------------------------------------- running


#: Peak RSS must come from a small parent: Linux carries a process's high-water RSS across
#: fork and exec, so a child forked from this (large) process would report this process's
#: size. This launcher, a bare interpreter of about 10 MiB, runs the command and writes the
#: command's wall time and os.wait4 rusage peak to the file named by its first argument.
LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
open(sys.argv[1], "w").write(f"{wall} {usage.ru_maxrss * 1024}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run(cmd: list[str], *, label: str) -> dict[str, Any]:
    """Run ``cmd``; return its wall time, peak RSS and the JSON its last stdout line holds."""
    with tempfile.NamedTemporaryFile("r", suffix=".usage") as usage:
        proc = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, usage.name, *cmd], capture_output=True, cwd=REPO
        )
        if proc.returncode != 0:
            err = proc.stderr.decode()[-3000:]
            raise RuntimeError(f"{label} failed ({proc.returncode}):\n{err}")
        wall, rss = usage.read().split()
    lines = proc.stdout.decode().strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    # a child's own correctness check (hashing its result) is not part of the candidate
    return {"wall": float(wall) - result.get("verify", 0.0), "peak": int(rss), **result}


def child(name: str, *args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", name, *args]


def best(cmd: list[str], *, label: str, repeat: int) -> dict[str, Any]:
    """The fastest of ``repeat`` runs (the machine is shared: the minimum is the least noisy)."""
    runs = [run(cmd, label=label) for _ in range(repeat)]
    fastest = min(runs, key=lambda r: r["wall"])
    fastest["walls"] = [round(r["wall"], 2) for r in runs]
    fastest["peak"] = max(r["peak"] for r in runs)
    return fastest


def mib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def line(label: str, seconds: float, peak: float | None, note: str = "") -> None:
    rss = f"peak {mib(peak):>9}" if peak is not None else " " * 14
    print(f"  {label:<52} {seconds:7.2f} s  {rss}  {note}", flush=True)


# ---------------------------------------------------------------------------- parts


def part_reader(repeat: int) -> None:
    from data import seed_csv_gz, tiny_csv_gz

    path, tiny = seed_csv_gz(), tiny_csv_gz()
    print(f"\n[reader] read_counts on {path.name} ({mib(path.stat().st_size)} gzipped)")
    run(child("warm", str(tiny)), label="numba warm-up")
    gz = best([*GZIP, str(path)], label="gzip -dc", repeat=repeat)
    cold = best(child("read", str(path)), label="read_counts", repeat=repeat)
    warm = best(child("read", str(path), str(tiny)), label="read_counts warm", repeat=repeat)
    tut = best(child("tutorial", str(path)), label="tutorial loader", repeat=1)
    g = gz["wall"]
    line("gzip -dc > /dev/null (baseline)", g, gz["peak"], f"runs {gz['walls']}")
    line("read_counts, whole process", cold["wall"], cold["peak"], f"{cold['wall'] / g:.2f}x gzip")
    line("  of which python start-up + imports", cold["import"], None)
    line("  of which read_counts() incl. numba cache load", cold["call"], None)
    line(
        "read_counts() with numba loaded (steady state)",
        warm["call"],
        warm["peak"],
        f"{warm['call'] / g:.2f}x gzip",
    )
    line("tutorial loader, whole process", tut["wall"], tut["peak"])
    print(
        f"  => read_counts vs gzip -dc: {cold['wall'] / g:.2f}x (process), "
        f"{cold['call'] / g:.2f}x (call), {warm['call'] / g:.2f}x (numba loaded); "
        f"target <= 1.3x"
    )
    print(
        f"  => speed-up over the tutorial loader: {tut['wall'] / cold['wall']:.1f}x (process), "
        f"{tut['call'] / cold['call']:.1f}x (call); target >= 15x"
    )
    print(f"  => peak RSS {mib(cold['peak'])} (target <= 1 GiB)")
    same = cold["fingerprint"] == tut["fingerprint"] == warm["fingerprint"]
    print(f"  => matrix and names identical to the tutorial loader's: {'yes' if same else 'NO'}")
    print("  (numba first compile excluded: a warm-up process filled the cache)")


def part_tenx(repeat: int) -> None:
    from data import seed_tenx

    folder, h5 = seed_tenx()
    print(
        "\n[tenx] read_counts on the seed sample as a CellRanger 3 folder and .h5, against "
        "scanpy.read_10x_mtx / read_10x_h5 (whole processes, imports included)"
    )
    for kind, path in (("mtx", folder), ("h5", h5)):
        ours = best(child("tenx_ours", str(path)), label=f"read_counts {kind}", repeat=repeat)
        theirs = best(
            child(f"tenx_scanpy_{kind}", str(path)), label=f"scanpy {kind}", repeat=repeat
        )
        line(
            f"read_counts, {kind}",
            ours["wall"],
            ours["peak"],
            f"call {ours['call']:.2f} s, {ours['format']}",
        )
        line(
            f"scanpy.read_10x_{kind}",
            theirs["wall"],
            theirs["peak"],
            f"call {theirs['call']:.2f} s, {theirs['format']}",
        )
        same = "yes" if ours["fingerprint"] == theirs["fingerprint"] else "NO"
        print(
            f"  => {kind}: read_counts {ours['wall'] / theirs['wall']:.2f}x scanpy's time "
            f"(process), {ours['call'] / theirs['call']:.2f}x (call), "
            f"{ours['peak'] / theirs['peak']:.2f}x its peak RSS (target <= 1x time, CSR); "
            f"same counts and names: {same}"
        )


def part_sample(repeat: int) -> None:
    from data import seed_csv_gz, tiny_csv_gz

    path, tiny = seed_csv_gz(), tiny_csv_gz()
    out = BENCH / "data" / "out_sample.h5ad"
    print(f"\n[sample] build_sample + write_h5ad (gzip) on {path.name}, as rule ingest_sample")
    run(child("warm", str(tiny)), label="numba warm-up")
    gz = best([*GZIP, str(path)], label="gzip -dc", repeat=repeat)
    res = best(child("sample", str(path), str(tiny), str(out)), label="sample", repeat=repeat)
    g = gz["wall"]
    line("gzip -dc > /dev/null (baseline)", g, gz["peak"], f"runs {gz['walls']}")
    ratio = f"{res['call'] / g:.2f}x gzip"
    line("read + QC + write, numba loaded", res["call"], res["peak"], ratio)
    line("  of which read_counts", res["read"], None)
    line("  of which QC metrics and annotation", res["qc"], None)
    line("  of which write_h5ad (gzip)", res["write"], None)
    line("whole process (imports, numba cache loads, warm-up)", res["wall"], None)
    print(f"  => one sample end to end: {res['call'] / g:.2f}x gzip -dc (target <= 3x)")
    print("  (numba first compile and cache loading excluded: warmed on a tiny sample)")
    out.unlink(missing_ok=True)


def part_doublets(repeat: int) -> None:
    """The time ``doublets: scrublet`` adds to one sample's job (build_sample), as a ratio
    against the same job without it. ``SCINGEST_BENCH_SMALL=1``: a 2,000-cell sample
    instead of the seed one (a quick check that the part runs)."""
    from data import seed_counts, seed_csv_gz, tiny_csv_gz, write_csv_gz

    if os.environ.get("SCINGEST_BENCH_SMALL"):
        path = BENCH / "data" / "doublets_small.csv.gz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_csv_gz(path, *seed_counts(n_cells=2_000, n_genes=5_000, seed=2))
    else:
        path = seed_csv_gz()
    tiny = tiny_csv_gz()
    print(f"\n[doublets] build_sample without and with doublets: scrublet, on {path.name}")
    run(child("warm", str(tiny)), label="numba warm-up")
    res = {
        method: best(child("doublets", str(path), str(tiny), method), label=method, repeat=repeat)
        for method in ("none", "scrublet")
    }
    none, scrub = res["none"]["call"], res["scrublet"]["call"]
    line("build_sample, doublets: none (baseline)", none, res["none"]["peak"])
    line("build_sample, doublets: scrublet", scrub, res["scrublet"]["peak"], f"{scrub / none:.2f}x")
    print(
        f"  => scrublet adds {scrub - none:.1f} s per sample of {res['scrublet']['cells']:,} "
        f"cells ({scrub / none:.2f}x the job without it); "
        f"{res['scrublet']['doublets']:,} cells called doublets"
    )


def part_merge(repeat: int) -> None:
    from scingest.h5stream import BLOCK_NNZ

    folder = BENCH / "data" / f"checkpoints_{MERGE_CELLS}"
    print(
        f"\n[merge] merge_checkpoints (inner join, gzip, block_nnz={BLOCK_NNZ:,}) of synthetic "
        f"checkpoints, {MERGE_CELLS:,} cells x 33,538 genes each, against anndata's "
        "experimental.concat_on_disk (the library merge it replaces) on the same files"
    )
    run(child("checkpoints", str(folder), "48"), label="writing checkpoints")
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for n in (12, 48):
        for name in ("merge", "concat_on_disk"):
            out = BENCH / "data" / f"merged_{n}.h5ad"
            result = best(child(name, str(folder), str(n), str(out)), label=name, repeat=1)
            results[name, n] = result
            size = out.stat().st_size
            out.unlink(missing_ok=True)
            line(
                f"{name} {n} samples ({n * MERGE_CELLS:,} cells)",
                result["wall"],
                result["peak"],
                f"{mib(size)} on disk",
            )
    for name in ("merge", "concat_on_disk"):
        ratio = results[name, 48]["peak"] / results[name, 12]["peak"]
        print(f"  => {name}: peak RSS 48 vs 12 samples {ratio:.2f}x (target within 1.2x)")
    for n in (12, 48):
        mine, lib = results["merge", n], results["concat_on_disk", n]
        print(
            f"  => {n} samples: merge vs concat_on_disk: {mine['wall'] / lib['wall']:.2f}x the "
            f"time, {mine['peak'] / lib['peak']:.2f}x the peak RSS"
        )


def part_compression(repeat: int) -> None:
    from data import seed_csv_gz, tiny_csv_gz

    path, tiny = seed_csv_gz(), tiny_csv_gz()
    print(f"\n[compression] write_h5ad of the seed checkpoint ({path.name} through build_sample)")
    run(child("warm", str(tiny)), label="numba warm-up")
    results = {}
    for comp in ("none", "lzf", "gzip", "gzip-4"):  # gzip-4: h5py's default level, for contrast
        out = BENCH / "data" / f"out_{comp}.h5ad"
        results[comp] = best(child("write", str(path), comp, str(out)), label=comp, repeat=repeat)
        out.unlink(missing_ok=True)
    base = results["none"]
    for comp, res in results.items():
        line(
            f"{comp}: {mib(res['size'])} on disk, read back in {res['read_back']:.2f} s",
            res["call"],
            res["peak"],
            f"{res['call'] / base['call']:.2f}x time, {res['size'] / base['size']:.2f}x size "
            "of none",
        )


# ---------------------------------------------------------------------------- children


#: The 12 samples of the workflow part: names as in the reference GEO series, all linked
#: to the seed file (content does not change the work; 12 distinct files would take 18 min
#: to make).
WORKFLOW_SAMPLES = [f"{c}{d}" for c in ("Ctrl", "Pre", "Post") for d in range(1, 5)]


def part_workflow(repeat: int) -> None:
    import shutil

    import pandas as pd
    from data import seed_csv_gz

    seed = seed_csv_gz()
    folder = BENCH / "data" / "geo12"
    folder.mkdir(parents=True, exist_ok=True)
    for i, sample in enumerate(WORKFLOW_SAMPLES):
        link = folder / f"GSM{5320459 + i}_{sample}_count_matrix.csv.gz"
        if not link.exists():
            os.link(seed, link)
    print(
        f"\n[workflow] 12 seed-size samples ({len(WORKFLOW_SAMPLES)} x 33,538 x 9,413), from "
        "nothing to results/merged.h5ad, against the tutorial's putting-it-all-together script"
    )
    work = BENCH / "data" / "workflow_run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    snakemake = [
        str(Path(sys.executable).parent / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        "--cores",
        "2",
        "--quiet",
        "--config",
        f"input_dir={folder}",
        "--",
        "results/merged.h5ad",
    ]
    ours = run(snakemake, label="snakemake")
    tables = {
        tsv.parent.name + "/" + tsv.stem: pd.read_csv(tsv, sep="\t").iloc[0]
        for tsv in sorted((work / "benchmarks").rglob("*.tsv"))
    }
    jobs = {name: row["max_rss"] for name, row in tables.items()}
    tut = run(child("tutorial_all", str(folder), str(work / "tutorial.h5ad")), label="tutorial")
    line("snakemake --cores 2, whole run", ours["wall"], ours["peak"], "peak of any process")
    worst = max(jobs, key=jobs.get)
    line(f"  largest job: {worst}", 0, jobs[worst] * 2**20, "(snakemake benchmark max_rss)")
    for rule in sorted({name.split("/")[0] for name in tables}):
        rows = [row for name, row in tables.items() if name.startswith(rule + "/")]
        line(
            f"  {rule}: {len(rows)} job(s), seconds each",
            sum(r["s"] for r in rows) / len(rows),
            max(r["max_rss"] for r in rows) * 2**20,
            "(mean time, largest peak)",
        )
    line("tutorial script, whole process", tut["wall"], tut["peak"])
    print(
        f"  => speed-up over the tutorial script: {tut['wall'] / ours['wall']:.1f}x (target >= 8x)"
    )
    print(
        f"  => largest job peak RSS {mib(jobs[worst] * 2**20)} (target <= 1.5 GiB); the tutorial "
        f"script {mib(tut['peak'])}"
    )
    shutil.rmtree(work, ignore_errors=True)


def verified(result: dict[str, Any], matrix: Any, cells: Any, genes: Any) -> dict[str, Any]:
    """``result`` with the fingerprint of the output, and the seconds hashing took
    (``verify``, taken off the process's wall time by :func:`run`)."""
    import scipy.sparse as sp

    t0 = time.perf_counter()
    result["fingerprint"] = fingerprint(sp.csr_matrix(matrix), cells, genes)
    result["verify"] = time.perf_counter() - t0
    return result


def fingerprint(matrix: Any, cells: Any, genes: Any) -> str:
    """sha256 of a CSR matrix's structure and integer values and of the names."""
    import numpy as np

    digest = hashlib.sha256(repr(matrix.shape).encode())
    matrix.sort_indices()
    for array in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
    for names in (cells, genes):
        digest.update("\n".join(map(str, names)).encode())
    return digest.hexdigest()


def run_child(name: str, args: list[str]) -> dict[str, Any]:
    t0 = time.perf_counter()
    if name == "warm":  # fill numba's on-disk caches (compiles on the first run only)
        from scingest.sample import build_sample

        build_sample(args[0], sample="warm")
        return {"call": time.perf_counter() - t0}
    if name == "read":
        from scingest.readers import read_counts

        if len(args) > 1:
            read_counts(args[1])  # loads numba's cache of the kernel
        t1 = time.perf_counter()
        adata = read_counts(args[0])
        t2 = time.perf_counter()
        result = {"import": t1 - t0, "call": t2 - t1}
        return verified(result, adata.X, adata.obs_names, adata.var_names)
    if name == "tutorial":
        import pandas as pd
        import scipy.sparse as sp

        t1 = time.perf_counter()
        df = pd.read_csv(args[0], index_col=0)
        matrix = sp.csr_matrix(df.T.values)
        t2 = time.perf_counter()
        return verified({"call": t2 - t1}, matrix, df.columns, df.index)
    if name == "sample":
        from scingest.readers import read_counts
        from scingest.sample import build_sample, write_h5ad

        build_sample(args[1], sample="warm")  # numba caches: our kernel and scanpy's QC
        t1 = time.perf_counter()
        del read_counts(args[0]).X  # the reader's share, timed on its own
        read = time.perf_counter() - t1
        t1 = time.perf_counter()
        adata = build_sample(args[0], sample="S1")
        t2 = time.perf_counter()
        write_h5ad(adata, args[2], compression="gzip")
        t3 = time.perf_counter()
        return {"call": t3 - t1, "read": read, "qc": t2 - t1 - read, "write": t3 - t2}
    if name == "doublets":
        from scingest.sample import build_sample

        build_sample(args[1], sample="warm")  # numba caches: our kernel and scanpy's QC
        t1 = time.perf_counter()
        adata = build_sample(args[0], sample="S1", doublets=args[2])
        called = adata.obs["predicted_doublet"].sum() if args[2] == "scrublet" else 0
        return {"call": time.perf_counter() - t1, "cells": adata.n_obs, "doublets": int(called)}
    if name == "write":
        import anndata as ad

        from scingest.sample import build_sample, write_h5ad

        adata = build_sample(args[0], sample="S1")
        t1 = time.perf_counter()
        if args[1] == "gzip-4":
            adata.write_h5ad(args[2], compression="gzip", compression_opts=4)
        else:
            write_h5ad(adata, args[2], compression=args[1])
        t2 = time.perf_counter()
        ad.read_h5ad(args[2])
        return {
            "call": t2 - t1,
            "size": os.path.getsize(args[2]),
            "read_back": time.perf_counter() - t2,
        }
    if name == "checkpoints":
        from data import write_checkpoints

        write_checkpoints(Path(args[0]), int(args[1]), n_cells=MERGE_CELLS)
        return {}
    if name == "merge":
        from scingest.merge import merge_checkpoints

        folder, n = Path(args[0]), int(args[1])
        paths = {f"S{i:02d}": folder / f"S{i:02d}.h5ad" for i in range(n)}
        t1 = time.perf_counter()
        merge_checkpoints(paths, args[2], join="inner", compression="gzip")
        return {"call": time.perf_counter() - t1}
    if name == "tenx_ours":
        import scanpy  # noqa: F401 - as scanpy's process: the h5 reader uses it, and calls compare reading

        from scingest.readers import read_counts

        t1 = time.perf_counter()
        adata = read_counts(args[0])
        result = {"call": time.perf_counter() - t1, "format": type(adata.X).__name__}
        return verified(result, adata.X, adata.obs_names, adata.var_names)
    if name.startswith("tenx_scanpy_"):
        import scanpy as sc
        import scipy.sparse as sp

        t1 = time.perf_counter()
        reader = sc.read_10x_mtx if name.endswith("mtx") else sc.read_10x_h5
        adata = reader(args[0])
        result = {"call": time.perf_counter() - t1, "format": type(adata.X).__name__}
        return verified(result, adata.X, adata.obs_names, adata.var_names)
    if name == "tutorial_all":  # the tutorial's script, with the same QC metrics as ours
        import re

        import anndata as ad
        import pandas as pd
        import scanpy as sc
        import scipy.sparse as sp

        pattern = re.compile(r"(GSM\d+)_(([A-Za-z]+)(\d+))_count_matrix\.csv\.gz")
        adatas = {}
        for path in sorted(Path(args[0]).glob("*.csv.gz")):
            sample_id, sample, condition, donor = pattern.fullmatch(path.name).groups()
            df = pd.read_csv(path, index_col=0)
            adata = ad.AnnData(
                sp.csr_matrix(df.T.values),
                obs=pd.DataFrame(index=df.columns),
                var=pd.DataFrame(index=df.index),
            )
            adata.obs["sample_id"], adata.obs["condition"] = sample_id, condition
            adata.obs["donor"] = int(donor)
            adatas[sample] = adata
            del df
        adata = ad.concat(adatas, label="sample", index_unique="-")
        adata.layers["counts"] = adata.X.copy()
        adata.var["mt"] = adata.var_names.str.startswith("MT-")
        sc.pp.calculate_qc_metrics(adata, qc_vars=["mt"], inplace=True, log1p=True)
        adata.write_h5ad(args[1])
        return {"call": time.perf_counter() - t0}
    if name == "concat_on_disk":
        from anndata.experimental import concat_on_disk

        folder, n = Path(args[0]), int(args[1])
        t1 = time.perf_counter()
        concat_on_disk([folder / f"S{i:02d}.h5ad" for i in range(n)], args[2], join="inner")
        return {"call": time.perf_counter() - t1}
    raise SystemExit(f"unknown child {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="part", help=f"{', '.join(PARTS)}; default all")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cheap candidate")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}: expected {', '.join(PARTS)}")
    if args.child:
        result = run_child(args.child[0], args.child[1:])
        print(json.dumps(result))
        return
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    for part in args.parts or PARTS:
        globals()[f"part_{part}"](args.repeat)


if __name__ == "__main__":
    main()
