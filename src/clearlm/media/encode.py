"""Audio out: float32 samples encoded, in memory, as the files OpenAI's speech API returns (WAV, MP3, Opus
in Ogg, FLAC, raw PCM), with FFmpeg's encoders through PyAV (LAME for MP3, libopus at 48 kHz)."""

from __future__ import annotations

import io

import numpy as np

from clearlm.errors import InvalidInputError

SPEECH_FORMATS = ("wav", "mp3", "opus", "flac", "pcm")
MEDIA_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "pcm": "audio/pcm",
}
PCM_RATE = 24_000  # Hz: OpenAI's raw "pcm" is 16-bit little-endian mono at 24 kHz
# format: (container, encoder, sample format, sample rate or None to keep the input's)
_CODECS = {
    "wav": ("wav", "pcm_s16le", "s16", None),
    "mp3": ("mp3", "libmp3lame", "fltp", None),
    "opus": ("ogg", "libopus", "flt", 48_000),
    "flac": ("flac", "flac", "s16", None),
}


def check_speech_format(response_format: str) -> str:
    """``response_format`` if it is one of ``SPEECH_FORMATS``; InvalidInputError otherwise."""
    if response_format not in SPEECH_FORMATS:
        raise InvalidInputError(
            f"response_format must be one of {', '.join(SPEECH_FORMATS)}, got {response_format!r}"
        )
    return response_format


def encode(samples: np.ndarray, sample_rate: int, response_format: str = "wav") -> bytes:
    """``samples`` (float32[n], mono, [-1, 1], ``sample_rate`` Hz) as a ``response_format`` file's bytes.

    Raises:
        InvalidInputError: an unknown format.
    """
    import av

    check_speech_format(response_format)
    x = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if response_format == "pcm":
        return (_resampled(x, sample_rate, PCM_RATE) * 32767).astype("<i2").tobytes()
    container_format, codec, sample_format, rate = _CODECS[response_format]
    if rate is not None and rate != sample_rate:
        x, sample_rate = _resampled(x, sample_rate, rate), rate
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
        frame.sample_rate = sample_rate
        resampler = av.AudioResampler(format=sample_format, layout="mono", rate=sample_rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def _resampled(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``x`` at ``target`` Hz (FFmpeg's resampler)."""
    import av

    if rate == target or x.size == 0:
        return x
    frame = av.AudioFrame.from_ndarray(x[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
    out = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(out) if out else np.zeros(0, np.float32)
