# What the GitHub deploy role may do: apply this stack (both environments share an account when
# production sets create_account_resources = false), push the serving image, upsert and start the
# pipeline, approve and promote releases. Every write is scoped to resources named <project>-*.
locals {
  arn_prefix   = "arn:${local.partition}"
  regional     = "${local.region}:${local.account_id}"
  state_bucket = var.tf_state_bucket != "" ? ["arn:${local.partition}:s3:::${var.tf_state_bucket}", "arn:${local.partition}:s3:::${var.tf_state_bucket}/*"] : []
}

data "aws_iam_policy_document" "deploy" {
  statement {
    sid     = "ProjectBucketsAndState"
    actions = ["s3:*"]
    resources = concat([
      "${local.arn_prefix}:s3:::${var.project}-*",
      "${local.arn_prefix}:s3:::${var.project}-*/*",
    ], local.state_bucket)
  }

  statement {
    sid       = "ProjectTables"
    actions   = ["dynamodb:*"]
    resources = ["${local.arn_prefix}:dynamodb:${local.regional}:table/${var.project}-*"]
  }

  statement {
    sid     = "ProjectFunctions"
    actions = ["lambda:*"]
    resources = [
      "${local.arn_prefix}:lambda:${local.regional}:function:${var.project}-*",
      "${local.arn_prefix}:lambda:${local.regional}:function:${var.project}-*:*",
    ]
  }

  statement {
    sid     = "ProjectSageMaker"
    actions = ["sagemaker:*"]
    resources = [
      "${local.arn_prefix}:sagemaker:${local.regional}:*/${var.project}-*",
      "${local.arn_prefix}:sagemaker:${local.regional}:*/pipelines-*",
    ]
  }

  statement {
    sid = "SageMakerListings"
    actions = [
      "sagemaker:ListModelPackageGroups", "sagemaker:ListEndpoints", "sagemaker:ListEndpointConfigs",
      "sagemaker:ListModels", "sagemaker:ListPipelines", "sagemaker:ListTrainingJobs",
      "sagemaker:ListProcessingJobs", "sagemaker:Search",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "InvokeProjectEndpointsForSmokeTests"
    actions   = ["sagemaker:InvokeEndpoint"]
    resources = ["${local.arn_prefix}:sagemaker:${local.regional}:endpoint/${var.project}-*"]
  }

  statement {
    sid       = "ProjectApis"
    actions   = ["apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE"]
    resources = ["${local.arn_prefix}:apigateway:${local.region}::/*"]
  }

  statement {
    sid     = "ProjectAlarmsAndMetrics"
    actions = ["cloudwatch:*"]
    resources = [
      "${local.arn_prefix}:cloudwatch:${local.regional}:alarm:${var.project}-*",
    ]
  }

  statement {
    sid       = "ReadAlarmsAndMetrics"
    actions   = ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"]
    resources = ["*"]
  }

  statement {
    sid       = "DescribeAlarms"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["${local.arn_prefix}:cloudwatch:${local.regional}:alarm:*"]
  }

  statement {
    sid     = "ProjectLogs"
    actions = ["logs:*"]
    resources = [
      "${local.arn_prefix}:logs:${local.regional}:log-group:/aws/lambda/${var.project}-*",
      "${local.arn_prefix}:logs:${local.regional}:log-group:/aws/apigateway/${var.project}-*",
      "${local.arn_prefix}:logs:${local.regional}:log-group:/aws/sagemaker/*",
    ]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["${local.arn_prefix}:logs:${local.regional}:log-group:*"]
  }

  statement {
    sid       = "EcrToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "ProjectImages"
    actions   = ["ecr:*"]
    resources = ["${local.arn_prefix}:ecr:${local.regional}:repository/${var.project}-*"]
  }

  statement {
    sid       = "CreateTaggedKeys"
    actions   = ["kms:CreateKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/project"
      values   = [var.project]
    }
  }

  statement {
    sid       = "ManageProjectKeys"
    actions   = ["kms:*"]
    resources = ["${local.arn_prefix}:kms:${local.regional}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/project"
      values   = [var.project]
    }
  }

  statement {
    sid       = "ProjectKeyAliases"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["${local.arn_prefix}:kms:${local.regional}:alias/${var.project}-*"]
  }

  statement {
    sid       = "ListKeys"
    actions   = ["kms:ListAliases", "kms:ListKeys"]
    resources = ["*"]
  }

  statement {
    sid = "ProjectRolesAndProvider"
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
      "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:ListRolePolicies",
      "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:PutRolePolicy",
      "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy",
      "iam:CreateOpenIDConnectProvider", "iam:GetOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider",
      "iam:UpdateOpenIDConnectProviderThumbprint", "iam:AddClientIDToOpenIDConnectProvider",
      "iam:RemoveClientIDFromOpenIDConnectProvider", "iam:TagOpenIDConnectProvider",
      "iam:UntagOpenIDConnectProvider",
    ]
    resources = [
      "${local.arn_prefix}:iam::${local.account_id}:role/${var.project}-*",
      "${local.arn_prefix}:iam::${local.account_id}:policy/${var.project}-*",
      "${local.arn_prefix}:iam::${local.account_id}:oidc-provider/${local.github_oidc}",
    ]
  }

  statement {
    sid       = "ReadManagedPolicies"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = ["${local.arn_prefix}:iam::aws:policy/*"]
  }

  statement {
    sid       = "ProjectTopics"
    actions   = ["sns:*"]
    resources = ["${local.arn_prefix}:sns:${local.regional}:${var.project}-*"]
  }

  statement {
    sid     = "ProjectEvents"
    actions = ["events:*"]
    resources = [
      "${local.arn_prefix}:events:${local.regional}:rule/${var.project}-*",
      "${local.arn_prefix}:events:${local.regional}:connection/${var.project}-*",
      "${local.arn_prefix}:events:${local.regional}:api-destination/${var.project}-*",
    ]
  }

  statement {
    sid       = "EventConnectionSecrets"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue", "secretsmanager:TagResource"]
    resources = ["${local.arn_prefix}:secretsmanager:${local.regional}:secret:events!connection/${var.project}-*"]
  }

  statement {
    sid       = "WebDistribution"
    actions   = ["cloudfront:*"]
    resources = ["${local.arn_prefix}:cloudfront::${local.account_id}:*"]
  }

  statement {
    sid       = "PassProjectRoles"
    actions   = ["iam:PassRole"]
    resources = ["${local.arn_prefix}:iam::${local.account_id}:role/${var.project}-*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com", "lambda.amazonaws.com", "apigateway.amazonaws.com", "events.amazonaws.com"]
    }
  }
}
