# scingest: single-cell count files -> checkpointed, QC-annotated, sparse AnnData.
# Table of contents only: the logic lives in workflow/rules and the scingest library.
import os

from snakemake.utils import min_version

min_version("9.0")


# Found beside this file, so the workflow runs from any working directory; a --configfile
# or --config of the user's is applied over it.
configfile: os.path.join(workflow.basedir, "config", "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/samplesheet.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/merge.smk"
include: "workflow/rules/qc.smk"
include: "workflow/rules/collection.smk"


rule all:
    default_target: True
    input:
        "results/samplesheet.tsv",
        "results/merged.h5ad",
        "results/merge_report.tsv",
        get_qc_targets(),
        get_collection_targets(),
