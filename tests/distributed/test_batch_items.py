"""Batch jobs without a cluster: reading items, running them in this process, writing results; and the
replica's fixed-ids prompt (a resumed stream's prompt is token ids, not text)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clearlm.errors import InvalidInputError
from clearlm.explain import explain
from clearlm.explain.batch import BatchItem, explain_batch, read_items, write_results
from clearlm.explain.result import Attribution
from clearlm.models import Message
from clearlm.models.backends.base import SamplingParams, generate
from clearlm.models.backends.ray_worker import _FixedPrompt


def test_read_items(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text(
        '{"prompt": "a b", "target": " c"}\n\n'
        '{"prompt": [{"role": "user", "content": "hi"}], "method": "occlusion", "options": {"unit": "word"}}\n'
    )
    items = read_items(path, method="saliency")
    assert items == [
        BatchItem("a b", " c", "saliency"),
        BatchItem([Message("user", "hi")], None, "occlusion", 32, {"unit": "word"}),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1 is not JSON"),
        ('{"target": "x"}', 'with a "prompt"'),
        ('{"prompt": "x", "method": "magic"}', "unknown method 'magic'"),
        ('{"prompt": "x", "options": {"steps": 3}}', "options must be an object of input_x_gradient's"),
        ('{"prompt": "x", "colour": 1}', "unknown field(s) colour"),
        ('{"prompt": [{"text": "x"}]}', 'each message needs a "role"'),
    ],
)
def test_read_items_rejects_bad_lines(tmp_path, line, message):
    path = tmp_path / "jobs.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_items(path)


def test_in_process_job_equals_explain_and_keeps_errors_in_place(tmp_path, tiny_backend):
    folder = tmp_path / "tiny"
    tiny_backend.model.save_pretrained(folder)
    tiny_backend.tokenizer.save_pretrained(folder)
    items = [
        BatchItem("The Eiffel Tower is located in", " Paris"),
        BatchItem("x" * 2000, " y"),  # longer than the model's 256-token context
        BatchItem("The capital of Spain is", " Madrid", "occlusion"),
    ]
    seen = []
    out = explain_batch(str(folder), items, workers=0, dtype="float64", progress=lambda *a: seen.append(a))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert isinstance(out[1], InvalidInputError) and "context" in str(out[1])
    direct = explain(tiny_backend, "The Eiffel Tower is located in", " Paris")
    np.testing.assert_allclose(out[0].scores, direct.scores, rtol=1e-9, equal_nan=True)
    occluded = explain(tiny_backend, "The capital of Spain is", " Madrid", method="occlusion")
    assert out[2].target_tokens == occluded.target_tokens
    np.testing.assert_allclose(out[2].scores, occluded.scores, rtol=1e-9, equal_nan=True)
    path = write_results(tmp_path / "out.jsonl", out)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2] and "error" in rows[1]
    again = Attribution.from_dict({k: v for k, v in rows[0].items() if k != "index"})
    np.testing.assert_array_equal(again.scores, out[0].scores.astype(np.float32))


def test_fixed_prompt_generates_from_token_ids(tiny_backend):
    """What a replica does when it resumes: the prompt's ids plus the answer's so far give the rest."""
    params = SamplingParams(max_new_tokens=12)
    whole = generate(tiny_backend, "The capital of Italy", params)
    ids = tiny_backend.encode("The capital of Italy").token_ids + list(whole.token_ids[:5])
    fixed = _FixedPrompt(tiny_backend, ids)
    chunks = type(tiny_backend).stream(fixed, None, SamplingParams(max_new_tokens=7))
    rest = [i for c in chunks for i in c.token_ids]
    assert len(whole.token_ids) == 12 and rest == list(whole.token_ids[5:])
