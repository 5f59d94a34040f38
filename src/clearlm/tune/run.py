"""One tuning run end to end: load the base, screen and tokenize the data, check memory, measure, train
(with checkpoints and resumption), measure again, write the adapter, its card and its report atomically."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from clearlm.errors import InvalidInputError
from clearlm.tune import adapters
from clearlm.tune.answers import QuestionSet, answer_with_adapter, summary
from clearlm.tune.base import base_info, check_trainable, load_base, peft_quietly
from clearlm.tune.card import build_card, card_markdown
from clearlm.tune.config import TuneConfig
from clearlm.tune.data import load_data
from clearlm.tune.evaluate import base_only, compare, general_text, text_examples
from clearlm.tune.memory import check_memory, estimate_memory
from clearlm.tune.screen import Screen, pii_policy
from clearlm.tune.train import StepInfo, train


@dataclass(frozen=True, slots=True)
class TuneResult:
    """The adapter's folder, its card (dict) and its report (dict: losses, perplexities, timings)."""

    path: Path
    card: dict
    report: dict


def tune(
    name: str,
    base,
    data: str | Path,
    config: TuneConfig | None = None,
    *,
    eval_data: str | Path | None = None,
    general_data: str | Path | None = None,
    pii: str = "redact",
    policy=None,
    restart: bool = False,
    overwrite: bool = False,
    intended_use: str | None = None,
    available_memory: int | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[StepInfo], None] | None = None,
    questions: QuestionSet | None = None,
    audit=None,
    on_answer: Callable[[int, int], None] | None = None,
) -> TuneResult:
    """Train LoRA adapter ``name`` on ``base`` (a model name/path for :func:`clearlm.tune.base.load_base`,
    or a loaded torch backend, which is left as it was) with the data at ``data``.

    ``pii``: "redact" or "refuse" personal data (``policy``: a ``clearlm.govern.Policy`` whose input stage
    is used instead). ``eval_data``: held-out domain data (default: a ``config.held_out`` share of the
    data). ``general_data``: general text for the forgetting check (default: the packaged sample).
    A checkpoint left by an interrupted run of ``name`` with the same base, data and settings is resumed;
    ``restart`` discards it. ``on_stage`` gets "load", "data", "measure", "train", "save";
    ``on_step`` each :class:`~clearlm.tune.train.StepInfo`.

    ``questions``: after training, each is answered by the base and the tuned model, with and without the
    question set's knowledge base, through the pipeline under the same policy as the data (recorded in
    ``audit``, a ``clearlm.store.AuditLog``, when given), and scored (:mod:`clearlm.tune.answers`): the
    table goes into the report (``report["questions"]``) and its means into the card
    (``figures["questions"]``). ``on_stage`` then also gets "answer", and ``on_answer(done, total)``
    follows the answers.

    Raises:
        InvalidInputError: bad name, existing adapter (without ``overwrite``), bad data (see
            :func:`clearlm.tune.data.load_data`), a checkpoint of a different run, a knowledge base
            without documents for the questions.
        PolicyViolationError: personal data with ``pii="refuse"``.
        InsufficientMemoryError: the estimate exceeds ``available_memory`` (default: what is free).
        BackendUnavailableError: a base that cannot be trained.
    """
    from peft import LoraConfig, get_peft_model

    config = config or TuneConfig()
    adapters.check_name(name)
    if adapters.adapter_dir(name).exists() and not overwrite:
        raise adapters.AdapterExistsError(f"adapter {name!r} exists: choose another name, or remove it first")
    stage = on_stage or (lambda s: None)
    check_questions(questions)
    if isinstance(base, str):
        stage("load")
    backend = load_base(base) if isinstance(base, str) else base
    check_trainable(backend)
    tok = backend.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else min(backend.eos_token_ids)
    stage("data")
    screen = Screen(policy if policy is not None else pii_policy(pii))
    training = load_data(data, tok, config.seq_len, screen, config.held_out, eval_data)
    general = text_examples(tok, general_text(general_data), config.seq_len)
    estimate = estimate_memory(backend.model, config)
    check_memory(estimate, config, available_memory)
    info = base_info(backend)
    work = _work_dir(name, info, training, config, restart)
    grads = {n: p.requires_grad for n, p in backend.model.named_parameters()}
    torch.manual_seed(config.seed)
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        task_type="CAUSAL_LM",
    )
    try:
        with peft_quietly():
            model = get_peft_model(backend.model, lora)
    except ValueError as exc:
        raise InvalidInputError(f"cannot put LoRA on {backend.name}: {exc}") from None
    try:
        stage("measure")
        with torch.random.fork_rng():  # measuring draws nothing, but keep the training stream untouched
            before = _measure_base(model, training.held_out, general, pad_id, config.eval_tokens)
        stage("train")
        result = train(model, training.train, config, pad_id, work, on_step)
        stage("measure")
        figures = compare(model, training.held_out, general, pad_id, config.eval_tokens, before)
        figures.update(
            steps=config.steps,
            final_loss=result.losses[-1],
            tokens=result.tokens,
            train_seconds=result.seconds,
            tokens_per_s=result.tokens_per_s,
            resumed_from=result.resumed_from,
            memory_estimate=estimate.to_dict(),
        )
        report = {"losses": result.losses, "figures": figures}
        if questions is not None:
            stage("answer")
            qa = answer_with_adapter(
                backend, model, name, questions, policy=screen.policy, audit=audit, on_answer=on_answer
            )
            figures["questions"] = summary(qa)
            report["questions"] = qa
        card = build_card(name, info, training, config, figures, intended_use)
        stage("save")

        def write(folder: Path) -> None:
            model.save_pretrained(folder)
            (folder / adapters.CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
            (folder / adapters.REPORT).write_text(json.dumps(report, indent=2), encoding="utf-8")
            (folder / "README.md").write_text(card_markdown({**card, "report": report}), encoding="utf-8")

        path = adapters.write_adapter(name, write, overwrite)
        shutil.rmtree(work, ignore_errors=True)
    finally:
        model.unload()  # the base module as it was, with no LoRA layers
        for n, p in backend.model.named_parameters():
            p.requires_grad_(grads.get(n, True))
    return TuneResult(path, card, report)


def check_questions(questions: QuestionSet | None) -> None:
    """Before training: the questions' knowledge base must hold documents to answer from."""
    kb = questions.knowledge_base if questions is not None else None
    if kb is not None and not kb.sources():
        raise InvalidInputError(
            f"the knowledge base {kb.name!r} holds no documents to answer the questions from: add some first "
            "(clearlm kb add), or leave the knowledge base out"
        )


def _measure_base(model, domain, general, pad_id, max_tokens) -> dict:
    from clearlm.tune.evaluate import perplexity

    with base_only(model):
        return {
            "domain": perplexity(model, domain, pad_id, max_tokens),
            "general": perplexity(model, general, pad_id, max_tokens),
        }


def _work_dir(name: str, info: dict, training, config: TuneConfig, restart: bool) -> Path:
    """The run's checkpoint folder, keyed by a fingerprint of base, data and settings."""
    fingerprint = hashlib.sha256(
        json.dumps(
            [info["weights_sha256"], [s.sha256 for s in training.sources], config.to_dict()], sort_keys=True
        ).encode()
    ).hexdigest()
    work = adapters.work_dir(name)
    stamp = work / "run.json"
    if work.exists() and (restart or not stamp.is_file()):
        shutil.rmtree(work)
    if stamp.is_file() and json.loads(stamp.read_text())["fingerprint"] != fingerprint:
        raise InvalidInputError(
            f"a checkpoint of an earlier run of {name!r} with other data or settings exists: "
            "pass --restart to discard it, or give the same data and settings to resume it"
        )
    work.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint}), encoding="utf-8")
    return work
