"""Shadow testing on AWS: a copy of each POST /predict goes to the candidate's endpoint; its answer never
reaches a client.

While the stage variable `shadowEndpoint` is set (`mlops promote --strategy shadow` sets it, only
ever to `<ENDPOINT_NAME>-candidate`), the live function sends the image to that endpoint on a side
thread while it calls its own, answers the client with its own answer, waits for the candidate's
at most SHADOW_TIMEOUT_SECONDS (3 s) from the start, and writes one `shadow pair` record with both
answers to its log, which the release reads back. Any other value is refused: logged, nothing is
mirrored. Nothing here can change or fail the client's answer.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from botocore.client import BaseClient
from botocore.config import Config

from classify_api import endpoint
from classify_api.config import SERVICE_NAME, env_float
from classify_api.errors import ApiError

VARIABLE = "shadowEndpoint"
SUFFIX = "-candidate"
RECORD = "shadow pair"  # the message the release filters the function's log on

logger = Logger(service=SERVICE_NAME, child=True)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow")
_client: BaseClient | None = None


def timeout_seconds() -> float:
    return max(0.1, env_float("SHADOW_TIMEOUT_SECONDS", 3.0))


def get_client() -> BaseClient:
    """A sagemaker-runtime client of its own: one attempt, reads bounded by the wait, so a slow
    candidate never holds a thread longer than a client would wait for it."""
    global _client
    if _client is None:
        wait = timeout_seconds()
        config = Config(
            connect_timeout=min(1.0, wait), read_timeout=wait, retries={"mode": "standard", "total_max_attempts": 1}
        )
        _client = boto3.client("sagemaker-runtime", config=config)
    return _client


def set_client(client: BaseClient | None) -> None:
    global _client
    _client = client


def target(stage_variables: dict[str, str] | None, own_endpoint: str | None, live_endpoint: str) -> str | None:
    """The endpoint to mirror to: the stage's `shadowEndpoint` when it is exactly `<ENDPOINT_NAME>-candidate`
    (the function's own environment, not the stage, names the base) and not the endpoint answering the
    client; None otherwise (a refused value is logged)."""
    requested = (stage_variables or {}).get(VARIABLE) or ""
    if not requested:
        return None
    allowed = f"{own_endpoint}{SUFFIX}" if own_endpoint else ""
    if requested != allowed or requested == live_endpoint:
        logger.warning("shadow endpoint refused", extra={"shadow_endpoint": requested[:80], "allowed": allowed})
        return None
    return requested


@dataclass
class Mirror:
    """One mirrored request in flight."""

    endpoint: str
    future: Future[Any]
    started: float
    wait: float


def _call(name: str, data: bytes, content_type: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        answer, ms = endpoint.invoke(name, data, content_type, client=get_client())
    except ApiError as exc:
        ms = (time.perf_counter() - started) * 1000.0
        return {"status": exc.status, "label": None, "ms": round(ms, 1), "error": exc.message[:200]}
    except Exception as exc:  # never escapes: the candidate's failure is data, not the client's problem
        ms = (time.perf_counter() - started) * 1000.0
        return {"status": 500, "label": None, "ms": round(ms, 1), "error": type(exc).__name__}
    return {"status": 200, "label": answer["label"], "ms": round(ms, 1), "model_version": answer["model_version"]}


def start(
    stage_variables: dict[str, str] | None,
    own_endpoint: str | None,
    live_endpoint: str,
    data: bytes,
    content_type: str,
    remaining_ms: int | None = None,
) -> Mirror | None:
    """Send the image to the shadow endpoint on a side thread; None when the stage mirrors nothing."""
    try:
        name = target(stage_variables, own_endpoint, live_endpoint)
        if not name:
            return None
        wait = timeout_seconds()
        if remaining_ms:  # the function must still answer its client in time
            wait = max(0.0, min(wait, remaining_ms / 1000.0 - 1.0))
        return Mirror(name, _pool.submit(_call, name, data, content_type), time.perf_counter(), wait)
    except Exception as exc:
        logger.warning("shadow copy not sent", extra={"error": repr(exc)[:200]})
        return None


def finish(mirror: Mirror | None, live: dict[str, Any], request_id: str, function_version: str, release: str) -> None:
    """Wait for the candidate's answer (never past the bound) and log the pair; never raises."""
    if mirror is None:
        return
    try:
        left = mirror.wait - (time.perf_counter() - mirror.started)
        try:
            candidate = mirror.future.result(timeout=max(0.0, left))
        except FutureTimeout:
            ms = round(mirror.wait * 1000.0, 1)
            candidate = {"status": 504, "label": None, "ms": ms, "error": f"no answer within {mirror.wait:.1f} s"}
        pair = {
            "request_id": request_id,
            "live_version": function_version,
            "candidate_endpoint": mirror.endpoint,
            "release": release,
            "live": live,
            "candidate": candidate,
        }
        logger.info(RECORD, extra={"shadow": pair})
    except Exception as exc:
        logger.warning("shadow record not written", extra={"error": repr(exc)[:200]})
