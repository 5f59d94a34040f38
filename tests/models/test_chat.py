"""Chat messages, prompt encoding with per-token message tags, and end-of-turn tokens (tiny tokenizer)."""

from __future__ import annotations

import pytest

from clearlm.errors import InvalidInputError
from clearlm.models.chat import (
    Message,
    encode_prompt,
    end_of_turn_ids,
    has_chat_template,
    validate_prompt,
)
from conftest import make_tokenizer

SYSTEM = "You are a helpful assistant. Answer briefly."
USER = "Why is the sky blue? Cite your sources."
MESSAGES = [Message("system", SYSTEM), Message("user", USER)]


def ids_of(tokenizer, *tokens: str) -> set[int]:
    return {tokenizer.convert_tokens_to_ids(t) for t in tokens}


def check_consistent(enc) -> None:
    n = len(enc.token_ids)
    assert len(enc.message_index) == len(enc.roles) == len(enc.special) == n


def test_chat_template_rendering(tiny_tokenizer):
    enc = encode_prompt(tiny_tokenizer, MESSAGES)
    assert enc.text == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{USER}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert enc.token_ids == tiny_tokenizer(enc.text, add_special_tokens=False)["input_ids"]
    check_consistent(enc)


def test_without_a_generation_prompt(tiny_tokenizer):
    enc = encode_prompt(tiny_tokenizer, MESSAGES, add_generation_prompt=False)
    assert enc.text.endswith(f"{USER}<|im_end|>\n")
    assert "<|im_start|>assistant" not in enc.text


def test_content_tokens_carry_their_message(tiny_tokenizer):
    enc = encode_prompt(tiny_tokenizer, MESSAGES)
    for i, message in enumerate(MESSAGES):
        mine = [t for t, mi in zip(enc.token_ids, enc.message_index, strict=True) if mi == i]
        assert tiny_tokenizer.decode(mine) == message.content
        roles = {r for r, mi in zip(enc.roles, enc.message_index, strict=True) if mi == i}
        assert roles == {message.role}
    # the content tokens are contiguous and in message order
    tagged = [mi for mi in enc.message_index if mi >= 0]
    assert tagged == sorted(tagged)
    first_user = enc.message_index.index(1)
    assert enc.message_index[first_user:].count(1) == enc.message_index.count(1)


def test_scaffolding_tokens_carry_none(tiny_tokenizer):
    enc = encode_prompt(tiny_tokenizer, MESSAGES)
    for role, index in zip(enc.roles, enc.message_index, strict=True):
        assert (role is None) == (index == -1)
        assert role in (None, "system", "user")
    scaffolding = [t for t, mi in zip(enc.token_ids, enc.message_index, strict=True) if mi == -1]
    text = tiny_tokenizer.decode(scaffolding, skip_special_tokens=False)
    assert text == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"


def test_special_tokens_are_flagged(tiny_tokenizer):
    enc = encode_prompt(tiny_tokenizer, MESSAGES)
    special_ids = ids_of(tiny_tokenizer, "<|im_start|>", "<|im_end|>")
    flagged = [t for t, sp in zip(enc.token_ids, enc.special, strict=True) if sp]
    assert set(flagged) == special_ids
    assert len(flagged) == 5  # 2 messages x (start, end) + the generation prompt's start
    assert all(not sp for t, sp in zip(enc.token_ids, enc.special, strict=True) if t not in special_ids)
    assert all(mi == -1 for mi, sp in zip(enc.message_index, enc.special, strict=True) if sp)


def test_a_plain_string_is_not_wrapped_in_the_template(tiny_tokenizer):
    prompt = "The capital of Italy is"
    enc = encode_prompt(tiny_tokenizer, prompt)
    assert enc.text == prompt
    assert "<|im_start|>" not in enc.text
    assert not ids_of(tiny_tokenizer, "<|im_start|>", "<|im_end|>") & set(enc.token_ids)
    assert enc.token_ids == tiny_tokenizer(prompt)["input_ids"]
    assert tiny_tokenizer.decode(enc.token_ids) == prompt
    assert set(enc.roles) == {"user"}
    assert set(enc.message_index) == {0}
    assert not any(enc.special)
    check_consistent(enc)


def test_a_tokenizer_without_a_template_joins_messages_by_blank_lines():
    tokenizer = make_tokenizer()
    tokenizer.chat_template = None
    assert not has_chat_template(tokenizer)
    enc = encode_prompt(tokenizer, MESSAGES)
    assert enc.text == f"{SYSTEM}\n\n{USER}"
    assert tokenizer.decode(enc.token_ids) == enc.text
    assert set(enc.roles) == {"user"}  # one block of text to continue
    assert set(enc.message_index) == {0}


@pytest.mark.parametrize(
    "prompt",
    ["", "   ", "\n\t ", [], [Message("system", ""), Message("user", "  ")], [Message("user", "")]],
)
def test_empty_prompts_are_rejected(tiny_tokenizer, prompt):
    with pytest.raises(InvalidInputError):
        validate_prompt(prompt)
    with pytest.raises(InvalidInputError):
        encode_prompt(tiny_tokenizer, prompt)


def test_an_empty_message_beside_a_real_one_is_allowed(tiny_tokenizer):
    enc = encode_prompt(tiny_tokenizer, [Message("system", ""), Message("user", USER)])
    assert 0 not in enc.message_index
    user = [t for t, mi in zip(enc.token_ids, enc.message_index, strict=True) if mi == 1]
    assert tiny_tokenizer.decode(user) == USER


@pytest.mark.parametrize("role", ["function", "User", "", "developer"])
def test_unknown_roles_are_rejected(role):
    with pytest.raises(InvalidInputError, match="role"):
        Message(role, "hello")


def test_known_roles():
    assert [Message(r, "x").role for r in ("system", "user", "assistant")] == ["system", "user", "assistant"]


def test_end_of_turn_ids(tiny_tokenizer):
    eot = end_of_turn_ids(tiny_tokenizer)
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in eot
    assert eot == ids_of(tiny_tokenizer, "<|im_end|>", "<|endoftext|>")
    assert tiny_tokenizer.convert_tokens_to_ids("<|im_start|>") not in eot


def test_content_equal_to_a_role_name_is_tagged_on_the_content(tiny_tokenizer):
    enc = encode_prompt(tiny_tokenizer, [Message("system", "Be brief."), Message("user", "user")])
    user = [t for t, mi in zip(enc.token_ids, enc.message_index, strict=True) if mi == 1]
    last = len(enc.token_ids) - 1 - enc.message_index[::-1].index(1)
    # the content "user" is right before the user turn's <|im_end|>, not in the "<|im_start|>user\n" header
    assert tiny_tokenizer.decode(user) == "user"
    assert enc.token_ids[last + 1] == tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
