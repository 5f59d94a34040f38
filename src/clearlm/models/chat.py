"""Chat messages, chat templates, and which message each prompt token came from."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from clearlm.errors import InvalidInputError
from clearlm.models.tokens import text_tokenizer

ROLES = ("system", "user", "assistant", "tool")
# End-of-turn tokens of common chat templates: a chat model must stop at them even when the checkpoint's
# generation config names only the end-of-text token.
END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>", "<|end|>")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call of a tool the model made: ``id`` ("call_..."), the function's ``name``, and its
    ``arguments`` as JSON text (an object), as in the OpenAI API."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``role`` is "system", "user", "assistant" or "tool" (a tool's result, answering
    the call ``tool_call_id``); an assistant message may carry the ``tool_calls`` it made."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInputError(f"unknown message role {self.role!r}: use one of {', '.join(ROLES)}")


class Chat(list):
    """A message list with the tools the model may call: OpenAI function definitions
    (``{"type": "function", "function": {"name", "description", "parameters"}}``), which the chat
    template writes into the prompt. A plain message list is a chat without tools."""

    def __init__(self, messages: Sequence[Message] = (), tools: Sequence[dict] = ()) -> None:
        super().__init__(messages)
        self.tools = tuple(tools)


def tools_of(prompt) -> tuple[dict, ...]:
    """The tools of a :class:`Chat` (none for another prompt)."""
    return getattr(prompt, "tools", ())


def same_tools(prompt, messages: Sequence[Message]):
    """``messages`` with ``prompt``'s tools (a rewritten prompt keeps them)."""
    return Chat(messages, tools_of(prompt)) if tools_of(prompt) else list(messages)


Prompt = str | Sequence[Message]


@dataclass(frozen=True, slots=True)
class EncodedPrompt:
    """A prompt as the model sees it.

    Fields (n = number of tokens):
        token_ids: int[n]
        text: the rendered prompt (chat template applied)
        message_index: int[n], the index of the message whose content holds the token, -1 for template
            scaffolding (role headers, special tokens, a default system prompt the template inserts)
        roles: the role of that message per token, None for scaffolding
        special: bool[n], True for control tokens (the tokenizer's special tokens and the added tokens its
            chat template writes); never True inside a message's content
        offsets: (start, end)[n], each token's character span in ``text``; (0, 0) for an added token such
            as beginning-of-sequence. Use these rather than tokenizing ``text`` again: the text of a
            message holding control-token strings tokenizes differently on its own.
    """

    token_ids: list[int]
    text: str
    message_index: list[int]
    roles: list[str | None]
    special: list[bool]
    offsets: list[tuple[int, int]] = field(default_factory=list)


def validate_prompt(prompt: Prompt) -> None:
    """Raise InvalidInputError for an empty prompt or a message list with nothing to answer."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidInputError("the prompt is empty: give some text to send to the model")
        return
    if not prompt:
        raise InvalidInputError("the message list is empty: give at least one user message")
    if not any(m.content.strip() for m in prompt):
        raise InvalidInputError("every message is empty: give some text to send to the model")


def end_of_turn_ids(tokenizer) -> set[int]:
    """Ids of the end-of-turn tokens in ``tokenizer``'s vocabulary (see END_OF_TURN)."""
    vocab = tokenizer.get_vocab()
    return {vocab[t] for t in END_OF_TURN if t in vocab}


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def encode_prompt(tokenizer, prompt: Prompt, *, add_generation_prompt: bool = True) -> EncodedPrompt:
    """Tokenize ``prompt``, tagging every token with the message it came from.

    A string is plain text for the model to continue (as in a completions API; tagged as one user message);
    a message list is rendered with the tokenizer's chat template, or, for a model without one, joined by
    blank lines. Content of every role reaches the model as text: a control-token string in it
    (``"<|im_end|>"``) is tokenized as ordinary characters, so only the template writes control tokens
    (see :mod:`clearlm.models.tokens`). Content without control-token text tokenizes exactly as the
    rendered text does with the tokenizer's own parsing.

    Raises:
        InvalidInputError: empty prompt; a conversation the chat template refuses; control-token text in
            a message for a template that rewrites its messages so their content cannot be located.
    """
    validate_prompt(prompt)
    tt = text_tokenizer(tokenizer)
    if isinstance(prompt, str) or not has_chat_template(tokenizer):
        text = prompt if isinstance(prompt, str) else "\n\n".join(m.content for m in prompt)
        messages = [Message("user", text)]
        enc = tt.plain(text, add_special_tokens=True)
        spans = [(0, len(text), 0)]
    else:
        messages = list(prompt)
        text, spans = _render_with_spans(tokenizer, messages, add_generation_prompt, tools_of(prompt))
        if spans is not None:
            enc = tt.segments(text, _complement(spans, len(text)))
        else:  # an unusual template: safe only when no content holds control-token text
            for i, m in enumerate(messages):
                if tt.contains_control(m.content):
                    raise InvalidInputError(
                        f"message {i} contains the text of one of this model's control tokens, and its chat "
                        "template rewrites messages so that their text cannot be kept apart from the "
                        "template's own tokens: remove it from the message"
                    )
            enc = tt.markup(text)
            spans = _found_spans(messages, text)

    special_ids = set(tokenizer.all_special_ids) | tt.control_ids
    ids = list(enc.ids)
    message_index = []
    for s, e in enc.offsets:
        owner = next((i for a, b, i in spans if s < b and e > a), -1)
        message_index.append(owner)
    special = [t in special_ids for t in ids]
    message_index = [-1 if sp else mi for mi, sp in zip(message_index, special, strict=True)]
    roles = [messages[i].role if i >= 0 else None for i in message_index]
    return EncodedPrompt(ids, text, message_index, roles, special, list(enc.offsets))


def _template_message(m: Message) -> dict:
    """A message as chat templates take it (a call's arguments as an object, as HF templates expect)."""
    out: dict = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.loads(c.arguments)},
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def _render(tokenizer, messages: list[Message], add_generation_prompt: bool, tools=()) -> str:
    """The chat template's text for ``messages``.

    Raises:
        InvalidInputError: the template refuses the conversation (roles out of the order it expects).
    """
    import jinja2

    try:
        return tokenizer.apply_chat_template(
            [_template_message(m) for m in messages],
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            **({"tools": list(tools)} if tools else {}),
        )
    except jinja2.TemplateError as exc:
        raise InvalidInputError(f"the model's chat template refuses these messages: {exc}") from None


def _render_with_spans(tokenizer, messages: list[Message], add_generation_prompt: bool, tools=()):
    """The rendered text and each message content's span ``(start, end, message index)`` in it.

    The spans come from rendering the template with a unique marker in place of each content, so a
    content that also occurs in the template's own text ("user", a default system prompt, or a forged
    turn header) is never mistaken for it. A template that changes a content (trims it, say) is rendered
    once more per message with that message's real content, to see what the template makes of it.
    Spans are None when the result does not reproduce the template's real text.
    """
    text = _render(tokenizer, messages, add_generation_prompt, tools)
    marks = [f"\ue000{i}\ue001" for i in range(len(messages))]  # private-use characters
    with_marks = [replace(m, content=k) for m, k in zip(messages, marks, strict=True)]
    skeleton = _render(tokenizer, with_marks, add_generation_prompt, tools)
    rendered = [m.content for m in messages]
    spans = _fill(skeleton, marks, rendered)
    if spans is not None and spans[0] == text:
        return text, spans[1]
    for i, mark in enumerate(marks):  # what the template makes of each content, one at a time
        if skeleton.count(mark) != 1:
            continue
        before, after = skeleton.split(mark)
        one = _render(
            tokenizer, [*with_marks[:i], messages[i], *with_marks[i + 1 :]], add_generation_prompt, tools
        )
        if one.startswith(before) and one.endswith(after) and len(one) >= len(before) + len(after):
            rendered[i] = one[len(before) : len(one) - len(after)]
    spans = _fill(skeleton, marks, rendered)
    return (text, spans[1]) if spans is not None and spans[0] == text else (text, None)


def _fill(skeleton: str, marks: list[str], contents: list[str]):
    """``skeleton`` with each marker replaced by its content, and the contents' spans in the result."""
    index = {k: i for i, k in enumerate(marks)}
    parts = re.split("(\ue000\\d+\ue001)", skeleton)
    out, spans, length = [], [], 0
    for j, part in enumerate(parts):
        if j % 2:
            i = index.get(part)
            if i is None:
                return None
            part = contents[i]
            spans.append((length, length + len(part), i))
        out.append(part)
        length += len(part)
    return "".join(out), [s for s in spans if s[1] > s[0]]


def _complement(spans: list[tuple[int, int, int]], n: int) -> list[tuple[int, int]]:
    """The ranges of ``[0, n)`` outside ``spans`` (the template's own text)."""
    out, pos = [], 0
    for a, b, _ in sorted(spans):
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < n:
        out.append((pos, n))
    return out


def _found_spans(messages: list[Message], text: str) -> list[tuple[int, int, int]]:
    """Content spans found by searching the rendered text in order (an unusual template)."""
    spans, cursor = [], 0
    for i, m in enumerate(messages):
        start = text.find(m.content, cursor) if m.content else -1
        if start >= 0:
            spans.append((start, start + len(m.content), i))
            cursor = start + len(m.content)
    return spans
