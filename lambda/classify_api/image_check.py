"""Cheap pure-Python image vetting: format by magic bytes, dimensions from the header, truncation.

Nothing here decodes pixels; it reads a few header bytes so obviously bad uploads (not an
image, truncated, decompression bombs) are refused before the endpoint is called.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from classify_api.errors import ApiError

SUPPORTED = "JPEG, PNG, WEBP, GIF or BMP"
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "bmp": "image/bmp",
}
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


def _truncated(fmt: str) -> ApiError:
    return ApiError(400, f"image is truncated or corrupt: incomplete {fmt.upper()} data")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    pos, n, size = 2, len(data), None
    while True:
        while pos < n and data[pos] == 0xFF and pos + 1 < n and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 1 >= n:
            raise _truncated("jpeg")
        if data[pos] != 0xFF:
            raise ApiError(400, "image is corrupt: malformed JPEG marker structure")
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
            raise ApiError(400, "image is corrupt: malformed JPEG segment length")
        if marker in _JPEG_SOF:
            if pos + 9 > n:
                raise _truncated("jpeg")
            height, width = struct.unpack_from(">HH", data, pos + 5)
            size = (width, height)
        elif marker == 0xDA:  # start of scan: entropy-coded data follows
            if size is None:
                raise ApiError(400, "image is corrupt: JPEG has no frame header")
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
        raise ApiError(400, "image is corrupt: PNG does not start with an IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    # A complete PNG ends with the IEND chunk (allow a little trailing junk).
    if data.rfind(b"IEND", max(0, len(data) - 1024)) == -1:
        raise _truncated("png")
    return width, height


def _gif_size(data: bytes) -> tuple[int, int]:
    if len(data) < 14:
        raise _truncated("gif")
    return struct.unpack_from("<HH", data, 6)


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
            raise ApiError(400, "image is corrupt: bad WEBP lossless signature")
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ApiError(400, "image is corrupt: bad WEBP frame start code")
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    raise ApiError(400, "image is corrupt: unknown WEBP chunk")


_SIZE_READERS = {"jpeg": _jpeg_size, "png": _png_size, "gif": _gif_size, "bmp": _bmp_size, "webp": _webp_size}


def inspect_image(data: bytes, max_pixels: int) -> ImageInfo:
    """Vet image bytes and return their format and size, or raise ApiError saying what is wrong."""
    if not data:
        raise ApiError(400, "empty image: the request carried no image bytes")
    fmt = sniff_format(data)
    if fmt is None:
        raise ApiError(415, f"body is not a supported image (expected {SUPPORTED}, judged by content)")
    width, height = _SIZE_READERS[fmt](data)
    if width <= 0 or height <= 0:
        raise ApiError(400, f"image has invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        raise ApiError(413, f"image has too many pixels: {width}x{height} exceeds the limit of {max_pixels:,} pixels")
    return ImageInfo(fmt, width, height)
