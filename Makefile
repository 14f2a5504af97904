# scingest: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install install-slurm demo test lint bench clean slurm-up slurm-down test-slurm install-lowest test313

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

## The two scverse generations CI tests (README, "Supported versions"):
## install-lowest: $(VENV) with the lowest versions pyproject.toml's ranges allow
## (.ci/lowest_constraints.py), so that `make test` after it tests them
install-lowest:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(PYTHON) .ci/lowest_constraints.py > $(VENV)/lowest-constraints.txt
	$(BIN)/pip install --quiet -c $(VENV)/lowest-constraints.txt -e '.[test,collection]'
	$(BIN)/python -m scingest.warm
	touch $(BIN)/snakemake

## test313: the whole suite on Python 3.13 in $(VENV313), with the newest versions the
## ranges admit (anndata 0.13, scanpy 1.12); PYTHON313 finds pyenv's 3.13 when not on PATH;
## SLURM=1 adds the executor plugin to that venv too (CI, where a cluster answers)
PYTHON313 ?= $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $(HOME)/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | tail -n 1)
VENV313 ?= .venv313
test313:
	@test -n "$(PYTHON313)" || { echo "no python3.13 found: set PYTHON313=/path/to/python3.13" >&2; exit 1; }
	$(MAKE) $(if $(SLURM),install-slurm) test PYTHON=$(PYTHON313) VENV=$(VENV313)

bench: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python bench/run.py

clean:
	rm -rf results logs benchmarks .snakemake
