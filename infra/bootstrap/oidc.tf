# GitHub's OIDC provider: the only way a workflow gets AWS credentials (no access keys anywhere).
resource "aws_iam_openid_connect_provider" "github" {
  url             = "https://${local.github_oidc}"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
}
