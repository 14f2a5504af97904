from scingest.files import write_text_atomic


rule write_samplesheet:
    # in Snakemake's own process (run:, so no conda env): a script would start a Python
    # process to write one small text file, on the critical path of a small run
    output:
        tsv="results/samplesheet.tsv",
    log:
        "logs/write_samplesheet/write_samplesheet.log",
    localrule: True
    params:
        table=get_sheet_tsv(),
    run:
        write_text_atomic(output.tsv, params.table)
        Path(log[0]).write_text(f"wrote {output.tsv}\n")
