output "github_role_arns" {
  description = "Role ARNs for the repository variables AWS_DEPLOY_STAGING_ROLE_ARN, AWS_DEPLOY_PRODUCTION_ROLE_ARN and AWS_RETRAIN_ROLE_ARN."
  value       = { for name, role in aws_iam_role.github : name => role.arn }
}

output "github_subjects" {
  description = "The exact OIDC subject each role trusts (with the repository's subject template set to repo, context, job_workflow_ref)."
  value       = { for name, spec in local.github_roles : name => "repo:${var.github_repository}:${spec.context}:job_workflow_ref:${local.workflow}/${spec.workflow}@${local.ref}" }
}

output "execution_role_arns" {
  description = "Execution roles of the environments, by <environment>-<purpose>."
  value       = { for name, role in aws_iam_role.exec : name => role.arn }
}

output "permissions_boundary_arn" {
  description = "The boundary every project role carries."
  value       = aws_iam_policy.boundary.arn
}

output "web_origin_access_control_ids" {
  description = "Origin access control of each environment's web bucket (web_origin_access_control_id in infra/env/<environment>.tfvars)."
  value       = { for env, oac in aws_cloudfront_origin_access_control.web : env => oac.id }
}

output "approval_rule_name" {
  description = "EventBridge rule that dispatches model-approved to GitHub, empty when disabled (enable_approval_trigger)."
  value       = var.enable_approval_trigger ? aws_cloudwatch_event_rule.model_approved[0].name : ""
}
