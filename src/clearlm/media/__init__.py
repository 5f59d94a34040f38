"""Speech, images and video in and out (DESIGN: ``media/`` uses ``models/`` and the pipeline; every text it
produces is governed and audited through ``clearlm.pipeline``).

Speech: ``audio`` (decoding files, bad-input errors), ``speech_models`` (the packaged Whisper base and Piper
voice, verified), ``transcribe`` (speech to text), ``formats`` (json, text, srt, vtt, verbose_json),
``governed`` (transcripts through the input policy and audit), ``live`` (streaming partial results),
``speech`` and ``encode`` (text to speech, wav/mp3/opus/flac/pcm), ``classify`` (speech or not, language,
loudness, clipping per segment), ``voice`` (voice chat: audio in, a governed turn, speech out).
Images and video: ``images*``, ``video*``.
"""

import os

# onnxruntime (the Silero VAD, Piper, the image models) otherwise leaves a telemetry file, $TMPDIR/.ses
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
