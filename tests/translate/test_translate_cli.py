"""``clearlm translate`` as a user runs it: text, a subtitle file, a stream from stdin, the engines list,
and mistakes (a pair, an engine, a malformed file, a missing glossary) as one line and exit 1."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def clearlm(*args, stdin=None, home):
    env = {**os.environ, "CLEARLM_HOME": str(home), "COLUMNS": "300", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "clearlm.cli", "translate", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def run_main(monkeypatch, home, *args) -> int:
    """``clearlm translate ARGS`` in this process (clearlm.cli.main, as the console script runs it): a
    subprocess per case would pay the CLI's imports each time."""
    from clearlm.cli import main

    monkeypatch.setenv("CLEARLM_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setattr(sys, "argv", ["clearlm", "translate", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_text_and_files_are_translated(tmp_path, monkeypatch, capsys):
    assert run_main(monkeypatch, tmp_path, "Good morning, my friend.", "--to", "es") == 0
    assert capsys.readouterr().out == "Buenos días, mi amigo.\n"
    srt = tmp_path / "talk.srt"
    srt.write_text("1\n00:00:01,000 --> 00:00:02,000\nWhere is my order?\n", encoding="utf-8")
    out = tmp_path / "talk.pt.srt"
    assert run_main(monkeypatch, tmp_path, "--file", str(srt), "--to", "pt", "-o", str(out)) == 0
    assert (
        out.read_text(encoding="utf-8") == "1\n00:00:01,000 --> 00:00:02,000\nOnde está a minha encomenda?\n"
    )


def test_a_stream_from_stdin_is_translated_a_sentence_at_a_time(tmp_path):
    done = clearlm("--stream", "--to", "es", stdin="Good morning, my friend. Bye", home=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Buenos días, mi amigo.\nAdiós\n"
    assert "sentence 1:" in done.stderr and "sentence 2:" in done.stderr  # latency per sentence


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Hello.", "--to", "de", "-e", "apertium"], "cannot translate en-de: its pairs are"),
        (["Hello.", "--to", "es", "-e", "google"], "unknown translation engine 'google'"),
        (["Hello.", "--to", "es", "-g", "missing.yaml"], "cannot read the glossary"),
        (["Hello."], "--to es"),
        (["--file", "bad.srt", "--to", "es"], "line 2: '00:01 --> 00:02' is not a timing line"),
    ],
)
def test_mistakes_print_one_line_and_exit_1(tmp_path, monkeypatch, capsys, args, message):
    (tmp_path / "bad.srt").write_text("1\n00:01 --> 00:02\nHi\n", encoding="utf-8")
    args = [str(tmp_path / a) if a.endswith((".srt", ".yaml")) else a for a in args]
    assert run_main(monkeypatch, tmp_path, *args) == 1
    err = capsys.readouterr().err
    assert message in " ".join(err.split()) and "Traceback" not in err


def test_a_glossary_term_not_kept_and_a_files_progress_are_reported(tmp_path, monkeypatch, capsys):
    terms = tmp_path / "terms.yaml"
    terms.write_text("order number: número de pedido\n", encoding="utf-8")
    assert run_main(monkeypatch, tmp_path, "Send the order number.", "--to", "es", "-g", str(terms)) == 0
    out = capsys.readouterr()
    assert out.out == "Enviar el número de orden.\n"  # Apertium's words: the term not kept, and said so
    assert "sentence 1: glossary terms not kept: order number -> número de pedido" in " ".join(
        out.err.split()
    )
    doc = tmp_path / "guide.md"
    doc.write_text("# Help\n\n" + "Click the **red** button. Where is my order?\n\n" * 50, encoding="utf-8")
    assert (
        run_main(monkeypatch, tmp_path, "--file", str(doc), "--to", "es", "-o", str(tmp_path / "es.md")) == 0
    )
    err = " ".join(capsys.readouterr().err.split())
    assert "translating guide.md" in err and "101/101" in err and "wrote" in err  # sentences done/total
    assert (tmp_path / "es.md").read_text(encoding="utf-8").count("Clic el botón **rojo**.") == 50
