"""OpenAI-compatible tool calling against a real server with the real qwen2.5-0.5b-instruct, through the
``openai`` client and LangChain: tool_choice required / auto / a named function / none, parallel calls,
streamed deltas, the tool-role follow-up, bad input, and the same on llama.cpp."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from clearlm.models import DEFAULT_MODEL

pytestmark = pytest.mark.integration

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city's name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather in a city",
            "parameters": WEATHER,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "Get the current time in a time zone",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string"}},
                "required": ["zone"],
                "additionalProperties": False,
            },
        },
    },
]
PARIS = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def server(default_backend, tmp_path_factory):
    from clearlm.server import ServerConfig, ServerState
    from conftest import LiveServer

    db = tmp_path_factory.mktemp("tools") / "clearlm.db"
    state = ServerState(
        ServerConfig(model=default_backend.name, db_url=f"sqlite:///{db}"), backend=default_backend
    )
    live = LiveServer(state)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=600)


def ask(client, messages=PARIS, **kw):
    kw.setdefault("max_tokens", 48)
    return client.chat.completions.create(
        model=DEFAULT_MODEL, messages=messages, temperature=0, tools=TOOLS, **kw
    )


def test_required_gives_a_call_whose_arguments_validate_and_is_audited(client, server):
    r = ask(client, tool_choice="required")
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function" and call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, WEATHER)
    assert args["city"] == "Paris"
    record = next(x for x in server.state.audit.records() if x.request_id == r.id)
    assert record.parameters["tools"] == ["get_weather", "get_time"]
    assert record.parameters["tool_calls"]["required"] is True
    assert '"name": "get_weather"' in record.output and "Paris" in record.output


def test_auto_calls_the_tool_and_the_stream_accumulates_to_the_same_call(client):
    whole = ask(client, tool_choice="auto").choices[0]
    assert whole.finish_reason == "tool_calls"
    [call] = whole.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] == "Paris"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)

    chunks = list(ask(client, tool_choice="auto", stream=True))
    pieces = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert pieces[0].id.startswith("call_") and pieces[0].function.name == "get_weather"
    assert all(p.id is None and p.function.name is None for p in pieces[1:])  # as OpenAI streams them
    assert len(pieces) > 2  # the arguments came in pieces
    assert "".join(p.function.arguments or "" for p in pieces) == call.function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # the openai client's stream helper accumulates the deltas into the same message
    with client.chat.completions.stream(
        model=DEFAULT_MODEL, messages=PARIS, temperature=0, max_tokens=48, tools=TOOLS
    ) as stream:
        final = stream.get_final_completion()
    [acc] = final.choices[0].message.tool_calls
    assert (acc.function.name, acc.function.arguments) == (call.function.name, call.function.arguments)


def test_a_named_function_and_none(client):
    named = ask(client, tool_choice={"type": "function", "function": {"name": "get_time"}}).choices[0]
    [call] = named.message.tool_calls
    assert call.function.name == "get_time" and set(json.loads(call.function.arguments)) == {"zone"}
    none = ask(client, tool_choice="none", max_tokens=12).choices[0]
    assert none.message.tool_calls is None and none.finish_reason in ("stop", "length")
    assert none.message.content and "<tool_call>" not in none.message.content


def test_parallel_calls(client):
    messages = [{"role": "user", "content": "What's the weather in Paris and in Rome?"}]
    calls = ask(client, messages, tool_choice="required", max_tokens=90).choices[0].message.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    assert len({c.id for c in calls}) == 2
    single = ask(client, messages, tool_choice="required", max_tokens=90, parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls) == 1


def test_the_tool_result_is_answered(client, server):
    messages = [
        *PARIS,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_abc",
            "content": "It is 18 degrees celsius and sunny in Paris.",
        },
    ]
    # "none": answer from the result (the tools are then left out of the prompt: a 0.5B model shown them
    # calls again rather than answer)
    r = ask(client, messages, tool_choice="none")
    answer = r.choices[0]
    assert answer.message.tool_calls is None and answer.finish_reason == "stop"
    assert "18" in answer.message.content
    record = next(x for x in server.state.audit.records() if x.request_id == r.id)
    assert record.prompt[1]["tool_calls"][0]["name"] == "get_weather"
    assert record.prompt[2] == {
        "role": "tool",
        "content": "It is 18 degrees celsius and sunny in Paris.",
        "tool_call_id": "call_abc",
    }


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not among the tools"),
        ({"tools": None, "tool_choice": "required"}, "tool_choice needs tools"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}]},
            "not valid JSON Schema",
        ),
        ({"messages": [*PARIS, {"role": "tool", "tool_call_id": "call_x", "content": "18"}]}, "no assistant"),
        ({"explain": True}, "cannot be combined with explain"),
        ({"knowledge_base": "docs"}, "cannot be combined with knowledge_base"),
        ({"tools": [TOOLS[0], TOOLS[0]]}, "same name"),
    ],
)
def test_bad_tool_requests_get_400(server, change, says):
    import httpx

    body = {"model": DEFAULT_MODEL, "messages": PARIS, "tools": TOOLS, "max_tokens": 4, **change}
    r = httpx.post(server.url + "/chat/completions", json={k: v for k, v in body.items() if v is not None})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error" and says in r.json()["error"]["message"]


def test_langchain_bind_tools_and_an_agent_loop(server):
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str, unit: str) -> str:
        """Get the current weather in a city (unit: celsius or fahrenheit)."""
        return f"It is 18 degrees {unit} and sunny in {city}."

    llm = ChatOpenAI(
        base_url=server.url, api_key="none", model=DEFAULT_MODEL, temperature=0, max_tokens=48, max_retries=0
    )
    bound = llm.bind_tools([get_weather])
    messages = [HumanMessage("What's the weather in Paris?")]
    ai = bound.invoke(messages)
    assert [c["name"] for c in ai.tool_calls] == ["get_weather"]
    assert ai.tool_calls[0]["args"]["city"] == "Paris"
    messages.append(ai)
    for call in ai.tool_calls:  # the agent loop: run the tool, send its result back
        messages.append(ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"]))
    final = llm.bind_tools([get_weather], tool_choice="none").invoke(messages)  # now answer
    assert not final.tool_calls and "18" in final.content


@pytest.mark.llamacpp
def test_llamacpp_required_auto_and_streaming(serve):
    from clearlm.models import load_backend

    live = serve(load_backend(DEFAULT_MODEL, "llamacpp"))
    c = openai.OpenAI(base_url=live.url, api_key="none", max_retries=0, timeout=600)
    required = ask(c, [{"role": "user", "content": "Tell me a joke."}], tool_choice="required").choices[0]
    [call] = required.message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)
    auto = ask(c, tool_choice="auto").choices[0]
    assert auto.finish_reason == "tool_calls"
    [call] = auto.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "Paris"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER)
    pieces = [
        d
        for ch in ask(c, tool_choice="auto", stream=True)
        if ch.choices
        for d in ch.choices[0].delta.tool_calls or ()
    ]
    assert pieces[0].function.name == "get_weather"
    assert "".join(p.function.arguments or "" for p in pieces) == call.function.arguments


class _StubEmbedder:
    """Stands in for the sentence-transformers model: this test is about the model's name only."""

    dimensions = 3

    def encode(self, texts):
        import numpy as np

        return np.ones((len(texts), 3), dtype=np.float32)

    def count_tokens(self, texts):
        return len(texts)


@pytest.mark.parametrize(
    ("model", "found"),
    [
        ("all-minilm-l6-v2", True),
        ("All-MiniLM-L6-v2", True),
        ("sentence-transformers/all-MiniLM-L6-v2", True),
        ("SENTENCE-TRANSFORMERS/ALL-MINILM-L6-V2", True),
        ("text-embedding-3-small", False),
        ("other/all-MiniLM-L6-v3", False),
    ],
)
def test_embedding_model_names_in_any_case_and_by_hub_id(serve, tiny_backend, model, found):
    live = serve(tiny_backend, embedder=_StubEmbedder())
    c = openai.OpenAI(base_url=live.url, api_key="none", max_retries=0)
    if found:
        r = c.embeddings.create(model=model, input=["a", "b"])
        assert r.model == "all-minilm-l6-v2" and [d.embedding for d in r.data] == [[1.0, 1.0, 1.0]] * 2
    else:
        with pytest.raises(openai.NotFoundError, match="all-minilm-l6-v2"):
            c.embeddings.create(model=model, input="a")


GUARD = """
name: guard
store_redacted: true
input:
  - {scanner: pii, action: redact, entities: [EMAIL_ADDRESS]}
output:
  - {scanner: pii, action: redact, entities: [EMAIL_ADDRESS]}
"""


def test_calls_and_tool_results_pass_the_policy_and_are_stored_redacted(serve, tiny_backend, tmp_path):
    """Tiny random model: a tool result and an earlier call's arguments are input, scanned like any
    message; the forced call is output, scanned; the record keeps the calls, redacted."""
    path = tmp_path / "policy.yaml"
    path.write_text(GUARD)
    live = serve(tiny_backend, policy=str(path))
    c = openai.OpenAI(base_url=live.url, api_key="none", max_retries=0, timeout=300)
    messages = [
        {"role": "user", "content": "Find my contact."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"zone": "ann.lee@example.com"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Write to bob.ray@example.com at noon."},
    ]
    r = c.chat.completions.create(
        model=tiny_backend.name, messages=messages, tools=TOOLS, tool_choice="required", max_tokens=60, seed=1
    )
    assert r.choices[0].message.tool_calls  # forced
    record = next(x for x in live.state.audit.records() if x.request_id == r.id)
    stored = json.dumps(record.prompt)
    assert "bob.ray@example.com" not in stored and "ann.lee@example.com" not in stored
    assert record.prompt[2]["role"] == "tool" and "<EMAIL_ADDRESS>" in record.prompt[2]["content"]
    assert "<EMAIL_ADDRESS>" in record.prompt[1]["tool_calls"][0]["arguments"]
    found = {
        (x.get("message"), x.get("tool_call")) for x in record.governance["input"]["results"] if x["findings"]
    }
    assert found == {(1, 0), (2, None)}
    assert record.governance["output"][0]["choice"] == 0  # the call was scanned as output
    assert "<tool_call>" in record.output and record.parameters["tools"] == ["get_weather", "get_time"]
