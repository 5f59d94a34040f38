"""/v1/audio on a live server with the official ``openai`` client: transcriptions in every response format,
translations, speech in each format heard back, voice chat through a governed turn, streamed transcription,
unusable uploads refused with 400 and their codes, one audit record per request, and no file left in the
server's temporary folder."""

from __future__ import annotations

import base64
import json
import tempfile

import httpx
import openai
import pytest

from clearlm.media.audio import decode
from clearlm.media.transcribe import transcribe
from clearlm.media.wer import normalize_english, wer

pytestmark = pytest.mark.integration


@pytest.fixture
def audio_server(serve, tiny_backend, tmp_path, monkeypatch):
    tmp = tmp_path / "server-tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # where Starlette spools uploads over 1 MB
    server = serve(tiny_backend)
    server.tmp = tmp
    return server


def test_the_openai_client_transcribes_translates_and_speaks(audio_server, speech_clip):
    server = audio_server
    c = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
    data, ref = speech_clip("agent-pass")
    t = c.audio.transcriptions.create(model="whisper-1", file=("agent-pass.wav", data, "audio/wav"))
    assert normalize_english(t.text) == normalize_english(ref)
    text = c.audio.transcriptions.create(model="whisper-1", file=("a.wav", data), response_format="text")
    assert isinstance(text, str) and normalize_english(text) == normalize_english(ref)
    srt = c.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", data), response_format="srt", language="en"
    )
    assert srt.startswith("1\n00:00:00,") and "-->" in srt
    vtt = c.audio.transcriptions.create(model="whisper-1", file=("a.wav", data), response_format="vtt")
    assert vtt.startswith("WEBVTT")
    verbose = c.audio.transcriptions.create(
        model="whisper-1",
        file=("a.wav", data),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.language == "english" and abs(verbose.duration - 3.285) < 0.01
    assert verbose.words[0].word.lower() == "please" and verbose.words[0].start < verbose.words[-1].end
    assert verbose.segments[0].text == t.text and verbose.model_extra["request_id"]
    with pytest.warns(DeprecationWarning):  # the client deprecates the route; OpenAI still serves it
        tr = c.audio.translations.create(model="whisper-1", file=("a.wav", data))
    assert wer([ref], [tr.text]) <= 0.2
    # speech: mp3 and opus, heard back
    said = "Your order has shipped and will arrive on Monday."
    # the same audio every run: one of the voice's sampled renderings was heard as "shipped in. We'll"
    mp3 = c.audio.speech.create(
        model="tts-1", voice="alloy", input=said, response_format="mp3", extra_body={"variation": 0}
    )
    assert mp3.content[:3] == b"ID3"
    assert wer([said], [transcribe(decode(mp3.content)).text]) <= 0.1
    opus = c.audio.speech.create(
        model="tts-1", voice="fr", input="Bonjour à tous.", response_format="opus", speed=1.2
    )
    assert decode(opus.content).codec == "opus"
    voices = httpx.get(server.url + "/audio/voices").json()["data"]
    assert {"id": "joe", "engine": "piper en_US-joe-medium"} in voices and any(
        v["id"] == "de" for v in voices
    )
    # one audit record per request
    records = server.state.audit.records()
    assert len(records) == 9
    heard = [r for r in records if r.endpoint == "/v1/audio/transcriptions"]
    assert len(heard) == 5 and all(r.model == "whisper-base" and r.status_code == 200 for r in heard)
    assert all(normalize_english(r.prompt) == normalize_english(ref) for r in heard)
    spoken = [r for r in records if r.endpoint == "/v1/audio/speech"]
    assert sorted(r.prompt for r in spoken) == sorted([said, "Bonjour à tous."])
    assert sorted(r.parameters["variation"] for r in spoken) == [0.0, 1.0]
    assert list(server.tmp.iterdir()) == []


def test_unusable_uploads_are_refused_with_their_codes(audio_server, speech_clip, bad_audio):
    server = audio_server
    c = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
    clip, _ = speech_clip("agent-pass")
    big = clip + b"\0" * (2 << 20)  # spooled to a temporary file by Starlette (over 1 MB)
    for kind, (data, error, message) in bad_audio.items():
        with pytest.raises(openai.BadRequestError) as e:
            c.audio.transcriptions.create(model="whisper-1", file=(f"{kind}.wav", data))
        body = e.value.body
        assert message in body["message"] and body["code"] == error.code, body
    for bad, match in (
        ({"response_format": "docx"}, "response_format must be one of"),
        ({"language": "xx"}, "unknown language 'xx'"),
    ):
        with pytest.raises(openai.BadRequestError, match=match):
            c.audio.transcriptions.create(model="whisper-1", file=("a.wav", clip), **bad)
    with pytest.raises(openai.NotFoundError, match="unknown transcription model"):
        c.audio.transcriptions.create(model="nope", file=("a.wav", clip))
    for bad in ({"voice": "klingon"}, {"input": ""}, {"speed": 10}, {"response_format": "aiff"}):
        with pytest.raises(openai.BadRequestError):
            c.audio.speech.create(**{"model": "tts-1", "voice": "alloy", "input": "Hi.", **bad})
    # a large upload that is audio is accepted, and its spooled copy is gone afterwards
    r = httpx.post(
        server.url + "/audio/transcriptions",
        files={"file": ("big.wav", big)},
        data={"model": "whisper-1"},
        timeout=300,
    )
    assert r.status_code == 200 and "password" in r.json()["text"].lower()
    records = server.state.audit.records()
    assert sum(r.status_code == 400 for r in records) >= len(bad_audio) + 2 + 4
    assert not any(r.status_code >= 500 for r in records)
    assert list(server.tmp.iterdir()) == []


def test_voice_chat_and_a_streamed_transcription(audio_server, speech_clip):
    server = audio_server
    data, ref = speech_clip("agent-pass")
    r = httpx.post(
        server.url + "/audio/chat",
        files={"file": ("q.wav", data, "audio/wav")},
        data={"max_tokens": "8", "response_format": "wav", "system": "Answer briefly."},
        timeout=300,
    )
    assert r.status_code == 200, r.text
    reply = r.json()
    assert normalize_english(reply["transcript"]) == normalize_english(ref)
    assert reply["question"] == reply["transcript"] and reply["language"] == "en" and reply["voice"] == "joe"
    assert reply["id"].startswith("voice-") and isinstance(reply["answer"], str)
    if reply["answer"].strip(" .,!?"):
        assert decode(base64.b64decode(reply["audio"]["data"])).duration > 0.1
    record = server.state.audit.get(reply["id"])
    assert record.endpoint == "/v1/audio/chat" and record.model == "tiny-random-qwen2"
    assert (
        record.parameters["audio"]["language"] == "en" and record.prompt[-1]["content"] == reply["transcript"]
    )
    assert record.prompt[0] == {"role": "system", "content": "Answer briefly."}
    # silence: 400 no_speech, recorded
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 32000)
    r = httpx.post(server.url + "/audio/chat", files={"file": ("s.wav", buf.getvalue())}, timeout=300)
    assert r.status_code == 400 and r.json()["error"]["code"] == "no_speech"
    # streamed: segment deltas, then the governed whole
    with httpx.stream(
        "POST",
        server.url + "/audio/transcriptions",
        files={"file": ("a.wav", data)},
        data={"model": "whisper-1", "stream": "true"},
        timeout=300,
    ) as s:
        lines = [line for line in s.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    assert [e["type"] for e in events][-1] == "transcript.text.done"
    assert events[0]["type"] == "transcript.text.delta"
    assert normalize_english("".join(e["delta"] for e in events[:-1])) == normalize_english(
        events[-1]["text"]
    )
    assert server.state.audit.get(events[-1]["request_id"]).endpoint == "/v1/audio/transcriptions"
    # live: raw PCM sent in quarter-second chunks as a microphone would, events back as it arrives
    import numpy as np

    pcm = (
        (np.concatenate([decode(data).samples, np.zeros(16000, np.float32)]) * 32767).astype("<i2").tobytes()
    )
    chunks = (pcm[i : i + 8000] for i in range(0, len(pcm), 8000))
    with httpx.stream(
        "POST",
        server.url + "/audio/transcriptions/live",
        content=chunks,
        headers={"Content-Type": "audio/pcm"},
        timeout=300,
    ) as s:
        assert s.status_code == 200
        lines = [line for line in s.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines[:-1]]
    kinds = [e["type"] for e in events]
    assert "transcript.text.final" in kinds and kinds[-1] == "transcript.text.done", kinds
    assert normalize_english(events[-1]["text"]) == normalize_english(ref)
    assert server.state.audit.get(events[-1]["request_id"]).parameters["live"] is True
    r = httpx.post(
        server.url + "/audio/transcriptions/live", content=b"\0\0", headers={"Content-Type": "audio/wav"}
    )
    assert r.status_code == 400 and "audio/pcm" in r.json()["error"]["message"]
