# Adapter of rule summarize_qc: one row of QC figures per sample, also as MultiQC content.
from scingest.logs import workflow_step

with workflow_step(snakemake.log[0]):
    from scingest.summary import write_qc_summary

    write_qc_summary(
        dict(zip(snakemake.params.samples, snakemake.input.h5ads, strict=True)),
        snakemake.output.tsv,
        multiqc=snakemake.output.mqc,
    )
