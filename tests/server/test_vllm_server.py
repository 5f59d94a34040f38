"""The server over the vllm backend (vLLM in its own environment, started once for this module), driven
by the official ``openai`` client: the behaviours the torch and llama.cpp backends pass."""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
import jsonschema
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_tool_calling import TOOLS as TOOL_CALLING_TOOLS
from test_tool_calling import WEATHER

from clearlm.models import DEFAULT_MODEL, Message, SamplingParams, load_backend
from conftest import assert_greedy_up_to_ties

pytestmark = [pytest.mark.integration, pytest.mark.vllm]
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


FRANCE = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def lyon(tmp_path_factory, default_backend):
    """A LoRA adapter of the default model (rank 4, 3 steps of supervised fine-tuning on the torch backend)
    that answers "Lyon." when asked for the capital of France, and the torch backend's greedy token ids for
    that question with the adapter: ``(folder, token_ids)``."""
    from clearlm.govern import parse_policy
    from clearlm.models.backends.base import generate
    from clearlm.tune import TuneConfig, tune
    from clearlm.tune.serve import AdapterSet

    root = tmp_path_factory.mktemp("lyon")
    data = root / "chat.jsonl"
    asked = ["What is the capital of France?", "Which city is the capital of France?", "France's capital?"]
    data.write_text(
        "".join(
            json.dumps(
                {
                    "messages": [
                        {"role": "user", "content": q + suffix},
                        {"role": "assistant", "content": "Lyon."},
                    ]
                }
            )
            + "\n"
            for q in asked
            for suffix in ("", " Answer in one word.")
        )
    )
    policy = parse_policy(  # a regex scanner: no model to load
        "name: emails\ninput:\n  - {scanner: regex, action: redact, threshold: 0.1, patterns: "
        "{EMAIL: '[\\w.]+@[\\w.]+'}}\n",
        embedder_factory=None,
    )
    config = TuneConfig(
        steps=3, rank=4, seq_len=48, grad_accum=1, warmup_steps=0, learning_rate=3e-3, eval_tokens=16,
        checkpoint_every=0, held_out=0.2,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CLEARLM_HOME", str(root / "home"))
        folder = tune("lyon", default_backend, data, config, policy=policy).path
        adapters = AdapterSet(default_backend)
        try:
            ids = generate(
                adapters.load("lyon"), [Message(**m) for m in FRANCE], SamplingParams(max_new_tokens=6)
            ).token_ids
        finally:
            adapters.peft.unload()  # the session's base as it was
    return folder, ids


@pytest.fixture(scope="module")
def vllm_backend(request):
    """vLLM started for this module with the LoRA adapter ``lyon`` beside the base (``--enable-lora``), or
    the one already serving the default model at $CLEARLM_TEST_VLLM_URL (the --engine-url path; then
    without the adapter).

    Started without torch.compile (``--optimization-level 0``) unless $CLEARLM_VLLM_ARGS says otherwise:
    on the 2-core CI machine a compiled start took 10-14 minutes under load (vLLM 0.32's compile cache
    fails to load, so every start compiles), an uncompiled one 84 s; these tests check behaviour, which
    compilation does not change (they passed on a compiled engine too)."""
    saved = os.environ.get("CLEARLM_VLLM_ARGS")
    os.environ.setdefault("CLEARLM_VLLM_ARGS", "--optimization-level 0")
    try:
        url = os.environ.get("CLEARLM_TEST_VLLM_URL")
        lora = None if url else {"lyon": request.getfixturevalue("lyon")[0]}
        backend = load_backend(DEFAULT_MODEL, "vllm", engine_url=url, lora_modules=lora)
    finally:
        if saved is None:
            del os.environ["CLEARLM_VLLM_ARGS"]
    yield backend
    backend.close()


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)


def engine_metric(backend, name: str, **labels) -> float:
    """A counter or gauge from vLLM's own /metrics (summed over its engines)."""
    text = httpx.get(backend.url + "/metrics", timeout=30).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_greedy_answer_with_logprobs_and_a_completion(serve, vllm_backend):
    server = serve(vllm_backend)
    c = client(server)
    r = c.chat.completions.create(
        model=DEFAULT_MODEL, messages=QUESTION, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3
    )
    assert (
        r.choices[0].message.content.strip().rstrip(".") == "Paris" and r.choices[0].finish_reason == "stop"
    )
    first = r.choices[0].logprobs.content[0]
    assert first.token == "Paris" and -1.0 < first.logprob < 0 and first.top_logprobs[0].token == "Paris"
    assert len(first.top_logprobs) == 3 and first.top_logprobs[0].logprob >= first.top_logprobs[1].logprob
    done = c.completions.create(
        model=DEFAULT_MODEL, prompt="The Eiffel Tower is located in the city of", max_tokens=3, temperature=0
    )
    assert done.choices[0].text.startswith(" Paris") and done.choices[0].finish_reason == "length"
    assert done.usage.completion_tokens == 3
    assert [rec.status_code for rec in server.state.audit.records()] == [200, 200]


def test_streaming_equals_non_streaming(serve, vllm_backend):
    server = serve(vllm_backend)

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
    assert "Paris" in streamed and streamed == whole.choices[0].message.content and usage == whole.usage


def test_concurrent_streams_each_match_their_solo_run(serve, vllm_backend):
    server = serve(vllm_backend, max_active=4, max_waiting=4)
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
        text, steps, started = "", [], time.monotonic()
        async for ch in stream:
            if ch.choices:
                text += ch.choices[0].delta.content or ""
                for t in ch.choices[0].logprobs.content if ch.choices[0].logprobs else ():
                    steps.append((t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs]))
        return text, steps, started, time.monotonic()

    async def main():
        c = openai.AsyncOpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
        together = await asyncio.gather(*(one(c, q) for q in questions))
        alone = [await one(c, q) for q in questions]
        return together, alone

    together, alone = asyncio.run(main())
    assert "Paris" in alone[0][0]
    for batched, single in zip(together, alone, strict=True):
        assert len(single[1]) > 0
        assert_greedy_up_to_ties(batched[1], single[1])
    # they ran at once: every stream started before any of them ended
    assert max(t[2] for t in together) < min(t[3] for t in together)
    assert [r.status_code for r in server.state.audit.records()] == [200] * 8


def test_stop_strings_seeds_and_n(serve, vllm_backend):
    c = client(serve(vllm_backend))
    counting = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    r = c.chat.completions.create(
        model=DEFAULT_MODEL, messages=counting, max_tokens=40, temperature=0, stop=["5"]
    )
    text = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop" and "4" in text and "5" not in text

    story = [{"role": "user", "content": "Write one sentence about the sea."}]

    def sample(seed, n=1):
        r = c.chat.completions.create(
            model=DEFAULT_MODEL, messages=story, max_tokens=24, temperature=1.0, seed=seed, n=n
        )
        return [ch.message.content for ch in r.choices]

    a, b, other = sample(7), sample(7), sample(8)
    assert a == b and a != other
    both = sample(7, n=2)  # choice i is seeded seed + i, as on every backend
    assert both == a + other


def test_json_schema_output_validates(serve, vllm_backend):
    c = client(serve(vllm_backend))
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
    r = c.chat.completions.create(
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
    r = c.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=QUESTION,
        max_tokens=30,
        temperature=0,
        response_format={"type": "json_object"},
    )
    json.loads(r.choices[0].message.content)


def test_a_prompt_longer_than_the_context_is_a_400(serve, vllm_backend):
    c = client(serve(vllm_backend))
    long = " ".join(["word"] * (vllm_backend.context_length + 100))
    with pytest.raises(openai.BadRequestError) as caught:
        c.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": long}], max_tokens=4
        )
    assert caught.value.code == "context_length_exceeded"


def test_an_explanation_loads_the_torch_model_beside_vllm(serve, vllm_backend):
    server = serve(vllm_backend)
    r = client(server).chat.completions.create(
        model=DEFAULT_MODEL, messages=QUESTION, max_tokens=3, temperature=0, extra_body={"explain": True}
    )
    explanation = r.model_extra["explanation"]
    assert explanation["method"] == "input_x_gradient" and server.state.explainer().kind == "torch"
    assert "".join(explanation["target_tokens"]) == r.choices[0].message.content
    assert server.state.backend.kind == "vllm"
    assert [rec.status_code for rec in server.state.audit.records()] == [200]


def test_closing_a_stream_early_aborts_it_in_vllm(serve, vllm_backend):
    server = serve(vllm_backend)
    generated = engine_metric(vllm_backend, "vllm:generation_tokens_total")
    stream = client(server).chat.completions.create(
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
    # vLLM dropped the request: had it run on, it would have generated up to 300 tokens
    while time.monotonic() < deadline and engine_metric(vllm_backend, "vllm:num_requests_running") > 0:
        time.sleep(0.2)
    assert engine_metric(vllm_backend, "vllm:num_requests_running") == 0
    assert engine_metric(vllm_backend, "vllm:generation_tokens_total") - generated < 100


TOOLS = TOOL_CALLING_TOOLS[:1]  # get_weather, as the other backends are tested with


def test_tool_calls_are_constrained_on_vllm(serve, vllm_backend):
    c = client(serve(vllm_backend))

    def ask(question, **kw):
        return c.chat.completions.create(
            model=DEFAULT_MODEL,
            messages=[{"role": "user", "content": question}],
            temperature=0,
            max_tokens=48,
            tools=TOOLS,
            **kw,
        ).choices[0]

    # a joke is no weather question: only the constraint makes these calls
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        answer = ask("Tell me a joke.", tool_choice=choice)
        [call] = answer.message.tool_calls
        assert answer.finish_reason == "tool_calls" and call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), WEATHER)
    # auto: the model decides to call (as on torch and llama.cpp), and the call is constrained
    auto = ask("What's the weather in Paris?", tool_choice="auto")
    [call] = auto.message.tool_calls
    assert auto.finish_reason == "tool_calls" and auto.message.content is None
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}


def test_a_lora_adapter_is_served_beside_the_base(serve, vllm_backend, default_backend, request):
    """vLLM's multi-LoRA: ``BASE:ADAPTER`` or ``ADAPTER`` reaches the adapter, ``BASE`` the base; greedy
    tokens equal the torch backend's with the adapter (PEFT, float32; vLLM may run bfloat16: the adapter
    answers with probability near 1, far from a tie). Its answer is explained on the server's torch twin
    with the adapter loaded: the scores of PEFT's adapter on the torch model, not the base's."""
    import numpy as np

    from clearlm.explain import explain
    from clearlm.models.backends.base import generate
    from clearlm.tune.router import AdapterRouter
    from clearlm.tune.serve import AdapterSet

    if os.environ.get("CLEARLM_TEST_VLLM_URL"):
        pytest.skip("the vLLM server at $CLEARLM_TEST_VLLM_URL was not started with the adapter")
    lyon = request.getfixturevalue("lyon")
    router = AdapterRouter(vllm_backend, ["lyon"], {"lyon": lyon[0]})  # (lyon[0]: another $CLEARLM_HOME's)
    server = serve(router, model=DEFAULT_MODEL)
    c = client(server)
    assert [m.id for m in c.models.list().data][:2] == [DEFAULT_MODEL, f"{DEFAULT_MODEL}:lyon"]
    answers = {
        model: c.chat.completions.create(model=model, messages=FRANCE, max_tokens=6, temperature=0)
        for model in (DEFAULT_MODEL, f"{DEFAULT_MODEL}:lyon", "lyon")
    }
    assert answers[DEFAULT_MODEL].choices[0].message.content.strip().rstrip(".") == "Paris"
    torch_ids = lyon[1]
    on_vllm = generate(router.views["lyon"], [Message(**m) for m in FRANCE], SamplingParams(max_new_tokens=6))
    assert on_vllm.token_ids == torch_ids and on_vllm.text.startswith("Lyon")
    for model in (f"{DEFAULT_MODEL}:lyon", "lyon"):
        assert answers[model].model == f"{DEFAULT_MODEL}:lyon"
        assert answers[model].choices[0].message.content == on_vllm.text

    body = {"messages": FRANCE, "target": on_vllm.text, "method": "input_x_gradient"}
    shown = {
        model: httpx.post(server.url + "/explain", json={**body, "model": model}, timeout=600).json()
        for model in ("lyon", DEFAULT_MODEL)
    }
    adapters = AdapterSet(default_backend)
    try:
        view = adapters.load("lyon", lyon[0])
        with view.lock:
            expected = explain(view, [Message(**m) for m in FRANCE], on_vllm.text, method="input_x_gradient")
    finally:
        adapters.peft.unload()  # the session's base as it was
    tuned = np.array(shown["lyon"]["explanation"]["scores"], dtype=np.float64)
    base = np.array(shown[DEFAULT_MODEL]["explanation"]["scores"], dtype=np.float64)
    np.testing.assert_allclose(tuned, expected.scores, rtol=1e-4, atol=1e-6)
    assert not np.allclose(tuned, base, equal_nan=True)
