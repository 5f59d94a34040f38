"""The logic of /v1/kb: create and list knowledge bases, upload documents to them, search them.

Knowledge bases belong to the caller's tenant: another tenant's are not found (404), and two tenants may
each have one of the same name. Uploaded documents are kept under ``ServerConfig.files_dir`` (default
``$CLEARLM_HOME/uploads``), one folder per knowledge base (another tenant than ``default``: under
``.tenants/TENANT/``), so that their passages keep a path that can be opened again; re-uploading a file of
the same name replaces its chunks (or is skipped when its content is unchanged).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from pathlib import Path

import anyio
from fastapi import Request

from clearlm.errors import InvalidInputError
from clearlm.knowledge import KnowledgeBase, Passage, list_knowledge_bases
from clearlm.knowledge.tenants import DEFAULT_TENANT, tenant_folder
from clearlm.paths import clearlm_home
from clearlm.server import protocol as p
from clearlm.server.auth import tenant_of
from clearlm.server.errors import PayloadTooLargeError
from clearlm.server.serving import govern_search, policy_of, record_query
from clearlm.server.state import ServerState


def _record(request: Request, **parameters) -> None:
    request.state.audit_record.parameters = parameters


def open_kb(state: ServerState, name: str, tenant: str = DEFAULT_TENANT) -> KnowledgeBase:
    """``tenant``'s knowledge base ``name``, over the server's one store.

    Raises:
        KnowledgeBaseNotFoundError (404): no such name in that tenant.
    """
    return KnowledgeBase.open(name, store=state.kb_store(tenant), embedder=state.embedder())


def files_dir(state: ServerState, name: str, tenant: str = DEFAULT_TENANT) -> Path:
    """The folder of a knowledge base's uploaded files."""
    root = Path(state.config.files_dir) if state.config.files_dir else clearlm_home() / "uploads"
    return tenant_folder(root, tenant) / name


def _inside(folder: Path, filename: str) -> Path:
    """``folder/filename``, refused unless it is a file directly in ``folder`` (names are checked by the
    protocol already: this guards against any name that slips through)."""
    path = folder / filename
    if filename in ("", ".", "..") or path.resolve().parent != folder.resolve():
        raise InvalidInputError(f"bad file name {filename!r}: use a plain name, no folders")
    return path


def info(state: ServerState, kb: KnowledgeBase, tenant: str = DEFAULT_TENANT) -> dict:
    sources = kb.sources()
    folder = str(files_dir(state, kb.name, tenant)) + "/"
    return {
        "id": kb.name,
        "object": "knowledge_base",
        "chunk_tokens": kb.settings.chunk_tokens,
        "overlap": kb.settings.overlap,
        "embedding_model": kb.settings.embedding_model,
        "chunks": sum(s.chunks for s in sources),
        "files": [
            {
                "filename": s.path.removeprefix(folder),
                "title": s.title,
                "kind": s.kind,
                "chunks": s.chunks,
                "sha256": s.sha256,
                "added_at": s.added_at,
            }
            for s in sources
        ],
    }


def passage_json(passage: Passage, folder: str = "") -> dict:
    """A passage as JSON: its source path relative to the uploads folder when it lies there."""
    out = dataclasses.asdict(passage)
    out["path"] = passage.path.removeprefix(folder)
    out["heading_path"] = list(passage.heading_path)
    return out


async def create(request: Request, body: p.KnowledgeBaseCreate, state: ServerState) -> dict:
    _record(request, name=body.name)
    tenant = tenant_of(request)
    sizes = {
        k: v for k, v in (("chunk_tokens", body.chunk_tokens), ("overlap", body.overlap)) if v is not None
    }

    def work() -> dict:
        with KnowledgeBase.create(
            body.name, store=state.kb_store(tenant), embedder=state.embedder(), **sizes
        ) as kb:
            return info(state, kb, tenant)

    return await anyio.to_thread.run_sync(work)


async def listing(request: Request, state: ServerState) -> dict:
    tenant = tenant_of(request)
    bases = await anyio.to_thread.run_sync(lambda: list_knowledge_bases(store=state.kb_store(tenant)))
    data = [{"id": b.name, "object": "knowledge_base", "files": b.sources, "chunks": b.chunks} for b in bases]
    return {"object": "list", "data": data}


async def retrieve(request: Request, name: str, state: ServerState) -> dict:
    _record(request, name=name)
    tenant = tenant_of(request)

    def work() -> dict:
        with open_kb(state, name, tenant) as kb:
            out = info(state, kb, tenant)
        return _governed_titles(request, state, out)

    return await anyio.to_thread.run_sync(work)


def _governed_titles(request: Request, state: ServerState, out: dict) -> dict:
    """``info``'s file titles (a document's words) through the output policy, as search results are."""
    from clearlm.govern.outputs import govern_text

    policy = policy_of(request, state)
    notes = []
    for i, f in enumerate(out["files"]):
        f["title"], found = govern_text(policy, f["title"], "document", f"files[{i}].title")
        notes += found
    if notes:
        request.state.audit_record.governance = {"policy": policy.name, "returned": notes}
    return out


def _decode(file: p.UploadedFile) -> bytes:
    """The file's bytes.

    Raises:
        InvalidInputError: content that is not valid base64. PayloadTooLargeError (413): more than
            ``MAX_FILE_BYTES`` once decoded.
    """
    if file.encoding == "utf-8":
        data = file.content.encode("utf-8")
    else:
        try:
            data = base64.b64decode(file.content, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(f"{file.filename}: the content is not valid base64") from None
    if len(data) > p.MAX_FILE_BYTES:
        raise PayloadTooLargeError(
            f"{file.filename} is {len(data):,} bytes; a file is at most {p.MAX_FILE_BYTES:,} bytes: split it"
        )
    return data


async def add_files(request: Request, name: str, body: p.KnowledgeBaseFiles, state: ServerState) -> dict:
    """Every file is checked before any is written; each is then written atomically and ingested."""
    _record(request, name=name, files=[f.filename for f in body.files])
    tenant = tenant_of(request)
    contents = {f.filename: _decode(f) for f in body.files}

    def work() -> dict:
        with open_kb(state, name, tenant) as kb:  # 404 before anything is written
            folder = files_dir(state, name, tenant)
            folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for filename, data in contents.items():
                path = _inside(folder, filename)
                tmp = folder / f".{filename}.part"
                tmp.write_bytes(data)
                tmp.replace(path)
                paths.append(path)
            report = kb.add(paths)
        prefix = str(folder) + "/"

        def rel(paths: list[str]) -> list[str]:
            return [x.removeprefix(prefix) for x in paths]

        return {
            "object": "knowledge_base.files",
            "knowledge_base": name,
            "added": rel(report.added),
            "replaced": rel(report.replaced),
            "unchanged": rel(report.unchanged),
            "skipped": [
                {"filename": s.path.removeprefix(prefix), "reason": s.reason} for s in report.skipped
            ],
            "chunks": report.chunks,
        }

    return await anyio.to_thread.run_sync(work)


async def remove_file(request: Request, name: str, filename: str, state: ServerState) -> dict:
    """Remove one file (never a folder: ``.``, ``..`` and names with '/' are refused before anything)."""
    _record(request, name=name, filename=filename)
    tenant = tenant_of(request)

    def work() -> dict:
        with open_kb(state, name, tenant) as kb:
            path = _inside(files_dir(state, name, tenant), filename)
            kb.remove(path)  # SourceNotFoundError (404) if not held
        path.unlink(missing_ok=True)
        return {"object": "knowledge_base.file.deleted", "filename": filename, "deleted": True}

    return await anyio.to_thread.run_sync(work)


async def search(request: Request, name: str, body: p.KnowledgeBaseSearch, state: ServerState) -> dict:
    _record(request, name=name, k=body.k, mode=body.mode, mmr=body.mmr)
    await anyio.to_thread.run_sync(record_query, request, state, body.query)
    tenant = tenant_of(request)

    def work() -> dict:
        folder = files_dir(state, name, tenant)
        prefix = str(folder / body.path_prefix) if body.path_prefix else None
        with open_kb(state, name, tenant) as kb:
            result = kb.search(body.query, k=body.k, mode=body.mode, mmr=body.mmr, path_prefix=prefix)
        query, passages = govern_search(request, state, body.query, result.passages)
        return {
            "object": "knowledge_base.search",
            "knowledge_base": name,
            "query": query,
            "mode": body.mode,
            "data": [passage_json(x, str(folder) + "/") for x in passages],
            "warnings": result.warnings,
        }

    return await anyio.to_thread.run_sync(work)
