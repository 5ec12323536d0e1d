# Two commands set everything up and run: `make demo` (the main job) and `make test` (lint, then the test suite).
.PHONY: setup demo lint test
PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m aero_opt.app demo --out results/demo

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest -q tests
