data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id   = data.aws_caller_identity.current.account_id
  partition    = data.aws_partition.current.partition
  region       = var.aws_region
  arn          = "arn:${local.partition}"
  environments = ["staging", "production"]
  github_oidc  = "token.actions.githubusercontent.com"
  # Built from names, not read from resources, so that every policy is known at plan time.
  oidc_provider_arn = "${local.arn}:iam::${local.account_id}:oidc-provider/${local.github_oidc}"
  boundary_arn      = "${local.arn}:iam::${local.account_id}:policy/${var.project}-boundary"
  registry_prefix   = "${var.project}-${var.registry_environment}"
}
