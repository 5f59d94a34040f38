"""The server on the real default model, driven by the official ``openai`` client (sync, async,
streaming): chat, completions, embeddings, logprobs, JSON schema output, explanations, a client that
leaves mid-stream, and a bounded load test against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jsonschema
import numpy as np
import openai
import pytest

from clearlm.explain import Attribution, explain
from clearlm.models import DEFAULT_MODEL, Message
from clearlm.store import AuditLog, Database

pytestmark = pytest.mark.integration
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def embedder():
    from clearlm.models.embeddings import load_embedder

    return load_embedder()


@pytest.fixture
def server(serve, default_backend, embedder):
    return serve(default_backend, embedder=embedder)


def sync_client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)


def test_chat_and_completion_with_the_official_client(server):
    c = sync_client(server)
    r = c.chat.completions.create(
        model=DEFAULT_MODEL, messages=QUESTION, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3
    )
    assert (
        r.choices[0].message.content.strip().rstrip(".") == "Paris" and r.choices[0].finish_reason == "stop"
    )
    first = r.choices[0].logprobs.content[0]
    assert first.token == "Paris" and -1.0 < first.logprob < 0 and first.top_logprobs[0].token == "Paris"
    done = c.completions.create(
        model=DEFAULT_MODEL, prompt="The Eiffel Tower is located in the city of", max_tokens=3, temperature=0
    )
    assert done.choices[0].text.startswith(" Paris") and done.choices[0].finish_reason == "length"
    assert done.usage.completion_tokens == 3


def test_async_client_and_async_streaming(server):
    async def main():
        c = openai.AsyncOpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
        whole = await c.chat.completions.create(
            model=DEFAULT_MODEL, messages=QUESTION, max_tokens=8, temperature=0
        )
        stream = await c.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=QUESTION,
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts, usage = [], None
        async for chunk in stream:
            parts.extend(ch.delta.content or "" for ch in chunk.choices)
            usage = chunk.usage or usage
        return whole, "".join(parts), usage

    whole, streamed, usage = asyncio.run(main())
    assert streamed == whole.choices[0].message.content and usage == whole.usage


def test_json_schema_output_parses_and_validates(server):
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "country": {"type": "string"},
            "population": {"type": "integer"},
        },
        "required": ["city", "country", "population"],
        "additionalProperties": False,
    }
    r = sync_client(server).chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[
            {"role": "user", "content": "Describe Paris as JSON: its city name, country and population."}
        ],
        max_tokens=60,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": schema, "strict": True},
        },
    )
    assert r.choices[0].finish_reason == "stop"
    value = json.loads(r.choices[0].message.content)
    jsonschema.validate(value, schema)
    assert value["city"] == "Paris" and value["population"] > 0
    r = sync_client(server).chat.completions.create(
        model=DEFAULT_MODEL,
        messages=QUESTION,
        max_tokens=30,
        temperature=0,
        response_format={"type": "json_object"},
    )
    json.loads(r.choices[0].message.content)


def test_embeddings_float_and_base64_agree_and_rank_by_meaning(server):
    c = sync_client(server)
    texts = [
        "The cat sat on the mat.",
        "A kitten rested on the rug.",
        "Quarterly revenue grew by ten percent.",
    ]
    floats = np.array(
        [
            d.embedding
            for d in c.embeddings.create(model="all-minilm-l6-v2", input=texts, encoding_format="float").data
        ]
    )
    raw = c.with_raw_response.embeddings.create(
        model="all-minilm-l6-v2", input=texts, encoding_format="base64"
    )
    body = json.loads(raw.text)
    decoded = np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in body["data"]])
    assert floats.shape == (3, 384) and np.array_equal(decoded, floats.astype(np.float32))
    assert np.allclose(np.linalg.norm(floats, axis=1), 1, atol=1e-5)
    sims = floats @ floats.T
    assert sims[0, 1] > 0.5 > sims[0, 2]
    assert body["usage"]["prompt_tokens"] > 3 * 3


def test_explanations_attached_and_after_the_fact_equal_the_library(server, default_backend):
    c = sync_client(server)
    r = c.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=QUESTION,
        max_tokens=4,
        temperature=0,
        extra_body={"explain": {"method": "input_x_gradient"}},
    )
    attached = Attribution.from_dict(r.model_extra["explanation"])
    direct = explain(
        default_backend, [Message(**QUESTION[0])], r.choices[0].message.content, method="input_x_gradient"
    )
    assert attached.equals(direct)
    later = c.post("/explain", cast_to=object, body={"completion_id": r.id, "method": "input_x_gradient"})
    assert Attribution.from_dict(later["explanation"]).equals(direct) and later["completion_id"] == r.id
    with pytest.raises(openai.NotFoundError, match="no completed response"):
        c.post("/explain", cast_to=object, body={"completion_id": "chatcmpl-nope"})


def test_a_client_leaving_mid_stream_stops_its_generation(server):
    c = sync_client(server)
    stream = c.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "Write a very long story about a lighthouse keeper."}],
        max_tokens=300,
        temperature=0,
        stream=True,
    )
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.monotonic() + 60
    while not server.state.audit.records() and time.monotonic() < deadline:
        time.sleep(0.1)
    [rec] = server.state.audit.records()
    assert rec.status_code == 499 and rec.finish_reason == "cancelled" and 0 < rec.completion_tokens < 100
    assert rec.output and server.state.gate.active == 0


def test_load_32_concurrent_streams_complete_or_get_429(serve, default_backend, db_url):
    server = serve(default_backend, db_url=db_url, max_active=1, max_waiting=7)

    async def one(c, i):
        try:
            stream = await c.chat.completions.create(
                model=DEFAULT_MODEL,
                messages=[{"role": "user", "content": f"Say the number {i}."}],
                max_tokens=4,
                temperature=0,
                stream=True,
            )
            text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
            return 200, text
        except openai.APIStatusError as exc:
            return exc.status_code, exc.response.headers.get("retry-after")

    async def main():
        c = openai.AsyncOpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=120)
        return await asyncio.wait_for(asyncio.gather(*(one(c, i) for i in range(32))), timeout=240)

    results = asyncio.run(main())
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 429} and statuses.count(200) >= 8 and statuses.count(429) >= 1
    assert all(text for s, text in results if s == 200) and all(ra == "1" for s, ra in results if s == 429)
    logged = AuditLog(Database(db_url)).records()
    assert len(logged) == 32 and sorted(r.status_code for r in logged) == sorted(statuses)
    assert len({r.request_id for r in logged}) == 32
    assert server.state.gate.active == 0 and server.state.gate.waiting == 0
