# Adapter of rule merge_samples: sample checkpoints -> merged.h5ad and the merge report.
from scingest.logs import end_job, frozen_imports, workflow_step

with workflow_step(snakemake.log[0]) as logger:
    logger.info("threads: %d (the rule's, passed to scingest)", snakemake.threads)
    with frozen_imports():
        from scingest.merge import merge_checkpoints

    merge_checkpoints(
        dict(zip(snakemake.params.samples, snakemake.input.h5ads, strict=True)),
        snakemake.output.h5ad,
        join=snakemake.params.join,
        compression=snakemake.params.compression,
        report=snakemake.output.report,
        threads=snakemake.threads,
    )
end_job()  # outputs are complete: skip the interpreter's teardown
