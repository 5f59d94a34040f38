"""Reading an image a user sent: bytes, a file or an OpenAI-style data URL, checked before any model sees it.

Bounds (each error says what to do): at most ``MAX_IMAGE_BYTES`` encoded, at most ``MAX_IMAGE_PIXELS``
decoded (a decompression bomb is refused before it is decoded), one of ``FORMATS``; a file that is not an
image, or is cut short, is refused with :class:`ImageInputError` (HTTP 400), a large one with
:class:`ImageTooLargeError` (HTTP 413).
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from pathlib import Path

from PIL import Image

from clearlm.errors import InvalidInputError

MAX_IMAGE_BYTES = 20 * 2**20  # one encoded image
MAX_IMAGE_PIXELS = 40_000_000  # width x height once decoded (a 8000 x 5000 photo)
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")  # PIL's names; a GIF's first frame is read
_DATA_URL = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,"
)


class ImageInputError(InvalidInputError):
    """An image that cannot be read: not an image, cut short, an unsupported format, a bad data URL."""

    code = "invalid_image"


class ImageTooLargeError(InvalidInputError):
    """An image past ``MAX_IMAGE_BYTES`` encoded or ``MAX_IMAGE_PIXELS`` decoded."""

    status_code = 413
    code = "payload_too_large"


def decode_data_url(url: str) -> bytes:
    """The bytes of an image sent as a data URL (``data:image/png;base64,...``, RFC 2397).

    Raises:
        ImageInputError: a URL that is not a base64 ``data:image/...`` URL (an ``http(s)`` URL included:
            this server fetches nothing), or whose base64 does not decode.
        ImageTooLargeError: more than ``MAX_IMAGE_BYTES`` once decoded.
    """
    match = _DATA_URL.match(url)
    if match is None:
        scheme = url.split(":", 1)[0][:16] if ":" in url else "no scheme"
        raise ImageInputError(
            f"an image_url must be a data URL (data:image/png;base64,...), got {scheme!r}: this server does "
            "not fetch images from the network; read the file and send its bytes base64-encoded"
        )
    media_type = (match["type"] or "").lower()
    if media_type and not media_type.startswith("image/"):
        raise ImageInputError(
            f"the data URL holds {media_type!r}, not an image: send image/png or image/jpeg"
        )
    if not match["b64"]:
        raise ImageInputError("the image's data URL must be base64-encoded (data:image/png;base64,...)")
    payload = url[match.end() :]
    if len(payload) > (MAX_IMAGE_BYTES * 4) // 3 + 4:
        raise ImageTooLargeError(_too_large_bytes((len(payload) * 3) // 4))
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageInputError(
            "the image's data URL is not valid base64: encode the file's bytes with standard base64"
        ) from None


def read_image_file(path: str | Path) -> bytes:
    """A file's bytes, bounded by ``MAX_IMAGE_BYTES``.

    Raises:
        ImageInputError: no such file, or unreadable; ImageTooLargeError: past the bound.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ImageTooLargeError(_too_large_bytes(size))
        return path.read_bytes()
    except OSError as exc:
        raise ImageInputError(f"cannot read {path}: {exc.strerror or exc}") from None


def open_image(data: bytes) -> Image.Image:
    """Decode ``data`` into an RGB image (fully loaded: a truncated file fails here, not later).

    Returns:
        A PIL image in mode RGB (alpha composited on white), ``.info["format"]`` set to its format.

    Raises:
        ImageInputError: empty, not an image, a format outside ``FORMATS``, or cut short (truncated).
        ImageTooLargeError: more than ``MAX_IMAGE_BYTES`` or ``MAX_IMAGE_PIXELS``.
    """
    if not data:
        raise ImageInputError("the image is empty (0 bytes): send a PNG or JPEG file")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageTooLargeError(_too_large_bytes(len(data)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format
            if fmt not in FORMATS:
                raise ImageInputError(f"unsupported image format {fmt!r}: send one of {', '.join(FORMATS)}")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageTooLargeError(_too_many_pixels(image.width, image.height))
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError("the image has too many pixels to decode safely: scale it down") from None
    except Image.UnidentifiedImageError:
        raise ImageInputError(
            f"the file is not an image ({_sniff(data)}): send a PNG, JPEG, GIF, WebP, BMP or TIFF file"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise ImageInputError(
            f"the {fmt or 'image'} file is damaged or cut short ({exc}): send the complete file"
        ) from None
    rgb = _rgb(image)
    rgb.info["format"] = fmt
    return rgb


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _sniff(data: bytes) -> str:
    """A short guess at what a non-image is, for the error message."""
    head = data[:64]
    if head.startswith(b"%PDF"):
        return "it looks like a PDF"
    if head[4:8] == b"ftyp" or head.startswith(b"\x1aE\xdf\xa3"):
        return "it looks like a video"
    if head.startswith((b"RIFF", b"ID3", b"OggS", b"fLaC")) and b"WEBP" not in head:
        return "it looks like audio"
    try:
        head.decode("utf-8")
        return "it looks like text"
    except UnicodeDecodeError:
        return f"{len(data):,} bytes of unknown data"


def _too_large_bytes(size: int) -> str:
    return (
        f"the image is {size / 2**20:.1f} MiB; at most {MAX_IMAGE_BYTES // 2**20} MiB is accepted: "
        "scale it down or compress it (JPEG)"
    )


def _too_many_pixels(width: int, height: int) -> str:
    return (
        f"the image is {width} x {height} pixels; at most {MAX_IMAGE_PIXELS // 1_000_000} million pixels are "
        "accepted: scale it down"
    )
