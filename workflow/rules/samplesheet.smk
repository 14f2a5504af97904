rule write_samplesheet:
    # a script, not run:: Snakemake runs a run: job of a multi-core local run in a
    # subprocess that parses the whole workflow again (3 s, on the critical path of every
    # run); this script imports no more than the standard library and scingest.files
    output:
        tsv="results/samplesheet.tsv",
    log:
        "logs/write_samplesheet/write_samplesheet.log",
    localrule: True
    conda:
        "../../envs/scingest.yaml"
    params:
        table=get_sheet_tsv(),
    script:
        "../../scripts/write_samplesheet.py"
