# Adapter of rule plot_qc: overview QC plots of all samples, from the checkpoints' obs.
from scingest.logs import workflow_step

with workflow_step(snakemake.log[0]):
    from scingest.plots import plot_overview

    plot_overview(
        dict(zip(snakemake.params.samples, snakemake.input.h5ads, strict=True)),
        violins=snakemake.output.violins,
        counts_vs_genes=snakemake.output.counts_vs_genes,
        barcode_rank=snakemake.output.barcode_rank,
        cells=snakemake.output.cells,
        group_by=snakemake.params.group_by,
    )
