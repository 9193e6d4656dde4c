"""Turn a POST /predict event into vetted image bytes: raw body, JSON image_base64, or JSON image_url."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from classify_api.config import Settings
from classify_api.errors import ApiError, bad_request
from classify_api.image_check import ImageInfo, inspect_image, sniff_format
from classify_api.safe_fetch import fetch_image

RAW_IMAGE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/webp",
        "image/gif",
        "image/bmp",
        "application/x-image",
        "application/octet-stream",
    }
)
JSON_TYPES = frozenset({"application/json"})
JSON_FIELDS = ("image_base64", "image_url")
# Room for the JSON syntax around a base64 payload.
_JSON_OVERHEAD = 8192


@dataclass(frozen=True)
class ImageRequest:
    data: bytes
    info: ImageInfo
    source: str  # "body", "image_base64" or "image_url"


def _b64_limit(max_bytes: int) -> int:
    return (max_bytes + 2) // 3 * 4


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"image too large: the limit is {max_bytes:,} bytes")


def _decode_base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"{what} is not valid base64") from exc


def media_type(headers: Mapping[str, str]) -> str:
    """The Content-Type without parameters, lower-cased ('' when absent)."""
    value = headers.get("content-type") or ""
    return value.split(";", 1)[0].strip().lower()


def _body_bytes(body: str | None, is_base64: bool, limit_chars: int, max_bytes: int) -> bytes:
    if not body:
        return b""
    if len(body) > limit_chars:
        raise _too_large(max_bytes)
    if is_base64:
        return _decode_base64(body, "request body (isBase64Encoded)")
    return body.encode("utf-8", "surrogatepass")


def _parse_json(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise bad_request("empty request body: send an image, or JSON with image_base64 or image_url")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request("request body is not valid JSON (or nested too deeply)") from exc
    if not isinstance(doc, dict):
        raise bad_request("JSON body must be an object with exactly one of image_base64 or image_url")
    unknown = sorted(str(k) for k in doc if k not in JSON_FIELDS)
    if unknown:
        raise bad_request(f"unknown field(s) in JSON body: {', '.join(unknown)}")
    present = [k for k in JSON_FIELDS if k in doc]
    if len(present) != 1:
        raise bad_request("JSON body must contain exactly one of image_base64 or image_url")
    value = doc[present[0]]
    if not isinstance(value, str):
        raise bad_request(f"{present[0]} must be a string, not {type(value).__name__}")
    return doc


def _from_json(raw: bytes, settings: Settings) -> tuple[bytes, str]:
    doc = _parse_json(raw)
    if "image_url" in doc:
        url = doc["image_url"].strip()
        return fetch_image(url, settings.url_policy), "image_url"
    text: str = doc["image_base64"]
    if text.startswith("data:") and ";base64," in text[:100]:
        text = text.split(",", 1)[1]  # a browser data: URL carrying the image
    text = text.replace("\n", "").replace("\r", "").strip()
    if not text:
        raise bad_request("image_base64 is empty")
    if len(text) > _b64_limit(settings.max_image_bytes):
        raise _too_large(settings.max_image_bytes)
    return _decode_base64(text, "image_base64"), "image_base64"


def extract_image(headers: Mapping[str, str], body: str | None, is_base64: bool, settings: Settings) -> ImageRequest:
    """Read, bound and vet the image a request carries, or raise ApiError saying what is wrong."""
    max_bytes = settings.max_image_bytes
    kind = media_type(headers)
    is_json = kind in JSON_TYPES
    if kind and not is_json and kind not in RAW_IMAGE_TYPES:
        raise ApiError(
            415,
            f"unsupported content type {kind!r}: send the image itself (image/jpeg, image/png, "
            "application/octet-stream, ...) or application/json with image_base64 or image_url",
        )
    # Bound the body before decoding it. A JSON body carries base64 (4/3 of the image); with binary
    # media types enabled API Gateway base64-encodes the JSON itself as well.
    payload_limit = _b64_limit(max_bytes) + _JSON_OVERHEAD if is_json or not kind else max_bytes
    limit = _b64_limit(payload_limit) if is_base64 else payload_limit
    raw = _body_bytes(body, is_base64, limit, max_bytes)
    if not kind:
        # No Content-Type: judge by content (a JSON object or an image).
        is_json = raw.lstrip()[:1] == b"{" and sniff_format(raw) is None
    if is_json:
        data, source = _from_json(raw, settings)
    else:
        data, source = raw, "body"
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return ImageRequest(data, inspect_image(data, settings.max_image_pixels), source)
