# What `terraform apply` of one environment's stack (infra/) needs, and nothing outside it.
# Two documents, each within the 6,144-character limit of a managed policy.

# --- Storage, compute, keys, logs and the role look-ups.
data "aws_iam_policy_document" "apply_core" {
  statement {
    sid       = "State"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
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
    sid       = "Buckets"
    actions   = ["s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucket*", "s3:PutBucket*", "s3:DeleteBucketPolicy", "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration", "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration"]
    resources = local.buckets
  }

  statement {
    sid       = "Objects"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = local.bucket_objects
  }

  statement {
    sid       = "Tables"
    actions   = ["dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:DescribeTable", "dynamodb:UpdateTable", "dynamodb:DescribeContinuousBackups", "dynamodb:UpdateContinuousBackups", "dynamodb:DescribeTimeToLive", "dynamodb:UpdateTimeToLive", "dynamodb:TagResource", "dynamodb:UntagResource", "dynamodb:ListTagsOfResource"]
    resources = local.tables
  }

  statement {
    sid       = "Function"
    actions   = ["lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:GetFunctionCodeSigningConfig", "lambda:GetFunctionConcurrency", "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:UpdateFunctionConfiguration", "lambda:UpdateFunctionCode", "lambda:PublishVersion", "lambda:ListVersionsByFunction", "lambda:CreateAlias", "lambda:GetAlias", "lambda:UpdateAlias", "lambda:DeleteAlias", "lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy", "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags"]
    resources = local.functions
  }

  statement {
    sid       = "LogGroups"
    actions   = ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource", "logs:TagLogGroup", "logs:ListTagsForResource", "logs:ListTagsLogGroup"]
    resources = local.log_groups
  }

  statement {
    sid       = "ListLogGroupsAndSubscriptions"
    actions   = ["logs:DescribeLogGroups", "sns:GetSubscriptionAttributes"]
    resources = ["*"]
  }

  statement {
    sid       = "CreateTaggedKey"
    actions   = ["kms:CreateKey", "kms:TagResource"]
    resources = ["*"]
    condition {
      test     = local.request_tag.test
      variable = local.request_tag.variable
      values   = local.request_tag.values
    }
    condition {
      test     = local.untagged.test
      variable = local.untagged.variable
      values   = local.untagged.values
    }
  }

  statement {
    sid       = "OwnKeys"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CreateGrant", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateAlias", "kms:DeleteAlias"]
    resources = [local.keys]
    condition {
      test     = local.own_tag.test
      variable = local.own_tag.variable
      values   = local.own_tag.values
    }
    condition {
      test     = local.request_tag_if_any.test
      variable = local.request_tag_if_any.variable
      values   = local.request_tag_if_any.values
    }
  }

  # The provider describes the AWS managed key of DynamoDB (alias/aws/dynamodb) to tell a table's
  # default encryption from a customer key: metadata of that one AWS managed key, nothing else.
  statement {
    sid       = "DescribeDynamoDbManagedKey"
    actions   = ["kms:DescribeKey"]
    resources = [local.keys]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/aws/dynamodb"]
    }
  }

  statement {
    sid       = "OwnKeyAlias"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["${local.arn}:kms:${local.regional}:alias/${local.prefix}"]
  }

  statement {
    sid       = "ListKeys"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadOwnRoles"
    actions   = ["iam:GetRole"]
    resources = ["${local.role_arn}-*"]
  }

  statement {
    sid       = "PassFunctionRole"
    actions   = ["iam:PassRole"]
    resources = ["${local.role_arn}-function"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["lambda.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = local.owns_registry ? [1] : []
    content {
      sid       = "Registry"
      actions   = ["ecr:CreateRepository", "ecr:DeleteRepository", "ecr:DescribeRepositories", "ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy", "ecr:DeleteLifecyclePolicy", "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:TagResource", "ecr:UntagResource", "ecr:ListTagsForResource", "sagemaker:CreateModelPackageGroup", "sagemaker:DeleteModelPackageGroup", "sagemaker:DescribeModelPackageGroup", "sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"]
      resources = [local.repository, local.model_group]
    }
  }
}

# --- API, web distribution, firewall, alarms, topic and the approval trigger.
data "aws_iam_policy_document" "apply_edge" {
  statement {
    sid       = "CreateTaggedApiResources"
    actions   = ["apigateway:POST"]
    resources = ["${local.apigw}/restapis", "${local.apigw}/usageplans", "${local.apigw}/apikeys"]
    condition {
      test     = local.request_tag.test
      variable = local.request_tag.variable
      values   = local.request_tag.values
    }
  }

  statement {
    sid       = "OwnApiResources"
    actions   = ["apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH", "apigateway:DELETE", "apigateway:SetWebACL"]
    resources = ["${local.apigw}/restapis/*", "${local.apigw}/usageplans/*", "${local.apigw}/apikeys/*", "${local.apigw}/tags/*"]
    condition {
      test     = local.own_tag.test
      variable = local.own_tag.variable
      values   = local.own_tag.values
    }
    condition {
      test     = local.request_tag_if_any.test
      variable = local.request_tag_if_any.variable
      values   = local.request_tag_if_any.values
    }
  }

  statement {
    sid       = "CreateTaggedDistribution"
    actions   = ["cloudfront:CreateDistribution", "cloudfront:CreateDistributionWithTags", "cloudfront:TagResource"]
    resources = ["${local.arn}:cloudfront::${var.account_id}:distribution/*"]
    condition {
      test     = local.request_tag.test
      variable = local.request_tag.variable
      values   = local.request_tag.values
    }
    condition {
      test     = local.untagged.test
      variable = local.untagged.variable
      values   = local.untagged.values
    }
  }

  statement {
    sid       = "OwnDistribution"
    actions   = ["cloudfront:GetDistribution", "cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution", "cloudfront:DeleteDistribution", "cloudfront:ListTagsForResource", "cloudfront:TagResource", "cloudfront:UntagResource", "cloudfront:CreateInvalidation", "cloudfront:GetInvalidation"]
    resources = ["${local.arn}:cloudfront::${var.account_id}:distribution/*"]
    condition {
      test     = local.own_tag.test
      variable = local.own_tag.variable
      values   = local.own_tag.values
    }
    condition {
      test     = local.request_tag_if_any.test
      variable = local.request_tag_if_any.variable
      values   = local.request_tag_if_any.values
    }
  }


  statement {
    sid       = "WebAcl"
    actions   = ["wafv2:CreateWebACL", "wafv2:GetWebACL", "wafv2:UpdateWebACL", "wafv2:DeleteWebACL", "wafv2:ListTagsForResource", "wafv2:TagResource", "wafv2:UntagResource", "wafv2:AssociateWebACL", "wafv2:DisassociateWebACL", "wafv2:GetWebACLForResource"]
    resources = [local.webacls]
    condition {
      test     = local.request_tag_if_any.test
      variable = local.request_tag_if_any.variable
      values   = local.request_tag_if_any.values
    }
  }


  statement {
    sid       = "ManagedRuleGroups"
    actions   = ["wafv2:CreateWebACL", "wafv2:UpdateWebACL"]
    resources = [local.managed_rules]
  }

  statement {
    sid       = "AlarmsAndTopic"
    actions   = ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:UntagResource", "sns:CreateTopic", "sns:DeleteTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:Subscribe", "sns:ListSubscriptionsByTopic", "sns:TagResource", "sns:UntagResource", "sns:ListTagsForResource"]
    resources = concat(local.alarms, local.topics)
  }
}
