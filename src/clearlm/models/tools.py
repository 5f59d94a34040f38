"""Tool calling in the Qwen/Hermes format: the decoding constraint each engine applies, and the parser
that turns a model's ``<tool_call>`` blocks into OpenAI tool calls, incrementally for streaming.

A call, as Qwen2.5's chat template asks for it (and writes it back in an assistant turn)::

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Several calls (parallel calls) follow one another, one block each. Small models asked to call a tool
often write the same object in a fenced JSON block instead (Qwen2.5-0.5B does, for "What's the weather
in Paris?"), so with tool_choice "auto" that form is a call too, and constrained the same way (as
llama.cpp's Hermes/Qwen tool-call parser also accepts it)::

    ```json
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    ```
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from clearlm.errors import InvalidInputError
from clearlm.models.backends.base import JsonOutput, ToolCallOutput
from clearlm.models.chat import ToolCall

BEGIN = "<tool_call>"
END = "</tool_call>"
FENCE_BEGIN, FENCE_END = "```json", "```"
BLOCKS = {BEGIN: END, FENCE_BEGIN: FENCE_END}  # a block's start, and its end
CALL_HEAD = '<tool_call>\n{"name": "'  # then the name, then ARGS_HEAD, the arguments, CALL_END
FENCE_HEAD = '```json\n{"name": "'
ARGS_HEAD = '", "arguments": '
CALL_END = "}\n</tool_call>"
FENCE_CALL_END = "}\n```"
FENCE_TRIGGER = FENCE_BEGIN
SEPARATOR = "\n"  # between parallel calls
MAX_WHITESPACE = (
    8  # characters of whitespace in a row in arguments and JSON output (a model cannot pad forever)
)

_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*')


def constraint(tools: Sequence[dict], choice: str | dict = "auto", parallel: bool = True):
    """The decoding constraint for OpenAI ``tools`` and ``tool_choice`` ("auto", "required", "none", or
    ``{"type": "function", "function": {"name": ...}}``): a :class:`ToolCallOutput`, or None for "none"
    or no tools (the model writes text).

    Raises:
        InvalidInputError: a named function that is not among the tools.
    """
    if not tools or choice == "none":
        return None
    specs = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in tools}
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        if name not in specs:
            raise InvalidInputError(
                f"tool_choice names the function {name!r}, which is not among the tools: "
                f"use one of {', '.join(sorted(specs))}"
            )
        specs = {name: specs[name]}
    pairs = tuple((name, json.dumps(schema)) for name, schema in specs.items())
    return ToolCallOutput(pairs, required=choice != "auto", parallel=parallel)


def json_tag(spec: JsonOutput) -> dict:
    """JSON output as an xgrammar structural tag: valid against the schema, or any JSON object (OpenAI's
    ``json_object``), with at most ``MAX_WHITESPACE`` whitespace characters in a row. Torch compiles it with
    xgrammar and vLLM takes it as ``structured_outputs.structural_tag`` (vLLM's own ``json`` and
    ``json_object`` allow unbounded whitespace), so both constrain alike."""
    schema = json.loads(spec.schema) if spec.schema is not None else {"type": "object"}
    content = {"type": "json_schema", "json_schema": schema, "max_whitespace_cnt": MAX_WHITESPACE}
    return {"type": "structural_tag", "format": content}


def structural_tag(spec: ToolCallOutput) -> dict:
    """The constraint as an xgrammar structural tag (``{"type": "structural_tag", "format": ...}``), which
    torch compiles with xgrammar and vLLM takes as ``structured_outputs.structural_tag``: required, only
    calls separated by newlines; auto, free text until ``<tool_call>``, then a call."""
    forms = (
        [(CALL_HEAD, CALL_END)] if spec.required else [(CALL_HEAD, CALL_END), (FENCE_HEAD, FENCE_CALL_END)]
    )
    tags = [
        {
            "type": "tag",
            "begin": head + name + ARGS_HEAD,
            "content": {
                "type": "json_schema",
                "json_schema": json.loads(schema),
                "max_whitespace_cnt": MAX_WHITESPACE,
            },
            "end": end,
        }
        for head, end in forms
        for name, schema in spec.tools
    ]
    if spec.required:
        fmt = {
            "type": "tags_with_separator",
            "tags": tags,
            "separator": SEPARATOR,
            "at_least_one": True,
            "stop_after_first": not spec.parallel,
        }
    else:
        fmt = {
            "type": "triggered_tags",
            "triggers": [BEGIN, FENCE_TRIGGER],
            "tags": tags,
            "stop_after_first": not spec.parallel,
        }
    return {"type": "structural_tag", "format": fmt}


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


@dataclass(slots=True)
class CallDelta:
    """A piece of a tool call being streamed: the call's ``index`` in the choice; ``id`` and ``name``
    on its first piece only; the next piece of its ``arguments`` text."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(slots=True)
class _Call:
    id: str
    name: str
    arguments: str = ""


@dataclass
class ToolCallParser:
    """Splits a model's output, as it streams, into content text and tool-call pieces.

    ``push(text)`` returns ``(content, deltas)``: the text that is content for sure (a possible start of
    ``<tool_call>`` is held back, and whitespace until something else follows it), and the
    :class:`CallDelta` pieces of the calls. A call's name is sent as soon as it is written and its
    arguments as they come. A block that is not a call (no name and arguments) is returned as content.
    ``finish()`` releases what is held; then ``content`` and ``calls`` hold the whole result.
    """

    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    _buffer: str = ""
    _in_block: bool = False
    _begin: str = BEGIN  # the start of the block being read, and its end
    _end: str = END
    _call: _Call | None = None
    _scan: int = 0  # how far the arguments are scanned (characters of _buffer)
    _depth: int = 0
    _string: bool = False
    _escape: bool = False
    _args_done: bool = False
    _held_space: str = ""

    def push(self, text: str) -> tuple[str, list[CallDelta]]:
        self._buffer += text
        out, deltas = [], []
        while True:
            if not self._in_block:
                found = [(i, b) for b in BLOCKS if (i := self._buffer.find(b)) >= 0]
                if not found:
                    keep = max(_partial_suffix(self._buffer, b) for b in BLOCKS)
                    out.append(self._buffer[: len(self._buffer) - keep])
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    break
                at, self._begin = min(found)
                self._end = BLOCKS[self._begin]
                out.append(self._buffer[:at])
                self._buffer = self._buffer[at + len(self._begin) :]
                self._in_block, self._call, self._scan, self._args_done = True, None, 0, False
                self._depth, self._string, self._escape = 0, False, False
                continue
            deltas += self._advance()
            if self._call is not None and not self._args_done:
                break  # the block's end may only follow the arguments (it may occur inside them)
            end = self._buffer.find(self._end, self._scan if self._call is not None else 0)
            if end < 0:
                break
            block, self._buffer = self._buffer[:end], self._buffer[end + len(self._end) :]
            self._in_block = False
            if self._call is None:  # not a call after all: the text stays content
                out.append(self._begin + block + self._end)
            else:
                self._close_call()
        return self._content("".join(out)), deltas

    def finish(self) -> tuple[str, list[CallDelta]]:
        """Release what is held back (the output ended)."""
        tail = (
            self._buffer
            if not self._in_block
            else ("" if self._call is not None else self._begin + self._buffer)
        )
        if self._in_block and self._call is not None:
            self._close_call()
        self._buffer = ""
        content = self._content(tail, final=True)
        return content, []

    def _advance(self) -> list[CallDelta]:
        """The name once the block's head is complete, then the arguments scanned so far (JSON nesting is
        followed, strings included, so the object's closing brace ends them)."""
        deltas = []
        if self._call is None:
            m = _HEAD.match(self._buffer)
            if m is None:
                return deltas
            self._call = _Call(new_call_id(), json.loads(m.group(1)))
            self._scan = m.end()
            deltas.append(CallDelta(len(self.calls), "", self._call.id, self._call.name))
        start, buf = self._scan, self._buffer
        while not self._call.arguments and start < len(buf) and buf[start].isspace():
            start += 1  # whitespace before the arguments
        i = start
        while i < len(buf) and not self._args_done:
            ch = buf[i]
            if self._string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._string = False
            elif ch == '"':
                self._string = True
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                if self._depth == 0:  # the call's own closing brace: a scalar argument ended before it
                    self._args_done = True
                    break
                self._depth -= 1
                if self._depth == 0:
                    self._args_done = True
            i += 1
        self._scan = i
        piece = buf[start:i]
        if self._args_done:
            piece = piece.rstrip() if self._call.arguments or piece.strip() else ""
        if piece:
            self._call.arguments += piece
            deltas.append(CallDelta(len(self.calls), piece))
        return deltas

    def _close_call(self) -> None:
        call = self._call
        self.calls.append(ToolCall(call.id, call.name, call.arguments.strip()))
        self._call = None

    def _content(self, text: str, final: bool = False) -> str:
        """Whitespace is held until other text follows it; at the end it is dropped after a call."""
        text = self._held_space + text
        if final:
            self._held_space = ""
            out = "" if self.calls and not text.strip() else text
        elif text.strip():
            body = text.rstrip()
            self._held_space, out = text[len(body) :], body
        else:
            self._held_space, out = text, ""
        self.content += out
        return out


def _even_backslashes(text: str, i: int) -> bool:
    n = 0
    while i - 1 - n >= 0 and text[i - 1 - n] == "\\":
        n += 1
    return n % 2 == 0


def _partial_suffix(text: str, marker: str) -> int:
    """The length of the longest end of ``text`` that begins ``marker``."""
    for k in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:k]):
            return k
    return 0


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """A whole output as ``(content, calls)``: what streaming it through :class:`ToolCallParser` gives."""
    parser = ToolCallParser()
    parser.push(text)
    parser.finish()
    return parser.content, parser.calls
