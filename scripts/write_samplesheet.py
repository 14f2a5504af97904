# Adapter of rule write_samplesheet: the resolved sample sheet (sheet or discovered samples,
# with their formats) as TSV. Imports nothing heavy: a few tenths of a second.
from pathlib import Path

from scingest.files import write_text_atomic

write_text_atomic(snakemake.output.tsv, snakemake.params.table)
Path(snakemake.log[0]).write_text(f"wrote {snakemake.output.tsv}\n", encoding="utf-8")
