"""Benchmarks: each target as a ratio against its baseline, measured in one run; the peers
(``anndata.experimental.concat_on_disk`` for the merge parts, TileDB-SOMA's own
``tiledbsoma.io.from_h5ad`` for the collection) beside ours in the same run.

Usage::

    .venv/bin/python bench/run.py [PART ...] [--repeat N]

PARTs: reader, tenx, sample, merge, merge-scale, compression, workflow, demo, firstrun,
collection, doublets, cells. ``--small`` runs the merge parts on small data (to check that they
work; the figures mean nothing).

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
import shutil
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

PARTS = (
    "reader",
    "tenx",
    "sample",
    "merge",
    "merge-scale",
    "compression",
    "workflow",
    "demo",
    "firstrun",
    "collection",
    "doublets",
    "cells",
)
#: cells part: barcodes of the simulated raw matrix (``--cells-barcodes``)
CELLS_BARCODES = 500_000
#: collection part: cells in the whole store (``--collection-cells``), split over this many
#: samples (a quarter of them is the small store whose peak RSS the full one is held to)
COLLECTION_CELLS = 1_000_000
COLLECTION_SAMPLES = 48
#: genes of the collection part's checkpoints (``--collection-genes``): the seed's first
#: 2,000 (about 120 stored values per cell), as in merge-scale, so that a million cells
#: build in minutes here; a store's write time follows its stored values, which the part
#: prints, so the full 33,538 genes (about 1,800 per cell) can be judged from it
COLLECTION_GENES = 2_000
#: The merge part: 12 seed-size checkpoints (9,413 cells x 33,538 genes), gzip as the
#: workflow writes them by default; in the outer-join set every odd-numbered sample has
#: MERGE_APPENDED genes of its own after the shared ones.
MERGE_SAMPLES = 12
MERGE_APPENDED = 200
#: Sizes of the merge parts; ``--small`` replaces them. merge-scale: 100 x 10,000 cells
#: (1,000,000) of the seed's first 2,000 genes, so the files stay a few hundred MB.
SIZES = {"merge_cells": 9_413, "scale_samples": 100, "scale_cells": 10_000, "scale_genes": 2_000}
SMALL = {"merge_cells": 500, "scale_samples": 15, "scale_cells": 1_000, "scale_genes": 2_000}
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


def clear_run(work: Path) -> None:
    """Remove what a workflow run left in ``work``, so the next one starts from nothing."""
    for name in ("results", "logs", "benchmarks", ".snakemake"):
        shutil.rmtree(work / name, ignore_errors=True)


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


CELLS_R = r"""
suppressMessages({library(DropletUtils); library(Matrix)})
args <- commandArgs(trailingOnly = TRUE)
m <- as(readMM(args[1]), "CsparseMatrix")
set.seed(1)
t0 <- Sys.time()
out <- emptyDropsCellRanger(m, n.expected.cells = as.integer(args[2]),
  umi.min = as.numeric(args[3]) - 1, umi.min.frac.median = 0, cand.max.n = 1e9,
  ind.min = 45001L, ind.max = 90000L)
secs <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
called <- which(!is.na(out$FDR) & out$FDR <= 0.01) - 1
writeLines(paste(called, collapse = "\n"), args[4])
cat(sprintf('{"call": %f, "cells": %d}\n', secs, length(called)))
"""


def part_cells(repeat: int) -> None:
    """Cell calling in a raw matrix of ``CELLS_BARCODES`` barcodes (scingest.cells.call_cells:
    ordmag + EmptyDrops, CellRanger's), against DropletUtils' ``emptyDropsCellRanger`` in R
    on the same matrix with the same initial cut, candidates and ambient range; the calls
    compared with each other and with the simulation's truth."""
    import numpy as np
    from data import raw_droplets

    mtx = raw_droplets(CELLS_BARCODES)
    npz = mtx.with_suffix(".npz")
    print(f"\n[cells] call_cells vs DropletUtils::emptyDropsCellRanger, {mtx.name}")
    small = raw_droplets(60_000, n_cells=600)
    run(child("cells", str(small.with_suffix(".npz")), "/dev/null"), label="numba warm-up")
    called = BENCH / "data" / "cells_ours.txt"
    ours = best(child("cells", str(npz), str(called)), label="call_cells", repeat=repeat)
    if shutil.which("Rscript") is None:
        print("  Rscript (Debian r-bioc-dropletutils) missing: no baseline")
        return
    script = BENCH / "data" / "emptydrops_cr.R"
    script.write_text(CELLS_R)
    r_called = BENCH / "data" / "cells_dropletutils.txt"
    expected = str(100 * (round(ours["recovered"] * 0.01) + 1))
    theirs = best(
        ["Rscript", str(script), str(mtx), expected, str(ours["min_umis"]), str(r_called)],
        label="DropletUtils",
        repeat=1,
    )
    line("DropletUtils::emptyDropsCellRanger, the call (baseline)", theirs["call"], None)
    line("  whole Rscript process (readMM, library loads)", theirs["wall"], theirs["peak"])
    ratio = ours["call"] / theirs["call"]
    line("scingest.cells.call_cells, the call", ours["call"], None, f"{ratio:.2f}x")
    line("  whole process (np.load of the CSR, imports)", ours["wall"], ours["peak"])
    a = set(map(int, called.read_text().split()))
    b = set(map(int, r_called.read_text().split()))
    truth = np.load(mtx.with_name(mtx.stem + "_truth.npy"))
    cells = set(np.flatnonzero(truth).tolist())
    print(
        f"  => {ours['cells']:,} cells called ({len(a & cells):,} of {len(cells):,} simulated "
        f"cells, {len(a - cells)} empty droplets); DropletUtils {len(b):,}; the two differ on "
        f"{len(a ^ b)} barcodes; {ratio:.2f}x DropletUtils' time"
    )


def _merge_sets() -> dict[str, tuple[Path, str, float]]:
    """The merge part's checkpoint sets (made once, cached): folder, join, target ratio."""
    from data import N_GENES

    n_cells = SIZES["merge_cells"]
    sets = {
        "same genes (inner join)": (BENCH / "data" / f"merge_same_{n_cells}", "inner", 4.0),
        f"outer join, {MERGE_APPENDED} genes appended in odd samples": (
            BENCH / "data" / f"merge_outer_{n_cells}_{MERGE_APPENDED}",
            "outer",
            6.0,
        ),
    }
    for folder, join, _ in sets.values():
        appended = MERGE_APPENDED if join == "outer" else 0
        args = (str(folder), str(MERGE_SAMPLES), str(n_cells), str(N_GENES), str(appended))
        run(child("checkpoints", *args), label="writing checkpoints")
    return sets


def _cp(files: list[Path], out: Path, repeat: int) -> dict[str, Any]:
    """The baseline: the input checkpoints copied into one file (``cat a b ... > out``)."""
    cmd = ["sh", "-c", 'exec cat "$@" > "$0"', str(out), *map(str, files)]
    result = best(cmd, label="cp", repeat=repeat)
    out.unlink(missing_ok=True)
    return result


def _merged(
    name: str, folder: Path, n: int, out: Path, join: str, repeat: int
) -> tuple[dict[str, Any], int]:
    """The fastest of ``repeat`` runs of the merge child ``name`` (ours, ``merge``, or the
    peer, ``concat_on_disk``) and the size of the file it wrote (then removed)."""
    res = best(child(name, str(folder), str(n), str(out), join), label=name, repeat=repeat)
    size = out.stat().st_size
    out.unlink(missing_ok=True)
    return res, size


def part_merge(repeat: int) -> None:
    n_cells = SIZES["merge_cells"]
    print(
        f"\n[merge] merge_checkpoints (gzip) of {MERGE_SAMPLES} synthetic checkpoints of "
        f"{n_cells:,} cells x 33,538 genes, written as ingest_sample writes them (gzip, counts "
        "stored once), against copying the same files into one (cat > file)"
    )
    for label, (folder, join, target) in _merge_sets().items():
        files = [folder / f"S{i:02d}.h5ad" for i in range(MERGE_SAMPLES)]
        size = sum(f.stat().st_size for f in files)
        out = BENCH / "data" / "merged_bench.h5ad"
        cp = _cp(files, out, repeat)
        res, merged = _merged("merge", folder, MERGE_SAMPLES, out, join, repeat)
        peer, peer_size = _merged("concat_on_disk", folder, MERGE_SAMPLES, out, join, repeat)
        print(f"  {label}: {mib(size)} of checkpoints, merged file {mib(merged)}")
        line(
            "cp of the checkpoints into one file (baseline)",
            cp["wall"],
            cp["peak"],
            f"runs {cp['walls']}",
        )
        line("merge, whole process", res["wall"], res["peak"], f"runs {res['walls']}")
        line("  of which merge_checkpoints()", res["call"], None, f"X per sample: {res['modes']}")
        line(
            "anndata.experimental.concat_on_disk (peer), whole process",
            peer["wall"],
            peer["peak"],
            f"runs {peer['walls']}; file {mib(peer_size)}",
        )
        line("  of which concat_on_disk()", peer["call"], None)
        print(
            f"  => {label}: merge_checkpoints() {res['call'] / cp['wall']:.2f}x cp "
            f"(whole process {res['wall'] / cp['wall']:.2f}x, imports included); "
            f"target <= {target:g}x"
        )
        print(
            f"  => peer: merge_checkpoints() {res['call'] / peer['call']:.2f}x the time of "
            f"concat_on_disk(), peak RSS {res['peak'] / peer['peak']:.2f}x, file "
            f"{merged / peer_size:.2f}x its size"
        )


def part_merge_scale(repeat: int) -> None:
    from data import N_GENES

    samples, cells, genes = SIZES["scale_samples"], SIZES["scale_cells"], SIZES["scale_genes"]
    folder = BENCH / "data" / f"merge_scale_{samples}x{cells}x{genes}"
    print(
        f"\n[merge-scale] merge_checkpoints (gzip) of {samples} synthetic checkpoints of "
        f"{cells:,} cells x {genes:,} genes ({samples * cells:,} cells), against the "
        f"{MERGE_SAMPLES}-sample merge of the merge part ({SIZES['merge_cells']:,} cells x "
        f"{N_GENES:,} genes each) and the first {MERGE_SAMPLES} of the same checkpoints"
    )
    args = (str(folder), str(samples), str(cells), str(genes), "0")
    run(child("checkpoints", *args), label="writing checkpoints")
    same = next(iter(_merge_sets().values()))[0]
    out = BENCH / "data" / "merged_scale.h5ad"
    results = {}
    for label, src, n in (
        (f"{MERGE_SAMPLES} seed-size samples (merge part)", same, MERGE_SAMPLES),
        (f"first {MERGE_SAMPLES} of the {samples}", folder, MERGE_SAMPLES),
        (f"all {samples} samples", folder, samples),
    ):
        res = best(child("merge", str(src), str(n), str(out), "inner"), label="merge", repeat=1)
        results[label] = res
        n_cells = n * (SIZES["merge_cells"] if src == same else cells)
        line(
            f"{label}, {n_cells:,} cells",
            res["wall"],
            res["peak"],
            f"call {res['call']:.2f} s, {res['call'] / n_cells * 1e6:.2f} s per million cells",
        )
        out.unlink(missing_ok=True)
    ref, like, big = (results[k] for k in results)
    res, ours_size = _merged("merge", folder, samples, out, "inner", 1)
    peer, peer_size = _merged("concat_on_disk", folder, samples, out, "inner", 1)
    line(
        f"anndata.experimental.concat_on_disk (peer), all {samples} samples",
        peer["wall"],
        peer["peak"],
        f"call {peer['call']:.2f} s; file {mib(peer_size)}",
    )
    print(
        f"  => {samples * cells:,} cells: {big['call'] / (samples * cells) * 1e6:.2f} s per "
        f"million cells (merge_checkpoints()); peak RSS {mib(big['peak'])}, "
        f"{big['peak'] / ref['peak']:.2f}x the {MERGE_SAMPLES}-sample merge's "
        f"(target within 1.2x), {big['peak'] / like['peak']:.2f}x the merge of its first "
        f"{MERGE_SAMPLES}"
    )
    time_ratio, peak_ratio = res["call"] / peer["call"], res["peak"] / peer["peak"]
    print(
        f"  => peer at {samples * cells:,} cells: merge_checkpoints() {time_ratio:.2f}x the "
        f"time of concat_on_disk(), peak RSS {peak_ratio:.2f}x, file "
        f"{ours_size / peer_size:.2f}x its size"
    )


def part_collection(repeat: int) -> None:
    import math

    import h5py

    total, genes = COLLECTION_CELLS, COLLECTION_GENES
    per = math.ceil(total / COLLECTION_SAMPLES)
    folder = BENCH / "data" / f"checkpoints_{per}x{genes}"
    print(
        f"\n[collection] build_soma_collection of {COLLECTION_SAMPLES} synthetic checkpoints "
        f"of {per:,} cells x {genes:,} genes ({COLLECTION_SAMPLES * per:,} cells), a quarter "
        "of them, appending one more, and queries (--collection-cells and --collection-genes "
        "set the size)"
    )
    n = COLLECTION_SAMPLES
    run(
        child("checkpoints_n", str(folder), str(n + 1), str(per), str(genes)),
        label="writing checkpoints",
    )
    values = []
    for i in range(n + 1):
        with h5py.File(folder / f"S{i:02d}.h5ad", "r") as f:
            values.append(int(f["X/indptr"][-1]))
    print(
        f"  stored values: {sum(values[:n]):,} in {n} samples "
        f"({sum(values[:n]) / (n * per):.0f} per cell)"
    )
    store = BENCH / "data" / f"collection_{per}.soma"
    results = {}
    for k in (n // 4, n):
        shutil.rmtree(store, ignore_errors=True)
        res = run(child("collection_build", str(folder), str(k), str(store)), label="build")
        results[k] = res
        rate = sum(values[:k]) / res["call"] / 1e6
        line(
            f"build {k} samples ({k * per:,} cells)",
            res["call"],
            res["peak"],
            f"{rate:.1f} M stored values per second",
        )
    ratio = results[n]["peak"] / results[n // 4]["peak"]
    print(f"  => peak RSS {n} vs {n // 4} samples: {ratio:.2f}x (target within 1.3x)")
    peer_store = BENCH / "data" / f"collection_{per}_from_h5ad.soma"
    for k in (n // 4, n):
        shutil.rmtree(peer_store, ignore_errors=True)
        peer = run(child("soma_from_h5ad", str(folder), str(k), str(peer_store)), label="peer")
        # the peer's store must hold every cell and stored value of the checkpoints
        assert peer["stored"] == [k * per, sum(values[:k])], (peer["stored"], k * per)
        line(
            f"tiledbsoma.io.from_h5ad (peer), {k} samples ({k * per:,} cells)",
            peer["call"],
            peer["peak"],
            f"register_h5ads + from_h5ad per checkpoint; store {mib(_tree_size(peer_store))}",
        )
        time_ratio = results[k]["call"] / peer["call"]
        peak_ratio = results[k]["peak"] / peer["peak"]
        print(
            f"  => peer at {k} samples: build_soma_collection() {time_ratio:.2f}x the time of "
            f"from_h5ad, peak RSS {peak_ratio:.2f}x"
        )
    shutil.rmtree(peer_store, ignore_errors=True)
    cellarr = BENCH / "data" / f"collection_{per}.cellarr"
    k = n // 4
    res = run(child("collection_cellarr", str(folder), str(k), str(cellarr)), label="cellarr")
    inputs = sum((folder / f"S{i:02d}.h5ad").stat().st_size for i in range(k))
    line(
        f"cellarr: build {k} samples ({k * per:,} cells)",
        res["call"],
        res["peak"],
        f"{res['peak'] / inputs:.1f}x the {mib(inputs)} of checkpoints",
    )
    shutil.rmtree(cellarr, ignore_errors=True)
    res = run(child("collection_query", str(store), "genes"), label="query genes")
    line(f"query 3 genes over all {n * per:,} cells", res["call"], res["peak"], res["shape"])
    res = run(child("collection_query", str(store), "sample"), label="query sample")
    line("query one sample's cells, all genes", res["call"], res["peak"], res["shape"])
    append = run(child("collection_append", str(folder), str(n), str(store)), label="append")
    line(f"append sample {n + 1} to the {n}-sample store", append["call"], append["peak"])
    one = BENCH / "data" / f"collection_{per}_one.soma"
    shutil.rmtree(one, ignore_errors=True)
    single = run(child("collection_one", str(folder), str(n), str(one)), label="one")
    line("build a store of that 1 sample", single["call"], single["peak"])
    print(
        f"  => append to {n} samples vs a 1-sample store: "
        f"{append['call'] / single['call']:.2f}x the time (target <= 2x)"
    )
    shutil.rmtree(one, ignore_errors=True)
    shutil.rmtree(store, ignore_errors=True)


def _tree_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


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


#: --workflow-samples: how many of WORKFLOW_SAMPLES the workflow part runs (fewer for a
#: quick check; the target is measured with all 12)
N_WORKFLOW_SAMPLES = len(WORKFLOW_SAMPLES)


def part_workflow(repeat: int) -> None:
    import pandas as pd
    from data import seed_csv_gz

    seed = seed_csv_gz()
    samples = WORKFLOW_SAMPLES[:N_WORKFLOW_SAMPLES]
    folder = BENCH / "data" / f"geo{len(samples)}"
    folder.mkdir(parents=True, exist_ok=True)
    for i, sample in enumerate(samples):
        link = folder / f"GSM{5320459 + i}_{sample}_count_matrix.csv.gz"
        if not link.exists():
            os.link(seed, link)
    print(
        f"\n[workflow] {len(samples)} seed-size samples ({len(samples)} x 33,538 x 9,413), "
        "from nothing to the default target (merged.h5ad, QC summary, plots), against the "
        "tutorial's putting-it-all-together script; then the same run with two threads per "
        "sample job (--set-threads ingest_sample=2)"
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
    ]
    # the fastest of `repeat` runs from nothing, as for the demo and every other candidate
    # (bench/README: how much one run varies here); the 9-minute tutorial runs once
    runs = []
    for _ in range(repeat):
        clear_run(work)
        result = run(snakemake, label="snakemake")
        result["tables"] = {
            tsv.parent.name + "/" + tsv.stem: pd.read_csv(tsv, sep="\t").iloc[0]
            for tsv in sorted((work / "benchmarks").rglob("*.tsv"))
        }
        runs.append(result)
    ours = min(runs, key=lambda r: r["wall"])
    tables = ours["tables"]
    jobs = {name: max(r["tables"][name]["max_rss"] for r in runs) for name in tables}
    tut = run(child("tutorial_all", str(folder), str(work / "tutorial.h5ad")), label="tutorial")
    line(
        "snakemake --cores 2, whole run",
        ours["wall"],
        max(r["peak"] for r in runs),
        f"peak of any process; runs {[round(r['wall'], 2) for r in runs]}",
    )
    worst = max(jobs, key=jobs.get)
    line(f"  largest job: {worst}", 0, jobs[worst] * 2**20, "(snakemake benchmark, any run)")
    for rule in sorted({name.split("/")[0] for name in tables}):
        rows = [row for name, row in tables.items() if name.startswith(rule + "/")]
        line(
            f"  {rule}: {len(rows)} job(s), seconds each",
            sum(r["s"] for r in rows) / len(rows),
            max(r["max_rss"] for r in rows) * 2**20,
            "(mean time, largest peak; fastest run)",
        )
    line("tutorial script, whole process", tut["wall"], tut["peak"])
    shutil.rmtree(work / "results", ignore_errors=True)
    shutil.rmtree(work / "benchmarks", ignore_errors=True)
    two = [*snakemake, "--set-threads", "ingest_sample=2"]
    helped = run(two, label="snakemake, two threads per sample")
    line("snakemake --cores 2, --set-threads ingest_sample=2", helped["wall"], helped["peak"])
    print(
        f"  => one thread per sample (the default) vs two: {ours['wall'] / helped['wall']:.2f}x "
        "the time (the README's earlier figure had oversubscribed one-thread jobs; "
        "target: not slower)"
    )
    print(
        f"  => speed-up over the tutorial script: {tut['wall'] / ours['wall']:.1f}x (target >= 20x)"
    )
    print(
        f"  => largest job peak RSS {mib(jobs[worst] * 2**20)} (target <= 1.5 GiB); the tutorial "
        f"script {mib(tut['peak'])}"
    )
    shutil.rmtree(work, ignore_errors=True)


def _snakemake_demo(work: Path) -> list[str]:
    """`make demo`'s command (profiles/default: 2 cores), run in ``work``."""
    return [
        str(Path(sys.executable).parent / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        "--profile",
        str(REPO / "profiles" / "default"),
        "--quiet",
        "--config",
        f"input_dir={REPO / 'example' / 'data'}",
    ]


def part_demo(repeat: int) -> None:
    print(
        "\n[demo] `make demo` (snakemake --cores 2 on example/: 5 samples, 810 cells), warm "
        "(numba caches and .pyc files filled by a first run), from an empty results/, "
        'against `python -c "import anndata, scanpy"`'
    )
    work = BENCH / "data" / "demo_run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run(_snakemake_demo(work), label="demo warm-up")
    imports = best([sys.executable, "-c", "import anndata, scanpy"], label="imports", repeat=repeat)
    version = best(
        [str(Path(sys.executable).parent / "snakemake"), "--version"],
        label="snakemake --version",
        repeat=repeat,
    )
    runs = []
    for _ in range(repeat):
        clear_run(work)
        runs.append(run(_snakemake_demo(work), label="demo"))
    demo = min(runs, key=lambda r: r["wall"])
    jobs = len(list((work / "logs").rglob("*.log")))
    line('python -c "import anndata, scanpy" (baseline)', imports["wall"], imports["peak"])
    line("snakemake --version (start-up alone)", version["wall"], version["peak"])
    line(
        f"demo, warm ({jobs} jobs)",
        demo["wall"],
        demo["peak"],
        f"runs {[round(r['wall'], 2) for r in runs]}",
    )
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401

        plugin = "installed (make install-slurm)"
    except ImportError:
        plugin = "not installed"
    scontrol = shutil.which("scontrol")
    print(f"  (SLURM executor plugin {plugin}; scontrol on PATH: {scontrol or 'no'})")
    print(f"  => demo vs the imports: {demo['wall'] / imports['wall']:.1f}x (target <= 6x)")
    shutil.rmtree(work, ignore_errors=True)


def part_firstrun(repeat: int) -> None:
    print(
        "\n[firstrun] a fresh clone of this checkout's HEAD: `make install` (venv, pip, "
        "numba caches warmed), then the first `make demo`, then a second one"
    )
    work = BENCH / "data" / "firstrun"
    shutil.rmtree(work, ignore_errors=True)
    work.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(work)], check=True)
    # the system's python3, as a new user's `make demo` would use (not this venv's)
    make = ["make", "-C", str(work), f"PYTHON={shutil.which('python3') or 'python3'}"]
    install = run([*make, "install"], label="make install")
    first = run([*make, "demo"], label="first make demo")
    for name in ("results", "logs", "benchmarks"):
        shutil.rmtree(work / name, ignore_errors=True)
    second = run([*make, "demo"], label="second make demo")
    line("make install (incl. warming numba's caches)", install["wall"], install["peak"])
    line("first make demo after install", first["wall"], first["peak"])
    line("second make demo (warm)", second["wall"], second["peak"])
    print(
        f"  => first demo vs a warm one: {first['wall'] / second['wall']:.2f}x "
        "(numba's compile paid once, in make install, not by every job at once)"
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
    if name == "cells":
        import numpy as np
        import scipy.sparse as sp

        from scingest.cells import call_cells

        counts = sp.load_npz(args[0])
        t1 = time.perf_counter()
        calls = call_cells(counts)
        t2 = time.perf_counter()
        Path(args[1]).write_text("\n".join(map(str, np.flatnonzero(calls.is_cell))))
        return {
            "call": t2 - t1,
            "cells": int(calls.is_cell.sum()),
            "recovered": int(calls.recovered_cells),
            "min_umis": int(calls.min_umis),
        }
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

        folder, n, n_cells, n_genes, appended = Path(args[0]), *map(int, args[1:])
        write_checkpoints(
            folder, n, n_cells=n_cells, n_genes=n_genes, appended=appended, compression="gzip"
        )
        return {}
    if name == "merge":
        from scingest.merge import merge_checkpoints

        folder, n = Path(args[0]), int(args[1])
        paths = {f"S{i:02d}": folder / f"S{i:02d}.h5ad" for i in range(n)}
        t1 = time.perf_counter()
        report = merge_checkpoints(paths, args[2], join=args[3], compression="gzip")
        modes = report["x_merge"].value_counts().to_dict()
        return {"call": time.perf_counter() - t1, "modes": modes}
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
    if name == "checkpoints_n":
        from data import write_checkpoints

        write_checkpoints(Path(args[0]), int(args[1]), n_cells=int(args[2]), n_genes=int(args[3]))
        return {}
    if name.startswith("collection_"):
        from scingest.collection.soma import build_soma_collection

        if name == "collection_query":
            import tiledbsoma as soma

            with soma.Experiment.open(args[0]) as exp:
                t1 = time.perf_counter()
                if args[1] == "genes":
                    obs, var = "", "var_id in ['GAPDH', 'ACTB', 'MT-CO1']"
                else:
                    obs, var = "sample == 'S03'", ""
                with exp.axis_query(
                    "RNA",
                    obs_query=soma.AxisQuery(value_filter=obs or None),
                    var_query=soma.AxisQuery(value_filter=var or None),
                ) as query:
                    adata = query.to_anndata(X_name="counts")
            return {
                "call": time.perf_counter() - t1,
                "shape": f"{adata.n_obs:,} x {adata.n_vars:,}",
            }
        folder = Path(args[0])
        if name == "collection_cellarr":
            from scingest.collection.cellarr import build_cellarr_collection

            paths = {f"S{i:02d}": folder / f"S{i:02d}.h5ad" for i in range(int(args[1]))}
            t1 = time.perf_counter()
            build_cellarr_collection(paths, args[2])
            return {"call": time.perf_counter() - t1}
        if name == "collection_build":
            paths = {f"S{i:02d}": folder / f"S{i:02d}.h5ad" for i in range(int(args[1]))}
            t1 = time.perf_counter()
            build_soma_collection(paths, args[2])
            return {"call": time.perf_counter() - t1}
        n = int(args[1])
        if name == "collection_append":  # the workflow's call: all samples, one new
            paths = {f"S{i:02d}": folder / f"S{i:02d}.h5ad" for i in range(n + 1)}
        else:
            paths = {f"S{n:02d}": folder / f"S{n:02d}.h5ad"}
        t1 = time.perf_counter()
        done = build_soma_collection(paths, args[2])
        assert done["added"] == [f"S{n:02d}"], done
        return {"call": time.perf_counter() - t1}
    if name == "concat_on_disk":  # the peer of the merge parts, with anndata's defaults
        from anndata.experimental import concat_on_disk

        folder, n = Path(args[0]), int(args[1])
        join = args[3] if len(args) > 3 else "inner"
        t1 = time.perf_counter()
        concat_on_disk([folder / f"S{i:02d}.h5ad" for i in range(n)], args[2], join=join)
        return {"call": time.perf_counter() - t1}
    if name == "soma_from_h5ad":  # the collection's peer: TileDB-SOMA's own ingest
        # (not named collection_*: those children build our store)
        import tiledbsoma
        import tiledbsoma.io as sio

        folder, n, uri = Path(args[0]), int(args[1]), args[2]
        files = [str(folder / f"S{i:02d}.h5ad") for i in range(n)]
        t1 = time.perf_counter()
        # its documented multi-file ingest: register every file, create the experiment's
        # schema from the first, prepare (resize, categories), then write each file
        mapping = sio.register_h5ads(
            None, files, measurement_name="RNA", obs_field_name="obs_id", var_field_name="var_id"
        )
        sio.from_h5ad(
            uri,
            files[0],
            measurement_name="RNA",
            ingest_mode="schema_only",
            registration_mapping=mapping,
        )
        mapping.prepare_experiment(uri)
        for path in files:
            sio.from_h5ad(uri, path, measurement_name="RNA", registration_mapping=mapping)
        call = time.perf_counter() - t1
        # what the store holds, for the part to check against the checkpoints (not timed)
        t2 = time.perf_counter()
        with tiledbsoma.Experiment.open(uri) as exp:
            stored = [exp.obs.count, exp.ms["RNA"].X["data"].nnz]
        return {"call": call, "stored": stored, "verify": time.perf_counter() - t2}
    raise SystemExit(f"unknown child {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="part", help=f"{', '.join(PARTS)}; default all")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cheap candidate")
    parser.add_argument(
        "--small", action="store_true", help="merge parts on small data, to check they run"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument(
        "--collection-cells",
        type=int,
        default=COLLECTION_CELLS,
        help="cells in the collection part's store (default 1,000,000)",
    )
    parser.add_argument(
        "--collection-genes",
        type=int,
        default=COLLECTION_GENES,
        help="genes of the collection part's checkpoints (default 2,000; 33538: all)",
    )
    parser.add_argument(
        "--workflow-samples",
        type=int,
        default=len(WORKFLOW_SAMPLES),
        help="samples of the workflow part (default 12, the target's size; fewer: a quick check)",
    )
    parser.add_argument(
        "--cells-barcodes",
        type=int,
        default=CELLS_BARCODES,
        help="barcodes of the cells part's raw matrix (default 500,000)",
    )
    args = parser.parse_args()
    globals()["COLLECTION_CELLS"] = args.collection_cells
    globals()["COLLECTION_GENES"] = args.collection_genes
    globals()["CELLS_BARCODES"] = args.cells_barcodes
    global N_WORKFLOW_SAMPLES
    N_WORKFLOW_SAMPLES = max(1, min(args.workflow_samples, len(WORKFLOW_SAMPLES)))
    if args.small:
        SIZES.update(SMALL)
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
        globals()[f"part_{part.replace('-', '_')}"](args.repeat)


if __name__ == "__main__":
    main()
