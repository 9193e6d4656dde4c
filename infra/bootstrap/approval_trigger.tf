# Optional (enable_approval_trigger): when a model version is approved in the registry, send GitHub a
# repository_dispatch (event_type model-approved, client_payload.model_version) that starts promote.yml.
# The bootstrap stack owns the whole dispatch path (rule, target, API destination, connection), so no
# deploy role can point it elsewhere: EventBridge sends the GitHub token to the API destination's URL.
# The token never passes through Terraform: the connection is created with a placeholder, and an
# administrator writes the token into the connection's Secrets Manager secret (owned by EventBridge,
# events!connection/...) with `aws events update-connection` (docs/deploy-aws.md).

resource "aws_cloudwatch_event_rule" "model_approved" {
  count       = var.enable_approval_trigger ? 1 : 0
  name        = "${local.registry_prefix}-model-approved"
  description = "A version in ${local.registry_prefix}-models was approved"
  event_pattern = jsonencode({
    source        = ["aws.sagemaker"]
    "detail-type" = ["SageMaker Model Package State Change"]
    detail = {
      ModelPackageGroupName = ["${local.registry_prefix}-models"]
      ModelApprovalStatus   = ["Approved"]
    }
  })
}

resource "aws_cloudwatch_event_connection" "github" {
  count              = var.enable_approval_trigger ? 1 : 0
  name               = "${local.registry_prefix}-github"
  description        = "GitHub REST API with a fine-grained token"
  authorization_type = "API_KEY"

  auth_parameters {
    api_key {
      key   = "Authorization"
      value = "Bearer set-out-of-band"
    }
  }

  lifecycle {
    # The real value is set out of band; the API never returns it, so Terraform never sees it.
    ignore_changes = [auth_parameters]
  }
}

resource "aws_cloudwatch_event_api_destination" "github_dispatch" {
  count                            = var.enable_approval_trigger ? 1 : 0
  name                             = "${local.registry_prefix}-github-dispatch"
  description                      = "repository_dispatch of ${var.github_repository}"
  invocation_endpoint              = "https://api.github.com/repos/${var.github_repository}/dispatches"
  http_method                      = "POST"
  invocation_rate_limit_per_second = 1
  connection_arn                   = aws_cloudwatch_event_connection.github[0].arn
}

resource "aws_cloudwatch_event_target" "github_dispatch" {
  count     = var.enable_approval_trigger ? 1 : 0
  rule      = aws_cloudwatch_event_rule.model_approved[0].name
  target_id = "github-repository-dispatch"
  arn       = aws_cloudwatch_event_api_destination.github_dispatch[0].arn
  role_arn  = aws_iam_role.exec["${var.registry_environment}-approval-dispatch"].arn

  http_target {
    header_parameters = {
      Accept                 = "application/vnd.github+json"
      "X-GitHub-Api-Version" = "2022-11-28"
    }
  }

  input_transformer {
    input_paths = {
      version = "$.detail.ModelPackageVersion"
      arn     = "$.detail.ModelPackageArn"
    }
    input_template = <<-JSON
      {"event_type": "model-approved", "client_payload": {"model_version": "<version>", "model_package_arn": "<arn>"}}
    JSON
  }

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }
}
