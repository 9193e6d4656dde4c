output "apply_core" {
  description = "Terraform apply of the environment's stack: storage, compute, keys, logs."
  value       = data.aws_iam_policy_document.apply_core.json
}

output "apply_edge" {
  description = "Terraform apply of the environment's stack: API, web, firewall, alarms, approval trigger."
  value       = data.aws_iam_policy_document.apply_edge.json
}

output "release" {
  description = "Releases of the environment: endpoint, function version, API deployment, records, web page."
  value       = data.aws_iam_policy_document.release.json
}

output "build" {
  description = "Image push, code bundle and pipeline upsert; empty unless the environment owns the registry."
  value       = local.owns_registry ? data.aws_iam_policy_document.build[0].json : ""
}
