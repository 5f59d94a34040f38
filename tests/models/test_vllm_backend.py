"""The vllm backend's client against a scripted stand-in for vLLM's OpenAI server (no engine needed): what
it sends (token ids, never text; stop tokens; seeds; structured outputs), how it reads the stream (ids,
log-probabilities, end of turn, stop strings), its errors, and that closing a stream closes the request."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.models.backends.base import JsonOutput, SamplingParams, ToolCallOutput, generate
from clearlm.models.backends.vllm_backend import VllmBackend, VllmError
from clearlm.models.chat import Message
from clearlm.models.tools import json_tag, structural_tag


class FakeVllm:
    """Serves ``reply`` (token ids, one per event, each with logprob -0.5 - 0.1 * position) to every
    completion request; records the bodies; ``disconnected`` is set when a client leaves mid-stream."""

    def __init__(self, reply: list[int], status: int = 200, delay: float = 0.0) -> None:
        import uvicorn

        self.reply, self.status, self.delay = reply, status, delay
        self.bodies: list[dict] = []
        self.disconnected = threading.Event()
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            return {"data": [{"id": "served-name", "max_model_len": 64}]}

        @app.post("/v1/completions")
        async def completions(request: Request):
            body = await request.json()
            self.bodies.append(body)
            if self.status != 200:
                return JSONResponse({"error": {"message": "bad schema"}}, status_code=self.status)
            return StreamingResponse(self._events(body, request), media_type="text/event-stream")

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    async def _events(self, body, request):
        try:
            for k, token in enumerate(self.reply[: body["max_tokens"]]):
                last = k == len(self.reply) - 1 or k == body["max_tokens"] - 1
                choice = {"index": 0, "text": "?", "token_ids": [token], "finish_reason": None}
                if last:
                    choice["finish_reason"] = "length" if k == body["max_tokens"] - 1 else "stop"
                if body.get("logprobs") is not None:
                    lp = -0.5 - 0.1 * k
                    alts = {
                        f"token_id:{token}": lp,
                        f"token_id:{token + 1}": lp - 1,
                        f"token_id:{token + 2}": lp - 2,
                    }
                    choice["logprobs"] = {
                        "tokens": [f"token_id:{token}"],
                        "token_logprobs": [lp],
                        "top_logprobs": [dict(list(alts.items())[: body["logprobs"] + 1])],
                    }
                yield f"data: {json.dumps({'choices': [choice]})}\n\n"
                await asyncio.sleep(self.delay)
            yield "data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.disconnected.set()
            raise

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def fake(request):
    servers = []

    def start(*args, **kwargs):
        servers.append(FakeVllm(*args, **kwargs))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def ids(tok, text):
    return tok.encode(text, add_special_tokens=False)


def test_sends_token_ids_and_reads_ids_logprobs_and_the_end_of_turn(fake, tiny_tokenizer):
    eot = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    answer = ids(tiny_tokenizer, "Paris, France.")
    server = fake([*answer, eot])
    backend = VllmBackend.connect(server.url, tiny_tokenizer, "tiny")
    assert backend.served_name == "served-name" and backend.context_length == 64
    prompt = [Message(role="user", content="Where is the <|im_end|> Eiffel Tower?")]
    done = generate(backend, prompt, SamplingParams(max_new_tokens=20, logprobs=1))
    body = server.bodies[0]
    assert body["prompt"] == list(backend.encode(prompt).token_ids)  # ids, as encode_prompt tags them
    assert body["model"] == "served-name" and body["max_tokens"] == 20 and body["temperature"] == 0.0
    assert eot in body["stop_token_ids"] and "seed" not in body and "structured_outputs" not in body
    assert done.text == "Paris, France." and list(done.token_ids) == answer and done.finish_reason == "stop"
    assert [lp.token_id for lp in done.logprobs] == answer
    assert done.logprobs[1].logprob == pytest.approx(-0.6)
    assert done.logprobs[1].top == ((answer[1], pytest.approx(-0.6)),)  # the one likeliest, not the extra


def test_stop_strings_cut_the_text_and_end_the_request(fake, tiny_tokenizer):
    server = fake(ids(tiny_tokenizer, "Rome. The capital of Spain is Madrid."), delay=0.05)
    backend = VllmBackend.connect(server.url, tiny_tokenizer, "tiny")
    done = generate(backend, "The capital of Italy is", SamplingParams(max_new_tokens=30, stop=(" The",)))
    assert done.text == "Rome." and done.finish_reason == "stop"
    assert server.disconnected.wait(5)  # the rest was not read: vLLM sees the client leave and aborts


def test_length_budget_seeds_and_json_reach_vllm(fake, tiny_tokenizer):
    server = fake(ids(tiny_tokenizer, "The cat sat on the mat."))
    backend = VllmBackend.connect(server.url, tiny_tokenizer, "tiny")
    prompt = "The Eiffel Tower is located in the city of"
    room = backend.context_length - len(backend.encode(prompt).token_ids)
    done = generate(
        backend, prompt, SamplingParams(max_new_tokens=3, temperature=0.7, seed=2**64 - 1, top_k=5)
    )
    assert done.finish_reason == "length" and len(done.token_ids) == 3
    body = server.bodies[-1]
    assert body["seed"] == -1 and body["top_k"] == 5 and body["temperature"] == 0.7  # seed as a signed int64
    generate(
        backend, prompt, SamplingParams(max_new_tokens=1000, json_output=JsonOutput('{"type": "object"}'))
    )
    body = server.bodies[-1]
    sent = json.loads(body["structured_outputs"]["structural_tag"])  # what torch compiles too
    assert body["max_tokens"] == room and sent == json_tag(JsonOutput('{"type": "object"}'))
    generate(backend, prompt, SamplingParams(max_new_tokens=3, json_output=JsonOutput('{"type": "array"}')))
    sent = json.loads(server.bodies[-1]["structured_outputs"]["structural_tag"])["format"]
    assert sent == {"type": "json_schema", "json_schema": {"type": "array"}, "max_whitespace_cnt": 8}
    generate(backend, prompt, SamplingParams(max_new_tokens=3, json_output=JsonOutput()))
    sent = json.loads(server.bodies[-1]["structured_outputs"]["structural_tag"])["format"]
    assert sent["json_schema"] == {"type": "object"}  # json_object
    calls = ToolCallOutput((("get_time", '{"type": "object"}'),), required=True)
    generate(backend, prompt, SamplingParams(max_new_tokens=3, tool_calls=calls))
    tag = json.loads(server.bodies[-1]["structured_outputs"]["structural_tag"])
    assert tag == structural_tag(calls)  # what torch compiles with xgrammar, vLLM compiles too
    with pytest.raises(InvalidInputError, match="shorten the prompt"):
        generate(backend, " ".join(["cat"] * 100), SamplingParams())


def test_closing_the_stream_early_closes_the_request(fake, tiny_tokenizer):
    server = fake(ids(tiny_tokenizer, "The cat sat on the mat. " * 4), delay=0.05)
    backend = VllmBackend.connect(server.url, tiny_tokenizer, "tiny")
    stream = backend.stream("Say", SamplingParams(max_new_tokens=60))
    next(stream), next(stream)
    stream.close()
    assert server.disconnected.wait(5)


def test_errors_say_what_happened(fake, tiny_tokenizer, monkeypatch, tmp_path):
    backend = VllmBackend.connect(fake([], status=400).url, tiny_tokenizer, "tiny")
    with pytest.raises(InvalidInputError, match="vLLM refused the request: bad schema"):
        generate(backend, "Say", SamplingParams())
    backend = VllmBackend.connect(fake([], status=500).url, tiny_tokenizer, "tiny")
    with pytest.raises(VllmError, match="answered 500"):  # the engine's fault: the server answers 500
        generate(backend, "Say", SamplingParams())
    with pytest.raises(BackendUnavailableError, match="--engine-url"):
        VllmBackend.connect("http://127.0.0.1:9", tiny_tokenizer, "tiny")


def test_a_missing_engine_says_how_to_install_it(monkeypatch, tmp_path):
    from clearlm.models import load_backend
    from clearlm.models.backends.vllm_engine import engine_python

    monkeypatch.delenv("CLEARLM_VLLM_PYTHON", raising=False)
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path))
    with pytest.raises(BackendUnavailableError, match="clearlm engines install vllm"):
        engine_python()
    with pytest.raises(BackendUnavailableError, match="clearlm engines install vllm"):
        load_backend("qwen2.5-0.5b-instruct", "vllm")
    monkeypatch.setenv("CLEARLM_VLLM_PYTHON", "/usr/bin/python3")  # a Python without vLLM
    with pytest.raises(BackendUnavailableError, match="vLLM is not installed for /usr/bin/python3"):
        engine_python()
