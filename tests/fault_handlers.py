"""Deliberately changed Lambda handlers: a broken one (a bad function version must never take traffic),
one that fails only for some clients (it passes the smoke tests, then breaches during the bake), and
a wrapper that behaves like the real handler (a function-code change with the same model)."""

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


def patched_handler(event: dict, context: object) -> dict:
    """The real handler behind a new entry point: new function code, same behaviour."""
    return real_handler(event, context)
