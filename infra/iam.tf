# Roles: SageMaker execution, the API function, and (account-wide) the GitHub OIDC deploy role.

# --- SageMaker execution role: pipeline steps, model registration and the endpoint's containers.
data "aws_iam_policy_document" "sagemaker_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "sagemaker" {
  name               = "${local.prefix}-sagemaker"
  description        = "SageMaker pipeline steps and endpoints of ${local.prefix}"
  assume_role_policy = data.aws_iam_policy_document.sagemaker_trust.json
}

data "aws_iam_policy_document" "sagemaker" {
  statement {
    sid       = "ListArtifactBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = distinct([aws_s3_bucket.artifacts.arn, "arn:${local.partition}:s3:::${local.registry_bucket_name}"])
  }

  statement {
    sid       = "ReadWriteOwnArtifacts"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.artifacts.arn}/*"]
  }

  statement {
    sid       = "UseOwnKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.main.arn]
  }

  dynamic "statement" {
    for_each = local.owns_registry ? [] : [1]
    content {
      sid       = "ReadRegistryArtifacts"
      actions   = ["s3:GetObject"]
      resources = ["arn:${local.partition}:s3:::${local.registry_bucket_name}/*"]
    }
  }

  dynamic "statement" {
    for_each = local.owns_registry ? [] : [1]
    content {
      sid       = "DecryptRegistryArtifactsThroughS3"
      actions   = ["kms:Decrypt"]
      resources = ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
      condition {
        test     = "ArnLike"
        variable = "kms:EncryptionContext:aws:s3:arn"
        values   = ["arn:${local.partition}:s3:::${local.registry_bucket_name}/*", "arn:${local.partition}:s3:::${local.registry_bucket_name}"]
      }
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
    resources = [local.ecr_repository_arn]
  }

  statement {
    sid       = "PullFrameworkImages"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = ["arn:${local.partition}:ecr:${local.region}:${var.framework_image_account_id}:repository/*"]
  }

  statement {
    sid = "Logs"
    actions = [
      "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
    ]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/sagemaker/*"]
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
    sid = "PipelineJobs"
    actions = [
      "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
      "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
      "sagemaker:AddTags",
    ]
    resources = [
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:training-job/pipelines-*",
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:processing-job/pipelines-*",
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:training-job/${local.prefix}-*",
      "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:processing-job/${local.prefix}-*",
    ]
  }

  statement {
    sid = "RegisterModelVersions"
    actions = [
      "sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup",
      "sagemaker:ListModelPackages", "sagemaker:AddTags",
    ]
    resources = [local.model_package_group_arn, local.model_package_arns]
  }

  statement {
    sid       = "PassOwnRoleToPipelineJobs"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.sagemaker.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker" {
  name   = "sagemaker-execution"
  role   = aws_iam_role.sagemaker.id
  policy = data.aws_iam_policy_document.sagemaker.json
}

# --- The API function: invoke only this environment's endpoint, write the prediction log, logs, X-Ray.
data "aws_iam_policy_document" "lambda_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  name               = "${local.prefix}-classify-api"
  description        = "The classify API function of ${local.prefix}"
  assume_role_policy = data.aws_iam_policy_document.lambda_trust.json
}

data "aws_iam_policy_document" "lambda" {
  statement {
    sid       = "InvokeProjectEndpoint"
    actions   = ["sagemaker:InvokeEndpoint"]
    resources = ["arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:endpoint/${local.endpoint_name}"]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda.arn}:*"]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "DecryptEnvironmentAndTable"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }

  dynamic "statement" {
    for_each = var.enable_prediction_log ? [1] : []
    content {
      sid       = "WritePredictionLog"
      actions   = ["dynamodb:PutItem"]
      resources = [aws_dynamodb_table.predictions[0].arn]
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  name   = "classify-api"
  role   = aws_iam_role.lambda.id
  policy = data.aws_iam_policy_document.lambda.json
}

# --- GitHub Actions: OIDC provider and the deploy role (account-wide, created once).
resource "aws_iam_openid_connect_provider" "github" {
  count           = var.create_account_resources ? 1 : 0
  url             = "https://${local.github_oidc}"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}

locals {
  github_subjects = concat(
    [for env in var.github_environments : "repo:${var.github_repository}:environment:${env}"],
    [for branch in var.github_branches : "repo:${var.github_repository}:ref:refs/heads/${branch}"],
  )
}

data "aws_iam_policy_document" "deploy_trust" {
  count = var.create_account_resources ? 1 : 0
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.github[0].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc}:sub"
      values   = local.github_subjects
    }
  }
}

resource "aws_iam_role" "deploy" {
  count                = var.create_account_resources ? 1 : 0
  name                 = "${var.project}-github-deploy"
  description          = "Assumed by ${var.github_repository} workflows through GitHub OIDC"
  assume_role_policy   = data.aws_iam_policy_document.deploy_trust[0].json
  max_session_duration = 14400 # retrain.yml waits up to 4 h for the pipeline
}

resource "aws_iam_role_policy" "deploy" {
  count  = var.create_account_resources ? 1 : 0
  name   = "deploy"
  role   = aws_iam_role.deploy[0].id
  policy = data.aws_iam_policy_document.deploy.json
}

# --- API Gateway's account-wide CloudWatch Logs role (needed for stage access logs).
data "aws_iam_policy_document" "apigateway_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "apigateway_logs" {
  count              = var.create_account_resources ? 1 : 0
  name               = "${var.project}-apigateway-logs"
  assume_role_policy = data.aws_iam_policy_document.apigateway_trust.json
}

resource "aws_iam_role_policy_attachment" "apigateway_logs" {
  count      = var.create_account_resources ? 1 : 0
  role       = aws_iam_role.apigateway_logs[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count               = var.create_account_resources ? 1 : 0
  cloudwatch_role_arn = aws_iam_role.apigateway_logs[0].arn
  depends_on          = [aws_iam_role_policy_attachment.apigateway_logs]
}
