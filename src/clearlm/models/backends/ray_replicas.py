"""Engine replicas on a Ray cluster (data parallel), behind the one Backend protocol.

``RayReplicas`` holds N Ray actors, each loading one of clearlm's own backends (torch or llamacpp) with
``load_backend`` where it runs, and streams each request from the replica with the fewest requests in
flight (least outstanding requests), chunk by chunk through a Ray streaming generator
(``num_returns="streaming"``). It lives in the server process, behind clearlm's pipeline (policy,
citations, audit), so every request still gets its one audit record.

Fault tolerance: a request whose replica dies (its process or machine) is resumed on a live replica from
the prompt plus the tokens already produced, so the caller sees one uninterrupted answer. The text is
built here from the token ids (one ``TextStream`` across the whole answer), so a character or a stop
string split across the failure point comes out whole. With greedy decoding the resumed answer is the one
the dead replica would have given. With sampling it is a valid sample of the same distribution
(conditioned on what was already sent) but not the one the dead replica would have drawn, and a ``seed``
makes it reproducible only for the same failure point. A stream constrained to JSON or to tool calls that
had started cannot be resumed (the grammar would restart): it fails with an error. A dead replica is restarted by Ray
(``max_restarts``) and taken back once it answers; one that cannot come back is dropped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence

from clearlm.errors import ClearlmError
from clearlm.models.backends.base import Chunk, SamplingParams, TextStream, budget
from clearlm.models.backends.ray_cluster import connect, unwrap
from clearlm.models.backends.ray_worker import ReplicaWorker
from clearlm.models.chat import EncodedPrompt, Prompt, encode_prompt


class ReplicasUnavailableError(ClearlmError):
    """No replica is alive to serve a request (all died and none came back in time)."""

    status_code = 503
    error_type = "server_error"
    code = "replicas_unavailable"


@dataclasses.dataclass(eq=False)
class Replica:
    """One actor as the router sees it: requests in flight, requests started, tokens received, whether it is
    down."""

    actor: object
    index: int
    outstanding: int = 0
    started: int = 0
    tokens: int = 0  # tokens received from it
    down: bool = False


class RayReplicas:
    """A Backend over ``replicas`` Ray actors each holding ``load_backend(model, replica_backend, ...)``.

    Args:
        model: what each replica loads (catalog name, folder or .gguf: it must resolve on every machine).
        replica_backend: "torch" or "llamacpp" (the replicas' backend).
        replicas: how many actors (>= 1); spread over the cluster's machines (Ray's SPREAD strategy).
        address: the Ray cluster (``HOST:PORT``, ``"auto"``; None: RAY_ADDRESS or a one-machine Ray).
        slots: sequences decoded at once over all replicas: each llamacpp replica decodes
            ``ceil(slots / replicas)`` together (the server's --max-active).
        threads: CPU threads per replica (llamacpp); also the CPUs each replica reserves (default 1).
        max_restarts: how often Ray restarts a dead replica before it is dropped.
        wait_s: how long a request waits for a replica to come back when none is alive (seconds).

    Raises:
        BackendUnavailableError: Ray missing or no cluster at ``address``; the replicas' load errors
        (ModelNotFoundError, ...) as they are.
    """

    kind = "ray"

    def __init__(
        self,
        model: str,
        replica_backend: str = "torch",
        *,
        replicas: int = 2,
        address: str | None = None,
        slots: int = 1,
        threads: int | None = None,
        dtype: str = "float32",
        max_restarts: int = 2,
        wait_s: float = 180.0,
    ) -> None:
        from clearlm.errors import InvalidInputError

        if replicas < 1:
            raise InvalidInputError(f"replicas must be >= 1, got {replicas}")
        ray = self._ray = connect(address)
        slots = -(-slots // replicas)  # per replica
        options = {"slots": slots, "threads": threads}
        if replica_backend == "torch":
            options = {"dtype": dtype}
        worker = ray.remote(ReplicaWorker).options(
            num_cpus=threads or 1,
            max_restarts=max_restarts,
            max_task_retries=0,  # a stream is resumed here, from its tokens, never replayed by Ray
            max_concurrency=slots + 4,  # streams, plus stats and health checks
            scheduling_strategy="SPREAD",
        )
        self.replicas = [Replica(worker.remote(model, replica_backend, options), i) for i in range(replicas)]
        try:
            infos = ray.get([r.actor.info.remote() for r in self.replicas])
        except Exception as exc:
            self.close()
            raise unwrap(exc) from None
        self.tokenizer = infos[0]["tokenizer"]
        self.context_length = infos[0]["context_length"]
        self.replica_kind = infos[0]["kind"]
        self.nodes = [i["node"] for i in infos]
        self.name = model
        self.lock = threading.Lock()
        self.resumes: list[int] = []  # per resumed stream: the tokens it had produced when its replica died
        self.wait_s = wait_s
        self._cond = threading.Condition()

    def encode(self, prompt: Prompt) -> EncodedPrompt:
        return encode_prompt(self.tokenizer, prompt)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def stream(self, prompt: Prompt, params: SamplingParams) -> Iterator[Chunk]:
        """Stream a generation from the least busy replica, resumed on another if that one dies.

        Raises:
            InvalidInputError: empty prompt, or one that fills the context. ReplicasUnavailableError: no
            replica alive within ``wait_s``, or a started JSON-constrained stream lost its replica.
        """
        prompt_ids = list(self.encode(prompt).token_ids)
        limit = budget(len(prompt_ids), params, self.context_length)
        text = TextStream(self.decode, params.stop)
        emitted: list[int] = []
        while True:
            left = limit - len(emitted)
            if left <= 0:
                yield Chunk(text.finish(), (), "length")
                return
            if emitted and (params.json_output is not None or params.tool_calls is not None):
                raise ReplicasUnavailableError(  # its grammar would start again from the top
                    "the replica serving this constrained answer (JSON or tool calls) died mid-answer: send "
                    "the request again"
                )
            replica = self._acquire()
            refs = replica.actor.stream.options(num_returns="streaming").remote(
                prompt_ids + emitted, dataclasses.replace(params, max_new_tokens=left)
            )
            done = False
            try:
                for ref in refs:
                    chunk = self._ray.get(ref)
                    emitted.extend(chunk.token_ids)
                    replica.tokens += len(chunk.token_ids)
                    piece = text.push(chunk.token_ids)
                    if text.stopped or chunk.finish_reason:
                        done = True
                        tail = "" if text.stopped else text.finish()
                        yield Chunk(
                            piece + tail, chunk.token_ids, chunk.finish_reason or "stop", chunk.logprobs
                        )
                        return
                    if piece or chunk.token_ids:
                        yield Chunk(piece, chunk.token_ids, logprobs=chunk.logprobs)
                done = True  # the replica's stream ended without a finish reason: cannot happen
                yield Chunk(text.finish(), (), "length")
                return
            except self._ray.exceptions.RayActorError:
                self._lost(replica)
                with self._cond:
                    self.resumes.append(len(emitted))
            except self._ray.exceptions.RayTaskError as exc:
                done = True
                raise unwrap(exc) from None
            finally:
                if not done:  # the caller left, or the replica died: stop what may still run
                    with contextlib.suppress(Exception):
                        self._ray.cancel(refs)
                self._release(replica)

    def stats(self) -> list[dict | None]:
        """Each replica's ``ReplicaWorker.stats()`` (None for one that is down)."""
        out = []
        for r in self.replicas:
            try:
                out.append(None if r.down else self._ray.get(r.actor.stats.remote(), timeout=30))
            except self._ray.exceptions.RayError:
                out.append(None)
        return out

    def close(self) -> None:
        """Stop the replicas (they also end with this process)."""
        for r in self.replicas:
            self._ray.kill(r.actor, no_restart=True)
        self.replicas = []

    def _acquire(self) -> Replica:
        deadline = time.monotonic() + self.wait_s
        with self._cond:
            while True:
                live = [r for r in self.replicas if not r.down]
                if live:
                    best = min(live, key=lambda r: (r.outstanding, r.started))
                    best.outstanding += 1
                    best.started += 1
                    return best
                left = deadline - time.monotonic()
                if not self.replicas or left <= 0:
                    raise ReplicasUnavailableError(
                        "no engine replica is alive: check the Ray cluster (`ray status`) and the replicas' "
                        "logs, or restart the server"
                    )
                self._cond.wait(left)

    def _release(self, replica: Replica) -> None:
        with self._cond:
            replica.outstanding -= 1

    def _lost(self, replica: Replica) -> None:
        """Take a replica out of the rotation until Ray has restarted it (or drop it for good)."""
        with self._cond:
            if replica.down:
                return
            replica.down = True
        threading.Thread(target=self._watch, args=(replica,), daemon=True).start()

    def _watch(self, replica: Replica) -> None:
        exceptions = self._ray.exceptions
        deadline = time.monotonic() + self.wait_s
        back = False
        while time.monotonic() < deadline:
            try:
                self._ray.get(replica.actor.stats.remote(), timeout=max(1.0, deadline - time.monotonic()))
                back = True
                break
            except exceptions.ActorDiedError:
                break  # restarts used up
            except (exceptions.ActorUnavailableError, exceptions.GetTimeoutError):
                time.sleep(0.5)
        with self._cond:
            if back:
                replica.down = False
            else:
                self.replicas = [r for r in self.replicas if r is not replica]
            self._cond.notify_all()


__all__ = ["RayReplicas", "ReplicaWorker", "ReplicasUnavailableError"]
