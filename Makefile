# Two commands on a fresh machine with Python >= 3.10 and make:
#   make report   create .venv, install metapsych, run the whole pipeline, write reports/
#   make test     install the dev extras and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: report test install dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

report: install
	$(BIN)/metapsych run

test: dev
	$(BIN)/python -m pytest -q -n 2

bench: install
	$(BIN)/python bench/pool_grid.py
	$(BIN)/python bench/report_times.py

clean:
	rm -rf $(VENV) reports .metapsych-cache
