"""Server-sent events for work that runs in a worker thread (a document's translation, a transcription):
the thread emits JSON events as it goes; the last event is the result, or an OpenAI-style error body;
then ``data: [DONE]``, as OpenAI's streams end.

``STREAMED``: the ``responses=`` of a route that streams so, its ``text/event-stream`` described one
event at a time (OpenAPI 3.2's ``itemSchema`` shape; 3.0/3.1 tools such as schemathesis read ``schema``
per event).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
from fastapi.responses import StreamingResponse

from clearlm.errors import ClearlmError
from clearlm.server.errors import error_body

SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {"type": "string", "contentMediaType": "application/json"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
STREAMED = {200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}}}

Emit = Callable[[dict], None]


def thread_events(work: Callable[[Emit], Any], last: Callable[[Any], dict]) -> StreamingResponse:
    """``work(emit)`` runs in a worker thread, calling ``emit(event)`` (a JSON-able dict) as it goes; its
    return value becomes the last event, ``last(result)``. A :class:`ClearlmError` it raises becomes an
    error body event instead (the response has begun: its status stays 200). At most 64 events wait for
    a slow client before ``emit`` blocks the thread."""
    send, receive = anyio.create_memory_object_stream(64)

    def emit(event: dict) -> None:
        anyio.from_thread.run(send.send, event)

    async def events():
        async def run():
            try:
                result = await anyio.to_thread.run_sync(work, emit)
                await send.send(last(result))
            except ClearlmError as exc:
                await send.send(error_body(str(exc), exc.error_type, exc.code))
            finally:
                await send.aclose()

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            async for item in receive:
                yield f"data: {json.dumps(item)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
