"""Deliberately changed Lambda handlers: a broken one (a bad function version must never take traffic),
one that fails only for some clients (it passes the smoke tests, then breaches during the bake), one
that answers them 502 instead (a failed model call the handler answers: no function error), and a
wrapper that behaves like the real handler (a function-code change with the same model)."""

from __future__ import annotations


def real_handler(event: dict, context: object) -> dict:
    from classify_api.handler import lambda_handler  # imported in the function's own environment

    return lambda_handler(event, context)


def raising_handler(event: dict, context: object) -> dict:
    raise RuntimeError("injected fault: this handler always raises")


def fails_for_some_clients(event: dict, context: object) -> dict:
    """Raises for requests sent with `X-Client: mobile` (the smoke tests never send it)."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if headers.get("x-client") == "mobile":
        raise RuntimeError("injected fault: mobile clients break this version")
    return real_handler(event, context)


def misreads_the_model_for_some_clients(event: dict, context: object) -> dict:
    """The real handler, but for `X-Client: mobile` requests it cannot read the model's answer: it answers
    502 (a failed model call) and raises nothing, so Lambda's Errors would stay 0."""
    from classify_api import endpoint
    from classify_api.errors import ApiError

    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    if headers.get("x-client") != "mobile":
        return real_handler(event, context)
    reads = endpoint._check_answer

    def misread(payload: bytes) -> dict:
        raise ApiError(502, "injected fault: the model's answer is misread", metric="ModelErrors")

    endpoint._check_answer = misread  # one invocation at a time runs in an execution environment
    try:
        return real_handler(event, context)
    finally:
        endpoint._check_answer = reads


def patched_handler(event: dict, context: object) -> dict:
    """The real handler behind a new entry point: new function code, same behaviour."""
    return real_handler(event, context)
