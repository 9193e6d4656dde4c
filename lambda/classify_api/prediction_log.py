"""Optional prediction log: one DynamoDB item per answered request (PREDICTION_TABLE; unset = off).

Writing the log must never fail a request: errors are logged as warnings and swallowed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.client import BaseClient
from botocore.config import Config

from classify_api.config import SERVICE_NAME, env_int

logger = Logger(service=SERVICE_NAME, child=True)
_client: BaseClient | None = None


def get_client() -> BaseClient:
    global _client
    if _client is None:
        retries = {"mode": "standard", "total_max_attempts": 2}
        config = Config(connect_timeout=1, read_timeout=2, retries=retries)
        _client = boto3.client("dynamodb", config=config)
    return _client


def set_client(client: BaseClient | None) -> None:
    global _client
    _client = client


def build_item(request_id: str, answer: dict[str, Any], release: str | None) -> dict[str, dict[str, str]]:
    """The DynamoDB item (low-level attribute-value form) for one answered prediction."""
    now = time.time()
    item = {
        "request_id": {"S": request_id},
        "timestamp": {"S": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")},
        "label": {"S": str(answer["label"])},
        "confidence": {"N": repr(float(answer["confidence"]))},
        "model_version": {"S": str(answer["model_version"])},
        "latency_ms": {"N": repr(float(answer["latency_ms"]))},
        "model_latency_ms": {"N": repr(float(answer["model_latency_ms"]))},
        # Lets the table expire old rows when TTL is enabled on this attribute.
        "expires_at": {"N": str(int(now) + 86400 * env_int("PREDICTION_TTL_DAYS", 30))},
    }
    if release:
        item["release"] = {"S": release}
    return item


def log_prediction(table: str, request_id: str, answer: dict[str, Any], release: str | None) -> bool:
    """Write the item; True if it was stored. Never raises."""
    try:
        get_client().put_item(TableName=table, Item=build_item(request_id, answer, release))
    except Exception as exc:  # the log is best effort by design
        logger.warning("prediction log write failed", extra={"table": table, "error": repr(exc)[:300]})
        return False
    return True
