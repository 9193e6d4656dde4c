variable "project" {
  description = "Short project name, as in the environment stacks."
  type        = string
  default     = "catdog"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.project))
    error_message = "project must be 2-16 lowercase letters, digits or dashes."
  }
}

variable "aws_region" {
  description = "Region of the environment stacks."
  type        = string
  default     = "eu-west-1"
}

variable "github_repository" {
  description = "GitHub repository (OWNER/REPO) whose workflows assume the roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like OWNER/REPO."
  }
}

variable "github_branch" {
  description = "The branch whose workflow files the roles trust (job_workflow_ref ...@refs/heads/<branch>)."
  type        = string
  default     = "main"
}

variable "tf_state_bucket" {
  description = "Terraform state bucket of the environment stacks (keys <project>/<environment>/terraform.tfstate)."
  type        = string

  validation {
    condition     = length(var.tf_state_bucket) >= 3
    error_message = "tf_state_bucket is required."
  }
}

variable "registry_environment" {
  description = "The environment owning the model registry, the serving image repository and the pipeline."
  type        = string
  default     = "staging"
}

variable "framework_image_account_id" {
  description = "AWS account of the SageMaker framework images (PyTorch training and processing) in this region."
  type        = string
  default     = "763104351884"
}

variable "aws_endpoint_url" {
  description = "Testing only: URL of an AWS emulator that receives every API call. Empty for real AWS."
  type        = string
  default     = ""
}

variable "enable_approval_trigger" {
  description = "Send a repository_dispatch (model-approved) to GitHub when a model version is approved in the registry."
  type        = bool
  default     = false
}
