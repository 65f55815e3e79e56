# Everything a fresh Linux machine with Python 3.11, git and make needs.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --locked --no-sync
DEMO_DATA ?= outputs/data/demo

.PHONY: setup demo test lint bench clean

setup:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --locked

demo: setup
	$(RUN) alexnet-tfx architecture --num-classes 2 --png outputs/architecture.png

test: setup
	$(RUN) pytest

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

bench: setup
	@mkdir -p benchmarks/results
	@set -e; for script in benchmarks/*.py; do \
	  echo "== $$script"; $(RUN) python $$script; done

clean:
	rm -rf outputs benchmarks/results
