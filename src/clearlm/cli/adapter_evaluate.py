"""``clearlm adapters evaluate``: a stored adapter measured again on new data, here or as a Ray task."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from clearlm.cli.common import console, err_console
from clearlm.cli.generate import _audit_log
from clearlm.cli.tune import (
    ADAPTER,
    ANSWER_TOKENS,
    AUDIT_DB,
    KB,
    KB_DB,
    PASSAGES,
    STAGES,
    figure_tables,
    question_set,
)
from clearlm.errors import InvalidInputError


def evaluate(
    name: str = ADAPTER,
    data: Path = typer.Option(..., "--data", help="held-out domain data: documents or a chat .jsonl file"),
    base: str | None = typer.Option(
        None, "--base", help="the base model (default: the one on the adapter's card)"
    ),
    general_data: Path | None = typer.Option(
        None, "--general-data", help="general text for the forgetting check (default: a packaged sample)"
    ),
    pii: str = typer.Option("redact", "--pii", help="personal data in the data: redact or refuse"),
    policy: Path | None = typer.Option(
        None, "--policy", help="a policy YAML whose input stage screens the data"
    ),
    questions: Path | None = typer.Option(
        None,
        "--questions",
        help="JSONL/YAML of {question, answer, key_phrases}: answered four ways and scored",
    ),
    kb: str | None = KB,
    kb_db: str | None = KB_DB,
    passages: int | None = PASSAGES,
    answer_tokens: int | None = ANSWER_TOKENS,
    audit_db: str | None = AUDIT_DB,
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="evaluate as a Ray task on this cluster (HOST:6379, or auto)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the evaluation as JSON"),
) -> None:
    """Measure a trained adapter on data it was not trained on: perplexity of the base and the adapted
    model on that data and on general text, and with --questions the four-way answers. Nothing is stored:
    print it, or keep the --json output."""
    from transformers.utils import logging as hf_logging

    from clearlm.govern import load_policy

    asked = question_set(None, questions, kb, kb_db, passages, answer_tokens)  # bad input: before loading
    if ray_address is not None:
        from clearlm.tune.ray_job import evaluate_on_ray

        if asked is not None:
            raise InvalidInputError(
                "--questions are answered here, not on Ray: drop --ray-address or --questions"
            )
        with err_console.status(f"evaluating {escape(name)} as a Ray task on {escape(ray_address)} ..."):
            done = evaluate_on_ray(
                name, data, address=ray_address, base=base, general_data=general_data, pii=pii,
                policy_yaml=policy.read_text(encoding="utf-8") if policy else None,
            )  # fmt: skip
        _show(done, as_json)
        return
    from clearlm.tune.evaluation import evaluate_adapter

    hf_logging.disable_progress_bar()
    try:
        done = evaluate_adapter(
            name,
            data,
            base=base,
            general_data=general_data,
            pii=pii,
            policy=load_policy(policy) if policy else None,
            questions=asked,
            audit=_audit_log(audit_db) if asked is not None else None,
            on_stage=lambda stage: err_console.print(f"[dim]{STAGES.get(stage, stage)} ...[/]"),
            on_answer=lambda n, total: err_console.print(f"[dim]  answered {n}/{total}[/]"),
        )
    finally:
        if asked is not None and asked.knowledge_base is not None:
            asked.knowledge_base.close()
    _show(done, as_json)


def _show(done, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(done.to_dict()))
        return
    d = done.data
    console.print(
        f"adapter [bold]{escape(done.adapter)}[/] over {escape(done.base['name'])}: {d['sequences']} "
        f"sequences ({d['kind']}) from {len(d['sources'])} file(s), {done.seconds:.0f} s"
    )
    figure_tables(done.figures)
