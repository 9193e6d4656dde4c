"""Data-driven corpus of bad requests for the classify API (reusable against the running HTTP API).

Each case is an HTTP request (method, path, headers, body bytes) plus what the API must answer:
the exact status this handler gives, and a keyword its JSON `error` message contains. `is_base64`
says whether API Gateway would hand the body to Lambda base64-encoded (binary media types), which
is how `make_event` turns a case into a Lambda event. None of these requests may reach the model
endpoint. Assumes the default limits (MAX_IMAGE_BYTES 4.4 MiB, 40 MP) and the default image_url
policy (https only, no loopback allowance).
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import zlib
from dataclasses import dataclass, field
from functools import cache

from PIL import Image

MAX_IMAGE_BYTES = 4_613_734  # the image contract's limit (tests/unit/test_lambda_bad_inputs.py checks it)
JPEG = {"Content-Type": "image/jpeg"}
PNG = {"Content-Type": "image/png"}
OCTET = {"Content-Type": "application/octet-stream"}
JSON_CT = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class BadInput:
    name: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    is_base64: bool = False
    status: int = 400
    keyword: str = ""

    @property
    def status_range(self) -> tuple[int, int]:
        """Any 4xx is acceptable to a generic client; `status` is what this handler answers."""
        return (400, 499)


def _noise_image(fmt: str, size: tuple[int, int] = (160, 120), seed: int = 7) -> bytes:
    rnd = random.Random(seed)
    img = Image.frombytes("RGB", size, rnd.randbytes(size[0] * size[1] * 3))
    buf = io.BytesIO()
    img.save(buf, format=fmt, quality=90) if fmt == "JPEG" else img.save(buf, format=fmt)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def png_50_megapixels(width: int = 7100, height: int = 7100) -> bytes:
    """A valid, all-black 7100x7100 (50.4 MP) greyscale PNG that compresses to ~50 KB."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    parts = [compressor.compress(row) for _ in range(height)]
    idat = b"".join(parts) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _jpeg_with_size(width: int, height: int) -> bytes:
    """A real JPEG whose frame header is patched to claim another size."""
    data = bytearray(_noise_image("JPEG", (32, 32)))
    pos = 2
    while data[pos + 1] not in (0xC0, 0xC1, 0xC2):
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    struct.pack_into(">HH", data, pos + 5, height, width)
    return bytes(data)


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


# (name, url, keyword): image_url values refused before any network I/O (localhost uses /etc/hosts).
BAD_URLS: list[tuple[str, str, str]] = [
    ("url_plain_http", "http://example.com/cat.jpg", "scheme"),
    ("url_loopback_ipv4", "https://127.0.0.1/cat.jpg", "disallowed address"),
    ("url_loopback_other", "https://127.1.2.3:8443/cat.jpg", "disallowed address"),
    ("url_localhost", "https://localhost/cat.jpg", "disallowed address"),
    ("url_loopback_ipv6", "https://[::1]/cat.jpg", "disallowed address"),
    ("url_aws_metadata", "https://169.254.169.254/latest/meta-data/", "disallowed address"),
    ("url_aws_metadata_ipv6", "https://[fd00:ec2::254]/latest/meta-data/", "disallowed address"),
    ("url_alibaba_metadata", "https://100.100.100.200/latest/meta-data/", "disallowed address"),
    ("url_private_10", "https://10.0.0.1/cat.jpg", "disallowed address"),
    ("url_private_192_168", "https://192.168.1.1/cat.jpg", "disallowed address"),
    ("url_private_172_16", "https://172.16.0.1/cat.jpg", "disallowed address"),
    ("url_unspecified", "https://0.0.0.0/cat.jpg", "disallowed address"),
    ("url_cgnat_shared", "https://100.64.0.1/cat.jpg", "disallowed address"),
    ("url_multicast", "https://224.0.0.1/cat.jpg", "disallowed address"),
    ("url_broadcast", "https://255.255.255.255/cat.jpg", "disallowed address"),
    ("url_ipv4_mapped_loopback", "https://[::ffff:127.0.0.1]/cat.jpg", "disallowed address"),
    ("url_ipv4_mapped_metadata", "https://[::ffff:a9fe:a9fe]/latest/", "disallowed address"),
    ("url_nat64_loopback", "https://[64:ff9b::7f00:1]/cat.jpg", "disallowed address"),
    ("url_6to4_private", "https://[2002:a00:1::1]/cat.jpg", "disallowed address"),
    ("url_ipv6_link_local", "https://[fe80::1]/cat.jpg", "disallowed address"),
    ("url_decimal_ip", "https://2130706433/cat.jpg", "non-canonical"),
    ("url_hex_ip", "https://0x7f000001/cat.jpg", "non-canonical"),
    ("url_octal_ip", "https://0177.0.0.1/cat.jpg", "non-canonical"),
    ("url_short_ip", "https://127.1/cat.jpg", "non-canonical"),
    ("url_file_scheme", "file:///etc/passwd", "scheme"),
    ("url_ftp_scheme", "ftp://example.com/cat.jpg", "scheme"),
    ("url_gopher_scheme", "gopher://example.com:70/_GET", "scheme"),
    ("url_data_scheme", "data:image/png;base64,iVBORw0KGgo=", "scheme"),
    ("url_javascript_scheme", "javascript:alert(1)", "scheme"),
    ("url_relative", "/images/cat.jpg", "scheme"),
    ("url_credentials", "https://user:secret@example.com/cat.jpg", "credentials"),
    ("url_credentials_smuggle", "https://example.com@127.0.0.1/cat.jpg", "credentials"),
    ("url_backslash_smuggle", "https://example.com\\@127.0.0.1/cat.jpg", "backslash"),
    ("url_whitespace", "https://exa mple.com/cat.jpg", "whitespace"),
    ("url_no_host", "https:///cat.jpg", "no host"),
    ("url_bad_port", "https://example.com:99999/cat.jpg", "invalid"),
    ("url_overlong", "https://example.com/" + "a" * 3000 + ".jpg", "too long"),
    ("url_empty", "", "empty"),
]


def _raw(name: str, headers: dict[str, str], body: bytes, status: int, keyword: str) -> BadInput:
    """A POST /predict whose body is sent as binary (base64 in the Lambda event)."""
    return BadInput(name, "POST", "/predict", headers, body, True, status, keyword)


def _text(name: str, headers: dict[str, str], body: bytes, status: int, keyword: str) -> BadInput:
    """A POST /predict whose body is sent as text."""
    return BadInput(name, "POST", "/predict", headers, body, False, status, keyword)


def _doc(name: str, doc: object, status: int, keyword: str) -> BadInput:
    """A POST /predict with a JSON document."""
    return _text(name, JSON_CT, _json(doc), status, keyword)


@cache
def cases() -> tuple[BadInput, ...]:
    """Every bad request, built once (the large bodies are generated on first use)."""
    jpeg = _noise_image("JPEG")
    png = _noise_image("PNG")
    over_limit = b"\xff\xd8\xff\xe0" + b"\x00" * MAX_IMAGE_BYTES
    zero_width_png = bytearray(png)
    struct.pack_into(">I", zero_width_png, 16, 0)
    b64_jpeg = base64.b64encode(jpeg).decode()
    gif_header = b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00" * 32
    bmp_header = b"BM" + struct.pack("<I", 100_000) + b"\x00" * 60
    multipart = b"--x\r\nContent-Disposition: form-data; name=f\r\n\r\nabc\r\n--x--"
    out = [
        # --- the body itself ---
        _raw("empty_body_jpeg", JPEG, b"", 400, "empty"),
        _text("empty_body_no_content_type", {}, b"", 400, "empty"),
        _raw("text_claiming_jpeg", JPEG, b"hello, I am a cat", 415, "not a supported image"),
        _raw("pdf_magic", OCTET, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", 415, "not a supported image"),
        _raw("random_bytes", OCTET, random.Random(3).randbytes(4096), 415, "not a supported image"),
        _raw("html_claiming_png", PNG, b"<html><body>cat</body></html>", 415, "not a supported image"),
        _raw("zip_archive", OCTET, b"PK\x03\x04" + b"\x00" * 60, 415, "not a supported image"),
        _raw("truncated_jpeg_half", JPEG, jpeg[: len(jpeg) // 2], 400, "truncated"),
        _raw("truncated_jpeg_header", JPEG, jpeg[:40], 400, "truncated"),
        _raw("jpeg_soi_only", JPEG, b"\xff\xd8\xff", 400, "truncated"),
        _raw("jpeg_without_frame_header", JPEG, b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 40, 400, "corrupt"),
        _raw("truncated_png", PNG, png[: len(png) // 2], 400, "truncated"),
        _raw("png_signature_only", PNG, png[:8], 400, "truncated"),
        _raw("png_zero_width", PNG, bytes(zero_width_png), 400, "dimensions"),
        _raw("png_50_megapixels", PNG, png_50_megapixels(), 413, "pixels"),
        _raw("jpeg_claims_100_megapixels", JPEG, _jpeg_with_size(10000, 10000), 413, "pixels"),
        _raw("gif_claims_4_gigapixels", {"Content-Type": "image/gif"}, gif_header, 413, "pixels"),
        _raw("truncated_bmp", {"Content-Type": "image/bmp"}, bmp_header, 400, "truncated"),
        _raw("body_over_size_limit", JPEG, over_limit, 413, "too large"),
        # --- content type ---
        _text(
            "text_plain_json",
            {"Content-Type": "text/plain"},
            _json({"image_base64": b64_jpeg}),
            415,
            "content type",
        ),
        _text("application_xml", {"Content-Type": "application/xml"}, b"<image>cat</image>", 415, "content type"),
        _text(
            "multipart_form",
            {"Content-Type": "multipart/form-data; boundary=x"},
            multipart,
            415,
            "content type",
        ),
        _text(
            "form_urlencoded",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"image_url=https%3A%2F%2Fexample.com%2Fcat.jpg",
            415,
            "content type",
        ),
        # --- JSON documents ---
        _text("json_empty_body", JSON_CT, b"", 400, "empty"),
        _text("json_invalid", JSON_CT, b'{"image_base64": ', 400, "json"),
        _text("json_deeply_nested", JSON_CT, b"[" * 100_000 + b"]" * 100_000, 400, "json"),
        _text("json_trailing_garbage", JSON_CT, b'{"image_url": "https://example.com/a.jpg"} x', 400, "json"),
        BadInput("json_invalid_utf8", "POST", "/predict", JSON_CT, b'{"image_url": "\xff\xfe"}', True, 400, "json"),
        _doc("json_array", [{"image_base64": b64_jpeg}], 400, "object"),
        _doc("json_string", "https://example.com/cat.jpg", 400, "object"),
        _doc("json_null", None, 400, "object"),
        _doc("json_missing_field", {}, 400, "exactly one"),
        _doc(
            "json_both_fields",
            {"image_base64": b64_jpeg, "image_url": "https://example.com/c.jpg"},
            400,
            "exactly one",
        ),
        _doc("json_unknown_field", {"image_base64": b64_jpeg, "model": "x"}, 400, "unknown field"),
        _doc("json_wrong_field_name", {"image": b64_jpeg}, 400, "unknown field"),
        _doc("json_base64_not_string", {"image_base64": 12345}, 400, "must be a string"),
        _doc("json_url_is_list", {"image_url": ["https://example.com/a.jpg"]}, 400, "must be a string"),
        _doc("json_url_is_null", {"image_url": None}, 400, "must be a string"),
        _doc("json_base64_empty", {"image_base64": ""}, 400, "empty"),
        _doc("json_base64_invalid", {"image_base64": "not*base64!"}, 400, "base64"),
        _doc(
            "json_base64_of_text",
            {"image_base64": base64.b64encode(b"some text").decode()},
            415,
            "not a supported image",
        ),
        _doc(
            "json_base64_truncated_jpeg",
            {"image_base64": base64.b64encode(jpeg[:900]).decode()},
            400,
            "truncated",
        ),
        _doc(
            "json_base64_over_limit",
            {"image_base64": base64.b64encode(over_limit).decode()},
            413,
            "too large",
        ),
        # --- routing ---
        BadInput("get_predict", "GET", "/predict", {}, b"", False, 405, "not allowed"),
        BadInput("put_predict", "PUT", "/predict", JPEG, jpeg, True, 405, "not allowed"),
        BadInput("delete_predict", "DELETE", "/predict", {}, b"", False, 405, "not allowed"),
        BadInput("post_health", "POST", "/health", JSON_CT, b"{}", False, 405, "not allowed"),
        BadInput("unknown_path", "GET", "/admin", {}, b"", False, 404, "not found"),
        BadInput("unknown_nested_path", "POST", "/predict/extra", JPEG, jpeg, True, 404, "not found"),
        BadInput("root_path", "POST", "/", JPEG, jpeg, True, 404, "not found"),
        BadInput("get_predict_trailing_slash", "GET", "/predict/", {}, b"", False, 405, "not allowed"),
        BadInput("head_health", "HEAD", "/health", {}, b"", False, 405, "not allowed"),
    ]
    out += [_doc(name, {"image_url": url}, 400, keyword) for name, url, keyword in BAD_URLS]
    return tuple(out)


def case_ids() -> list[str]:
    return [case.name for case in cases()]
