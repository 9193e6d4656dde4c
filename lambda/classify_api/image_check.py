"""Image vetting for the API function: the shared image contract, its refusals as API errors.

classify_api.image_contract is the build-time copy of serving/image_contract.py, the check the
model server runs too, so an image this function accepts is one the endpoint decodes.
"""

from __future__ import annotations

from classify_api import image_contract as contract
from classify_api.errors import ApiError
from classify_api.image_contract import CONTENT_TYPES, SUPPORTED, ImageInfo, sniff_format

__all__ = ["CONTENT_TYPES", "SUPPORTED", "ImageInfo", "inspect_image", "sniff_format"]


def inspect_image(data: bytes, max_pixels: int = contract.MAX_IMAGE_PIXELS) -> ImageInfo:
    """Vet image bytes and return their format and size, or raise ApiError saying what is wrong."""
    try:
        return contract.inspect_image(data, max_pixels)
    except contract.ImageRejected as exc:
        raise ApiError(exc.status, exc.message) from exc
