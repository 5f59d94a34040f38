"""An evaluation job: a trained adapter measured again, on data it was not trained on, without training.

The same measures a tuning run reports (:mod:`clearlm.tune.evaluate`, :mod:`clearlm.tune.answers`):
perplexity of the base and of the adapted model on the given domain data (every sequence held out) and on
general text (the forgetting check), and, with questions, the four-way answers (base, tuned, each with and
without a knowledge base) through the governed pipeline. The data passes the same PII screen as training
data. The adapter's folder is only read: an evaluation changes nothing stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clearlm.models.backends.torch_backend import TorchBackend
from clearlm.tune import adapters
from clearlm.tune.answers import QuestionSet, answer_with_adapter, summary
from clearlm.tune.base import base_info, check_trainable, load_base, peft_quietly
from clearlm.tune.config import TuneConfig
from clearlm.tune.data import load_eval_data
from clearlm.tune.evaluate import compare, general_text, text_examples
from clearlm.tune.run import check_questions
from clearlm.tune.screen import Screen, pii_policy
from clearlm.tune.serve import check_base


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One evaluation of adapter ``adapter``: ``base`` (name, weights hash), ``data`` (kind, sources with
    their sha256, sequences, the PII summary), ``figures`` (``{"domain", "general"}`` perplexities before
    and after as in a tuning report, plus ``questions``' means when asked), ``questions`` (the full
    table, or None) and ``seconds`` (wall time)."""

    adapter: str
    base: dict
    data: dict
    figures: dict
    questions: dict | None
    seconds: float

    def to_dict(self) -> dict:
        return {
            "object": "adapter.evaluation",
            "adapter": self.adapter,
            "base": self.base,
            "data": self.data,
            "figures": self.figures,
            "questions": self.questions,
            "seconds": self.seconds,
        }


def evaluate_adapter(
    name: str,
    data: str | Path,
    *,
    base=None,
    general_data: str | Path | None = None,
    pii: str = "redact",
    policy=None,
    questions: QuestionSet | None = None,
    audit=None,
    folder: str | Path | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_answer: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Measure adapter ``name`` (its folder under ``$CLEARLM_HOME/adapters``, or ``folder``) over ``base``
    (a model name or path for :func:`clearlm.tune.base.load_base`, a loaded torch backend, which is left
    as it was, or None: the base on the adapter's card) on the domain data at ``data`` (documents or chat
    JSONL, cut into the card's ``seq_len``), perplexity counted over at most the card's ``eval_tokens``.
    ``general_data``, ``pii``, ``policy``, ``questions``, ``audit``, ``on_answer``: as for
    :func:`clearlm.tune.tune`; ``on_stage`` gets "load", "data", "measure" and, with questions, "answer".

    Raises:
        AdapterNotFoundError: no such adapter. AdapterMismatchError: ``base`` is not the adapter's base.
        InvalidInputError: bad data (see :func:`clearlm.tune.data.load_data`), a knowledge base without
            documents for the questions. PolicyViolationError: personal data with ``pii="refuse"``.
        BackendUnavailableError: a base that is not a float torch model.
    """
    from peft import PeftModel

    started = time.perf_counter()
    stage = on_stage or (lambda s: None)
    folder = Path(folder) if folder is not None else adapters.adapter_dir(name)
    card = adapters.read_card(name) if folder == adapters.adapter_dir(name) else adapters.card_at(folder)
    check_questions(questions)
    config = TuneConfig(**card["hyperparameters"])
    if not isinstance(base, TorchBackend):
        stage("load")
    backend = base if isinstance(base, TorchBackend) else load_base(base or card["base"]["name"])
    check_trainable(backend)
    check_base(card, backend)
    tok = backend.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else min(backend.eos_token_ids)
    stage("data")
    screen = Screen(policy if policy is not None else pii_policy(pii))
    domain = load_eval_data(data, tok, config.seq_len, screen)
    general = text_examples(tok, general_text(general_data), config.seq_len)
    grads = {n: p.requires_grad for n, p in backend.model.named_parameters()}
    with peft_quietly():
        model = PeftModel.from_pretrained(backend.model, folder, adapter_name=name)
    try:
        stage("measure")
        figures = compare(model, domain.held_out, general, pad_id, config.eval_tokens)
        table = None
        if questions is not None:
            stage("answer")
            table = answer_with_adapter(
                backend, model, name, questions, policy=screen.policy, audit=audit, on_answer=on_answer
            )
            figures["questions"] = summary(table)
    finally:
        model.unload()  # the base module as it was, with no LoRA layers
        for n, p in backend.model.named_parameters():
            p.requires_grad_(grads.get(n, True))
    info = base_info(backend)
    described = {
        "kind": domain.kind,
        "sources": [{"path": s.path, "bytes": s.bytes, "sha256": s.sha256} for s in domain.sources],
        "sequences": len(domain.held_out),
        "truncated_sequences": domain.truncated,
        "pii": domain.pii,
    }
    base_named = {"name": info["name"], "weights_sha256": info["weights_sha256"]}
    return Evaluation(name, base_named, described, figures, table, round(time.perf_counter() - started, 3))
