rule ingest_sample:
    input:
        counts=get_sample_path,
        parts=get_sample_parts,
    output:
        h5ad="results/samples/{sample}.h5ad",
        # the sample's QC figure, drawn in the same job (a job of its own cost a process)
        png=report(
            "results/qc/samples/{sample}_qc.png",
            caption="../report/sample_qc.rst",
            category="2. QC per sample",
            subcategory="{sample}",
            labels={"sample": "{sample}", "figure": "cell QC"},
        ),
    log:
        "logs/ingest_sample/{sample}.log",
    benchmark:
        "benchmarks/ingest_sample/{sample}.tsv"
    conda:
        "../../envs/scingest.yaml"
    # one thread, and scingest is told so (no helper threads): samples run side by side,
    # which keeps both cores busy through each job's single-threaded parts (start-up,
    # QC, plotting); --set-threads ingest_sample=2 lets the reader inflate in a thread
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: resources.ingest_mem_mb(
            resources.text_mb(sample_files(wildcards.sample)),
            format=get_sample_format(wildcards),
            attempt=attempt,
        ),
        runtime=lambda wildcards, attempt: resources.ingest_runtime(attempt),
    params:
        format=get_sample_format,
        metadata=get_sample_metadata,
        reader=get_reader_params,
        qc=get_qc_params,
        compression=config["compression"],
    script:
        "../../scripts/ingest_sample.py"
