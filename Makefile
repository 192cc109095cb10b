# Developer and CI entry points. Needs python3 (3.11+), pip and make; no Docker, no python3.13.
PYTHON ?= python3
VENV := .venv
# The SAM CLI pins its own boto3 & co., so it lives in a venv of its own.
SAM_VENV := .tools/sam
SAM_CLI_VERSION := 1.170.0
SAM := $(SAM_VENV)/bin/sam
CLAUDE_TOKENIZER := .tools/claude/tokenizer.json
PYTEST_ARGS ?=
# Two pytest runs: unit and infra tests, then the integration tests. The integration stack (session-scoped: moto's
# server, the gateway's threads, the pipeline) changes process-wide state, so no process runs a test after it.
UNIT_TESTS ?= tests/unit tests/infra
INTEGRATION_TESTS ?= tests/integration
# Each run on pytest-xdist workers (one per core; TEST_WORKERS=0: in one process). A test file runs whole on one
# worker (module fixtures, each worker's own integration stack), files in collection order: the longest first
# (tests/conftest.py).
TEST_WORKERS ?= auto
PYTEST := $(VENV)/bin/pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
# Not project code; ruff only honours .gitignore inside a git checkout, so exclude them explicitly.
RUFF_EXCLUDE := --extend-exclude .tools,.aws-sam

.PHONY: venv tools browser dev test lint build bench clean

venv: $(VENV)/.installed $(CLAUDE_TOKENIZER)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -e ".[dev]"
	touch $@

# Claude's published tokenizer, the token-bound tests' reference: tokenizer.json of the anthropic 0.38.0 wheel
# (MIT). The dev venv's SDK is anthropic 2.x, so the wheel is downloaded (never installed) and the file extracted.
$(CLAUDE_TOKENIZER): | $(VENV)/.installed
	$(VENV)/bin/pip download --disable-pip-version-check --no-deps anthropic==0.38.0 -d .tools/claude/wheel
	$(VENV)/bin/python -c "import zipfile, sys; sys.stdout.buffer.write(zipfile.ZipFile('.tools/claude/wheel/anthropic-0.38.0-py3-none-any.whl').read('anthropic/tokenizer.json'))" > $@.tmp
	mv $@.tmp $@

tools: $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)

$(SAM_VENV)/.installed-$(SAM_CLI_VERSION):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --disable-pip-version-check "aws-sam-cli==$(SAM_CLI_VERSION)"
	touch $@

dev: venv
	$(VENV)/bin/costbrake local

# The HTML-report tests render in headless Chromium: installed from Debian's packages when run as root.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing chromium (apt-get) for the HTML-report tests"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "make test needs Chromium for the HTML-report tests: sudo apt-get install chromium" >&2; exit 1; \
		fi; }

test: export COSTBRAKE_SAM := $(CURDIR)/$(SAM)
test: venv tools browser
	$(if $(strip $(UNIT_TESTS)),$(PYTEST) $(PYTEST_ARGS) $(UNIT_TESTS))
	$(if $(strip $(INTEGRATION_TESTS)),$(PYTEST) $(PYTEST_ARGS) $(INTEGRATION_TESTS))

lint: venv
	$(VENV)/bin/ruff check $(RUFF_EXCLUDE) .
	$(VENV)/bin/ruff format --check $(RUFF_EXCLUDE) .
	$(VENV)/bin/mypy

build: tools
	$(SAM) build

bench: SHELL := /bin/bash
bench: .SHELLFLAGS := -o pipefail -c
bench: venv
	$(VENV)/bin/python -m bench | grep -v '^{"_aws"'  # the gateway's EMF lines, printed as in Lambda

clean:
	rm -rf .aws-sam .mypy_cache .ruff_cache .pytest_cache

# Regenerate shared/costbrake/data/prices.json from LiteLLM's price map: MAP=path/to/model_prices_and_context_window.json,
# or (default) the copy in the litellm wheel LITELLM_VERSION, downloaded with pip (never installed).
.PHONY: prices
LITELLM_VERSION ?= 1.108.7
prices: venv
	$(VENV)/bin/python -m costbrake.pricing_generate $(if $(MAP),--map "$(MAP)",--litellm-version $(LITELLM_VERSION))
