"""Errors a user can cause with knowledge bases: a missing or duplicate base, a file that cannot be read."""

from __future__ import annotations

from clearlm.errors import ClearlmError, InvalidInputError


class KnowledgeBaseNotFoundError(ClearlmError, LookupError):
    """A knowledge base name that does not exist (at the given location)."""

    status_code = 404
    error_type = "not_found_error"
    code = "knowledge_base_not_found"


class KnowledgeBaseExistsError(ClearlmError):
    """``create`` of a name that is already taken."""

    status_code = 409
    code = "knowledge_base_exists"


class SourceNotFoundError(ClearlmError, LookupError):
    """A source path that the knowledge base does not hold."""

    status_code = 404
    error_type = "not_found_error"
    code = "source_not_found"


class DocumentError(InvalidInputError):
    """A file that cannot be ingested. ``path`` names it; ``add`` skips it with this message as a warning."""

    code = "unreadable_document"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class EmptyDocumentError(DocumentError):
    """A file with no text: zero bytes, only whitespace, or a PDF with no text layer."""


class BinaryDocumentError(DocumentError):
    """A file that is not text in any encoding (NUL bytes, undecodable)."""


class EncryptedDocumentError(DocumentError):
    """A password-protected PDF."""


class CorruptDocumentError(DocumentError):
    """A file whose format is broken (a PDF that does not parse, say)."""


class UnsupportedDocumentError(DocumentError):
    """A file type that knowledge bases do not read."""
