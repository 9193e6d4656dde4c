# The roles GitHub workflows assume, one per job. Each trusts exactly one subject: this repository,
# one workflow file on the main branch (job_workflow_ref) and, for deploys, one GitHub environment.
# The subject includes job_workflow_ref once the repository's OIDC subject template is set to
# ["repo", "context", "job_workflow_ref"] (docs/deploy-aws.md); AWS can check only `aud` and `sub`.
module "access" {
  source   = "./modules/stack_access"
  for_each = toset(local.environments)

  project              = var.project
  environment          = each.key
  registry_environment = var.registry_environment
  region               = local.region
  account_id           = local.account_id
  partition            = local.partition
  state_bucket         = var.tf_state_bucket
}

locals {
  workflow = "${var.github_repository}/.github/workflows"
  ref      = "refs/heads/${var.github_branch}"

  github_roles = {
    deploy-staging = {
      description = "deploy.yml in environment staging: apply and release staging, push the image, upsert the pipeline"
      context     = "environment:staging"
      workflow    = "deploy.yml"
      duration    = 7200
      policies    = ["staging-apply-core", "staging-apply-edge", "staging-release", "staging-build"]
    }
    deploy-production = {
      description = "promote.yml in environment production: approve, release staging then production, apply production"
      context     = "environment:production"
      workflow    = "promote.yml"
      duration    = 7200
      policies    = ["production-apply-core", "production-apply-edge", "production-release", "staging-release", "approve"]
    }
    retrain = {
      description = "retrain.yml on the main branch: start the training pipeline and describe its execution"
      context     = "ref:refs/heads/${var.github_branch}"
      workflow    = "retrain.yml"
      duration    = 14400 # retrain.yml waits up to 4 h for the pipeline
      policies    = ["retrain"]
    }
  }

  # Managed policies (each within 6,144 characters) by short name.
  policy_documents = merge(
    { for env in local.environments : "${env}-apply-core" => module.access[env].apply_core },
    { for env in local.environments : "${env}-apply-edge" => module.access[env].apply_edge },
    { for env in local.environments : "${env}-release" => module.access[env].release },
    { "${var.registry_environment}-build" = module.access[var.registry_environment].build },
    { approve = data.aws_iam_policy_document.approve.json, retrain = data.aws_iam_policy_document.retrain.json },
  )
  role_policies = merge([
    for role, spec in local.github_roles : { for policy in spec.policies : "${role}/${policy}" => { role = role, policy = policy } }
  ]...)
}

data "aws_iam_policy_document" "github_trust" {
  #checkov:skip=CKV_AWS_358:The subject is pinned exactly (StringEquals, repo:OWNER/REPO first, no wildcard); checkov cannot read it through for_each. tests/integration/test_iam_policies.py and the emulator read-back check it.
  for_each = local.github_roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc}:aud"
      values   = ["sts.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.github_oidc}:sub"
      values   = ["repo:${var.github_repository}:${each.value.context}:job_workflow_ref:${local.workflow}/${each.value.workflow}@${local.ref}"]
    }
  }
}

resource "aws_iam_role" "github" {
  for_each             = local.github_roles
  name                 = "${var.project}-github-${each.key}"
  description          = each.value.description
  assume_role_policy   = data.aws_iam_policy_document.github_trust[each.key].json
  max_session_duration = each.value.duration
  permissions_boundary = local.boundary_arn
  depends_on           = [aws_iam_openid_connect_provider.github, aws_iam_policy.boundary]
}

resource "aws_iam_policy" "github" {
  for_each    = local.policy_documents
  name        = "${var.project}-${each.key}"
  description = "GitHub workflows: ${each.key}"
  policy      = each.value
}

resource "aws_iam_role_policy_attachment" "github" {
  for_each   = local.role_policies
  role       = aws_iam_role.github[each.value.role].name
  policy_arn = "${local.arn}:iam::${local.account_id}:policy/${var.project}-${each.value.policy}"
  depends_on = [aws_iam_policy.github]
}

# The manual gate in IAM: only the production role (reviewed in GitHub environment `production`)
# changes a version's approval status in the registry.
data "aws_iam_policy_document" "approve" {
  statement {
    sid       = "ApproveVersions"
    actions   = ["sagemaker:UpdateModelPackage", "sagemaker:DescribeModelPackage"]
    resources = ["${local.arn}:sagemaker:${local.region}:${local.account_id}:model-package/${local.registry_prefix}-models/*"]
  }
}

# The scheduled retrain: start the pipeline, follow its execution, read the evaluation it wrote and
# the staging stack's outputs. It cannot register, approve or deploy anything itself.
data "aws_iam_policy_document" "retrain" {
  statement {
    sid       = "StartAndDescribePipeline"
    actions   = ["sagemaker:StartPipelineExecution", "sagemaker:DescribePipeline", "sagemaker:DescribePipelineExecution", "sagemaker:ListPipelineExecutionSteps"]
    resources = ["${local.arn}:sagemaker:${local.region}:${local.account_id}:pipeline/${var.project}-training", "${local.arn}:sagemaker:${local.region}:${local.account_id}:pipeline/${var.project}-training/*"]
  }

  statement {
    sid       = "DescribeEvaluationJob"
    actions   = ["sagemaker:DescribeProcessingJob"]
    resources = ["${local.arn}:sagemaker:${local.region}:${local.account_id}:processing-job/pipelines-*"]
  }

  statement {
    sid       = "ReadEvaluation"
    actions   = ["s3:GetObject"]
    resources = ["${local.arn}:s3:::${local.registry_prefix}-artifacts-${local.account_id}/evaluation/*"]
  }

  statement {
    sid       = "DecryptEvaluationThroughS3"
    actions   = ["kms:Decrypt"]
    resources = ["${local.arn}:kms:${local.region}:${local.account_id}:key/*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${local.registry_prefix}"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadStagingOutputs"
    actions   = ["s3:GetObject"]
    resources = ["${local.arn}:s3:::${var.tf_state_bucket}/${var.project}/${var.registry_environment}/*"]
  }

  statement {
    sid       = "ListStagingState"
    actions   = ["s3:ListBucket"]
    resources = ["${local.arn}:s3:::${var.tf_state_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.project}/${var.registry_environment}/*"]
    }
  }
}
