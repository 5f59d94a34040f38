"""``clearlm transcribe FILE`` (speech to text, governed and audited) and ``clearlm speak TEXT`` (text to
speech): thin shells over ``clearlm.media``."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer

from clearlm.cli.common import DB, console, err_console
from clearlm.cli.govern import POLICY
from clearlm.errors import InvalidInputError


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename (never half a file)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _read(file: Path) -> bytes:
    if not file.is_file():
        raise InvalidInputError(f"no file {str(file)!r}: give the path of a recording")
    return file.read_bytes()


def transcribe(
    file: Path = typer.Argument(..., help="a recording: WAV, MP3, OGG/Opus, FLAC, WebM, M4A, or a video"),
    fmt: str = typer.Option("text", "--format", "-f", help="text, json, verbose_json, srt or vtt"),
    output: Path = typer.Option(None, "--output", "-o", help="write it to this file instead of the terminal"),
    language: str = typer.Option(None, "--language", "-l", help="ISO 639-1 code (default: detected)"),
    translate: bool = typer.Option(False, "--translate", help="translate the speech to English"),
    words: bool = typer.Option(False, "--words", help="word timestamps (verbose_json)"),
    prompt: str = typer.Option(None, "--prompt", help="text that precedes the audio (names, spelling)"),
    policy: Path = POLICY,
    db: str = DB,
) -> None:
    """Transcribe a recording with Whisper base (voice-activity detection first: silence gives no words).
    The transcript passes the policy and is recorded in the audit log (endpoint cli:transcribe)."""
    from clearlm.cli.generate import _audit_log, _policy
    from clearlm.media import formats
    from clearlm.media.audio import decode
    from clearlm.media.governed import govern_transcript
    from clearlm.media.transcribe import transcribe as run
    from clearlm.store import AuditRecord

    formats.check_format(fmt)
    data = _read(file)
    gov = _policy(policy)
    audio = decode(data, file.name)
    task = "translate" if translate else "transcribe"
    with err_console.status(f"transcribing {audio.duration:.1f} s of audio ..."):
        t = run(audio, language=language, task=task, word_timestamps=words, prompt=prompt)
    record = AuditRecord(
        request_id=f"cli-{uuid.uuid4().hex[:24]}", created_at=datetime.now(UTC), endpoint="cli:transcribe"
    )
    t = govern_transcript(t, record, _audit_log(db), gov, {"file": file.name})
    out = formats.render(t, fmt)
    text = json.dumps(out, ensure_ascii=False, indent=2) + "\n" if isinstance(out, dict) else out
    if output is None:
        console.print(text, end="", markup=False, highlight=False, soft_wrap=True)
    else:
        _write_bytes(output, text.encode("utf-8"))
    err_console.print(
        f"[dim]{t.language} ({t.language_probability:.0%}), {t.duration:.1f} s of audio, "
        f"{t.speech_seconds:.1f} s of speech, {t.seconds:.1f} s (real-time factor {t.real_time_factor:.2f})[/]"
    )


def speak(
    text: str = typer.Argument(..., help="the text to speak (- reads it from standard input)"),
    output: Path = typer.Option(..., "--output", "-o", help="the audio file to write"),
    voice: str = typer.Option(
        "joe", "--voice", "-v", help="joe (English, neural), or a language: fr, de, es ..."
    ),
    fmt: str = typer.Option(
        None, "--format", "-f", help="wav, mp3, opus, flac, pcm (default: the file's suffix)"
    ),
    speed: float = typer.Option(1.0, "--speed", help="0.25 to 4"),
    variation: float = typer.Option(
        1.0, "--variation", help="0 to 1: 0 speaks the text the same every time, 1 with the voice's variety"
    ),
) -> None:
    """Speak a text into an audio file: Piper's neural voice for English, espeak-ng for other languages."""
    import sys

    from clearlm.media.encode import check_speech_format
    from clearlm.media.speech import synthesize

    fmt = check_speech_format(fmt or output.suffix.lstrip(".").lower().replace("ogg", "opus") or "wav")
    if text == "-":
        text = sys.stdin.read()
    speech = synthesize(text, voice, speed, variation)
    _write_bytes(output, speech.encoded(fmt))
    err_console.print(
        f"[dim]{output}: {speech.duration:.1f} s, {speech.engine} ({speech.voice}), "
        f"real-time factor {speech.real_time_factor:.2f}[/]"
    )
