# Helpers of the workflow: config validation, the sample sheet, input functions.
import re
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

#: The repository root, wherever snakemake runs from (also when used as a module).
REPO = Path(workflow.current_basedir).parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from scingest.discovery import (  # noqa: E402
    discover_samples,
    QC_OVERRIDE_COLUMNS,
    read_sample_sheet,
    sample_metadata,
    sample_qc_overrides,
    sample_reader_overrides,
    stale_checkpoints,
    validate_rows,
)
from scingest.errors import ScingestError  # noqa: E402
from scingest.formats import input_files  # noqa: E402
from scingest.settings import config_error, yaml_cli_values  # noqa: E402


def check_config():
    """Fill defaults, read --config values as YAML, validate with one clear message."""
    schema_path = REPO / "workflow" / "schemas" / "config.schema.yaml"
    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    # As a module given its own config (or with config/config.yaml absent from the working
    # directory), keys not set take the defaults of the workflow's config/config.yaml.
    with open(REPO / "config" / "config.yaml") as fh:
        for key, value in yaml.safe_load(fh).items():
            config.setdefault(key, value)
    yaml_cli_values(config, workflow.config_settings.config or {}, schema)
    message = config_error(config, schema, REPO / "config" / "README.md")
    if message:
        raise WorkflowError(f"scingest: {message}")
    validate(config, str(schema_path))


check_config()


def load_sheet():
    """The validated sample sheet: from `samples` if set, else discovered in input_dir."""
    with open(workflow.source_path("../schemas/samples.schema.yaml")) as fh:
        schema = yaml.safe_load(fh)
    try:
        if config["samples"]:
            sheet = read_sample_sheet(config["samples"])
            source = config["samples"]
        else:
            sheet = discover_samples(
                config["input_dir"],
                config["filename_pattern"],
                ignore_unmatched=config["ignore_unmatched"],
            )
            source = config["input_dir"]
        validate_rows(sheet, schema, source=source)
    except ScingestError as err:
        raise WorkflowError(f"scingest: {err}") from None
    return sheet


SHEET = load_sheet()
SAMPLES = SHEET["sample"].tolist()
_stale = stale_checkpoints("results", SAMPLES)
if _stale:
    logger.warning(
        f"scingest: results/samples holds {len(_stale)} checkpoint(s) of samples the current "
        f"sheet does not name ({', '.join(_stale[:10])}{' ...' if len(_stale) > 10 else ''}); "
        "they are not part of this run's merge or QC, and are left in place (delete "
        "results/samples/<name>.h5ad and results/qc/samples/<name>_qc.png to remove them)"
    )


wildcard_constraints:
    sample="|".join(map(re.escape, SAMPLES)),


def get_sheet_tsv():
    """The resolved sheet as TSV text (a param, so the file is rewritten when it changes)."""
    return SHEET.to_csv(sep="\t", index=False)


def get_sample_path(wildcards):
    return SHEET.loc[SHEET["sample"] == wildcards.sample, "path"].iloc[0]


def get_sample_parts(wildcards):
    """The files of a sample's input besides its path (a 10x folder's or triplet's files,
    a .mtx's name files): a change to any of them reruns the sample."""
    path = get_sample_path(wildcards)
    try:
        genome = get_reader_params(wildcards)["genome"]
        files = input_files(path, get_sample_format(wildcards), genome=genome)
    except ScingestError as err:
        raise WorkflowError(f"scingest: sample {wildcards.sample}: {err}") from None
    return [str(f) for f in files if f != Path(path)]


def get_sample_format(wildcards):
    return SHEET.loc[SHEET["sample"] == wildcards.sample, "format"].iloc[0]


def get_sample_metadata(wildcards):
    return sample_metadata(SHEET, wildcards.sample)


READER_KEYS = (
    "orientation",
    "dtype",
    "allow_non_integer",
    "genome",
    "var_names",
    "other_features",
    "h5ad_layer",
    "loom_layers",
)


def get_reader_params(wildcards):
    """Reader options of one sample (build_sample -> scingest.readers.read_counts): config
    values, with its sheet's orientation, genome, h5ad_layer, allow_non_integer overrides.
    """
    params = {k: config[k] for k in READER_KEYS}
    params.update(sample_reader_overrides(SHEET, wildcards.sample))
    return params


def get_qc_params(wildcards):
    """QC parameters of one sample: config values, with its sheet's qc_* overrides."""
    limits = {key: config[key] for key in QC_OVERRIDE_COLUMNS}
    limits.update(sample_qc_overrides(SHEET, wildcards.sample))
    return {
        "organism": config["organism"],
        "gene_set_regex": {
            "mt": config["mito_regex"],
            "ribo": config["ribo_regex"],
            "hb": config["hb_regex"],
        },
        "percent_top": list(config["percent_top"]),
        "outlier_limits": {k.removeprefix("qc_"): v for k, v in limits.items()},
        "doublets": config["doublets"],
    }


def get_qc_targets():
    """QC outputs of the default target: summary, plots, filtered merge when switched on."""
    targets = [
        *rules.summarize_qc.output,
        *expand(rules.ingest_sample.output.png, sample=SAMPLES),
    ]
    if config["filter_merged"]:
        targets.append("results/merged_filtered.h5ad")
    return targets


#: Peak RSS of an ingest job per MB of its input as text (decompressed), by format. From
#: .ci/measure-ingest-mem.py (build_sample + write_h5ad in a fresh process, peak RSS by
#: /usr/bin/time; 33,538 genes, about 5.6% of values non-zero, as in 10x data):
#:   dense csv.gz, fast reader:  17 MB text -> 75 MB above imports, 67 -> 102, 202 -> 184,
#:                               403 (12.7 MB gzipped, 6,000 cells) -> 332; the same
#:                               67 MB as plain .csv -> 102 (so: text size, not file size;
#:                               0.8 to 0.9 MB per text MB, about 36 bytes per non-zero)
#:   dense csv.gz, simple reader (the fallback; seen before the fast one landed):
#:                               67 MB text -> 196 MB, 202 -> 955 (2.9 to 4.7 per text MB)
#:   10x_mtx (.gz), 5.6 M non-zeros: 69 MB text -> 200 MB (2.9 per text MB)
#:   10x_h5 (gzip), same matrix:     13.4 MB file -> 210 MB (15.7 per file MB)
#: The factors below cover the fast path of denser data (a dense file's text per non-zero
#: shrinks as density grows) and most of the simple path; a retry doubles the request.
INGEST_MEM_PER_TEXT_MB = {
    "csv": 3,
    "tsv": 3,
    "mtx": 4,
    "10x_mtx": 4,
    "10x_triplet": 4,
    "10x_h5": 20,
    "h5ad": 20,
}
#: What a job takes before its data: Python with scanpy/anndata imported, 254 MB, plus the
#: two `snakemake` processes of a SLURM job (the batch script's and the srun step's),
#: 147 MB each by sstat on the CI cluster: 550 MB; a tiny input's job peaked at 603 MB.
INGEST_MEM_BASE_MB = 800


def input_text_mb(paths):
    """Size of the inputs as text, in MB: a gzip file by its ISIZE trailer (the
    uncompressed size mod 4 GiB, of the last member only for bgzip; never taken below 4x
    the compressed size, the lowest ratio of count files), others by their size. A folder
    (10x) counts all its files once."""
    seen = set()
    total = 0
    for path in map(Path, paths):
        files = [path]
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file())
        for f in files:
            f = f.resolve()
            if f in seen or not f.is_file():
                continue
            seen.add(f)
            size = f.stat().st_size
            with open(f, "rb") as fh:
                if size >= 18 and fh.read(2) == b"\x1f\x8b":
                    fh.seek(-4, 2)
                    size = max(int.from_bytes(fh.read(4), "little"), 4 * size)
            total += size
    return total / 1e6


def get_ingest_mem_mb(wildcards, input, attempt):
    """Memory request of one sample's job in MB: (800 + factor x input text MB) x attempt.

    The factor depends on the format (INGEST_MEM_PER_TEXT_MB; 20, the largest, when the
    format is unknown). E.g. a 33,538 x 9,413 GEO csv.gz (about 630 MB of text) asks for
    2.7 GB, then 5.4 GB, then 8.1 GB. Change it for one run with
    --set-resources ingest_sample:mem_mb=8000.
    """
    factor = INGEST_MEM_PER_TEXT_MB.get(str(get_sample_format(wildcards)), 20)
    return int((INGEST_MEM_BASE_MB + factor * input_text_mb(input)) * attempt)


def get_merge_mem_mb(wildcards, attempt):
    """Memory request of the merge in MB, fixed whatever the number of cells: 2,000 x attempt.

    scingest.merge streams one sample at a time in row blocks of at most BLOCK_NNZ (4 M)
    stored values, and holds one obs column of all cells and one var table over the genes.
    Measured (bench/run.py merge): 216 MiB peak for 12 checkpoints of 2,500 x 33,538, 223 MiB
    for 48. Plus INGEST_MEM_BASE_MB (800) for the in-job snakemake processes, and room for
    obs columns of millions of cells (8 bytes per cell per column, strings about 70).
    """
    return 2000 * attempt


#: The merge's checkpoints from this size (judged by the samples' inputs as text, MB) are
#: worth a second thread: one reads, the other compresses.
THREADS_FROM_MB = 50


def get_merge_threads(wildcards):
    """Threads of the merge: 2 when the samples' inputs total THREADS_FROM_MB of text, else
    1 (the merge reads in one thread and compresses in the other). Judged by the inputs
    because the checkpoints do not exist yet when Snakemake plans the run."""
    return 2 if input_text_mb(SHEET["path"]) >= THREADS_FROM_MB else 1


def get_checkpoints(wildcards):
    return expand("results/samples/{sample}.h5ad", sample=SAMPLES)


def get_collection_targets():
    """The collection's manifest when `collection` is soma or cellarr, else nothing."""
    if config["collection"] == "none":
        return []
    return [rules.build_collection.output.manifest]


def get_collection_store():
    """Where the collection store lives (the job's state beside its manifest)."""
    return f"results/collection.{config['collection']}"


def get_collection_mem_mb(wildcards, input, attempt):
    """Memory request of the collection job in MB, from its inputs, times the attempt.

    soma holds one checkpoint's obs and var, one row block of counts (at most BLOCK_NNZ
    values) and the store's gene index: INGEST_MEM_BASE_MB plus 2 MB per MB of the largest
    checkpoint, at least 2,000; its peak does not grow with the number of samples
    (bench/run.py collection). cellarr holds every cell's obs and TileDB's consolidation
    buffers: INGEST_MEM_BASE_MB plus 2,500 plus 4 MB per MB of all checkpoints (measured by
    bench/run.py collection, cellarr line; see bench/README.md).
    """
    sizes = [Path(p).stat().st_size / 1e6 for p in input.h5ads] or [0]
    if config["collection"] == "cellarr":
        need = INGEST_MEM_BASE_MB + 2500 + 4 * sum(sizes)
    else:
        need = max(2000, INGEST_MEM_BASE_MB + 2 * max(sizes))
    return int(need * attempt)


def get_collection_runtime(wildcards, input, attempt):
    """Wall time of the collection job in minutes: a rebuild of every checkpoint at the
    worst, 30 min plus 1 min per 100 MB of checkpoints, times the attempt."""
    total = sum(Path(p).stat().st_size for p in input.h5ads) / 1e6
    return int((30 + total / 100) * attempt)
