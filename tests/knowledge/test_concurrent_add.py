"""Two real processes adding to the same knowledge base at once leave it whole: every file once, chunk
counts that agree, indexes that match the rows (the embedded index's lock file, PostgreSQL's advisory lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

from clearlm.knowledge import KnowledgeBase

pytestmark = pytest.mark.integration

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from clearlm.knowledge import KnowledgeBase
    name, where, files, go = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
    kb = KnowledgeBase.open(name, **where)
    kb.embedder  # load the model before the start signal, so the two adds overlap
    open(go + "." + str(os.getpid()), "w").close()
    while not os.path.exists(go):
        time.sleep(0.05)
    report = kb.add(files)
    print(json.dumps({"added": report.added, "replaced": report.replaced, "unchanged": report.unchanged,
                      "skipped": [s.path for s in report.skipped]}))
    """
)


def topic_file(folder, i: int) -> str:
    path = folder / f"note{i:02d}.md"
    path.write_text(
        f"# Note {i}\n\n## Facts\n\nItem {i} is stored on shelf {i * 7 % 13} of the archive room.\n\n"
        f"## History\n\nItem {i} was catalogued in {1900 + i}. "
        + "It has a long provenance. " * (3 + i % 5)
        + "\n"
    )
    return str(path)


@pytest.mark.parametrize("backend", ["embedded", "postgres"])
def test_two_processes_adding_at_once_leave_the_base_whole(backend, tmp_path, request):
    where = {"root": str(tmp_path / "kb")}
    if backend == "postgres":
        where = {"url": request.getfixturevalue("postgres_url")}
    name = "shared-" + uuid.uuid4().hex[:8]
    KnowledgeBase.create(name, **where).close()
    docs = tmp_path / "docs"
    docs.mkdir()
    files = [topic_file(docs, i) for i in range(24)]
    first, second = files[:16], files[8:]  # eight files in both lists
    go = str(tmp_path / "go")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, name, json.dumps(where), json.dumps(part), go],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for part in (first, second)
    ]
    deadline = time.monotonic() + 240
    while len([f for f in os.listdir(tmp_path) if f.startswith("go.")]) < 2:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
            p.communicate() for p in procs
        ]
        time.sleep(0.1)
    open(go, "w").close()
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))

    # each file was written by exactly one process; the other found it unchanged (same content hash)
    added = reports[0]["added"] + reports[1]["added"]
    assert sorted(added) == sorted(files)
    for shared in files[8:16]:
        assert shared in reports[0]["added"] + reports[0]["unchanged"]
        assert shared in reports[1]["added"] + reports[1]["unchanged"]
    assert not any(r["skipped"] or r["replaced"] for r in reports)

    kb = KnowledgeBase.open(name, **where)
    sources = kb.sources()
    assert [s.path for s in sources] == sorted(files)
    n_sources, n_chunks = kb.index.counts()
    assert n_sources == 24 and n_chunks == sum(s.chunks for s in sources)
    for i in (0, 12, 23):
        hit = kb.search(f"Item {i} was catalogued in {1900 + i}", k=1, mode="bm25").passages[0]
        assert hit.path == files[i] and kb.source_text(hit.path)[hit.start : hit.end] == hit.text
        assert kb.search(f"which shelf holds item {i}", k=3, source=files[i]).passages
    if backend == "embedded":
        from usearch.index import Index

        conn = kb.index._conn
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM chunks_fts").fetchone() == (n_chunks,)
        folder = kb.index.folder
        graph = Index.restore(str(folder / "vectors.usearch"))
        assert len(graph) == n_chunks
        ids = {r[0] for r in conn.execute("SELECT id FROM chunks")}
        assert {int(k) for k in graph.keys} == ids
        assert json.loads((folder / "vectors.json").read_text())["max_id"] == max(ids)
    kb.close()
