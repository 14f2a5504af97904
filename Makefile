# scingest: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install install-slurm demo test lint bench clean slurm-up slurm-down test-slurm

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,collection]'
	$(BIN)/python -m scingest.warm
	touch $@

install: $(BIN)/snakemake

## install-slurm: install, plus the SLURM executor plugin (only for cluster use: at every
## snakemake start the plugin asks `scontrol show config`, which waits ~10 s where SLURM's
## client tools are installed but no controller answers)
$(VENV)/.slurm-plugin: $(BIN)/snakemake
	$(BIN)/pip install --quiet -e '.[test,slurm]'
	touch $@

install-slurm: $(VENV)/.slurm-plugin

## demo: install, then run the workflow on the bundled example data (example/)
demo: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) --profile profiles/default
	@echo "Outputs in results/: samplesheet.tsv, samples/*.h5ad, merged.h5ad, merge_report.tsv, qc/"

## test: install, then run the whole test suite (unit + workflow integration tests)
test: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest

## slurm-up / slurm-down: a one-node SLURM cluster on loopback (root, Debian), by PID
slurm-up:
	bash .ci/slurm-up.sh

slurm-down:
	bash .ci/slurm-down.sh

## test-slurm: only the tests that run the workflow through SLURM (needs slurm-up)
test-slurm: install-slurm
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -m slurm

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint --cores 1

bench: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python bench/run.py

clean:
	rm -rf results logs benchmarks .snakemake
