# Adapter of rule ingest_sample: one sample's count file -> its checkpoint h5ad.
from scingest.logs import workflow_step

with workflow_step(snakemake.log[0]):
    from scingest.sample import build_sample, write_h5ad

    adata = build_sample(
        snakemake.input.counts,
        sample=snakemake.wildcards.sample,
        format=snakemake.params.format,
        metadata=snakemake.params.metadata,
        **snakemake.params.reader,
        **snakemake.params.qc,
    )
    write_h5ad(adata, snakemake.output.h5ad, compression=snakemake.params.compression)
