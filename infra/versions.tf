terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket, key, region and the lock settings come from
  # `-backend-config=backends/<env>.s3.tfbackend` (see backends/*.example).
  # Local checks use `terraform init -backend=false`; the emulator test writes a local override.
  backend "s3" {}
}
