"""``clearlm tune --questions --kb`` (and the same from the config file) and ``clearlm adapters show``: the
four-way table printed and kept with the adapter; bad question settings refused before the model loads."""

from __future__ import annotations

import torch

from conftest import make_model


def test_tune_with_questions_from_the_config_file(tmp_path, tiny_tokenizer, docs, clearlm, monkeypatch):
    from clearlm.knowledge import KnowledgeBase
    from clearlm.knowledge.base import default_embedder
    from clearlm.store import AuditLog, Database

    home = tmp_path / "home"
    monkeypatch.setenv("CLEARLM_HOME", str(home))
    base = tmp_path / "tiny-base"
    make_model(tiny_tokenizer, dtype=torch.float32, context=8192).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    with KnowledgeBase.create("apt-docs", embedder=default_embedder()) as kb:  # under $CLEARLM_HOME
        kb.add(docs)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: emails\ninput:\n  - {scanner: regex, action: redact, patterns: {EMAIL: '[\\w.]+@[\\w.]+'}}\n"
    )
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "questions.yaml").write_text(
        "- id: purge\n  question: How do I delete a package and its configuration?\n  answer: apt purge\n"
        "  key_phrases: [apt purge]\n"
        "- question: What does the sources list name?\n  answer: The archive mirrors.\n"
    )
    config = tmp_path / "tune.yaml"
    config.write_text(
        "steps: 2\nseq_len: 32\nwarmup_steps: 0\neval_tokens: 64\n"
        "questions: eval/questions.yaml\nknowledge_base: apt-docs\npassages: 2\nanswer_tokens: 4\n"
    )

    run = clearlm("tune", "apt", "--base", base, "--data", docs, "--config", config, "--policy", policy)
    assert run.returncode == 0, run.stderr
    assert "answered 8/8" in run.stderr
    assert "2 domain questions (knowledge base apt-docs)" in run.stdout
    assert all(s in run.stdout for s in ("base+kb", "tuned+kb", "mean token F1", "mean key recall"))
    records = [r for r in AuditLog(Database()).records() if r.endpoint == "tune:questions"]
    assert len(records) == 8 and {r.model for r in records} == {str(base), f"{base}:apt"}

    shown = clearlm("adapters", "show", "apt")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "## Domain questions, four ways" in text and "knowledge base `apt-docs` (2 passages each)" in text
    assert "**purge**: How do I delete a package and its configuration?" in text
    assert "- reference: apt purge" in text and "**q2**: What does the sources list name?" in text

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no answer"}\n')
    for args, message in (
        (["--kb", "apt-docs"], "--kb is for the questions: give --questions FILE too"),
        (["--questions", bad], "bad.jsonl line 1: 'answer' must be a non-empty string"),
        (["--questions", tmp_path / "eval" / "questions.yaml", "--kb", "nope"], "nope"),
        (["--questions", tmp_path / "eval" / "questions.yaml", "--passages", "0"], "must be 1 to 20"),
    ):
        run = clearlm("tune", "other", "--base", tmp_path / "no-such-base", "--data", docs, *args)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert message in " ".join(run.stderr.split()), run.stderr
        assert "loading" not in run.stderr  # refused before the base loads (it does not even exist)
