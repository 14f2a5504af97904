# scingest: the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install install-slurm demo test lint bench clean slurm-up slurm-down test-slurm install-lowest test313 test-collection versions

## install: $(VENV) with the library, its test tools and, where it resolves beside them,
## the collection extra; PINS adds requirements (make test313: 'pandas>=3' ...)
PINS ?=

# pip install -e '.[test,collection]' $(PINS) $(1) where the collection extra resolves
# beside them, else '.[test]' and a note: TileDB-SOMA 2.3 and cellarr 0.6 require pandas < 3
# (pip's reasons in $(VENV)/collection-extra.log)
define pip_install
	@if $(BIN)/pip install --dry-run --quiet -e '.[test,collection]' $(PINS) $(1) \
	        > $(VENV)/collection-extra.log 2>&1; then \
	    echo "$(BIN)/pip install -e '.[test,collection]' $(PINS) $(1)"; \
	    $(BIN)/pip install --quiet -e '.[test,collection]' $(PINS) $(1); \
	else \
	    echo "note: the collection extra (TileDB-SOMA, cellarr: pandas < 3) does not install" \
	        "beside $(or $(strip $(PINS) $(1)),this Python's packages) (pip's reasons:" \
	        "$(VENV)/collection-extra.log); installing without it. collection: soma/cellarr" \
	        "then stop with the ways out (README, Atlas collection)"; \
	    echo "$(BIN)/pip install -e '.[test]' $(PINS) $(1)"; \
	    $(BIN)/pip install --quiet -e '.[test]' $(PINS) $(1); \
	fi
endef

$(BIN)/snakemake: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(call pip_install)
	$(BIN)/python -m scingest.warm
	touch $@

install: $(BIN)/snakemake

## versions: the versions $(VENV) resolved (CI prints them for every run)
versions:
	@$(BIN)/python -c 'import platform; print("python", platform.python_version())'
	@$(BIN)/python -m pip list 2>/dev/null | grep -iE '^(scingest|anndata|scanpy|pandas|numpy|scipy|h5py|snakemake|numba|pyarrow|tiledbsoma|cellarr) ' || true

## install-slurm: install, plus the SLURM executor plugin (only for cluster use: at every
## snakemake start the plugin asks `scontrol show config`, which waits ~10 s where SLURM's
## client tools are installed but no controller answers)
$(VENV)/.slurm-plugin: $(BIN)/snakemake
	$(BIN)/pip install --quiet -e '.[test,slurm]' $(PINS)
	touch $@

install-slurm: $(VENV)/.slurm-plugin

## demo: install, then run the workflow on the bundled example data (example/)
demo: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) --profile profiles/default
	@echo "Outputs in results/: samplesheet.tsv, samples/*.h5ad, merged.h5ad, merge_report.tsv, qc/"

## test: install, print the versions installed, then run the whole test suite (unit +
## workflow integration tests)
test: install
	@$(MAKE) --no-print-directory versions
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
	$(call pip_install,-c $(VENV)/lowest-constraints.txt)
	$(BIN)/python -m scingest.warm
	touch $(BIN)/snakemake

## test313: the whole suite on Python 3.13 in $(VENV313), with the newest versions the
## ranges admit (anndata 0.13, scanpy 1.12, pandas 3: PINS313; the collection extra does
## not install beside pandas 3); PYTHON313 finds pyenv's 3.13 when not on PATH;
## SLURM=1 adds the executor plugin to that venv too (CI, where a cluster answers)
PYTHON313 ?= $(shell python3.13 -c 'import sys; print(sys.executable)' 2>/dev/null || ls -d $(HOME)/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | tail -n 1)
VENV313 ?= .venv313
PINS313 ?= 'anndata>=0.13' 'scanpy>=1.12' 'pandas>=3'
test313:
	@test -n "$(PYTHON313)" || { echo "no python3.13 found: set PYTHON313=/path/to/python3.13" >&2; exit 1; }
	$(MAKE) $(if $(SLURM),install-slurm) test PYTHON=$(PYTHON313) VENV=$(VENV313) PINS="$(PINS313)"

## test-collection: only the collection's tests, in $(VENV_COLLECTION), on the newest
## stack TileDB-SOMA and cellarr install beside (Python 3.13: anndata 0.13, pandas 2.x;
## install-lowest tests them with the lowest); they must not skip there
## (SCINGEST_REQUIRE_COLLECTION); SLURM=1 adds the executor plugin and the collection job's
## run through SLURM (CI, where a cluster answers)
VENV_COLLECTION ?= .venv-collection
PYTHON_COLLECTION ?= $(PYTHON313)
COLLECTION_TESTS := tests/unit/test_collection_soma.py tests/unit/test_collection_cellarr.py tests/workflow/test_workflow_collection.py $(if $(SLURM),tests/workflow/test_slurm.py::test_collection_job_runs_through_slurm_with_its_own_request)
test-collection:
	@test -n "$(PYTHON_COLLECTION)" || { echo "no python3.13 found: set PYTHON_COLLECTION=/path/to/python3" >&2; exit 1; }
	$(MAKE) install $(if $(SLURM),install-slurm) versions VENV=$(VENV_COLLECTION) PYTHON=$(PYTHON_COLLECTION)
	SCINGEST_REQUIRE_COLLECTION=1 PATH=$(abspath $(VENV_COLLECTION))/bin:$$PATH \
	    $(VENV_COLLECTION)/bin/python -m pytest $(COLLECTION_TESTS)

bench: install
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python bench/run.py

clean:
	rm -rf results logs benchmarks .snakemake
