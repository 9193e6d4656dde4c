locals {
  # A non-empty endpoint URL means an AWS emulator (moto) answers every API call.
  emulated = var.aws_endpoint_url != ""

}

provider "aws" {
  region = var.aws_region

  # Against an emulator: no credential or account look-ups, path-style S3, and few retries (emulators
  # answer unimplemented calls with HTTP 500, which the provider would retry for minutes), but some: an
  # emulator on a busy machine may drop a connection, as AWS now and then does.
  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated
  s3_use_path_style           = local.emulated
  max_retries                 = local.emulated ? 3 : 25

  dynamic "endpoints" {
    for_each = local.emulated ? [var.aws_endpoint_url] : []
    content {
      apigateway = endpoints.value
      cloudfront = endpoints.value
      cloudwatch = endpoints.value
      dynamodb   = endpoints.value
      ecr        = endpoints.value
      events     = endpoints.value
      iam        = endpoints.value
      kms        = endpoints.value
      lambda     = endpoints.value
      logs       = endpoints.value
      s3         = endpoints.value
      sagemaker  = endpoints.value
      sns        = endpoints.value
      sts        = endpoints.value
      wafv2      = endpoints.value
    }
  }

  default_tags {
    tags = {
      project     = var.project
      environment = var.environment
      managed-by  = "terraform"
      repository  = var.github_repository
    }
  }
}
