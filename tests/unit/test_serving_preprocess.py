"""Decoding and preprocessing: orientation, size guards, formats, and the fast paths' exactness."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile
from serving_bad_inputs import bomb_png, real_jpeg, tiff

from serving.preprocess import (
    ImageDecodeError,
    ImageTooLargeError,
    Preprocessing,
    UnsupportedImageError,
    decode_image,
    preprocess_bytes,
    resize_center_crop,
    to_tensor,
)

PREP = Preprocessing(128, 146, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def photo() -> Image.Image:
    return Image.open(io.BytesIO(real_jpeg())).convert("RGB")


@pytest.mark.parametrize(
    ("orientation", "transpose"),
    [(3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_270), (8, Image.Transpose.ROTATE_90)],
)
def test_exif_orientation_is_applied(orientation: int, transpose: Image.Transpose) -> None:
    img = photo()
    exif = Image.Exif()
    exif[0x0112] = orientation
    decoded = decode_image(encode(img, exif=exif.tobytes()))
    assert np.array_equal(np.asarray(decoded), np.asarray(img.transpose(transpose)))
    jpeg = decode_image(encode(img, "JPEG", quality=95, exif=exif.tobytes()))
    assert jpeg.size == img.transpose(transpose).size


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # pytest resets the module's filter
def test_a_bomb_is_refused_from_its_header_without_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(self: Image.Image):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLargeError, match="7100x7100"):
        decode_image(bomb_png())


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"", ImageDecodeError, "empty"),
        (b"plain text, no image", UnsupportedImageError, "not an image"),
        (b"%PDF-1.4 ...", UnsupportedImageError, "PDF"),
        (None, UnsupportedImageError, "TIFF"),
        (real_jpeg()[:3000], ImageDecodeError, "truncated"),
    ],
)
def test_unusable_bytes_raise_a_named_error(data: bytes | None, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        decode_image(tiff() if data is None else data)


def test_truncated_image_is_not_reported_as_unsupported() -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(real_jpeg()[:3000])
    assert not isinstance(info.value, UnsupportedImageError | ImageTooLargeError)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "CMYK"])
def test_every_pixel_mode_becomes_rgb(mode: str) -> None:
    img = photo().convert(mode) if mode != "I;16" else Image.new("I;16", (50, 40), 3000)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    out = preprocess_bytes(encode(img, fmt), PREP)
    assert out.shape == (3, 128, 128) and out.dtype == np.float32
    assert np.isfinite(out).all()


def test_resize_center_crop_matches_resize_then_crop() -> None:
    for img in (photo(), photo().rotate(90, expand=True), photo().resize((600, 200))):
        w, h = img.size
        scale = PREP.resize_size / min(w, h)
        nw, nh = max(128, round(w * scale)), max(128, round(h * scale))
        left, top = (nw - 128) // 2, (nh - 128) // 2
        ref = img.resize((nw, nh), Image.Resampling.BILINEAR).crop((left, top, left + 128, top + 128))
        got = resize_center_crop(img, PREP)
        assert got.size == (128, 128)
        diff = np.abs(np.asarray(got, np.float32) - np.asarray(ref, np.float32))
        assert diff.max() <= 3 and diff.mean() < 0.1


def test_to_tensor_normalises_per_channel() -> None:
    img = resize_center_crop(photo(), PREP)
    ref = (np.asarray(img, np.float32) / 255.0 - np.array(PREP.mean, np.float32)) / np.array(PREP.std, np.float32)
    out = to_tensor(img, PREP)
    assert out.shape == (3, 128, 128) and out.flags.c_contiguous
    assert np.allclose(out, ref.transpose(2, 0, 1), atol=1e-5)


def test_a_large_jpeg_is_decoded_at_reduced_scale_with_the_same_result() -> None:
    big = photo().resize((4000, 3000), Image.Resampling.BICUBIC)
    data = encode(big, "JPEG", quality=92)
    drafted = decode_image(data, min_side=PREP.resize_size)
    assert min(drafted.size) >= PREP.resize_size and drafted.width <= 1000  # 1/4 or 1/8 scale
    fast = preprocess_bytes(data, PREP)
    full = to_tensor(resize_center_crop(decode_image(data), PREP), PREP)
    assert np.abs(fast - full).mean() < 0.05  # normalised units: about 1% of the range
