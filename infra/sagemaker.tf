# The model registry: the pipeline registers versions here as PendingManualApproval.
# The endpoint itself is created and updated by promotion, not by Terraform.
resource "aws_sagemaker_model_package_group" "models" {
  count                           = local.owns_registry ? 1 : 0
  model_package_group_name        = local.model_package_group_name
  model_package_group_description = "Cat vs dog MobileNetV2 classifier (${var.project})"
}

locals {
  model_package_group_arn = "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:model-package-group/${local.model_package_group_name}"
  model_package_arns      = "arn:${local.partition}:sagemaker:${local.region}:${local.account_id}:model-package/${local.model_package_group_name}/*"
}
