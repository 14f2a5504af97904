# QC after the per-sample jobs: summary table, plots, report, optional filtered merge.
# Everything here reads only obs (and the QC limits in uns) of the checkpoints, except the
# filtered merge, which streams merged.h5ad.


report: "../report/workflow.rst"


rule summarize_qc:
    # the summary table and the overview plots in one job: both read only the checkpoints'
    # obs, and a job of its own cost a Python process with its imports
    input:
        h5ads=get_checkpoints,
    output:
        tsv=report(
            "results/qc/qc_summary.tsv",
            caption="../report/qc_summary.rst",
            category="1. QC overview",
            labels={"figure": "QC summary table"},
        ),
        mqc="results/qc/qc_summary_mqc.tsv",
        violins=report(
            "results/qc/plots/violins.png",
            caption="../report/violins.rst",
            category="1. QC overview",
            labels={"figure": "QC metrics by sample"},
        ),
        counts_vs_genes=report(
            "results/qc/plots/counts_vs_genes.png",
            caption="../report/counts_vs_genes.rst",
            category="1. QC overview",
            labels={"figure": "counts vs genes, all cells"},
        ),
        barcode_rank=report(
            "results/qc/plots/barcode_rank.png",
            caption="../report/barcode_rank.rst",
            category="1. QC overview",
            labels={"figure": "barcode rank"},
        ),
        cells=report(
            "results/qc/plots/cells_per_sample.png",
            caption="../report/cells_per_sample.rst",
            category="1. QC overview",
            labels={"figure": "cells per sample and group"},
        ),
    log:
        "logs/summarize_qc/summarize_qc.log",
    conda:
        "../../envs/scingest.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: resources.fixed_mem_mb(
            "summarize_qc", attempt
        ),
        runtime=lambda wildcards, attempt: resources.fixed_runtime(
            "summarize_qc", attempt
        ),
    params:
        samples=SAMPLES,
        group_by=config["qc_group_by"],
    script:
        "../../scripts/summarize_qc.py"


rule filter_merged:
    input:
        h5ad="results/merged.h5ad",
    output:
        h5ad="results/merged_filtered.h5ad",
    log:
        "logs/filter_merged/filter_merged.log",
    benchmark:
        "benchmarks/filter_merged/filter_merged.tsv"
    conda:
        "../../envs/scingest.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: resources.fixed_mem_mb(
            "filter_merged", attempt
        ),
        runtime=lambda wildcards, attempt: resources.fixed_runtime(
            "filter_merged", attempt
        ),
    params:
        min_cells=config["filter_min_cells"],
        compression=config["compression"],
    script:
        "../../scripts/filter_merged.py"
