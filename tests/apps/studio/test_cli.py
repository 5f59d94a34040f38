"""``clearlm studio`` without a model: plan, a person's versions, diff, restore, the rules' check on a
real scene (exit 2 with both passages), export to Markdown and EPUB with the sidecar; a bad input is one
message and exit 1, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

from typer.testing import CliRunner

from clearlm.cli import app

from .test_consistency import DRIFTED


def test_plan_edit_diff_restore_check_export(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    db = ["--db", f"sqlite:///{tmp_path / 's.db'}"]
    run = CliRunner().invoke

    def ok(*args) -> str:
        r = run(app, [*args, *db])
        assert r.exit_code == 0, r.output
        return r.output.strip()

    pid = ok("studio", "new", "The Keeper", "--premise", "A keeper hides a debt.")
    ok("studio", "bible", pid, "character", "Mara Voss", "Mara Voss has green eyes.", "--alias", "Mara")
    part = ok("studio", "add", pid, "part", "One")
    chapter = ok("studio", "add", pid, "chapter", "Storm", "--parent", part)
    scene = ok("studio", "add", pid, "scene", "Knock", "--parent", chapter, "--beat", "Mara opens the door")
    text = tmp_path / "scene.txt"
    text.write_text("Mara opened the heavy door.")
    assert ok("studio", "edit", pid, scene, str(text)) == "version 1"
    text.write_text(DRIFTED)
    assert ok("studio", "edit", pid, scene, str(text)) == "version 2"
    diff = ok("studio", "diff", pid, scene, "1", "2")
    assert diff.startswith("{+The storm had been building") and "[-heavy-]" in diff
    assert ok("studio", "restore", pid, scene, "2") == "version 3"
    assert "person" in ok("studio", "versions", pid, scene).splitlines()[2]
    assert "- Mara opens the door" in ok("studio", "show", pid)
    r = run(app, ["studio", "check", pid, scene, *db])
    assert r.exit_code == 2 and "eye colour: green vs blue" in r.output
    assert (
        "bible: Mara Voss has green eyes." in r.output
        and "scene: Her blue eyes gave nothing away." in r.output
    )
    ok("studio", "export", pid, str(tmp_path / "keeper.md"))
    ok("studio", "export", pid, str(tmp_path / "keeper.epub"))
    assert (tmp_path / "keeper.md").read_text().startswith("# The Keeper\n\n> No passage")
    side = json.loads((tmp_path / "keeper.epub.ai.json").read_text())
    assert side["ai_generated"] is False and {p["status"] for p in side["passages"]} == {
        "written by a person"
    }
    assert zipfile.ZipFile(tmp_path / "keeper.epub").namelist()[0] == "mimetype"


def test_bad_input_is_one_message(tmp_path):
    env = {**os.environ, "CLEARLM_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-m", "clearlm.cli", "studio", "versions", "prj_0000000000000000", "x",
                        "--db", f"sqlite:///{tmp_path / 's.db'}"], capture_output=True, text=True, env=env)  # fmt: skip
    assert (
        r.returncode == 1 and "no project 'prj_0000000000000000'" in r.stderr and "Traceback" not in r.stderr
    )
