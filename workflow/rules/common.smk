# Helpers of the workflow: config validation, the sample sheet, input functions, targets.
# The library does the work: scingest.sheet and scingest.discovery (the sample sheet, read
# or discovered), scingest.settings (config to reader and QC options), scingest.formats (a
# sample's input files), scingest.resources (every rule's memory, runtime and threads).
import re
import sys
import threading
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.settings.types import DeploymentMethod

#: The repository root, wherever snakemake runs from (also when used as a module).
REPO = Path(workflow.current_basedir).parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from scingest import discovery, resources, settings, sheet  # noqa: E402
from scingest.errors import ScingestError  # noqa: E402
from scingest.formats import input_files  # noqa: E402

# Defaults filled, --config values read as YAML, checked against the schema: one message.
_problem = settings.check_config(
    config, workflow.config_settings.config or {}, repo=REPO
)
if _problem:
    raise WorkflowError(f"scingest: {_problem}")

# The collection job's packages (TileDB-SOMA, cellarr: pandas < 3), before any job runs;
# with conda environments its rule brings its own (envs/collection.yaml).
if DeploymentMethod.CONDA not in workflow.deployment_settings.deployment_method:
    _problem = settings.collection_problem(config["collection"])
    if _problem:
        raise WorkflowError(f"scingest: {_problem}")


def load_sheet():
    """The validated sample sheet: from `samples` if set, else discovered in input_dir."""
    try:
        if config["samples"]:
            return sheet.read_sample_sheet(config["samples"])
        # an archive (GEO's GSE..._RAW.tar) is unpacked once into results/input, before
        # any job runs; its files keep their times, so reruns follow what changed
        return discovery.discover_samples(
            config["input_dir"],
            config["filename_pattern"],
            ignore_unmatched=config["ignore_unmatched"],
            unpack_into="results/input",
        )
    except ScingestError as err:
        raise WorkflowError(f"scingest: {err}") from None


SHEET = load_sheet()
SAMPLES = SHEET["sample"].tolist()
_stale = sheet.stale_checkpoints_warning("results", SAMPLES)
if _stale:
    logger.warning(f"scingest: {_stale}")


def end_without_waiting():
    """Cancel Snakemake's pending rescheduling timers when the run is over.

    After every pass its scheduler looks for runnable jobs again on a threading.Timer of
    --max-jobs-per-timespan's timespan (1 s by default); the last one is not a daemon
    thread, so Python waited for it before exiting: up to 1 s after every run (strace of a
    run's end). Called from onsuccess, when nothing is left to schedule (a failed run
    leaves none pending)."""
    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()


onsuccess:
    end_without_waiting()


wildcard_constraints:
    sample="|".join(map(re.escape, SAMPLES)),


def get_sheet_tsv():
    """The resolved sheet as TSV text (a param, so the file is rewritten when it changes)."""
    return SHEET.to_csv(sep="\t", index=False)


def get_sample_path(wildcards):
    return SHEET.loc[SHEET["sample"] == wildcards.sample, "path"].iloc[0]


def get_sample_format(wildcards):
    return SHEET.loc[SHEET["sample"] == wildcards.sample, "format"].iloc[0]


def sample_files(sample):
    """Every file of a sample's input (scingest.formats.input_files): a change to any of
    them reruns the sample, and its job's memory and the merge's threads follow them."""
    row = SHEET.loc[SHEET["sample"] == sample].iloc[0]
    reader = settings.reader_options(
        config, sheet.sample_reader_overrides(SHEET, sample)
    )
    try:
        return input_files(row["path"], row["format"], reader)
    except ScingestError as err:
        raise WorkflowError(f"scingest: sample {sample}: {err}") from None


def get_sample_parts(wildcards):
    """The files of a sample's input besides its path (a 10x folder's or triplet's files,
    a .mtx's name files)."""
    path = Path(get_sample_path(wildcards))
    return [str(f) for f in sample_files(wildcards.sample) if f != path]


def get_sample_metadata(wildcards):
    return sheet.sample_metadata(SHEET, wildcards.sample)


def get_reader_params(wildcards):
    """Reader options of one sample: config values, with its sheet row's overrides (as a
    dict: Snakemake compares params by value, so a changed option reruns the sample)."""
    overrides = sheet.sample_reader_overrides(SHEET, wildcards.sample)
    return settings.reader_options(config, overrides).params()


def get_qc_params(wildcards):
    """QC options of one sample: config values, with its sheet row's qc_* overrides (as a
    dict, as get_reader_params)."""
    overrides = sheet.sample_qc_overrides(SHEET, wildcards.sample)
    return settings.qc_options(config, overrides).params()


def get_merge_threads(wildcards):
    sizes = [resources.text_mb(sample_files(s)) for s in SAMPLES]
    cores = None  # unknown: a cluster run, or a job step on a cluster node
    if workflow.is_main_process and workflow.local_exec:
        try:
            cores = workflow.cores
        except WorkflowError:
            pass
    return resources.merge_threads(sizes, cores=cores)


def get_checkpoints(wildcards):
    return expand("results/samples/{sample}.h5ad", sample=SAMPLES)


def get_qc_targets():
    """QC outputs of the default target: summary, plots, filtered merge when switched on."""
    targets = [
        *rules.summarize_qc.output,
        *expand(rules.ingest_sample.output.png, sample=SAMPLES),
    ]
    if config["filter_merged"]:
        targets.append("results/merged_filtered.h5ad")
    return targets


def get_collection_targets():
    """The collection's manifest when `collection` is soma or cellarr, else nothing."""
    if config["collection"] == "none":
        return []
    return [rules.build_collection.output.manifest]
