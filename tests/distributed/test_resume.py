"""The router's resumption, without a cluster: replicas stand-ins that stream a real (tiny) backend, one of
which dies after a few chunks. The resumed answer must equal the uninterrupted one, token for token and
character for character, stop strings included."""

from __future__ import annotations

import threading
import types

import pytest

from clearlm.models.backends.base import SamplingParams, generate
from clearlm.models.backends.ray_replicas import RayReplicas, Replica, ReplicasUnavailableError
from clearlm.models.backends.ray_worker import _FixedPrompt


class ActorDied(Exception):
    pass


class ActorError(Exception):
    pass


FAKE_RAY = types.SimpleNamespace(
    get=lambda ref, timeout=None: ref,
    cancel=lambda refs: None,
    exceptions=types.SimpleNamespace(
        RayActorError=ActorError,
        RayTaskError=type("RayTaskError", (Exception,), {}),
        ActorDiedError=ActorDied,
        ActorUnavailableError=type("Unavailable", (ActorError,), {}),
        GetTimeoutError=TimeoutError,
        RayError=Exception,
    ),
)


class FakeActor:
    """Streams ``backend`` from token ids like ReplicaWorker; dies after ``die_after`` chunks if set."""

    def __init__(self, backend, die_after: int | None = None) -> None:
        self.backend, self.die_after, self.calls = backend, die_after, []
        self.stream = types.SimpleNamespace(options=lambda **kw: types.SimpleNamespace(remote=self._stream))
        self.stats = types.SimpleNamespace(remote=lambda: {"streams": len(self.calls)})

    def _stream(self, ids, params):
        self.calls.append((list(ids), params.max_new_tokens))
        chunks = type(self.backend).stream(_FixedPrompt(self.backend, ids), None, params)
        for n, chunk in enumerate(chunks):
            if self.die_after is not None and n == self.die_after:
                self.die_after = None  # it comes back (as after Ray's restart)
                raise ActorError("the actor died")
            yield chunk


def router(backend, actors) -> RayReplicas:
    r = object.__new__(RayReplicas)
    r._ray = FAKE_RAY
    r.replicas = [Replica(a, i) for i, a in enumerate(actors)]
    r.tokenizer, r.context_length, r.name = backend.tokenizer, backend.context_length, backend.name
    r.lock, r._cond, r.resumes, r.wait_s = threading.Lock(), threading.Condition(), [], 5.0
    return r


@pytest.mark.parametrize("die_after", [0, 1, 4])
def test_a_stream_resumed_on_another_replica_is_the_uninterrupted_one(tiny_backend, die_after):
    params = SamplingParams(max_new_tokens=16)
    whole = generate(tiny_backend, "The capital of Italy", params)
    dying, healthy = FakeActor(tiny_backend, die_after), FakeActor(tiny_backend)
    r = router(tiny_backend, [dying, healthy])
    resumed = generate(r, "The capital of Italy", params)
    assert (resumed.text, resumed.token_ids, resumed.finish_reason) == (
        whole.text,
        whole.token_ids,
        whole.finish_reason,
    )
    assert len(resumed.token_ids) == 16 and r.resumes == [die_after]
    prompt_ids = tiny_backend.encode("The capital of Italy").token_ids
    assert healthy.calls == [(prompt_ids + list(whole.token_ids[:die_after]), 16 - die_after)]


def test_a_stop_string_across_the_failure_point_still_stops(tiny_backend):
    whole = generate(tiny_backend, "The capital of Italy", SamplingParams(max_new_tokens=16))
    text = tiny_backend.decode(whole.token_ids[:6])
    stop = text[-3:]  # ends inside the first six tokens' text
    expected = generate(tiny_backend, "The capital of Italy", SamplingParams(max_new_tokens=16, stop=stop))
    r = router(tiny_backend, [FakeActor(tiny_backend, 4), FakeActor(tiny_backend)])
    resumed = generate(r, "The capital of Italy", SamplingParams(max_new_tokens=16, stop=stop))
    assert resumed.text == expected.text and resumed.finish_reason == "stop" == expected.finish_reason


def test_least_outstanding_routing_and_no_replica_left(tiny_backend):
    a, b = FakeActor(tiny_backend), FakeActor(tiny_backend)
    r = router(tiny_backend, [a, b])
    first = r.stream("The capital", SamplingParams(max_new_tokens=4))
    next(first)  # holds replica 0
    generate(r, "The capital", SamplingParams(max_new_tokens=2))
    assert (len(a.calls), len(b.calls)) == (1, 1)
    first.close()
    assert [x.outstanding for x in r.replicas] == [0, 0]
    r.replicas, r.wait_s = [], 0.1
    with pytest.raises(ReplicasUnavailableError, match="no engine replica is alive"):
        generate(r, "The capital", SamplingParams(max_new_tokens=2))
