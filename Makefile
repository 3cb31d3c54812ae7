# Two commands on a fresh machine: `make demo` and `make test` (README.md).
# Each creates .venv and installs the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= workdirs/demo
DEMO_CONFIG ?= configs/synthetic.py

.PHONY: demo test install clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(PY) -m launch.train --config=$(DEMO_CONFIG) --workdir=$(WORKDIR)
	$(PY) -m launch.eval --config=$(DEMO_CONFIG) --workdir=$(WORKDIR)
	$(PY) -m launch.report --workdir=$(WORKDIR)

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) workdirs
