"""The embedded index: one folder per knowledge base under ``$CLEARLM_HOME/knowledge/NAME/``.

- ``kb.sqlite``: the source of truth. Sources (text, hash), chunks (text, offsets, heading path, float32
  embedding) and an FTS5 table whose ``bm25()`` ranks keyword queries (SQLite's FTS5: BM25 with k1=1.2,
  b=0.75, Porter stemming). WAL mode, so readers never wait for a writer.
- ``vectors.usearch``: an HNSW graph (usearch; Malkov & Yashunin 2018) over the chunks' embeddings, keyed
  by the chunks' row ids, with ``vectors.json`` naming the highest row id it covers. It is rebuilt from the
  database whenever it lags (``flush``, at the end of every write), so a crash cannot leave it wrong for
  long: a search combines it with an exact scan of the rows added after it and drops rows since deleted.
- ``write.lock``: a file lock (filelock) that serialises writers across processes.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from clearlm.errors import ClearlmError
from clearlm.knowledge.chunking import Chunk
from clearlm.knowledge.errors import KnowledgeBaseExistsError
from clearlm.knowledge.index.protocol import Filters, Settings, SourceRecord, body_for_keywords, chunk_id
from clearlm.knowledge.passage import Passage
from clearlm.knowledge.tenants import DEFAULT_TENANT, tenant_folder

DB_FILE = "kb.sqlite"
ANN_FILE = "vectors.usearch"
ANN_META = "vectors.json"
LOCK_FILE = "write.lock"
LOCK_TIMEOUT_S = 600.0
EXACT_FILTER_LIMIT = 10_000  # a filter that keeps at most this many chunks is searched exactly
# HNSW parameters: 16 links per node, 128 candidates while building, at least 64 while searching.
HNSW = {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    path TEXT PRIMARY KEY, kind TEXT NOT NULL, title TEXT NOT NULL, sha256 TEXT NOT NULL,
    chars INTEGER NOT NULL, chunks INTEGER NOT NULL, added_at TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL UNIQUE, path TEXT NOT NULL,
    ordinal INTEGER NOT NULL, start_char INTEGER NOT NULL, end_char INTEGER NOT NULL,
    heading TEXT NOT NULL, text TEXT NOT NULL, embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_path ON chunks (path);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5 (body, tokenize = 'porter unicode61 remove_diacritics 2');
"""


class EmbeddedStore:
    """Knowledge bases as folders under ``root`` (default ``$CLEARLM_HOME/knowledge``); another tenant's
    than the default one's under ``root/.tenants/TENANT`` (see :mod:`clearlm.knowledge.tenants`).

    Raises:
        InvalidInputError: a tenant name that cannot name a folder.
    """

    def __init__(self, root: str | Path | None = None, tenant: str = DEFAULT_TENANT) -> None:
        if root is None:
            from clearlm.paths import clearlm_home

            root = clearlm_home() / "knowledge"
        self.base = Path(root)
        self.tenant = tenant
        self.root = tenant_folder(self.base, tenant)
        self.location = str(self.root)

    def for_tenant(self, tenant: str) -> EmbeddedStore:
        """The same folder, as ``tenant`` sees it."""
        return EmbeddedStore(self.base, tenant)

    def close(self) -> None:
        """Nothing to do: each knowledge base holds its own files."""

    def create(self, name: str, settings: Settings) -> EmbeddedIndex:
        folder = self.root / name
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
        except FileExistsError:
            if (folder / DB_FILE).exists():
                raise KnowledgeBaseExistsError(
                    f"a knowledge base named {name!r} already exists in {self.root}: "
                    "add files to it, or choose another name"
                ) from None
        with FileLock(str(folder / LOCK_FILE), timeout=LOCK_TIMEOUT_S):
            conn = _connect(folder / DB_FILE)
            try:
                conn.executescript(SCHEMA)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)", (settings.to_json(),))
            finally:
                conn.close()
        return EmbeddedIndex(name, folder)

    def open(self, name: str) -> EmbeddedIndex | None:
        folder = self.root / name
        if not (folder / DB_FILE).is_file():
            return None
        return EmbeddedIndex(name, folder)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{DB_FILE}"))


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 60000")
    return conn


def _filter_sql(filters: Filters, alias: str = "c") -> tuple[str, list]:
    sql, params = [], []
    if filters.source is not None:
        sql.append(f"{alias}.path = ?")
        params.append(filters.source)
    if filters.path_prefix:
        # a range on the path index: every string that starts with the prefix sorts in [prefix, upper)
        prefix = filters.path_prefix
        sql.append(f"{alias}.path >= ? AND {alias}.path < ?")
        params += [prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)]
    return (" AND ".join(sql) or "1"), params


# The Snowball English stop words, as PostgreSQL's english configuration drops them (its english.stop), so
# both backends match the same words. Without them a query's "the" matches nearly every chunk, and FTS5
# scores every match: at 100k chunks that made a BM25 query 2-3x slower.
_STOP = (
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers "
    "herself it its itself they them their theirs themselves what which who whom this that these those am is "
    "are was were be been being have has had having do does did doing a an the and but if or because as until "
    "while of at by for with about against between into through during before after above below to from up "
    "down in out on off over under again further then once here there when where why how all any both each "
    "few more most other some such no nor not only own same so than too very s t can will just don should "
    "now"
)
STOP_WORDS = frozenset(_STOP.split())


def fts_query(query: str) -> str | None:
    """An FTS5 query that ORs the query's words, stop words left out, each quoted so that no word acts as an
    operator. None when no word is left (as PostgreSQL, BM25 then finds nothing)."""
    words = dict.fromkeys(w.lower() for w in re.findall(r"\w+", query))
    return " OR ".join(f'"{w}"' for w in words if w not in STOP_WORDS) or None


class EmbeddedIndex:
    """One embedded knowledge base (see the module docstring for its files)."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = folder
        self.location = str(folder)
        self._conn = _connect(folder / DB_FILE)
        self._mutex = threading.RLock()
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
        self.settings = Settings.from_json(row[0])
        self._lock = FileLock(str(folder / LOCK_FILE), timeout=LOCK_TIMEOUT_S)
        self._ann = None
        self._ann_stamp: tuple | None = None
        self._ann_max = 0

    # ---- reads

    def _rows(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with self._mutex:
            return self._conn.execute(sql, params).fetchall()

    def sources(self) -> list[SourceRecord]:
        rows = self._rows(
            "SELECT path, kind, title, sha256, chars, chunks, added_at FROM sources ORDER BY path"
        )
        return [SourceRecord(*r) for r in rows]

    def source(self, path: str) -> SourceRecord | None:
        rows = self._rows(
            "SELECT path, kind, title, sha256, chars, chunks, added_at FROM sources WHERE path = ?", (path,)
        )
        return SourceRecord(*rows[0]) if rows else None

    def source_text(self, path: str) -> str | None:
        rows = self._rows("SELECT text FROM sources WHERE path = ?", (path,))
        return rows[0][0] if rows else None

    def counts(self) -> tuple[int, int]:
        (n_sources,), (n_chunks,) = self._rows(
            "SELECT count(*) FROM sources UNION ALL SELECT count(*) FROM chunks"
        )
        return n_sources, n_chunks

    def passages(self, chunk_ids: Sequence[str]) -> dict[str, Passage]:
        out: dict[str, Passage] = {}
        for part in _batches(list(chunk_ids)):
            rows = self._rows(
                "SELECT c.chunk_id, c.text, c.path, s.title, c.heading, c.start_char, c.end_char "
                "FROM chunks c JOIN sources s ON s.path = c.path "
                f"WHERE c.chunk_id IN ({','.join('?' * len(part))})",
                part,
            )
            for cid, text, path, title, heading, start, end in rows:
                out[cid] = Passage(cid, text, path, title, tuple(json.loads(heading)), start, end)
        return out

    def vectors(self, chunk_ids: Sequence[str]) -> np.ndarray:
        found: dict[str, np.ndarray] = {}
        for part in _batches(list(chunk_ids)):
            rows = self._rows(
                f"SELECT chunk_id, embedding FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))})",
                part,
            )
            found.update((cid, np.frombuffer(blob, dtype=np.float32)) for cid, blob in rows)
        if not chunk_ids:
            return np.zeros((0, self.settings.dimensions), dtype=np.float32)
        return np.stack([found[c] for c in chunk_ids])

    def keyword_search(self, query: str, k: int, filters: Filters) -> list[tuple[str, float]]:
        match = fts_query(query)
        if match is None:
            return []
        if not filters.active:  # rank inside FTS5 first, then look up the few rows kept (2x faster)
            rows = self._rows(
                "SELECT c.chunk_id, t.score FROM (SELECT rowid AS id, -bm25(chunks_fts) AS score "
                "FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score DESC, rowid LIMIT ?) t "
                "JOIN chunks c ON c.id = t.id ORDER BY t.score DESC, t.id",
                [match, k],
            )
        else:
            where, params = _filter_sql(filters)
            rows = self._rows(
                "SELECT c.chunk_id, -bm25(chunks_fts) AS score FROM chunks_fts "
                "JOIN chunks c ON c.id = chunks_fts.rowid "
                f"WHERE chunks_fts MATCH ? AND {where} ORDER BY score DESC, c.id LIMIT ?",
                [match, *params, k],
            )
        return [(cid, float(score)) for cid, score in rows]

    def vector_search(self, vector: np.ndarray, k: int, filters: Filters) -> list[tuple[str, float]]:
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        where, params = _filter_sql(filters)
        if filters.active:
            (n,) = self._rows(f"SELECT count(*) FROM chunks c WHERE {where}", params)[0]
            if n <= EXACT_FILTER_LIMIT:
                return self._exact(q, k, where, params)
        ann, covered = self._ann_view()
        best: dict[int, float] = {}
        if ann is not None and len(ann):
            fetch = min(len(ann), k * (8 if filters.active else 2) + 8)
            while True:
                m = ann.search(q, fetch)
                ids = [int(i) for i in m.keys]
                live = self._live(ids, where, params)
                for key, dist in zip(ids, m.distances, strict=True):
                    if key in live:
                        best[key] = 1.0 - float(dist)
                if len(best) >= k or fetch >= len(ann):
                    break
                fetch = min(len(ann), fetch * 4)
        # rows written after the approximate index was last saved: scanned exactly
        for key, score in self._exact_ids(q, k, f"c.id > ? AND {where}", [covered, *params]):
            best[key] = max(score, best.get(key, -2.0))
        top = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        names = dict(
            self._rows(
                f"SELECT id, chunk_id FROM chunks WHERE id IN ({','.join('?' * len(top))})",
                [key for key, _ in top],
            )
        )
        return [(names[key], score) for key, score in top if key in names]

    def _live(self, ids: list[int], where: str, params: list) -> set[int]:
        live: set[int] = set()
        for part in _batches(ids):
            rows = self._rows(
                f"SELECT c.id FROM chunks c WHERE c.id IN ({','.join('?' * len(part))}) AND {where}",
                [*part, *params],
            )
            live.update(r[0] for r in rows)
        return live

    def _exact_ids(self, q: np.ndarray, k: int, where: str, params: list) -> list[tuple[int, float]]:
        rows = self._rows(f"SELECT c.id, c.embedding FROM chunks c WHERE {where}", params)
        if not rows:
            return []
        mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = mat @ q
        order = np.argsort(-scores, kind="stable")[:k]
        return [(rows[i][0], float(scores[i])) for i in order]

    def _exact(self, q: np.ndarray, k: int, where: str, params: list) -> list[tuple[str, float]]:
        hits = self._exact_ids(q, k, where, params)
        if not hits:
            return []
        names = dict(
            self._rows(
                f"SELECT id, chunk_id FROM chunks WHERE id IN ({','.join('?' * len(hits))})",
                [key for key, _ in hits],
            )
        )
        return [(names[key], score) for key, score in hits]

    def _ann_view(self):
        """The saved HNSW graph, memory-mapped (reloaded when a writer replaced it), and the highest row id
        it covers. (None, 0) before the first save."""
        from usearch.index import Index as Usearch

        path = self.folder / ANN_FILE
        with self._mutex:
            try:
                covered = json.loads((self.folder / ANN_META).read_text())["max_id"]
                st = path.stat()
            except (OSError, ValueError, KeyError):
                return None, 0
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp != self._ann_stamp:
                self._ann = Usearch.restore(str(path), view=True)
                if self._ann is not None:
                    self._ann.expansion_search = HNSW["expansion_search"]
                self._ann_stamp = stamp
                self._ann_max = covered
            else:
                # The writer renames the graph before it rewrites vectors.json, so a value read before a
                # stat that finds the same graph never exceeds what that graph covers.
                self._ann_max = max(self._ann_max, covered)
            return self._ann, self._ann_max

    # ---- writes

    @contextmanager
    def write_lock(self) -> Iterator[None]:
        try:
            with self._lock:
                yield
        except Timeout:
            raise ClearlmError(
                f"knowledge base {self.name!r} has been locked by another writer for {LOCK_TIMEOUT_S:.0f} s: "
                f"try again when it finishes (lock file {self.folder / LOCK_FILE})"
            ) from None

    def _check_locked(self) -> None:
        if not self._lock.is_locked:
            raise RuntimeError("writes to a knowledge base must run inside write_lock()")

    def replace_source(
        self, record: SourceRecord, text: str, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        self._check_locked()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.settings.dimensions):
            raise ValueError(f"vectors {vectors.shape} for {len(chunks)} chunks")
        with self._mutex:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                self._delete(record.path)
                c.execute(
                    "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.path, record.kind, record.title, record.sha256, record.chars,
                     record.chunks, record.added_at, text),
                )  # fmt: skip
                for chunk, vec in zip(chunks, vectors, strict=True):
                    cur = c.execute(
                        "INSERT INTO chunks (chunk_id, path, ordinal, start_char, end_char, heading, text, "
                        "embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (chunk_id(record.path, record.sha256, chunk.ordinal), record.path, chunk.ordinal,
                         chunk.start, chunk.end, json.dumps(chunk.heading_path), chunk.text, vec.tobytes()),
                    )  # fmt: skip
                    c.execute(
                        "INSERT INTO chunks_fts (rowid, body) VALUES (?, ?)",
                        (cur.lastrowid, body_for_keywords(chunk)),
                    )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _delete(self, path: str) -> None:
        c = self._conn
        c.execute("DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE path = ?)", (path,))
        c.execute("DELETE FROM chunks WHERE path = ?", (path,))
        c.execute("DELETE FROM sources WHERE path = ?", (path,))

    def remove_sources(self, paths: Sequence[str]) -> int:
        self._check_locked()
        removed = 0
        with self._mutex:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                for path in paths:
                    removed += c.execute("SELECT count(*) FROM sources WHERE path = ?", (path,)).fetchone()[0]
                    self._delete(path)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        return removed

    def flush(self) -> None:
        """Catch the HNSW file up with the database: add rows above the id it covers, drop rows since
        deleted, save it (to a temporary file, then renamed, so readers see the old or the new one)."""
        from usearch.index import Index as Usearch

        self._check_locked()
        path, meta = self.folder / ANN_FILE, self.folder / ANN_META
        try:
            covered = json.loads(meta.read_text())["max_id"]
            ann = Usearch.restore(str(path), view=False)
        except (OSError, ValueError, KeyError):
            covered, ann = 0, None
        if ann is None:
            covered = 0
            ann = Usearch(ndim=self.settings.dimensions, metric="cos", dtype="f32", **HNSW)
        (top,) = self._rows("SELECT coalesce(max(id), 0) FROM chunks")[0]
        (kept,) = self._rows("SELECT count(*) FROM chunks WHERE id <= ?", (covered,))[0]
        changed = False
        if len(ann) != kept:  # rows at or below `covered` were deleted since the last save
            ids = {r[0] for r in self._rows("SELECT id FROM chunks WHERE id <= ?", (covered,))}
            stale = [int(key) for key in ann.keys if int(key) not in ids]
            if stale:
                ann.remove(np.asarray(stale, dtype=np.uint64))
                changed = True
        at = covered
        while True:
            rows = self._rows("SELECT id, embedding FROM chunks WHERE id > ? ORDER BY id LIMIT 20000", (at,))
            if not rows:
                break
            keys = np.asarray([r[0] for r in rows], dtype=np.uint64)
            mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            ann.add(keys, mat)
            at = rows[-1][0]
            changed = True
        if not changed and top == covered and path.exists():
            return
        tmp = path.with_name(f".{ANN_FILE}.tmp")
        ann.save(str(tmp))
        os.replace(tmp, path)
        tmp_meta = meta.with_name(f".{ANN_META}.tmp")
        tmp_meta.write_text(json.dumps({"max_id": max(top, at), "size": len(ann)}))
        os.replace(tmp_meta, meta)

    def close(self) -> None:
        with self._mutex:
            self._conn.close()
            self._ann = None


def _batches(items: list, size: int = 500) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
