# terraform plan/apply -var-file=env/production.tfvars (make infra-apply ENV=production)
environment       = "production"
aws_region        = "eu-west-1"
github_repository = "example-org/catdog-mlops"

# Versions are registered once (staging's registry) and promoted staging -> production.
registry_environment = "staging"

log_retention_days       = 365
api_throttle_rate_limit  = 50
api_throttle_burst_limit = 100
api_quota_per_day        = 50000
enable_prediction_log    = true
alarm_latency_ms         = 300


# From the bootstrap stack: terraform -chdir=infra/bootstrap output web_origin_access_control_ids
web_origin_access_control_id = ""
