"""A deliberately broken Lambda handler, used to prove that a bad function version never takes traffic."""

from __future__ import annotations


def raising_handler(event: dict, context: object) -> dict:
    raise RuntimeError("injected fault: this handler always raises")
