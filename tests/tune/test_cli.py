"""``clearlm tune`` and ``clearlm adapters`` as a user runs them: the real entry point (``clearlm.cli.main``, in
this process: a fresh interpreter per command costs tens of seconds on a busy 2-core machine), its output,
its exit status, clear errors, no tracebacks."""

from __future__ import annotations

import json

import torch

from conftest import make_model


def test_tune_show_export_remove(tmp_path, tiny_tokenizer, docs, clearlm, monkeypatch):
    base = tmp_path / "tiny-base"
    make_model(tiny_tokenizer, dtype=torch.float32).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: emails\ninput:\n  - {scanner: regex, action: redact, patterns: {EMAIL: '[\\w.]+@[\\w.]+'}}\n"
    )
    config = tmp_path / "tune.yaml"
    config.write_text("steps: 3\nseq_len: 32\nwarmup_steps: 1\neval_tokens: 128\n")
    home = tmp_path / "home"
    monkeypatch.setenv("CLEARLM_HOME", str(home))

    run = clearlm(
        "tune",
        "apt",
        "--base",
        str(base),
        "--data",
        str(docs),
        "--config",
        str(config),
        "--policy",
        str(policy),
    )
    assert run.returncode == 0, run.stderr
    assert "adapter apt written to" in run.stdout and "held-out domain" in run.stdout
    assert "3/3" in run.stderr and "tok/s" in run.stderr  # the progress bar: steps, loss, tokens/s

    listed = json.loads(clearlm("adapters", "list", "--json").stdout)
    assert [a["name"] for a in listed] == ["apt"] and listed[0]["base"] == str(base)
    card = json.loads(clearlm("adapters", "show", "apt", "--json").stdout)
    assert card["hyperparameters"]["steps"] == 3 and len(card["report"]["losses"]) == 3

    out = tmp_path / "merged"
    run = clearlm("adapters", "export", "apt", str(out))
    assert run.returncode == 0, run.stderr
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}\n')
    for args, message in (
        (
            ["tune", "x", "--base", str(base), "--data", str(bad)],
            "bad.jsonl line 1: message 1 has role 'bot'",
        ),
        (["tune", "apt", "--base", str(base), "--data", str(docs)], "adapter 'apt' exists"),
        (
            ["tune", "y", "--base", str(base), "--data", str(docs), "--backend", "llamacpp"],
            "only the torch backend",
        ),
        (["adapters", "show", "nope"], "no adapter 'nope': choose one of apt"),
    ):
        run = clearlm(*args)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert message in " ".join(run.stderr.split()), run.stderr
    assert clearlm("adapters", "remove", "apt").returncode == 0
    assert "no adapters yet" in clearlm("adapters", "list").stdout
    assert sorted(p.name for p in (home / "adapters").iterdir()) == [".work"] or not list(
        (home / "adapters").iterdir()
    )
