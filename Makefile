# The single entry point. `make synth` and `make test` each install what they need (idempotent:
# a second run skips installs) and work with no AWS credentials.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Pinned Node 24 and CDK CLI from package.json come first: jsii wants Node >= 22, the machine may have 20.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
# Offline by design: nothing here may need credentials or look anything up.
unexport AWS_PROFILE AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
SUPPORTED_PYTHON := import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)

.PHONY: help install synth test lint pytest bench clean mutation

help:
	@echo "make synth                 install, then synthesize the pipeline and all stages into cdk.out/ (cdk-nag gated)"
	@echo "make test                  install, then lint and run the whole test suite"
	@echo "make pytest ARGS='-k ...'  run a subset of the tests with the same Node and venv (e.g. ARGS='tests/unit -x')"
	@echo "make lint                  ruff check and format check"
	@echo "make bench                 transform Lambda throughput benchmark"
	@echo "make mutation [MODULES=..] mutation testing of transform, SQL and config (slow, not in test/CI; docs/testing.md)"
	@echo "make install               only install (.venv from pyproject.toml, node_modules from package-lock.json)"
	@echo "make clean                 remove cdk.out, reports and caches (keeps installs)"

# A .venv left by an unsupported Python (or a moved checkout) is rebuilt instead of failing later.
$(PY_STAMP): pyproject.toml
	@command -v '$(PYTHON)' >/dev/null || { echo "error: PYTHON=$(PYTHON) was not found on PATH; this project needs Python >= 3.11: run 'make PYTHON=python3.11 ...' (or 3.12/3.13)" >&2; exit 1; }
	@'$(PYTHON)' -c '$(SUPPORTED_PYTHON)' 2>/dev/null || { echo "error: PYTHON=$(PYTHON) is $$('$(PYTHON)' --version 2>&1 | head -1); this project needs Python >= 3.11: run 'make PYTHON=python3.11 ...' (or 3.12/3.13)" >&2; exit 1; }
	@if [ -x $(BIN)/python ] && ! $(BIN)/python -c '$(SUPPORTED_PYTHON)' 2>/dev/null; then echo "rebuilding $(VENV): it was made by an unsupported or missing Python"; rm -rf $(VENV); fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@node --version | grep -q '^v24\.' || { echo "error: node_modules/.bin/node is not Node 24" >&2; exit 1; }
	@touch $@

install: $(PY_STAMP) $(NODE_STAMP)

# cdk synth exits 1 on any unacknowledged cdk-nag finding; the per-stage JUnit reports are written either way.
# The whole app is synthesized and written to cdk.out whichever stacks are named; naming the one top-level stack
# the CLI would show keeps it from printing "Supply a stack id (Pipeline, cross-region-stack-...) to display its
# template" when CDK Pipelines adds a cross-region support stack (aws-cdk 2.1148.1: cdk-toolkit.js synth(), which
# prints that for more than one selected stack; `cdk synth` selects a named stack exclusively).
# --no-notices: the CLI would otherwise print its online notices after a successful synth.
# The CLI's "<app>: Subprocess exited with error N" is dropped (the app has said why): after a configuration
# error (the app exits 2) only make's own line follows the errors.
SYNTH_NOISE := match($$0, /Subprocess exited with error [0-9]+/) { app = substr($$0, RSTART + 29, RLENGTH - 29); next } \
  { print; fflush() } END { exit app + 0 }
synth: install
	@rm -rf cdk.out
	@status=0; app=0; { cdk synth --quiet --no-notices Pipeline 2>&1 1>&3 3>&- | awk '$(SYNTH_NOISE)' >&2; } 3>&1 \
	    || { codes=("$${PIPESTATUS[@]}"); status=$${codes[0]}; app=$${codes[1]}; }; \
	  nag=0; if [ -f cdk.out/manifest.json ]; then $(BIN)/python -m pipeline.nag_report junit --assembly cdk.out --out reports/nag || nag=$$?; fi; \
	  [ $$status -ne 0 ] || status=$$nag; \
	  if [ $$status -eq 0 ]; then \
	    echo "Templates:      cdk.out/*.template.json, cdk.out/assembly-*/ (one folder per stage)"; \
	    echo "cdk-nag report: cdk.out/validation-report.json, reports/nag/*.xml (JUnit, one file per stage)"; \
	  elif [ -f cdk.out/validation-report.json ]; then \
	    echo "synth failed: cdk-nag findings above; details in cdk.out/validation-report.json and reports/nag/*.xml" >&2; \
	  elif [ $$app -eq 2 ]; then \
	    :; \
	  else \
	    echo "synth failed before any template was written (see the message above)" >&2; \
	  fi; \
	  exit $$status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two pytest-xdist workers (this machine and the pipeline's build have at least 2 cores); tests/conftest.py keeps
# each configuration's tests on one worker, so each configuration is still synthesized once.
test: lint
	@mkdir -p reports
	$(BIN)/python -m pytest -n 2 --dist loadgroup --junitxml=reports/pytest.xml

pytest: install
	$(BIN)/python -m pytest $(ARGS)

bench: install
	$(BIN)/python -m benchmarks.bench_transform

# Modules and the tests that own them: [tool.mutation] in pyproject.toml. Results: reports/mutation/.
mutation: install
	nice -n 19 $(BIN)/python -m tests.mutation $(MODULES)

clean:
	rm -rf cdk.out reports .pytest_cache .ruff_cache
