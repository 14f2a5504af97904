# Adapter of rule summarize_qc: one row of QC figures per sample, also as MultiQC content,
# and the overview QC plots of all samples, from the checkpoints' obs.
from scingest.logs import end_job, frozen_imports, workflow_step

with workflow_step(snakemake.log[0]):
    with frozen_imports():
        from scingest.checkpoint import read_qc_samples
        from scingest.plots import plot_overview
        from scingest.summary import write_qc_summary

    checkpoints = dict(zip(snakemake.params.samples, snakemake.input.h5ads, strict=True))
    loaded = read_qc_samples(checkpoints)  # each checkpoint's obs and limits, read once
    write_qc_summary(checkpoints, snakemake.output.tsv, multiqc=snakemake.output.mqc, loaded=loaded)
    plot_overview(
        checkpoints,
        violins=snakemake.output.violins,
        counts_vs_genes=snakemake.output.counts_vs_genes,
        barcode_rank=snakemake.output.barcode_rank,
        cells=snakemake.output.cells,
        group_by=snakemake.params.group_by,
        loaded=loaded,
    )
end_job()  # outputs are complete: skip the interpreter's teardown
