"""Live transcription: audio fed in chunks as it is recorded, words back while the speaker is still talking.

Each time ``step`` seconds of new audio have arrived, Silero VAD (faster-whisper's) finds the speech in the
buffer; speech followed by a pause of ``pause`` seconds is transcribed once more (beam search) and given as
``final`` events, and cut from the buffer; speech still going on is transcribed greedily and given as one
``partial`` event (replaced by the next). A buffer that grows past ``max_seconds`` without a pause is made
final where it stands. The policy (when given) screens every text before it is returned, through the
pipeline (``clearlm.pipeline.screen_text``, not recorded: the caller records the final transcript). This is
the local-agreement idea of Macháček et al. 2023 ("Turning Whisper into Real-Time Transcription System")
reduced to pauses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from clearlm.media.audio import SAMPLE_RATE
from clearlm.media.transcribe import SEGMENT_VAD, transcribe


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """``kind`` "partial" (the speech still going on, so far) or "final"; ``text``; ``start``/``end``:
    seconds from the start of the stream."""

    kind: str
    text: str
    start: float
    end: float


class LiveTranscriber:
    """Feed float32 16 kHz mono chunks with :meth:`feed`; end with :meth:`finish`. ``language``: ISO 639-1
    or None (detected per utterance); ``policy``: screens each event's text (see the module)."""

    def __init__(
        self,
        language: str | None = None,
        policy=None,
        step: float = 1.0,
        pause: float = 0.6,
        max_seconds: float = 20.0,
    ) -> None:
        self.language, self.policy = language, policy
        self.step, self.pause, self.max_seconds = step, pause, max_seconds
        self._buffer = np.zeros(0, np.float32)
        self._offset = 0  # samples cut from the front of the stream
        self._unseen = 0  # samples fed since the buffer was last looked at
        self.detected: str | None = language  # the language of the last final text
        self.seconds = 0.0  # audio fed, in seconds

    def feed(self, chunk: np.ndarray) -> list[LiveEvent]:
        """Add ``chunk`` (float32[n], 16 kHz mono); returns the events it produced (often none)."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self._buffer = np.concatenate([self._buffer, chunk])
        self._unseen += len(chunk)
        self.seconds += len(chunk) / SAMPLE_RATE
        if self._unseen < self.step * SAMPLE_RATE:
            return []
        self._unseen = 0
        return self._look(final=False)

    def finish(self) -> list[LiveEvent]:
        """The rest of the stream as final events."""
        return self._look(final=True)

    def _look(self, final: bool) -> list[LiveEvent]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        regions = get_speech_timestamps(self._buffer, VadOptions(**SEGMENT_VAD))
        if not regions:
            keep = int(0.5 * SAMPLE_RATE)  # silence: keep only the last half second
            if len(self._buffer) > keep:
                self._offset += len(self._buffer) - keep
                self._buffer = self._buffer[-keep:]
            return []
        events: list[LiveEvent] = []
        quiet_from = len(self._buffer) - int(self.pause * SAMPLE_RATE)
        ended = [r for r in regions if r["end"] <= quiet_from]
        too_long = len(self._buffer) > self.max_seconds * SAMPLE_RATE
        if final or too_long:
            cut = len(self._buffer)
        elif ended:
            cut = min(len(self._buffer), ended[-1]["end"] + int(0.2 * SAMPLE_RATE))
        else:
            cut = 0
        if cut:
            events += self._events("final", self._buffer[:cut], beam_size=5)
            self._offset += cut
            self._buffer = self._buffer[cut:]
        if not final and len(self._buffer) and any(r["end"] > cut for r in regions):
            partial = self._events("partial", self._buffer, beam_size=1)
            if partial:
                text = " ".join(e.text for e in partial)
                events.append(LiveEvent("partial", text, partial[0].start, partial[-1].end))
        return events

    def _events(self, kind: str, samples: np.ndarray, beam_size: int) -> list[LiveEvent]:
        t = transcribe(samples, language=self.language, beam_size=beam_size)
        if kind == "final" and t.segments:
            self.detected = t.language
        at = self._offset / SAMPLE_RATE
        return [
            LiveEvent(kind, self._screen(s.text), round(at + s.start, 3), round(at + s.end, 3))
            for s in t.segments
        ]

    def _screen(self, text: str) -> str:
        if self.policy is None:
            return text
        from clearlm.pipeline import screen_text
        from clearlm.store.audit import AuditRecord

        scratch = AuditRecord(request_id="live", created_at=datetime.now(UTC), endpoint="live")
        return screen_text(text, scratch, None, self.policy).text
