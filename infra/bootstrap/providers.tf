locals {
  # A non-empty endpoint URL means an AWS emulator (moto) answers every API call (tests only).
  emulated = var.aws_endpoint_url != ""
}

provider "aws" {
  region = var.aws_region

  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated
  max_retries                 = local.emulated ? 3 : 25

  dynamic "endpoints" {
    for_each = local.emulated ? [var.aws_endpoint_url] : []
    content {
      apigateway = endpoints.value
      cloudfront = endpoints.value
      events     = endpoints.value
      iam        = endpoints.value
      kms        = endpoints.value
      sts        = endpoints.value
    }
  }

  default_tags {
    tags = {
      project    = var.project
      managed-by = "terraform"
      stack      = "bootstrap"
      repository = var.github_repository
    }
  }
}
