"""Image synthesis: the interface an image generator plugs into. No generative image model (diffusion or
otherwise) can be had offline here, so none is built in and ``POST /v1/images/generations`` answers 501
with an OpenAI-style error (:class:`ImageGenerationUnavailableError`) until a generator is plugged in.

The request and response follow OpenAI's Images API (``POST /v1/images/generations``): a ``prompt``, ``n``
images of a ``size``, returned as base64 PNG (``b64_json``; ``url`` is not offered: this server hosts no
files). A generator is any object with ``name`` and ``generate(request) -> ImagesResponse``
(:class:`ImageGenerator`). Wiring one in must keep DESIGN's one path: its prompt passes the pipeline's input
policy (``clearlm.pipeline.screen_text``) and its request is audited like any other, before it runs.
"""

from __future__ import annotations

import time
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from clearlm.errors import ClearlmError

MAX_PROMPT_CHARS = 32_000  # OpenAI's bound for gpt-image-1 (dall-e-3: 4,000)
MAX_IMAGES = 10  # n (OpenAI's bound)
SIZES = ("auto", "256x256", "512x512", "1024x1024", "1536x1024", "1024x1536", "1792x1024", "1024x1792")


class ImageGenerationRequest(BaseModel):
    """``POST /v1/images/generations``'s body (OpenAI's fields; unknown ones are ignored)."""

    model_config = ConfigDict(extra="ignore")
    prompt: str = Field(
        min_length=1, max_length=MAX_PROMPT_CHARS, description=f"1 to {MAX_PROMPT_CHARS:,} characters."
    )
    model: str | None = Field(default=None, max_length=256)
    n: int = Field(default=1, ge=1, le=MAX_IMAGES, description=f"Images to generate, 1 to {MAX_IMAGES}.")
    size: Literal[SIZES] = "auto"  # type: ignore[valid-type]
    quality: Literal["auto", "standard", "hd", "low", "medium", "high"] | None = None
    style: Literal["vivid", "natural"] | None = None
    response_format: Literal["b64_json"] = Field(
        default="b64_json", description="b64_json only: this server hosts no image URLs."
    )
    output_format: Literal["png", "jpeg", "webp"] = "png"
    background: Literal["auto", "transparent", "opaque"] | None = None
    user: str | None = Field(default=None, max_length=256)


class GeneratedImage(BaseModel):
    """One image: ``b64_json`` (the encoded image, base64) and the prompt as the generator rewrote it."""

    b64_json: str
    revised_prompt: str | None = None


class ImagesUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ImagesResponse(BaseModel):
    """OpenAI's response: ``created`` (Unix seconds) and ``data`` (the images, in order)."""

    created: int = Field(default_factory=lambda: int(time.time()))
    data: list[GeneratedImage]
    usage: ImagesUsage | None = None


@runtime_checkable
class ImageGenerator(Protocol):
    """What an image generator provides: a ``name`` (the ``model`` it answers to) and ``generate``, which
    returns ``request.n`` images of ``request.size`` for ``request.prompt`` (already screened by the input
    policy) or raises a ``ClearlmError`` subclass for a request it cannot serve."""

    name: str

    def generate(self, request: ImageGenerationRequest) -> ImagesResponse: ...


class ImageGenerationUnavailableError(ClearlmError):
    """No image generator is configured on this server (HTTP 501)."""

    status_code = 501
    error_type = "server_error"
    code = "image_generation_unavailable"


def unavailable() -> ImageGenerationUnavailableError:
    """The error every image-generation request gets while no generator is configured."""
    return ImageGenerationUnavailableError(
        "image generation is not available on this server: no image generator is configured (no generative "
        "image model can be installed offline here). clearlm describes images instead: send them to "
        "/v1/chat/completions as image_url parts, or run `clearlm describe IMAGE`"
    )
