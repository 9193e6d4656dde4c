"""Header-only image vetting: formats by magic bytes, sizes from headers, truncation, pixel limits."""

from __future__ import annotations

import io
import random
import struct

import pytest
from classify_api.errors import ApiError
from classify_api.image_check import inspect_image, sniff_format
from lambda_bad_inputs import png_50_megapixels
from lambda_support import data_dir
from PIL import Image

LIMIT = 40_000_000


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    rnd = random.Random(size[0] * 7 + size[1])
    return Image.frombytes(mode, size, rnd.randbytes(size[0] * size[1] * len(mode)))


VARIANTS = [
    ("jpeg", "JPEG", "RGB", {}),
    ("jpeg", "JPEG", "RGB", {"progressive": True, "quality": 80}),
    ("jpeg", "JPEG", "L", {}),
    ("jpeg", "JPEG", "CMYK", {}),
    ("png", "PNG", "RGB", {}),
    ("png", "PNG", "RGBA", {}),
    ("png", "PNG", "L", {"optimize": True}),
    ("webp", "WEBP", "RGB", {"quality": 80}),
    ("webp", "WEBP", "RGB", {"lossless": True}),
    ("webp", "WEBP", "RGBA", {}),
    ("gif", "GIF", "L", {}),
    ("bmp", "BMP", "RGB", {}),
]


@pytest.mark.parametrize(("fmt", "pil_format", "mode", "params"), VARIANTS)
@pytest.mark.parametrize("size", [(1, 1), (37, 211), (640, 480), (3000, 17)])
def test_sizes_match_pillow(fmt: str, pil_format: str, mode: str, params: dict, size: tuple[int, int]) -> None:
    data = encode(noise(size, mode), pil_format, **params)
    info = inspect_image(data, LIMIT)
    assert (info.format, info.width, info.height) == (fmt, *size)
    assert info.content_type == f"image/{fmt}"


def test_real_photos() -> None:
    root = data_dir()
    photos = sorted((root / "test" / "cat").glob("*.jpg"))[:150] + sorted((root / "test" / "dog").glob("*.jpg"))[:150]
    assert len(photos) == 300, f"expected the cats-vs-dogs photos under {root} (set DATA_DIR)"
    for photo in photos:
        data = photo.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            expected = img.size
        info = inspect_image(data, LIMIT)
        assert (info.width, info.height) == expected, photo.name
        with pytest.raises(ApiError, match="truncated"):
            inspect_image(data[: len(data) * 2 // 3], LIMIT)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "WEBP"])
def test_every_prefix_is_refused(fmt: str) -> None:
    data = encode(noise((48, 40)), fmt)
    # PNG's final CRC and WEBP's lone padding byte are not worth checking; all else must be complete.
    margin = {"PNG": 8, "WEBP": 1}.get(fmt, 1)
    for cut in range(0, len(data) - margin, 7):
        with pytest.raises(ApiError) as info:
            inspect_image(data[:cut], LIMIT)
        assert 400 <= info.value.status < 500


def test_pixel_limit_is_inclusive() -> None:
    def png_header(width: int, height: int) -> bytes:
        ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
        idat = b"\x00\x00\x00\x01IDAT\x78" + b"\x00" * 4  # the header check only needs IDAT to be there
        return b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + ihdr + b"\x00" * 4 + idat + b"\x00\x00\x00\x00IEND\xaeB`\x82"

    assert inspect_image(png_header(8000, 5000), LIMIT).width == 8000
    with pytest.raises(ApiError, match="too many pixels") as info:
        inspect_image(png_header(8000, 5001), LIMIT)
    assert info.value.status == 413


def test_fifty_megapixel_png_is_refused_from_its_header() -> None:
    data = png_50_megapixels()
    assert len(data) < 200_000
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (7100, 7100)
    with pytest.raises(ApiError, match="7100x7100"):
        inspect_image(data, LIMIT)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff", b"\xff\xd8", b"GIF8", b"RIFF\x00\x00\x00\x00WAVE", b"BM", b"\x89PNG", b"<svg/>", b"II*\x00"],
)
def test_not_images(data: bytes) -> None:
    assert sniff_format(data) is None
    with pytest.raises(ApiError) as info:
        inspect_image(data, LIMIT)
    assert info.value.status in (400, 415)


def test_jpeg_with_trailing_bytes_and_exif_thumbnail() -> None:
    thumb = encode(noise((16, 16)), "JPEG")
    exif = Image.Exif()
    exif[0x010E] = "a cat"
    main = encode(noise((120, 80)), "JPEG", exif=exif.tobytes())
    # An APP segment carrying a whole JPEG (with its own end marker) before the frame header.
    app = b"\xff\xe2" + struct.pack(">H", len(thumb) + 2) + thumb
    crafted = main[:2] + app + main[2:]
    assert inspect_image(crafted + b"\x00junk", LIMIT).width == 120
    with pytest.raises(ApiError, match="truncated"):
        inspect_image(crafted[: len(crafted) - 10], LIMIT)
