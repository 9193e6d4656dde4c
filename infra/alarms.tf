# Alarms: the endpoint alarms go into every endpoint update's AutoRollbackConfiguration
# (promotion reads the `endpoint_alarm_names` output); all of them notify the alarm topic. Client errors
# (endpoint-4xx) only notify: any client can send an image whose header passes and whose body does not
# decode, and no client may roll a release back or block an endpoint update.
resource "aws_sns_topic" "alarms" {
  name              = "${local.prefix}-alarms"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email != "" ? 1 : 0
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  endpoint_dimensions = { EndpointName = local.endpoint_name, VariantName = var.endpoint_variant_name }
  alias_dimensions    = { FunctionName = local.function_name, Resource = "${local.function_name}:${local.alias_name}" }

  alarms = {
    endpoint-5xx = {
      description = "The endpoint returns 5XX errors"
      namespace   = "AWS/SageMaker", metric = "Invocation5XXErrors", statistic = "Sum", extended = null
      threshold   = 1, periods = 2, dimensions = local.endpoint_dimensions
    }
    endpoint-4xx = {
      description = "The model rejects requests (Invocation4XXErrors: model errors and bad payloads)"
      namespace   = "AWS/SageMaker", metric = "Invocation4XXErrors", statistic = "Sum", extended = null
      threshold   = 5, periods = 2, dimensions = local.endpoint_dimensions
    }
    endpoint-latency = {
      description = "The endpoint's p90 ModelLatency is too high"
      namespace   = "AWS/SageMaker", metric = "ModelLatency", statistic = null, extended = "p90"
      threshold   = var.alarm_latency_ms * 1000, periods = 3, dimensions = local.endpoint_dimensions
    }
    lambda-errors = {
      description = "The API function fails"
      namespace   = "AWS/Lambda", metric = "Errors", statistic = "Sum", extended = null
      threshold   = 1, periods = 2, dimensions = local.alias_dimensions
    }
    lambda-duration = {
      description = "The API function's p90 Duration is too high"
      namespace   = "AWS/Lambda", metric = "Duration", statistic = null, extended = "p90"
      threshold   = var.alarm_lambda_duration_ms, periods = 3, dimensions = local.alias_dimensions
    }
    api-5xx = {
      description = "The API returns 5XX errors"
      namespace   = "AWS/ApiGateway", metric = "5XXError", statistic = "Sum", extended = null
      threshold   = 1, periods = 2, dimensions = { ApiName = aws_api_gateway_rest_api.api.name, Stage = local.stage_name }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each            = local.alarms
  alarm_name          = "${local.prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  extended_statistic  = each.value.extended
  dimensions          = each.value.dimensions
  period              = 60
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

locals {
  endpoint_alarm_names = [for k in ["endpoint-5xx", "endpoint-latency"] : aws_cloudwatch_metric_alarm.this[k].alarm_name]
  release_alarm_names  = [for k in ["lambda-errors", "lambda-duration", "api-5xx"] : aws_cloudwatch_metric_alarm.this[k].alarm_name]
}
