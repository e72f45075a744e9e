# The README's two commands: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CORES ?= 1

.PHONY: run test test-fast lint format clean

$(BIN)/.installed: requirements/cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/cpu.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

run: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) results/all

# Two workers (CI has two cores): one runs a module's Snakemake jobs while the other waits on
# SLURM, a look-alike hub or a single-threaded job chain (tests/conftest.py, LONGEST_FIRST).
test: $(BIN)/.installed
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder tests

# Everything but the end-to-end tier (Snakemake runs, torch model builds): under a minute.
test-fast: $(BIN)/.installed
	$(BIN)/pytest -q -m "not e2e" tests

lint: $(BIN)/.installed
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/snakefmt Snakefile rules
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf results logs benchmarks .snakemake
