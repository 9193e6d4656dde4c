"""One image contract: the API function and the model server accept and refuse the same images.

A generated corpus (every accepted format in several modes, cut short at many points, with
trailing bytes, with forged headers, and things that are not images) goes through the
function's check and the model server's decode; each case must get the same verdict. The
contract is structural (formats, sizes, completeness): a complete file whose compressed pixels
are forged still passes the function and is refused by the model server's decoder (422).
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import pytest
from classify_api.errors import ApiError
from classify_api.image_check import inspect_image
from PIL import Image

from serving import image_contract
from serving.preprocess import ImageDecodeError, ImageTooLargeError, UnsupportedImageError, decode_image

REPO = Path(__file__).resolve().parents[2]


def test_the_function_package_carries_the_model_servers_contract_unchanged() -> None:
    original = REPO / "serving" / "image_contract.py"
    copy = REPO / "lambda" / "classify_api" / "image_contract.py"
    assert copy.read_bytes() == original.read_bytes(), "run: cp serving/image_contract.py lambda/classify_api/"


def test_the_build_puts_the_contract_into_the_function_package(tmp_path: Path) -> None:
    from infra.tools.lambda_zip import stage

    package = tmp_path / "src" / "classify_api"
    package.mkdir(parents=True)
    (package / "image_contract.py").write_text("# stale\n")
    stage(tmp_path / "build", None, package)
    built = (tmp_path / "build" / "classify_api" / "image_contract.py").read_bytes()
    assert built == (REPO / "serving" / "image_contract.py").read_bytes()


def encode(img: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def noise(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    rnd = random.Random(seed)
    return Image.frombytes(mode, size, rnd.randbytes(size[0] * size[1] * len(mode)))


def gradient(size: tuple[int, int], mode: str) -> Image.Image:
    return Image.linear_gradient("L").resize(size).convert(mode)


def png_header_only(width: int, height: int, idat: bool = False) -> bytes:
    """A PNG signature, IHDR and IEND, with a one-byte IDAT when `idat` (not decodable either way)."""
    ihdr = struct.pack(">II", width, height) + b"\x08\x02\x00\x00\x00"
    data = b"\x00\x00\x00\x01IDAT\x78" + b"\x00" * 4 if idat else b""
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + ihdr + b"\x00" * 4 + data + b"\x00\x00\x00\x00IEND\xaeB`\x82"


VALID = [
    ("JPEG", "RGB", {}),
    ("JPEG", "RGB", {"progressive": True, "quality": 70}),
    ("JPEG", "L", {}),
    ("JPEG", "CMYK", {}),
    ("PNG", "RGB", {}),
    ("PNG", "RGBA", {}),
    ("PNG", "L", {"optimize": True}),
    ("PNG", "P", {}),
    ("WEBP", "RGB", {"quality": 80}),
    ("WEBP", "RGB", {"lossless": True}),
    ("WEBP", "RGBA", {}),
    ("GIF", "P", {}),
    ("GIF", "L", {}),
    ("BMP", "RGB", {}),
    ("BMP", "L", {}),
]


def corpus() -> list[tuple[str, bytes]]:
    cases: list[tuple[str, bytes]] = []
    rnd = random.Random(15)
    for k, (fmt, mode, params) in enumerate(VALID):
        for size in ((1, 1), (33, 17), (96, 64)):
            picture = noise(size, mode if mode != "P" else "L", k).convert(mode) if k % 2 else gradient(size, mode)
            data = encode(picture, fmt, **params)
            name = f"{fmt}-{mode}-{size[0]}x{size[1]}-{k}"
            cases.append((f"{name}-whole", data))
            cases.append((f"{name}-trailer-small", data + b"\x00junk"))
            cases.append((f"{name}-trailer-2k", data + rnd.randbytes(2048)))
            for cut in sorted({1, 8, 16, 40, len(data) // 3, len(data) // 2, len(data) * 9 // 10, len(data) - 1}):
                if 0 < cut < len(data):
                    cases.append((f"{name}-cut-{cut}", data[:cut]))
    gif = io.BytesIO()
    frames = [gradient((40, 30), "L").convert("P"), noise((40, 30), "L", 3).convert("P")]
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    animated = gif.getvalue()
    cases += [("GIF-animated", animated), ("GIF-animated-second-frame-cut", animated[: len(animated) - 20])]
    cases += [
        ("PNG-8000x5000-header", png_header_only(8000, 5000)),
        ("PNG-8000x5001-header", png_header_only(8000, 5001)),
        ("PNG-8000x5001-forged-idat", png_header_only(8000, 5001, idat=True)),
        ("GIF-65535x65535-header", b"GIF89a\xff\xff\xff\xff\x00\x00\x00;"),
        ("PNG-0x10-header", png_header_only(0, 10)),
        ("empty", b""),
        ("text", b"hello, not an image"),
        ("svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
        ("tiff", encode(gradient((8, 8), "RGB"), "TIFF")),
        ("pdf-magic", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
        ("jpeg-magic-then-noise", b"\xff\xd8\xff" + rnd.randbytes(500)),
        ("png-magic-then-noise", b"\x89PNG\r\n\x1a\n" + rnd.randbytes(500)),
        ("gif-magic-then-noise", b"GIF89a" + rnd.randbytes(500)),
        ("riff-wave", b"RIFF\x24\x00\x00\x00WAVEfmt " + rnd.randbytes(40)),
    ]
    return cases


CORPUS = corpus()


def function_verdict(data: bytes) -> str:
    try:
        inspect_image(data, image_contract.MAX_IMAGE_PIXELS)
    except ApiError as exc:
        return {413: "too large", 415: "unsupported"}.get(exc.status, "corrupt")
    return "accepted"


def server_verdict(data: bytes) -> str:
    try:
        decode_image(data)
    except ImageTooLargeError:
        return "too large"
    except UnsupportedImageError:
        return "unsupported"
    except ImageDecodeError:
        return "corrupt"
    return "accepted"


def test_the_corpus_covers_every_verdict() -> None:
    verdicts = {function_verdict(data) for _, data in CORPUS}
    assert verdicts == {"accepted", "corrupt", "too large", "unsupported"}
    assert len(CORPUS) > 400


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[name for name, _ in CORPUS])
def test_function_and_model_server_agree(name: str, data: bytes) -> None:
    assert function_verdict(data) == server_verdict(data), name


def test_a_png_with_a_trailer_and_a_truncated_gif_get_one_answer() -> None:
    png = encode(gradient((20, 20), "RGB"), "PNG") + b"\x00" * 4096
    assert function_verdict(png) == server_verdict(png) == "accepted"
    gif = encode(noise((64, 64), "L", 1).convert("P"), "GIF")
    assert function_verdict(gif[:-40]) == server_verdict(gif[:-40]) == "corrupt"
