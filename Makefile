# Two commands on a fresh machine: `make demo` and `make test` (README.md).
# Each creates .venv and installs the pinned dependencies on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKDIR ?= workdirs/demo
DEMO_CONFIG ?= configs/synthetic.py
# The pinned jax, flax, orbax, grain, numpy, scipy and matplotlib need it.
NEEDED_PYTHON := 3.11
# The pip that installs them, pinned like them (verified 2026-12-03: CI and demo).
PIP_VERSION := 26.3
comma := ,
# One line, instead of a pip resolver error, when $(PYTHON) is too old.
CHECK_PYTHON = @$(PYTHON) -c 'import sys; sys.exit(sys.version_info < ($(subst .,$(comma),$(NEEDED_PYTHON)),))' 2>/dev/null || { \
	echo "make: PYTHON=$(PYTHON) is $$( (command -v $(PYTHON) >/dev/null && $(PYTHON) --version) 2>&1 || echo 'not found'); cascade_jax needs Python $(NEEDED_PYTHON) or newer: run make PYTHON=python$(NEEDED_PYTHON) $(or $(MAKECMDGOALS),install)" >&2; \
	exit 1; }

.PHONY: demo test install clean check-python device-wheels

install: $(VENV)/.installed

check-python:
	$(CHECK_PYTHON)

$(VENV)/.installed: setup.cfg pyproject.toml
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: install
	$(PY) -m launch.train --config=$(DEMO_CONFIG) --workdir=$(WORKDIR)
	$(PY) -m launch.eval --config=$(DEMO_CONFIG) --workdir=$(WORKDIR) --flip
	$(PY) -m launch.report --workdir=$(WORKDIR) --flip

test: install
	$(PY) -m pytest -q --durations=25

clean:
	rm -rf $(VENV) workdirs .device_wheels .device_site

# The wheels that launch/device_benchmark.sh installs on a lent GPU machine,
# which has no network: our pinned dependencies that its image lacks (its
# package list of 2026-11-17), for its Python 3.12 on x86-64. A package
# with no wheel on the index (promise) is built here; it is pure Python.
DEVICE_WHEELS := .device_wheels
DEVICE_MISSING := array-record dm-tree docstring-parser googleapis-common-protos \
	grain immutabledict importlib-resources ml-collections portpicker promise \
	simple-parsing tensorboardx tensorflow-datasets tensorflow-metadata \
	termcolor toml tzdata
empty :=
space := $(empty) $(empty)

device-wheels: install
	mkdir -p $(DEVICE_WHEELS)
	$(PY) -m pip freeze | sed 's/_/-/g' | grep -i -E '^($(subst $(space),|,$(strip $(DEVICE_MISSING))))==' > $(DEVICE_WHEELS)/requirements.txt
	for requirement in $$(cat $(DEVICE_WHEELS)/requirements.txt); do \
	  $(PY) -m pip download --quiet --no-deps --only-binary=:all: \
	    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
	    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	    -d $(DEVICE_WHEELS) $$requirement \
	  || $(PY) -m pip wheel --quiet --no-deps -w $(DEVICE_WHEELS) $$requirement \
	  || exit 1; \
	done
	@echo "$(DEVICE_WHEELS): $$(ls $(DEVICE_WHEELS)/*.whl | wc -l) wheels, $$(du -sh $(DEVICE_WHEELS) | cut -f1); carry it to run launch/device_benchmark.sh"
