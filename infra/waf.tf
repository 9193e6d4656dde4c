# The API stage's web ACL. The public page's key is not authentication, so this is what stands
# between the API and abuse: one payload limit before Lambda, a per-IP rate limit, and AWS managed
# rule groups. Blocked requests get a JSON body with the status the API itself would give.
locals {
  # The largest request body the API accepts: 4.4 MiB, the largest image whose base64 form (API
  # Gateway encodes binary bodies) still fits Lambda's 6 MB synchronous payload with the event's
  # headers. The image contract's MAX_IMAGE_BYTES (serving/image_contract.py) is the same number.
  max_body_bytes = 4613734
  # Content-Length greater than max_body_bytes (tests/unit/test_infra_static.py checks it digit by digit).
  body_over_limit_regex = "^0*([1-9][0-9]{7,}|[5-9][0-9]{6}|4[7-9][0-9]{5}|46[2-9][0-9]{4}|461[4-9][0-9]{3}|4613[8-9][0-9]{2}|46137[4-9][0-9]|461373[5-9])$"

  # Managed groups, with the body inspections of the common rule set counted rather than blocking:
  # bodies are images (binary) or a small JSON document that the function validates itself.
  managed_rule_groups = {
    AWSManagedRulesAmazonIpReputationList = { priority = 30, count = [] }
    AWSManagedRulesCommonRuleSet = {
      priority = 40
      count    = ["SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY", "GenericRFI_BODY", "EC2MetaDataSSRF_BODY"]
    }
  }
}

resource "aws_wafv2_web_acl" "api" {
  #checkov:skip=CKV2_AWS_31:Every rule publishes CloudWatch metrics and sampled requests; full logging needs an account-wide CloudWatch Logs resource policy, which the deploy roles may not write.
  name        = "${local.prefix}-api"
  description = "Payload limit, per-IP rate limit and managed rules for the ${var.environment} API"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  custom_response_body {
    key          = "too-large"
    content_type = "APPLICATION_JSON"
    content      = jsonencode({ error = "request body too large: the limit is ${local.max_body_bytes} bytes (4.4 MiB)" })
  }

  custom_response_body {
    key          = "length-required"
    content_type = "APPLICATION_JSON"
    content      = jsonencode({ error = "a POST needs a Content-Length header" })
  }

  custom_response_body {
    key          = "rate-limited"
    content_type = "APPLICATION_JSON"
    content      = jsonencode({ error = "too many requests from this address: retry in a few minutes" })
  }

  rule {
    name     = "body-too-large"
    priority = 10
    action {
      block {
        custom_response {
          response_code            = 413
          custom_response_body_key = "too-large"
        }
      }
    }
    statement {
      regex_match_statement {
        regex_string = local.body_over_limit_regex
        field_to_match {
          single_header {
            name = "content-length"
          }
        }
        text_transformation {
          priority = 0
          type     = "NONE"
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-body-too-large"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "length-required"
    priority = 15
    action {
      block {
        custom_response {
          response_code            = 411
          custom_response_body_key = "length-required"
        }
      }
    }
    statement {
      and_statement {
        statement {
          byte_match_statement {
            search_string         = "POST"
            positional_constraint = "EXACTLY"
            field_to_match {
              method {}
            }
            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
        statement {
          not_statement {
            statement {
              size_constraint_statement {
                comparison_operator = "GT"
                size                = 0
                field_to_match {
                  single_header {
                    name = "content-length"
                  }
                }
                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-length-required"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "per-ip-rate"
    priority = 20
    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = "rate-limited"
        }
      }
    }
    statement {
      rate_based_statement {
        limit                 = var.api_ip_rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-per-ip-rate"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = local.managed_rule_groups
    content {
      name     = rule.key
      priority = rule.value.priority
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.key
          dynamic "rule_action_override" {
            for_each = rule.value.count
            content {
              name = rule_action_override.value
              action_to_use {
                count {}
              }
            }
          }
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.prefix}-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  # Written out (not in the dynamic block above) so that scanners see them. Anonymous IPs: VPNs,
  # Tor and proxies are blocked; hosting providers only counted (GitHub's runners, which run the
  # smoke tests, are in a hosting provider's ranges).
  rule {
    name     = "AWSManagedRulesAnonymousIpList"
    priority = 45
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
        rule_action_override {
          name = "HostingProviderIPList"
          action_to_use {
            count {}
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-AWSManagedRulesAnonymousIpList"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 50
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-AWSManagedRulesKnownBadInputsRuleSet"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.prefix}-api"
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  resource_arn = aws_api_gateway_stage.live.arn
  web_acl_arn  = aws_wafv2_web_acl.api.arn
}
