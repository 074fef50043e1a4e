# Set-up and entry points for both TensorFlow stacks.
#
#   make run            the main job on the embedded dataset (TF 1.15 stack)
#   make test           the test suite                        (TF 1.15 stack)
#   make run TF=2       ... on the TF 2.21 stack; likewise test, bench, venv
#
# Each target creates the stack's virtual environment on first use.

TF ?= 1

ifeq ($(TF),1)
  PY_VERSION := 3.7
  REQUIREMENTS := requirements.txt
else ifeq ($(TF),2)
  PY_VERSION := 3.11
  REQUIREMENTS := requirements-tf2.txt
else
  $(error TF must be 1 (TensorFlow 1.15, Python 3.7) or 2 (TensorFlow 2.21, Python 3.11), not '$(TF)')
endif

VENV ?= .venv/tf$(TF)
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. make test PYTEST_ARGS='-k mobilenet_v1 -x'.
PYTEST_ARGS ?=
# Where the main job writes its dataset, checkpoints and exports.
OUT ?= out/tf$(TF)

.PHONY: help venv test run bench clean

help:
	@sed -n '2,8p' Makefile | sed 's/^# \{0,1\}//'

venv: $(STAMP)

# Re-created whenever a requirements file changes.
$(STAMP): $(REQUIREMENTS) requirements-test.txt scripts/find_python.sh
	@set -e; \
	python="$(PYTHON)"; \
	if [ -z "$$python" ]; then python=$$(scripts/find_python.sh $(PY_VERSION)); fi; \
	echo ">>> creating $(VENV) with $$python (TF=$(TF))"; \
	rm -rf $(VENV); "$$python" -m venv $(VENV)
	$(VENV_PYTHON) -m pip install -q --upgrade "pip<24.1"
ifeq ($(TF),2)
	grep -v '^tf-keras' $(REQUIREMENTS) > $(VENV)/requirements-main.txt
	$(VENV_PYTHON) -m pip install -q -r $(VENV)/requirements-main.txt -r requirements-test.txt
	$(VENV_PYTHON) -m pip install -q --no-deps $$(grep '^tf-keras' $(REQUIREMENTS))
else
	$(VENV_PYTHON) -m pip install -q -r $(REQUIREMENTS) -r requirements-test.txt
endif
	$(VENV_PYTHON) -c "from nets import tf_compat; import tensorflow as tf, tf_slim; print('>>> TensorFlow', tf.__version__, 'ready in $(VENV)')"
	@touch $@

test: $(STAMP)
	$(VENV_PYTHON) -m pytest $(PYTEST_ARGS)

run: $(STAMP)
	PYTHON=$(VENV_PYTHON) OUT=$(OUT) bash scripts/main_job.sh

bench: $(STAMP)
	@if [ -f benchmarks/benchmark.py ]; then \
	  $(VENV_PYTHON) benchmarks/benchmark.py $(BENCH_ARGS); \
	else echo "The benchmark (issue 7) is not built yet."; exit 1; fi

clean:
	rm -rf .venv out .pytest_cache
