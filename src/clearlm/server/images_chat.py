"""Image content parts in chat completions (``completions.chat_completion`` calls these).

A chat request's ``image_url`` parts (data URLs only) are described (``clearlm.media.images``: ImageNet
labels, OCR text, a moderation score) and each description takes its image's place in the message before
the pipeline's turn starts, so the input policy reads it like any text (a card number read by OCR is
redacted), the model answers from it, and the audit record keeps it (as the policy stores text). The
response's ``image_descriptions`` shows each description as the model read it (taken from the turn's prompt
after the input policy), with its labels and moderation score; the record's ``parameters["images"]``
names each image by sha256 and size.
"""

from __future__ import annotations

import anyio

from clearlm.errors import InvalidInputError
from clearlm.media.images import CLOSE_TAG, OPEN_TAG, ImageDescription, describe_image
from clearlm.media.images_decode import decode_data_url
from clearlm.server import protocol as p

_describing = anyio.CapacityLimiter(1)  # one image described at a time (each uses every core for ~0.5 s)


def has_images(body: p.ChatCompletionRequest) -> bool:
    return any(m.images() for m in body.messages)


async def describe_parts(
    body: p.ChatCompletionRequest,
) -> tuple[p.ChatCompletionRequest, list[ImageDescription]]:
    """``body`` with each image part replaced by its description (a message's parts joined by blank lines),
    and the descriptions in order (image ``n`` is ``descriptions[n - 1]``).

    Raises:
        InvalidInputError: more than ``MAX_IMAGES`` images; ImageInputError / ImageTooLargeError: an image
            that cannot be read (not a data URL, not an image, truncated: 400; too large: 413).
    """
    count = sum(len(m.images()) for m in body.messages)
    if count > p.MAX_IMAGES:
        raise InvalidInputError(f"a request may hold at most {p.MAX_IMAGES} images, got {count}: send fewer")
    described: list[ImageDescription] = []
    messages = []
    for i, message in enumerate(body.messages):
        if not message.images():
            messages.append(message)
            continue
        pieces = []
        for part in message.content:
            if part.type == "text":
                pieces.append(part.text)
                continue
            try:
                data = decode_data_url(part.image_url.url)
                async with _describing:
                    described.append(await anyio.to_thread.run_sync(describe_image, data))
            except InvalidInputError as exc:
                exc.args = (f"messages[{i}]: image {len(described) + 1}: {exc}",)
                raise
            pieces.append(described[-1].to_text(len(described)))
        messages.append(message.model_copy(update={"content": "\n\n".join(x for x in pieces if x)}))
    return body.model_copy(update={"messages": messages}), described


def record_images(turn, described: list[ImageDescription]) -> None:
    """Name the request's images in its audit record (``parameters["images"]``: sha256, bytes, size)."""
    turn.record.parameters["images"] = [
        {"sha256": d.sha256, "bytes": d.bytes, "width": d.width, "height": d.height, "format": d.format}
        for d in described
    ]


def shown(turn, described: list[ImageDescription]) -> list[dict]:
    """What the response shows of each image: ``index`` (1-based), ``description`` (as the model read it,
    after the input policy: redacted where it redacted; None if the prompt no longer holds it),
    ``labels``, ``moderation``, ``ocr_confidence``, ``width``, ``height``, ``format``, ``sha256``."""
    used = turn.request.prompt
    text = used if isinstance(used, str) else "\n".join(m.content or "" for m in used)
    out = []
    for n, d in enumerate(described, 1):
        start, close = text.find(OPEN_TAG.format(n=n)), CLOSE_TAG.format(n=n)
        end = text.find(close, max(start, 0))
        out.append(
            {
                "index": n,
                "description": text[start : end + len(close)] if 0 <= start <= end else None,
                "labels": [lb.to_dict() for lb in d.labels],
                "moderation": None if d.moderation is None else d.moderation.to_dict(),
                "ocr_confidence": None if d.ocr is None else d.ocr.confidence,
                "width": d.width,
                "height": d.height,
                "format": d.format,
                "sha256": d.sha256,
            }
        )
    return out
