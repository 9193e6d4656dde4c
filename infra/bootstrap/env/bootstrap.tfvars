# terraform -chdir=infra/bootstrap apply -var-file=env/bootstrap.tfvars (an administrator, once)
aws_region        = "eu-west-1"
github_repository = "example-org/catdog-mlops"
github_branch     = "main"
# The state bucket of the environment stacks (docs/deploy-aws.md, One-time bootstrap, step 1).
tf_state_bucket      = "catdog-terraform-state-123456789012"
registry_environment = "staging"
