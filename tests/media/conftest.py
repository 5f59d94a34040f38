"""Real recorded speech for the speech tests: Debian's asterisk-core-sounds-en-wav prompts (8 kHz, read by
Allison Smith; CC-BY-SA-3.0) with their texts from asterisk-core-sounds-en (``make speech-data``)."""

from __future__ import annotations

import gzip
import io
import os
import wave
from pathlib import Path

import numpy as np
import pytest

from clearlm.media.audio import AudioError, UnsupportedCodecError

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def prompt_texts() -> dict[str, str]:
    """Prompt name -> its text (``name: text`` lines of the package's list)."""
    out = {}
    with gzip.open(TEXTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";") and text.strip():
                out[name.strip()] = text.strip()
    return out


@pytest.fixture(scope="session")
def speech_clip():
    """``speech_clip(name)`` -> (wav bytes, reference text) of one recorded prompt."""
    if not SOUNDS.is_dir() or not TEXTS.is_file():
        if os.environ.get("CI"):
            raise RuntimeError("CI needs asterisk-core-sounds-en(-wav): make speech-data")
        pytest.skip("needs asterisk-core-sounds-en-wav and asterisk-core-sounds-en (make speech-data)")
    texts = prompt_texts()
    return lambda name: ((SOUNDS / f"{name}.wav").read_bytes(), texts[name])


def _wav(samples: np.ndarray, rate: int = 16_000, tag: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    data = bytearray(buf.getvalue())
    data[20:22] = tag.to_bytes(2, "little")  # the WAVE format tag: 1 = PCM
    return bytes(data)


@pytest.fixture(scope="session")
def bad_audio(speech_clip) -> dict[str, tuple[bytes, type, str]]:
    """Unusable files: kind -> (bytes, the error decoding raises, words of its message)."""
    import matplotlib.pyplot as plt

    clip, _ = speech_clip("agent-pass")
    png = io.BytesIO()  # a picture: FFmpeg reads it, as a video stream
    plt.imsave(png, np.random.default_rng(0).random((16, 16)), format="png")
    return {
        "empty": (b"", AudioError, "is empty"),
        "text": (b"these are words, not sound\n" * 20, AudioError, "not an audio file"),
        "truncated": (clip[: len(clip) // 3], AudioError, "truncated"),
        "codec": (_wav(np.zeros(16_000, np.float32), tag=0x7777), UnsupportedCodecError, "cannot be decoded"),
        "picture": (png.getvalue(), AudioError, "no audio stream"),
        "header": (clip[:40], AudioError, "without audio data"),
    }
