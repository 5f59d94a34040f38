"""/v1/audio: OpenAI's speech routes, so the ``openai`` client works unchanged, and clearlm's voice chat.

- ``POST /v1/audio/transcriptions`` and ``/v1/audio/translations`` (multipart: ``file``, ``model``,
  ``language``, ``prompt``, ``response_format`` json|text|srt|vtt|verbose_json, ``temperature``,
  ``timestamp_granularities[]`` segment|word, ``stream``): Whisper base; the transcript passes the input
  policy and is audited (``clearlm.media.governed``). With ``stream`` true, server-sent events
  ``transcript.text.delta`` (a segment's text, screened by the policy) and ``transcript.text.done`` (the
  governed whole), as OpenAI streams transcriptions.
- ``POST /v1/audio/speech`` (JSON: ``input``, ``voice``, ``response_format`` wav|mp3|opus|flac|pcm,
  ``speed``): the file's bytes.
- ``POST /v1/audio/transcriptions/live``: live PCM in, partial and final text out (``server.audio_live``).
- ``GET /v1/audio/voices``: the voices.
- ``POST /v1/audio/chat`` (multipart: ``file``, ``voice``, ``response_format``, ``system``, ``max_tokens``,
  ``language``): voice chat, one governed turn: ``{transcript, question, answer, audio (base64), ...}``.

A bad file (empty, truncated, not audio, an undecodable codec) is 400 with code ``invalid_audio`` or
``unsupported_audio_codec``; nothing is written to disk (uploads over 1 MB are spooled by Starlette to an
anonymous temporary file, deleted when the request ends).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Literal

import anyio
from fastapi import File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import Field

from clearlm.errors import InvalidInputError, ModelNotFoundError
from clearlm.media import formats
from clearlm.media.audio import decode
from clearlm.media.encode import MEDIA_TYPES, SPEECH_FORMATS
from clearlm.media.governed import govern_transcript
from clearlm.media.speech import MAX_INPUT_CHARS, MAX_SPEED, MIN_SPEED, check_voice, synthesize, voices
from clearlm.media.transcribe import transcribe
from clearlm.media.voice import MAX_HISTORY, answer, hear
from clearlm.models.chat import Message
from clearlm.pipeline import screen_text
from clearlm.server import audio_live
from clearlm.server.lifecycle import own_record
from clearlm.server.protocol import _Request
from clearlm.server.routes import api_router, state
from clearlm.server.serving import admit, policy_of
from clearlm.server.sse import thread_events

router = api_router()
MAX_AUDIO_BYTES = 25 * 1024 * 1024  # as OpenAI's transcription API
STT_MODELS = ("whisper-1", "whisper-base", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")


class SpeechRequest(_Request):
    model: str = Field("tts-1", max_length=64, description="Any of tts-1, tts-1-hd, gpt-4o-mini-tts, piper.")
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS, description="The text to speak.")
    voice: str = Field("alloy", max_length=64, description="joe or an OpenAI voice (Piper), or a language.")
    response_format: Literal["wav", "mp3", "opus", "flac", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED)
    variation: float = Field(
        1.0,
        ge=0,
        le=1,
        description="clearlm: 0 speaks a text the same every time, 1 with the voice's variety.",
    )


async def _read(file: UploadFile) -> bytes:
    data = await file.read(MAX_AUDIO_BYTES + 1)
    if len(data) > MAX_AUDIO_BYTES:
        raise InvalidInputError(f"the file is larger than {MAX_AUDIO_BYTES:,} bytes: split the recording")
    return data


def _check_model(model: str) -> None:
    if model not in STT_MODELS:
        raise ModelNotFoundError(f"unknown transcription model {model!r}: use {', '.join(STT_MODELS)}")


async def _speech_to_text(
    request: Request, task: str, file, model, language, prompt, fmt, temperature, grains, stream
):
    s = state(request)
    _check_model(model)
    formats.check_format(fmt)
    data, name = await _read(file), file.filename or "the file"
    await admit(request, s)
    policy = await anyio.to_thread.run_sync(policy_of, request, s)
    words = "word" in (grains or [])
    audio = await anyio.to_thread.run_sync(lambda: decode(data, name))
    extra = {"response_format": fmt, "word_timestamps": words, "stream": stream}

    def run(on_segment=None):
        t = transcribe(
            audio,
            language=None if task == "translate" else language,
            task=task,
            word_timestamps=words,
            prompt=prompt,
            temperature=temperature,
            on_segment=on_segment,
        )
        return govern_transcript(t, own_record(request), s.audit, policy, extra)

    if stream:
        return _streamed(run, policy)
    t = await anyio.to_thread.run_sync(run)
    out = formats.render(t, fmt)
    if isinstance(out, dict):
        return JSONResponse(out)
    return Response(out, media_type=formats.MEDIA_TYPES[fmt])


def _streamed(run, policy) -> StreamingResponse:
    """Server-sent events (:func:`~clearlm.server.sse.thread_events`): each segment's text as it is
    decoded (screened by the policy, not recorded), then the governed transcript (recorded)."""
    from clearlm.store.audit import AuditRecord

    def work(emit):
        def on_segment(segment) -> None:
            scratch = AuditRecord(request_id="partial", created_at=_now(), endpoint="partial")
            text = screen_text(segment.text, scratch, None, policy).text
            emit({"type": "transcript.text.delta", "delta": text + " "})

        return run(on_segment)

    return thread_events(
        work, lambda t: {"type": "transcript.text.done", "text": t.text, "request_id": t.request_id}
    )


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


Upload = Annotated[
    UploadFile,
    File(description=f"The recording (WAV, MP3, OGG, FLAC, WebM, M4A), at most {MAX_AUDIO_BYTES:,} bytes."),
]
FormStr = Annotated[str | None, Form(max_length=1000)]


@router.post("/audio/transcriptions")
async def create_transcription(
    request: Request,
    file: Upload,
    model: Annotated[str, Form(max_length=64)] = "whisper-1",
    language: Annotated[str | None, Form(max_length=16)] = None,
    prompt: FormStr = None,
    response_format: Annotated[str, Form(max_length=16)] = "json",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
    timestamp_granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    stream: Annotated[bool, Form()] = False,
):
    """Speech to text (OpenAI's transcription API)."""
    return await _speech_to_text(
        request,
        "transcribe",
        file,
        model,
        language,
        prompt,
        response_format,
        temperature,
        timestamp_granularities,
        stream,
    )


@router.post("/audio/translations")
async def create_translation(
    request: Request,
    file: Upload,
    model: Annotated[str, Form(max_length=64)] = "whisper-1",
    prompt: FormStr = None,
    response_format: Annotated[str, Form(max_length=16)] = "json",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
):
    """Speech in any language to English text (OpenAI's translation API)."""
    return await _speech_to_text(
        request, "translate", file, model, None, prompt, response_format, temperature, None, False
    )


@router.post("/audio/speech")
async def create_speech(request: Request, body: SpeechRequest):
    """Text to speech (OpenAI's speech API): the audio file's bytes. The text passes the input policy first
    (``pipeline.screen_text``: redacted where it says so; a blocked text is answered with the policy's
    refusal, spoken) and is recorded as the request's prompt."""
    s = state(request)
    voice, engine = check_voice(body.voice)  # an unknown voice: 400 before anything runs
    if not body.input.strip():
        raise InvalidInputError("input is empty: give the text to speak")
    await admit(request, s)
    policy = await anyio.to_thread.run_sync(policy_of, request, s)

    def work() -> bytes:
        record = own_record(request)
        record.model = "piper en_US-joe-medium" if engine == "piper" else f"espeak-ng {voice}"
        record.parameters = {
            "voice": voice,
            "response_format": body.response_format,
            "speed": body.speed,
            "variation": body.variation,
        }
        screened = screen_text(body.input, record, s.audit, policy)
        return synthesize(screened.text, voice, body.speed, body.variation).encoded(body.response_format)

    audio = await anyio.to_thread.run_sync(work)
    return Response(audio, media_type=MEDIA_TYPES[body.response_format])


@router.get("/audio/voices")
async def list_voices():
    """The voices ``/v1/audio/speech`` accepts, with the engine that speaks each."""
    found = await anyio.to_thread.run_sync(voices)
    return {"object": "list", "data": [{"id": k, "engine": v} for k, v in found.items()]}


@router.post("/audio/chat")
async def voice_chat(
    request: Request,
    file: Upload,
    voice: Annotated[str | None, Form(max_length=64)] = None,
    response_format: Annotated[str, Form(max_length=16)] = "wav",
    system: Annotated[str | None, Form(max_length=20_000)] = None,
    history: Annotated[
        str | None, Form(max_length=200_000, description="JSON list of {role, content}.")
    ] = None,
    max_tokens: Annotated[int, Form(ge=1, le=4096)] = 256,
    language: Annotated[str | None, Form(max_length=16)] = None,
):
    """Voice chat: the recording transcribed, answered by one governed pipeline turn, the answer spoken."""
    s = state(request)
    if response_format not in SPEECH_FORMATS:
        raise InvalidInputError(f"response_format must be one of {', '.join(SPEECH_FORMATS)}")
    earlier = _history(history)
    if voice is not None:
        check_voice(voice)
    if len(earlier) > MAX_HISTORY:
        raise InvalidInputError(f"history holds {len(earlier)} messages; at most {MAX_HISTORY}")
    data, name = await _read(file), file.filename or "the recording"
    await admit(request, s)
    policy = await anyio.to_thread.run_sync(policy_of, request, s)

    heard = await anyio.to_thread.run_sync(hear, data, name, language)  # refused here: the request's record

    def work():
        record = own_record(request)  # the turn's record from here on
        record.request_id = "voice-" + record.request_id.removeprefix("req-")
        return answer(
            heard, s.backend, record, s.audit, policy, history=earlier, system=system, voice=voice,
            response_format=response_format, max_tokens=max_tokens,
        )  # fmt: skip

    reply = await anyio.to_thread.run_sync(work)
    return {
        "id": reply.request_id,
        "object": "voice.chat",
        "transcript": reply.transcript.text,
        "question": reply.question,
        "answer": reply.answer,
        "language": reply.language,
        "voice": reply.voice,
        "refused": reply.refused,
        "audio": {"format": response_format, "data": base64.b64encode(reply.speech).decode()},
    }


def _history(raw: str | None) -> list[Message]:
    if not raw:
        return []
    try:
        items = json.loads(raw)
        return [Message(m["role"], m["content"]) for m in items if m["role"] in ("user", "assistant")]
    except (ValueError, TypeError, KeyError):
        raise InvalidInputError("history must be a JSON list of {role, content} objects") from None


router.add_api_route(
    "/audio/transcriptions/live",
    audio_live.live_transcription,
    methods=["POST"],
    summary="Live transcription",
)
