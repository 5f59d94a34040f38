"""The unit of retrieval: a chunk of a source document, with where it came from and how it scored."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Passage:
    """A chunk of a source document as retrieval returns it.

    ``start`` and ``end`` are character offsets into the source's extracted text (``text ==
    source_text[start:end]``); ``heading_path`` is the chain of headings above the chunk, outermost first;
    ``score`` is the retrieval score of the query that returned it (higher is better; its scale depends on
    the retrieval mode) and ``ranks`` the 1-based rank under each retriever that found it (e.g.
    ``{"vector": 1, "bm25": 4}``)."""

    chunk_id: str
    text: str
    path: str
    title: str
    heading_path: tuple[str, ...]
    start: int
    end: int
    score: float = 0.0
    ranks: dict[str, int] = field(default_factory=dict)

    @property
    def heading(self) -> str:
        """The heading path joined with " > " (empty when the chunk sits above every heading)."""
        return " > ".join(self.heading_path)
