"""schemathesis over the live server's /openapi.json: every operation, positive and negative data, with
0 server errors, responses that conform to their documented schemas, and no "schema validation mismatch"
(every request body is documented by its pydantic model, bounds included, so data the schema allows is data
the server takes).

A tiny random model, the packaged embedding model, a temporary SQLite database and $CLEARLM_HOME. The run
is bounded (``MAX_EXAMPLES`` cases per operation and phase) to take a few minutes on 2 cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

MAX_EXAMPLES = 8
HERE = Path(__file__).parent


@pytest.fixture
def server(serve, tiny_backend, tmp_path, monkeypatch):
    from clearlm.models.embeddings import load_embedder

    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    live = serve(
        tiny_backend, embedder=load_embedder(), files_dir=str(tmp_path / "uploads"), default_max_tokens=4
    )
    return live


def test_schemathesis_finds_no_server_error_and_no_mismatch(server, tmp_path):
    import httpx2 as httpx

    c = httpx.Client(base_url=server.base, timeout=60)
    assert c.post("/v1/kb", json={"name": "docs", "chunk_tokens": 32, "overlap": 4}).status_code == 201
    files = [{"filename": "guide.md", "content": "# Guide\n\nThe clinic opens at 8 am on weekdays."}]
    assert c.post("/v1/kb/docs/files", json={"files": files}).status_code == 200
    # an admin key: keys made during the run (POST /v1/keys) must not lock the run out
    _, secret = server.state.keys.create("schemathesis", scope="admin")

    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
hooks = "schemathesis_hooks"
max-failures = 20
request-timeout = 120
[warnings]
fail-on = ["validation_mismatch"]
[generation]
max-examples = {MAX_EXAMPLES}
no-shrink = true
database = "none"
[phases.examples]
enabled = false
[phases.stateful]
enabled = false
"""
    )
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "CLEARLM_ST_MODELS": f"{server.state.model_id},{server.state.config.embedding_model}",
        "CLEARLM_ST_KB": "docs",
        "CLEARLM_ST_CONTEXT": "8",
        "CLEARLM_ST_DIMENSIONS": "384",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{server.base}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--header",
            f"Authorization: Bearer {secret}",
            "--workers",
            "1",
            "--seed",
            "11",
            "--no-color",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # its .schemathesis/ cache folder
        timeout=900,
    )
    out = run.stdout + run.stderr
    assert "Schema validation mismatch" not in out, out[-6000:]
    assert run.returncode == 0, out[-6000:]
    assert "Server error" not in out, out[-6000:]
    assert json.loads(report.read_text()), "the run wrote no report"
    statuses = [r.status_code for r in server.state.audit.records()]
    assert len(statuses) > 100 and not [s for s in statuses if s >= 500]
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses)
