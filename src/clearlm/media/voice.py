"""Voice chat: a recording in, its transcript as the user's message of one governed pipeline turn (input
policy, generation, output policy, one audit record), the answer spoken back in the language heard."""

from __future__ import annotations

import re
from dataclasses import dataclass

from clearlm.errors import InvalidInputError
from clearlm.media.audio import decode
from clearlm.media.encode import check_speech_format
from clearlm.media.speech import MAX_INPUT_CHARS, check_voice, synthesize, voice_for_language
from clearlm.media.transcribe import Transcript, transcribe
from clearlm.models.backends.base import SamplingParams
from clearlm.models.chat import Message
from clearlm.pipeline import CONTENT_FILTER, TurnRequest, start_turn
from clearlm.store.audit import AuditLog, AuditRecord

MAX_HISTORY = 32  # earlier messages a voice turn may carry


class NoSpeechError(InvalidInputError):
    """A recording in which no speech was found."""

    code = "no_speech"


@dataclass(frozen=True, slots=True)
class VoiceReply:
    """One voice turn: ``transcript`` (what was heard, as Whisper wrote it), ``question`` (the user's
    message after the input policy: what the model read and what may be shown), ``answer`` (after the
    output policy), ``speech`` (the answer spoken, a ``response_format`` file; empty when the answer is
    empty), ``voice``, ``language`` (ISO 639-1, heard), ``refused`` (a policy blocked the turn),
    ``request_id`` (the turn's audit record)."""

    transcript: Transcript
    question: str
    answer: str
    speech: bytes
    voice: str
    language: str
    refused: bool
    request_id: str


def spoken(text: str) -> str:
    """``text`` as it should be read aloud: Markdown marks, code fences and URLs' punctuation left out."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"[*_#`>|]+", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return " ".join(text.split())[:MAX_INPUT_CHARS]


def hear(data: bytes, name: str = "the recording", language: str | None = None) -> Transcript:
    """The recording's transcript (``language`` ISO 639-1, or detected).

    Raises:
        AudioError: an unusable recording. NoSpeechError: nothing was said in it.
    """
    audio = decode(data, name)
    heard = transcribe(audio, language=language)
    if not heard.text.strip():
        raise NoSpeechError(
            f"no speech was heard in {name} ({audio.duration:.1f} s): speak closer to the microphone and try again"
        )
    return heard


def answer(
    heard: Transcript,
    backend,
    record: AuditRecord,
    audit: AuditLog | None = None,
    policy=None,
    *,
    history: list[Message] | None = None,
    system: str | None = None,
    voice: str | None = None,
    response_format: str = "wav",
    speed: float = 1.0,
    max_tokens: int = 256,
) -> VoiceReply:
    """Answer the transcript ``heard``: one pipeline turn on ``backend`` whose last user message is its text
    (after ``system`` and ``history``), recorded in ``record`` (its parameters keep the audio's duration,
    language and model), then the answer spoken with ``voice`` (default: Piper for English, the espeak-ng
    voice of the language heard otherwise) as a ``response_format`` file.

    Raises:
        InvalidInputError: an unknown voice or format, more than ``MAX_HISTORY`` messages. The pipeline's
            errors (PolicyViolationError, ContextLengthError) as ``start_turn`` raises them.
    """
    history = list(history or [])
    if voice is not None:
        voice = check_voice(voice)[0]
    check_speech_format(response_format)
    if len(history) > MAX_HISTORY:
        raise InvalidInputError(f"history holds {len(history)} messages; at most {MAX_HISTORY}")
    prompt = ([Message("system", system)] if system else []) + history + [Message("user", heard.text)]
    params = SamplingParams(max_new_tokens=max_tokens, temperature=0.0)
    voice = voice or voice_for_language(heard.language)
    turn = start_turn(backend, TurnRequest(prompt=prompt, params=params), record, audit, policy)
    record.parameters["audio"] = {  # the record is written when the turn ends
        "model": heard.model,
        "duration": round(heard.duration, 3),
        "language": heard.language,
        "voice": voice,
    }
    turn.run()
    choice = turn.choices[0]
    refused = choice.finish_reason == CONTENT_FILTER
    question = turn.request.prompt[-1].content
    text = spoken(choice.text)
    speech = synthesize(text, voice, speed).encoded(response_format) if text else b""
    return VoiceReply(heard, question, choice.text, speech, voice, heard.language, refused, record.request_id)


def voice_turn(data: bytes, backend, record: AuditRecord, audit=None, policy=None, *, name="the recording",
               language: str | None = None, **options) -> VoiceReply:  # fmt: skip
    """:func:`hear` then :func:`answer` (``options``: answer's). A recording refused before the turn
    (unusable, silent) is not recorded here: the caller records the request."""
    return answer(hear(data, name, language), backend, record, audit, policy, **options)
