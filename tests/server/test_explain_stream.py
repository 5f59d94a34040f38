"""/v1/explain with ``stream`` (progress events, then the body; a client that leaves stops the work and is
recorded as 499), with ``faithfulness`` (the figures of ``explain.metrics`` next to the random floor), and
the contrastive ``position`` option (the one-token contrast at a chosen step), over the tiny model on a real
server on loopback."""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest

from clearlm.explain import explain
from clearlm.explain.metrics import evaluate, random_attribution
from clearlm.models import Message

TINY = "tiny-random-qwen2"
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "The Eiffel Tower is located in the city of"},
]
TARGET = " Paris, France."


def events(response: httpx.Response) -> list:
    """The SSE ``data:`` payloads of a response, parsed ([DONE] kept as the string)."""
    out = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data = line[5:].strip()
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def body(**extra) -> dict:
    return {"model": TINY, "messages": MESSAGES, "target": TARGET, **extra}


@pytest.fixture
def server(serve, tiny_backend):
    return serve(tiny_backend)


def test_a_streamed_explanation_reports_progress_then_the_same_body_as_without_stream(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        plain = c.post("/explain", json=body(method="occlusion"))
        with c.stream("POST", "/explain", json=body(method="occlusion", stream=True)) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            got = events(r)
    assert plain.status_code == 200
    progress = [e for e in got if isinstance(e, dict) and e.get("object") == "explanation.progress"]
    final = got[-2]
    assert got[-1] == "[DONE]" and final["object"] == "explanation"
    assert got[: len(progress)] == progress  # progress first, then the body
    # occlusion: one unit per occluded token, the last event all done
    n_sources = len(final["explanation"]["source_tokens"])
    assert {e["stage"] for e in progress} == {"attribution"}
    assert progress[-1]["done"] == progress[-1]["total"] == n_sources
    dones = [e["done"] for e in progress]
    assert dones == sorted(dones) and len(dones) >= 2
    expected = plain.json()
    assert final["explanation"]["scores"] == expected["explanation"]["scores"]
    assert final["explanation"]["target_tokens"] == expected["explanation"]["target_tokens"]
    assert set(final) == set(expected)
    record = server.state.audit.get(final["id"])
    assert record.status_code == 200 and record.endpoint == "/v1/explain" and record.output == TARGET


def test_a_client_that_leaves_stops_the_explanation_and_is_recorded_as_499(server):
    # Integrated gradients at 1024 fixed points, one per pass, over 30 target tokens: minutes of work.
    long = body(
        target=" Paris" * 30,
        method="integrated_gradients",
        options={"steps": 1024, "placement": "riemann", "internal_batch_size": 1, "rows_per_call": 1},
        stream=True,
    )
    with httpx.Client(base_url=server.url, timeout=60) as c, c.stream("POST", "/explain", json=long) as r:
        assert r.status_code == 200
        seen = []
        for line in r.iter_lines():
            if line.startswith("data:"):
                seen.append(json.loads(line[5:]))
            if len(seen) == 3:
                break
        left_at = time.monotonic()
    assert all(e["object"] == "explanation.progress" for e in seen)
    assert seen[0]["total"] % 1024 == 0 and seen[-1]["done"] < seen[-1]["total"]
    record = _wait_for(lambda: [x for x in server.state.audit.records() if x.endpoint == "/v1/explain"])[0]
    stopped_after = time.monotonic() - left_at
    assert record.status_code == 499 and record.error == "the client closed the request"
    assert stopped_after < 10  # the whole explanation takes minutes here
    assert not [t for t in threading.enumerate() if t.name == "clearlm-explain"]  # the work ended
    assert server.state.gate.active == 0  # and its generation slot is free again


def _wait_for(found, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.05)
    raise AssertionError("not found in time")


def test_an_error_after_the_stream_began_arrives_as_an_event_and_is_recorded(server):
    # The position is checked once the target is tokenized, inside the work.
    bad = body(method="contrastive", options={"contrast": " Rome", "position": 99}, stream=True)
    with httpx.Client(base_url=server.url, timeout=60) as c, c.stream("POST", "/explain", json=bad) as r:
        got = events(r)
    assert got[-1] == "[DONE]" and "outside the target" in got[-2]["error"]["message"]
    record = [x for x in server.state.audit.records() if x.endpoint == "/v1/explain"][-1]
    assert record.status_code == 400 and "outside the target" in record.error


def test_faithfulness_on_request_equals_the_metrics_of_the_same_explanation(server, tiny_backend):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        r = c.post("/explain", json=body(method="occlusion", faithfulness=True))
        streamed = events(c.post("/explain", json=body(method="occlusion", faithfulness=True, stream=True)))
    assert r.status_code == 200
    got = r.json()["faithfulness"]
    prompt = [Message(m["role"], m["content"]) for m in MESSAGES]
    result = explain(tiny_backend, prompt, TARGET, method="occlusion")
    cache: dict = {}
    own = evaluate(tiny_backend, result, samples=2, cache=cache).summary()
    floor = evaluate(tiny_backend, random_attribution(result), samples=2, cache=cache).summary()
    for name in ("comprehensiveness", "sufficiency", "soft_nc", "soft_ns"):
        assert got[name] == pytest.approx(own[name], abs=1e-9)
        assert got["random"][name] == pytest.approx(floor[name], abs=1e-9)
    assert len(got["per_target"]["comprehensiveness"]) == len(result.target_tokens)
    assert got["fractions"] == [0.01, 0.05, 0.1, 0.2, 0.5]
    stages = [
        e["stage"] for e in streamed if isinstance(e, dict) and e.get("object") == "explanation.progress"
    ]
    assert stages[0] == "attribution" and stages[-1] == "faithfulness"
    assert streamed[-2]["faithfulness"] == got
    plain = httpx.post(server.url + "/explain", json=body(method="occlusion"), timeout=60).json()
    assert "faithfulness" not in plain  # only on request


def test_faithfulness_needs_token_level_sources(server):
    r = httpx.post(
        server.url + "/explain", json=body(method="occlusion", options={"unit": "word"}, faithfulness=True)
    )
    assert r.status_code == 400 and "unit='word'" in r.json()["error"]["message"]


def test_a_contrast_at_a_position_explains_that_step_only(server, tiny_backend):
    first = httpx.post(server.url + "/explain", json=body(method="saliency"), timeout=60).json()[
        "explanation"
    ]
    targets = first["target_tokens"]
    step = 2
    alternative = " capital"  # one token of the tiny tokenizer
    assert targets[step] != alternative
    r = httpx.post(
        server.url + "/explain",
        json=body(method="contrastive", options={"contrast": alternative, "position": step}),
        timeout=60,
    )
    assert r.status_code == 200
    e = r.json()["explanation"]
    scores = np.array([[np.nan if v is None else v for v in row] for row in e["scores"]])
    assert e["params"]["position"] == step and e["contrast_tokens"][step] == alternative
    assert e["contrast_tokens"][:step] == targets[:step]  # elsewhere the contrast is the target itself
    for t in range(len(targets)):  # f = log p(target) - log p(contrast) is 0 where they are equal
        row = scores[t][~np.isnan(scores[t])]
        assert (np.abs(row).max() > 1e-6) == (t == step), t
