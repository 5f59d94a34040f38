"""Documents translated with their structure kept: only text is translated, never markup, code or links.

- Markdown (CommonMark's block structure, read line by line): fenced and indented code blocks, front
  matter, HTML lines, rules and table separators are kept as they are; a heading's ``#``, a list's
  marker, a quote's ``>`` and a table's ``|`` cells are kept and the text after them translated. Inside a
  line, inline code, URLs, link and image targets and HTML tags are kept, and the text between them is
  translated run by run (a link's text is a run of its own).
- HTML (BeautifulSoup, html.parser): the text nodes, and the ``alt``, ``title`` and ``placeholder``
  attributes, are translated; nothing inside ``script``, ``style``, ``code``, ``pre``, ``kbd``, ``samp``
  or ``textarea``; tags, attributes and comments are kept.
- SRT and WebVTT subtitles: see :mod:`clearlm.translate.subtitles`.

Every format collects its texts first and translates them together (``translator.translate_segments``),
so a large document is a few batched engine calls with one progress report per batch.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from clearlm.errors import InvalidInputError
from clearlm.translate.translator import SentenceTranslation, translate_segments

FORMATS = ("text", "markdown", "html", "srt", "vtt")
SUFFIXES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".srt": "srt",
    ".vtt": "vtt",
}
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
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
_LETTER = re.compile(r"[^\W\d_]")
SKIP_TAGS = frozenset({"script", "style", "code", "pre", "kbd", "samp", "textarea", "var", "math", "svg"})
ATTRIBUTES = ("alt", "title", "placeholder")


@dataclass(slots=True)
class DocumentTranslation:
    """A translated document: ``text`` (the same format), ``format``, ``sentences``, ``seconds``."""

    text: str
    format: str
    sentences: list[SentenceTranslation]
    seconds: float


def format_of(path: str | Path, given: str | None = None) -> str:
    """The document format: ``given`` (one of FORMATS), else by the file's suffix (text otherwise).

    Raises:
        InvalidInputError: an unknown format name.
    """
    if given is not None:
        if given not in FORMATS:
            raise InvalidInputError(f"unknown document format {given!r}: choose one of {', '.join(FORMATS)}")
        return given
    return SUFFIXES.get(Path(path).suffix.lower(), "text")


def _runs(text: str) -> list[tuple[str, bool]]:
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


def _markdown_parts(text: str) -> list[tuple[str, bool]]:
    """The document as (part, translate?) parts whose concatenation is the document."""
    parts: list[tuple[str, bool]] = []
    fence, front = None, False
    lines = text.split("\n")
    for n, line in enumerate(lines):
        end = "\n" if n < len(lines) - 1 else ""
        opened = _FENCE.match(line)
        if n == 0 and line.strip() == "---":
            front = True
        elif front:
            front = line.strip() not in ("---", "...")
        elif fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
        elif opened:
            fence = opened.group(1)
        elif not (
            line.startswith(("    ", "\t")) and not _PREFIX.match(line.lstrip()).group(1)
        ) and not _KEEP_LINE.match(line):
            prefix = _PREFIX.match(line).group(1)
            parts.append((prefix, False))
            body = line[len(prefix) :]
            for cell in re.split(r"(\|)", body) if "|" in body else [body]:
                parts += _runs(cell) if cell != "|" else [(cell, False)]
            parts.append((end, False))
            continue
        parts.append((line + end, False))
    return parts


def _translate_parts(parts, engine, source, target, glossary, progress):
    wanted = [i for i, (p, t) in enumerate(parts) if t and _LETTER.search(p)]
    cores = [parts[i][0].strip() for i in wanted]
    done, rows = translate_segments(engine, cores, source, target, glossary, progress=progress)
    out = [p for p, _ in parts]
    for i, d in zip(wanted, done, strict=True):
        p = parts[i][0]
        if p.strip()[:1].islower() and d[:1].isupper():
            d = d[0].lower() + d[1:]  # a run inside a sentence ("the `x` page"): engines capitalise its start
        out[i] = p[: len(p) - len(p.lstrip())] + d + p[len(p.rstrip()) :]
    return out, rows


def translate_markdown(engine, text, source, target, glossary=None, progress=None) -> DocumentTranslation:
    """A Markdown document translated, its structure kept (see the module's description)."""
    started = time.perf_counter()
    out, rows = _translate_parts(_markdown_parts(text), engine, source, target, glossary, progress)
    return DocumentTranslation("".join(out), "markdown", rows, time.perf_counter() - started)


def translate_html(engine, text, source, target, glossary=None, progress=None) -> DocumentTranslation:
    """An HTML document (or fragment) translated: text nodes and alt/title/placeholder attributes."""
    from bs4 import BeautifulSoup, NavigableString
    from bs4.element import PreformattedString

    started = time.perf_counter()
    soup = BeautifulSoup(text, "html.parser")
    nodes = [
        s
        for s in soup.find_all(string=True)
        if type(s) is NavigableString
        and not isinstance(s, PreformattedString)
        and not any(p.name in SKIP_TAGS for p in s.parents)
        and _LETTER.search(s)
    ]
    attrs = [
        (tag, a)
        for tag in soup.find_all(True)
        for a in ATTRIBUTES
        if isinstance(tag.get(a), str) and _LETTER.search(tag[a])
    ]
    parts = [(str(s), True) for s in nodes] + [(tag[a], True) for tag, a in attrs]
    out, rows = _translate_parts(parts, engine, source, target, glossary, progress)
    for s, new in zip(nodes, out, strict=False):
        s.replace_with(NavigableString(new))
    for (tag, a), new in zip(attrs, out[len(nodes) :], strict=True):
        tag[a] = new
    return DocumentTranslation(str(soup), "html", rows, time.perf_counter() - started)


def translate_document(
    engine, text, source, target, format="text", glossary=None, progress=None
) -> DocumentTranslation:
    """``text`` in ``format`` (text, markdown, html, srt, vtt) translated with its structure kept.

    Raises:
        InvalidInputError: empty text or an unknown format; SubtitleError (malformed SRT/VTT, with the
        line number); UnsupportedPairError; what the engine raises.
    """
    from clearlm.translate import subtitles
    from clearlm.translate.translator import translate_text

    format_of("", format)
    if not text.strip():
        raise InvalidInputError("the document is empty: there is nothing to translate")
    if format == "markdown":
        return translate_markdown(engine, text, source, target, glossary, progress)
    if format == "html":
        return translate_html(engine, text, source, target, glossary, progress)
    if format in ("srt", "vtt"):
        return subtitles.translate_subtitles(engine, text, source, target, format, glossary, progress)
    done = translate_text(engine, text, source, target, glossary, progress=progress)
    return DocumentTranslation(done.text, "text", done.sentences, done.seconds)
