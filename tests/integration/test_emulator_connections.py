"""The emulator keeps a connection open between requests, as AWS's endpoints do (a new TLS connection per
call cost every client a handshake and a CA bundle load), and a body the service left unread never spills
into the next request on the connection."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_emulator import Emulator


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = Emulator(tmp_path_factory.mktemp("emulator-connections")).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def connect(emu: Emulator) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(Path(emu.tls_files.ca)))
    return http.client.HTTPSConnection("127.0.0.1", emu.port, context=context, timeout=30)


def test_one_connection_answers_many_requests_and_an_unread_body_does_not_spill(emu: Emulator) -> None:
    conn = connect(emu)
    conn.request("GET", "/moto-api/")
    first = conn.getresponse()
    assert first.status == 200 and first.getheader("Connection") != "close"
    first.read()
    sock = conn.sock
    # The reset reads no body: 64 kB of it must not be taken for the next request line.
    conn.request("POST", "/moto-api/reset", body=b"x" * 65536)
    reset = conn.getresponse()
    assert reset.status == 200 and reset.getheader("Connection") != "close"
    reset.read()
    conn.request("GET", "/moto-api/")
    again = conn.getresponse()
    assert again.status == 200 and again.read() and conn.sock is sock  # the same connection all along
    conn.close()


def test_a_chunked_request_is_answered_then_its_connection_closed(emu: Emulator) -> None:
    conn = connect(emu)
    conn.request("POST", "/moto-api/reset", body=iter([b"abc", b"def"]), encode_chunked=True)
    answer = conn.getresponse()
    assert answer.status == 200 and answer.getheader("Connection") == "close"
    answer.read()
    conn.close()
