"""Speech to text with Whisper base (faster-whisper, CTranslate2 int8 on the CPU): language detection, segment
and word timestamps, translation to English, and Silero voice-activity detection first, so that silence
and music yield no words (the repetitions Whisper invents over non-speech: faster-whisper issues #465,
#506). Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak Supervision"."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from clearlm.errors import InvalidInputError
from clearlm.media.audio import SAMPLE_RATE, Audio
from clearlm.media.speech_models import WHISPER, whisper

TASKS = ("transcribe", "translate")
MAX_PROMPT_CHARS = 1000
# a segment that is only a hum or a filler ("Mmmmmm", "Hmm", "Uh"): what Whisper writes over music and noise
HUM = re.compile(r"^(?:[hm]+|u+[hm]+|a+h+|o+h+|e+r+)$", re.IGNORECASE)
# Silero VAD settings for transcription: faster-whisper's own (speech padded by 0.4 s; pauses under 2 s do not
# split it), whose word error rate clearlm's matches (benchmarks/bench_media.py)
VAD = {"threshold": 0.5, "min_silence_duration_ms": 2000, "speech_pad_ms": 400}
# for finding utterances (live results, classification): pauses of 0.5 s split speech, padded by 0.2 s
SEGMENT_VAD = {
    "threshold": 0.5,
    "min_silence_duration_ms": 500,
    "speech_pad_ms": 200,
    "min_speech_duration_ms": 250,
}


@dataclass(frozen=True, slots=True)
class Word:
    """A word with its start and end (seconds from the start of the audio) and Whisper's probability."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech: ``start``/``end`` in seconds, its ``text``, its ``words`` (with word timestamps,
    else empty), and Whisper's decoding figures (mean token log-probability, compression ratio, probability
    of no speech, the temperature that decoded it, token ids)."""

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    tokens: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said: ``text`` (the segments' texts joined), ``segments``, the ``language`` spoken (ISO 639-1,
    detected unless given) with its probability, ``duration`` (seconds of audio), ``speech_seconds`` (after
    voice-activity detection), ``task`` ("transcribe", or "translate": the text is English), ``model``,
    ``seconds`` (wall-clock time taken), and ``request_id`` (its audit record, once governed)."""

    text: str
    segments: tuple[Segment, ...]
    language: str
    language_probability: float
    duration: float
    speech_seconds: float
    task: str = "transcribe"
    model: str = WHISPER
    seconds: float = 0.0
    request_id: str | None = None
    governance: dict | None = field(default=None, compare=False)

    @property
    def real_time_factor(self) -> float:
        """Processing time over audio duration (below 1: faster than real time)."""
        return self.seconds / self.duration if self.duration else 0.0


def languages() -> tuple[str, ...]:
    """The ISO 639-1 codes Whisper knows (99)."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return tuple(_LANGUAGE_CODES)


def transcribe(
    audio: Audio | np.ndarray,
    *,
    language: str | None = None,
    task: str = "transcribe",
    word_timestamps: bool = False,
    prompt: str | None = None,
    temperature: float = 0.0,
    vad: bool = True,
    beam_size: int = 5,
    on_segment: Callable[[Segment], None] | None = None,
) -> Transcript:
    """Transcribe (or translate to English) ``audio``: an :class:`Audio` or float32[n] samples at 16 kHz.

    ``language``: ISO 639-1 (None: detected from the first 30 s); ``prompt``: text that precedes the audio
    (names, spelling); ``temperature``: 0 decodes greedily/with beam search and falls back to higher
    temperatures on a repetitive or unlikely result (OpenAI's behaviour), above 0 samples at that
    temperature; ``vad``: skip non-speech first (Silero, ``VAD`` settings); ``on_segment``: called with
    each segment as it is decoded (for progress or streaming). Previous text does not condition the next
    window (it propagates a hallucinated loop), a segment that is only a hum or a filler ("Mmmm", over
    music) is dropped, and with word timestamps, text over pauses longer than 2 s
    is dropped (faster-whisper's ``hallucination_silence_threshold``).

    Raises:
        InvalidInputError: an unknown language or task, a prompt over ``MAX_PROMPT_CHARS``, a temperature
            outside [0, 1]. ModelNotFoundError / IntegrityError: the packaged model (``speech_models``).
    """
    if task not in TASKS:
        raise InvalidInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if language is not None:
        language = language.strip().lower()
        if language not in languages():
            raise InvalidInputError(
                f"unknown language {language!r}: give an ISO 639-1 code Whisper knows (en, fr, de, es, ...)"
            )
    if prompt is not None and len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidInputError(f"the prompt has {len(prompt):,} characters; at most {MAX_PROMPT_CHARS:,}")
    if not 0.0 <= temperature <= 1.0:
        raise InvalidInputError(f"temperature must be between 0 and 1, got {temperature}")
    samples = audio.samples if isinstance(audio, Audio) else np.asarray(audio, dtype=np.float32)
    model = whisper()
    started = time.perf_counter()  # after loading the model (once per process)
    temperatures = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if temperature == 0 else temperature
    pieces, info = model.transcribe(
        samples,
        language=language,
        task=task,
        beam_size=beam_size,
        temperature=temperatures,
        initial_prompt=prompt or None,
        word_timestamps=word_timestamps,
        vad_filter=vad,
        vad_parameters=VAD if vad else None,
        condition_on_previous_text=False,
        hallucination_silence_threshold=2.0 if word_timestamps else None,
    )
    segments = []
    for s in pieces:
        segment = _segment(len(segments), s)
        if not segment.text or HUM.match(re.sub(r"\W+", "", segment.text)):
            continue
        segments.append(segment)
        if on_segment is not None:
            on_segment(segment)
    return Transcript(
        text=" ".join(s.text for s in segments),
        segments=tuple(segments),
        language=info.language,
        language_probability=float(info.language_probability),
        duration=len(samples) / SAMPLE_RATE,
        speech_seconds=float(info.duration_after_vad),
        task=task,
        seconds=time.perf_counter() - started,
    )


def _segment(index: int, s) -> Segment:
    words = tuple(
        Word(w.word, round(float(w.start), 3), round(float(w.end), 3), round(float(w.probability), 4))
        for w in (s.words or ())
    )
    return Segment(
        id=index,
        start=round(float(s.start), 3),
        end=round(float(s.end), 3),
        text=s.text.strip(),
        words=words,
        avg_logprob=float(s.avg_logprob),
        compression_ratio=float(s.compression_ratio),
        no_speech_prob=float(s.no_speech_prob),
        temperature=float(s.temperature or 0.0),
        tokens=tuple(s.tokens),
    )
