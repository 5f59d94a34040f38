"""Training data: chat labels are exactly the assistant tokens; bad files fail with the line and the fix."""

from __future__ import annotations

import json

import pytest

from clearlm.errors import InvalidInputError, PolicyViolationError
from clearlm.tune.data import IGNORE, chat_example, load_data
from clearlm.tune.screen import Screen, pii_policy

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Where is the Eiffel Tower?"},
    {"role": "assistant", "content": "The Eiffel Tower is located in the city of Paris."},
    {"role": "user", "content": "Why is the sky blue?"},
    {"role": "assistant", "content": "Because of Rayleigh scattering of sunlight."},
]


def test_chat_labels_are_exactly_the_assistant_tokens(tiny_tokenizer):
    example, cut = chat_example(tiny_tokenizer, CHAT, 512)
    assert cut == 0
    full = tiny_tokenizer.apply_chat_template(CHAT, tokenize=False)
    # the whole conversation is there, token for token
    assert tiny_tokenizer.decode(example.input_ids) == full
    expected = []
    for m in CHAT:
        if m["role"] == "assistant":
            expected += tiny_tokenizer(m["content"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
    targets = [t for t in example.labels if t != IGNORE]
    assert targets == expected
    # each target sits where its token is, and the masked positions cover the rest (prompts, headers)
    kept = [i for i, t in enumerate(example.labels) if t != IGNORE]
    assert [example.input_ids[i] for i in kept] == expected
    masked = tiny_tokenizer.decode(
        [example.input_ids[i] for i, t in enumerate(example.labels) if t == IGNORE]
    )
    assert "Where is the Eiffel Tower?" in masked and "Paris" not in masked
    assert masked.count("<|im_start|>assistant") == 2


def test_chat_truncation_keeps_only_what_fits(tiny_tokenizer):
    whole, _ = chat_example(tiny_tokenizer, CHAT, 4096)
    first = next(i for i, t in enumerate(whole.labels) if t != IGNORE)
    example, cut = chat_example(tiny_tokenizer, CHAT, first + 3)
    assert cut == 1 and example.input_ids == whole.input_ids[: first + 3]
    assert [t for t in example.labels if t != IGNORE] == list(whole.labels[first : first + 3])
    assert chat_example(tiny_tokenizer, CHAT, first) == (None, 1)  # no answer token survives


def _jsonl(path, records):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [{"messages": CHAT}, {"messages": [{"role": "bot", "content": "hi"}]}],
            "line 2: message 0 has role 'bot'",
        ),
        ([{"messages": CHAT}, "{not json"], "line 2: not valid JSON"),
        ([{"messages": CHAT[:2]}], "line 1: no assistant message"),
        ([{"messages": [{"role": "user", "content": 3}]}], "line 1: message 0 needs a text 'content'"),
        ([{"prompt": "x"}], 'line 1: expected {"messages"'),
    ],
)
def test_bad_chat_jsonl_names_the_line(tiny_tokenizer, email_policy, tmp_path, lines, message):
    path = _jsonl(tmp_path / "chat.jsonl", lines)
    with pytest.raises(InvalidInputError) as info:
        load_data(path, tiny_tokenizer, 64, Screen(email_policy))
    assert message in str(info.value)


def test_empty_missing_and_unreadable_data(tiny_tokenizer, email_policy, tmp_path):
    screen = Screen(email_policy)
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(InvalidInputError, match="empty.txt is empty"):
        load_data(tmp_path / "empty.txt", tiny_tokenizer, 64, screen)
    with pytest.raises(InvalidInputError, match="no data at"):
        load_data(tmp_path / "nowhere", tiny_tokenizer, 64, screen)
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InvalidInputError, match="cannot use .*blob.txt as training data"):
        load_data(tmp_path / "blob.txt", tiny_tokenizer, 64, screen)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(InvalidInputError, match="holds no data"):
        load_data(tmp_path / "folder", tiny_tokenizer, 64, screen)


def test_documents_are_chunked_and_held_out(tiny_tokenizer, email_policy, docs):
    data = load_data(docs, tiny_tokenizer, 32, Screen(email_policy), held_out=0.25)
    assert data.kind == "documents" and len(data.sources) == 3
    assert all(len(e.input_ids) <= 32 and e.labels == e.input_ids for e in data.train + data.held_out)
    n = len(data.train) + len(data.held_out)
    assert len(data.held_out) == n // 4 and len(data.train) > len(data.held_out)
    assert all(len(s.sha256) == 64 for s in data.sources)


def test_pii_is_redacted_through_the_policy(tiny_tokenizer, email_policy, tmp_path):
    (tmp_path / "notes.txt").write_text("Write to maria.rossi@example.com about the apt sources list.\n" * 3)
    screen = Screen(email_policy)
    data = load_data(tmp_path / "notes.txt", tiny_tokenizer, 64, screen, held_out=0)
    text = "".join(tiny_tokenizer.decode(e.input_ids) for e in data.train)
    assert "maria.rossi@example.com" not in text and "[EMAIL]" in text
    assert data.pii["redacted_texts"] >= 1 and data.pii["findings"] == {"EMAIL": 1}


def test_pii_refused_with_the_presidio_policy(tiny_tokenizer, tmp_path):
    ask = {"role": "user", "content": "How do I refresh the package lists?"}
    lines = [
        {"messages": [ask, {"role": "assistant", "content": "Run apt update as root."}]},
        {"messages": [ask, {"role": "assistant", "content": "Write to john.smith@example.com for help."}]},
    ]
    path = _jsonl(tmp_path / "chat.jsonl", lines)
    with pytest.raises(PolicyViolationError, match=r"EMAIL_ADDRESS\) in .*chat.jsonl line 2.*--pii redact"):
        load_data(path, tiny_tokenizer, 256, Screen(pii_policy("refuse")))
    data = load_data(path, tiny_tokenizer, 256, Screen(pii_policy("redact")), held_out=0)
    assert "john.smith@example.com" not in tiny_tokenizer.decode(data.train[1].input_ids)
