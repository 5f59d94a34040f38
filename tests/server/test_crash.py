"""``clearlm serve`` as a real process: killed with SIGKILL mid-generation, restarted on the same SQLite
file, it opens the database and has lost nothing that was committed."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import httpx2 as httpx
import pytest

from clearlm.store import AuditLog, Database

MSGS = [{"role": "user", "content": "Where is the Eiffel Tower?"}]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_backend):
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_backend.model.save_pretrained(path)
    tiny_backend.tokenizer.save_pretrained(path)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model_dir, db_url, port) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "clearlm.cli",
        "serve",
        "--model",
        str(model_dir),
        "--port",
        str(port),
        "--db",
        db_url,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode())
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not become ready")


def test_sigkill_mid_generation_loses_nothing_committed(model_dir, tmp_path):
    db_path = tmp_path / "audit.db"
    db_url = f"sqlite:///{db_path}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}/v1"
    proc = _start(model_dir, db_url, port)
    try:
        ids = []
        for _ in range(3):
            r = httpx.post(
                base + "/chat/completions",
                json={"model": str(model_dir), "messages": MSGS, "max_tokens": 5},
                timeout=60,
            )
            assert r.status_code == 200
            ids.append(r.json()["id"])
        body = {
            "model": str(model_dir),
            "messages": MSGS,
            "max_tokens": 200,
            "stream": True,
            "temperature": 1.0,
        }
        with httpx.stream("POST", base + "/chat/completions", json=body, timeout=60) as stream:
            next(stream.iter_lines())  # generation has begun
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    finally:
        proc.kill()
    with sqlite3.connect(db_path) as conn:  # the file opens and is consistent after the kill
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    proc = _start(model_dir, db_url, port)
    try:
        r = httpx.post(
            base + "/chat/completions",
            json={"model": str(model_dir), "messages": MSGS, "max_tokens": 2},
            timeout=60,
        )
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    logged = AuditLog(Database(db_url)).records()
    assert [x.request_id for x in logged] == [*ids, r.json()["id"]]  # the killed request never committed
    assert all(x.status_code == 200 and x.output is not None for x in logged)
