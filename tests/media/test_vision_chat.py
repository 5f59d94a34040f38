"""Images in chat completions, through a live server and the official client: the image is described
(the real EfficientNet-Lite0, Tesseract and Open-NSFW), its description takes its place in the prompt, the
input policy redacts a card number read by OCR in what the model reads, in what the response shows and in
the audit record; bad images are 4xx, never 500; image generation is a clear 501."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import httpx2 as httpx
import openai
import pytest
from PIL import Image, ImageDraw, ImageFont

TINY = "tiny-random-qwen2"
CARD = "4111 1111 1111 1111"  # a test Visa number (passes the Luhn check)
POLICY = """
name: photos
store_redacted: true
input:
  - {scanner: pii, action: redact, entities: [CREDIT_CARD]}
"""


def rendered(lines: list[str], size: tuple[int, int] = (720, 220)) -> bytes:
    """A PNG of black DejaVu Sans text on white (Debian's fonts-dejavu-core)."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("DejaVuSans.ttf", 30)
    for i, line in enumerate(lines):
        draw.text((24, 30 + 70 * i), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def data_url(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def ask(url: str, text: str = "What does the note say?") -> list[dict]:
    return [
        {
            "role": "user",
            "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
        }
    ]


@pytest.fixture(scope="module")
def long_backend(tiny_tokenizer):
    """The tiny random model with a context long enough for an image's description."""
    from clearlm.models.backends.torch_backend import TorchBackend
    from conftest import make_model

    return TorchBackend(make_model(tiny_tokenizer, context=4096), tiny_tokenizer, TINY)


@pytest.fixture
def server(serve, long_backend, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return serve(long_backend, policy=str(path), default_max_tokens=4)


def test_a_photographed_card_number_is_redacted_before_the_model_reads_it(server):
    png = rendered([f"Card number: {CARD}", "Deliver to the back door."])
    client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=120)
    r = client.chat.completions.create(model=TINY, messages=ask(data_url(png)), max_tokens=4, temperature=0)
    [shown] = r.model_extra["image_descriptions"]
    text = shown["description"]
    assert text.startswith("[image 1: described by clearlm's image models]") and text.endswith(
        "[end of image 1]"
    )
    assert "<CREDIT_CARD>" in text and "4111" not in text and "back door" in text
    assert shown["sha256"] == hashlib.sha256(png).hexdigest() and (shown["width"], shown["height"]) == (
        720,
        220,
    )
    assert shown["moderation"]["reading"] == "safe" and len(shown["labels"]) == 5
    assert shown["ocr_confidence"] > 80
    assert r.choices[0].finish_reason in ("stop", "length")
    [record] = server.state.audit.records()
    stored = json.dumps(record.prompt)
    assert "4111" not in stored and "<CREDIT_CARD>" in stored and "back door" in stored
    assert "What does the note say?" in stored
    assert record.parameters["images"] == [
        {"sha256": shown["sha256"], "bytes": len(png), "width": 720, "height": 220, "format": "PNG"}
    ]
    assert record.governance["input"]["action"] == "redact"
    # streamed: the same description on the chunk that ends the choice
    chunks = list(
        client.chat.completions.create(
            model=TINY, messages=ask(data_url(png)), max_tokens=4, temperature=0, stream=True
        )
    )
    described = [
        c.model_extra.get("image_descriptions") for c in chunks if c.model_extra.get("image_descriptions")
    ]
    assert [d[0]["description"] for d in described] == [text]
    assert server.state.audit.verify().ok


def test_bad_images_are_4xx_with_a_message_and_generation_is_501(server):
    c = httpx.Client(base_url=server.url, timeout=120)

    def chat(url: str, role: str = "user") -> httpx.Response:
        messages = ask(url)
        messages[0]["role"] = role
        return c.post("/chat/completions", json={"model": TINY, "messages": messages, "max_tokens": 2})

    png = rendered(["Hello"])
    cases = {
        "not an image": (chat(data_url(b"just some text, not a picture")), 400, "not an image"),
        "truncated": (chat(data_url(png[: len(png) // 2])), 400, "cut short"),
        "http url": (chat("https://example.com/cat.png"), 400, "data URL"),
        "bad base64": (chat("data:image/png;base64,@@@"), 400, "base64"),
        "not image type": (chat(data_url(png, "text/plain")), 400, "not an image"),
    }
    big = io.BytesIO()
    Image.new("L", (9000, 5000), 255).save(big, format="PNG")  # 45 million pixels, a few kB
    cases["too many pixels"] = (chat(data_url(big.getvalue())), 413, "million pixels")
    cases["assistant image"] = (chat(data_url(png), role="assistant"), 400, "user messages only")
    for name, (response, status, words) in cases.items():
        assert response.status_code == status, (name, response.text)
        assert words in response.json()["error"]["message"], (name, response.json())
    explained = c.post("/explain", json={"model": TINY, "messages": ask(data_url(png)), "max_tokens": 2})
    assert (
        explained.status_code == 400 and "/v1/chat/completions only" in explained.json()["error"]["message"]
    )
    client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=60)
    with pytest.raises(openai.APIStatusError) as info:
        client.images.generate(prompt="a watercolour of a lighthouse", n=1, size="1024x1024")
    assert info.value.status_code == 501
    error = info.value.response.json()["error"]
    assert error["code"] == "image_generation_unavailable" and "not available" in error["message"]
    assert c.get("/models").status_code == 200  # still serving
    assert all(
        r.status_code < 500 for r in server.state.audit.records() if r.endpoint != "/v1/images/generations"
    )
