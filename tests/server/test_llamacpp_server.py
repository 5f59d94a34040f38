"""The server over the llama.cpp backend with parallel slots: concurrent streams decode together."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from clearlm.models import DEFAULT_MODEL, load_backend
from conftest import assert_greedy_up_to_ties

pytestmark = [pytest.mark.integration, pytest.mark.llamacpp]


@pytest.fixture(scope="module")
def llama_slots():
    return load_backend(DEFAULT_MODEL, "llamacpp", slots=4)


def test_concurrent_streams_over_parallel_slots(serve, llama_slots):
    server = serve(llama_slots, max_active=4, max_waiting=4)
    questions = [
        "What is the capital of France?",
        "What is 2 plus 2?",
        "Name a primary colour.",
        "Say hello.",
    ]

    async def one(c, q):
        stream = await c.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=[{"role": "user", "content": q}],
            max_tokens=12,
            temperature=0,
            stream=True,
            logprobs=True,
            top_logprobs=5,
        )
        text, steps = "", []
        async for ch in stream:
            if ch.choices:
                text += ch.choices[0].delta.content or ""
                for t in ch.choices[0].logprobs.content if ch.choices[0].logprobs else ():
                    steps.append((t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs]))
        return text, steps

    async def main():
        c = openai.AsyncOpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
        together = await asyncio.gather(*(one(c, q) for q in questions))
        alone = [await one(c, q) for q in questions]
        return together, alone

    together, alone = asyncio.run(main())
    assert "Paris" in alone[0][0]
    for (_, batched), (_, single) in zip(together, alone, strict=True):
        assert len(single) > 0
        assert_greedy_up_to_ties(batched, single)
    assert [r.status_code for r in server.state.audit.records()] == [200] * 8


def test_logprobs_and_json_over_llamacpp(serve, llama_slots):
    server = serve(llama_slots, max_active=4)
    c = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
    r = c.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        max_tokens=4,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    first = r.choices[0].logprobs.content[0]
    assert first.token == "Paris" and first.top_logprobs[0].token == "Paris" and first.logprob < 0
    schema = {"type": "object", "properties": {"capital": {"type": "string"}}, "required": ["capital"]}
    r = c.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Reply in JSON."}],
        max_tokens=30,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert "Paris" in json.loads(r.choices[0].message.content)["capital"]


def test_explanations_load_the_torch_model_beside_llamacpp(serve, llama_slots):
    server = serve(llama_slots)
    c = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
    r = c.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        max_tokens=3,
        temperature=0,
        extra_body={"explain": True},
    )
    explanation = r.model_extra["explanation"]
    assert explanation["method"] == "input_x_gradient" and server.state.explainer().kind == "torch"
    assert "".join(explanation["target_tokens"]) == r.choices[0].message.content
