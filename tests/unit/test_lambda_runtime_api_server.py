"""The local Runtime API stays quiet when a killed environment's client leaves, and loud on real faults."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from mlops.standins.lambda_environment import RuntimeApiServer


@pytest.fixture()
def server() -> Iterator[RuntimeApiServer]:
    srv = RuntimeApiServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    yield srv
    srv.server_close()


def _stderr_while_handling(srv: RuntimeApiServer, fault: BaseException) -> str:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            raise fault
        except BaseException:
            srv.handle_error(None, ("127.0.0.1", 1))
    return err.getvalue()


@pytest.mark.parametrize("gone", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")])
def test_a_client_killed_before_reading_its_acknowledgement_prints_nothing(
    server: RuntimeApiServer, gone: OSError
) -> None:
    assert _stderr_while_handling(server, gone) == ""


def test_a_fault_in_the_api_itself_is_still_printed_with_its_traceback(server: RuntimeApiServer) -> None:
    printed = _stderr_while_handling(server, KeyError("request id"))
    assert "Traceback" in printed and "KeyError" in printed
