# Everything a fresh Linux machine with Python 3.11, git and make needs.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --locked --no-sync

.PHONY: setup demo test lint bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked

# Generates the demo dataset if absent, then runs the whole pipeline (demo preset).
demo: setup
	$(RUN) alexnet-tfx run

test: setup
	$(RUN) pytest

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

bench: setup
	@mkdir -p benchmarks/results
	@set -e; for script in $(filter-out benchmarks/common.py,$(wildcard benchmarks/*.py)); do \
	  echo "== $$script"; $(RUN) python $$script; done

clean:
	rm -rf outputs benchmarks/results
