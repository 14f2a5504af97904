# Adapter of rule filter_merged: cells that pass QC and genes seen in enough of them.
from scingest.logs import end_job, frozen_imports, workflow_step

with workflow_step(snakemake.log[0]):
    with frozen_imports():
        from scingest.filtering import filter_merged

    filter_merged(
        snakemake.input.h5ad,
        snakemake.output.h5ad,
        min_cells=snakemake.params.min_cells,
        compression=snakemake.params.compression,
    )
end_job()  # outputs are complete: skip the interpreter's teardown
