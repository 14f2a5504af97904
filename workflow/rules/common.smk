# Helpers of the workflow: config validation, the sample sheet, input functions.
import re
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from scingest.discovery import (  # noqa: E402
    discover_samples,
    read_sample_sheet,
    sample_metadata,
    validate_rows,
)
from scingest.errors import ScingestError  # noqa: E402
from scingest.formats import input_files  # noqa: E402

validate(config, workflow.source_path("../schemas/config.schema.yaml"))


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
        files = input_files(path, get_sample_format(wildcards), genome=config["genome"])
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
)


def get_reader_params():
    """Config keys passed through build_sample to scingest.readers.read_counts."""
    return {k: config[k] for k in READER_KEYS}


def get_qc_params():
    return {
        "organism": config["organism"],
        "gene_set_regex": {
            "mt": config["mito_regex"],
            "ribo": config["ribo_regex"],
            "hb": config["hb_regex"],
        },
        "percent_top": list(config["percent_top"]),
    }


def get_ingest_mem_mb(wildcards, input, attempt):
    """Memory request of one sample's job, from the input's size; more on each retry.

    Measured on the simple text reader (issue 4 refines): about 60 MB of RSS per MB of
    gzipped CSV, on top of about 400 MB for Python, scanpy and anndata.
    """
    size_mb = sum(Path(f).stat().st_size for f in input) / 1e6 if input else 0
    return int((400 + 60 * size_mb) * attempt)


def get_checkpoints(wildcards):
    return expand("results/samples/{sample}.h5ad", sample=SAMPLES)
