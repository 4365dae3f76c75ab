# The two commands of the README quickstart:
#   make demo   set up a virtual environment and relax an example end to end
#   make test   set up a virtual environment (with test tools) and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench fuzz shipped clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/cfc compile examples/sequence_redemption.cfc
	$(BIN)/cfc run examples/sequence_redemption.cfc --trace out/sequence_redemption.trace.csv --out out/sequence_redemption.json

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# mypy cannot follow pyproject's package-dir (codegen/, runtime/, templates/ install as
# cfc_dsl.codegen, ...), so it checks a tree of links laid out as the installed package.
TYPECHECK := build/typecheck

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/cfc_dsl
	for f in cfc_dsl/*; do ln -s ../../../$$f $(TYPECHECK)/cfc_dsl/; done
	for d in codegen runtime templates; do ln -sfn ../../../$$d $(TYPECHECK)/cfc_dsl/$$d; done
	MYPYPATH=$(TYPECHECK) $(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python bench/grad_throughput.py
	$(BIN)/python bench/compile_time.py

# The fuzz suite's strategies (tests/test_fuzz.py) for as long as FUZZ_SECONDS says;
# each distinct finding is printed with its program, ready to become a tests/bad/ case.
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.installed
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/python tests/test_fuzz.py

# The files the package ships pre-built, each used only while it matches its sources (a stale
# one costs start-up time, never a wrong result; a test fails until it is rewritten): the
# parser's LALR tables, the compiled templates, the prepared standard-library energies.
# The last hashes every source of cfc_dsl/ and codegen/, so run this after any edit there.
shipped: $(VENV)/.installed
	$(BIN)/python -m cfc_dsl.parser_tables
	$(BIN)/python -m cfc_dsl.codegen.jinja_env
	$(BIN)/python -m cfc_dsl.codegen.stdlib_prepared

clean:
	rm -rf $(VENV) out .pytest_cache
