# Two commands matter:  `make demo`  and  `make test`  (see README.md).
# Everything else here is what they are built from. Only Python >= 3.11 and make are needed.

PYTHON      ?= python3
VENV        := .venv
FLOOR_VENV  := .venv-floor
# The newest Airflow line we test (the main venv) and the oldest we support (the floor venv).
LOCK        := requirements/airflow-3.3.txt
FLOOR_LOCK  := requirements/airflow-3.0.txt
UV          := $(VENV)/bin/uv
PYTEST_ARGS ?=

.PHONY: demo test test-quick setup setup-floor lint typecheck test-newest test-floor lock sandbox clean bench

## demo: set up, start the sandbox, run the demo against it, show what happened
demo: setup
	$(VENV)/bin/python scripts/demo.py

## test: lint + type check, then the whole suite on the newest Airflow and on the floor version
test: lint typecheck test-newest test-floor

## test-quick: the inner loop (a few minutes): lint, types, everything but the real-Airflow stacks on the newest
## Airflow, two workers, shorter oracle soaks. Not instead of `make test`, which CI runs.
test-quick: lint typecheck
	HCP_SOAK_CHANGES=$${HCP_SOAK_CHANGES:-300} $(VENV)/bin/python -m pytest -n 2 -m "not e2e" $(PYTEST_ARGS)

setup: $(VENV)/.installed
setup-floor: $(FLOOR_VENV)/.installed

$(VENV)/.installed: $(LOCK) pyproject.toml
	@echo "==> creating $(VENV) (Airflow from $(LOCK))"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	@$(UV) pip install --quiet --python $(VENV)/bin/python -r $(LOCK)
	@touch $@

$(FLOOR_VENV)/.installed: $(FLOOR_LOCK) pyproject.toml $(VENV)/.installed
	@echo "==> creating $(FLOOR_VENV) (Airflow from $(FLOOR_LOCK))"
	@test -x $(FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(FLOOR_VENV)
	@$(UV) pip install --quiet --python $(FLOOR_VENV)/bin/python -r $(FLOOR_LOCK)
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

test-newest: setup
	@echo "==> pytest on $$($(VENV)/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test-floor: setup-floor
	@echo "==> pytest on $$($(FLOOR_VENV)/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
	$(FLOOR_VENV)/bin/python -m pytest $(PYTEST_ARGS)

## sandbox: run the local Housecall Pro API in the foreground (Ctrl-C to stop)
sandbox: setup
	$(VENV)/bin/housecallpro sandbox

## lock: re-resolve the pinned dependency sets after changing pyproject.toml
lock: setup
	$(UV) pip compile --python-version 3.11 --quiet --no-header -o $(LOCK) requirements/airflow-3.3.in
	# The floor resolves as of its release era (newer FastAPI/Cadwyn break Airflow 3.0), like its constraints.
	$(UV) pip compile --python-version 3.11 --quiet --no-header -o $(FLOOR_LOCK) requirements/airflow-3.0.in \
	  --exclude-newer 2025-10-01 --exclude-newer-package apache-airflow-providers-common-compat=2026-12-01

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .pytest_cache .mypy_cache .ruff_cache .demo

## bench: polling cost (one account, and N accounts up to 1,000), ours vs the http provider's HttpEventTrigger, and the
## look-back's cost (not part of make test; ~40 min)
bench: setup
	$(VENV)/bin/python benchmarks/bench_triggers.py $(BENCH_ARGS)
	$(VENV)/bin/python benchmarks/bench_lookback.py
