# Adapter of rule build_collection: checkpoints -> the collection store and its manifest.
# Under a __main__ guard: cellarr writes through a "spawn" process pool, whose workers
# import this script again; unguarded, each worker would start the whole build over.
from scingest.logs import frozen_imports, workflow_step

if __name__ == "__main__":
    with workflow_step(snakemake.log[0]):
        with frozen_imports():
            from scingest.collection import build_collection

        build_collection(
            dict(zip(snakemake.params.samples, snakemake.input.h5ads, strict=True)),
            snakemake.params.store,
            kind=snakemake.params.kind,
            manifest=snakemake.output.manifest,
        )
