"""A transcript held to the deployment's policy and recorded in the audit log like any text, through the
pipeline (``clearlm.pipeline.screen_text``): a card number spoken aloud is redacted in the text, in each
segment and in the subtitles, and a blocked transcript is replaced by the policy's refusal."""

from __future__ import annotations

import dataclasses

from clearlm.media.transcribe import Segment, Transcript
from clearlm.pipeline import screen_text
from clearlm.store.audit import AuditLog, AuditRecord


def govern_transcript(
    transcript: Transcript,
    record: AuditRecord,
    audit: AuditLog | None = None,
    policy=None,
    parameters: dict | None = None,
) -> Transcript:
    """``transcript`` as it may be returned: its segments' texts (one per line) screened by the input policy
    as one user text in one audit record (``record``: id, time, endpoint and key set by the caller; the
    record's model, parameters (``parameters`` added) and prompt are filled in here). A segment whose text
    the policy changed loses its word timings (they would spell the original); a blocked transcript
    becomes one segment holding the refusal. Returns the governed transcript, ``request_id`` set.

    Raises:
        PolicyViolationError: blocked under a policy that answers blocks with an error (recorded first).
    """
    record.model = transcript.model
    record.parameters = {
        "task": transcript.task,
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "speech_duration": round(transcript.speech_seconds, 3),
        "segments": len(transcript.segments),
        **(parameters or {}),
    }
    lines = [s.text.replace("\n", " ") for s in transcript.segments]
    screened = screen_text("\n".join(lines), record, audit, policy, language=transcript.language)
    done = dataclasses.replace(transcript, request_id=screened.request_id, governance=screened.governance)
    if not screened.changed:
        return done
    new = screened.text.split("\n")
    if screened.blocked or len(new) != len(lines):
        end = transcript.segments[-1].end if transcript.segments else transcript.duration
        one = Segment(0, 0.0, end, screened.text.replace("\n", " "))
        return dataclasses.replace(done, text=one.text, segments=(one,))
    segments = tuple(
        s if text == s.text else dataclasses.replace(s, text=text, words=(), tokens=())
        for s, text in zip(transcript.segments, new, strict=True)
    )
    return dataclasses.replace(done, text=" ".join(s.text for s in segments), segments=segments)
