"""Browsing a knowledge base over /v1/kb: its files, its chunks page by page, one chunk by id.

Read-only, tenant-scoped like the rest of /v1/kb (another tenant's knowledge base is 404). A file is named as
``POST /v1/kb/{name}/files`` named it (its path inside the knowledge base's uploads folder); a source added
from elsewhere (the CLI) keeps its absolute path and ``uploaded: false``. What a document says (chunks'
text, titles, headings) passes the output policy as search results do (``serving.govern_search``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import anyio
from fastapi import Request

from clearlm.errors import ClearlmError
from clearlm.knowledge.errors import SourceNotFoundError
from clearlm.knowledge.index.protocol import SourceRecord, chunk_id
from clearlm.server.auth import tenant_of
from clearlm.server.knowledge import _record, files_dir, open_kb, passage_json
from clearlm.server.serving import policy_of
from clearlm.server.state import ServerState

MAX_FILES_PAGE = 1000  # files per GET /v1/kb/{name}/files
MAX_CHUNKS_PAGE = 100  # chunks per GET /v1/kb/{name}/chunks
CHUNK_ID_PATTERN = r"^[0-9a-f]{20}$"


class ChunkNotFoundError(ClearlmError, LookupError):
    """A chunk id the knowledge base does not hold (a chunk's id changes when its file's content does)."""

    status_code = 404
    error_type = "not_found_error"
    code = "chunk_not_found"


def _governed(request: Request, state: ServerState, passages: list) -> list:
    """Passages through the output policy (text, title, headings), its findings in the audit record."""
    from clearlm.govern.outputs import govern_passages

    policy = policy_of(request, state)
    passages, found = govern_passages(policy, passages, "data")
    if found:
        request.state.audit_record.governance = {"policy": policy.name, "returned": found}
    return passages


def _governed_titles(request: Request, state: ServerState, sources: list[SourceRecord]) -> list:
    from clearlm.govern.outputs import govern_text

    policy = policy_of(request, state)
    out, notes = [], []
    for i, s in enumerate(sources):
        title, found = govern_text(policy, s.title, "document", f"data[{i}].title")
        out.append(dataclasses.replace(s, title=title))
        notes += found
    if notes:
        request.state.audit_record.governance = {"policy": policy.name, "returned": notes}
    return out


def file_json(s: SourceRecord, folder: Path) -> dict:
    """One file: ``{filename, uploaded, title, kind, bytes (None: no longer on disk), chars (of extracted
    text), chunks, sha256, added_at (ISO 8601, UTC)}``."""
    prefix = str(folder) + "/"
    try:
        size = Path(s.path).stat().st_size
    except OSError:
        size = None
    return {
        "filename": s.path.removeprefix(prefix),
        "uploaded": s.path.startswith(prefix),
        "title": s.title,
        "kind": s.kind,
        "bytes": size,
        "chars": s.chars,
        "chunks": s.chunks,
        "sha256": s.sha256,
        "added_at": s.added_at,
    }


def _page(kind: str, name: str, data: list, total: int, offset: int, limit: int) -> dict:
    return {
        "object": kind,
        "knowledge_base": name,
        "data": data,
        "total": total,
        "offset": offset,
        "limit": limit,
        "has_more": offset + len(data) < total,
    }


async def files(request: Request, name: str, offset: int, limit: int, state: ServerState) -> dict:
    """A page of the knowledge base's files, by path: ``{object: "knowledge_base.files.page", data:
    [file_json...], total, offset, limit, has_more}``."""
    _record(request, name=name, offset=offset, limit=limit)
    tenant = tenant_of(request)

    def work() -> dict:
        with open_kb(state, name, tenant) as kb:
            sources = kb.sources()
        folder = files_dir(state, name, tenant)
        shown = _governed_titles(request, state, sources[offset : offset + limit])
        page = [file_json(s, folder) for s in shown]
        return _page("knowledge_base.files.page", name, page, len(sources), offset, limit)

    return await anyio.to_thread.run_sync(work)


async def chunks(
    request: Request, name: str, filename: str | None, offset: int, limit: int, state: ServerState
) -> dict:
    """A page of chunks in reading order (files by path, each file's chunks in order), or of one file's
    (``filename``): ``{object: "knowledge_base.chunks.page", data: [passage + ordinal (0-based, in its
    file)], total, offset, limit, has_more}``. Chunk ids follow from a file's path, hash and ordinal, so a
    page reads only its own rows.

    Raises:
        SourceNotFoundError (404): ``filename`` is not a file of the knowledge base.
    """
    _record(request, name=name, file=filename, offset=offset, limit=limit)
    tenant = tenant_of(request)

    def work() -> dict:
        prefix = str(files_dir(state, name, tenant)) + "/"
        with open_kb(state, name, tenant) as kb:
            sources = kb.sources()
            if filename is not None:
                sources = [s for s in sources if s.path.removeprefix(prefix) == filename]
                if not sources:
                    raise SourceNotFoundError(
                        f"knowledge base {name!r} holds no file {filename!r}: "
                        f"GET /v1/kb/{name}/files lists its files"
                    )
            wanted: list[tuple[str, int]] = []  # (chunk id, ordinal) of the page, in order
            before = 0
            for s in sources:
                lo, hi = max(offset - before, 0), min(offset + limit - before, s.chunks)
                wanted += [(chunk_id(s.path, s.sha256, i), i) for i in range(lo, hi)]
                before += s.chunks
            found = kb.index.passages([cid for cid, _ in wanted])
        wanted = [(c, i) for c, i in wanted if c in found]
        shown = _governed(request, state, [found[c] for c, _ in wanted])
        data = [{**passage_json(x, prefix), "ordinal": i} for x, (_, i) in zip(shown, wanted, strict=True)]
        total = sum(s.chunks for s in sources)
        return _page("knowledge_base.chunks.page", name, data, total, offset, limit)

    return await anyio.to_thread.run_sync(work)


async def chunk(request: Request, name: str, cid: str, state: ServerState) -> dict:
    """One chunk by id: ``{object: "knowledge_base.chunk", chunk_id, text, path, title, heading_path,
    start, end, ...}`` (``start``/``end``: characters of its file's extracted text).

    Raises:
        ChunkNotFoundError (404): no chunk of that id in the knowledge base.
    """
    _record(request, name=name, chunk_id=cid)
    tenant = tenant_of(request)

    def work() -> dict:
        with open_kb(state, name, tenant) as kb:
            found = kb.index.passages([cid])
        if cid not in found:
            raise ChunkNotFoundError(
                f"knowledge base {name!r} holds no chunk {cid!r} (a chunk's id changes when its file "
                f"changes): search again, or browse GET /v1/kb/{name}/chunks"
            )
        prefix = str(files_dir(state, name, tenant)) + "/"
        [shown] = _governed(request, state, [found[cid]])
        return {"object": "knowledge_base.chunk", **passage_json(shown, prefix)}

    return await anyio.to_thread.run_sync(work)
