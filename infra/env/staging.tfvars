# terraform plan/apply -var-file=env/staging.tfvars (the workflows: make infra-apply ENV=staging)
environment       = "staging"
aws_region        = "eu-west-1"
github_repository = "example-org/catdog-mlops"

# Staging owns the model registry and the serving image repository; production reads them.
registry_environment = ""

log_retention_days       = 90
api_throttle_rate_limit  = 10
api_throttle_burst_limit = 20
api_quota_per_day        = 5000
enable_prediction_log    = true


# From the bootstrap stack: terraform -chdir=infra/bootstrap output web_origin_access_control_ids
web_origin_access_control_id = ""
