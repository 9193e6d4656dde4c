# The key only the pipeline's registration signs with: the Evaluate job signs the hashes the Register
# step records (training/attestation.py), and promotion verifies that signature with the public half
# before CreateModel. Administered in this stack alone (an administrator's apply): its alias is not
# alias/<project>-<environment> and its environment tag names no environment, so no deploy role's KMS
# rights (modules/stack_access: by that alias, by that tag, or on untagged keys) reach it.
locals {
  signing_alias = "alias/${local.registry_prefix}-registration-signing"
  pipeline_role = "${local.arn}:iam::${local.account_id}:role/${local.registry_prefix}-pipeline"
  release_roles = [for env in local.environments : "${local.arn}:iam::${local.account_id}:role/${var.project}-github-deploy-${env}"]
}

resource "aws_kms_key" "registration_signing" {
  description              = "${local.registry_prefix}: signs registered model versions (ECDSA P-256); kms:Sign for the pipeline role only"
  key_usage                = "SIGN_VERIFY"
  customer_master_key_spec = "ECC_NIST_P256"
  deletion_window_in_days  = 30
  policy                   = data.aws_iam_policy_document.registration_signing.json
  tags                     = { environment = "bootstrap" }
  # The key policy names the roles: they exist first.
  depends_on = [aws_iam_role.exec, aws_iam_role.github]
}

resource "aws_kms_alias" "registration_signing" {
  name          = local.signing_alias
  target_key_id = aws_kms_key.registration_signing.key_id
}

# The account administers the key but cannot sign with it through IAM: kms:Sign is granted by this
# policy to the pipeline role alone (an identity policy elsewhere granting it has no effect).
data "aws_iam_policy_document" "registration_signing" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key; the account root keeps administration, not signing.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means this key; kms:Sign is granted to the pipeline role alone.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" means this key.
  statement {
    sid       = "AccountAdministersNotSigns"
    actions   = ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["${local.arn}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "PipelineSigns"
    actions   = ["kms:Sign"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.pipeline_role]
    }
  }

  statement {
    sid       = "ReleaseRolesVerify"
    actions   = ["kms:GetPublicKey", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = local.release_roles
    }
  }
}
