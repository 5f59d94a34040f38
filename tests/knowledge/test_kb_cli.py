"""``clearlm kb``: create, add (with a bad file), list, sources, search, remove; errors as one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kb_files import write_corpus
from typer.testing import CliRunner

from clearlm.cli import app

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # paths under the working directory are shown relative to it
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_create_add_list_search_remove(home):
    corpus = write_corpus(home / "docs")
    (home / "docs" / "empty.txt").write_bytes(b"")
    assert "created knowledge base manuals" in run("kb", "create", "manuals", "--chunk-tokens", "120").output
    added = run("kb", "add", "manuals", str(home / "docs")).output
    assert "4 added, 0 replaced, 0 unchanged, 1 skipped" in added
    assert "warning:" in added and "empty.txt" in added and "the file is empty" in added
    assert "0 added, 0 replaced, 4 unchanged" in run("kb", "add", "manuals", str(home / "docs")).output
    listing = run("kb", "list").output
    assert "manuals" in listing and "120" in listing and "│ 4 " in listing
    assert "lighthouse.pdf" in run("kb", "sources", "manuals").output

    table = run("kb", "search", "manuals", "how do I fix a flat tyre", "--k", "2").output
    first = [line for line in table.splitlines() if line.startswith("│    1 │")]
    assert first and "docs/bikes.html" in first[0] and "Fixing a flat tyre" in first[0]
    for header in ("rank", "score", "path", "heading", "snippet"):
        assert header in table
    bm25 = run("kb", "search", "manuals", "Fresnel", "--mode", "bm25", "--mmr", "0.5").output
    assert "lighthouse.pdf" in bm25 and "Lamps and Lenses" in bm25
    only = run("kb", "search", "manuals", "water", "--path-prefix", str(corpus["md"])).output
    assert "garden.md" in only and "bikes.html" not in only

    assert "removed 1 source(s)" in run("kb", "remove", "manuals", str(corpus["pdf"])).output
    assert "no passages match" in run("kb", "search", "manuals", "Fresnel", "--mode", "bm25").output


def clearlm(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "CLEARLM_HOME": str(home), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "clearlm.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_mistakes_print_one_line_and_exit_1(home):
    missing = clearlm("kb", "search", "nothing-here", "query", home=home)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no knowledge base named 'nothing-here'" in missing.stderr
    assert "clearlm kb create nothing-here" in " ".join(missing.stderr.split())
    assert clearlm("kb", "create", "dup", home=home).returncode == 0
    dup = clearlm("kb", "create", "dup", home=home)
    assert dup.returncode == 1 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    bad = clearlm("kb", "search", "dup", "x", "--mode", "fuzzy", home=home)
    assert bad.returncode == 1 and "mode must be one of hybrid, vector, bm25" in bad.stderr
    guess = clearlm("kb", "ask", "dup", "x?", "--answer", "guess", home=home)  # before the model loads
    assert guess.returncode == 1 and "--answer is one of generate, extract, not 'guess'" in guess.stderr
    gone = clearlm("kb", "remove", "dup", str(home / "nowhere.md"), home=home)
    assert gone.returncode == 1 and "holds no source" in gone.stderr
