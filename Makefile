# The template's commands. A fresh machine needs only python3 and make: `make demo`, `make test`.
# `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
UV_VERSION := 0.13.8
DEMO_DIR := build/demo
# A throwaway bake whose pinned dependencies seed the shared test venv.
SEED_DIR := build/seed

.PHONY: help demo test lint docs bench clean

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-6s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

# One venv for the template's tools and every test bake: the generated project's pins come from
# a default bake, so they are written once, in the template.
$(VENV)/.installed: $(BIN)/uv pyproject.toml {{cookiecutter.project_slug}}/pyproject.toml tests/mermaid/package-lock.json
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet -r pyproject.toml --extra dev
	rm -rf $(SEED_DIR)
	$(BIN)/cookiecutter --no-input --output-dir $(SEED_DIR) . project_name="Seed Project"
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet "$(SEED_DIR)/seed-project[dev]"
	# mermaid's own parser checks the report's charts; without npm those tests skip and say so.
	if command -v npm >/dev/null; then npm ci --prefix tests/mermaid --no-audit --no-fund --silent; fi
	touch $@

demo: $(VENV)/.installed ## Bake with defaults into build/demo and run its pipeline end to end, offline
	rm -rf $(DEMO_DIR)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO_DIR) .
	$(MAKE) -C $(DEMO_DIR)/mlops-demo setup DVC_REMOTE_DIR=$(abspath $(DEMO_DIR))/dvc-storage
	@echo
	$(MAKE) --no-print-directory -C $(DEMO_DIR)/mlops-demo metrics
	@echo
	@echo "ONNX model: $(abspath $(DEMO_DIR))/mlops-demo/models/model.onnx"

test: $(VENV)/.installed ## Run the template's whole test suite
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(VENV)/.installed ## Lint the template's own Python (the template directory is linted as rendered output)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean: ## Remove the venv and build output
	rm -rf $(VENV) build

docs: $(VENV)/.installed ## Regenerate docs/options.md and the example reports in docs/examples/
	$(BIN)/python docs/options.py
	$(BIN)/python docs/examples.py

bench: $(VENV)/.installed ## Run the benchmarks (bench/) and write docs/benchmarks.md
	$(BIN)/python bench/report.py > build/benchmarks.md
	mv build/benchmarks.md docs/benchmarks.md
