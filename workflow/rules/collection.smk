# The cell collection store (config `collection`): soma appends, cellarr rebuilds.
# The store is the job's state, not a declared output: Snakemake deletes declared outputs
# before a job runs, so the manifest is the output and the store lives beside it.


rule build_collection:
    input:
        h5ads=get_checkpoints,
    output:
        manifest="results/collection.manifest.tsv",
    log:
        "logs/build_collection/build_collection.log",
    benchmark:
        "benchmarks/build_collection/build_collection.tsv"
    # its own environment: TileDB-SOMA and cellarr require pandas < 3
    conda:
        "../../envs/collection.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, input, attempt: resources.collection_mem_mb(
            input.h5ads, kind=config["collection"], attempt=attempt
        ),
        runtime=lambda wildcards, input, attempt: resources.collection_runtime(
            input.h5ads, attempt=attempt
        ),
    params:
        samples=SAMPLES,
        kind=config["collection"],
        store=f"results/collection.{config['collection']}",
    script:
        "../../scripts/build_collection.py"
