rule write_samplesheet:
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
