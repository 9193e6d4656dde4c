# Releases (and the promotion lock, as items of the same table) and the optional prediction log.
# Key schema: pk (S) / sk (S). Releases: pk = "STAGE#<stage>", sk = "RELEASE#<id>"; the lock is the
# item pk = "LOCK#<stage>", sk = "LOCK", taken with a conditional write and an expires_at deadline.
resource "aws_dynamodb_table" "releases" {
  name                        = "${local.prefix}-releases"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.environment == "production"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}

resource "aws_dynamodb_table" "predictions" {
  count                       = var.enable_prediction_log ? 1 : 0
  name                        = "${local.prefix}-predictions"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "request_id"
  deletion_protection_enabled = var.environment == "production"

  attribute {
    name = "request_id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.main.arn
  }
}
