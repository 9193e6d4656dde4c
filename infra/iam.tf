# This stack creates no IAM: the roles it uses come from the bootstrap stack (infra/bootstrap/), which
# an administrator applies once, and every one of them carries the project's permissions boundary.
# Looking them up makes a missing bootstrap fail at plan time with the role's name.
data "aws_iam_role" "function" {
  name = "${local.prefix}-function"
}

data "aws_iam_role" "inference" {
  name = "${local.prefix}-inference"
}

data "aws_iam_role" "pipeline" {
  count = local.owns_registry ? 1 : 0
  name  = "${local.prefix}-pipeline"
}
