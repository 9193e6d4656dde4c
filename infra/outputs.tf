# Everything promotion (`mlops ... --backend aws`) and the workflows read: `terraform output -json`.
output "environment" {
  description = "The environment of this state."
  value       = var.environment
}

output "aws_region" {
  description = "Region of every regional resource."
  value       = var.aws_region
}

output "api_url" {
  description = "Invoke URL of the API stage (append /predict or /health)."
  value       = aws_api_gateway_stage.live.invoke_url
}

output "rest_api_id" {
  description = "ID of the REST API; promotion creates a deployment per release."
  value       = aws_api_gateway_rest_api.api.id
}

output "stage_name" {
  description = "API stage that releases deploy to."
  value       = aws_api_gateway_stage.live.stage_name
}

output "api_key_id" {
  description = "ID of the clients' API key (read its value with apigateway get-api-key --include-value)."
  value       = aws_api_gateway_api_key.clients.id
}

output "function_name" {
  description = "Name of the API function."
  value       = aws_lambda_function.api.function_name
}

output "function_alias" {
  description = "Alias that releases move to a published version."
  value       = aws_lambda_alias.live.name
}

output "endpoint_name" {
  description = "Name of the SageMaker endpoint that promotion creates and updates."
  value       = local.endpoint_name
}

output "endpoint_variant_name" {
  description = "Variant name every endpoint config uses (the alarms watch it)."
  value       = var.endpoint_variant_name
}

output "release_table" {
  description = "DynamoDB table of releases."
  value       = aws_dynamodb_table.releases.name
}

output "lock_table" {
  description = "DynamoDB table holding the promotion lock item (the releases table)."
  value       = aws_dynamodb_table.releases.name
}

output "prediction_table" {
  description = "DynamoDB prediction log table, empty when disabled."
  value       = var.enable_prediction_log ? aws_dynamodb_table.predictions[0].name : ""
}

output "model_package_group_name" {
  description = "SageMaker model package group (the model registry)."
  value       = local.model_package_group_name
}

output "ecr_repository_url" {
  description = "ECR repository of the serving image."
  value       = local.ecr_repository_url
}

output "artifact_bucket" {
  description = "S3 bucket for pipeline data, model artifacts and release records."
  value       = aws_s3_bucket.artifacts.bucket
}

output "web_bucket" {
  description = "S3 bucket holding the web page."
  value       = aws_s3_bucket.web.bucket
}

output "web_url" {
  description = "URL of the web page (CloudFront)."
  value       = local.web_url
}

output "web_distribution_id" {
  description = "CloudFront distribution of the web page (for invalidations)."
  value       = one(aws_cloudfront_distribution.web[*].id)
}

output "kms_key_arn" {
  description = "KMS key of this environment (S3 uploads, tables)."
  value       = aws_kms_key.main.arn
}

output "endpoint_alarm_names" {
  description = "Alarms for the endpoint's AutoRollbackConfiguration on every update."
  value       = local.endpoint_alarm_names
}

output "release_alarm_names" {
  description = "Alarms on the function alias and the API stage that promotion watches after a release."
  value       = local.release_alarm_names
}

output "alarm_topic_arn" {
  description = "SNS topic notified by every alarm."
  value       = aws_sns_topic.alarms.arn
}

output "sagemaker_role_arn" {
  description = "Execution role of the pipeline steps and the endpoint."
  value       = aws_iam_role.sagemaker.arn
}

output "lambda_role_arn" {
  description = "Execution role of the API function."
  value       = aws_iam_role.lambda.arn
}

output "deploy_role_arn" {
  description = "Role the GitHub workflows assume (AWS_DEPLOY_ROLE_ARN); empty when this state does not own it."
  value       = var.create_account_resources ? aws_iam_role.deploy[0].arn : ""
}

output "pipeline_name" {
  description = "Name `mlops pipeline upsert` gives the SageMaker pipeline (one, beside the registry)."
  value       = "${var.project}-training"
}

output "approval_rule_name" {
  description = "EventBridge rule that dispatches model-approved to GitHub, empty when disabled."
  value       = local.approval_trigger ? aws_cloudwatch_event_rule.model_approved[0].name : ""
}
