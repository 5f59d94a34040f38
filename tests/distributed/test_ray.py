"""clearlm on a local Ray cluster (a head and a worker node on this machine): two engine replicas of the
real default model behind a real server, a replica killed mid-load, and a batch explanation job."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import openai
import pytest

from clearlm.models import DEFAULT_MODEL, load_backend

pytestmark = [pytest.mark.integration, pytest.mark.ray]

QUESTIONS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "What is 2 plus 2?",
    "Say hello in Spanish.",
]


@pytest.fixture(scope="module")
def replicas(ray_cluster):
    """Two replicas of the default model (llama.cpp where installed, else torch), one thread and one
    sequence at a time each: every generation decodes alone, so greedy outputs do not depend on what else
    runs."""
    from clearlm.models import resolve_backend

    router = load_backend(
        DEFAULT_MODEL, resolve_backend(DEFAULT_MODEL), replicas=2, ray_address=ray_cluster, slots=1, threads=1
    )
    yield router
    router.close()


def _ask(server, question: str, max_tokens: int) -> tuple[str, str]:
    """Stream one greedy chat completion; returns (response id, text)."""
    c = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
    stream = c.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": question}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
    )
    rid, text = "", ""
    for ch in stream:
        rid = ch.id
        if ch.choices and ch.choices[0].delta.content:
            text += ch.choices[0].delta.content
    return rid, text


def _concurrently(fn, args) -> list:
    results: list = [None] * len(args)
    errors: list = []

    def run(i, a):
        try:
            results[i] = fn(*a)
        except Exception as exc:  # collected: the assertion below names it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args)]
    for t in threads:
        t.start()
    return threads, results, errors


def test_two_replicas_share_concurrent_requests(serve, replicas):
    assert len(set(replicas.nodes)) == 2  # one replica on each node of the cluster
    before = [s["streams"] for s in replicas.stats()]
    server = serve(replicas, max_active=4, max_waiting=4)
    threads, results, errors = _concurrently(lambda q: _ask(server, q, 8), [(q,) for q in QUESTIONS])
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert "Paris" in results[0][1]
    after = [s["streams"] for s in replicas.stats()]
    served = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(served) == len(QUESTIONS) and min(served) >= 1  # both replicas took work
    records = server.state.audit.records()
    assert sorted(r.request_id for r in records) == sorted(rid for rid, _ in results)
    assert [r.status_code for r in records] == [200] * len(QUESTIONS)


def test_killing_a_replica_mid_load_loses_no_request(serve, replicas, ray_cluster):
    import ray

    server = serve(replicas, max_active=4, max_waiting=4)
    threads, results, errors = _concurrently(lambda q: _ask(server, q, 24), [(q,) for q in QUESTIONS])
    for t in threads:
        t.join(300)
    assert not errors, errors
    expected = [text for _, text in results]  # the answers without a kill
    victim = replicas.replicas[0]
    old_pid = replicas.stats()[0]["pid"]
    threads, results, errors = _concurrently(lambda q: _ask(server, q, 24), [(q,) for q in QUESTIONS])
    deadline = time.monotonic() + 120
    tokens = victim.tokens
    while not (victim.outstanding and victim.tokens >= tokens + 2):  # the victim is mid-answer
        assert time.monotonic() < deadline, "no stream started"
        time.sleep(0.05)
    ray.kill(victim.actor, no_restart=False)  # Ray restarts it (max_restarts)
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert [text for _, text in results] == expected  # one uninterrupted answer each, as without the kill
    assert replicas.resumes and max(replicas.resumes) > 0  # a stream that had sent tokens was resumed
    records = server.state.audit.records()[len(QUESTIONS) :]  # those of the run with the kill
    assert sorted(r.request_id for r in records) == sorted(rid for rid, _ in results)  # one each
    assert [r.status_code for r in records] == [200] * len(QUESTIONS)
    assert sorted(r.output for r in records) == sorted(expected)
    deadline = time.monotonic() + 150  # the restarted replica comes back into the rotation
    while victim.down:
        assert time.monotonic() < deadline, "the killed replica did not come back"
        time.sleep(0.5)
    assert victim in replicas.replicas and replicas.stats()[0]["pid"] != old_pid


def test_batch_explanation_over_the_cluster_equals_one_process(tmp_path, ray_cluster, tiny_backend):
    from typer.testing import CliRunner

    from clearlm.cli import app
    from clearlm.explain.batch import explain_batch, read_items

    folder = tmp_path / "tiny"
    tiny_backend.model.save_pretrained(folder)
    tiny_backend.tokenizer.save_pretrained(folder)
    lines = [
        {"prompt": "The Eiffel Tower is located in", "target": " Paris"},
        {"prompt": "The capital of Italy is", "max_new_tokens": 3, "method": "saliency"},
        {"prompt": [{"role": "user", "content": "Why is the sky blue?"}], "target": " Rayleigh"},
        {"prompt": "The capital of Spain is", "target": " Madrid", "method": "occlusion"},
        {"prompt": "x" * 2000, "target": " y"},  # longer than the tiny model's context: an error in place
    ]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    seen: list[tuple[int, int]] = []
    alone = explain_batch(
        str(folder), read_items(jobs), workers=0, dtype="float64", progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(i, 5) for i in range(6)]
    out = tmp_path / "out.jsonl"
    run = CliRunner().invoke(
        app,
        ["batch", "explain", str(jobs), "--out", str(out), "--model", str(folder), "--dtype", "float64"]
        + ["--ray-address", ray_cluster, "--workers", "2"],
    )
    assert run.exit_code == 0, run.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(5))
    assert "context" in rows[4]["error"] and isinstance(alone[4], Exception)
    for row, single in zip(rows[:4], alone[:4], strict=True):
        assert row["method"] == single.method and row["target_tokens"] == single.target_tokens
        scores = np.array([[np.nan if v is None else v for v in r] for r in row["scores"]], dtype=np.float32)
        np.testing.assert_allclose(scores, single.scores, rtol=1e-5, atol=1e-7, equal_nan=True)
    assert np.isfinite(alone[0].scores).sum() > 0
