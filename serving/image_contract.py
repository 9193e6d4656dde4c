"""The image contract of the classify API, in one place: accepted formats, their magic numbers,
and the byte and pixel limits, with a header-only check both layers run.

The API function refuses a bad image with it before calling the endpoint; the model server runs
the same check before Pillow decodes anything, so the two agree on what is an image. Stdlib
only. This file (serving/image_contract.py) is the original; the function's package carries a
copy, classify_api/image_contract.py, written at build time and checked identical by the tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# The largest encoded image: 4.4 MiB, the largest whose base64 form (API Gateway encodes binary bodies)
# still fits Lambda's 6 MB synchronous payload with the event around it; the stage's web ACL
# (infra/waf.tf, max_body_bytes) refuses larger bodies with 413 before Lambda is invoked.
MAX_IMAGE_BYTES = 4_613_734
MAX_IMAGE_PIXELS = 40_000_000  # width x height, checked from the header (decompression bombs)
# format -> (content type, Pillow's format name)
FORMATS = {
    "jpeg": ("image/jpeg", "JPEG"),
    "png": ("image/png", "PNG"),
    "webp": ("image/webp", "WEBP"),
    "gif": ("image/gif", "GIF"),
    "bmp": ("image/bmp", "BMP"),
}
CONTENT_TYPES = {fmt: ctype for fmt, (ctype, _) in FORMATS.items()}
PIL_FORMATS = tuple(pil for _, pil in FORMATS.values())


class ImageRejected(ValueError):
    """Bytes that are not an acceptable image: `status` 400 (corrupt), 413 (too many pixels), 415 (not an image)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


SUPPORTED = "JPEG, PNG, WEBP, GIF or BMP"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT/JPG/DAC.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def pil_format(self) -> str:
        return FORMATS[self.format][1]


def sniff_format(data: bytes) -> str | None:
    """The image format named by the leading magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM" and len(data) >= 18:
        return "bmp"
    return None


def _truncated(fmt: str) -> ImageRejected:
    return ImageRejected(400, f"image is truncated or corrupt: incomplete {fmt.upper()} data")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos, n, size = 2, len(data), None
    while True:
        while pos < n and data[pos] == 0xFF and pos + 1 < n and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 1 >= n:
            raise _truncated("jpeg")
        if data[pos] != 0xFF:
            raise ImageRejected(400, "image is corrupt: malformed JPEG marker structure")
        marker = data[pos + 1]
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker == 0xD9:
            raise _truncated("jpeg")
        if pos + 4 > n:
            raise _truncated("jpeg")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise ImageRejected(400, "image is corrupt: malformed JPEG segment length")
        if marker in _JPEG_SOF:
            if pos + 9 > n:
                raise _truncated("jpeg")
            height, width = struct.unpack_from(">HH", data, pos + 5)
            size = (width, height)
        elif marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise ImageRejected(400, "image is corrupt: JPEG has no frame header")
            # Entropy-coded data never contains FFD9 (0xFF is byte-stuffed), so a complete
            # file has an end-of-image marker after the first scan header.
            if data.rfind(b"\xff\xd9", pos + 2) == -1:
                raise _truncated("jpeg")
            return size
        pos += 2 + length


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33:
        raise _truncated("png")
    if data[12:16] != b"IHDR":
        raise ImageRejected(400, "image is corrupt: PNG does not start with an IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    # Walk the chunks to IEND: bytes after it are ignored (as decoders do), a missing IEND is truncation.
    pos, n, pixels = 8, len(data), False
    while True:
        if pos + 12 > n:
            raise _truncated("png")
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise ImageRejected(400, "image is corrupt: malformed PNG chunk")
        if kind == b"IEND":
            if not pixels:
                raise ImageRejected(400, "image is corrupt: PNG has no image data (IDAT)")
            return width, height
        pixels = pixels or (kind == b"IDAT" and length > 0)
        pos += 12 + length


def _gif_sub_blocks(data: bytes, pos: int) -> int:
    """Position after a chain of GIF data sub-blocks (each a length byte and data; 0 ends the chain)."""
    n = len(data)
    while True:
        if pos >= n:
            raise _truncated("gif")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def _gif_size(data: bytes) -> tuple[int, int]:
    if len(data) < 13:
        raise _truncated("gif")
    return struct.unpack_from("<HH", data, 6)


def _gif_first_image(data: bytes) -> None:
    """Refuse a GIF whose first image (the one a decoder shows) is incomplete."""
    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    while True:
        if pos >= len(data):
            raise _truncated("gif")
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = _gif_sub_blocks(data, pos + 2)
        elif block == 0x2C:  # image descriptor, optional local colour table, LZW code size, image data
            if pos + 10 > len(data):
                raise _truncated("gif")
            local = data[pos + 9]
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0) + 1
            _gif_sub_blocks(data, pos)
            return
        elif block == 0x3B:
            raise ImageRejected(400, "image is corrupt: GIF has no image")
        else:
            raise ImageRejected(400, "image is corrupt: malformed GIF block structure")


def _bmp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise _truncated("bmp")
    (declared,) = struct.unpack_from("<I", data, 2)
    if declared and len(data) < declared:
        raise _truncated("bmp")
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12:
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height)


def _webp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 30:
        raise _truncated("webp")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if len(data) < 8 + riff_size:
        raise _truncated("webp")
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ImageRejected(400, "image is corrupt: bad WEBP lossless signature")
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ImageRejected(400, "image is corrupt: bad WEBP frame start code")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    raise ImageRejected(400, "image is corrupt: unknown WEBP chunk")


_SIZE_READERS = {"jpeg": _jpeg_size, "png": _png_size, "gif": _gif_size, "bmp": _bmp_size, "webp": _webp_size}
# Checks that read past the header, run once the size is known to be within the limit.
_BODY_CHECKS = {"gif": _gif_first_image}


def inspect_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> ImageInfo:
    """Vet image bytes and return their format and size, or raise ImageRejected saying what is wrong."""
    if not data:
        raise ImageRejected(400, "empty image: the request carried no image bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageRejected(415, f"body is not a supported image (expected {SUPPORTED}, judged by content)")
    width, height = _SIZE_READERS[fmt](data)
    if width <= 0 or height <= 0:
        raise ImageRejected(400, f"image has invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        limit = f"{max_pixels:,}"
        raise ImageRejected(413, f"image has too many pixels: {width}x{height} exceeds the limit of {limit} pixels")
    if fmt in _BODY_CHECKS:
        _BODY_CHECKS[fmt](data)
    return ImageInfo(fmt, width, height)
