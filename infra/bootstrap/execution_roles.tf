# Execution roles of each environment, assumed by AWS services only, each under the boundary:
# pipeline (registry environment only), inference (the endpoint's container), function (the API),
# approval-dispatch (EventBridge -> GitHub, registry environment only).
locals {
  exec_roles = merge(
    { for env in local.environments : "${env}-inference" => { env = env, service = "sagemaker.amazonaws.com", policy = data.aws_iam_policy_document.inference[env].json } },
    { for env in local.environments : "${env}-function" => { env = env, service = "lambda.amazonaws.com", policy = data.aws_iam_policy_document.function[env].json } },
    {
      "${var.registry_environment}-pipeline"          = { env = var.registry_environment, service = "sagemaker.amazonaws.com", policy = data.aws_iam_policy_document.pipeline.json }
      "${var.registry_environment}-approval-dispatch" = { env = var.registry_environment, service = "events.amazonaws.com", policy = data.aws_iam_policy_document.approval_dispatch.json }
    },
  )
  regional = "${local.region}:${local.account_id}"
}

data "aws_iam_policy_document" "service_trust" {
  for_each = toset(distinct([for role in local.exec_roles : role.service]))

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.key]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "exec" {
  for_each             = local.exec_roles
  name                 = "${var.project}-${each.key}"
  description          = "${each.key} execution role of ${var.project}"
  assume_role_policy   = data.aws_iam_policy_document.service_trust[each.value.service].json
  permissions_boundary = local.boundary_arn
  depends_on           = [aws_iam_policy.boundary]
}

resource "aws_iam_role_policy" "exec" {
  for_each = local.exec_roles
  name     = each.key
  role     = aws_iam_role.exec[each.key].name
  policy   = each.value.policy
}

# --- Pipeline: read its inputs and code, write models and evaluations, register versions as
# PendingManualApproval (the pipeline definition decides the status; approval is the production role's).
data "aws_iam_policy_document" "pipeline" {
  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = ["${local.arn}:s3:::${local.registry_prefix}-artifacts-${local.account_id}"]
  }

  statement {
    sid       = "ReadInputsAndCode"
    actions   = ["s3:GetObject"]
    resources = [for p in ["data", "code", "models", "evaluation", "scratch"] : "${local.arn}:s3:::${local.registry_prefix}-artifacts-${local.account_id}/${p}/*"]
  }

  statement {
    sid       = "WriteOutputs"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [for p in ["models", "evaluation", "scratch"] : "${local.arn}:s3:::${local.registry_prefix}-artifacts-${local.account_id}/${p}/*"]
  }

  statement {
    sid       = "UseOwnKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${local.registry_prefix}"]
    }
  }

  statement {
    sid       = "EcrToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullImages"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = ["${local.arn}:ecr:${local.regional}:repository/${local.registry_prefix}-serving", "${local.arn}:ecr:${local.region}:${var.framework_image_account_id}:repository/*"]
  }

  statement {
    sid       = "JobLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${local.arn}:logs:${local.regional}:log-group:/aws/sagemaker/TrainingJobs:*", "${local.arn}:logs:${local.regional}:log-group:/aws/sagemaker/ProcessingJobs:*"]
  }

  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*", "${var.project}/*"]
    }
  }

  statement {
    sid       = "PipelineJobs"
    actions   = ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob", "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob", "sagemaker:AddTags"]
    resources = [for kind in ["training-job", "processing-job"] : "${local.arn}:sagemaker:${local.regional}:${kind}/pipelines-*"]
  }

  statement {
    sid       = "RegisterVersions"
    actions   = ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages", "sagemaker:AddTags"]
    resources = ["${local.arn}:sagemaker:${local.regional}:model-package-group/${local.registry_prefix}-models", "${local.arn}:sagemaker:${local.regional}:model-package/${local.registry_prefix}-models/*"]
  }

  # A version registers as PendingManualApproval and nothing else: code that runs as this role (any
  # pipeline step, whoever changed the definition) cannot register a version already approved.
  statement {
    sid       = "RegisterPendingVersions"
    actions   = ["sagemaker:CreateModelPackage"]
    resources = ["${local.arn}:sagemaker:${local.regional}:model-package-group/${local.registry_prefix}-models", "${local.arn}:sagemaker:${local.regional}:model-package/${local.registry_prefix}-models/*"]
    condition {
      test     = "StringEquals"
      variable = "sagemaker:ModelApprovalStatus"
      values   = ["PendingManualApproval"]
    }
  }

  # The Evaluate job signs the hashes the Register step records (infra/bootstrap/signing.tf): this role alone.
  statement {
    sid       = "SignRegistrations"
    actions   = ["kms:Sign"]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [local.signing_alias]
    }
  }

  statement {
    sid       = "PassOwnRoleToJobs"
    actions   = ["iam:PassRole"]
    resources = ["${local.arn}:iam::${local.account_id}:role/${local.registry_prefix}-pipeline"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
}

# --- Inference: the endpoint's container parses untrusted images, so it can only read the models its
# environment's releases copied and checked (released/ of the environment's own bucket, under its own
# key: nothing the pipeline or another environment's roles can write), pull the serving image and
# write its own logs.
data "aws_iam_policy_document" "inference" {
  for_each = toset(local.environments)

  statement {
    sid       = "ReadReleasedModels"
    actions   = ["s3:GetObject"]
    resources = ["${local.arn}:s3:::${var.project}-${each.key}-artifacts-${local.account_id}/released/*"]
  }

  statement {
    sid       = "DecryptReleasedModelsThroughS3"
    actions   = ["kms:Decrypt"]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${var.project}-${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "EcrToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullServingImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = ["${local.arn}:ecr:${local.regional}:repository/${local.registry_prefix}-serving"]
  }

  statement {
    sid       = "EndpointLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${local.arn}:logs:${local.regional}:log-group:/aws/sagemaker/Endpoints/${var.project}-${each.key}-classifier:*"]
  }

  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }
}

# --- The API function: invoke its environment's endpoint, write its logs and the prediction log.
data "aws_iam_policy_document" "function" {
  for_each = toset(local.environments)

  statement {
    sid       = "InvokeEndpoint"
    actions   = ["sagemaker:InvokeEndpoint"]
    resources = ["${local.arn}:sagemaker:${local.regional}:endpoint/${var.project}-${each.key}-classifier", "${local.arn}:sagemaker:${local.regional}:endpoint/${var.project}-${each.key}-classifier-candidate"]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.arn}:logs:${local.regional}:log-group:/aws/lambda/${var.project}-${each.key}-classify-api:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "UseOwnKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["${local.arn}:kms:${local.regional}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${var.project}-${each.key}"]
    }
  }

  statement {
    sid       = "WritePredictionLog"
    actions   = ["dynamodb:PutItem"]
    resources = ["${local.arn}:dynamodb:${local.regional}:table/${var.project}-${each.key}-predictions"]
  }
}

# --- EventBridge: send the approval event to GitHub through the API destination.
data "aws_iam_policy_document" "approval_dispatch" {
  statement {
    actions   = ["events:InvokeApiDestination"]
    resources = ["${local.arn}:events:${local.regional}:api-destination/${local.registry_prefix}-github-dispatch/*"]
  }
}

# --- API Gateway's account-wide CloudWatch Logs role (stage access and execution logs).
data "aws_iam_policy_document" "apigateway_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "apigateway_logs" {
  statement {
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"]
    resources = ["${local.arn}:logs:${local.regional}:log-group:API-Gateway-Execution-Logs_*", "${local.arn}:logs:${local.regional}:log-group:/aws/apigateway/${var.project}-*"]
  }

  statement {
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"]
  }
}

resource "aws_iam_role" "apigateway_logs" {
  name                 = "${var.project}-apigateway-logs"
  description          = "API Gateway writes the stages' logs"
  assume_role_policy   = data.aws_iam_policy_document.apigateway_trust.json
  permissions_boundary = local.boundary_arn
  depends_on           = [aws_iam_policy.boundary]
}

resource "aws_iam_role_policy" "apigateway_logs" {
  name   = "apigateway-logs"
  role   = aws_iam_role.apigateway_logs.name
  policy = data.aws_iam_policy_document.apigateway_logs.json
}

resource "aws_api_gateway_account" "this" {
  cloudwatch_role_arn = aws_iam_role.apigateway_logs.arn
  depends_on          = [aws_iam_role_policy.apigateway_logs]
}
