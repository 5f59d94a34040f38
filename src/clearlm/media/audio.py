"""Audio in: a file's bytes decoded, in memory (no temporary file), to the float32 mono 16 kHz samples speech
models read, with one clear error for each way a file can be unusable (empty, not audio, truncated, a codec
that cannot be decoded, too long). Decoding is FFmpeg's, through PyAV, as faster-whisper's own
``decode_audio`` does."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np

from clearlm.errors import InvalidInputError

SAMPLE_RATE = 16_000  # Hz: what Whisper and Silero VAD read
MAX_SECONDS = 3 * 3600.0  # the longest audio decoded at once (3 h: 690 MB of float32 samples)
TRUNCATED_BELOW = 0.9  # a file whose decoded audio is shorter than this share of its declared length


class AudioError(InvalidInputError):
    """An audio file that cannot be used: empty, not audio, truncated, an undecodable codec, too long."""

    code = "invalid_audio"


class UnsupportedCodecError(AudioError):
    """Audio in a codec FFmpeg cannot decode."""

    code = "unsupported_audio_codec"


@dataclass(frozen=True, slots=True)
class Audio:
    """Decoded audio: ``samples`` float32[n] mono at ``SAMPLE_RATE`` Hz in [-1, 1] (louder input may pass
    1 slightly after resampling); ``source_rate`` (Hz), ``channels`` and ``codec`` of the file."""

    samples: np.ndarray
    source_rate: int
    channels: int
    codec: str

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.samples) / SAMPLE_RATE


def decode(data: bytes, name: str = "the file", max_seconds: float = MAX_SECONDS) -> Audio:
    """Decode an audio (or video) file's ``data`` to mono 16 kHz float32 samples (PyAV/FFmpeg, resampled
    with FFmpeg's resampler, channels averaged). ``name`` is used in error messages.

    Raises:
        AudioError: empty data, data FFmpeg cannot read as audio, a file with no audio stream, a truncated
            file (a WAV whose data chunk is cut short, or a file decoding to under 90% of its declared
            length), silence of zero length, or audio longer than ``max_seconds``.
        UnsupportedCodecError: an audio stream whose codec FFmpeg cannot decode.
    """
    import av

    if not data:
        raise AudioError(f"{name} is empty (0 bytes): send a recording (WAV, MP3, OGG/Opus, FLAC, WebM, M4A)")
    _check_riff(data, name)
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError:
        raise AudioError(
            f"{name} is not an audio file FFmpeg can read ({len(data):,} bytes): send WAV, MP3, OGG/Opus, "
            "FLAC, WebM or M4A"
        ) from None
    with container:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
            raise AudioError(f"{name} has no audio stream (streams: {kinds}): send a file with sound")
        stream = streams[0]
        codec = stream.codec_context.name if stream.codec_context else "unknown"
        if stream.codec_context is None or codec in ("", "none"):
            raise UnsupportedCodecError(
                f"{name}'s audio codec cannot be decoded here: convert it to WAV (PCM), FLAC, MP3 or Opus"
            )
        declared = _declared_seconds(container, stream)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        parts, total = [], 0
        try:
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    total += out.samples
                if total > max_seconds * SAMPLE_RATE:
                    raise AudioError(
                        f"{name} is longer than {max_seconds / 3600:g} h: split it into shorter files"
                    )
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise UnsupportedCodecError(
                f"{name}'s {codec} audio cannot be decoded ({exc.__class__.__name__}): convert it to WAV, "
                "FLAC, MP3 or Opus"
            ) from None
        channels = stream.codec_context.channels or 1
        rate = stream.codec_context.sample_rate or SAMPLE_RATE
    samples = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)
    if samples.size == 0:
        raise AudioError(f"{name} holds no audio samples (0 s): it is empty or cut off; record it again")
    if declared and samples.size / SAMPLE_RATE < TRUNCATED_BELOW * declared:
        raise AudioError(
            f"{name} is truncated: it declares {declared:.2f} s of audio but holds {samples.size / SAMPLE_RATE:.2f} s; "
            "send the whole file"
        )
    return Audio(samples, int(rate), int(channels), codec)


def _frames(container, stream):
    """The stream's frames, skipping undecodable packets (FFmpeg's InvalidDataError), as faster-whisper does."""
    import av

    frames = container.decode(stream)
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
        frame.pts = None
        yield frame


def _declared_seconds(container, stream) -> float | None:
    """The length the file declares (stream, else container), or None when it declares none."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000
    return None


def _check_riff(data: bytes, name: str) -> None:
    """A WAV file whose ``data`` chunk declares more bytes than follow it was cut short (FFmpeg decodes what
    is there and reports nothing). Raises AudioError for such a file; other files pass."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    at = 12
    while at + 8 <= len(data):
        chunk, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if chunk == b"data":
            held = len(data) - at - 8
            if size not in (0, 0xFFFFFFFF) and held < TRUNCATED_BELOW * size:
                raise AudioError(
                    f"{name} is truncated: its WAV header declares {size:,} bytes of audio but {held:,} follow; "
                    "send the whole file"
                )
            return
        at += 8 + size + (size & 1)
    raise AudioError(
        f"{name} is a WAV file without audio data (no 'data' chunk): it is cut off; send the whole file"
    )
