# REST API: POST/OPTIONS /predict and GET /health, each a Lambda proxy integration to the alias
# named by the stage variable `lambdaAlias`. Promotion creates a new deployment per release (with
# stage variables naming it), so the stage's deployment and variables are ignored after creation.
resource "aws_api_gateway_rest_api" "api" {
  name        = "${local.prefix}-api"
  description = "Cat/dog classifier (${var.environment})"
  # The emulator ignores binary media types on create (it would show a permanent diff), so it gets none.
  binary_media_types = var.emulator ? null : local.binary_media_types

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "route" {
  for_each    = toset(["predict", "health"])
  rest_api_id = aws_api_gateway_rest_api.api.id
  parent_id   = aws_api_gateway_rest_api.api.root_resource_id
  path_part   = each.key
}

locals {
  binary_media_types = ["image/jpeg", "image/png", "image/webp", "image/*", "application/octet-stream", "multipart/form-data"]

  # route => (resource, method, API key required). Browsers send no API key on a CORS preflight.
  methods = {
    "predict-post"    = { resource = "predict", method = "POST", api_key = true }
    "predict-options" = { resource = "predict", method = "OPTIONS", api_key = false }
    "health-get"      = { resource = "health", method = "GET", api_key = true }
  }
  lambda_alias_uri = "arn:${local.partition}:apigateway:${local.region}:lambda:path/2015-03-31/functions/${aws_lambda_function.api.arn}:$${stageVariables.lambdaAlias}/invocations"
}

resource "aws_api_gateway_method" "route" {
  #checkov:skip=CKV2_AWS_53:Requests are validated by the function (image type and size), which returns 4xx on bad input.
  for_each         = local.methods
  rest_api_id      = aws_api_gateway_rest_api.api.id
  resource_id      = aws_api_gateway_resource.route[each.value.resource].id
  http_method      = each.value.method
  authorization    = "NONE"
  api_key_required = each.value.api_key
}

resource "aws_api_gateway_integration" "route" {
  for_each                = local.methods
  rest_api_id             = aws_api_gateway_rest_api.api.id
  resource_id             = aws_api_gateway_resource.route[each.value.resource].id
  http_method             = aws_api_gateway_method.route[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = local.lambda_alias_uri
}

# The first deployment only: it is never replaced (the stage keeps pointing at release deployments,
# which snapshot the routes as they are then), so route changes go live with the next release.
resource "aws_api_gateway_deployment" "initial" {
  rest_api_id = aws_api_gateway_rest_api.api.id
  description = "Initial deployment by Terraform"

  lifecycle {
    create_before_destroy = true
    ignore_changes        = [description]
  }

  depends_on = [aws_api_gateway_integration.route]
}

resource "aws_api_gateway_stage" "live" {
  #checkov:skip=CKV_AWS_120:Each request classifies a different uploaded image; responses are not cacheable.
  #checkov:skip=CKV2_AWS_51:The public page's browsers cannot present client certificates; abuse is handled by the web ACL (waf.tf) and per-key usage plans.
  rest_api_id          = aws_api_gateway_rest_api.api.id
  stage_name           = local.stage_name
  deployment_id        = aws_api_gateway_deployment.initial.id
  xray_tracing_enabled = true
  description          = "Releases create deployments and set the stage variables"

  variables = {
    lambdaAlias = local.alias_name
    release     = "none"
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      ip             = "$context.identity.sourceIp"
      requestTime    = "$context.requestTime"
      httpMethod     = "$context.httpMethod"
      resourcePath   = "$context.resourcePath"
      status         = "$context.status"
      protocol       = "$context.protocol"
      responseLength = "$context.responseLength"
      latency        = "$context.responseLatency"
      integration    = "$context.integration.latency"
      release        = "$stageVariables.release"
      apiKeyId       = "$context.identity.apiKeyId"
    })
  }

  lifecycle {
    ignore_changes = [deployment_id, variables, description]
  }

}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:Each request classifies a different uploaded image; responses are not cacheable.
  rest_api_id = aws_api_gateway_rest_api.api.id
  stage_name  = aws_api_gateway_stage.live.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = "INFO"
    data_trace_enabled     = false
    throttling_rate_limit  = local.stage_rate_limit
    throttling_burst_limit = local.stage_burst_limit
    caching_enabled        = false
  }
}

# Keys and usage plans. A key is not authentication here (the page's key is public by design); it
# decides whose throttle and quota a request counts against, so no caller can starve another:
# - web: the key in the public page; throttled, with no daily quota that anyone could exhaust. The
#   per-IP rate rule of the web ACL (waf.tf) keeps one client from taking the whole rate.
# - smoke: the smoke tests' own key, read by promotion and never published, on its own plan, so a
#   flood on the public key cannot make a promotion fail its smoke test and roll back.
# - clients: programmatic clients, each with a key of its own that an operator adds to this plan.
# The stage's method throttle is the sum of the plans' rates; each plan's throttle binds first.
locals {
  usage_plans = {
    web     = { rate = var.api_throttle_rate_limit, burst = var.api_throttle_burst_limit, quota = 0, description = "The public web page" }
    smoke   = { rate = var.api_smoke_rate_limit, burst = var.api_smoke_rate_limit * 2, quota = var.api_smoke_quota_per_day, description = "The release smoke tests" }
    clients = { rate = var.api_throttle_rate_limit, burst = var.api_throttle_burst_limit, quota = var.api_quota_per_day, description = "Programmatic clients (one key each)" }
  }
  stage_rate_limit  = sum([for plan in local.usage_plans : plan.rate])
  stage_burst_limit = sum([for plan in local.usage_plans : plan.burst])
  keyed_plans       = toset(["web", "smoke"])
}

resource "aws_api_gateway_api_key" "plan" {
  for_each    = local.keyed_plans
  name        = "${local.prefix}-${each.key}"
  description = "${local.usage_plans[each.key].description} (${var.environment})"
  enabled     = true
}

resource "aws_api_gateway_usage_plan" "plan" {
  for_each    = local.usage_plans
  name        = "${local.prefix}-${each.key}"
  description = local.usage_plans[each.key].description

  api_stages {
    api_id = aws_api_gateway_rest_api.api.id
    stage  = aws_api_gateway_stage.live.stage_name
  }

  throttle_settings {
    rate_limit  = each.value.rate
    burst_limit = each.value.burst
  }

  dynamic "quota_settings" {
    for_each = each.value.quota > 0 ? [each.value.quota] : []
    content {
      limit  = quota_settings.value
      period = "DAY"
    }
  }
}

resource "aws_api_gateway_usage_plan_key" "plan" {
  for_each      = local.keyed_plans
  key_id        = aws_api_gateway_api_key.plan[each.key].id
  key_type      = "API_KEY"
  usage_plan_id = aws_api_gateway_usage_plan.plan[each.key].id
}

moved {
  from = aws_api_gateway_api_key.clients
  to   = aws_api_gateway_api_key.plan["web"]
}

moved {
  from = aws_api_gateway_usage_plan.clients
  to   = aws_api_gateway_usage_plan.plan["clients"]
}
