rule ingest_sample:
    input:
        counts=get_sample_path,
        parts=get_sample_parts,
    output:
        h5ad="results/samples/{sample}.h5ad",
    log:
        "logs/ingest_sample/{sample}.log",
    benchmark:
        "benchmarks/ingest_sample/{sample}.tsv"
    conda:
        "../../envs/scingest.yaml"
    threads: 1
    resources:
        mem_mb=get_ingest_mem_mb,
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        format=get_sample_format,
        metadata=get_sample_metadata,
        reader=get_reader_params,
        qc=get_qc_params,
        compression=config["compression"],
    script:
        "../../scripts/ingest_sample.py"
