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
PYTEST_WORKERS ?= 2

.PHONY: demo test test-quick setup setup-floor lint typecheck test-newest test-floor lock sandbox clean bench browser ui-screenshots

## demo: set up, start the sandbox, run the demo against it, show what happened
demo: setup
	$(VENV)/bin/python scripts/demo.py

## test: lint + type check, then the whole suite on the newest Airflow and on the floor version, side by side
## (each on PYTEST_WORKERS pytest-xdist workers: one runs the real-Airflow scenarios on one shared stack, the
## others the rest; see tests/conftest.py). Each version's output is printed when it is done.
test: lint typecheck
	@echo "==> pytest on Airflow 3.3.2 and on 3.0.6 side by side (each version's output when it is done)"
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-newest test-floor

## test-quick: the inner loop (under 3 minutes): lint, types, everything but the real-Airflow stacks on the newest
## Airflow, the oracle soaks on one seed instead of three. Not instead of `make test`, which CI runs.
test-quick: lint typecheck
	HCP_SOAK_SEEDS=$${HCP_SOAK_SEEDS:-7} $(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) -m "not e2e" $(PYTEST_ARGS)

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

test-newest: setup browser
	@echo "==> pytest on $$($(VENV)/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
	HCP_CHROMIUM=$(CHROMIUM) $(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) --durations=10 $(PYTEST_ARGS)

test-floor: setup-floor
	@echo "==> pytest on $$($(FLOOR_VENV)/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
	$(FLOOR_VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) --durations=10 $(PYTEST_ARGS)

## browser: Debian's Chromium for the connection form's browser test (tests/ui; Playwright downloads no browser)
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing Debian's chromium (for tests/ui)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make browser: no Chromium at $(CHROMIUM); install it (sudo apt-get install chromium) or set CHROMIUM=" >&2; \
	    exit 1; \
	  fi; }

## ui-screenshots: re-take docs/ui/*.png (the browser test, keeping its screenshots); look at them after
ui-screenshots: setup browser
	HCP_UI_SHOTS=docs/ui HCP_CHROMIUM=$(CHROMIUM) $(VENV)/bin/python -m pytest tests/ui -p no:cacheprovider

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

## bench: polling cost (one account, and N accounts up to 1,000), ours vs the http provider's HttpEventTrigger, the
## look-back's cost, webhooks vs polling (not part of make test; ~42 min)
bench: setup
	$(VENV)/bin/python benchmarks/bench_triggers.py $(BENCH_ARGS)
	$(VENV)/bin/python benchmarks/bench_lookback.py
	$(VENV)/bin/python benchmarks/bench_webhooks.py
