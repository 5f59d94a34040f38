"""Real recorded speech for the speech tests: Debian's asterisk-core-sounds-en-wav prompts (8 kHz, read by
Allison Smith; CC-BY-SA-3.0) with their texts from asterisk-core-sounds-en (``make speech-data``)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def prompt_texts() -> dict[str, str]:
    """Prompt name -> its text (``name: text`` lines of the package's list)."""
    out = {}
    for line in gzip.open(TEXTS, "rt", encoding="utf-8", errors="replace"):
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
