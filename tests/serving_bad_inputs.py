"""Bad requests for the model server: each with the 4xx status and a word the JSON error must contain."""

from __future__ import annotations

import base64
import functools
import io
import json
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from serving_fixtures import photos

JPEG = "image/jpeg"
JSON = "application/json"


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    keyword: str
    body: Callable[[], bytes] = lambda: b""
    content_type: str | None = JPEG
    method: str = "POST"
    path: str = "/invocations"
    headers: dict[str, str] = field(default_factory=dict)
    raw: Callable[[], bytes] | None = None  # the whole request, sent as is over a socket
    by_server: bool = False  # malformed HTTP: the HTTP server answers the status itself, with no JSON body


@functools.cache
def real_jpeg() -> bytes:
    return photos("cat", "test", 1)[0].read_bytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))


@functools.cache
def bomb_png(side: int = 7100) -> bytes:
    """A valid 7100x7100 (50-megapixel) black PNG, about 150 kB on disk."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 3 * side)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return _png_header(side, side) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def small_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def bad_crc_png() -> bytes:
    data = bytearray(small_png())
    data[29] ^= 0xFF  # the IHDR checksum
    return bytes(data)


def huge_jpeg_header() -> bytes:
    """A real photo whose start-of-frame claims 30000x20000 pixels."""
    data = bytearray(real_jpeg())
    at = 2
    while data[at + 1] not in (0xC0, 0xC1, 0xC2):  # walk the marker segments to the frame header
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    data[at + 5 : at + 9] = struct.pack(">HH", 20000, 30000)
    return bytes(data)


def tiff() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, "TIFF")
    return buf.getvalue()


def b64_json(data: bytes, key: str = "image_base64") -> bytes:
    return json.dumps({key: base64.b64encode(data).decode()}).encode()


def _raw(head: str, body: bytes = b"") -> Callable[[], bytes]:
    return lambda: head.replace("\n", "\r\n").encode("latin-1") + body


CASES: list[Case] = [
    # bodies that are not a usable image
    Case("empty body", 400, "empty"),
    Case("empty body as x-image", 400, "empty", content_type="application/x-image"),
    Case("plain text as jpeg", 415, "not an image", lambda: b"hello, this is not a photo"),
    Case("random bytes as png", 415, "not an image", lambda: bytes(range(256)) * 8, "image/png"),
    Case("pdf header", 415, "PDF", lambda: b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n" * 4),
    Case("tiff is not accepted", 415, "TIFF", tiff, "application/x-image"),
    Case("truncated jpeg", 422, "truncated", lambda: real_jpeg()[: len(real_jpeg()) // 2]),
    Case("jpeg header only", 422, "corrupt", lambda: real_jpeg()[:120]),
    Case("corrupt png checksum", 422, "corrupt PNG", bad_crc_png, "image/png"),
    Case("zero-size png header", 422, "PNG", lambda: _png_header(0, 0) + _chunk(b"IEND", b""), "image/png"),
    Case("truncated png", 422, "corrupt", lambda: small_png()[:60], "image/png"),
    Case("gif signature only", 422, "incomplete GIF", lambda: b"GIF89a" + b"\x00" * 4, "image/gif"),
    Case("50-megapixel png", 413, "too many pixels", bomb_png, "image/png"),
    Case("30000x20000 jpeg header", 413, "too many pixels", huge_jpeg_header),
    # content types and Accept
    Case("text/plain", 415, "Content-Type", lambda: real_jpeg(), "text/plain"),
    Case("application/xml", 415, "Content-Type", lambda: b"<image/>", "application/xml"),
    Case("multipart form", 415, "multipart", lambda: b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x"),
    Case("image/tiff content type", 415, "Content-Type", tiff, "image/tiff"),
    Case("missing content type", 415, "Content-Type", lambda: real_jpeg(), None),
    Case("accept csv only", 406, "application/json", lambda: real_jpeg(), headers={"Accept": "text/csv"}),
    # JSON bodies
    Case("invalid json", 400, "JSON", lambda: b'{"image_base64": ', JSON),
    Case("json not utf-8", 400, "JSON", lambda: b'{"image_base64": "\xff\xfe"}', JSON),
    Case("json array", 400, "object", lambda: b'["abc"]', JSON),
    Case("json string", 400, "object", lambda: b'"abc"', JSON),
    Case("json empty body", 400, "empty", lambda: b"  ", JSON),
    Case("json missing field", 400, "image_base64", lambda: b'{"image": "abc"}', JSON),
    Case("json b64 key not accepted", 400, "image_base64", lambda: b64_json(real_jpeg(), "b64"), JSON),
    Case("json field is a number", 400, "base64 string", lambda: b'{"image_base64": 42}', JSON),
    Case("json field is null", 400, "base64 string", lambda: b'{"image_base64": null}', JSON),
    Case("json field empty", 400, "empty", lambda: b'{"image_base64": ""}', JSON),
    Case("invalid base64", 400, "base64", lambda: b'{"image_base64": "not base64 at all!!"}', JSON),
    Case("non-ascii base64", 400, "base64", lambda: '{"image_base64": "éé=="}'.encode(), JSON),
    Case("base64 of text", 415, "not an image", lambda: b64_json(b"just some text"), JSON),
    Case("base64 of truncated jpeg", 422, "truncated", lambda: b64_json(real_jpeg()[:5000]), JSON),
    # paths and methods
    Case("unknown path", 404, "no such path", method="GET", path="/nothing-here"),
    Case("post to /predict", 404, "no such path", lambda: real_jpeg(), path="/predict"),
    Case("runtime path without name", 404, "no such path", lambda: real_jpeg(), path="/endpoints//invocations"),
    Case("get /invocations", 405, "not allowed", method="GET"),
    Case("put /invocations", 405, "not allowed", lambda: real_jpeg(), method="PUT"),
    Case("delete /ping", 405, "not allowed", method="DELETE", path="/ping"),
    Case("post /ping", 405, "not allowed", lambda: b"{}", JSON, path="/ping"),
    Case("unknown method", 405, "not allowed", raw=_raw("BREW /invocations HTTP/1.1\nHost: x\n\n")),
    # framing and limits, sent as raw bytes
    Case(
        "missing content-length",
        411,
        "Content-Length",
        raw=_raw("POST /invocations HTTP/1.1\nHost: x\nContent-Type: image/jpeg\n\n"),
    ),
    Case(
        "chunked body",
        411,
        "chunked",
        raw=_raw(
            "POST /invocations HTTP/1.1\nHost: x\nContent-Type: image/jpeg\nTransfer-Encoding: chunked\n\n",
            b"0\r\n\r\n",
        ),
    ),
    Case(
        "content-length not a number",
        400,
        "Content-Length",
        raw=_raw("POST /invocations HTTP/1.1\nHost: x\nContent-Type: image/jpeg\nContent-Length: abc\n\n"),
        by_server=True,
    ),
    Case(
        "negative content-length",
        400,
        "Content-Length",
        raw=_raw("POST /invocations HTTP/1.1\nHost: x\nContent-Type: image/jpeg\nContent-Length: -5\n\n"),
        by_server=True,
    ),
    Case(
        "conflicting content-lengths",
        400,
        "Content-Length",
        raw=_raw(
            "POST /invocations HTTP/1.1\nHost: x\nContent-Type: image/jpeg\nContent-Length: 3\nContent-Length: 4\n\n",
            b"abcd",
        ),
        by_server=True,
    ),
    Case(
        "body over the limit",
        413,
        "limit",
        raw=_raw("POST /invocations HTTP/1.1\nHost: x\nContent-Type: image/jpeg\nContent-Length: 7000000\n\n"),
    ),
    Case(
        "over the limit with expect 100-continue",
        413,
        "limit",
        raw=_raw(
            "POST /invocations HTTP/1.1\nHost: x\nContent-Type: image/jpeg\nContent-Length: 99999999\n"
            "Expect: 100-continue\n\n"
        ),
    ),
    Case("garbage request line", 400, "request", raw=_raw("HELLO\n\n"), by_server=True),
    Case(
        "unsupported http version", 400, "version", raw=_raw("POST /invocations HTTP/3.0\nHost: x\n\n"), by_server=True
    ),
    Case("header line too long", 431, "long", raw=_raw("GET /ping HTTP/1.1\nX-Big: " + "a" * 70000 + "\n\n")),
    Case(
        "too many headers",
        431,
        "headers",
        raw=_raw("GET /ping HTTP/1.1\n" + "".join(f"X-H{i}: {i}\n" for i in range(150)) + "\n"),
        by_server=True,
    ),
    Case("request uri too long", 414, "URI", raw=_raw("GET /" + "a" * 70000 + " HTTP/1.1\n\n"), by_server=True),
]
