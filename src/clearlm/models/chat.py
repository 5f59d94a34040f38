"""Chat messages, chat templates, and which message each prompt token came from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clearlm.errors import InvalidInputError

ROLES = ("system", "user", "assistant")
# End-of-turn tokens of common chat templates: a chat model must stop at them even when the checkpoint's
# generation config names only the end-of-text token.
END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>", "<|end|>")


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. ``role`` is "system", "user" or "assistant"."""

    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInputError(f"unknown message role {self.role!r}: use one of {', '.join(ROLES)}")


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
        special: bool[n], True for the tokenizer's special tokens
    """

    token_ids: list[int]
    text: str
    message_index: list[int]
    roles: list[str | None]
    special: list[bool]


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
    blank lines. Token-to-message mapping uses the fast tokenizer's character offsets against each
    message's content span in the rendered text.

    Raises:
        InvalidInputError: empty prompt.
    """
    validate_prompt(prompt)
    if isinstance(prompt, str) or not has_chat_template(tokenizer):
        text = prompt if isinstance(prompt, str) else "\n\n".join(m.content for m in prompt)
        messages = [Message("user", text)]
        enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)
        spans = [(0, len(text), 0)]
    else:
        messages = list(prompt)
        text = _render(tokenizer, messages, add_generation_prompt)
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans = _template_spans(tokenizer, messages, text, add_generation_prompt) or _found_spans(
            messages, text
        )

    special_ids = set(tokenizer.all_special_ids)
    ids = list(enc["input_ids"])
    message_index = []
    for s, e in enc["offset_mapping"]:
        owner = next((i for a, b, i in spans if s < b and e > a), -1)
        message_index.append(owner)
    special = [t in special_ids for t in ids]
    message_index = [-1 if sp else mi for mi, sp in zip(message_index, special, strict=True)]
    roles = [messages[i].role if i >= 0 else None for i in message_index]
    return EncodedPrompt(ids, text, message_index, roles, special)


def _render(tokenizer, messages: list[Message], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages],
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )


def _template_spans(tokenizer, messages: list[Message], text: str, add_generation_prompt: bool):
    """Content spans found by rendering the template with a unique marker in place of each content, so a
    content that also occurs in the template's own text ("user", a default system prompt) is not mistaken
    for it. None when the template changes the content it is given (trims it, say)."""
    marks = [f"\ue000{i}\ue001" for i in range(len(messages))]  # private-use characters
    skeleton = _render(
        tokenizer, [Message(m.role, k) for m, k in zip(messages, marks, strict=True)], add_generation_prompt
    )
    spans, pieces, pos, length = [], [], 0, 0
    for i, (m, mark) in enumerate(zip(messages, marks, strict=True)):
        at = skeleton.find(mark, pos)
        if at < 0:
            return None
        length += at - pos
        pieces += [skeleton[pos:at], m.content]
        spans.append((length, length + len(m.content), i))
        length += len(m.content)
        pos = at + len(mark)
    pieces.append(skeleton[pos:])
    return spans if "".join(pieces) == text else None


def _found_spans(messages: list[Message], text: str) -> list[tuple[int, int, int]]:
    """Content spans found by searching the rendered text in order (plain text, or an unusual template)."""
    spans, cursor = [], 0
    for i, m in enumerate(messages):
        start = text.find(m.content, cursor) if m.content else -1
        if start >= 0:
            spans.append((start, start + len(m.content), i))
            cursor = start + len(m.content)
    return spans
