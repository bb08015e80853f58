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

.PHONY: venv lab test test-unit test-notebooks test-kernels chromium clean

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

# JupyterLab refuses to run as root without --allow-root (containers, CI).
lab: venv
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

NBVAL := --nbval --nbval-sanitize-with notebooks/sanitize.cfg

# Unit tests, notebooks (strict nbval: stored outputs compared) and the browser test, in one run.
test: venv chromium
	$(PY) -m pytest -q tests notebooks $(NBVAL)

test-unit: venv
	$(PY) -m pytest -q tests --ignore=tests/e2e

test-notebooks: venv
	$(PY) -m pytest -q notebooks $(NBVAL)

# mamba-ssm's Triton kernels run on the CPU by Triton's interpreter, tested against ssmlab's
# torch forms (tests/kernels). The gpu-code extra's exact pins go into .venv without
# dependencies; mamba-ssm is built from source without its CUDA extensions.
KERNELS_STAMP := $(VENV)/.kernels-installed
$(KERNELS_STAMP): pyproject.toml $(STAMP)
	$(PY) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["gpu-code"], sep="\n")' > $(VENV)/gpu-code.txt
	MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE \
		$(PY) -m pip install --quiet --no-build-isolation --no-deps -r $(VENV)/gpu-code.txt
	touch $@

test-kernels: $(KERNELS_STAMP)
	SSMLAB_KERNEL_TESTS=require $(PY) -m pytest -q tests/kernels

# The browser test drives Debian's chromium (never a downloaded browser).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "!!! chromium is missing and apt-get is unavailable (or not root):" >&2; \
		echo "!!! the browser test (tests/e2e) will be SKIPPED" >&2; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache
