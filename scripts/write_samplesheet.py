# Adapter of rule write_samplesheet: the resolved sheet, written as TSV.
from scingest.files import write_text_atomic
from scingest.logs import workflow_step

with workflow_step(snakemake.log[0]) as logger:
    write_text_atomic(snakemake.output.tsv, snakemake.params.table)
    logger.info("wrote %s", snakemake.output.tsv)
