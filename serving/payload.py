"""Request bodies to image bytes: raw image content types or JSON with image_base64."""

from __future__ import annotations

import base64
import binascii
import json

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
JSON_TYPE = "application/json"
JSON_FIELD = "image_base64"
ACCEPTED = "image/jpeg, image/png, application/x-image or application/json with image_base64"
ANSWER_TYPES = ("application/json", "application/*", "*/*")


class RequestError(Exception):
    """A request the server refuses: HTTP status and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(header: str | None) -> str:
    """The Content-Type without parameters, lower-cased ('' when absent)."""
    return (header or "").split(";", 1)[0].strip().lower()


def check_accept(header: str | None) -> None:
    """Refuse (406) an Accept header that rules out a JSON answer."""
    if not header:
        return
    wanted = {media_type(part) for part in header.split(",")}
    if not wanted.intersection(ANSWER_TYPES):
        raise RequestError(406, f"cannot answer in {header.strip()[:100]!r}: answers are application/json")


def image_bytes(content_type: str | None, body: bytes) -> bytes:
    """The encoded image carried by the request, or RequestError saying what is wrong."""
    kind = media_type(content_type)
    if not kind:
        raise RequestError(415, f"missing Content-Type header: send {ACCEPTED}")
    if kind in RAW_IMAGE_TYPES:
        if not body:
            raise RequestError(400, "empty request body: send the image bytes")
        return body
    if kind == JSON_TYPE:
        return _json_image(body)
    raise RequestError(415, f"unsupported Content-Type {kind[:100]!r}: send {ACCEPTED}")


def _json_image(body: bytes) -> bytes:
    if not body.strip():
        raise RequestError(400, f'empty request body: send JSON {{"{JSON_FIELD}": "..."}}')
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise RequestError(400, f"JSON body must be an object with {JSON_FIELD}, not {type(doc).__name__}")
    if JSON_FIELD not in doc:
        raise RequestError(400, f"JSON body has no {JSON_FIELD} field")
    text = doc[JSON_FIELD]
    if not isinstance(text, str):
        raise RequestError(400, f"{JSON_FIELD} must be a base64 string, not {type(text).__name__}")
    if text.startswith("data:") and "," in text:  # a data URL, as browsers produce
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(400, f"{JSON_FIELD} is not valid base64: {exc}") from exc
    if not data:
        raise RequestError(400, f"{JSON_FIELD} is empty")
    return data
