"""The logic of /v1/kb: create and list knowledge bases, upload documents to them, search them.

Uploaded documents are kept under ``ServerConfig.files_dir`` (default ``$CLEARLM_HOME/uploads``), one folder
per knowledge base, so that their passages keep a path that can be opened again; re-uploading a file of the
same name replaces its chunks (or is skipped when its content is unchanged).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from pathlib import Path

import anyio
from fastapi import Request

from clearlm.errors import InvalidInputError
from clearlm.knowledge import KnowledgeBase, Passage, list_knowledge_bases
from clearlm.paths import clearlm_home
from clearlm.server import protocol as p
from clearlm.server.state import ServerState

FILENAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")


def _record(request: Request, **parameters) -> None:
    request.state.audit_record.parameters = parameters


def open_kb(state: ServerState, name: str) -> KnowledgeBase:
    """Raises KnowledgeBaseNotFoundError (404) for an unknown name."""
    return KnowledgeBase.open(name, url=state.config.kb_url, embedder=state.embedder())


def files_dir(state: ServerState, name: str) -> Path:
    root = Path(state.config.files_dir) if state.config.files_dir else clearlm_home() / "uploads"
    return root / name


def info(state: ServerState, kb: KnowledgeBase) -> dict:
    sources = kb.sources()
    folder = str(files_dir(state, kb.name)) + "/"
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
    sizes = {
        k: v for k, v in (("chunk_tokens", body.chunk_tokens), ("overlap", body.overlap)) if v is not None
    }

    def work() -> dict:
        with KnowledgeBase.create(
            body.name, url=state.config.kb_url, embedder=state.embedder(), **sizes
        ) as kb:
            return info(state, kb)

    return await anyio.to_thread.run_sync(work)


async def listing(state: ServerState) -> dict:
    bases = await anyio.to_thread.run_sync(lambda: list_knowledge_bases(state.config.kb_url))
    data = [{"id": b.name, "object": "knowledge_base", "files": b.sources, "chunks": b.chunks} for b in bases]
    return {"object": "list", "data": data}


async def retrieve(request: Request, name: str, state: ServerState) -> dict:
    _record(request, name=name)

    def work() -> dict:
        with open_kb(state, name) as kb:
            return info(state, kb)

    return await anyio.to_thread.run_sync(work)


def _decode(file: p.UploadedFile) -> bytes:
    if not FILENAME.match(file.filename) or ".." in file.filename:
        raise InvalidInputError(
            f"bad file name {file.filename!r}: use a plain name (letters, digits, '.', '_', '-', spaces), "
            "no folders"
        )
    if file.encoding == "utf-8":
        return file.content.encode("utf-8")
    try:
        return base64.b64decode(file.content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{file.filename}: the content is not valid base64") from None


async def add_files(request: Request, name: str, body: p.KnowledgeBaseFiles, state: ServerState) -> dict:
    """Every file is checked before any is written; each is then written atomically and ingested."""
    _record(request, name=name, files=[f.filename for f in body.files])
    contents = {f.filename: _decode(f) for f in body.files}

    def work() -> dict:
        with open_kb(state, name) as kb:  # 404 before anything is written
            folder = files_dir(state, name)
            folder.mkdir(parents=True, exist_ok=True)
            paths = []
            for filename, data in contents.items():
                path, tmp = folder / filename, folder / f".{filename}.part"
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
    _record(request, name=name, filename=filename)

    def work() -> dict:
        with open_kb(state, name) as kb:
            kb.remove(files_dir(state, name) / filename)  # SourceNotFoundError (404) if not held
        (files_dir(state, name) / filename).unlink(missing_ok=True)
        return {"object": "knowledge_base.file.deleted", "filename": filename, "deleted": True}

    return await anyio.to_thread.run_sync(work)


async def search(request: Request, name: str, body: p.KnowledgeBaseSearch, state: ServerState) -> dict:
    _record(request, name=name, k=body.k, mode=body.mode, mmr=body.mmr)
    request.state.audit_record.prompt = body.query

    def work() -> dict:
        folder = files_dir(state, name)
        prefix = str(folder / body.path_prefix) if body.path_prefix else None
        with open_kb(state, name) as kb:
            result = kb.search(body.query, k=body.k, mode=body.mode, mmr=body.mmr, path_prefix=prefix)
        return {
            "object": "knowledge_base.search",
            "knowledge_base": name,
            "query": body.query,
            "mode": body.mode,
            "data": [passage_json(x, str(folder) + "/") for x in result.passages],
            "warnings": result.warnings,
        }

    return await anyio.to_thread.run_sync(work)
