"""SRT (SubRip) and WebVTT subtitles: parsed into cues, each cue's text translated, written back with its
number, identifier, timings and settings unchanged.

A cue's lines are translated together as one text (a line break inside a sentence is not a sentence
end) and the translation is laid out again on as many lines as the cue had (broken at the space nearest
each even share), so a two-line subtitle stays two lines. WebVTT ``NOTE``, ``STYLE`` and ``REGION`` blocks
and the header are kept; a cue's inline tags (``<i>``, ``<b>``, ``<v Name>``) are kept around the text.

Malformed input raises :class:`SubtitleError` naming the line (1-based): a cue without its timing line,
a timing that is not ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` (``.`` in WebVTT), an end before its start, a
WebVTT file without its ``WEBVTT`` header.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from clearlm.errors import InvalidInputError

_SRT_TIME = re.compile(
    r"^(\d{1,2}):(\d{2}):(\d{2}),(\d{3})\s*-->\s*(\d{1,2}):(\d{2}):(\d{2}),(\d{3})(\s.*)?$"
)
_VTT_TIME = re.compile(
    r"^(?:(\d{1,2}):)?(\d{2}):(\d{2})\.(\d{3})\s+-->\s+(?:(\d{1,2}):)?(\d{2}):(\d{2})\.(\d{3})(\s.*)?$"
)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>|\{\\[^}]*\}")


class SubtitleError(InvalidInputError):
    """A subtitle file that cannot be read; the message gives the line number and what is wrong."""

    code = "invalid_subtitles"


@dataclass(slots=True)
class Cue:
    """One subtitle: ``head`` (its lines before the text: number or identifier, timing line),
    ``lines`` (its text lines), ``start``/``end`` (seconds)."""

    head: list[str]
    lines: list[str]
    start: float
    end: float


def _seconds(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _blocks(text: str):
    """(first line number, lines) of each block of non-blank lines."""
    block, first = [], 0
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            if not block:
                first = n
            block.append(line)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def _timing(line: str, n: int, vtt: bool) -> tuple[float, float]:
    m = (_VTT_TIME if vtt else _SRT_TIME).match(line.strip())
    if m is None:
        shape = "HH:MM:SS.mmm --> HH:MM:SS.mmm" if vtt else "HH:MM:SS,mmm --> HH:MM:SS,mmm"
        raise SubtitleError(f"line {n}: {line.strip()[:60]!r} is not a timing line ({shape})")
    g = m.groups()
    start, end = _seconds(*g[0:4]), _seconds(*g[4:8])
    if end < start:
        raise SubtitleError(f"line {n}: the cue ends ({end:.3f} s) before it starts ({start:.3f} s)")
    return start, end


def parse_srt(text: str) -> list[Cue]:
    """The cues of an SRT file. Raises SubtitleError (with the line number) when malformed."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    cues = []
    for first, block in _blocks(text):
        if not block[0].strip().isdigit():
            raise SubtitleError(f"line {first}: expected a cue number, found {block[0].strip()[:60]!r}")
        if len(block) < 2:
            raise SubtitleError(f"line {first + 1}: cue {block[0].strip()} has no timing line")
        start, end = _timing(block[1], first + 1, vtt=False)
        cues.append(Cue(block[:2], block[2:], start, end))
    if not cues:
        raise SubtitleError("line 1: no subtitles found (an SRT cue is a number, a timing line, the text)")
    return cues


def parse_vtt(text: str) -> tuple[list[str], list[Cue | list[str]]]:
    """(header lines, blocks): each block a :class:`Cue` or a kept block (NOTE, STYLE, REGION) as lines.
    Raises SubtitleError (with the line number) when malformed."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    blocks = list(_blocks(text))
    if not blocks or not blocks[0][1][0].startswith("WEBVTT"):
        raise SubtitleError("line 1: a WebVTT file starts with 'WEBVTT'")
    out: list[Cue | list[str]] = []
    for first, block in blocks[1:]:
        if block[0].startswith(("NOTE", "STYLE", "REGION")):
            out.append(block)
            continue
        at = 0 if "-->" in block[0] else 1
        if at >= len(block):
            raise SubtitleError(f"line {first + 1}: cue {block[0].strip()[:40]!r} has no timing line")
        start, end = _timing(block[at], first + at, vtt=True)
        out.append(Cue(block[: at + 1], block[at + 1 :], start, end))
    return blocks[0][1], out


def _layout(text: str, n_lines: int) -> list[str]:
    """``text`` broken into ``n_lines`` lines at the spaces nearest each even share."""
    words = text.split()
    if n_lines <= 1 or len(words) < n_lines:
        return [text]
    lines, rest = [], words
    for k in range(n_lines, 1, -1):
        total = sum(len(w) + 1 for w in rest)
        best = min(
            range(1, len(rest) - k + 2), key=lambda i: abs(sum(len(w) + 1 for w in rest[:i]) - total / k)
        )
        lines.append(" ".join(rest[:best]))
        rest = rest[best:]
    return [*lines, " ".join(rest)]


def _cue_text(cue: Cue) -> tuple[str, str, str]:
    """(opening tags, the cue's text on one line, closing tags)."""
    joined = " ".join(line.strip() for line in cue.lines)
    lead = re.match(r"^(?:(?:</?[a-zA-Z][^>]*>|\{\\[^}]*\})\s*)*", joined).group(0)
    tail = re.search(r"(?:\s*(?:</?[a-zA-Z][^>]*>|\{\\[^}]*\}))*$", joined[len(lead) :]).group(0)
    core = joined[len(lead) : len(joined) - len(tail)]
    return lead, core, tail


def translate_subtitles(engine, text, source, target, format="srt", glossary=None, progress=None):
    """An SRT or WebVTT file translated, its cues, numbers and timings kept.

    Returns a ``documents.DocumentTranslation``. Raises SubtitleError (malformed, with the line
    number), UnsupportedPairError, and what the engine raises.
    """
    from clearlm.translate.documents import DocumentTranslation
    from clearlm.translate.translator import translate_segments

    started = time.perf_counter()
    if format == "srt":
        header, blocks = [], parse_srt(text)
    else:
        header, blocks = parse_vtt(text)
    cues = [b for b in blocks if isinstance(b, Cue)]
    pieces = [_cue_text(c) for c in cues]
    done, rows = translate_segments(
        engine, [_TAG.sub("", p[1]) if _TAG.search(p[1]) else p[1] for p in pieces], source, target, glossary,
        progress=progress,
    )  # fmt: skip
    translated = {id(c): [*p[0:1], d, p[2]] for c, p, d in zip(cues, pieces, done, strict=True)}
    out = ["\n".join(header)] if header else []
    for block in blocks:
        if isinstance(block, Cue):
            lead, body, tail = translated[id(block)]
            lines = _layout(body, len(block.lines)) if body.strip() else [""]
            lines[0] = lead + lines[0]
            lines[-1] = lines[-1] + tail
            out.append("\n".join([*block.head, *lines]))
        else:
            out.append("\n".join(block))
    return DocumentTranslation("\n\n".join(out) + "\n", format, rows, time.perf_counter() - started)
