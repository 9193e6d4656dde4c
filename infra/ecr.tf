# The serving image (ONNX Runtime model server) that SageMaker endpoints run.
resource "aws_ecr_repository" "serving" {
  count                = local.owns_registry ? 1 : 0
  name                 = local.ecr_repository_name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "serving" {
  count      = local.owns_registry ? 1 : 0
  repository = aws_ecr_repository.serving[0].name
  policy = jsonencode({
    rules = [
      {
        # An image matched by a rule is not considered by rules of lower priority, so this rule
        # (it expires only past 9,999 release images) shields every image a release
        # names: releases tag the image they pin by digest with release-<release id>.
        rulePriority = 1
        description  = "Keep every image a release names (tags release-*)"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["release-"]
          countType     = "imageCountMoreThan"
          countNumber   = 9999
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "Drop untagged layers after a week"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 3
        description  = "Keep the newest 50 other images (commit tags)"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = 50
        }
        action = { type = "expire" }
      },
    ]
  })
}

locals {
  ecr_repository_arn = "arn:${local.partition}:ecr:${local.region}:${local.account_id}:repository/${local.ecr_repository_name}"
  ecr_repository_url = "${local.account_id}.dkr.ecr.${local.region}.amazonaws.com/${local.ecr_repository_name}"
}
