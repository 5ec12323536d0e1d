# Two commands set everything up and run: `make demo` (the main job) and `make test` (the test suite).
.PHONY: setup demo test
PY := .venv/bin/python

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m aero_opt.cli demo --out results/demo

test: setup
	$(PY) -m pytest -q tests
