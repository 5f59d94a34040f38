"""``POST /v1/images/generations``: OpenAI's image generation, answered 501 until an image generator is
configured (``clearlm.media.images_generate`` defines the interface). Image *input* (``image_url`` parts in
chat completions) is ``server.images_chat``'s."""

from __future__ import annotations

from fastapi import Request

from clearlm.media.images_generate import ImageGenerationRequest, ImagesResponse, unavailable
from clearlm.server import protocol as p
from clearlm.server.routes import api_router

router = api_router()


@router.post(
    "/images/generations",
    response_model=ImagesResponse,
    responses={501: {"model": p.ErrorResponse, "description": "No image generator is configured."}},
)
async def images_generations(body: ImageGenerationRequest, request: Request):
    """OpenAI's image generation: 501 until an image generator is configured
    (``clearlm.media.images_generate.ImageGenerator``)."""
    raise unavailable()
