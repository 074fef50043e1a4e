# Set-up and entry points for both TensorFlow stacks.
#
#   make run            the main job on the embedded dataset (TF 1.15 stack)
#   make test           the quick test suite, ~5 min          (TF 1.15 stack)
#   make test-all       every test, the slow ones too (~30 min per stack)
#   make run TF=2       ... on the TF 2.21 stack; likewise test, bench, venv
#   make shell TF=2     a shell inside the stack's environment (exit to leave)
#   make run FRESH=1    start the main job over (deletes its OUT folder first)
#   make clean          delete outputs and caches; keep the environments
#   make distclean      also delete the environments (.venv/)
#   TF1_BUILD=onednn    with TF=1: Intel's oneDNN build, intel-tensorflow 1.15.2
#
# Each target creates the stack's virtual environment on first use.

TF ?= 1
# TF 1.15 wheel: stock (tensorflow==1.15.5) or onednn (intel-tensorflow==1.15.2).
TF1_BUILD ?= stock
# How requirements.txt is turned into the list the venv installs.
REQUIREMENTS_EDIT := cat

ifeq ($(TF),1)
  PY_VERSION := 3.7
  REQUIREMENTS := requirements.txt
  ifeq ($(TF1_BUILD),stock)
    STACK := tf1
  else ifeq ($(TF1_BUILD),onednn)
    STACK := tf1-onednn
    # The same pins with Intel's oneDNN wheel in place of the stock one.
    REQUIREMENTS_EDIT := sed 's/^tensorflow==1\.15\.5$$/intel-tensorflow==1.15.2/'
  else
    $(error TF1_BUILD must be stock (tensorflow==1.15.5) or onednn (intel-tensorflow==1.15.2), not '$(TF1_BUILD)')
  endif
else ifeq ($(TF),2)
  PY_VERSION := 3.11
  REQUIREMENTS := requirements-tf2.txt
  STACK := tf2
  ifneq ($(TF1_BUILD),stock)
    $(error TF1_BUILD applies to TF=1 only)
  endif
  # tf-keras goes in afterwards with --no-deps (see requirements-tf2.txt).
  REQUIREMENTS_EDIT := grep -v '^tf-keras'
else
  $(error TF must be 1 (TensorFlow 1.15, Python 3.7) or 2 (TensorFlow 2.21, Python 3.11), not '$(TF)')
endif

VENV ?= .venv/$(STACK)
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-k mobilenet_v1 -x'.
PYTEST_ARGS ?=
# pytest-xdist workers: auto = one per CPU; 0 runs the tests in this process.
PYTEST_WORKERS ?= auto
# Where the main job writes its dataset, checkpoints and exports.
OUT ?= out/$(STACK)
# FRESH=1: make run deletes OUT first instead of continuing from it.
FRESH ?=

.PHONY: help venv test test-all run bench shell clean distclean

help:
	@sed -n '2,14p' Makefile | sed 's/^# \{0,1\}//'

venv: $(STAMP)

# Re-created whenever a requirements file changes.
$(STAMP): $(REQUIREMENTS) requirements-test.txt scripts/find_python.sh
	@set -e; \
	python="$(PYTHON)"; \
	if [ -z "$$python" ]; then python=$$(scripts/find_python.sh $(PY_VERSION)); fi; \
	echo ">>> creating $(VENV) with $$python (TF=$(TF))"; \
	rm -rf $(VENV); "$$python" -m venv $(VENV)
	$(VENV_PYTHON) -m pip install -q --upgrade "pip<24.1"
	$(REQUIREMENTS_EDIT) $(REQUIREMENTS) > $(VENV)/requirements-main.txt
	$(VENV_PYTHON) -m pip install -q -r $(VENV)/requirements-main.txt -r requirements-test.txt
	@if grep -q '^tf-keras' $(REQUIREMENTS); then \
	  echo "$(VENV_PYTHON) -m pip install -q --no-deps $$(grep '^tf-keras' $(REQUIREMENTS))"; \
	  $(VENV_PYTHON) -m pip install -q --no-deps $$(grep '^tf-keras' $(REQUIREMENTS)); fi
	$(VENV_PYTHON) -c "from core import tf_compat; import tensorflow as tf, tf_slim; print('>>> TensorFlow', tf.__version__, 'ready in $(VENV)')"
	@touch $@

# The quick tier leaves out tests marked slow (full-size graphs, every-family
# sweeps, multi-process jobs); test-all runs them as well.
test: $(STAMP)
	$(VENV_PYTHON) -m pytest -n $(PYTEST_WORKERS) -m 'not slow' $(PYTEST_ARGS)

test-all: $(STAMP)
	$(VENV_PYTHON) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

run: $(STAMP)
	@PYTHON=$(VENV_PYTHON) OUT=$(OUT) DEFAULT_OUT=out/$(STACK) FRESH=$(FRESH) MAKE_RUN="make run$(if $(filter-out 1,$(TF)), TF=$(TF))$(if $(filter onednn,$(TF1_BUILD)), TF1_BUILD=onednn)" bash scripts/main_job.sh

bench: $(STAMP)
	@if [ -f benchmarks/benchmark.py ]; then \
	  $(VENV_PYTHON) benchmarks/benchmark.py $(BENCH_ARGS); \
	else echo "The benchmark (issue 7) is not built yet."; exit 1; fi

# An interactive shell with the environment's python first on PATH; the
# README's `python ...` recipes run in it as written. bash reads the user's
# ~/.bashrc and then scripts/shell_rc.sh, which puts the environment back in
# front of whatever the rc file put first (pyenv, conda).
shell: $(STAMP)
	@echo ">>> $(VENV) active in a new shell ($$($(VENV_PYTHON) --version 2>&1)); 'exit' leaves it."
	@export VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(VENV))/bin:$$PATH" TF=$(TF) TF1_BUILD=$(TF1_BUILD) \
	  PS1="($(STACK)) $${PS1:-\\w \\$$ }" MAKE_SHELL_STACK=$(STACK); shell="$${SHELL:-/bin/bash}"; \
	  case "$$shell" in */bash) exec "$$shell" --rcfile "$(CURDIR)/scripts/shell_rc.sh" -i ;; *) exec "$$shell" -i ;; esac

# Outputs and caches; the environments (about 2 GB) stay.
clean:
	rm -rf out .pytest_cache
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv
