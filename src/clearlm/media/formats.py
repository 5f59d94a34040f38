"""A transcript written as OpenAI's transcription API answers (``response_format`` json, text, srt, vtt,
verbose_json) and as subtitle files: SubRip (SRT) and WebVTT (W3C, "WebVTT: The Web Video Text Tracks
Format")."""

from __future__ import annotations

from clearlm.errors import InvalidInputError
from clearlm.media.transcribe import Transcript

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
MEDIA_TYPES = {
    "json": "application/json",
    "verbose_json": "application/json",
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}
# the names OpenAI's verbose_json gives a language (Whisper's own, lower case); others are given by code
LANGUAGE_NAMES = {
    "en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian", "pt": "portuguese",
    "nl": "dutch", "ru": "russian", "zh": "chinese", "ja": "japanese", "ko": "korean", "ar": "arabic",
    "hi": "hindi", "pl": "polish", "tr": "turkish", "sv": "swedish", "uk": "ukrainian", "ca": "catalan",
    "gl": "galician", "cs": "czech", "el": "greek", "fi": "finnish", "da": "danish", "no": "norwegian",
}  # fmt: skip


def check_format(response_format: str) -> str:
    """``response_format`` if it is one of ``RESPONSE_FORMATS``; raises InvalidInputError otherwise."""
    if response_format not in RESPONSE_FORMATS:
        raise InvalidInputError(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, got {response_format!r}"
        )
    return response_format


def timestamp(seconds: float, separator: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT; ``separator`` "." for WebVTT) from seconds >= 0."""
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def to_srt(t: Transcript) -> str:
    """SubRip: numbered cues from 1, ``start --> end``, the text, a blank line after each."""
    return "".join(
        f"{i}\n{timestamp(s.start)} --> {timestamp(s.end)}\n{s.text}\n\n" for i, s in enumerate(t.segments, 1)
    )


def to_vtt(t: Transcript) -> str:
    """WebVTT: the ``WEBVTT`` header, then one cue per segment (``.`` before milliseconds)."""
    cues = "".join(f"{timestamp(s.start, '.')} --> {timestamp(s.end, '.')}\n{s.text}\n\n" for s in t.segments)
    return "WEBVTT\n\n" + cues


def to_verbose(t: Transcript, words: bool = True, segments: bool = True) -> dict:
    """OpenAI's ``verbose_json``: task, language (its name), duration (s), text, segments (id, seek, start,
    end, text, tokens, temperature, avg_logprob, compression_ratio, no_speech_prob) and, when the words
    were timed, words (word, start, end); plus clearlm's ``language_code``, ``language_probability``,
    ``speech_duration`` (s, after voice-activity detection) and ``request_id`` (the audit record)."""
    out: dict = {
        "task": t.task,
        "language": LANGUAGE_NAMES.get(t.language, t.language),
        "duration": round(t.duration, 3),
        "text": t.text,
        "language_code": t.language,
        "language_probability": round(t.language_probability, 4),
        "speech_duration": round(t.speech_seconds, 3),
        "request_id": t.request_id,
    }
    if segments:
        out["segments"] = [
            {
                "id": s.id,
                "seek": int(s.start * 100),
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": round(s.avg_logprob, 4),
                "compression_ratio": round(s.compression_ratio, 4),
                "no_speech_prob": round(s.no_speech_prob, 4),
            }
            for s in t.segments
        ]
    timed = [w for s in t.segments for w in s.words]
    if words and timed:
        out["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end, "probability": w.probability}
            for w in timed
        ]
    return out


def render(t: Transcript, response_format: str) -> str | dict:
    """The transcript in ``response_format``: a dict for json/verbose_json, text for the others."""
    check_format(response_format)
    if response_format == "json":
        return {"text": t.text}
    if response_format == "verbose_json":
        return to_verbose(t)
    if response_format == "srt":
        return to_srt(t)
    if response_format == "vtt":
        return to_vtt(t)
    return t.text + "\n" if t.text else ""
