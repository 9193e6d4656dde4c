# Cat/dog MLOps: every task a user or a workflow runs is a target here. `make` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MLOPS := $(BIN)/mlops
# The machine-wide pip configuration may cap torch below the pinned release: ignore it.
PIP := PIP_CONFIG_FILE=/dev/null $(BIN)/python -m pip
# Offline inputs: the shared folder beside the checkout, or beside the repository it was cloned from
# (a local clone elsewhere), when it exists; else they are downloaded at run time.
ORIGIN := $(shell git config --get remote.origin.url 2>/dev/null)
SHARED ?= $(firstword $(wildcard $(abspath ../shared) $(if $(filter /%,$(ORIGIN)),$(abspath $(ORIGIN)/../shared))) $(abspath ../shared))

DATA_DIR ?= $(if $(wildcard $(SHARED)/datasets/cats-vs-dogs/train),$(SHARED)/datasets/cats-vs-dogs,)
PRETRAINED_WEIGHTS ?= $(if $(wildcard $(SHARED)/weights/mobilenet_v2_imagenet_features.pth),$(SHARED)/weights/mobilenet_v2_imagenet_features.pth,)
ACCURACY_THRESHOLD ?= 0.90
MLOPS_HOME ?= $(abspath .mlops)
BACKEND ?= local
API_PORT ?= 8000
MODEL_PORT ?= 8080
export DATA_DIR PRETRAINED_WEIGHTS ACCURACY_THRESHOLD MLOPS_HOME

STAMP := $(VENV)/.installed

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==25.3
	$(PIP) install --quiet -c constraints.txt -e '.[all]'
	@touch $@

.PHONY: venv
venv: $(STAMP) ## Create or reuse the virtualenv and install the pinned dependencies

.PHONY: pipeline
pipeline: venv ## Run the training pipeline locally: train -> evaluate -> gate -> register
	$(MLOPS) pipeline run

.PHONY: definition
definition: venv ## Write the SageMaker Pipeline definition JSON (offline) to build/pipeline.json
	@mkdir -p build
	$(MLOPS) pipeline definition --output build/pipeline.json

.PHONY: registry
registry: venv ## List the registered model versions
	$(MLOPS) registry list

.PHONY: up
up: venv ## Start the local stack (API front, function version, model server)
	API_PORT=$(API_PORT) MODEL_PORT=$(MODEL_PORT) $(MLOPS) up

.PHONY: down
down: venv ## Stop the local stack
	$(MLOPS) down

.PHONY: status
status: venv ## Show what is live (JSON)
	API_PORT=$(API_PORT) $(MLOPS) status --json --backend $(BACKEND)

.PHONY: approve
approve: venv ## Approve a model version: make approve VERSION=1
	@test -n "$(VERSION)" || { echo "usage: make approve VERSION=N" >&2; exit 2; }
	$(MLOPS) approve $(VERSION) --backend $(BACKEND)

.PHONY: promote
promote: venv ## Promote the newest approved version (or VERSION=N), smoke-test, roll back on failure
	API_PORT=$(API_PORT) MODEL_PORT=$(MODEL_PORT) $(MLOPS) promote $(VERSION) --backend $(BACKEND)

.PHONY: smoke
smoke: venv ## Smoke-test the live API
	API_PORT=$(API_PORT) $(MLOPS) smoke --backend $(BACKEND)

.PHONY: rollback
rollback: venv ## Roll back to the previous release
	API_PORT=$(API_PORT) MODEL_PORT=$(MODEL_PORT) $(MLOPS) rollback --backend $(BACKEND)

.PHONY: demo
demo: venv ## The whole lifecycle locally: train, gate, approve, promote, smoke, a rolled-back bad release
	API_PORT=$(API_PORT) MODEL_PORT=$(MODEL_PORT) $(MLOPS) demo

.PHONY: mlflow-ui
mlflow-ui: venv ## Open the MLflow UI on the local tracking store (http://127.0.0.1:5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(MLOPS_HOME)/mlflow.db --port 5000

.PHONY: web-build
web-build: venv ## Build the web page with the API URL injected: make web-build API_URL=https://...
	@test -n "$(API_URL)" || { echo "usage: make web-build API_URL=https://..." >&2; exit 2; }
	$(MLOPS) web build --api-url "$(API_URL)" --out build/web/index.html

.PHONY: web-publish
web-publish: venv ## Publish the web page to the stage's S3 bucket (AWS): make web-publish ENV=staging
	$(MLOPS) web publish --backend aws --stage $(ENV)

.PHONY: browser
browser: ## Install Debian's chromium for the browser test (when missing)
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; \
	fi
	@chromium --version

.PHONY: lint
lint: venv actionlint ## ruff (lint + format check) and actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint serving/Dockerfile

.PHONY: pytest
pytest: venv browser lambda-zip ## Run the Python test suite
	$(BIN)/pytest -q --ignore=tests/test_infra_moto.py

.PHONY: test
test: lint infra-check infra-test pytest ## Everything CI runs: lint, Terraform checks, moto apply, tests

.PHONY: bench-train
bench-train: venv ## Benchmark: wall time and peak memory of the full local pipeline run
	$(BIN)/python -m bench.bench_train

.PHONY: bench-serve
bench-serve: venv ## Benchmark: compute vs eager PyTorch, API latency, throughput, cold start
	$(BIN)/python -m bench.bench_serve $(if $(ARTIFACT),--artifact $(ARTIFACT)) $(if $(API_URL),--api-url $(API_URL)) \
	  --out build/bench-serve.json --plot build/bench-serve.png

.PHONY: bench
bench: bench-train bench-serve ## All benchmarks

.PHONY: clean
clean: ## Remove build outputs (keeps the venv and .mlops state)
	rm -rf build .pytest_cache .ruff_cache

include mk/infra.mk
