# Two commands on a fresh machine: `make demo` and `make test` (README.md).
# Each creates .venv and installs the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= workdirs/demo
DEMO_CONFIG ?= configs/synthetic.py
# The pinned jax, flax, orbax, grain, numpy, scipy and matplotlib need it.
NEEDED_PYTHON := 3.11
comma := ,
# One line, instead of a pip resolver error, when $(PYTHON) is too old.
CHECK_PYTHON = @$(PYTHON) -c 'import sys; sys.exit(sys.version_info < ($(subst .,$(comma),$(NEEDED_PYTHON)),))' 2>/dev/null || { \
	echo "make: PYTHON=$(PYTHON) is $$( (command -v $(PYTHON) >/dev/null && $(PYTHON) --version) 2>&1 || echo 'not found'); cascade_jax needs Python $(NEEDED_PYTHON) or newer: run make PYTHON=python$(NEEDED_PYTHON) $(or $(MAKECMDGOALS),install)" >&2; \
	exit 1; }

.PHONY: demo test install clean check-python

install: $(VENV)/.installed

check-python:
	$(CHECK_PYTHON)

$(VENV)/.installed: setup.cfg pyproject.toml
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(PY) -m launch.train --config=$(DEMO_CONFIG) --workdir=$(WORKDIR)
	$(PY) -m launch.eval --config=$(DEMO_CONFIG) --workdir=$(WORKDIR) --flip
	$(PY) -m launch.report --workdir=$(WORKDIR) --flip

test: install
	$(PY) -m pytest -q --durations=25

clean:
	rm -rf $(VENV) workdirs
