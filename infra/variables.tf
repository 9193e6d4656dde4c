variable "project" {
  description = "Short project name; every resource name starts with <project>-<environment>."
  type        = string
  default     = "catdog"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.project))
    error_message = "project must be 2-16 lowercase letters, digits or dashes."
  }
}

variable "environment" {
  description = "Deployment environment: staging or production."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "aws_region" {
  description = "AWS region of every regional resource."
  type        = string
  default     = "eu-west-1"
}

variable "github_repository" {
  description = "GitHub repository (OWNER/REPO) deploying this stack (a tag on every resource)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like OWNER/REPO."
  }
}

variable "registry_environment" {
  description = "Environment that owns the model registry (model package group) and the serving image repository; empty means this one. Production in the same account reads staging's."
  type        = string
  default     = ""
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group."
  type        = number
  default     = 365
}

variable "artifact_noncurrent_days" {
  description = "Days before non-current versions of artifact objects expire."
  type        = number
  default     = 90
}

variable "lambda_zip_path" {
  description = "Lambda package used when the function is first created (built by `make lambda-zip`); releases replace the code later."
  type        = string
  default     = "../build/lambda.zip"
}

variable "lambda_runtime" {
  description = "Python runtime of the API function."
  type        = string
  default     = "python3.12"
}

variable "lambda_memory_mb" {
  description = "Memory of the API function."
  type        = number
  default     = 512
}

variable "lambda_timeout_seconds" {
  description = "Timeout of the API function (API Gateway gives up after 29 s)."
  type        = number
  default     = 15
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of the API function; -1 leaves it unreserved (new accounts have too low a quota to reserve)."
  type        = number
  default     = -1
}

variable "enable_prediction_log" {
  description = "Create the DynamoDB prediction log table and let the function write to it."
  type        = bool
  default     = false
}

variable "prediction_log_ttl_days" {
  description = "Days a prediction log item lives (DynamoDB TTL on expires_at), read by the function."
  type        = number
  default     = 30
}

variable "api_throttle_rate_limit" {
  description = "Steady-state requests per second of the web page's usage plan and of each programmatic client."
  type        = number
  default     = 20
}

variable "api_throttle_burst_limit" {
  description = "Burst of requests of the web page's usage plan and of each programmatic client."
  type        = number
  default     = 40
}

variable "api_smoke_rate_limit" {
  description = "Steady-state requests per second of the smoke tests' usage plan (burst: twice this)."
  type        = number
  default     = 2
}

variable "api_smoke_quota_per_day" {
  description = "Requests per day of the smoke tests' key."
  type        = number
  default     = 2000
}

variable "api_ip_rate_limit" {
  description = "Requests one IP address may send in any 5-minute window before the web ACL blocks it (429)."
  type        = number
  default     = 500
}

variable "api_quota_per_day" {
  description = "Requests per day allowed for each programmatic client's key (usage plan clients)."
  type        = number
  default     = 10000
}

variable "cors_allow_origin" {
  description = "Origin allowed by CORS, passed to the function; empty means the web distribution's URL."
  type        = string
  default     = ""
}

variable "endpoint_variant_name" {
  description = "Production variant name that promotion gives every endpoint config (the alarms watch it)."
  type        = string
  default     = "AllTraffic"
}

variable "alarm_latency_ms" {
  description = "Alarm when the endpoint's p90 ModelLatency stays above this many milliseconds."
  type        = number
  default     = 500
}

variable "alarm_lambda_duration_ms" {
  description = "Alarm when the function's p90 Duration stays above this many milliseconds."
  type        = number
  default     = 3000
}

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the alarm topic."
  type        = string
  default     = ""
}

variable "web_origin_access_control_id" {
  description = "CloudFront origin access control of this environment's web bucket, created by the bootstrap stack (output web_origin_access_control_ids): no deploy role can change another environment's."
  type        = string
  default     = ""
}

variable "web_price_class" {
  description = "CloudFront price class of the web page distribution."
  type        = string
  default     = "PriceClass_100"
}

variable "aws_endpoint_url" {
  description = "Testing only: URL of an AWS emulator that receives every API call. Empty for real AWS."
  type        = string
  default     = ""
}

variable "emulator" {
  description = "Testing only: skip the few resources the AWS emulator cannot manage (never set on real AWS)."
  type        = bool
  default     = false
}
