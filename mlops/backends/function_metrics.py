"""The counts the function writes of itself per version (lambda/classify_api/config.py, which ships alone
and cannot be imported here), as both backends' canaries read them: one name for each, kept in step with
the function's by a unit test (tests/unit/test_canary_signals_aws.py)."""

from __future__ import annotations

# As infra/lambda.tf sets POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME (the function's defaults).
NAMESPACE = "CatDog"
SERVICE = "classify-api"
VERSION_DIMENSIONS = ("service", "FunctionName", "FunctionVersion")
SERVER_ERRORS = "ServerErrors"  # answers with a 5xx status (Lambda's Errors counts none of them)
MODEL_ERRORS = "ModelCallErrors"  # model calls that ended in a 5xx answer
