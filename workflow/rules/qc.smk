rule summarize_qc:
    input:
        h5ads=get_checkpoints,
    output:
        tsv="results/qc/qc_summary.tsv",
    log:
        "logs/summarize_qc/summarize_qc.log",
    conda:
        "../../envs/scingest.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 1000 * attempt,
        runtime=lambda wildcards, attempt: 15 * attempt,
    params:
        samples=SAMPLES,
    script:
        "../../scripts/summarize_qc.py"
