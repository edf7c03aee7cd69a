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

.PHONY: help install synth test lint bench nag-report clean

help:
	@echo "make synth   install, then synthesize the pipeline and both stages into cdk.out/ (cdk-nag gated)"
	@echo "make test    install, then lint and run the test suite"
	@echo "make bench   transform Lambda throughput benchmark"
	@echo "make clean   remove cdk.out, reports and caches (keeps installs)"

$(PY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	node --version | grep -q '^v24\.'
	touch $@

install: $(PY_STAMP) $(NODE_STAMP)

# cdk synth exits 1 on any unacknowledged cdk-nag finding; the per-stage JUnit reports are written either way.
synth: install
	rm -rf cdk.out
	status=0; cdk synth --quiet || status=$$?; \
	  nag=0; $(BIN)/python -m pipeline.nag_report junit --assembly cdk.out --out reports/nag || nag=$$?; \
	  echo "Templates:      cdk.out/*.template.json, cdk.out/assembly-*/ (one folder per stage)"; \
	  echo "cdk-nag report: cdk.out/validation-report.json, reports/nag/*.xml (JUnit, one file per stage)"; \
	  [ $$status -ne 0 ] || status=$$nag; exit $$status

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	mkdir -p reports
	$(BIN)/python -m pytest --junitxml=reports/pytest.xml

bench: install
	$(BIN)/python -m benchmarks.bench_transform

clean:
	rm -rf cdk.out reports .pytest_cache .ruff_cache
