"""Batch explanation jobs: explain many prompts, in this process or spread over a Ray cluster.

A job is a list of ``BatchItem`` (read from JSONL by ``read_items``). ``explain_batch`` runs each through
``clearlm.explain.explain`` on a torch backend of one model: in this process (``address`` None and
``workers`` 0), or on ``workers`` Ray actors that each load the model once where they run and take items
as they free up (Ray's ``ActorPool``). Results come back in input order whatever order they finish in, and
equal the single-process ones (the same code on the same weights; float rounding may differ across
machines and thread counts). An item a user got wrong (unknown method, a prompt longer than the context)
yields its error in its place; the other items still run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.explain.api import DEFAULT_METHOD, METHODS, explain, method_options
from clearlm.explain.result import Attribution
from clearlm.models.chat import Message, Prompt

Progress = Callable[[int, int], None]  # (items done, items in all)
Outcome = Attribution | ClearlmError


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One explanation to make. Fields: prompt (text to continue, or chat messages); target (the
    continuation to force; None: the model's greedy continuation of at most ``max_new_tokens`` tokens);
    method (one of ``METHODS``); options (the method's options, as ``explain`` takes them)."""

    prompt: Prompt
    target: str | None = None
    method: str = DEFAULT_METHOD
    max_new_tokens: int = 32
    options: dict[str, Any] = field(default_factory=dict)


def read_items(path: str | Path, method: str = DEFAULT_METHOD) -> list[BatchItem]:
    """Items from a JSONL file: one JSON object a line with ``prompt`` (a string, or a list of
    ``{"role", "content"}`` messages) and optionally ``target``, ``method`` (default ``method``),
    ``max_new_tokens``, ``options`` (an object). Blank lines are skipped.

    Raises:
        InvalidInputError: an unreadable file, a line that is not such an object (its number is given), an
        unknown method or option, or no items at all.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {path}: {exc}") from None
    items = [_item(line, n, path, method) for n, line in enumerate(lines, 1) if line.strip()]
    if not items:
        raise InvalidInputError(f"{path} holds no items: write one JSON object per line")
    return items


def _item(line: str, n: int, path, default_method: str) -> BatchItem:
    where = f"{path}, line {n}"
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where} is not JSON ({exc.msg}): write one JSON object per line") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompt"), str | list):
        raise InvalidInputError(f'{where}: expected an object with a "prompt" (text or messages)')
    unknown = set(data) - {"prompt", "target", "method", "max_new_tokens", "options"}
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    prompt = data["prompt"]
    if isinstance(prompt, list):
        try:
            prompt = [Message(m["role"], m["content"]) for m in prompt]
        except (KeyError, TypeError):
            raise InvalidInputError(f'{where}: each message needs a "role" and a "content"') from None
    method = data.get("method", default_method)
    if method not in METHODS:
        raise InvalidInputError(f"{where}: unknown method {method!r}: choose one of {', '.join(METHODS)}")
    options = data.get("options") or {}
    if not isinstance(options, dict) or set(options) - set(method_options(method)):
        raise InvalidInputError(
            f"{where}: options must be an object of {method}'s options: "
            f"{', '.join(method_options(method)) or 'none'}"
        )
    return BatchItem(prompt, data.get("target"), method, int(data.get("max_new_tokens", 32)), options)


def explain_item(backend, item: BatchItem) -> Outcome:
    """One item's attribution, or the user error it raised."""
    try:
        return explain(
            backend,
            item.prompt,
            item.target,
            method=item.method,
            max_new_tokens=item.max_new_tokens,
            **item.options,
        )
    except ClearlmError as exc:
        return exc


class BatchWorker:
    """The Ray actor of a job (``ray.remote(BatchWorker)``): a torch backend of the model, loaded once."""

    def __init__(self, model: str, dtype: str, threads: int) -> None:
        import torch

        from clearlm.models.loader import load_backend

        torch.set_num_threads(threads)
        self.error: ClearlmError | None = None
        try:
            self.backend = load_backend(model, "torch", dtype=dtype)
        except ClearlmError as exc:  # raised by explain(): a restart would fail the same way
            self.error = exc

    def explain(self, index: int, item: BatchItem) -> tuple[int, Outcome]:
        if self.error is not None:
            raise self.error
        return index, explain_item(self.backend, item)


def explain_batch(
    model: str,
    items: Sequence[BatchItem],
    *,
    address: str | None = None,
    workers: int | None = None,
    threads: int = 1,
    dtype: str = "float32",
    progress: Progress | None = None,
) -> list[Outcome]:
    """Explain every item with ``model`` on the torch backend; results in input order.

    Args:
        address: the Ray cluster (``HOST:PORT`` or ``"auto"``); with ``address`` None and ``workers``
            unset, everything runs in this process.
        workers: Ray actors to spread the items over (default: one per ``threads`` CPUs of the cluster,
            at most one per item); ``workers=0`` runs in this process.
        threads: CPU threads (and Ray CPUs) per actor.
        progress: called as ``(done, total)`` after each item.

    Raises:
        ModelNotFoundError and the other load errors; BackendUnavailableError: Ray missing or no cluster at
        ``address``. An item's own user errors are returned in its place instead.
    """
    total = len(items)
    if progress is not None:
        progress(0, total)
    if workers == 0 or (workers is None and address is None):
        return _in_process(model, items, dtype, progress)
    return _on_ray(model, items, address, workers, threads, dtype, progress)


def _in_process(model, items, dtype, progress) -> list[Outcome]:
    from clearlm.models.loader import load_backend

    backend = load_backend(model, "torch", dtype=dtype)
    out = []
    for item in items:
        out.append(explain_item(backend, item))
        if progress is not None:
            progress(len(out), len(items))
    return out


def _on_ray(model, items, address, workers, threads, dtype, progress) -> list[Outcome]:
    from clearlm.models.backends.ray_cluster import connect, unwrap

    ray = connect(address)
    from ray.util import ActorPool

    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)
    workers = max(1, min(workers, len(items)))
    actor = ray.remote(BatchWorker).options(
        num_cpus=threads, max_restarts=2, max_task_retries=2, scheduling_strategy="SPREAD"
    )
    actors = [actor.remote(model, dtype, threads) for _ in range(workers)]
    results: list[Outcome | None] = [None] * len(items)
    try:
        pool = ActorPool(actors)
        jobs = pool.map_unordered(lambda a, job: a.explain.remote(*job), enumerate(items))
        for done, (index, outcome) in enumerate(jobs, 1):
            results[index] = outcome
            if progress is not None:
                progress(done, len(items))
    except ray.exceptions.RayError as exc:
        raise unwrap(exc) from None
    finally:
        for a in actors:
            ray.kill(a, no_restart=True)
    return results  # type: ignore[return-value]


def write_results(path: str | Path, outcomes: Sequence[Outcome]) -> Path:
    """Write one JSON line per item, in input order: ``{"index", ...the attribution's JSON}`` or
    ``{"index", "error"}`` (written atomically: a temporary file, then a rename)."""
    from clearlm.paths import write_text_atomic

    lines = []
    for i, outcome in enumerate(outcomes):
        if isinstance(outcome, Attribution):
            row = {"index": i, **json.loads(outcome.to_json())}
        else:
            row = {"index": i, "error": str(outcome)}
        lines.append(json.dumps(row, allow_nan=False, ensure_ascii=False))
    return write_text_atomic(path, "\n".join(lines) + "\n")


__all__ = ["BatchItem", "BatchWorker", "explain_batch", "explain_item", "read_items", "write_results"]
