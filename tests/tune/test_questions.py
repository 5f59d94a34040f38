"""The four-way question answering after tuning: the question file, the scores, and the answers of base,
tuned, base + knowledge base and tuned + knowledge base, each a governed, audited pipeline turn, checked
against the same turns made afterwards over the saved adapter."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import torch

from clearlm.errors import InvalidInputError
from clearlm.tune import TuneConfig, read_card, tune
from clearlm.tune.answers import QuestionSet
from clearlm.tune.card import card_markdown
from clearlm.tune.questions import Question, key_recall, load_questions, normalise, token_f1
from conftest import make_model

CONFIG = TuneConfig(
    steps=3, seq_len=32, learning_rate=2e-2, warmup_steps=0, checkpoint_every=0, eval_tokens=64
)
QUESTIONS = [
    Question(
        "remove", "How do I remove a package but keep its configuration?", "apt remove", ("apt remove",)
    ),
    Question("mail", "Whom do I write to at admin@example.org about apt?", "The archive mirrors.", ()),
]


def test_question_files_and_scores(tmp_path):
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(
        '{"question": "Which file holds the default locale?", "answer": "/etc/default/locale", '
        '"key_phrases": ["/etc/default/locale"]}\n\n'
        '{"id": "lang", "question": "Which variable?", "answer": "$LANG", "key": "LANG"}\n'
    )
    assert load_questions(jsonl) == [
        Question(
            "q1", "Which file holds the default locale?", "/etc/default/locale", ("/etc/default/locale",)
        ),
        Question("lang", "Which variable?", "$LANG", ("LANG",)),
    ]
    yml = tmp_path / "q.yaml"
    yml.write_text("questions:\n  - question: Which variable?\n    answer: $LANG\n")
    assert load_questions(yml) == [Question("q1", "Which variable?", "$LANG", ())]

    for text, message in (
        ('{"question": "x"}\n', "q.jsonl line 1: 'answer' must be a non-empty string"),
        ('{"question": "x", "answer": "y"}\nnot json\n', "q.jsonl line 2 is not JSON"),
        ('{"question": "x", "answer": "y", "hint": 1}\n', "unknown field(s) hint"),
        ('{"question": "x", "answer": "y", "key_phrases": [1]}\n', "'key_phrases' must be a list"),
        (
            '{"id": "a", "question": "x", "answer": "y"}\n{"id": "a", "question": "z", "answer": "y"}\n',
            "'a' is used twice",
        ),
        ("\n", "holds no questions"),
    ):
        jsonl.write_text(text)
        with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load_questions(jsonl)
    with pytest.raises(InvalidInputError, match="cannot read the questions file"):
        load_questions(tmp_path / "missing.jsonl")

    # SQuAD's normalisation, then F1 of the word bags
    assert normalise("The file: /etc/default/locale!") == "file etcdefaultlocale"
    assert token_f1("The file /etc/default/locale.", "/etc/default/locale") == pytest.approx(2 / 3)
    assert token_f1("set LANG to C", "LANG=C") == 0.0 and token_f1("An apple", "apple.") == 1.0
    # key phrases: case-insensitive, whole words ("LANG" is not in "LANGUAGE")
    assert key_recall("Set $LANGUAGE first", ["LANG"]) == 0.0
    assert key_recall("export lang=C", ["LANG"]) == 1.0
    assert key_recall("Use LC_ALL.", ["LC_ALL", "locale(7)"]) == 0.5
    assert key_recall("anything", []) is None


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    """A real knowledge base (the packaged MiniLM embedder) over the tuning tests' apt document."""
    from clearlm.knowledge import KnowledgeBase
    from clearlm.knowledge.base import default_embedder

    folder = tmp_path_factory.mktemp("kb-docs")
    (folder / "apt.md").write_text(
        "# Removing packages\n\nUse apt remove to delete a package but keep its configuration, or apt purge "
        "to delete both.\n\n# Sources\n\nThe sources list names the archive mirrors.\n"
    )
    base = KnowledgeBase.create("apt-docs", root=tmp_path_factory.mktemp("kb"), embedder=default_embedder())
    base.add(folder)
    yield base
    base.close()


@pytest.fixture
def long_base(tiny_tokenizer):
    """The tiny random model with room for the knowledge-base prompt (passages and a worked example)."""
    from clearlm.models.backends.torch_backend import TorchBackend

    model = make_model(tiny_tokenizer, dtype=torch.float32, context=8192)
    return TorchBackend(model, tiny_tokenizer, "tiny-random-qwen2")


def test_four_ways_through_the_pipeline_match_the_saved_adapter(
    home, long_base, docs, email_policy, kb, tmp_path
):
    from clearlm.models import Message, SamplingParams
    from clearlm.pipeline import Retrieval, TurnRequest, start_turn
    from clearlm.store import AuditLog, AuditRecord, Database
    from clearlm.tune.serve import AdapterSet

    audit = AuditLog(Database(f"sqlite:///{tmp_path / 'audit.db'}"))
    asked = QuestionSet(tuple(QUESTIONS), kb, k=2, max_new_tokens=6)
    stages, progress = [], []
    result = tune(
        "apt",
        long_base,
        docs,
        CONFIG,
        policy=email_policy,
        questions=asked,
        audit=audit,
        on_stage=stages.append,
        on_answer=lambda done, total: progress.append((done, total)),
    )
    qa = result.report["questions"]
    assert stages[-2:] == ["answer", "save"] and progress[-1] == (8, 8)
    assert qa["setups"] == ["base", "tuned", "base+kb", "tuned+kb"] and qa["knowledge_base"] == "apt-docs"
    assert [r["id"] for r in qa["rows"]] == ["remove", "mail"]

    # the same turns made now over the saved adapter give the same answers: "tuned" is the adapter,
    # "base" the base with it switched off, "+kb" the same models answering from retrieved passages
    views = AdapterSet(long_base)
    models = {"base": views.view(None), "tuned": views.load("apt")}
    for row, q in zip(qa["rows"], QUESTIONS, strict=True):
        for setup, answer in row["answers"].items():
            request = TurnRequest(
                [Message("user", q.question)],
                SamplingParams(max_new_tokens=6),
                retrieval=Retrieval(kb, 2) if setup.endswith("+kb") else None,
                instructions=asked.instructions,
            )
            record = AuditRecord(request_id="check", created_at=datetime.now(UTC), endpoint="check")
            again = start_turn(models[setup.split("+")[0]], request, record, None, email_policy).run()
            assert answer["text"] == again.choices[0].text, (row["id"], setup)
            assert answer["model"] == (
                "tiny-random-qwen2:apt" if setup.startswith("tuned") else "tiny-random-qwen2"
            )
            assert answer["f1"] == (token_f1(answer["text"], q.answer) if answer["text"] else 0.0)
            assert answer["key_recall"] == key_recall(answer["text"], q.key_phrases)
            assert ("passages" in answer) == setup.endswith("+kb")
    assert any(r["answers"]["base"]["text"] != r["answers"]["tuned"]["text"] for r in qa["rows"])
    for setup in qa["setups"]:
        f1 = [r["answers"][setup]["f1"] for r in qa["rows"]]
        assert qa["means"][setup]["f1"] == pytest.approx(sum(f1) / 2)
        assert (
            qa["means"][setup]["key_recall"] == qa["rows"][0]["answers"][setup]["key_recall"]
        )  # one has keys

    # each answer is one audited turn under the data's policy: the e-mail address never reaches the log
    records = [r for r in audit.records() if r.endpoint == "tune:questions"]
    assert len(records) == 8 and all(r.status_code == 200 for r in records)
    assert sorted({r.model for r in records}) == ["tiny-random-qwen2", "tiny-random-qwen2:apt"]
    assert (
        sum(1 for r in records if (r.parameters.get("retrieval") or {}).get("knowledge_base") == "apt-docs")
        == 4
    )
    stored = json.dumps([r.prompt for r in records])
    assert "admin@example.org" not in stored and "Whom do I write to at" in stored

    # saved with the adapter: the report, the card's means, the README's table
    card = read_card("apt")
    assert card["report"]["questions"]["rows"] == json.loads(json.dumps(qa["rows"]))
    assert card["figures"]["questions"]["means"] == json.loads(json.dumps(qa["means"]))
    readme = (result.path / "README.md").read_text()
    assert "## Domain questions, four ways" in readme and "| remove: How do I remove a package" in readme
    assert card_markdown(card) == readme


def test_bad_question_settings_are_refused_before_training(home, tiny_base, docs, email_policy, tmp_path):
    from clearlm.knowledge import KnowledgeBase
    from clearlm.tune.adapters import adapters_root

    with pytest.raises(InvalidInputError, match="no questions to ask"):
        QuestionSet(())
    with pytest.raises(InvalidInputError, match="passages per question"):
        QuestionSet(tuple(QUESTIONS), k=0)
    empty = KnowledgeBase.create("empty", root=tmp_path / "kb")
    with pytest.raises(InvalidInputError, match="'empty' holds no documents to answer the questions from"):
        tune(
            "apt",
            tiny_base,
            docs,
            CONFIG,
            policy=email_policy,
            questions=QuestionSet(tuple(QUESTIONS), empty),
        )
    empty.close()
    assert not adapters_root().exists() or not any(adapters_root().iterdir())


def test_the_benchmark_questions_are_about_the_held_out_chapter():
    """benchmarks/data/tune_questions.jsonl: 14 questions on ch08, the chapter bench_tuning.py holds out; with
    the Debian Reference installed, every key phrase occurs in that chapter's extracted text."""
    from pathlib import Path

    from clearlm.tune.questions import contains_phrase
    from conftest import BENCHMARKS, load_benchmark

    questions = load_questions(BENCHMARKS / "data" / "tune_questions.jsonl")
    assert len(questions) == 14 and all(q.id.startswith("ch08-") and q.key_phrases for q in questions)
    bench = load_benchmark("bench_tuning")
    assert bench.HELD_OUT == ("ch08",) and "ch08" not in bench.TRAIN
    chapter = Path("/usr/share/debian-reference/ch08.en.html")
    if not chapter.is_file():
        pytest.skip("the Debian Reference is not installed (make docs-corpus)")
    from clearlm.knowledge.documents import read_document

    text = read_document(chapter).text
    missing = [(q.id, p) for q in questions for p in q.key_phrases if not contains_phrase(text, p)]
    assert not missing
