# ssmlab — the two commands: `make lab` (JupyterLab on notebooks/) and `make test`.
# Both create or refresh .venv on a fresh machine from requirements.lock (exact versions);
# `make lock` refreshes the lock from pyproject's ranges, `make test-latest` tries the newest.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
TORCH := 2.13.0
# Offline real datasets (read-only) used by tests when present.
SHARED_DATA := $(abspath ../shared/datasets)
export SSMLAB_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)

.PHONY: venv lab lint test test-unit test-notebooks notebooks test-kernels test-latest lock chromium clean

venv: $(STAMP)

# On a CPU-only Linux machine take the pinned CPU wheel of torch first (torch==$(TORCH) from
# pip's find-links or the PyTorch CPU index): PyPI's torch is a multi-GB CUDA build. The lock
# then finds torch==$(TORCH) satisfied; ssmlab itself goes in without resolving anything.
$(STAMP): $(LOCK) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(call cpu_torch,$(PY),torch==$(TORCH))
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# $(call cpu_torch,python,requirement): install torch first on a Linux machine without a GPU.
cpu_torch = if [ "$$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1; then \
		$(1) -m pip install --quiet $(2); fi

# requirements.lock: exact versions of pyproject's dependencies and its dev and lab extras for
# Python 3.11 on x86-64 Linux, resolved on PyPI alone (the local indexes pip.conf may add are
# ignored). torch is resolved from its CPU wheel (constraint torch==$(TORCH)+cpu, which also beats
# the lock's own torch==$(TORCH) pin when re-resolving), so no CUDA package enters the lock, and
# is written without the +cpu label. Existing pins are kept while pyproject allows them; to move every pin
# to the newest allowed version: make lock LOCK_FLAGS=--upgrade.
TORCH_WHEELS ?= $(or $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null),\
	https://download.pytorch.org/whl/cpu/torch/)
LOCK_FLAGS ?=
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --extra lab --quiet \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
		--no-config --index-url https://pypi.org/simple --find-links $(TORCH_WHEELS) \
		--constraint <(echo torch==$(TORCH)+cpu) --custom-compile-command 'make lock' \
		$(LOCK_FLAGS) --output-file $(LOCK)
	sed -i 's/^torch==$(TORCH)+cpu$$/torch==$(TORCH)/' $(LOCK)

# JupyterLab refuses to run as root without --allow-root (containers, CI).
lab: venv
	$(VENV)/bin/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

NBVAL := --nbval --nbval-sanitize-with notebooks/sanitize.cfg

# ruff (pinned by the lock; rules in pyproject): lint, and the formatter's choice over any other.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Lint, then unit tests, notebooks (strict nbval: stored outputs compared) and the browser test.
test: lint chromium
	$(PY) -m pytest -q tests notebooks $(NBVAL)

test-unit: venv
	$(PY) -m pytest -q tests --ignore=tests/e2e

test-notebooks: venv
	$(PY) -m pytest -q notebooks $(NBVAL)

# Sync every notebooks/NN_topic.py (the source) to its paired .ipynb and execute it in place, so
# the stored outputs are the source's (then `make test-notebooks` compares them). One notebook:
# make notebooks NB=notebooks/05_training.py
NB ?= $(wildcard notebooks/[0-9][0-9]_*.py)
notebooks: venv
	for py in $(NB); do \
		$(VENV)/bin/jupytext --sync $$py && \
		$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.store_widget_state=False $${py%.py}.ipynb || exit 1; \
	done

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

# The newest versions pyproject allows instead of the lock, in .venv-latest (not in CI): drift
# shows here before it reaches the lock. torch stays the CPU pin unless TORCH_LATEST says else
# (e.g. TORCH_LATEST='torch --index-url https://download.pytorch.org/whl/cpu').
LATEST := .venv-latest
TORCH_LATEST ?= torch==$(TORCH)
test-latest: chromium
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(call cpu_torch,$(LATEST)/bin/python,$(TORCH_LATEST))
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev,lab]'
	$(LATEST)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(LATEST)/bin/python -m pip list --format=freeze > $(LATEST)/versions.txt
	diff <(grep -v '^#' $(LOCK) | grep '==' | tr A-Z_ a-z- | sort) \
		<(grep -v '^ssmlab' $(LATEST)/versions.txt | tr A-Z_ a-z- | sort) || true
	$(LATEST)/bin/ruff check . && $(LATEST)/bin/ruff format --check .
	$(LATEST)/bin/python -m pytest -q tests notebooks $(NBVAL)

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
	rm -rf $(VENV) $(LATEST) .pytest_cache
