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
SHARED ?= $(abspath ../shared)

# Offline inputs: the shared folder beside the checkout when it exists, else downloaded at run time.
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
