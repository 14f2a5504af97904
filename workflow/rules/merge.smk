rule merge_samples:
    input:
        h5ads=get_checkpoints,
    output:
        h5ad="results/merged.h5ad",
        report="results/merge_report.tsv",
    log:
        "logs/merge_samples/merge_samples.log",
    benchmark:
        "benchmarks/merge_samples/merge_samples.tsv"
    conda:
        "../../envs/scingest.yaml"
    threads: get_merge_threads
    resources:
        mem_mb=lambda wildcards, attempt: resources.merge_mem_mb(attempt),
        runtime=lambda wildcards, attempt: resources.merge_runtime(attempt),
    params:
        samples=SAMPLES,
        join=config["join"],
        compression=config["compression"],
    script:
        "../../scripts/merge_samples.py"
