"""Translating text with an engine: sentences, a glossary's check, quality estimates, progress, and
streaming ("simultaneous") translation a sentence at a time.

- :func:`translate_segments`: the core. Each segment (a line of text, a document's text node, a
  subtitle's text) is split into sentences (``segment.split_sentences``); all sentences go to the engine
  in batches of ``batch`` (``progress(done, total)`` after each, in sentences); the translations are
  joined back per segment with single spaces.
- :func:`translate_text`: plain text, its line structure kept (each line translated on its own).
- :func:`translate_stream`: text arriving in pieces; each sentence translated as soon as it completes,
  with its latency (seconds from its completion to its translation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from clearlm.errors import InvalidInputError
from clearlm.translate.base import Engine, check_pair
from clearlm.translate.glossary import Glossary, GlossaryIssue
from clearlm.translate.quality import FLAG_BELOW, QualityEstimate, estimate_quality
from clearlm.translate.segment import SentenceStream, split_sentences

BATCH = 32  # sentences per engine call (and per progress report) unless the engine sets ``batch_size``
MAX_TEXT_CHARS = 5_000_000
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class QualityCheck:
    """How to estimate quality: ``back_engine`` translates back (target -> source), ``embedder`` embeds
    (``clearlm.models.embeddings.Embedder``), sentences under ``flag_below`` are flagged."""

    back_engine: object
    embedder: object
    flag_below: float = FLAG_BELOW


@dataclass(slots=True)
class SentenceTranslation:
    """One sentence: ``source``, its translation ``text``, the glossary terms it did not keep
    (``missing_terms``), and its ``quality`` estimate (None unless asked for)."""

    source: str
    text: str
    missing_terms: list[GlossaryIssue] = field(default_factory=list)
    quality: QualityEstimate | None = None

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "text": self.text,
            "missing_terms": [m.to_dict() for m in self.missing_terms],
            "quality": self.quality.to_dict() if self.quality else None,
        }


@dataclass(slots=True)
class Translation:
    """A translated text: ``text``, languages, the ``engine``'s name, its ``sentences``, ``seconds``
    (wall clock), and ``request_ids`` (the audit records of the LLM turns, if any)."""

    text: str
    source: str
    target: str
    engine: str
    sentences: list[SentenceTranslation]
    seconds: float
    request_ids: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[int]:
        """Indices of sentences flagged by quality estimation or missing a glossary term."""
        return [
            i
            for i, s in enumerate(self.sentences)
            if s.missing_terms or (s.quality is not None and s.quality.flagged)
        ]


def translate_segments(
    engine: Engine,
    segments: list[str],
    source: str,
    target: str,
    glossary: Glossary | None = None,
    quality: QualityCheck | None = None,
    progress: Progress | None = None,
    batch: int | None = None,
) -> tuple[list[str], list[SentenceTranslation]]:
    """(translated segments, every sentence in order). Empty or blank segments stay as they are.
    ``batch``: sentences per engine call (None: the engine's ``batch_size``, else 32).

    Raises:
        UnsupportedPairError (checked before any work), and what the engine raises.
    """
    pair = check_pair(engine, source, target)
    split = [split_sentences(s) if s.strip() else [] for s in segments]
    sentences = [x for parts in split for x in parts]
    batch = batch or getattr(engine, "batch_size", BATCH)
    out: list[str] = []
    if progress:
        progress(0, len(sentences))
    for i in range(0, len(sentences), batch):
        out += engine.translate(sentences[i : i + batch], pair.source, pair.target)
        if progress:
            progress(len(out), len(sentences))
    rows = [
        SentenceTranslation(s, t, glossary.check(s, t) if glossary else [])
        for s, t in zip(sentences, out, strict=True)
    ]
    if quality is not None and rows:
        estimates = estimate_quality(
            sentences,
            out,
            quality.back_engine,
            pair.source,
            pair.target,
            quality.embedder,
            quality.flag_below,
        )
        for row, est in zip(rows, estimates, strict=True):
            row.quality = est
    done, at = [], 0
    for seg, parts in zip(segments, split, strict=True):
        if not parts:
            done.append(seg)
            continue
        done.append(" ".join(out[at : at + len(parts)]))
        at += len(parts)
    return done, rows


def translate_text(
    engine: Engine,
    text: str,
    source: str,
    target: str,
    glossary: Glossary | None = None,
    quality: QualityCheck | None = None,
    progress: Progress | None = None,
) -> Translation:
    """``text`` translated line by line (line breaks and leading indentation kept).

    Raises:
        InvalidInputError: empty text, or over 5,000,000 characters. UnsupportedPairError.
    """
    if not text or not text.strip():
        raise InvalidInputError("there is no text to translate")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(f"the text has {len(text):,} characters, over {MAX_TEXT_CHARS:,}: split it")
    started = time.perf_counter()
    lines = text.split("\n")
    done, rows = translate_segments(engine, lines, source, target, glossary, quality, progress)
    kept = [
        (line[: len(line) - len(line.lstrip())] + d if line.strip() else line)
        for line, d in zip(lines, done, strict=True)
    ]
    return Translation(
        "\n".join(kept),
        source,
        target,
        engine.name,
        rows,
        time.perf_counter() - started,
        list(getattr(engine, "request_ids", []) or []),
    )


@dataclass(frozen=True, slots=True)
class StreamedSentence:
    """A sentence of a stream: ``index`` (0-based), ``source``, ``text`` (its translation), ``latency``
    (seconds from the moment its last piece arrived to its translation), ``missing_terms``."""

    index: int
    source: str
    text: str
    latency: float
    missing_terms: tuple[GlossaryIssue, ...] = ()

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "source": self.source,
            "text": self.text,
            "latency_s": round(self.latency, 4),
            "missing_terms": [m.to_dict() for m in self.missing_terms],
        }


def translate_stream(
    engine: Engine, pieces: Iterable[str], source: str, target: str, glossary: Glossary | None = None
) -> Iterator[StreamedSentence]:
    """Each sentence of the text that ``pieces`` spell, translated as soon as it is complete
    (``segment.SentenceStream``); the last one when the pieces end.

    Raises:
        UnsupportedPairError: before reading any piece.
    """
    pair = check_pair(engine, source, target)
    stream, index = SentenceStream(), 0

    def done(sentences: list[str]) -> Iterator[StreamedSentence]:
        nonlocal index
        for sentence in sentences:
            at = time.perf_counter()
            text = engine.translate([sentence], pair.source, pair.target)[0]
            missing = tuple(glossary.check(sentence, text)) if glossary else ()
            yield StreamedSentence(index, sentence, text, time.perf_counter() - at, missing)
            index += 1

    for piece in pieces:
        yield from done(stream.feed(piece))
    yield from done(stream.close())
