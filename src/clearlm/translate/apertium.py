"""Apertium (Forcada et al. 2011, "Apertium: a free/open-source platform for rule-based machine
translation"), the rule-based engine Debian packages: ``apt-get install apertium apertium-eng-spa
apertium-es-pt ...`` (``make apertium``). Each pair is a *mode* (``eng-spa``, ``es-pt``); this module runs
the ``apertium`` program on a mode with the sentences separated by blank lines (its plain-text format
keeps them and the punctuation; with single line breaks it reorders words across lines: "Name\nPrice"
came back as "Precio\nde nombre"); ``-u`` drops the ``*`` marks of unknown words.

Pairs without a Debian mode are offered through Spanish (``en`` -> ``pt`` is ``eng-spa`` then ``es-pt``)
when both halves are installed: listed in :meth:`ApertiumEngine.pivots`.
"""

from __future__ import annotations

import shutil
import subprocess
import threading

from clearlm.errors import BackendUnavailableError
from clearlm.translate.base import ISO3, Pair, TranslationError, check_pair, one_line

PIVOT = "es"  # the language most Debian pairs share
TIMEOUT = 600  # seconds for one call of the program (a 1 MB document is a few calls)
MAX_LINES = 2000  # sentences per call


def _mode_pair(mode: str) -> Pair | None:
    """``eng-spa`` -> Pair(en, es); None for variants (``eng-cat_valencia``) and others (``eco-es-fr``)."""
    parts = mode.split("-")
    if len(parts) != 2 or any("_" in p for p in parts):
        return None
    a, b = (ISO3.get(p, p) for p in parts)
    return Pair(a, b) if len(a) <= 3 and len(b) <= 3 and a != b else None


class ApertiumEngine:
    """The ``apertium`` program's installed modes as an :class:`~clearlm.translate.base.Engine`.

    Raises (on use): BackendUnavailableError when the program is not installed (``make apertium``).
    """

    name = "apertium"
    batch_size = 1000  # sentences per call: each call starts the program's pipeline (~0.3 s)

    def __init__(self, program: str = "apertium") -> None:
        self.program = program
        self._modes: dict[Pair, list[str]] | None = None
        self._lock = threading.Lock()

    def available(self) -> bool:
        return shutil.which(self.program) is not None

    def modes(self) -> dict[Pair, list[str]]:
        """{pair: the modes to run in turn}: the installed modes (``apertium -l``), then pivots."""
        with self._lock:
            if self._modes is None:
                self._modes = self._discover()
            return self._modes

    def _discover(self) -> dict[Pair, list[str]]:
        if not self.available():
            return {}
        listed = subprocess.run([self.program, "-l"], capture_output=True, text=True, timeout=30).stdout
        direct: dict[Pair, list[str]] = {}
        for mode in listed.split():
            pair = _mode_pair(mode)
            if pair is not None and pair not in direct:
                direct[pair] = [mode]
        found = dict(direct)
        for first, m1 in direct.items():
            for second, m2 in direct.items():
                via = first.target == PIVOT == second.source and first.source != second.target
                if via and Pair(first.source, second.target) not in found:
                    found[Pair(first.source, second.target)] = [*m1, *m2]
        return found

    def pairs(self) -> list[Pair]:
        return sorted(self.modes())

    def pivots(self) -> list[Pair]:
        """The pairs translated through Spanish (two modes in turn)."""
        return sorted(p for p, m in self.modes().items() if len(m) > 1)

    def translate(self, sentences: list[str], source: str, target: str) -> list[str]:
        """One translation per sentence (a sentence's line breaks become spaces).

        Raises:
            BackendUnavailableError: ``apertium`` is not installed. UnsupportedPairError.
            TranslationError: the program failed or gave another number of lines.
        """
        if not self.available():
            raise BackendUnavailableError(
                "the apertium program is not installed: `make apertium` (or apt-get install apertium "
                "apertium-eng-spa apertium-es-pt)"
            )
        pair = check_pair(self, source, target)
        out = [one_line(s) for s in sentences]
        for mode in self.modes()[pair]:
            out = [t for i in range(0, len(out), MAX_LINES) for t in self._run(mode, out[i : i + MAX_LINES])]
        return out

    def _run(self, mode: str, lines: list[str]) -> list[str]:
        if not lines:
            return []
        keep = [i for i, line in enumerate(lines) if line]  # an empty line stays empty
        text = "\n\n".join(lines[i] for i in keep) + "\n"  # a blank line: no reordering across it
        try:
            done = subprocess.run(
                [self.program, "-u", mode], input=text, capture_output=True, text=True, timeout=TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise TranslationError(f"apertium {mode} took over {TIMEOUT} s: send fewer sentences") from None
        got = done.stdout.strip("\n").split("\n\n")
        if done.returncode != 0 or len(got) != len(keep):
            raise TranslationError(
                f"apertium {mode} failed (exit {done.returncode}, {len(got)} lines for {len(keep)}): "
                f"{done.stderr.strip()[:300]}"
            )
        out = [""] * len(lines)
        for i, line in zip(keep, got, strict=True):
            out[i] = line.strip()
        return out
