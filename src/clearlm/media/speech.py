"""Text to speech: a neural Piper voice for English (the packaged ``en_US-joe-medium``, a VITS model run by
``piper-tts``; Kim et al. 2021, "Conditional Variational Autoencoder with Adversarial Learning for End-to-End
Text-to-Speech") and espeak-ng's formant voices for the other languages, encoded in memory (``encode``).
OpenAI's voice names (alloy, nova, ...) all speak with the Piper voice."""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from dataclasses import dataclass

import numpy as np

from clearlm.errors import BackendUnavailableError, InvalidInputError
from clearlm.media.encode import encode
from clearlm.media.speech_models import piper_voice

MAX_INPUT_CHARS = 4096  # as OpenAI's /v1/audio/speech
MIN_SPEED, MAX_SPEED = 0.25, 4.0
PIPER_VOICE = "joe"
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse", "marin", "cedar",
)  # fmt: skip
ESPEAK_WPM = 175  # espeak-ng's default rate, words per minute
ESPEAK_TIMEOUT = 120.0  # seconds


@dataclass(frozen=True, slots=True)
class Speech:
    """Synthesised speech: ``samples`` float32[n] mono in [-1, 1] at ``sample_rate`` Hz, the ``voice`` and
    ``engine`` ("piper" or "espeak-ng") that spoke it, and ``seconds`` of wall-clock time taken."""

    samples: np.ndarray
    sample_rate: int
    voice: str
    engine: str
    seconds: float

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return len(self.samples) / self.sample_rate

    @property
    def real_time_factor(self) -> float:
        return self.seconds / self.duration if self.duration else 0.0

    def encoded(self, response_format: str = "wav") -> bytes:
        """The speech as a file in ``response_format`` (see ``clearlm.media.encode``)."""
        return encode(self.samples, self.sample_rate, response_format)


def voices() -> dict[str, str]:
    """Every voice name accepted, with what speaks it: ``joe`` and OpenAI's names (Piper en_US), and each
    espeak-ng language (``fr``, ``de``, ``es``, ``pt-br``, ...; also as ``espeak:fr``)."""
    out = {PIPER_VOICE: "piper en_US-joe-medium", **{v: "piper en_US-joe-medium" for v in OPENAI_VOICES}}
    out.update({lang: f"espeak-ng {lang}" for lang in _espeak_languages()})
    return out


def voice_for_language(language: str | None) -> str:
    """The voice to answer in ``language`` (ISO 639-1): Piper for English (and None), else espeak-ng's voice
    for that language, else Piper."""
    if language in (None, "en"):
        return PIPER_VOICE
    return language if _espeak_voice(language) else PIPER_VOICE


def synthesize(text: str, voice: str = PIPER_VOICE, speed: float = 1.0, variation: float = 1.0) -> Speech:
    """Speak ``text`` with ``voice`` (see :func:`voices`) at ``speed`` (0.25-4, 1 = the voice's own pace).

    ``variation`` (0-1) scales the noise Piper's VITS model samples (Kim et al. 2021; at 1 the voice's
    own noise scales, 0.667 and 0.8 for joe): at 1 the same text is spoken a little differently each time,
    at 0 it gives the same samples every time (flatter prosody; for reproducible audio and tests).
    espeak-ng is always the same.

    Raises:
        InvalidInputError: empty text, more than ``MAX_INPUT_CHARS`` characters, an unknown voice, a speed
            or variation out of range. BackendUnavailableError: espeak-ng is not installed
            (``apt-get install espeak-ng``).
        ModelNotFoundError: the Piper voice's package is missing.
    """
    if not text or not text.strip():
        raise InvalidInputError("input is empty: give the text to speak")
    if len(text) > MAX_INPUT_CHARS:
        raise InvalidInputError(f"input has {len(text):,} characters; at most {MAX_INPUT_CHARS:,}: split it")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidInputError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
    if not 0.0 <= variation <= 1.0:
        raise InvalidInputError(f"variation must be between 0 and 1, got {variation}")
    voice, engine = check_voice(voice)
    started = time.perf_counter()
    if engine == "piper":
        samples, rate = _piper(text, speed, variation)
        return Speech(samples, rate, voice, "piper", time.perf_counter() - started)
    samples, rate = _espeak(text, _espeak_voice(voice.removeprefix("espeak:")), speed)
    return Speech(samples, rate, voice, "espeak-ng", time.perf_counter() - started)


def check_voice(voice: str) -> tuple[str, str]:
    """``(voice, engine)``: the voice name normalised and "piper" or "espeak-ng".

    Raises:
        InvalidInputError: an unknown voice.
    """
    voice = voice.strip().lower()
    if voice == PIPER_VOICE or voice in OPENAI_VOICES:
        return voice, "piper"
    if _espeak_voice(voice.removeprefix("espeak:")) is None:
        raise InvalidInputError(
            f"unknown voice {voice!r}: use joe (English, neural), an OpenAI voice name, or an espeak-ng "
            "language such as fr, de, es, it, pt (GET /v1/audio/voices lists them)"
        )
    return voice, "espeak-ng"


def _piper(text: str, speed: float, variation: float) -> tuple[np.ndarray, int]:
    from piper import SynthesisConfig

    model = piper_voice()
    own = model.config  # the voice's noise scales, from its JSON
    config = SynthesisConfig(
        length_scale=1.0 / speed,
        noise_scale=own.noise_scale * variation,
        noise_w_scale=own.noise_w_scale * variation,
    )
    parts = [chunk.audio_float_array for chunk in model.synthesize(text, syn_config=config)]
    rate = model.config.sample_rate
    if not parts:  # only punctuation: nothing to say
        raise InvalidInputError("input has nothing to pronounce (no words): give the text to speak")
    pause = np.zeros(int(0.15 * rate), np.float32)  # between sentences
    joined = [p for part in parts for p in (part.astype(np.float32), pause)][:-1]
    return np.concatenate(joined), rate


@functools.cache
def _espeak_languages() -> tuple[str, ...]:
    if shutil.which("espeak-ng") is None:
        return ()
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, timeout=30).stdout
    return tuple(line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1)


def _espeak_voice(name: str) -> str | None:
    """espeak-ng's language for ``name``: itself, or the first of its regional forms (fr -> fr-fr)."""
    langs = _espeak_languages()
    if name in langs:
        return name
    return next((lang for lang in langs if lang.startswith(name + "-")), None)


def _espeak(text: str, voice: str, speed: float) -> tuple[np.ndarray, int]:
    """espeak-ng's WAV on stdout (text on stdin: nothing on disk, nothing parsed as options)."""
    if shutil.which("espeak-ng") is None:
        raise BackendUnavailableError("espeak-ng is not installed: apt-get install espeak-ng (Debian/Ubuntu)")
    wpm = int(min(450, max(80, ESPEAK_WPM * speed)))
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "--stdout"],
        input=text.encode("utf-8"),
        capture_output=True,
        timeout=ESPEAK_TIMEOUT,
        check=False,
    )
    wav = done.stdout
    at = wav.find(b"data")
    if done.returncode != 0 or wav[:4] != b"RIFF" or at < 0:
        raise BackendUnavailableError(
            f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()[:200]}"
        )
    rate = int.from_bytes(wav[24:28], "little")
    pcm = np.frombuffer(wav[at + 8 : at + 8 + (len(wav) - at - 8) // 2 * 2], dtype="<i2")
    return pcm.astype(np.float32) / 32768.0, rate
