"""Documents translated with their structure kept: only text is translated, never markup, code or links.

- Markdown (CommonMark's block structure, read line by line: :mod:`clearlm.translate.markdown`; a
  paragraph whose sentence runs across a line break is joined, translated whole and wrapped again to
  its width): fenced and indented code blocks, front
  matter, HTML lines, rules and table separators are kept as they are; a heading's ``#``, a list's
  marker, a quote's ``>`` and a table's ``|`` cells are kept and the text after them translated. Inside a
  line, the inline markup (emphasis, links, images, inline HTML, code spans, URLs, e-mail addresses)
  becomes placeholder tokens (:mod:`clearlm.translate.inline`), so a sentence with markup is translated
  whole and the markup put back; code, URLs and link targets verbatim. When the engine loses a token the
  text between the markup is translated run by run instead.
- HTML (BeautifulSoup, html.parser): the phrasing content of each block (its text and inline elements:
  ``b``, ``a``, ``em``, ``span``, ...; ``code``, ``img``, ``br`` kept whole) is one masked run, translated
  whole, the elements put back; the ``alt``, ``title`` and ``placeholder`` attributes are translated;
  nothing inside ``script``, ``style``, ``code``, ``pre``, ``kbd``, ``samp`` or ``textarea``; tags,
  attributes and comments are kept.
- SRT and WebVTT subtitles: see :mod:`clearlm.translate.subtitles`.

Every format collects its texts first and translates them together (``translator.translate_segments``),
so a large document is a few batched engine calls with one progress report per batch.
"""

from __future__ import annotations

import re
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from clearlm.errors import InvalidInputError
from clearlm.translate.inline import CLOSE, OPEN, Masked, mask_html, phrasing
from clearlm.translate.markdown import markdown_parts, protected_runs
from clearlm.translate.segment import split_sentences
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


def _translate_parts(parts, engine, source, target, glossary, progress):
    """Each part translated: ``(out, rows)``, ``out[i]`` the part's new text, None for a masked part
    whose tokens the engine lost (the caller's fallback); ``rows[i]`` its sentences (markup shown)."""
    wanted = [
        i
        for i, (p, how) in enumerate(parts)
        if (how.translatable() if isinstance(how, Masked) else how and _LETTER.search(p))
    ]
    cores = [(parts[i][1].text if isinstance(parts[i][1], Masked) else parts[i][0]).strip() for i in wanted]
    done, rows = translate_segments(engine, cores, source, target, glossary, progress=progress)
    out: list[str | None] = [p for p, _ in parts]
    by_part: dict[int, list[SentenceTranslation]] = {}
    at = 0
    for i, core, d in zip(wanted, cores, done, strict=True):
        n = len(split_sentences(core)) if core.strip() else 0
        mine, at = rows[at : at + n], at + n
        p, how = parts[i]
        if isinstance(how, Masked):
            back = how.restore(d)
            if back is not None and how.wrap:
                back = textwrap.fill(back, how.wrap, break_long_words=False, break_on_hyphens=False)
            for r in mine:
                r.source, r.text = how.show(r.source), how.show(r.text)
            p, d = how.text, back
        elif p.strip()[:1].islower() and d[:1].isupper():
            d = d[0].lower() + d[1:]  # a run inside a sentence ("the `x` page"): engines capitalise its start
        by_part[i] = mine
        out[i] = None if d is None else p[: len(p) - len(p.lstrip())] + d + p[len(p.rstrip()) :]
    return out, by_part


def _rows(by_part: dict[int, list[SentenceTranslation]]) -> list[SentenceTranslation]:
    return [r for i in sorted(by_part) for r in by_part[i]]


def translate_markdown(engine, text, source, target, glossary=None, progress=None) -> DocumentTranslation:
    """A Markdown document translated, its structure kept (see the module's description)."""
    started = time.perf_counter()
    parts = markdown_parts(text)
    out, by_part = _translate_parts(parts, engine, source, target, glossary, progress)
    failed = [i for i, d in enumerate(out) if d is None]
    if failed:  # tokens lost: the text between the markup run by run
        runs = [protected_runs(parts[i][0]) for i in failed]
        again, again_rows = _translate_parts(
            [r for rs in runs for r in rs], engine, source, target, glossary, None
        )
        at = 0
        for i, rs in zip(failed, runs, strict=True):
            out[i] = "".join(again[at : at + len(rs)])
            by_part[i] = [r for k in range(at, at + len(rs)) for r in again_rows.get(k, [])]
            at += len(rs)
    return DocumentTranslation("".join(out), "markdown", _rows(by_part), time.perf_counter() - started)


def _html_runs(soup) -> list[list]:
    """The runs of sibling phrasing nodes (text and inline elements) holding words, outside SKIP_TAGS."""
    from bs4 import NavigableString, Tag

    found: list[list] = []

    def words(nodes) -> bool:
        texts = [
            s
            for n in nodes
            for s in (
                [n] if type(n) is NavigableString else n.find_all(string=True) if isinstance(n, Tag) else []
            )
            if type(s) is NavigableString and not any(p.name in SKIP_TAGS for p in s.parents)
        ]
        return any(_LETTER.search(t) for t in texts)

    def visit(tag) -> None:
        run: list = []
        for child in [*tag.children, None]:
            if child is not None and phrasing(child):
                run.append(child)
                continue
            if run and words(run):
                found.append(run)
            run = []
            if isinstance(child, Tag) and child.name not in SKIP_TAGS:
                visit(child)

    visit(soup)
    return found


def translate_html(engine, text, source, target, glossary=None, progress=None) -> DocumentTranslation:
    """An HTML document (or fragment) translated: the alt/title/placeholder attributes first, then each
    block's phrasing content as one masked run (see the module's description)."""
    from bs4 import BeautifulSoup, NavigableString

    started = time.perf_counter()
    soup = BeautifulSoup(text, "html.parser")
    attrs = [
        (tag, a)
        for tag in soup.find_all(True)
        for a in ATTRIBUTES
        if isinstance(tag.get(a), str) and _LETTER.search(tag[a])
    ]
    done, attr_rows = _translate_parts(
        [(tag[a], True) for tag, a in attrs], engine, source, target, glossary, None
    )
    for (tag, a), new in zip(attrs, done, strict=True):
        tag[a] = new  # before the runs: their start tags carry the translated title
    runs = _html_runs(soup)
    parts: list = []
    for run in runs:
        plain = all(type(n) is NavigableString for n in run)
        held = any(OPEN in str(n) or CLOSE in str(n) for n in run)
        parts.append(("".join(str(n) for n in run), True) if plain or held else ("", mask_html(run)))
    out, by_part = _translate_parts(parts, engine, source, target, glossary, progress)
    failed = []
    for k, run in enumerate(runs):
        how = parts[k][1]
        if out[k] is None:
            failed.append(k)
        elif isinstance(how, Masked):
            _replace(run, BeautifulSoup(out[k], "html.parser"))
        elif len(run) == 1:
            run[0].replace_with(NavigableString(out[k]))
        else:  # text with a token's brackets in it: each text node on its own
            failed.append(k)
    if failed:  # tokens lost: each text node of those runs on its own
        nodes = [
            s
            for k in failed
            for n in runs[k]
            for s in ([n] if isinstance(n, NavigableString) else n.find_all(string=True))
            if type(s) is NavigableString and not any(p.name in SKIP_TAGS for p in s.parents)
        ]
        again, again_rows = _translate_parts(
            [(str(s), True) for s in nodes], engine, source, target, glossary, None
        )
        for s, new in zip(nodes, again, strict=True):
            s.replace_with(NavigableString(new))
        for k in failed:
            by_part[k] = []
        by_part[min(failed)] = _rows(again_rows)
    rows = _rows(by_part) + _rows(attr_rows)
    return DocumentTranslation(str(soup), "html", rows, time.perf_counter() - started)


def _replace(run: list, fragment) -> None:
    """Put ``fragment``'s nodes where ``run``'s nodes are."""
    first = run[0]
    for node in list(fragment.contents):
        first.insert_before(node.extract())
    for node in run:
        node.extract()


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
