"""``POST /v1/kb/{name}/upload``: files sent as multipart/form-data (a browser's upload), answered file by
file.

Unlike ``POST /v1/kb/{name}/files`` (JSON, base64 for binary files; a bad file fails the request), each
file here is checked on its own and either added (its chunk count) or skipped with a reason a person can
act on; the rest of the upload goes ahead. Reasons (``code``): ``bad_name`` (not a plain file name),
``unsupported_type`` (not .txt .md .html .pdf ...), ``empty`` (no bytes, or no text to index),
``too_large`` (over ``MAX_FILE_BYTES``), ``duplicate`` (the same name twice in one upload, or content the
knowledge base already holds, under this name or another), ``unreadable`` (binary, corrupt, encrypted).
A file is written to the uploads folder only once it has been read successfully, so a skipped file never
replaces a good one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import anyio
from fastapi import Request, UploadFile

from clearlm.errors import InvalidInputError
from clearlm.knowledge.documents import KINDS, kind_of, read_document
from clearlm.knowledge.errors import DocumentError, EmptyDocumentError, UnsupportedDocumentError
from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of
from clearlm.server.knowledge import _inside, _record, files_dir, open_kb
from clearlm.server.state import ServerState

_FILENAME = re.compile(p.FILENAME_PATTERN)


@dataclass(slots=True)
class _File:
    filename: str
    data: bytes = b""
    status: str = "skipped"  # added | replaced | skipped
    code: str | None = None
    reason: str | None = None
    chunks: int = 0

    def skip(self, code: str, reason: str) -> None:
        self.code, self.reason = code, reason

    def json(self) -> dict:
        return {
            "filename": self.filename,
            "status": self.status,
            "bytes": len(self.data),
            "chunks": self.chunks,
            "code": self.code,
            "reason": self.reason,
        }


def _read(upload: UploadFile) -> _File:
    """The upload's name and bytes, or a skip for its name, type or size (nothing more is read then)."""
    name = upload.filename or ""
    file = _File(name)
    if not _FILENAME.fullmatch(name):
        file.skip("bad_name", f"rename it: a file's name is {p.FILENAME_RULE}")
    elif kind_of(name) is None:
        suffix = "." + name.rsplit(".", 1)[1] if "." in name else "(none)"
        file.skip("unsupported_type", f"unsupported type {suffix}: use one of {', '.join(KINDS)}")
    else:
        data = upload.file.read(p.MAX_FILE_BYTES + 1)
        if len(data) > p.MAX_FILE_BYTES:
            file.skip("too_large", f"too large: a file is at most {p.MAX_FILE_BYTES:,} bytes; split it")
        elif not data:
            file.skip("empty", "empty: the file has no bytes")
        else:
            file.data = data
    return file


def _code(exc: DocumentError) -> str:
    if isinstance(exc, EmptyDocumentError):
        return "empty"
    if isinstance(exc, UnsupportedDocumentError):
        return "unsupported_type"
    return "unreadable"


async def upload(request: Request, name: str, uploads: list[UploadFile], state: ServerState) -> dict:
    """Add each uploaded file that can be read; skip the others with a reason.

    Returns ``{object: "knowledge_base.upload", knowledge_base, files: [{filename, status (added, replaced
    or skipped), bytes, chunks, code, reason}] in the order sent, added, skipped, chunks}``.

    Raises:
        InvalidInputError (400): no files, or more than ``MAX_UPLOAD_FILES``.
        KnowledgeBaseNotFoundError (404): no such knowledge base (nothing is written).
    """
    _record(request, name=name, files=[u.filename for u in uploads][: p.MAX_UPLOAD_FILES])
    if not uploads:
        raise InvalidInputError("send at least one file (multipart/form-data, field 'files')")
    if len(uploads) > p.MAX_UPLOAD_FILES:
        raise InvalidInputError(
            f"{len(uploads)} files in one upload; at most {p.MAX_UPLOAD_FILES}: send them in parts"
        )
    tenant = tenant_of(request)

    def work() -> dict:
        with open_kb(state, name, tenant) as kb:  # 404 before anything is read or written
            folder = files_dir(state, name, tenant)
            prefix = str(folder) + "/"
            held = {s.sha256: s.path.removeprefix(prefix) for s in kb.sources()}
            seen: set[str] = set()
            results = [_read(u) for u in uploads]
            for file in results:
                if file.code is None:
                    _check(file, held, seen)
                if file.code is None:
                    _ingest(kb, folder, file)
                if file.code is None:
                    held[hashlib.sha256(file.data).hexdigest()] = file.filename
                seen.add(file.filename)
        added = [f for f in results if f.status != "skipped"]
        return {
            "object": "knowledge_base.upload",
            "knowledge_base": name,
            "files": [f.json() for f in results],
            "added": len(added),
            "skipped": len(results) - len(added),
            "chunks": sum(f.chunks for f in added),
        }

    return await anyio.to_thread.run_sync(work)


def _check(file: _File, held: dict[str, str], seen: set[str]) -> None:
    """Skip a duplicate, or a file the readers cannot read (before anything is written)."""
    digest = hashlib.sha256(file.data).hexdigest()
    if file.filename in seen:
        file.skip("duplicate", f"duplicate: this upload holds two files named {file.filename}")
    elif digest in held:
        where = "under this name" if held[digest] == file.filename else f"as {held[digest]}"
        file.skip("duplicate", f"duplicate: the knowledge base already holds this content {where}")
    else:
        try:
            read_document(file.filename, file.data)
        except DocumentError as exc:
            file.skip(_code(exc), exc.reason)


def _ingest(kb, folder, file: _File) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = _inside(folder, file.filename)
    existed = path.exists()
    tmp = folder / f".{file.filename}.part"
    tmp.write_bytes(file.data)
    tmp.replace(path)
    report = kb.add([path])
    if report.skipped:  # read once already: only a file with no text to chunk lands here
        reason = report.skipped[0].reason
        file.skip("empty" if "no text" in reason else "unreadable", reason)
        if not existed:
            path.unlink(missing_ok=True)
    elif report.unchanged:
        file.skip("duplicate", "duplicate: the knowledge base already holds this content under this name")
    else:
        file.status = "replaced" if report.replaced else "added"
        file.chunks = report.chunks
