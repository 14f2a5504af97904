# Adapter of rule plot_sample_qc: one sample's QC figure, from its checkpoint's obs.
from scingest.logs import workflow_step

with workflow_step(snakemake.log[0]):
    from scingest.plots import plot_sample_checkpoint

    plot_sample_checkpoint(snakemake.wildcards.sample, snakemake.input.h5ad, snakemake.output.png)
