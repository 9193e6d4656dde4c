# Names and ARNs of one environment's resources, as the per-environment stack (infra/) names them.
locals {
  prefix          = "${var.project}-${var.environment}"
  registry_prefix = "${var.project}-${var.registry_environment}"
  owns_registry   = var.environment == var.registry_environment
  arn             = "arn:${var.partition}"
  regional        = "${var.region}:${var.account_id}"

  # Resources without a name in their ARN are matched by the `environment` tag every stack sets
  # (provider default_tags); creating one requires the tag in the request, changing one requires
  # it on the resource, and no request may move a resource to another environment's tag.
  own_tag = {
    test     = "StringEquals"
    variable = "aws:ResourceTag/environment"
    values   = [var.environment]
  }
  request_tag = {
    test     = "StringEquals"
    variable = "aws:RequestTag/environment"
    values   = [var.environment]
  }
  request_tag_if_any = {
    test     = "StringEqualsIfExists"
    variable = "aws:RequestTag/environment"
    values   = [var.environment]
  }
  # Tags set at creation only: the resource has no environment tag yet.
  untagged = {
    test     = "Null"
    variable = "aws:ResourceTag/environment"
    values   = ["true"]
  }
  # The environment's KMS key, by its alias (key ARNs are not known before the stack exists).
  own_key_alias = {
    test     = "ForAnyValue:StringEquals"
    variable = "kms:ResourceAliases"
    values   = ["alias/${local.prefix}"]
  }

  buckets        = ["${local.arn}:s3:::${local.prefix}-*"]
  bucket_objects = ["${local.arn}:s3:::${local.prefix}-*/*"]
  web_objects    = ["${local.arn}:s3:::${local.prefix}-web-${var.account_id}/*"]
  state_objects  = ["${local.arn}:s3:::${var.state_bucket}/${var.project}/${var.environment}/*"]
  functions      = ["${local.arn}:lambda:${local.regional}:function:${local.prefix}-*", "${local.arn}:lambda:${local.regional}:function:${local.prefix}-*:*"]
  tables         = ["${local.arn}:dynamodb:${local.regional}:table/${local.prefix}-*"]
  releases_table = "${local.arn}:dynamodb:${local.regional}:table/${local.prefix}-releases"
  alarms         = ["${local.arn}:cloudwatch:${local.regional}:alarm:${local.prefix}-*"]
  topics         = ["${local.arn}:sns:${local.regional}:${local.prefix}-*"]
  keys           = "${local.arn}:kms:${local.regional}:key/*"
  role_arn       = "${local.arn}:iam::${var.account_id}:role/${local.prefix}"
  log_groups = [
    "${local.arn}:logs:${local.regional}:log-group:/aws/lambda/${local.prefix}-*",
    "${local.arn}:logs:${local.regional}:log-group:/aws/apigateway/${local.prefix}-*",
    "${local.arn}:logs:${local.regional}:log-group:/aws/sagemaker/Endpoints/${local.prefix}-*",
  ]
  apigw          = "${local.arn}:apigateway:${var.region}::"
  sagemaker      = "${local.arn}:sagemaker:${local.regional}"
  model_group    = "${local.sagemaker}:model-package-group/${local.registry_prefix}-models"
  model_packages = "${local.sagemaker}:model-package/${local.registry_prefix}-models/*"
  pipeline       = "${local.sagemaker}:pipeline/${var.project}-training"
  repository     = "${local.arn}:ecr:${local.regional}:repository/${local.registry_prefix}-serving"
  webacls        = "${local.arn}:wafv2:${local.regional}:regional/webacl/${local.prefix}-*/*"
  managed_rules  = "${local.arn}:wafv2:${local.regional}:regional/managedruleset/*/*"
}
