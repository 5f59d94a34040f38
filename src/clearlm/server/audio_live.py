"""``POST /v1/audio/transcriptions/live``: live audio in, words out while it is still arriving.

The body is raw 16-bit little-endian mono PCM at 16 kHz (``Content-Type: audio/pcm``), sent as it is
recorded (chunked transfer encoding; at most the server's body bound, 32 MiB: about 17 minutes); the
response is server-sent events as the audio arrives: ``transcript.text.partial`` (the speech still going on,
replaced by the next), ``transcript.text.final`` (an utterance ended by a pause; times in seconds from the
start of the stream), then ``transcript.text.done`` with the whole transcript, governed and audited like an
uploaded file's (``clearlm.media.live``, ``clearlm.media.governed``), and ``[DONE]``. Every text passes the
policy before it is sent.
"""

from __future__ import annotations

import json
from typing import Annotated

import anyio
import numpy as np
from fastapi import Query, Request
from fastapi.responses import StreamingResponse

from clearlm.errors import ClearlmError, InvalidInputError
from clearlm.media.audio import SAMPLE_RATE
from clearlm.media.governed import govern_transcript
from clearlm.media.live import LiveEvent, LiveTranscriber
from clearlm.media.transcribe import Segment, Transcript, languages
from clearlm.server.errors import error_body
from clearlm.server.lifecycle import own_record
from clearlm.server.routes import state
from clearlm.server.serving import admit, policy_of

PCM_TYPES = ("audio/pcm", "audio/l16", "application/octet-stream")


class DuplexResponse(StreamingResponse):
    """Server-sent events written while the request body is still being read: Starlette's
    StreamingResponse would listen for the client's disconnect on ``receive``, taking the body's
    messages; here only the body's reader calls ``receive`` (a client that leaves ends that read)."""

    async def __call__(self, scope, receive, send) -> None:
        await self.stream_response(send)


def _event(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _of(e: LiveEvent) -> dict:
    return {"type": f"transcript.text.{e.kind}", "text": e.text, "start": e.start, "end": e.end}


async def live_transcription(
    request: Request, language: Annotated[str | None, Query(max_length=16)] = None
) -> StreamingResponse:
    """Live transcription of a PCM stream (see the module)."""
    s = state(request)
    if language is not None and language not in languages():
        raise InvalidInputError(f"unknown language {language!r}: give an ISO 639-1 code (en, fr, de, ...)")
    if not request.headers.get("content-type", "").startswith(PCM_TYPES):
        raise InvalidInputError(
            "send raw 16-bit little-endian mono PCM at 16 kHz with Content-Type: audio/pcm "
            "(for a file, use POST /v1/audio/transcriptions)"
        )
    await admit(request, s)
    policy = await anyio.to_thread.run_sync(policy_of, request, s)
    live = LiveTranscriber(language=language, policy=policy)

    async def events():
        finals: list[LiveEvent] = []
        carry = b""
        try:
            async for body in request.stream():
                data = carry + body
                whole = len(data) // 2 * 2
                carry = data[whole:]
                chunk = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
                for e in await anyio.to_thread.run_sync(live.feed, chunk):
                    finals += [e] if e.kind == "final" else []
                    yield _event(_of(e))
            for e in await anyio.to_thread.run_sync(live.finish):
                finals.append(e)
                yield _event(_of(e))
            segments = tuple(Segment(i, e.start, e.end, e.text) for i, e in enumerate(finals))
            heard = Transcript(
                text=" ".join(e.text for e in finals),
                segments=segments,
                language=live.detected or "en",
                language_probability=0.0,
                duration=live.seconds,
                speech_seconds=sum(e.end - e.start for e in finals),
            )
            record = own_record(request)
            t = await anyio.to_thread.run_sync(
                govern_transcript, heard, record, s.audit, policy, {"live": True, "sample_rate": SAMPLE_RATE}
            )
            yield _event({"type": "transcript.text.done", "text": t.text, "request_id": t.request_id})
        except ClearlmError as exc:
            yield _event(error_body(str(exc), exc.error_type, exc.code))
        yield "data: [DONE]\n\n"

    return DuplexResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
