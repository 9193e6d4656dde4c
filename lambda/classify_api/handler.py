"""Lambda entry point: POST /predict and GET /health behind an API Gateway REST API (proxy, v1 events).

Entry: classify_api.handler.lambda_handler. Every answer is JSON; every failure is a 4xx/5xx
JSON body {"error": ..., "request_id": ...}, never a traceback.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from classify_api import endpoint, prediction_log, shadow
from classify_api.config import (
    METRICS_NAMESPACE,
    MODEL_ERRORS_METRIC,
    SERVER_ERRORS_METRIC,
    SERVICE_NAME,
    VERSION_DIMENSIONS,
    load_settings,
)
from classify_api.errors import ApiError
from classify_api.request_parse import extract_image

ROUTES: dict[str, tuple[str, ...]] = {"/predict": ("POST",), "/health": ("GET",)}
JSON_TYPE = "application/json"

# Health checks and preflights publish no metrics; that is expected, not worth a warning each time.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=SERVICE_NAME)
# Only AWS SDK calls are traced; patching every library the SDK can patch costs cold-start time.
tracer = Tracer(service=SERVICE_NAME, patch_modules=["botocore"])
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def _cors() -> CORSConfig:
    origins = [o.strip() for o in os.environ.get("CORS_ALLOW_ORIGIN", "*").split(",") if o.strip()] or ["*"]
    return CORSConfig(allow_origin=origins[0], extra_origins=origins[1:], expose_headers=["X-Request-Id"], max_age=600)


# API_BASE_PATH: a custom-domain base path (e.g. /v1) that arrives in front of the routes.
_base_path = os.environ.get("API_BASE_PATH", "").rstrip("/")
app = APIGatewayRestResolver(cors=_cors(), strip_prefixes=[_base_path] if _base_path else None)

# Build the sagemaker-runtime client during cold start when the environment allows it.
try:
    endpoint.get_client()
except Exception as exc:  # e.g. no region outside Lambda: built on first use instead
    logger.debug("sagemaker-runtime client deferred", extra={"reason": repr(exc)})


def _request_id() -> str:
    current = getattr(app, "current_event", None)
    event = current.raw_event if current is not None else {}
    request_id = (event.get("requestContext") or {}).get("requestId")
    if not request_id:
        request_id = getattr(getattr(app, "lambda_context", None), "aws_request_id", None)
    return str(request_id or "unknown")


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    request_id = payload.setdefault("request_id", _request_id())
    return Response(
        status_code=status,
        content_type=JSON_TYPE,
        body=json.dumps(payload, separators=(",", ":")),
        headers={"X-Request-Id": request_id, "Cache-Control": "no-store", **(headers or {})},
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response[str]:
    return _json(status, {"error": message}, headers)


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def count_for_version(name: str, context: LambdaContext | None) -> None:
    """One `name` for the function version that ran, written at once as its own EMF record with
    VERSION_DIMENSIONS: a canary reads its candidate's version by these, as Lambda's own Errors misses
    every failure the handler answers."""
    function = getattr(context, "function_name", "") or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
    version = getattr(context, "function_version", "") or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "")
    values = (SERVICE_NAME, str(function or "unknown"), str(version or "$LATEST"))
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        for dimension, value in zip(VERSION_DIMENSIONS, values, strict=True):
            metric.add_dimension(name=dimension, value=value)


@app.exception_handler(ApiError)  # type: ignore[untyped-decorator]  # powertools leaves it unannotated
def _api_error(exc: ApiError) -> Response[str]:
    _count(exc.metric)
    log = logger.warning if exc.status >= 500 else logger.info
    log("request refused", extra={"status": exc.status, "error": exc.message})
    return _error(exc.status, exc.message)


@app.not_found
def _not_found(_exc: NotFoundError) -> Response[str]:
    event = app.current_event
    path = (event.path or "/").rstrip("/") or "/"  # routes match with or without a trailing slash
    allowed = ROUTES.get(path)
    if allowed:
        _count("BadRequests")
        allow = ", ".join((*allowed, "OPTIONS"))
        return _error(405, f"method {event.http_method} not allowed on {path}; use {allow}", {"Allow": allow})
    _count("NotFound")
    return _error(404, f"not found: no route for {event.http_method} {path}")


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]  # powertools leaves it unannotated
def _unexpected(exc: Exception) -> Response[str]:
    if isinstance(exc, ServiceError):
        return _error(exc.status_code, str(exc.msg))
    logger.exception("unhandled error")
    _count("InternalErrors")
    return _error(500, "internal error")


@app.get("/health")
def health() -> Response[str]:
    settings = load_settings()
    stage = app.current_event.stage_variables
    payload: dict[str, Any] = {
        "status": "ok",
        "service": SERVICE_NAME,
        "endpoint": stage.get("endpointName") or settings.endpoint_name,
        "max_image_bytes": settings.max_image_bytes,
    }
    if stage.get("release"):
        payload["release"] = stage["release"]
    return _json(200, payload)


@app.post("/predict")
def predict() -> Response[str]:
    started = app.context.get("started") or time.perf_counter()
    settings = load_settings()
    event = app.current_event
    stage = event.stage_variables
    endpoint_name = stage.get("endpointName") or settings.endpoint_name
    if not endpoint_name:
        raise ApiError(500, "service misconfigured: no model endpoint name", metric="ConfigErrors")
    image = extract_image(event.headers, event.body, bool(event.is_base64_encoded), settings)
    context: LambdaContext | None = app.lambda_context  # None when resolved without a context
    remaining = context.get_remaining_time_in_millis() if context is not None else None
    mirror = shadow.start(stage, settings.endpoint_name, endpoint_name, image.data, image.info.content_type, remaining)
    request_id = _request_id()
    version = str(getattr(context, "function_version", "") or "")
    try:
        answer, model_ms = endpoint.invoke(endpoint_name, image.data, image.info.content_type)
    except ApiError as exc:  # the candidate's answer is still compared with the live failure
        if exc.status >= 500:
            count_for_version(MODEL_ERRORS_METRIC, context)
        shadow.finish(
            mirror, {"status": exc.status, "label": None, "ms": None}, request_id, version, stage.get("release", "")
        )
        raise
    payload: dict[str, Any] = {
        **answer,
        "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
        "model_latency_ms": round(model_ms, 3),
        "request_id": request_id,
    }
    release = stage.get("release")
    if release:
        payload["release"] = release
    metrics.add_metric(name="PredictionLatency", unit=MetricUnit.Milliseconds, value=payload["latency_ms"])
    metrics.add_metric(name="ModelLatency", unit=MetricUnit.Milliseconds, value=payload["model_latency_ms"])
    with single_metric(
        name="Predictions",
        unit=MetricUnit.Count,
        value=1,
        namespace=METRICS_NAMESPACE,
        default_dimensions=metrics.default_dimensions,
    ) as metric:
        metric.add_dimension(name="label", value=answer["label"])
    tracer.put_annotation(key="label", value=answer["label"])
    tracer.put_annotation(key="model_version", value=answer["model_version"])
    logger.info(
        "prediction",
        extra={
            "label": answer["label"],
            "confidence": answer["confidence"],
            "model_version": answer["model_version"],
            "source": image.source,
            "image_format": image.info.format,
            "latency_ms": payload["latency_ms"],
            "model_latency_ms": payload["model_latency_ms"],
        },
    )
    if settings.prediction_table:
        prediction_log.log_prediction(settings.prediction_table, request_id, payload, release)
    live = {"status": 200, "label": answer["label"], "ms": round(model_ms, 1), "model_version": answer["model_version"]}
    shadow.finish(mirror, live, request_id, version, release or "")
    return _json(200, payload)


def _fallback_error(event: Any) -> dict[str, Any]:
    """A JSON 500 for events the resolver itself could not handle (malformed integration events)."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = str(context.get("requestId") or "unknown") if isinstance(context, dict) else "unknown"
    return {
        "statusCode": 500,
        "headers": {"Content-Type": JSON_TYPE, "X-Request-Id": request_id},
        "body": json.dumps({"error": "internal error: malformed event", "request_id": request_id}),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app.append_context(started=time.perf_counter())  # type: ignore[no-untyped-call]  # unannotated in powertools
    try:
        response = app.resolve(event, context)
    except Exception:
        logger.exception("event could not be resolved")
        app.clear_context()  # type: ignore[no-untyped-call]  # unannotated in powertools
        response = _fallback_error(event)
    if int(response.get("statusCode") or 0) >= 500:
        count_for_version(SERVER_ERRORS_METRIC, context)
    return response
