"""The SageMaker runtime API's shape of an answer, so boto3's invoke_endpoint can call the server directly."""

from __future__ import annotations

import json
import re
from typing import Any

# POST /endpoints/{EndpointName}/invocations: what sagemaker-runtime InvokeEndpoint sends.
RUNTIME_PATH = re.compile(r"/endpoints/([^/]+)/invocations")


def runtime_answer(status: int, doc: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Wrap an answer as the SageMaker runtime API does: the model's refusals become ModelError (424)."""
    if status == 200:
        return 200, doc, {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
    if status == 503:
        return (
            429,
            {"message": doc.get("error", "model is loading")},
            {"x-amzn-ErrorType": "ModelNotReadyException"},
        )
    original = json.dumps(doc, separators=(",", ":"))
    side = "client" if status < 500 else "server"
    message = f'Received {side} error ({status}) from primary with message "{original}".'
    body = {"message": message, "OriginalStatusCode": status, "OriginalMessage": original}
    return 424, body, {"x-amzn-ErrorType": "ModelError"}
