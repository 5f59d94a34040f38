"""Chunking that follows a document's structure: sections (headings), then paragraphs, then sentences.

A chunk never crosses a heading. Within a section, whole paragraphs are packed into chunks of at most
``chunk_tokens`` tokens (the embedding model's tokenizer, no special tokens); a paragraph too long for one
chunk is split into sentences, and a sentence too long into windows of whole words. Each new chunk starts with
up to ``overlap`` tokens of the previous chunk's last whole paragraphs or sentences (none after a token
window). Every chunk is a span of the document's text: ``chunk.text == document.text[chunk.start:chunk.end]``.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clearlm.errors import InvalidInputError
from clearlm.knowledge.documents import Document

# (start, end) character offsets of each token of a text, special tokens excluded.
TokenOffsets = Callable[[str], Sequence[tuple[int, int]]]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends at . ! or ? (closing quotes and brackets included) followed by white space.
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*\s+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """``text == source_text[start:end]``; ``tokens`` is its length in the embedder's tokens; ``ordinal`` its
    place in the document (0-based)."""

    ordinal: int
    text: str
    start: int
    end: int
    heading_path: tuple[str, ...]
    tokens: int


def tokenizer_offsets(tokenizer) -> TokenOffsets:
    """Token offsets from a Hugging Face fast tokenizer, through a copy of its ``tokenizers`` backend with
    truncation and padding off, so a whole section is tokenized at once (the model's own copy is left as
    it is). A ``tokenizers.Tokenizer`` (e.g. ``Embedder.tokenizer_copy()``) is used as it is."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        backend = tokenizer
    else:
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_truncation()
    backend.no_padding()

    def offsets(text: str) -> list[tuple[int, int]]:
        return [o for o in backend.encode(text, add_special_tokens=False).offsets if o[1] > o[0]]

    return offsets


def chunk_document(
    doc: Document, offsets: TokenOffsets, chunk_tokens: int = 200, overlap: int = 40
) -> list[Chunk]:
    """Split ``doc`` into chunks of at most ``chunk_tokens`` tokens with up to ``overlap`` tokens of overlap.

    Raises:
        InvalidInputError: ``chunk_tokens`` < 16, or ``overlap`` not in [0, chunk_tokens / 2].
    """
    check_sizes(chunk_tokens, overlap)
    chunks: list[Chunk] = []
    for section in doc.sections:
        body = doc.text[section.start : section.end]
        toks = [(s + section.start, e + section.start) for s, e in offsets(body)]
        if not toks:
            continue
        starts = [t[0] for t in toks]
        units = _units(doc.text, section.start, section.end, toks, chunk_tokens)
        for start, end in _pack(units, chunk_tokens, overlap):
            n = bisect.bisect_left(starts, end) - bisect.bisect_left(starts, start)
            chunks.append(Chunk(len(chunks), doc.text[start:end], start, end, section.heading_path, n))
    return chunks


def check_sizes(chunk_tokens: int, overlap: int) -> None:
    """Raises InvalidInputError unless 16 <= chunk_tokens and 0 <= overlap <= chunk_tokens // 2."""
    if chunk_tokens < 16:
        raise InvalidInputError(f"chunk size must be at least 16 tokens, got {chunk_tokens}")
    if not 0 <= overlap <= chunk_tokens // 2:
        raise InvalidInputError(
            f"overlap must be between 0 and half the chunk size ({chunk_tokens // 2} tokens), got {overlap}"
        )


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    tokens: int
    window: bool  # a piece of an over-long sentence: no overlap is carried from it


def _spans(text: str, start: int, end: int, pattern: re.Pattern) -> list[tuple[int, int]]:
    """The pieces of ``text[start:end]`` between matches of ``pattern`` (a sentence's end mark stays with
    it), stripped of surrounding white space; empty pieces dropped."""
    pieces, at = [], start
    for m in pattern.finditer(text, start, end):
        cut = m.start() if pattern is _PARAGRAPH_BREAK else m.end()
        pieces.append((at, cut))
        at = m.end()
    pieces.append((at, end))
    out = []
    for s, e in pieces:
        seg = text[s:e]
        s2 = s + len(seg) - len(seg.lstrip())
        e2 = e - (len(seg) - len(seg.rstrip()))
        if e2 > s2:
            out.append((s2, e2))
    return out


def _units(text: str, start: int, end: int, toks: list[tuple[int, int]], budget: int) -> list[_Unit]:
    """Paragraphs that fit in a chunk; else their sentences; else windows of ``budget`` tokens."""
    starts = [t[0] for t in toks]

    def count(s: int, e: int) -> int:
        return bisect.bisect_left(starts, e) - bisect.bisect_left(starts, s)

    units: list[_Unit] = []
    for ps, pe in _spans(text, start, end, _PARAGRAPH_BREAK):
        n = count(ps, pe)
        if n <= budget:
            if n:
                units.append(_Unit(ps, pe, n, False))
            continue
        for ss, se in _spans(text, ps, pe, _SENTENCE_END):
            n = count(ss, se)
            if n <= budget:
                if n:
                    units.append(_Unit(ss, se, n, False))
                continue
            i, last = bisect.bisect_left(starts, ss), bisect.bisect_left(starts, se)
            while i < last:
                j = min(i + budget, last)
                # cut between words (white space between two tokens), unless one word fills the window
                k = j
                while j < last and k > i + 1 and toks[k][0] == toks[k - 1][1]:
                    k -= 1
                j = k if j == last or toks[k][0] != toks[k - 1][1] else j
                units.append(_Unit(toks[i][0], toks[j - 1][1], j - i, True))
                i = j
    return units


def _pack(units: list[_Unit], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of units into spans of at most ``budget`` tokens, each after the first starting with
    the previous span's last units worth at most ``overlap`` tokens."""
    spans: list[tuple[int, int]] = []
    current: list[_Unit] = []
    size = 0
    for unit in units:
        if current and size + unit.tokens > budget:
            spans.append((current[0].start, current[-1].end))
            carry: list[_Unit] = []
            carried = 0
            for prev in reversed(current):
                if (
                    prev.window
                    or carried + prev.tokens > overlap
                    or carried + prev.tokens + unit.tokens > budget
                ):
                    break
                carry.insert(0, prev)
                carried += prev.tokens
            current, size = carry, carried
        current.append(unit)
        size += unit.tokens
    if current:
        spans.append((current[0].start, current[-1].end))
    return spans
