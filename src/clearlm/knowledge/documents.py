"""Reading files into text with heading structure: plain text, Markdown, HTML and PDF.

Each reader returns a :class:`Document`: the extracted text, its sections (the heading path above each
stretch of text, as character offsets into that text), a title and the SHA-256 of the file's bytes. Chunks
and citations refer to offsets into ``Document.text``, which ``KnowledgeBase.source_text`` returns.

Libraries: markdown-it-py (CommonMark headings, so a ``#`` inside a code block is not a heading),
BeautifulSoup with Python's own HTML parser, pypdf (text and the outline, i.e. bookmarks).
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from clearlm.knowledge.errors import (
    BinaryDocumentError,
    CorruptDocumentError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UnsupportedDocumentError,
)

KINDS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".pdf": "pdf",
}


@dataclass(frozen=True, slots=True)
class Section:
    """A stretch ``text[start:end]`` of a document under one heading path (outermost heading first; empty
    above the first heading). Heading lines themselves lie between sections."""

    heading_path: tuple[str, ...]
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Document:
    """A file's extracted text. ``sections`` are in order, do not overlap and lie within ``text``;
    ``sha256`` is the hex digest of the file's bytes; ``kind`` is one of txt, md, html, pdf."""

    path: str
    kind: str
    title: str
    text: str
    sections: tuple[Section, ...]
    sha256: str


def kind_of(path: str | Path) -> str | None:
    """The document kind read from a file name's extension (txt, md, html, pdf), or None."""
    return KINDS.get(Path(path).suffix.lower())


def read_document(path: str | Path, data: bytes | None = None) -> Document:
    """Read a file (or its bytes, given as ``data``) into a :class:`Document`.

    Raises:
        UnsupportedDocumentError: an extension other than .txt .text .md .markdown .html .htm .xhtml .pdf.
        EmptyDocumentError: no text at all (an empty file; a PDF without a text layer).
        BinaryDocumentError: bytes that are not text in any encoding.
        EncryptedDocumentError: a password-protected PDF.
        CorruptDocumentError: a PDF that does not parse; a file that cannot be read.
    """
    name = str(path)
    kind = kind_of(path)
    if kind is None:
        raise UnsupportedDocumentError(
            name, f"unsupported file type {Path(path).suffix or '(none)'!r}: use one of {', '.join(KINDS)}"
        )
    if data is None:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise CorruptDocumentError(name, f"cannot read the file: {exc.strerror}") from None
    if not data.strip():
        raise EmptyDocumentError(name, "the file is empty: nothing to index")
    digest = hashlib.sha256(data).hexdigest()
    stem = Path(path).stem
    if kind == "pdf":
        title, text, sections = _read_pdf(name, data)
    elif kind == "html":
        title, text, sections = _read_html(name, data)
    else:
        text = _decode(name, data)
        title, sections = _markdown_sections(text) if kind == "md" else ("", (Section((), 0, len(text)),))
    if not text.strip():
        raise EmptyDocumentError(name, "no text could be extracted: nothing to index")
    return Document(name, kind, title or stem, text, sections, digest)


# ---- text and Markdown


def _decode(name: str, data: bytes) -> str:
    """UTF-8 (with or without a BOM), else the likeliest encoding by charset-normalizer; newlines to \\n."""
    if b"\x00" in data[:8192]:
        raise BinaryDocumentError(
            name, "the file is binary, not text: convert it to .txt, .md, .html or .pdf"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
        if best is None:
            raise BinaryDocumentError(
                name, "the file is not text in any known encoding: convert it to UTF-8"
            ) from None
        text = str(best)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _markdown_sections(text: str) -> tuple[str, tuple[Section, ...]]:
    """Headings by markdown-it-py (CommonMark: ATX and setext, none inside code blocks)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    line_starts.append(len(text))
    headings: list[tuple[int, str, int, int]] = []  # level, text, heading start, body start
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1]
            label = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
            first, last = tok.map
            headings.append(
                (
                    int(tok.tag[1]),
                    label.strip() or inline.content.strip(),
                    line_starts[first],
                    line_starts[min(last, len(line_starts) - 1)],
                )
            )
    title = next((h[1] for h in headings if h[0] == 1), "")
    return title, _sections(len(text), headings)


def _sections(length: int, headings: list[tuple[int, str, int, int]]) -> tuple[Section, ...]:
    """Sections from (level, label, heading start, body start), in order: each body runs to the next heading."""
    sections = []
    path: list[tuple[int, str]] = []
    body_start = 0
    for level, label, start, body in headings:
        if start > body_start:
            sections.append(Section(tuple(lbl for _, lbl in path), body_start, start))
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, label))
        body_start = max(body, start)
    if length > body_start:
        sections.append(Section(tuple(lbl for _, lbl in path), body_start, length))
    return tuple(sections)


# ---- HTML

_SKIP = {
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "iframe",
    "nav",
    "head",
    "button",
    "form",
    "select",
}
_SKIP_ROLES = {"navigation", "search", "banner", "contentinfo"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "li", "ul", "ol", "dl", "dt", "dd",
    "table", "thead", "tbody", "tr", "pre", "blockquote", "figure", "figcaption", "address", "hr", "body",
}  # fmt: skip
_HEADINGS = {f"h{i}": i for i in range(1, 7)}


class _HtmlText:
    """Collects blocks of text (whitespace collapsed outside <pre>) and headings with their offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.line: list[str] = []
        self.headings: list[tuple[int, str, int, int]] = []

    def inline(self, s: str, pre: bool) -> None:
        self.line.append(s if pre else re.sub(r"\s+", " ", s))

    def flush(self) -> None:
        block = "".join(self.line)
        self.line = []
        block = block.strip("\n") if "\n" in block.strip(" \t") else block.strip()
        if block.strip():
            self._emit(block)

    def heading(self, level: int, label: str) -> None:
        self.flush()
        if label:
            start = self._emit(label)
            self.headings.append((level, label, start, self.length))

    def _emit(self, block: str) -> int:
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        start = self.length
        self.parts.append(block)
        self.length += len(block)
        return start


def _read_html(name: str, data: bytes) -> tuple[str, str, tuple[Section, ...]]:
    from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, ProcessingInstruction

    if b"\x00" in data[:8192]:
        raise BinaryDocumentError(name, "the file is binary, not HTML: check that it is the right file")
    soup = BeautifulSoup(data, "html.parser")
    out = _HtmlText()
    ignored = (Comment, Doctype, ProcessingInstruction)

    def skipped(tag) -> bool:
        classes = tag.get("class") or []
        return (
            tag.name in _SKIP
            or tag.get("role") in _SKIP_ROLES
            or tag.get("hidden") is not None
            or "headerlink" in classes  # Sphinx's pilcrow links inside headings
        )

    def label_of(tag) -> str:
        parts: list[str] = []

        def collect(node) -> None:
            for c in node.children:
                if isinstance(c, NavigableString):
                    if not isinstance(c, ignored):
                        parts.append(str(c))
                elif not skipped(c):
                    collect(c)

        collect(tag)
        return re.sub(r"\s+", " ", "".join(parts)).strip()

    def walk(node, pre: bool) -> None:
        for child in node.children:
            if isinstance(child, ignored):
                continue
            if isinstance(child, NavigableString):
                out.inline(str(child), pre)
                continue
            if skipped(child):
                continue
            name_ = child.name
            if name_ in _HEADINGS:
                out.heading(_HEADINGS[name_], label_of(child))
            elif name_ == "br":
                out.inline("\n", True)
            elif name_ in ("td", "th"):
                out.inline(" ", pre)
                walk(child, pre)
                out.inline(" ", pre)
            elif name_ in _BLOCKS:
                out.flush()
                walk(child, pre or name_ == "pre")
                out.flush()
            else:
                walk(child, pre)

    walk(soup.body or soup, False)
    out.flush()
    text = "".join(out.parts).replace("\x00", "")
    title_tag = soup.find("title")
    title = re.sub(r"\s+", " ", title_tag.get_text()).strip() if title_tag else ""
    if not title:
        title = next((h[1] for h in out.headings if h[0] == 1), "")
    return title, text, _sections(len(text), out.headings)


# ---- PDF


def _read_pdf(name: str, data: bytes) -> tuple[str, str, tuple[Section, ...]]:
    """Pages' text joined by blank lines; sections from the outline (bookmarks), each starting where its
    title appears on its page (else at the top of the page)."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise EncryptedDocumentError(
                name, "the PDF is password-protected: save an unprotected copy (e.g. `qpdf --decrypt`)"
            )
        pages = [(p.extract_text() or "").replace("\x00", "") for p in reader.pages]
        outline = list(_outline(reader, reader.outline, 1))
        meta = reader.metadata
        title = str(meta.title).strip() if meta is not None and meta.title else ""
    except EncryptedDocumentError:
        raise
    except FileNotDecryptedError:
        raise EncryptedDocumentError(
            name, "the PDF is password-protected: save an unprotected copy (e.g. `qpdf --decrypt`)"
        ) from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise CorruptDocumentError(name, f"the PDF cannot be read ({exc}): check that it opens") from None
    page_starts, text = [], ""
    for i, page in enumerate(pages):
        page = page.replace("\r\n", "\n").strip("\n")
        if i:
            text += "\n\n"
        page_starts.append(len(text))
        text += page
    if not text.strip():
        raise EmptyDocumentError(
            name, "the PDF has no text layer (a scan?): run OCR first, e.g. `ocrmypdf in.pdf out.pdf`"
        )
    page_starts.append(len(text))
    headings = []
    for level, label, page in outline:
        if page is None or not 0 <= page < len(pages):
            continue
        start = page_starts[page]
        found = _find_loose(text, label, start, page_starts[page + 1])
        at, body = found if found else (start, start)
        headings.append((level, label, at, body))
    headings.sort(key=lambda h: h[2])
    return title, text, _sections(len(text), headings)


def _outline(reader, items, level: int):
    for item in items:
        if isinstance(item, list):
            yield from _outline(reader, item, level + 1)
        else:
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # a dangling destination: keep the heading, drop its place
                page = None
            yield level, str(item.title).strip(), page


def _find_loose(text: str, label: str, start: int, end: int) -> tuple[int, int] | None:
    """(start, end) of ``label`` in ``text[start:end]``, matching any run of whitespace for a space."""
    words = label.split()
    if not words:
        return None
    m = re.compile(r"\s+".join(map(re.escape, words)), re.IGNORECASE).search(text, start, end)
    return (m.start(), m.end()) if m else None
