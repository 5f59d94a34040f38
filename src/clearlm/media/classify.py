"""Audio classification per segment: speech or not (Silero VAD, as faster-whisper ships it), the language
spoken (Whisper's language identification on that segment), and a level check: loudness (RMS in dBFS),
peak (dBFS) and clipping (the share of samples at full scale; "clipped" past 0.1%, the level at which
clipping is commonly audible)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clearlm.media.audio import SAMPLE_RATE, Audio
from clearlm.media.speech_models import whisper
from clearlm.media.transcribe import SEGMENT_VAD

FULL_SCALE = 0.999  # |sample| at or above it counts as clipped
CLIPPED_SHARE = 0.001  # more than 0.1% of a segment's samples clipped
MIN_LANGUAGE_SECONDS = 0.5  # shorter speech is not given a language


@dataclass(frozen=True, slots=True)
class AudioSegment:
    """One stretch of the audio: ``start``/``end`` (seconds), ``speech`` (True: voice activity), ``language``
    (ISO 639-1, speech only) and its ``language_probability``, ``loudness_dbfs`` (RMS level, dB relative to
    full scale; -inf for digital silence), ``peak_dbfs``, ``clipping`` (share of samples at full scale,
    0-1) and ``clipped`` (over ``CLIPPED_SHARE``)."""

    start: float
    end: float
    speech: bool
    language: str | None
    language_probability: float | None
    loudness_dbfs: float
    peak_dbfs: float
    clipping: float
    clipped: bool

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__slots__}
        for k in ("loudness_dbfs", "peak_dbfs"):
            out[k] = None if not np.isfinite(out[k]) else round(out[k], 2)
        return out


def _db(x: float) -> float:
    return float(20 * np.log10(x)) if x > 0 else float("-inf")


def classify(audio: Audio | np.ndarray) -> list[AudioSegment]:
    """The segments of ``audio`` (an :class:`Audio` or float32[n] at 16 kHz), speech and non-speech
    alternating, covering it from 0 to its end, each classified (see :class:`AudioSegment`)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    x = audio.samples if isinstance(audio, Audio) else np.asarray(audio, dtype=np.float32)
    regions = get_speech_timestamps(x, VadOptions(**SEGMENT_VAD))
    bounds, at = [], 0
    for r in regions:
        if r["start"] > at:
            bounds.append((at, r["start"], False))
        bounds.append((max(at, r["start"]), r["end"], True))
        at = r["end"]
    if at < len(x):
        bounds.append((at, len(x), False))
    out = []
    for start, end, speech in bounds:
        part = x[start:end]
        if not len(part):
            continue
        language = probability = None
        if speech and len(part) >= MIN_LANGUAGE_SECONDS * SAMPLE_RATE:
            language, probability, _ = whisper().detect_language(audio=part)
            probability = round(float(probability), 4)
        clipping = float(np.mean(np.abs(part) >= FULL_SCALE))
        out.append(
            AudioSegment(
                start=round(start / SAMPLE_RATE, 3),
                end=round(end / SAMPLE_RATE, 3),
                speech=speech,
                language=language,
                language_probability=probability,
                loudness_dbfs=_db(float(np.sqrt(np.mean(part.astype(np.float64) ** 2)))),
                peak_dbfs=_db(float(np.max(np.abs(part)))),
                clipping=round(clipping, 5),
                clipped=clipping > CLIPPED_SHARE,
            )
        )
    return out
