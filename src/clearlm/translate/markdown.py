"""Markdown read line by line (CommonMark's block structure, the common cases) into parts for
translation: (text, how) pairs whose concatenation is the document, ``how`` False (kept: code, front
matter, HTML lines, rules, markers), True (translated run by run, between protected spans) or a
:class:`~clearlm.translate.inline.Masked` (translated whole, inline markup as tokens). Used by
:mod:`clearlm.translate.documents` and :mod:`clearlm.translate.blocks`."""

from __future__ import annotations

import re

from clearlm.translate.inline import mask_markdown

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


class Fences:
    """Where a Markdown reader is, line by line: in the front matter (``---`` on the first line to ``---``
    or ``...``), in a fenced code block (CommonMark: closed by a fence of the same character at least as
    long), or outside both."""

    def __init__(self) -> None:
        self.fence: str | None = None
        self.front = False

    def verbatim(self, n: int, line: str) -> bool:
        """Read line ``n``; True when it belongs to the front matter or a fence (delimiters included)."""
        opened = FENCE.match(line)
        if n == 0 and line.strip() == "---":
            self.front = True
        elif self.front:
            self.front = line.strip() not in ("---", "...")
        elif self.fence is not None:
            if opened and opened.group(1)[0] == self.fence[0] and len(opened.group(1)) >= len(self.fence):
                self.fence = None
        elif opened:
            self.fence = opened.group(1)
        else:
            return False
        return True

    @property
    def open(self) -> bool:
        """Inside the front matter or a fence after the last line read."""
        return self.front or self.fence is not None


_PREFIX = re.compile(r"^(\s{0,3}(?:>\s?)*\s*(?:#{1,6}\s+|[-*+]\s+(?:\[[ xX]\]\s+)?|\d{1,9}[.)]\s+)?)")
_KEEP_LINE = re.compile(
    r"^\s*(?:<[^>]*>?\s*$|<!--|[-*_](?:\s*[-*_]){2,}\s*$|\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$)"
)
_PROTECT = re.compile(
    r"`+[^`]*`+"  # inline code
    r"|!?\[|\]\([^)\s]*(?:\s+\"[^\"]*\")?\)|\]\[[^\]]*\]"  # link/image brackets and targets
    r"|<[^>\s][^>]*>"  # autolinks and inline HTML
    r"|\b(?:https?://|www\.)\S+[^\s.,;:!?)\]]"  # bare URLs
    r"|\S+@\S+\.\w+"  # e-mail addresses
)
_ENDS = re.compile(r"[.!?:;…][\"')\]*_`]*\s*$")  # a line that ends a sentence
_UNDERLINE = re.compile(r"^\s{0,3}=+\s*$")  # a setext heading's underline (its "---" one is kept)


def protected_runs(text: str) -> list[tuple[str, bool]]:
    """``text`` as (part, translate?) runs: protected spans and the text between them."""
    out, at = [], 0
    for m in _PROTECT.finditer(text):
        if m.start() > at:
            out.append((text[at : m.start()], True))
        out.append((m.group(0), False))
        at = m.end()
    if at < len(text):
        out.append((text[at:], True))
    return out


def _cells(body: str) -> list[tuple[str, object]]:
    """A line's text after its marker as parts: each table cell (or the whole) masked when it has inline
    markup, else run by run (as before masking)."""
    parts: list[tuple[str, object]] = []
    for cell in re.split(r"(\|)", body) if "|" in body else [body]:
        masked = mask_markdown(cell) if cell != "|" else None
        if masked is not None and masked.spans and masked.translatable():
            parts.append((cell, masked))
        else:
            parts += protected_runs(cell) if cell != "|" else [(cell, False)]
    return parts


def _paragraph(lines: list[str]) -> list[tuple[str, object]]:
    """A paragraph's ``lines`` (no marker, no table, no hard break between them): when a sentence runs
    across a line break (a line before the last does not end with ``.!?:;``), one masked part, so the
    sentence is translated whole, its translation wrapped again to the longest line's width (Markdown
    reads a line break inside a paragraph as a space); else line by line, as before."""
    lead = lines[0][: len(lines[0]) - len(lines[0].lstrip())]
    if len(lines) == 1 or all(_ENDS.search(line) for line in lines[:-1]):  # no sentence across a break
        out: list[tuple[str, object]] = []
        for n, line in enumerate(lines):
            own = line[: len(line) - len(line.lstrip())]
            out += [(own, False), *_cells(line[len(own) :]), *([("\n", False)] if n < len(lines) - 1 else [])]
        return out
    masked = mask_markdown(" ".join(line.strip() for line in lines))
    masked.wrap = max(len(line) for line in lines)
    return [(lead, False), ("\n".join(lines)[len(lead) :], masked)]


def markdown_parts(text: str) -> list[tuple[str, object]]:
    """The document as (part, how) parts whose concatenation is the document: ``how`` False (kept),
    True (translated run by run) or a :class:`~clearlm.translate.inline.Masked` (translated whole)."""
    parts: list[tuple[str, object]] = []
    fences, para = Fences(), []
    lines = text.split("\n")

    def flush() -> None:
        if para:
            parts.extend(_paragraph(para))
            parts.append(("\n", False))
            para.clear()

    for n, line in enumerate(lines):
        end = "\n" if n < len(lines) - 1 else ""
        prose = False
        if fences.verbatim(n, line):
            pass
        elif not (
            line.startswith(("    ", "\t")) and not _PREFIX.match(line.lstrip()).group(1)
        ) and not _KEEP_LINE.match(line):
            prefix = _PREFIX.match(line).group(1)
            body = line[len(prefix) :]
            if not prefix.strip() and "|" not in body and body.strip() and not _UNDERLINE.match(line):
                if para and para[-1].endswith(("  ", "\\")):  # a hard line break: not joined
                    flush()
                para.append(line)
                prose = True
            else:
                flush()
                parts.append((prefix, False))
                parts += _cells(body)
                parts.append((end, False))
                continue
        if not prose:
            flush()
            parts.append((line + end, False))
    if para:
        flush()
        parts[-1] = ("", False)  # the document's last line has no line break after it
    return parts
