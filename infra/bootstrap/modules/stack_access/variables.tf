variable "project" {
  description = "Project name; every resource of the environment is named <project>-<environment>-*."
  type        = string
}

variable "environment" {
  description = "The environment these policies reach: staging or production."
  type        = string
}

variable "registry_environment" {
  description = "Environment owning the model registry, the serving image repository and the pipeline."
  type        = string
}

variable "region" {
  description = "Region of the stacks."
  type        = string
}

variable "account_id" {
  description = "Account of the stacks."
  type        = string
}

variable "partition" {
  description = "AWS partition."
  type        = string
}

variable "state_bucket" {
  description = "Terraform state bucket (state key <project>/<environment>/terraform.tfstate)."
  type        = string
}
