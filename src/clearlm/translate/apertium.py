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

import html
import re
import shutil
import subprocess
import threading

from clearlm.errors import BackendUnavailableError
from clearlm.translate.base import ISO3, Pair, TranslationError, check_pair, one_line
from clearlm.translate.inline import _TOKEN, token

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
        lines = [one_line(s) for s in sentences]
        wrapped = {i: w for i, w in ((i, wrap_tokens(line)) for i, line in enumerate(lines)) if w is not None}
        plain = [line if i not in wrapped else "" for i, line in enumerate(lines)]
        tagged = [w for _, w in sorted(wrapped.items())]
        for mode in self.modes()[pair]:
            plain = self._batches(mode, plain, self._run)
            tagged = self._batches(mode, tagged, self._run_html)
        for (i, w), t in zip(sorted(wrapped.items()), tagged, strict=True):
            back = unwrap_tokens(t, w)
            plain[i] = back if back is not None else self._plain_through(self.modes()[pair], lines[i])
        return plain

    def _batches(self, mode: str, lines: list[str], run) -> list[str]:
        return [t for i in range(0, len(lines), MAX_LINES) for t in run(mode, lines[i : i + MAX_LINES])]

    def _plain_through(self, modes: list[str], line: str) -> str:
        """One line through every mode in plain text (a tagged line whose tags did not come back)."""
        for mode in modes:
            line = self._run(mode, [line])[0]
        return line

    def _run_html(self, mode: str, lines: list[str]) -> list[str]:
        """Lines in Apertium's HTML format, one ``<p>`` each (a block: no reordering across it)."""
        if not lines:
            return []
        text = "".join(f"<p>{line}</p>\n" for line in lines)
        done = self._call([self.program, "-u", "-f", "html", mode], text, mode)
        got = _PARAGRAPH.findall(done)
        if len(got) != len(lines):
            raise TranslationError(f"apertium {mode} gave {len(got)} paragraphs for {len(lines)}")
        return [g.strip() for g in got]

    def _run(self, mode: str, lines: list[str]) -> list[str]:
        if not lines:
            return []
        keep = [i for i, line in enumerate(lines) if line]  # an empty line stays empty
        if not keep:
            return [""] * len(lines)
        text = "\n\n".join(lines[i] for i in keep) + "\n"  # a blank line: no reordering across it
        got = self._call([self.program, "-u", mode], text, mode).strip("\n").split("\n\n")
        if len(got) != len(keep):
            raise TranslationError(f"apertium {mode} gave {len(got)} lines for {len(keep)}")
        out = [""] * len(lines)
        for i, line in zip(keep, got, strict=True):
            out[i] = line.strip()
        return out

    def _call(self, command: list[str], text: str, mode: str) -> str:
        try:
            done = subprocess.run(command, input=text, capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise TranslationError(f"apertium {mode} took over {TIMEOUT} s: send fewer sentences") from None
        if done.returncode != 0:
            raise TranslationError(
                f"apertium {mode} failed (exit {done.returncode}): {done.stderr.strip()[:300]}"
            )
        return done.stdout


# Inline markup: a sentence's placeholder tokens (``translate.inline``) that wrap words are given to
# Apertium as HTML spans in its HTML format, where an inline element is a "word-bound blank" that moves
# with its words when a rule reorders them ("the <span>red</span> button" -> "el botón <span>rojo</span>"),
# where a bare token is a word boundary it does not reorder across ("el ⟦0⟧rojo⟦1⟧ botón").
_PARAGRAPH = re.compile(r"<p>(.*?)</p>", re.S)
_CLOSING_PUNCTUATION = ".,;:!?)]\"'⟧"  # may end a span's words (⟧: a nested span's end)


def wrap_tokens(line: str) -> str | None:
    """``line`` with each pair of tokens that wraps words (an opening token touching the word after it, a
    closing one touching the word before it, properly nested) as ``<span data-k="OPEN,CLOSE">``, its text
    HTML-escaped; None when it has no such pair (or its tokens do not pair up: left to the plain format)."""
    found = list(_TOKEN.finditer(line))
    if not found:
        return None
    stack, pairs = [], {}
    for m in found:
        before = line[m.start() - 1] if m.start() else " "
        after = line[m.end()] if m.end() < len(line) else " "
        if (after.isalnum() or after == "⟦") and not before.isalnum():  # "the ⟦0⟧red": opens a span
            stack.append(m)
        elif (before.isalnum() or before in _CLOSING_PUNCTUATION) and not after.isalnum():  # "red⟦1⟧ b"
            if not stack:
                return None
            pairs[stack.pop().start()] = m
    if stack or not pairs:
        return None
    closing = {c.start(): o for o, c in pairs.items()}
    out, at = [], 0
    for m in found:
        out.append(html.escape(line[at : m.start()], quote=False))
        if m.start() in pairs:
            out.append(f'<span data-k="{m.group(1)},{pairs[m.start()].group(1)}">')
        elif m.start() in closing:
            out.append("</span>")
        else:
            out.append(m.group(0))
        at = m.end()
    out.append(html.escape(line[at:], quote=False))
    return "".join(out)


def unwrap_tokens(translated: str, wrapped: str) -> str | None:
    """Apertium's HTML output of a :func:`wrap_tokens` line with the spans as tokens again, unescaped;
    None when a span came back split, doubled or lost (the caller translates the line in plain text)."""
    keys = re.findall(r'<span data-k="(\d+),(\d+)">', wrapped)
    out, at, stack, seen = [], 0, [], []
    for m in re.finditer(r'<span data-k="(\d+),(\d+)">|</span>', translated):
        out.append(html.unescape(translated[at : m.start()]))
        if m.group(1) is not None:
            stack.append(m.group(2))
            seen.append((m.group(1), m.group(2)))
            out.append(token(int(m.group(1))))
        elif stack:
            out.append(token(int(stack.pop())))
        else:
            return None
        at = m.end()
    out.append(html.unescape(translated[at:]))
    if stack or sorted(seen) != sorted(keys):
        return None
    return "".join(out)
