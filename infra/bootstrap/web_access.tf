# One CloudFront origin access control per environment's web bucket. An access control has neither
# a name in its ARN nor tags, so IAM cannot limit a role to one environment's: they are created here,
# once, and the environment stacks refer to them (web_origin_access_control_id) without changing them.
resource "aws_cloudfront_origin_access_control" "web" {
  for_each                          = toset(local.environments)
  name                              = "${var.project}-${each.key}-web"
  description                       = "CloudFront reads the ${each.key} web bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}
