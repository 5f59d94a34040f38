"""The OpenAI-compatible API over a tiny random model: the official client, raw HTTP, errors, keys,
admission control, metrics and the audit log (one record per request)."""

from __future__ import annotations

import json

import httpx2 as httpx
import openai
import pytest
import torch

from clearlm.models import Message, SamplingParams, generate
from clearlm.store import ApiKeys, AuditLog, Database

MSGS = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "Where is the Eiffel Tower?"},
]


def client(server, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=60)


def records(server):
    return server.state.audit.records()


@pytest.fixture
def server(serve, tiny_backend):
    return serve(tiny_backend)


def test_models_are_listed_and_unknown_ones_are_404(server):
    c = client(server)
    assert [m.id for m in c.models.list().data] == ["tiny-random-qwen2", "all-minilm-l6-v2"]
    assert c.models.retrieve("tiny-random-qwen2").owned_by == "clearlm"
    with pytest.raises(openai.NotFoundError) as err:
        c.models.retrieve("gpt-4")
    assert err.value.body["code"] == "model_not_found" and "GET /v1/models" in err.value.body["message"]


def test_chat_completion_equals_direct_generation_and_is_audited(server, tiny_backend):
    r = client(server).chat.completions.create(
        model="tiny-random-qwen2", messages=MSGS, max_tokens=12, temperature=0
    )
    prompt = [Message(m["role"], m["content"]) for m in MSGS]
    direct = generate(tiny_backend, prompt, SamplingParams(max_new_tokens=12))
    choice = r.choices[0]
    assert choice.message.content == direct.text and choice.finish_reason == direct.finish_reason
    assert r.usage.prompt_tokens == direct.prompt_tokens == len(tiny_backend.encode(prompt).token_ids)
    assert r.usage.completion_tokens == len(direct.token_ids)
    assert r.id.startswith("chatcmpl-") and r.model == "tiny-random-qwen2"
    [rec] = records(server)
    assert rec.request_id == r.id and rec.endpoint == "/v1/chat/completions" and rec.status_code == 200
    assert rec.prompt == MSGS and rec.output == direct.text and rec.finish_reason == direct.finish_reason
    assert rec.parameters["max_new_tokens"] == 12 and rec.parameters["temperature"] == 0
    assert rec.prompt_tokens == r.usage.prompt_tokens and rec.completion_tokens == r.usage.completion_tokens
    assert rec.latency_ms > 0 and rec.error is None


def test_streaming_sends_the_same_text_then_usage_then_done(server):
    c = client(server)
    whole = c.chat.completions.create(model="tiny-random-qwen2", messages=MSGS, max_tokens=20, temperature=0)
    chunks = list(
        c.chat.completions.create(
            model="tiny-random-qwen2",
            messages=MSGS,
            max_tokens=20,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert (
        "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        == whole.choices[0].message.content
    )
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    assert len({ch.id for ch in chunks}) == 1
    raw = httpx.post(
        server.url + "/chat/completions",
        json={"model": "tiny-random-qwen2", "messages": MSGS, "max_tokens": 3, "stream": True},
        timeout=60,
    )
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = [e for e in raw.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)
    assert [r.status_code for r in records(server)] == [200, 200, 200]


def test_n_choices_are_seeded_and_recorded_once(server):
    c = client(server)
    kw = dict(model="tiny-random-qwen2", messages=MSGS, max_tokens=8, temperature=1.0, seed=7, n=3)
    a, b = c.chat.completions.create(**kw), c.chat.completions.create(**kw)
    texts = [ch.message.content for ch in a.choices]
    assert [ch.index for ch in a.choices] == [0, 1, 2] and texts == [ch.message.content for ch in b.choices]
    assert len(set(texts)) > 1  # seeds 7, 8, 9
    rec = records(server)[0]
    assert rec.output == texts and rec.parameters["n"] == 3 and len(records(server)) == 2
    assert a.usage.completion_tokens == rec.completion_tokens >= 3


def test_logprobs_are_the_models_log_softmax(server, tiny_backend):
    r = client(server).chat.completions.create(
        model="tiny-random-qwen2", messages=MSGS, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    prompt = [Message(m["role"], m["content"]) for m in MSGS]
    ids = tiny_backend.encode(prompt).token_ids
    generated = generate(tiny_backend, prompt, SamplingParams(max_new_tokens=6)).token_ids
    with torch.no_grad():
        logits = tiny_backend.model(torch.tensor([ids + list(generated)])).logits[0]
    expected = torch.log_softmax(logits.double(), -1)[len(ids) - 1 : len(ids) - 1 + len(generated)]
    assert len(content) == len(generated)
    for row, tok, lp in zip(expected, generated, content, strict=True):
        assert lp.logprob == pytest.approx(row[tok].item(), abs=1e-6)
        assert [t.logprob for t in lp.top_logprobs] == sorted(
            (t.logprob for t in lp.top_logprobs), reverse=True
        )
        assert lp.top_logprobs[0].logprob == pytest.approx(row.max().item(), abs=1e-6)  # greedy: the argmax
        assert lp.token == tiny_backend.decode([tok]) and bytes(lp.bytes).decode() == lp.token


def test_text_completions_with_echo_logprobs_and_stream(server, tiny_backend):
    c = client(server)
    prompt = "The capital of Italy is"
    r = c.completions.create(
        model="tiny-random-qwen2", prompt=prompt, max_tokens=5, temperature=0, logprobs=2, echo=True
    )
    direct = generate(tiny_backend, prompt, SamplingParams(max_new_tokens=5))
    assert r.choices[0].text == prompt + direct.text and r.id.startswith("cmpl-")
    lp = r.choices[0].logprobs
    assert "".join(lp.tokens) == direct.text and lp.text_offset[0] == len(prompt)
    assert all(len(top) <= 2 for top in lp.top_logprobs) and all(v <= 0 for v in lp.token_logprobs)
    streamed = c.completions.create(
        model="tiny-random-qwen2", prompt=prompt, max_tokens=5, temperature=0, stream=True
    )
    assert "".join(ch.choices[0].text for ch in streamed) == direct.text
    assert records(server)[0].prompt == prompt


def test_stop_strings_cut_the_output(server, tiny_backend):
    c = client(server)
    full = c.chat.completions.create(model="tiny-random-qwen2", messages=MSGS, max_tokens=30, temperature=0)
    text = full.choices[0].message.content
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    assert len(stop) == 2
    r = c.chat.completions.create(
        model="tiny-random-qwen2", messages=MSGS, max_tokens=30, temperature=0, stop=[stop]
    )
    assert r.choices[0].message.content == text[: text.index(stop)] and r.choices[0].finish_reason == "stop"


BAD = [
    (b"{not json", 400, "not valid JSON"),
    (b'{"model": "tiny-random-qwen2", "messages": [{"role": "user", "content": "\xff\xfe"}]}', 400, None),
    ({"model": "tiny-random-qwen2", "messages": "hello"}, 400, "messages"),
    ({"model": "tiny-random-qwen2", "messages": []}, 400, "messages"),
    ({"model": "tiny-random-qwen2", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
    ({"model": "tiny-random-qwen2", "messages": MSGS, "max_tokens": -5}, 400, "max_tokens"),
    (
        {"model": "tiny-random-qwen2", "messages": MSGS, "max_tokens": 10**9},
        400,
        "max_tokens",
    ),  # past MAX_TOKENS
    ({"model": "tiny-random-qwen2", "messages": MSGS, "max_tokens": 250}, 400, "context_length_exceeded"),
    (
        {"model": "tiny-random-qwen2", "messages": [{"role": "user", "content": "word " * 300}]},
        400,
        "context",
    ),
    ({"model": "tiny-random-qwen2", "messages": MSGS, "temperature": "hot"}, 400, "temperature"),
    ({"model": "tiny-random-qwen2", "messages": MSGS, "temperature": 7}, 400, "temperature"),
    ({"model": "tiny-random-qwen2", "messages": MSGS, "n": 0}, 400, "n"),
    ({"model": "tiny-random-qwen2", "messages": MSGS, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"model": "tiny-random-qwen2", "messages": MSGS, "top_logprobs": 2}, 400, "logprobs: true"),
    ({"model": "tiny-random-qwen2", "messages": [{"role": "user", "content": "  "}]}, 400, "empty"),
    ({"model": "gpt-4", "messages": MSGS}, 404, "model_not_found"),
    (
        {
            "model": "tiny-random-qwen2",
            "messages": MSGS,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 12}}},
        },
        400,
        "not valid JSON Schema",
    ),
    ({"model": "tiny-random-qwen2", "messages": MSGS, "explain": {"method": "telepathy"}}, 400, "telepathy"),
]


@pytest.mark.parametrize("body,status,needle", BAD, ids=range(len(BAD)))
def test_bad_requests_get_openai_error_bodies_and_one_record(server, body, status, needle):
    kw = (
        {"content": body, "headers": {"content-type": "application/json"}}
        if isinstance(body, bytes)
        else {"json": body}
    )
    r = httpx.post(server.url + "/chat/completions", timeout=60, **kw)
    assert r.status_code == status
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] in ("invalid_request_error", "not_found_error")
    if needle:
        assert needle in json.dumps(error)
    [rec] = records(server)
    assert rec.status_code == status and rec.error == error["message"] and rec.output is None


def test_unknown_routes_and_methods_answer_in_the_same_shape(server):
    r = httpx.get(server.url + "/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.get(server.url + "/chat/completions")
    assert r.status_code == 405 and "message" in r.json()["error"]


def test_keys_are_required_once_created(serve, tiny_backend, tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    keys = ApiKeys(Database(url))
    key, secret = keys.create("tests")
    server = serve(tiny_backend, db_url=url)
    kw = dict(model="tiny-random-qwen2", messages=MSGS, max_tokens=2)
    with pytest.raises(openai.AuthenticationError) as err:
        client(server, "sk-clearlm-wrong").chat.completions.create(**kw)
    assert err.value.body["code"] == "invalid_api_key"
    r = httpx.get(server.url + "/models")
    assert (
        r.status_code == 401
        and r.headers["www-authenticate"] == "Bearer"
        and "Authorization" in r.json()["error"]["message"]
    )
    assert client(server, secret).chat.completions.create(**kw).choices
    keys.revoke(key.id)
    with pytest.raises(openai.AuthenticationError):
        client(server, secret).chat.completions.create(**kw)
    assert httpx.get(server.base + "/health").status_code == 200  # operations endpoints need no key
    assert [(r.status_code, r.api_key_id) for r in records(server)] == [
        (401, None),
        (401, None),
        (200, key.id),
        (401, None),
    ]


def test_a_full_queue_answers_429_with_retry_after(serve, tiny_backend):
    server = serve(tiny_backend, max_active=1, max_waiting=0, retry_after=3)
    server.call(server.state.gate.acquire)  # the only slot is busy
    try:
        r = httpx.post(
            server.url + "/chat/completions",
            json={"model": "tiny-random-qwen2", "messages": MSGS, "max_tokens": 2},
        )
        assert r.status_code == 429 and r.headers["retry-after"] == "3"
        assert (
            r.json()["error"]["code"] == "rate_limit_exceeded"
            and r.json()["error"]["type"] == "rate_limit_error"
        )
    finally:
        server.call(server.state.gate.release)
    assert (
        client(server).chat.completions.create(model="tiny-random-qwen2", messages=MSGS, max_tokens=2).choices
    )
    assert [r.status_code for r in records(server)] == [429, 200]
    assert server.state.gate.active == 0 and server.state.gate.waiting == 0


def test_health_ready_and_metrics(server):
    assert httpx.get(server.base + "/health").json() == {"status": "ok"}
    ready = httpx.get(server.base + "/ready").json()
    assert ready == {"status": "ready", "model": "tiny-random-qwen2", "backend": "torch"}
    c = client(server)
    r = c.chat.completions.create(model="tiny-random-qwen2", messages=MSGS, max_tokens=4, temperature=0)
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="tiny-random-qwen2", messages=MSGS, max_tokens=-1)
    text = httpx.get(server.base + "/metrics").text
    assert 'clearlm_requests_total{route="/v1/chat/completions",status="200"} 1.0' in text
    assert 'clearlm_requests_total{route="/v1/chat/completions",status="400"} 1.0' in text
    assert "clearlm_time_to_first_token_seconds_count 1.0" in text
    assert f"clearlm_prompt_tokens_total {float(r.usage.prompt_tokens)}" in text
    assert f"clearlm_completion_tokens_total {float(r.usage.completion_tokens)}" in text
    assert "clearlm_queue_depth 0.0" in text


def test_audit_records_reach_both_databases(serve, tiny_backend, db_url):
    server = serve(tiny_backend, db_url=db_url)
    c = client(server)
    ok = c.chat.completions.create(model="tiny-random-qwen2", messages=MSGS, max_tokens=3, temperature=0)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="nope", messages=MSGS)
    c.models.list()
    logged = AuditLog(Database(db_url)).records()
    assert [(r.endpoint, r.status_code) for r in logged] == [
        ("/v1/chat/completions", 200),
        ("/v1/chat/completions", 404),
        ("/v1/models", 200),
    ]
    assert logged[0].request_id == ok.id and logged[0].output == ok.choices[0].message.content


def test_embeddings_need_their_model_name(server):
    with pytest.raises(openai.NotFoundError, match="all-minilm-l6-v2"):
        client(server).embeddings.create(model="text-embedding-3-small", input="hello")
    assert records(server)[0].status_code == 404


def test_logs_are_json_lines_with_the_request_fields():
    import logging

    from clearlm.server.logs import JsonFormatter

    record = logging.LogRecord("clearlm.server", logging.INFO, __file__, 1, "request", (), None)
    record.request_id, record.status = "chatcmpl-1", 200
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "request" and line["level"] == "info" and line["logger"] == "clearlm.server"
    assert line["request_id"] == "chatcmpl-1" and line["status"] == 200 and line["ts"].endswith("+00:00")
