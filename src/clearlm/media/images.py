"""Image description: what clearlm can say about an image with the models it has offline, as one typed result.

No captioning or vision-language model can be had here, so a description is three measurements, each from
its own model: the likeliest ImageNet classes (EfficientNet-Lite0, ``images_classify``), the text in the
image (Tesseract OCR, ``images_ocr``) and a moderation score (Open-NSFW, ``images_moderate``).
:meth:`ImageDescription.to_text` renders it for a text model's prompt; in a chat the description takes
the image's place, so the pipeline's input policy reads it like any text (a card number read by OCR is
redacted) and the audit record keeps it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from clearlm.media.images_classify import ImageLabel, classify
from clearlm.media.images_decode import open_image, read_image_file
from clearlm.media.images_moderate import Moderation, moderate
from clearlm.media.images_ocr import OcrText, read_text

LABELS = 5  # classes reported
SHOWN_LABELS = 3  # classes written into a prompt (those at or above MIN_SHOWN, and always the first)
MIN_SHOWN = 0.05
OPEN_TAG, CLOSE_TAG = "[image {n}: described by clearlm's image models]", "[end of image {n}]"


@dataclass(slots=True)
class ImageDescription:
    """One image, described.

    Fields: ``width``, ``height`` (pixels); ``format`` (PNG, JPEG, ...); ``bytes`` (encoded size);
    ``sha256`` (of the encoded bytes); ``labels`` (the ``LABELS`` likeliest ImageNet classes, likeliest
    first, with their softmax probabilities); ``ocr`` (the text read, None when OCR was not run);
    ``moderation`` (Open-NSFW's score, None when not run); ``seconds`` (time per stage).
    """

    width: int
    height: int
    format: str
    bytes: int
    sha256: str
    labels: list[ImageLabel]
    ocr: OcrText | None
    moderation: Moderation | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The text OCR read ("" when none)."""
        return self.ocr.text if self.ocr is not None else ""

    def to_text(self, n: int = 1) -> str:
        """The description as a text model reads it, between the tags ``OPEN_TAG`` and ``CLOSE_TAG``
        (numbered ``n``), e.g.::

            [image 1: described by clearlm's image models]
            A 451 x 300 PNG image. The assistant cannot see it; these are measurements of it.
            Likely contents (EfficientNet-Lite0, ImageNet classes): tiger cat (39%), Egyptian cat (36%) ...
            Text in the image (Tesseract OCR): none found.
            Moderation (Open-NSFW): 0.01, safe.
            [end of image 1]
        """
        shown = [lb for i, lb in enumerate(self.labels) if i == 0 or lb.probability >= MIN_SHOWN]
        contents = ", ".join(f"{lb.name} ({lb.probability:.0%})" for lb in shown[:SHOWN_LABELS])
        lines = [
            OPEN_TAG.format(n=n),
            f"A {self.width} x {self.height} {self.format} image. The assistant cannot see it; these are "
            "measurements of it.",
            f"Likely contents (EfficientNet-Lite0, ImageNet classes): {contents or 'not classified'}.",
        ]
        if self.ocr is not None:
            if self.ocr.text:
                lines += ["Text in the image (Tesseract OCR):", '"""', self.ocr.text, '"""']
            else:
                lines.append("Text in the image (Tesseract OCR): none found.")
        if self.moderation is not None:
            lines.append(f"Moderation (Open-NSFW): {self.moderation.nsfw:.2f}, {self.moderation.reading}.")
        lines.append(CLOSE_TAG.format(n=n))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "labels": [lb.to_dict() for lb in self.labels],
            "ocr": None if self.ocr is None else self.ocr.to_dict(),
            "moderation": None if self.moderation is None else self.moderation.to_dict(),
            "seconds": self.seconds,
        }


def describe_image(
    image: bytes | str | Path, *, labels: int = LABELS, ocr: bool = True, moderation: bool = True
) -> ImageDescription:
    """Describe an encoded image (``bytes``) or an image file (a path): its ``labels`` likeliest ImageNet
    classes, the text in it (``ocr``) and its moderation score (``moderation``).

    Raises:
        ImageInputError: not an image, truncated, unsupported format (HTTP 400).
        ImageTooLargeError: past ``images_decode.MAX_IMAGE_BYTES`` or ``MAX_IMAGE_PIXELS`` (HTTP 413).
        ModelNotFoundError, IntegrityError: a packaged model is missing or altered.
        OcrUnavailableError: Tesseract is not installed (with ``ocr``).
    """
    data = read_image_file(image) if isinstance(image, str | Path) else image
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    picture = open_image(data)
    seconds["decode"] = _lap(start)
    return _described(picture, data, labels, ocr, moderation, seconds)


def describe_frame(picture: Image.Image, *, labels: int = LABELS, ocr: bool = True) -> ImageDescription:
    """Describe a decoded RGB image (a video frame): as :func:`describe_image`, without moderation's and
    the encoding's fields (``format`` "frame", ``bytes`` 0, ``sha256`` of the pixels)."""
    digest = hashlib.sha256(picture.tobytes()).hexdigest()
    return _described(picture, None, labels, ocr, False, {}, digest)


def _described(picture, data, labels, ocr, moderation, seconds, digest=None) -> ImageDescription:
    start = time.perf_counter()
    found = classify(picture, labels)
    seconds["classify"] = _lap(start)
    text = None
    if ocr:
        start = time.perf_counter()
        text = read_text(picture)
        seconds["ocr"] = _lap(start)
    score = None
    if moderation:
        start = time.perf_counter()
        score = moderate(picture)
        seconds["moderation"] = _lap(start)
    return ImageDescription(
        width=picture.width,
        height=picture.height,
        format=picture.info.get("format") or "frame",
        bytes=len(data) if data is not None else 0,
        sha256=digest or hashlib.sha256(data).hexdigest(),
        labels=found,
        ocr=text,
        moderation=score,
        seconds=seconds,
    )


def _lap(start: float) -> float:
    return round(time.perf_counter() - start, 4)
