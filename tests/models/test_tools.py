"""Tool calling below the server: prompts rendered with Qwen2.5's own chat template, the parser (whole and
streamed), and the decoding constraint (xgrammar's matcher over the real tokenizer; a tiny random model
whose forced calls always validate)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import SamplingParams, generate
from clearlm.models.chat import Chat, Message, ToolCall, encode_prompt
from clearlm.models.tools import ToolCallParser, constraint, parse_tool_calls, structural_tag

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Rome", "Oslo"]},
        "celsius": {"type": "boolean"},
    },
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather now", "parameters": SCHEMA},
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
]


@pytest.fixture(scope="module")
def qwen_tokenizer():
    from transformers import AutoTokenizer

    from clearlm.models.catalog import DEFAULT_MODEL, get_spec
    from clearlm.models.pull import ensure_checkpoint

    return AutoTokenizer.from_pretrained(ensure_checkpoint(get_spec(DEFAULT_MODEL)))


def test_tools_calls_and_results_render_with_the_models_template(qwen_tokenizer):
    call = ToolCall("call_1", "get_weather", '{"city": "Paris", "celsius": true}')
    chat = Chat(
        [
            Message("user", "Weather in Paris?"),
            Message("assistant", "", (call,)),
            Message("tool", "18 degrees and sunny", tool_call_id="call_1"),
        ],
        TOOLS,
    )
    enc = encode_prompt(qwen_tokenizer, chat)
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in enc.text
    assert (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "celsius": true}}\n</tool_call>'
        in (enc.text)
    )
    assert "<tool_response>\n18 degrees and sunny\n</tool_response>" in enc.text
    # the tool result's tokens are tagged as message 2, role "tool"; the call is template scaffolding
    tool_text = "".join(
        enc.text[s:e] for (s, e), i in zip(enc.offsets, enc.message_index, strict=True) if i == 2
    )
    assert tool_text == "18 degrees and sunny"
    assert {r for r, i in zip(enc.roles, enc.message_index, strict=True) if i == 2} == {"tool"}
    assert qwen_tokenizer.convert_tokens_to_ids("<tool_call>") in enc.token_ids  # one control token
    # without tools the same messages render with no <tools> block
    assert "<tools>" not in encode_prompt(qwen_tokenizer, list(chat)).text


OUTPUT = (
    "Checking.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Pa\\"r}is", "n": [1, {"a": "}"}]}}\n</tool_call>\n'
    '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
)


@pytest.mark.parametrize("step", [1, 2, 3, 5, 8, 1000])
def test_streamed_pieces_add_up_to_the_whole_parse(step):
    content, calls = parse_tool_calls(OUTPUT)
    assert content == "Checking."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": 'Pa"r}is', "n": [1, {"a": "}"}]}),
        ("get_time", {}),
    ]
    parser, text, args, names = ToolCallParser(), "", {}, {}
    for i in range(0, len(OUTPUT), step):
        piece, deltas = parser.push(OUTPUT[i : i + step])
        text += piece
        for d in deltas:
            if d.id is not None:
                names[d.index] = (d.id, d.name)
            args[d.index] = args.get(d.index, "") + d.arguments
    text += parser.finish()[0]
    assert text == content
    assert [names[i][1] for i in sorted(names)] == ["get_weather", "get_time"]
    assert [args[i] for i in sorted(args)] == [c.arguments for c in calls]
    assert all(names[i][0].startswith("call_") for i in names)


def test_a_block_end_inside_the_arguments_does_not_end_the_call():
    text = '```json\n{"name": "f", "arguments": {"code": "```x``` </tool_call>"}}\n```'
    content, calls = parse_tool_calls(text)
    assert content == "" and json.loads(calls[0].arguments) == {"code": "```x``` </tool_call>"}


def test_text_that_is_not_a_call_stays_content():
    assert parse_tool_calls("a <tool_call> not json </tool_call> b") == (
        "a <tool_call> not json </tool_call> b",
        [],
    )
    assert parse_tool_calls("see ```json\n[1, 2]\n```") == ("see ```json\n[1, 2]\n```", [])
    assert parse_tool_calls("ends with <tool") == ("ends with <tool", [])
    content, calls = parse_tool_calls('```json\n{"name": "get_time", "arguments": {}}\n```')
    assert (content, [(c.name, c.arguments) for c in calls]) == ("", [("get_time", "{}")])


def test_constraint_follows_tool_choice():
    assert constraint(TOOLS, "none") is None and constraint([], "auto") is None
    auto = constraint(TOOLS, "auto", parallel=False)
    assert (auto.required, auto.parallel, [n for n, _ in auto.tools]) == (
        False,
        False,
        ["get_weather", "get_time"],
    )
    named = constraint(TOOLS, {"type": "function", "function": {"name": "get_time"}})
    assert named.required and [n for n, _ in named.tools] == ["get_time"]
    with pytest.raises(InvalidInputError, match="not among the tools"):
        constraint(TOOLS, {"type": "function", "function": {"name": "nope"}})


def _matcher(qwen_tokenizer, spec):
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(qwen_tokenizer)
    compiled = xgr.GrammarCompiler(info).compile_structural_tag(json.dumps(structural_tag(spec)))
    return xgr.GrammarMatcher(compiled)


GOOD = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome", "celsius": false}}\n</tool_call>'


def test_the_grammar_takes_valid_calls_only(qwen_tokenizer):
    required = constraint(TOOLS, "required")
    assert _matcher(qwen_tokenizer, required).accept_string(GOOD)
    assert _matcher(qwen_tokenizer, required).accept_string(GOOD + "\n" + GOOD)
    bad_city = GOOD.replace("Rome", "Lyon")
    assert not _matcher(qwen_tokenizer, required).accept_string(bad_city)
    assert not _matcher(qwen_tokenizer, required).accept_string(GOOD.replace("get_weather", "get_wether"))
    assert not _matcher(qwen_tokenizer, required).accept_string("Sure, " + GOOD)  # calls only
    single = constraint(TOOLS, "required", parallel=False)
    assert not _matcher(qwen_tokenizer, single).accept_string(GOOD + "\n" + GOOD)
    auto = constraint(TOOLS, "auto")
    assert _matcher(qwen_tokenizer, auto).accept_string("Let me check. " + GOOD)
    assert _matcher(qwen_tokenizer, auto).accept_string("Just text, no call.")
    assert not _matcher(qwen_tokenizer, auto).accept_string("Let me check. " + bad_city)


def test_a_random_model_forced_to_call_writes_valid_arguments(qwen_tokenizer):
    """A tiny random Qwen2 model with the real vocabulary: whatever it would write, the constraint makes
    it a call whose arguments validate."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from clearlm.models.backends.torch_backend import TorchBackend

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(qwen_tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        eos_token_id=qwen_tokenizer.convert_tokens_to_ids("<|im_end|>"),
    )
    backend = TorchBackend(Qwen2ForCausalLM(config).eval(), qwen_tokenizer, "tiny-qwen-vocab")
    prompt = Chat([Message("user", "Weather in Oslo?")], TOOLS)
    named = constraint(TOOLS, {"type": "function", "function": {"name": "get_weather"}}, parallel=False)
    for seed in range(3):
        params = SamplingParams(max_new_tokens=150, temperature=1.0, seed=seed, tool_calls=named)
        out = generate(backend, prompt, params)
        content, calls = parse_tool_calls(out.text)
        assert out.finish_reason == "stop", out.text
        assert content == "" and [c.name for c in calls] == ["get_weather"]
        jsonschema.validate(json.loads(calls[0].arguments), SCHEMA)


@pytest.mark.llamacpp
def test_llamacpp_grammar_builds_for_each_choice():
    from clearlm.models.backends.llamacpp_backend import LazyGrammar, _tool_grammar

    required = _tool_grammar(constraint(TOOLS, "required"))
    assert not isinstance(required, LazyGrammar)
    assert '"<tool_call>\\n{\\"name\\": \\"get_weather\\", \\"arguments\\": "' in required._grammar
    auto = _tool_grammar(constraint(TOOLS, "auto", parallel=False))
    assert isinstance(auto, LazyGrammar) and "<tool_call>" in auto.patterns[0]
    assert "root ::= call\n" in auto.grammar._grammar + "\n"
