"""Settings read from the environment (cheap enough to read on every request, so tests can vary them)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from classify_api.image_contract import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "classify-api"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "CatDog"
# The function's own per-version counts, one EMF record each (handler.count_for_version): Lambda's Errors
# counts only a handler that raised or timed out, never an error answer, so these are what a canary
# reads of its candidate. The release names them again (mlops/backends/function_metrics.py: it cannot
# import this package); tests/unit/test_canary_signals_aws.py holds the two to the same names.
SERVER_ERRORS_METRIC = "ServerErrors"  # answers with a 5xx status, whatever produced them
MODEL_ERRORS_METRIC = "ModelCallErrors"  # model calls that ended in a 5xx answer
VERSION_DIMENSIONS = ("service", "FunctionName", "FunctionVersion")
DEFAULT_MAX_IMAGE_BYTES = MAX_IMAGE_BYTES
DEFAULT_MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
_TRUE = {"1", "true", "yes", "on"}


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in _TRUE


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def running_in_lambda() -> bool:
    """True inside a Lambda execution environment (the runtime API is only set there)."""
    return bool(os.environ.get("AWS_LAMBDA_RUNTIME_API"))


@dataclass(frozen=True)
class UrlPolicy:
    """What an `image_url` may point at and how long fetching it may take."""

    allow_http: bool = False
    allow_loopback: bool = False
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    timeout_seconds: float = 5.0
    max_redirects: int = 3


@dataclass(frozen=True)
class Settings:
    endpoint_name: str | None
    max_image_bytes: int
    max_image_pixels: int
    prediction_table: str | None
    url_policy: UrlPolicy


def load_settings() -> Settings:
    max_bytes = env_int("MAX_IMAGE_BYTES", DEFAULT_MAX_IMAGE_BYTES)
    # Loopback image URLs exist only for local tests; they are never honoured inside Lambda,
    # where loopback hosts the runtime API.
    allow_loopback = env_flag("IMAGE_URL_ALLOW_LOOPBACK") and not running_in_lambda()
    return Settings(
        endpoint_name=os.environ.get("ENDPOINT_NAME") or None,
        max_image_bytes=max_bytes,
        max_image_pixels=env_int("MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS),
        prediction_table=os.environ.get("PREDICTION_TABLE") or None,
        url_policy=UrlPolicy(
            allow_http=env_flag("ALLOW_HTTP_IMAGE_URLS"),
            allow_loopback=allow_loopback,
            max_bytes=max_bytes,
            timeout_seconds=env_float("IMAGE_URL_TIMEOUT_SECONDS", 5.0),
            max_redirects=env_int("IMAGE_URL_MAX_REDIRECTS", 3),
        ),
    )
