# Adapter of rule ingest_sample: one sample's count file -> its checkpoint h5ad and QC figure.
from scingest.logs import end_job, frozen_imports, workflow_step

with workflow_step(snakemake.log[0]) as logger:
    logger.info("threads: %d (the rule's, passed to scingest)", snakemake.threads)
    with frozen_imports():
        from scingest.options import QcOptions, ReaderOptions
        from scingest.plots import plot_sample_checkpoint
        from scingest.sample import build_sample, write_h5ad

    adata = build_sample(
        snakemake.input.counts,
        sample=snakemake.wildcards.sample,
        format=snakemake.params.format,
        metadata=snakemake.params.metadata,
        reader=ReaderOptions(**snakemake.params.reader, threads=snakemake.threads),
        qc=QcOptions(**snakemake.params.qc),
    )
    write_h5ad(
        adata,
        snakemake.output.h5ad,
        compression=snakemake.params.compression,
        threads=snakemake.threads,
    )
    del adata
    # the figure reads back the checkpoint's obs and limits, as the QC jobs do
    plot_sample_checkpoint(snakemake.wildcards.sample, snakemake.output.h5ad, snakemake.output.png)
end_job()  # outputs are complete: skip the interpreter's teardown
