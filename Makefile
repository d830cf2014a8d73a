# Two commands on a fresh machine with Python 3.11 and make: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test bench lint clean notebooks paper

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# the whole chain: solve → export → run the reference network in-process → predictions against observations
demo: $(VENV)/.installed
	$(BIN)/mira-theory solve models/default.toml
	@mkdir -p runs
	$(BIN)/mira-theory export models/default.toml -o runs/default-params.json
	$(BIN)/mira-theory experiment models/default.toml --params runs/default-params.json --tasks 20000 \
		--seed 1 --out runs/demo --quiet

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 -q

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/run.py

# run every notebook top to bottom (outputs are not stored; `python notebooks/run.py --write` stores them)
notebooks: $(VENV)/.installed-dev
	$(BIN)/python notebooks/run.py

# regenerate every figure, table and number of the paper; compiles the PDF where LaTeX is installed
paper: $(VENV)/.installed
	$(BIN)/python paper/build.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check mira_theory reference_node tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
