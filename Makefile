# ssmlab — the two commands: `make lab` (JupyterLab on notebooks/) and `make test`.
# Both create or refresh .venv on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Offline real datasets (read-only) used by tests when present.
SHARED_DATA := $(abspath ../shared/datasets)
export SSMLAB_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: venv lab test test-fast notebooks-sync bench-kernels clean

venv: $(STAMP)

# On a CPU-only Linux machine take the pinned CPU wheel of torch first: an unpinned torch
# pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if [ "$$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1; then \
		$(PY) -m pip install --quiet torch==2.13.0; fi
	$(PY) -m pip install --quiet -e '.[dev,lab]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

test: venv
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .pytest_cache
