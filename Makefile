# The template's commands. A fresh machine needs only python3 and make: `make demo`, `make test`.
# `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
# One uv pin for the template and every generated project: the generated Makefile's.
UV_VERSION := $(shell sed -n 's/^UV_VERSION := //p' '{{cookiecutter.project_slug}}/Makefile')
DEMO_DIR := build/demo
# A throwaway bake whose pinned dependencies seed the shared test venv.
SEED_DIR := build/seed

.PHONY: help demo test release-check package lint lint-python lint-workflows docs site links bench bench-serving bump-pins bake-check instance clean

help: ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

# One venv for the template's tools and every test bake: the generated project's pins come from
# a default bake, so they are written once, in the template.
# Compiled at install (--compile-bytecode, as the generated Makefile's install): with
# PYTHONDONTWRITEBYTECODE set, as on this machine and CI, every test process otherwise compiled
# scikit-learn and pandas again on import (6.7 s instead of 1.7 s).
$(VENV)/.installed: $(BIN)/uv pyproject.toml mlops-actions/pyproject.toml {{cookiecutter.project_slug}}/pyproject.toml tests/mermaid/package-lock.json
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet --compile-bytecode -r pyproject.toml --extra dev
	rm -rf $(SEED_DIR)
	$(BIN)/cookiecutter --no-input --output-dir $(SEED_DIR) $(CURDIR) project_name="Seed Project"
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet --compile-bytecode "$(SEED_DIR)/seed-project[dev]"
	# mermaid's own parser checks the report's charts; without npm those tests skip and say so.
	if command -v npm >/dev/null; then npm ci --prefix tests/mermaid --no-audit --no-fund --silent; fi
	touch $@

# The package as every test bake depends on it (file://<this checkout>/mlops-actions, not
# editable: a bake's install then finds it satisfied and leaves it alone), installed again
# whenever its files change.
$(VENV)/.mlops-actions: $(VENV)/.installed $(shell find mlops-actions/src -type f -name '*.py') mlops-actions/pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/uv pip install --quiet --compile-bytecode \
	  --reinstall-package mlops-actions "mlops-actions[pipeline] @ file://$(CURDIR)/mlops-actions"
	touch $@

demo: $(VENV)/.installed ## Bake with defaults into build/demo and run its pipeline end to end, offline
	rm -rf $(DEMO_DIR)
	$(BIN)/cookiecutter --no-input --output-dir $(DEMO_DIR) $(CURDIR)
	$(MAKE) -C $(DEMO_DIR)/mlops-demo setup DVC_REMOTE_DIR=$(abspath $(DEMO_DIR))/dvc-storage
	@echo
	$(MAKE) --no-print-directory -C $(DEMO_DIR)/mlops-demo metrics
	@echo
	@echo "ONNX model: $(abspath $(DEMO_DIR))/mlops-demo/models/model.onnx"

test: $(VENV)/.mlops-actions ## Run the template's whole test suite
	$(BIN)/pytest -n 2 --dist loadgroup

# The template's own release (publish.yml on a v* tag): stdlib only, so it runs before any install.
release-check: ## Refuse TAG=vX.Y.Z unless every file that names the template's version names it; its CHANGELOG section to build/release-notes.md
	$(PYTHON) tools/release_check.py "$${TAG:?usage: make release-check TAG=vX.Y.Z}" --notes build/release-notes.md

PACKAGE_DIR := build/package
package: $(BIN)/uv ## Build the mlops-actions wheel and sdist into build/package (VERSION=X.Y.Z: refuse another version)
	built="$$(sed -n 's/^version = "\([^"]*\)".*/\1/p' mlops-actions/pyproject.toml)"; \
	if [ -n "$(VERSION)" ] && [ "$(VERSION)" != "$$built" ]; then \
	  echo "make package: mlops-actions is $$built, not $(VERSION) (bump pyproject.toml, cookiecutter.json and CHANGELOG.md together)" >&2; exit 1; fi
	rm -rf $(PACKAGE_DIR)
	$(BIN)/uv build --quiet --out-dir $(PACKAGE_DIR) mlops-actions

# CI's instance job: the default project's own checks, as a user would run them after make demo.
instance: demo ## make demo, then the default project's own make test, and a dvc repro that has nothing to do
	$(MAKE) -C $(DEMO_DIR)/mlops-demo test
	cd $(DEMO_DIR)/mlops-demo && .venv/bin/dvc repro && .venv/bin/dvc status --quiet

BAKE_CHECK_DIR := build/bake-check
bake-check: ## Bake every option value with only cookiecutter installed, under PYTHON (CI: 3.10)
	rm -rf $(BAKE_CHECK_DIR)
	$(PYTHON) -m venv $(BAKE_CHECK_DIR)/venv
	$(BAKE_CHECK_DIR)/venv/bin/python -m pip install --quiet "$$(grep -o 'cookiecutter==[0-9.]*' pyproject.toml)"
	$(BAKE_CHECK_DIR)/venv/bin/python tests/bake_check.py $(BAKE_CHECK_DIR)

lint: lint-python lint-workflows ## Lint the template's own Python and workflows (the template directory is linted as rendered output)

lint-python: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-workflows: $(VENV)/.installed
	PATH="$(BIN):$$PATH" $(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/zizmor --offline --persona=pedantic --quiet .github/workflows
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

clean: ## Remove the venv and build output
	rm -rf $(VENV) build

docs: $(VENV)/.installed ## Regenerate the generated docs and copier.yml: options, snippets from bakes, example reports, real-data corpus (slow)
	$(BIN)/python docs/options.py
	$(BIN)/python tools/copier_yml.py
	$(BIN)/python docs/snippets.py
	$(BIN)/python docs/examples.py
	$(BIN)/python docs/corpus.py

site: $(VENV)/.installed ## Build the docs site into build/site (mkdocs --strict: a broken link fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

links: site ## Fetch every external link of the site and the READMEs (network; CI's docs job)
	$(BIN)/python tools/check_links.py build/site README.md CONTRIBUTING.md CHANGELOG.md

bump-pins: ## Move action SHAs and tool versions to their newest releases (network; see tools/bump_pins.py)
	$(PYTHON) tools/bump_pins.py $(if $(SUMMARY),--summary "$(SUMMARY)")

# The package as this checkout has it: the benchmarks run the bakes' stages, which import it.
bench: $(VENV)/.mlops-actions ## Run the benchmarks (bench/) and write docs/benchmarks.md
	$(BIN)/python bench/report.py > build/benchmarks.md
	mv build/benchmarks.md docs/benchmarks.md

bench-serving: $(VENV)/.mlops-actions ## Only the serving benchmarks (needs wrk), into docs/benchmarks.md
	$(BIN)/python bench/report.py --only serving.py decoding.py > build/benchmarks.md
	mv build/benchmarks.md docs/benchmarks.md
