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
        mem_mb=lambda wildcards, attempt: resources.fixed_mem_mb(
            "merge_samples", attempt
        ),
        runtime=lambda wildcards, attempt: resources.fixed_runtime(
            "merge_samples", attempt
        ),
    params:
        samples=SAMPLES,
        join=config["join"],
        compression=config["compression"],
    script:
        "../../scripts/merge_samples.py"
