# The API function. Terraform creates it once from build/lambda.zip and manages its settings, the
# environment variables among them: a change reaches $LATEST at the next apply, and every version
# published after it. Releases (the `mlops` CLI) own the code (`mlops lambda update-code`), the three
# variables a release names itself by before it publishes a version (RELEASE_VARIABLES in
# mlops/backends/aws/front.py), the versions and the `live` alias: those are ignored here, so Terraform
# never undoes a release. (Changing a setting publishes a version too, publish being true: nothing
# routes to it.)
resource "aws_lambda_function" "api" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by API Gateway only; a dead-letter queue applies to asynchronous invocations.
  #checkov:skip=CKV_AWS_117:The function only calls regional AWS APIs (SageMaker runtime, DynamoDB) and needs no VPC resources.
  #checkov:skip=CKV_AWS_272:The package is built by CI from the reviewed main branch; code signing is not set up for this project.
  function_name                  = local.function_name
  description                    = "Cat/dog classifier API (${var.environment})"
  role                           = data.aws_iam_role.function.arn
  runtime                        = var.lambda_runtime
  handler                        = "classify_api.handler.lambda_handler"
  filename                       = var.lambda_zip_path
  architectures                  = ["x86_64"]
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.lambda_timeout_seconds
  reserved_concurrent_executions = var.lambda_reserved_concurrency
  kms_key_arn                    = aws_kms_key.main.arn
  publish                        = true

  tracing_config {
    mode = "Active"
  }

  # The emulator does not return logging_config (a permanent diff); the default group has the same name.
  dynamic "logging_config" {
    for_each = var.emulator ? [] : [1]
    content {
      log_format = "JSON"
      log_group  = aws_cloudwatch_log_group.lambda.name
    }
  }

  environment {
    variables = {
      ENDPOINT_NAME                = local.endpoint_name
      PREDICTION_TABLE             = var.enable_prediction_log ? aws_dynamodb_table.predictions[0].name : ""
      PREDICTION_TTL_DAYS          = tostring(var.prediction_log_ttl_days)
      CORS_ALLOW_ORIGIN            = local.cors_allow_origin
      MLOPS_ENVIRONMENT            = var.environment
      POWERTOOLS_SERVICE_NAME      = "classify-api"
      POWERTOOLS_METRICS_NAMESPACE = "CatDog"
      POWERTOOLS_LOG_LEVEL         = "INFO"
    }
  }

  lifecycle {
    ignore_changes = [
      filename, source_code_hash, s3_bucket, s3_key, s3_object_version, image_uri,
      description, publish, layers,
      environment[0].variables["MODEL_RELEASE"],
      environment[0].variables["MODEL_VERSION"],
      environment[0].variables["ENDPOINT_NAME"],
    ]
  }

}

resource "aws_lambda_alias" "live" {
  name             = local.alias_name
  description      = "The released version; moved by promotion"
  function_name    = aws_lambda_function.api.function_name
  function_version = aws_lambda_function.api.version

  lifecycle {
    ignore_changes = [function_version, routing_config, description]
  }
}

resource "aws_lambda_permission" "apigw" {
  statement_id  = "AllowApiGatewayInvokeLive"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.api.function_name
  qualifier     = aws_lambda_alias.live.name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.api.execution_arn}/*/*/*"
}

locals {
  cors_allow_origin = var.cors_allow_origin != "" ? var.cors_allow_origin : local.web_url
}
