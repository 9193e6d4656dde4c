"""Helpers for the emulator's own tests: a running emulator, a function package, a model in S3."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REGION = "eu-west-1"
ACCOUNT = "123456789012"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)

HANDLER = """
import json, os

def handler(event, context):
    if (event.get("queryStringParameters") or {}).get("fail") == "1" or event.get("fail"):
        raise RuntimeError("asked to fail")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({
            "release": os.environ.get("RELEASE", ""),
            "version": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
            "stage_variables": event.get("stageVariables"),
            "base64": event.get("isBase64Encoded"),
            "path": event.get("path"),
        }),
    }
"""


def function_zip(source: str = HANDLER) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def create_function(emu: Any, name: str, release: str) -> str:
    role = emu.client("iam").create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    emu.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": function_zip()},
        Environment={"Variables": {"RELEASE": release}},
        Timeout=10,
    )
    return role


def wait_until(check: Callable[[], Any], timeout: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s")


def put_model(emu: Any, bucket: str, key: str, tar_path: Path) -> str:
    emu.client("s3").put_object(Bucket=bucket, Key=key, Body=tar_path.read_bytes())
    return f"s3://{bucket}/{key}"


def endpoint_status(sm: Any, name: str) -> dict:
    return sm.describe_endpoint(EndpointName=name)
