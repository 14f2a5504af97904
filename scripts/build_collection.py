# Adapter of rule build_collection: checkpoints -> the collection store and its manifest.
from scingest.logs import workflow_step

with workflow_step(snakemake.log[0]):
    from scingest.collection import build_collection

    build_collection(
        dict(zip(snakemake.params.samples, snakemake.input.h5ads, strict=True)),
        snakemake.params.store,
        kind=snakemake.params.kind,
        manifest=snakemake.output.manifest,
    )
