# The permissions boundary of every role this project has. A boundary grants nothing: it caps what
# the role's own policies can allow. It allows the services the project uses, denies every IAM write
# (so no role can change its own or another role's permissions, trust or boundary, nor create a
# role or policy), denies passing roles other than the project's, and denies the STS calls that
# would let a role become someone else.
data "aws_iam_policy_document" "boundary" {
  #checkov:skip=CKV_AWS_107:A boundary caps permissions; the roles' own policies grant the scoped actions.
  #checkov:skip=CKV_AWS_108:A boundary caps permissions; the roles' own policies grant the scoped actions.
  #checkov:skip=CKV_AWS_109:A boundary caps permissions; IAM writes are denied below.
  #checkov:skip=CKV_AWS_110:A boundary caps permissions; IAM writes are denied below.
  #checkov:skip=CKV_AWS_111:A boundary caps permissions; the roles' own policies grant the scoped actions.
  #checkov:skip=CKV_AWS_356:A boundary caps permissions; the roles' own policies name resources.
  #checkov:skip=CKV_AWS_283:A boundary caps permissions; the roles' own policies name resources.
  #checkov:skip=CKV_AWS_286:A boundary caps permissions; privilege escalation is denied below.
  #checkov:skip=CKV_AWS_287:A boundary caps permissions; the roles' own policies grant the scoped actions.
  #checkov:skip=CKV_AWS_288:A boundary caps permissions; the roles' own policies grant the scoped actions.
  #checkov:skip=CKV_AWS_289:A boundary caps permissions; IAM writes are denied below.
  #checkov:skip=CKV_AWS_290:A boundary caps permissions; the roles' own policies grant the scoped actions.
  #checkov:skip=CKV_AWS_355:A boundary caps permissions; the roles' own policies name resources.
  statement {
    sid = "ProjectServices"
    actions = [
      "s3:*", "sagemaker:*", "lambda:*", "apigateway:*", "logs:*", "ecr:*", "dynamodb:*", "kms:*",
      "cloudwatch:*", "events:*", "sns:*", "cloudfront:*", "wafv2:*", "xray:*", "secretsmanager:*",
      "iam:GetRole", "iam:PassRole",
    ]
    resources = ["*"]
  }

  statement {
    sid    = "NoIamWrites"
    effect = "Deny"
    actions = [
      "iam:Add*", "iam:Attach*", "iam:Change*", "iam:Create*", "iam:Deactivate*", "iam:Delete*",
      "iam:Detach*", "iam:Enable*", "iam:Put*", "iam:Remove*", "iam:Reset*", "iam:Resync*", "iam:Set*",
      "iam:Tag*", "iam:Untag*", "iam:Update*", "iam:Upload*",
    ]
    resources = ["*"]
  }

  statement {
    sid           = "PassOnlyProjectRoles"
    effect        = "Deny"
    actions       = ["iam:PassRole"]
    not_resources = ["${local.arn}:iam::${local.account_id}:role/${var.project}-*"]
  }

  statement {
    sid       = "NoOtherIdentities"
    effect    = "Deny"
    actions   = ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoleWithSAML", "sts:GetFederationToken"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "boundary" {
  name        = "${var.project}-boundary"
  description = "Permissions boundary of every ${var.project} role: no IAM writes, project roles only"
  policy      = data.aws_iam_policy_document.boundary.json
}
