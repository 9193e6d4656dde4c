"""Image decoding and preprocessing shared by the model server and the evaluation step.

One function turns bytes into the model's input tensor, so what the accuracy gate measures
is exactly what the endpoint computes.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import (  # the accepted formats' plugins, imported so Pillow never loads all of its others
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from serving import image_contract as contract

# Pillow's decompression-bomb guard: refuse images larger than this many pixels outright.
MAX_IMAGE_PIXELS = contract.MAX_IMAGE_PIXELS
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
# Pillow warns between the limit and twice it; decode_image refuses all of those anyway.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# The formats the service decodes; Pillow never even tries its other parsers (TIFF, PSD, ...).
FORMATS = contract.PIL_FORMATS


class ImageDecodeError(ValueError):
    """The bytes are not an image this service accepts (the message says why)."""


class UnsupportedImageError(ImageDecodeError):
    """The bytes are not in one of the accepted image formats."""


class ImageTooLargeError(ImageDecodeError):
    """The image has more pixels than the decompression-bomb guard allows."""


_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
)


def sniff_format(data: bytes) -> str | None:
    """The format named by the leading magic bytes (JPEG, PNG, WEBP, GIF, BMP, TIFF, PDF), or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)


def _unidentified(data: bytes) -> ImageDecodeError:
    fmt = sniff_format(data)
    if fmt in FORMATS:
        return ImageDecodeError(f"corrupt {fmt} image: its header cannot be parsed")
    found = f"{fmt} is not supported" if fmt else "not an image"
    return UnsupportedImageError(f"{found} (accepted formats: {', '.join(FORMATS)})")


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the network input; stored in the artifact's metadata.json."""

    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> Preprocessing:
        return cls(
            input_size=int(meta["input_size"]),
            resize_size=int(meta["resize_size"]),
            mean=tuple(meta["mean"]),
            std=tuple(meta["std"]),
        )

    def to_metadata(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "resize_size": self.resize_size,
            "mean": list(self.mean),
            "std": list(self.std),
        }


def decode_image(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS, min_side: int = 0) -> Image.Image:
    """Decode bytes to an RGB image with EXIF orientation applied, or raise ImageDecodeError.

    The size is checked from the header before any pixel is decoded. With min_side > 0, a JPEG
    much larger than needed is decoded at a reduced scale (1/2, 1/4 or 1/8, in the DCT domain)
    whose short side stays >= min_side: a 12-megapixel phone photo decodes in milliseconds.
    """
    if not data:
        raise ImageDecodeError("empty image body")
    try:  # the same header check the API function runs, before Pillow parses anything
        info = contract.inspect_image(data, max_pixels)
    except contract.ImageRejected as exc:
        if exc.status == 415:  # named (PDF, TIFF...) when the magic bytes say what it is
            named = _unidentified(data)
            raise (named if isinstance(named, UnsupportedImageError) else UnsupportedImageError(exc.message)) from exc
        raise (ImageTooLargeError if exc.status == 413 else ImageDecodeError)(exc.message) from exc
    try:
        img = Image.open(io.BytesIO(data), formats=(info.pil_format,))
        width, height = img.size
        if width < 1 or height < 1:
            raise ImageDecodeError(f"image has no pixels: {width}x{height}")
        if width * height > max_pixels:
            raise ImageTooLargeError(f"image too large: {width}x{height} pixels (limit {max_pixels:,})")
        if min_side and img.format == "JPEG" and img.mode in ("RGB", "L"):
            img.draft(img.mode, (min_side, min_side))
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise _unidentified(data) from exc
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError("image too large (decompression-bomb guard)") from exc
    except Exception as exc:  # image parsers raise many types on hostile input
        raise ImageDecodeError(f"corrupt or truncated image: {exc}") from exc
    return img if img.mode == "RGB" else img.convert("RGB")


def resize_center_crop(img: Image.Image, prep: Preprocessing) -> Image.Image:
    """Resize the short side to resize_size (bilinear), then crop the centre input_size square.

    Done in one step: only the source region under the crop is resampled, with the same
    filter scale as a full resize followed by a crop.
    """
    w, h = img.size
    scale = prep.resize_size / min(w, h)
    new_w, new_h = max(prep.input_size, round(w * scale)), max(prep.input_size, round(h * scale))
    left = (new_w - prep.input_size) // 2
    top = (new_h - prep.input_size) // 2
    sx, sy = w / new_w, h / new_h
    box = (left * sx, top * sy, (left + prep.input_size) * sx, (top + prep.input_size) * sy)
    return img.resize((prep.input_size, prep.input_size), Image.Resampling.BILINEAR, box=box)


def to_tensor(img: Image.Image, prep: Preprocessing) -> np.ndarray:
    """An RGB PIL image (already input_size square) to a normalised float32 CHW array."""
    std = np.asarray(prep.std, dtype=np.float32).reshape(3, 1, 1)
    scale = 1.0 / (255.0 * std)
    offset = np.asarray(prep.mean, dtype=np.float32).reshape(3, 1, 1) / std
    chw = np.asarray(img).transpose(2, 0, 1)  # uint8 view, no copy
    out = np.empty(chw.shape, dtype=np.float32)
    np.multiply(chw, scale, out=out, dtype=np.float32)
    out -= offset
    return out


def preprocess_bytes(data: bytes, prep: Preprocessing) -> np.ndarray:
    """Bytes of a photo to a [3, H, W] float32 array ready for the network."""
    return to_tensor(resize_center_crop(decode_image(data, min_side=prep.resize_size), prep), prep)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    probabilities: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return probabilities
