# What a release of one environment needs (`mlops promote`, `rollback`, `lambda update-code`,
# `web publish`): a SageMaker model, endpoint config and endpoint update, a function version and the
# alias, an API deployment, the release records and the lock, the smoke tests' key, the web page.
data "aws_iam_policy_document" "release" {
  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject"]
    resources = local.state_objects
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = ["${local.arn}:s3:::${var.state_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.project}/${var.environment}/*"]
    }
  }

  statement {
    sid       = "ReadRegistry"
    actions   = ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"]
    resources = [local.model_group, local.model_packages]
  }

  # Promotion verifies a version's registration signature with the pipeline's key (infra/bootstrap/signing.tf).
  statement {
    sid       = "RegistrationKey"
    actions   = ["kms:GetPublicKey", "kms:DescribeKey"]
    resources = [local.keys]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${local.registry_prefix}-registration-signing"]
    }
  }

  statement {
    sid       = "Endpoint"
    actions   = ["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:DeleteModel", "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig", "sagemaker:DeleteEndpointConfig", "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:InvokeEndpoint", "sagemaker:AddTags", "sagemaker:ListTags"]
    resources = ["${local.sagemaker}:model/${local.prefix}-*", "${local.sagemaker}:endpoint-config/${local.prefix}-*", "${local.sagemaker}:endpoint/${local.prefix}-*"]
  }

  statement {
    sid       = "PassInferenceRole"
    actions   = ["iam:PassRole"]
    resources = ["${local.role_arn}-inference"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }

  statement {
    sid       = "FunctionVersions"
    actions   = ["lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:PublishVersion", "lambda:ListVersionsByFunction", "lambda:ListAliases", "lambda:GetAlias", "lambda:UpdateAlias", "lambda:DeleteFunction"]
    resources = local.functions
  }

  # A promotion invokes each new function version once before it takes traffic (a cold start that
  # fails there never reaches a client): published versions of the API function only, never $LATEST.
  statement {
    sid       = "WarmNewVersions"
    actions   = ["lambda:InvokeFunction"]
    resources = ["${local.arn}:lambda:${local.regional}:function:${local.prefix}-classify-api:*"]
  }

  statement {
    sid       = "TagReleasedImage"
    actions   = ["ecr:BatchGetImage", "ecr:DescribeImages", "ecr:PutImage"]
    resources = [local.repository]
  }

  statement {
    sid       = "ListApis"
    actions   = ["apigateway:GET"]
    resources = ["${local.apigw}/restapis"]
  }

  statement {
    sid       = "ApiDeploymentsAndSmokeKey"
    actions   = ["apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"]
    resources = ["${local.apigw}/restapis/*", "${local.apigw}/apikeys/*"]
    condition {
      test     = local.own_tag.test
      variable = local.own_tag.variable
      values   = local.own_tag.values
    }
  }

  statement {
    sid       = "ReleaseRecordsAndLock"
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]
    resources = [local.releases_table]
  }

  statement {
    sid       = "WatchAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = local.alarms
  }

  statement {
    sid       = "ReadMetrics"
    actions   = ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"]
    resources = ["*"]
  }

  # Shadow testing: the live function logs each mirrored request's two answers; promotion reads
  # those records back from the function's own log group, and no other.
  statement {
    sid       = "ReadShadowRecords"
    actions   = ["logs:FilterLogEvents"]
    resources = ["${local.arn}:logs:${local.regional}:log-group:/aws/lambda/${local.prefix}-classify-api:*"]
  }

  statement {
    sid       = "WebPage"
    actions   = ["s3:PutObject"]
    resources = local.web_objects
  }

  statement {
    sid       = "RefreshWebPage"
    actions   = ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"]
    resources = ["${local.arn}:cloudfront::${var.account_id}:distribution/*"]
    condition {
      test     = local.own_tag.test
      variable = local.own_tag.variable
      values   = local.own_tag.values
    }
  }

  # Smoke photos travel with the model: promotion reads the candidate's smoke set, which the
  # evaluation wrote beside evaluation.json in the registry's bucket (SSE-KMS with its key).
  statement {
    sid       = "ReadSmokeSets"
    actions   = ["s3:GetObject"]
    resources = ["${local.arn}:s3:::${local.registry_prefix}-artifacts-${var.account_id}/evaluation/*"]
  }

  # Promotion copies the registered model (the training jobs' output under models/ of the registry's
  # bucket, read-only) into released/ of this environment's own bucket, under its own key, and checks
  # the copy by content (its SHA-256, as registered) before CreateModel: the endpoint serves that copy.
  statement {
    sid       = "ReadRegisteredModels"
    actions   = ["s3:GetObject"]
    resources = ["${local.arn}:s3:::${local.registry_prefix}-artifacts-${var.account_id}/models/*"]
  }

  statement {
    sid       = "KeepReleasedModels"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${local.arn}:s3:::${local.prefix}-artifacts-${var.account_id}/released/*"]
  }

  statement {
    sid       = "DecryptSmokeSetsThroughS3"
    actions   = ["kms:Decrypt"]
    resources = [local.keys]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${local.registry_prefix}"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "UseOwnKey"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"]
    resources = [local.keys]
    condition {
      test     = local.own_key_alias.test
      variable = local.own_key_alias.variable
      values   = local.own_key_alias.values
    }
  }
}

# Only in the environment owning the registry: push the serving image, upload the pipeline's code
# bundle and create or update the pipeline, which runs with the pipeline role.
data "aws_iam_policy_document" "build" {
  count = local.owns_registry ? 1 : 0

  statement {
    sid       = "EcrToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PushServingImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages"]
    resources = [local.repository]
  }

  statement {
    sid       = "CodeBundle"
    actions   = ["s3:PutObject"]
    resources = ["${local.arn}:s3:::${local.prefix}-artifacts-${var.account_id}/code/*"]
  }

  statement {
    sid       = "Pipeline"
    actions   = ["sagemaker:CreatePipeline", "sagemaker:UpdatePipeline", "sagemaker:DescribePipeline", "sagemaker:AddTags", "sagemaker:ListTags"]
    resources = [local.pipeline]
  }

  statement {
    sid       = "PassPipelineRole"
    actions   = ["iam:PassRole"]
    resources = ["${local.role_arn}-pipeline"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
}
