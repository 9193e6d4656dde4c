# The web page: a private, KMS-encrypted bucket served only through CloudFront (origin access control).
resource "aws_s3_bucket" "web" {
  #checkov:skip=CKV_AWS_144:The page is rebuilt from the repository; cross-region replication is not needed.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events of the web bucket.
  bucket = "${local.prefix}-web-${local.account_id}"
}

resource "aws_s3_bucket_ownership_controls" "web" {
  bucket = aws_s3_bucket.web.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "web" {
  bucket                  = aws_s3_bucket.web.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "web" {
  bucket = aws_s3_bucket.web.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "web" {
  bucket = aws_s3_bucket.web.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "web" {
  bucket = aws_s3_bucket.web.id
  rule {
    id     = "expire-old-page-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
  depends_on = [aws_s3_bucket_versioning.web]
}

resource "aws_s3_bucket_logging" "web" {
  bucket        = aws_s3_bucket.web.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3/web/"
  depends_on    = [aws_s3_bucket_policy.logs]
}


locals {
  web_origin_id = "web-bucket"
  # AWS managed policies: CachingOptimized and SecurityHeadersPolicy.
  managed_cache_policy_caching_optimized = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  managed_security_headers_policy        = "67f7725c-6f97-4210-82d7-5512b31e9d03"
}

# The emulator drops the origin access control and returns defaults it was not given (a permanent
# diff), so emulated runs leave the distribution out.
resource "aws_cloudfront_distribution" "web" {
  count = var.emulator ? 0 : 1
  #checkov:skip=CKV_AWS_68:Serves one static file (GET/HEAD only) from a private bucket: nothing to inject into or drain; the API it calls has its own web ACL (waf.tf).
  #checkov:skip=CKV2_AWS_47:No code runs behind the distribution (a static S3 object), so there is nothing Log4j could reach; the API's web ACL has the KnownBadInputs rule set.
  #checkov:skip=CKV_AWS_174:Served on the default *.cloudfront.net certificate, whose TLS policy CloudFront fixes.
  #checkov:skip=CKV2_AWS_42:No custom domain; the default CloudFront certificate is used.
  #checkov:skip=CKV_AWS_310:A single S3 origin; an origin group adds nothing for a static page.
  #checkov:skip=CKV2_AWS_32:The AWS managed SecurityHeadersPolicy is attached by ID (response_headers_policy_id); the check only recognises a policy resource.
  #checkov:skip=CKV_AWS_374:The page is public by design; no geographic restriction is required.
  enabled             = true
  is_ipv6_enabled     = true
  comment             = "${local.prefix} web page"
  default_root_object = "index.html"
  price_class         = var.web_price_class

  origin {
    origin_id                = local.web_origin_id
    domain_name              = aws_s3_bucket.web.bucket_regional_domain_name
    origin_access_control_id = var.web_origin_access_control_id
  }

  default_cache_behavior {
    target_origin_id           = local.web_origin_id
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.managed_cache_policy_caching_optimized
    response_headers_policy_id = local.managed_security_headers_policy
  }

  logging_config {
    bucket          = aws_s3_bucket.logs.bucket_domain_name
    prefix          = "cloudfront/web/"
    include_cookies = false
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = true
  }

  lifecycle {
    precondition {
      condition     = var.web_origin_access_control_id != ""
      error_message = "Set web_origin_access_control_id in env/<environment>.tfvars (bootstrap output web_origin_access_control_ids)."
    }
  }

  depends_on = [aws_s3_bucket_ownership_controls.logs]
}

locals {
  web_url = length(aws_cloudfront_distribution.web) > 0 ? "https://${aws_cloudfront_distribution.web[0].domain_name}" : ""
}

data "aws_iam_policy_document" "web" {
  dynamic "statement" {
    for_each = aws_cloudfront_distribution.web
    content {
      sid       = "CloudFrontReadsPage"
      actions   = ["s3:GetObject"]
      resources = ["${aws_s3_bucket.web.arn}/*"]
      principals {
        type        = "Service"
        identifiers = ["cloudfront.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "AWS:SourceArn"
        values   = [statement.value.arn]
      }
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.web.arn, "${aws_s3_bucket.web.arn}/*"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "web" {
  bucket     = aws_s3_bucket.web.id
  policy     = data.aws_iam_policy_document.web.json
  depends_on = [aws_s3_bucket_public_access_block.web]
}
