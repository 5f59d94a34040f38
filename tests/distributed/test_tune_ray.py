"""A tuning run as a Ray task on the local cluster (a head and a worker node): the adapter the driver stores
equals one trained in this process with the same seed (losses, perplexities, weights)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from clearlm.errors import PolicyViolationError
from clearlm.tune import TuneConfig, read_card, tune
from clearlm.tune.ray_job import tune_on_ray
from conftest import make_model

pytestmark = pytest.mark.ray
POLICY = (
    "name: emails\ninput:\n  - {scanner: regex, action: redact, threshold: 0.1, patterns: "
    "{EMAIL: '[\\w.]+@[\\w.]+'}}\n"
)
DOC = (
    "The apt tool installs packages from the Debian archive. Run apt update to refresh the package lists, "
    "then apt install to add a package. Write to admin@example.org for help.\n\n"
    "Use apt remove to delete a package but keep its configuration, or apt purge to delete both.\n"
)
CONFIG = TuneConfig(
    steps=3, seq_len=32, learning_rate=2e-2, warmup_steps=0, checkpoint_every=0, eval_tokens=64
)


def test_a_run_on_the_cluster_equals_one_here(tmp_path, ray_cluster, tiny_tokenizer, monkeypatch):
    from typer.testing import CliRunner

    from clearlm.cli import app
    from clearlm.govern import parse_policy

    base = tmp_path / "tiny"
    make_model(tiny_tokenizer, dtype=torch.float32).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(3):
        (docs / f"part{i}.md").write_text(f"# Apt {i}\n\n{DOC}", encoding="utf-8")
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))

    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "tune.yaml").write_text(
        "steps: 3\nseq_len: 32\nlearning_rate: 0.02\nwarmup_steps: 0\ncheckpoint_every: 0\neval_tokens: 64\n"
    )
    run = CliRunner().invoke(
        app,
        ["tune", "apt", "--base", str(base), "--data", str(docs), "--config", str(tmp_path / "tune.yaml")]
        + ["--policy", str(tmp_path / "policy.yaml"), "--ray-address", ray_cluster, "--json"]
        + ["--general-data", str(docs / "part1.md")],
    )
    assert run.exit_code == 0, run.output
    remote = SimpleNamespace(path=tmp_path / "home" / "adapters" / "apt", card=read_card("apt"))
    remote.report = remote.card["report"]
    policy = parse_policy(POLICY, embedder_factory=None)
    here = tune("here", str(base), docs, CONFIG, policy=policy, general_data=docs / "part1.md")
    assert remote.report["losses"] == here.report["losses"] and len(here.report["losses"]) == 3
    for text in ("domain", "general"):  # general: the shipped text, not the packaged sample
        assert remote.card["figures"][text] == here.card["figures"][text], text
    card = remote.card
    assert card["name"] == "apt" and card["data"]["pii"] == here.card["data"]["pii"]
    assert [s["path"] for s in card["data"]["sources"]] == [s["path"] for s in here.card["data"]["sources"]]
    a, b = (load_file(p / "adapter_model.safetensors") for p in (remote.path, here.path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((remote.path / "report.json").read_text())["losses"] == here.report["losses"]
    stored = sorted(p.name for p in (tmp_path / "home" / "adapters").iterdir() if p.name != ".work")
    assert stored == ["apt", "here"]  # no temporary folder left

    # an error on the worker comes back as clearlm's own
    with pytest.raises(PolicyViolationError, match="part0.md"):
        tune_on_ray(
            "refused",
            str(base),
            docs,
            CONFIG,
            address=ray_cluster,
            policy_yaml=POLICY.replace("redact", "block"),
        )
    assert not (tmp_path / "home" / "adapters" / "refused").exists()


def test_an_evaluation_on_the_cluster_equals_one_here(tmp_path, ray_cluster, tiny_tokenizer, monkeypatch):
    from typer.testing import CliRunner

    from clearlm.cli import app
    from clearlm.govern import parse_policy
    from clearlm.tune.evaluation import evaluate_adapter
    from clearlm.tune.ray_job import evaluate_on_ray

    base = tmp_path / "tiny"
    make_model(tiny_tokenizer, dtype=torch.float32).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    train, held = tmp_path / "train.md", tmp_path / "held"
    train.write_text(f"# Apt\n\n{DOC}", encoding="utf-8")
    held.mkdir()
    (held / "more.md").write_text(f"# More apt\n\n{DOC.upper()}", encoding="utf-8")
    monkeypatch.setenv("CLEARLM_HOME", str(tmp_path / "home"))
    tune("apt", str(base), train, CONFIG)
    policy = parse_policy(POLICY, embedder_factory=None)

    here = evaluate_adapter("apt", held, general_data=train, policy=policy).to_dict()
    (tmp_path / "policy.yaml").write_text(POLICY)
    run = CliRunner().invoke(
        app,
        ["adapters", "evaluate", "apt", "--data", str(held), "--general-data", str(train)]
        + ["--policy", str(tmp_path / "policy.yaml"), "--ray-address", ray_cluster, "--json"],
    )
    assert run.exit_code == 0, run.output
    remote = json.loads(run.output)
    for key in (
        "adapter",
        "base",
        "data",
        "figures",
    ):  # general figures too: the shipped text, not the sample
        assert remote[key] == here[key], key
    assert remote["data"]["pii"]["redacted_texts"] == 1
    with pytest.raises(PolicyViolationError, match="more.md"):
        evaluate_on_ray("apt", held, address=ray_cluster, policy_yaml=POLICY.replace("redact", "block"))
