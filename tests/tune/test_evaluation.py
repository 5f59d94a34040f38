"""Evaluation jobs on a tiny random Qwen2 model: a stored adapter measured again on data it was not trained
on gives the figures its tuning run reported on that data, leaves the base and the adapter as they were, and
refuses bad input clearly."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from clearlm.errors import InvalidInputError, PolicyViolationError
from clearlm.tune import AdapterNotFoundError, TuneConfig, tune
from clearlm.tune.evaluation import evaluate_adapter
from clearlm.tune.serve import AdapterMismatchError
from conftest import make_model

CONFIG = TuneConfig(
    steps=4, seq_len=32, learning_rate=2e-2, warmup_steps=0, checkpoint_every=0, eval_tokens=256
)
HELD = """# Apt sources

Each line of the sources list names a mirror of the Debian archive and the suites to fetch from it. After an
edit, run apt update so the package lists follow the new mirrors. Write to help@example.org with questions.
"""


@pytest.fixture
def held(tmp_path):
    folder = tmp_path / "held"
    folder.mkdir()
    (folder / "sources.md").write_text(HELD, encoding="utf-8")
    return folder


def test_the_runs_held_out_data_gives_the_runs_figures_and_nothing_changes(
    home, tiny_base, docs, held, email_policy
):
    run = tune("apt", tiny_base, docs, CONFIG, eval_data=held, policy=email_policy)
    weights = {k: v.clone() for k, v in tiny_base.model.state_dict().items()}
    folder = home / "adapters" / "apt"
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    stages = []

    done = evaluate_adapter("apt", held, base=tiny_base, policy=email_policy, on_stage=stages.append)

    assert stages == ["data", "measure"]
    for text in ("domain", "general"):  # the same model, the same sequences: the same numbers
        assert done.figures[text] == run.card["figures"][text]
    domain = done.figures["domain"]
    assert domain["after"]["perplexity"] != domain["before"]["perplexity"]  # the adapter is on
    assert domain["after"]["tokens"] == 256 or domain["after"]["tokens"] == domain["before"]["tokens"] > 0
    data = hashlib.sha256((held / "sources.md").read_bytes()).hexdigest()
    assert done.data["sources"] == [
        {"path": str(held / "sources.md"), "bytes": len(HELD.encode()), "sha256": data}
    ]
    assert done.data["sequences"] == run.card["data"]["held_out_sequences"] > 0
    assert done.data["pii"]["redacted_texts"] == 1  # the e-mail address, screened as training data is
    assert done.base == {"name": "tiny-random-qwen2", "weights_sha256": run.card["base"]["weights_sha256"]}
    assert done.questions is None and done.to_dict()["object"] == "adapter.evaluation"
    # the base is as it was (no LoRA layers, the same weights) and the adapter's folder unchanged
    assert not [n for n, _ in tiny_base.model.named_modules() if "lora" in n]
    now = tiny_base.model.state_dict()
    assert now.keys() == weights.keys() and all(torch.equal(now[k], weights[k]) for k in now)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_the_cli_evaluates_over_the_cards_base_and_refuses_bad_input(
    home, tmp_path, docs, held, tiny_tokenizer, clearlm
):
    base = tmp_path / "tiny"
    make_model(tiny_tokenizer, dtype=torch.float32).save_pretrained(base)
    tiny_tokenizer.save_pretrained(base)
    run = tune("apt", str(base), docs, CONFIG, eval_data=held)

    out = clearlm("adapters", "evaluate", "apt", "--data", held, "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert shown["adapter"] == "apt" and shown["base"]["name"] == str(base)  # the card's base, loaded
    assert shown["figures"]["domain"] == run.card["figures"]["domain"]
    table = clearlm("adapters", "evaluate", "apt", "--data", held)
    assert table.returncode == 0 and "held-out domain" in table.stdout and "sequences" in table.stdout

    other = tmp_path / "other"
    make_model(tiny_tokenizer, dtype=torch.float32, seed=1).save_pretrained(other)
    tiny_tokenizer.save_pretrained(other)
    (tmp_path / "empty.md").write_text("  \n", encoding="utf-8")
    for args, words in [
        (("nope", "--data", held), "no adapter 'nope': choose one of apt"),
        (("apt", "--data", held, "--base", other), "was trained on"),
        (("apt", "--data", tmp_path / "empty.md"), "is empty"),
        (("apt", "--data", tmp_path / "missing"), "no data at"),
        (("apt", "--data", held, "--pii", "refuse"), "personal data"),
        (("apt", "--data", held, "--kb", "docs"), "--kb is for the questions"),
    ]:
        bad = clearlm("adapters", "evaluate", *args)
        assert bad.returncode == 1 and words in bad.stderr and "Traceback" not in bad.stderr, (
            args,
            bad.stderr,
        )


def test_errors_as_exceptions(home, tiny_base, docs, held, email_policy, tiny_tokenizer):
    from clearlm.models.backends.torch_backend import TorchBackend

    tune("apt", tiny_base, docs, CONFIG, eval_data=held, policy=email_policy)
    with pytest.raises(AdapterNotFoundError):
        evaluate_adapter("nope", held, base=tiny_base)
    other = TorchBackend(make_model(tiny_tokenizer, dtype=torch.float32, seed=1), tiny_tokenizer, "other")
    with pytest.raises(AdapterMismatchError, match="trained on tiny-random-qwen2"):
        evaluate_adapter("apt", held, base=other)
    with pytest.raises(PolicyViolationError):
        evaluate_adapter("apt", held, base=tiny_base, pii="refuse")
    with pytest.raises(InvalidInputError, match="no data"):
        evaluate_adapter("apt", held / "nothing.md", base=tiny_base)


def test_the_questions_get_the_answers_the_run_got(home, tiny_base, docs, held, email_policy):
    from clearlm.tune import Question, QuestionSet

    asked = QuestionSet(
        (
            Question(
                "remove", "How do I remove a package but keep its configuration?", "apt remove", ("apt",)
            ),
        ),
        None,
        max_new_tokens=6,
    )
    run = tune("apt", tiny_base, docs, CONFIG, eval_data=held, policy=email_policy, questions=asked)
    stages, progress = [], []
    done = evaluate_adapter(
        "apt",
        held,
        base=tiny_base,
        policy=email_policy,
        questions=asked,
        on_stage=stages.append,
        on_answer=lambda n, total: progress.append((n, total)),
    )
    assert stages == ["data", "measure", "answer"] and progress == [(1, 2), (2, 2)]
    texts = [{s: a["text"] for s, a in r["answers"].items()} for r in done.questions["rows"]]
    assert texts == [{s: a["text"] for s, a in r["answers"].items()} for r in run.report["questions"]["rows"]]
    assert texts[0]["base"] != texts[0]["tuned"]  # two models answered
    assert done.figures["questions"]["means"] == run.card["figures"]["questions"]["means"]
