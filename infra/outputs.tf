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
  description = "ID of the smoke tests' API key (its own usage plan; never published). Promotion reads its value."
  value       = aws_api_gateway_api_key.plan["smoke"].id
}

output "web_api_key_id" {
  description = "ID of the web page's API key (public by design: metering and throttling, not authentication)."
  value       = aws_api_gateway_api_key.plan["web"].id
}

output "clients_usage_plan_id" {
  description = "Usage plan that programmatic clients' keys are added to (one key per client)."
  value       = aws_api_gateway_usage_plan.plan["clients"].id
}

output "web_acl_arn" {
  description = "Web ACL of the API stage (payload limit, per-IP rate limit, managed rules)."
  value       = aws_wafv2_web_acl.api.arn
}

output "max_body_bytes" {
  description = "The largest request body the API accepts (the web ACL answers 413 above it)."
  value       = local.max_body_bytes
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

output "registration_signing_key" {
  description = "The key the registry's versions are signed with (infra/bootstrap/signing.tf): promotion verifies with its public half."
  value       = "alias/${local.registry_prefix}-registration-signing"
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
  description = "Execution role of the pipeline steps (from the bootstrap stack); empty where the registry lives elsewhere."
  value       = one(data.aws_iam_role.pipeline[*].arn) == null ? "" : one(data.aws_iam_role.pipeline[*].arn)
}

output "inference_role_arn" {
  description = "Execution role of the endpoint's models (read-only on the model artifacts), from the bootstrap stack."
  value       = data.aws_iam_role.inference.arn
}

output "lambda_role_arn" {
  description = "Execution role of the API function, from the bootstrap stack."
  value       = data.aws_iam_role.function.arn
}

output "pipeline_name" {
  description = "Name `mlops pipeline upsert` gives the SageMaker pipeline (one, beside the registry)."
  value       = "${var.project}-training"
}
