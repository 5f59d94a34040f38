"""Knowledge bases: ingest documents, chunk, embed, index, retrieve (hybrid), and answer with citations."""

from clearlm.knowledge.passage import Passage

__all__ = ["Passage"]
