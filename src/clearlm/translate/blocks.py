"""A large document translated block by block, so memory stays bounded by a block, not the document.

:func:`translate_blocks` cuts a Markdown or plain-text document into blocks of about ``block_lines``
lines (at a blank line outside fenced code and front matter, where no Markdown construct this module
translates spans the cut), counts the document's sentences first (one pass of the same segmentation,
block by block, so ``progress(done, total)`` is in sentences of the whole document), then translates
each block (``documents.translate_markdown`` / ``translator.translate_text``) and yields its text as it
is done: the caller writes it out (``clearlm translate --file``) and keeps nothing else. HTML and
subtitles are translated whole (a tree, and files that are small).

Measured (2026-12-02, this shared 2-core machine, load ~10): a 1,000,172-character Markdown document
(19,346 sentences) en -> es with Apertium: see the README section (45 s whole, 427 sentences/s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from clearlm.errors import InvalidInputError
from clearlm.translate.documents import _LETTER, translate_document, translate_markdown
from clearlm.translate.inline import Masked
from clearlm.translate.markdown import Fences, markdown_parts
from clearlm.translate.segment import split_sentences
from clearlm.translate.translator import SentenceTranslation, translate_text

BLOCK_LINES = 2000  # lines per block (about 1,000-3,000 sentences of prose)


@dataclass(slots=True)
class Block:
    """A translated block: ``text`` (the block's translation, to be joined with ``"\\n"``), the
    sentences the caller must report (glossary terms not kept) as ``(number in the document, from 1,
    sentence)``, and ``count`` (its sentences, all)."""

    text: str
    sentences: list[tuple[int, SentenceTranslation]] = field(default_factory=list)
    count: int = 0


def _block(text: str, rows: list[SentenceTranslation], before: int) -> Block:
    return Block(text, [(before + i, s) for i, s in enumerate(rows, 1) if s.missing_terms], len(rows))


def _line_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line, without its ``\\n`` (no list of the lines is built)."""
    at = 0
    while True:
        end = text.find("\n", at)
        if end < 0:
            yield at, len(text)
            return
        yield at, end
        at = end + 1


def blocks(text: str, format: str, block_lines: int = BLOCK_LINES) -> list[tuple[int, int]]:
    """(start, end) offsets of the blocks: each ends before a ``\\n``; joined by ``\\n`` they are the
    text. Markdown is cut only at a blank line outside a fence or the front matter."""
    out, start, lines, fences = [], 0, 0, Fences()
    for n, (a, b) in enumerate(_line_spans(text)):
        line = text[a:b]
        if format == "markdown":
            fences.verbatim(n, line)
        lines += 1
        cut = format != "markdown" or (
            not line.strip() and not fences.open and not text.startswith(("---", "..."), b + 1)
        )  # (a block starting with "---" would read as front matter)
        if lines >= block_lines and cut and b < len(text):
            out.append((start, b))
            start, lines = b + 1, 0
    out.append((start, len(text)))
    return out


def count_sentences(text: str, format: str) -> int:
    """How many sentences the engine will get for ``text`` (a block), as the translation splits it."""
    if format == "markdown":
        cores = [
            (how.text if isinstance(how, Masked) else p).strip()
            for p, how in markdown_parts(text)
            if (how.translatable() if isinstance(how, Masked) else how and _LETTER.search(p))
        ]
    else:
        cores = [line.strip() for line in text.split("\n") if line.strip()]
    return sum(len(split_sentences(c)) for c in cores if c)


def translate_blocks(
    engine,
    text: str,
    source: str,
    target: str,
    format: str = "markdown",
    glossary=None,
    progress: Callable[[int, int], None] | None = None,
    block_lines: int = BLOCK_LINES,
) -> Iterator[Block]:
    """``text`` translated block by block (see the module's description); join the blocks' texts with
    ``"\\n"`` for the document. ``progress(done, total)`` in sentences of the whole document.

    Raises:
        InvalidInputError: an empty document or an unknown format; what ``translate_document`` raises.
    """
    if not text.strip():
        raise InvalidInputError("the document is empty: there is nothing to translate")
    if format not in ("markdown", "text"):
        whole = translate_document(engine, text, source, target, format, glossary, progress)
        yield _block(whole.text, whole.sentences, 0)
        return
    spans = blocks(text, format, block_lines)
    counts = [count_sentences(text[a:b], format) for a, b in spans]
    total, done, numbered = sum(counts), 0, 0
    if progress:
        progress(0, total)
    for (a, b), n in zip(spans, counts, strict=True):
        chunk = text[a:b]

        def step(k: int, _: int, base: int = done, most: int = n) -> None:
            if progress:
                progress(base + min(k, most), total)

        if not chunk.strip():
            yield Block(chunk)
        else:
            if format == "markdown":
                out = translate_markdown(engine, chunk, source, target, glossary, step)
            else:
                out = translate_text(engine, chunk, source, target, glossary, progress=step)
            yield _block(out.text, out.sentences, numbered)
            numbered += len(out.sentences)
        done += n
