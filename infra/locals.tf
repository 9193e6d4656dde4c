data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  prefix     = "${var.project}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = var.aws_region

  # The model registry and the serving image repository live in one environment.
  registry_environment = var.registry_environment != "" ? var.registry_environment : var.environment
  owns_registry        = local.registry_environment == var.environment
  registry_prefix      = "${var.project}-${local.registry_environment}"

  model_package_group_name = "${local.registry_prefix}-models"
  ecr_repository_name      = "${local.registry_prefix}-serving"
  registry_bucket_name     = "${local.registry_prefix}-artifacts-${local.account_id}"

  # The SageMaker endpoint is created and updated by promotion; its name is fixed here.
  endpoint_name = "${local.prefix}-classifier"
  function_name = "${local.prefix}-classify-api"
  alias_name    = "live"
  stage_name    = var.environment
  github_oidc   = "token.actions.githubusercontent.com"
}
