"""Knowledge bases: ingest documents, chunk, embed, index, retrieve (hybrid), and answer with citations."""

from clearlm.knowledge.base import (
    AddReport,
    KnowledgeBase,
    KnowledgeBaseInfo,
    SkippedFile,
    list_knowledge_bases,
)
from clearlm.knowledge.errors import (
    DocumentError,
    KnowledgeBaseExistsError,
    KnowledgeBaseNotFoundError,
    SourceNotFoundError,
)
from clearlm.knowledge.index import SourceRecord
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.retrieval import SearchResult

__all__ = [
    "AddReport",
    "DocumentError",
    "KnowledgeBase",
    "KnowledgeBaseExistsError",
    "KnowledgeBaseInfo",
    "KnowledgeBaseNotFoundError",
    "Passage",
    "SearchResult",
    "SkippedFile",
    "SourceNotFoundError",
    "SourceRecord",
    "list_knowledge_bases",
]
