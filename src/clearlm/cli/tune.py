"""``clearlm tune`` (train a LoRA adapter) and ``clearlm adapters`` (list, show, remove, merge)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clearlm.cli.common import console, err_console
from clearlm.cli.generate import _audit_log
from clearlm.errors import InvalidInputError

app = typer.Typer(help="LoRA adapters: list, show, evaluate, remove and export.", no_args_is_help=True)
STAGES = {
    "load": "loading the base",
    "data": "reading, screening (PII) and tokenizing the data",
    "measure": "measuring perplexity",
    "save": "writing the adapter",
    "answer": "answering the questions (base, tuned; with the knowledge base too when given)",
}
ADAPTER = typer.Argument(..., help="the adapter's name")
# the four-way questions' options (clearlm tune, clearlm adapters evaluate)
KB = typer.Option(None, "--kb", help="knowledge base for the questions' +kb set-ups")
KB_DB = typer.Option(
    None, "--kb-db", help="PostgreSQL URL holding the knowledge base (default: the embedded index)"
)
PASSAGES = typer.Option(None, "--passages", help="passages retrieved per question (3)")
ANSWER_TOKENS = typer.Option(None, "--answer-tokens", help="most tokens per answer (64)")
AUDIT_DB = typer.Option(
    None, "--audit-db", help="audit database URL for the answers (default: SQLite under $CLEARLM_HOME)"
)


def tune(
    name: str = typer.Argument(..., help="the new adapter's name (stored under $CLEARLM_HOME/adapters)"),
    base: str = typer.Option(
        "qwen2.5-0.5b-instruct", "--base", help="base model: catalog name, folder or .gguf"
    ),
    data: Path = typer.Option(..., "--data", help="documents (file or folder) or a chat .jsonl file"),
    config: Path | None = typer.Option(
        None, "--config", help="YAML file of settings (see clearlm.tune.config)"
    ),
    eval_data: Path | None = typer.Option(
        None, "--eval-data", help="held-out domain data (default: 10% of --data)"
    ),
    general_data: Path | None = typer.Option(
        None, "--general-data", help="general text for the forgetting check (default: a packaged sample)"
    ),
    pii: str = typer.Option("redact", "--pii", help="personal data in the training data: redact or refuse"),
    policy: Path | None = typer.Option(
        None, "--policy", help="a policy YAML whose input stage screens the data"
    ),
    steps: int | None = typer.Option(None, "--steps", help="optimiser steps (overrides the config)"),
    rank: int | None = typer.Option(None, "--rank", help="LoRA rank (overrides the config)"),
    seq_len: int | None = typer.Option(None, "--seq-len", help="tokens per sequence (overrides the config)"),
    learning_rate: float | None = typer.Option(None, "--learning-rate", help="peak AdamW learning rate"),
    seed: int | None = typer.Option(None, "--seed", help="seed of data order, initialisation and dropout"),
    backend: str = typer.Option("torch", "--backend", help="only torch can train"),
    restart: bool = typer.Option(False, "--restart", help="discard a checkpoint of an interrupted run"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an adapter of the same name"),
    questions: Path | None = typer.Option(
        None,
        "--questions",
        help="JSONL/YAML of {question, answer, key_phrases}: after training, answered by the base and the "
        "tuned model (and with --kb by both with the knowledge base) and scored",
    ),
    kb: str | None = KB,
    kb_db: str | None = KB_DB,
    passages: int | None = PASSAGES,
    answer_tokens: int | None = ANSWER_TOKENS,
    audit_db: str | None = AUDIT_DB,
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="train as a Ray task on this cluster (HOST:6379, or auto); the adapter is stored here",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Train a LoRA adapter: continued pretraining on documents, or supervised fine-tuning on chat JSONL.
    With --questions, the report also holds the four-way question answering (base, tuned, base + KB,
    tuned + KB) through the governed pipeline."""
    from transformers.utils import logging as hf_logging

    from clearlm.govern import load_policy
    from clearlm.tune import load_config
    from clearlm.tune import tune as run_tune
    from clearlm.tune.base import load_base

    settings = load_config(config).with_overrides(
        steps=steps, rank=rank, seq_len=seq_len, learning_rate=learning_rate, seed=seed
    )
    asked = question_set(config, questions, kb, kb_db, passages, answer_tokens)  # bad input: before loading
    if ray_address is not None:
        from clearlm.tune.ray_job import tune_on_ray

        if asked is not None:
            raise InvalidInputError(
                "--questions are answered here, not on Ray: drop --ray-address or --questions"
            )
        with err_console.status(f"training {escape(name)} as a Ray task on {escape(ray_address)} ..."):
            result = tune_on_ray(
                name, base, data, settings, address=ray_address, eval_data=eval_data, general_data=general_data,
                pii=pii, policy_yaml=policy.read_text(encoding="utf-8") if policy else None, overwrite=overwrite,
            )  # fmt: skip
        _show(name, result, as_json)
        return
    hf_logging.disable_progress_bar()  # the progress below says what is happening
    with err_console.status(f"loading {escape(base)} (torch) ..."):
        model = load_base(base, backend)
    screen_policy = load_policy(policy) if policy else None
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("{task.fields[speed]} tok/s"),
        TimeElapsedColumn(),
        console=err_console,
    )
    task = progress.add_task("training", total=settings.steps, loss="-", speed="-")

    def on_stage(stage: str) -> None:
        if stage == "train":
            progress.start()
            return
        if progress.live.is_started:
            progress.stop()
        err_console.print(f"[dim]{STAGES.get(stage, stage)} ...[/]")

    def on_step(info) -> None:
        progress.update(task, completed=info.step, loss=f"{info.loss:.3f}", speed=f"{info.tokens_per_s:.0f}")

    def on_answer(done: int, total: int) -> None:
        err_console.print(f"[dim]  answered {done}/{total}[/]")

    try:
        result = run_tune(
            name,
            model,
            data,
            settings,
            eval_data=eval_data,
            general_data=general_data,
            pii=pii,
            policy=screen_policy,
            restart=restart,
            overwrite=overwrite,
            on_stage=on_stage,
            on_step=on_step,
            questions=asked,
            audit=_audit_log(audit_db) if asked is not None else None,
            on_answer=on_answer,
        )
    finally:
        if progress.live.is_started:
            progress.stop()
        if asked is not None and asked.knowledge_base is not None:
            asked.knowledge_base.close()
    _show(name, result, as_json)


def _show(name: str, result, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(result.card))
        return
    console.print(f"adapter [bold]{escape(name)}[/] written to {escape(str(result.path))}")
    _figures(result.card)


def question_set(config, questions, kb, kb_db, passages, answer_tokens):
    """The questions to ask after training (options over the config file's keys), or None; the knowledge
    base opened (the caller closes it)."""
    from clearlm.tune.answers import QuestionSet
    from clearlm.tune.config import load_question_settings
    from clearlm.tune.questions import load_questions

    found = load_question_settings(config)
    path = questions or found.get("questions")
    kb = kb or found.get("knowledge_base")
    if path is None:
        if kb is not None:
            from clearlm.errors import InvalidInputError

            raise InvalidInputError("--kb is for the questions: give --questions FILE too")
        return None
    listed = load_questions(path)
    k = passages if passages is not None else found.get("passages", 3)
    tokens = answer_tokens if answer_tokens is not None else found.get("answer_tokens", 64)
    QuestionSet(tuple(listed), None, k, tokens)  # checks k and tokens before a knowledge base opens
    knowledge_base = None
    if kb is not None:
        from clearlm.knowledge import KnowledgeBase

        knowledge_base = KnowledgeBase.open(kb, url=kb_db)
    return QuestionSet(tuple(listed), knowledge_base, k, tokens)


def _fmt(value, pattern="{:.2f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _figures(card: dict) -> None:
    f = card["figures"]
    figure_tables(f)
    console.print(
        f"{f['steps']} steps, final loss {_fmt(f['final_loss'], '{:.3f}')}, "
        f"{_fmt(f['tokens_per_s'], '{:.0f}')} tokens/s, {_fmt(f['train_seconds'], '{:.0f}')} s"
        + (f" (resumed at step {f['resumed_from']})" if f.get("resumed_from") else "")
    )


def figure_tables(f: dict) -> None:
    """The perplexity table (base before, adapted after) and, when asked, the four-way questions' means."""
    table = Table(title="perplexity before / after")
    for col in ("text", "before", "after", "change"):
        table.add_column(col)
    for key, label in (("domain", "held-out domain"), ("general", "general (forgetting)")):
        m = f.get(key) or {}
        table.add_row(
            label,
            _fmt((m.get("before") or {}).get("perplexity")),
            _fmt((m.get("after") or {}).get("perplexity")),
            _fmt(m.get("change"), "{:+.1%}"),
        )
    console.print(table)
    if f.get("questions"):
        q = f["questions"]
        table = Table(
            title=f"{q['questions']} domain questions (knowledge base {q['knowledge_base'] or 'none'})"
        )
        table.add_column("score")
        for setup in q["setups"]:
            table.add_column(setup, justify="right")
        for key, label in (("f1", "mean token F1"), ("key_recall", "mean key recall")):
            table.add_row(label, *(_fmt(q["means"][s][key]) for s in q["setups"]))
        console.print(table)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The adapters under $CLEARLM_HOME/adapters."""
    from clearlm.tune import list_adapters

    rows = list_adapters()
    if as_json:
        console.print_json(json.dumps(rows))
        return
    if not rows:
        console.print("no adapters yet: train one with `clearlm tune NAME --data PATH`")
        return
    table = Table()
    for col in ("name", "base", "data", "domain ppl change", "general ppl change", "size", "created"):
        table.add_column(col)
    for r in rows:
        f = r["figures"]
        table.add_row(
            escape(r["name"]),
            escape(r["base"]),
            r["kind"],
            _fmt((f.get("domain") or {}).get("change"), "{:+.1%}"),
            _fmt((f.get("general") or {}).get("change"), "{:+.1%}"),
            f"{r['bytes'] / 1e6:.1f} MB",
            r["created"],
        )
    console.print(table)


@app.command()
def show(
    name: str = ADAPTER, as_json: bool = typer.Option(False, "--json", help="print the card as JSON")
) -> None:
    """An adapter's card: data sources and hashes, base and hash, hyperparameters, figures, limitations."""
    from clearlm.tune import read_card
    from clearlm.tune.card import card_markdown

    card = read_card(name)
    if as_json:
        console.print_json(json.dumps(card))
        return
    console.print(escape(card_markdown(card)))


@app.command()
def remove(name: str = ADAPTER) -> None:
    """Delete an adapter (and any checkpoints of its runs)."""
    from clearlm.tune import remove_adapter

    remove_adapter(name)
    console.print(f"removed adapter [bold]{escape(name)}[/]")


@app.command()
def export(
    name: str = ADAPTER,
    dest: Path = typer.Argument(..., help="where to write: a folder (transformers) or a .gguf file (gguf)"),
    base: str | None = typer.Option(
        None, "--base", help="the base model (default: the one on the adapter's card)"
    ),
    fmt: str = typer.Option(
        "transformers", "--format", help="transformers (safetensors + tokenizer) or gguf (llama.cpp)"
    ),
    outtype: str = typer.Option(
        "f16", "--outtype", help="gguf: the tensors' type: f16 (default), f32, bf16 or q8_0"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace DEST if it exists"),
) -> None:
    """Merge the adapter into its base and write a transformers checkpoint (safetensors + tokenizer), or
    with --format gguf one GGUF file for llama.cpp (`clearlm serve --backend llamacpp --model DEST`)."""
    from transformers.utils import logging as hf_logging

    from clearlm.errors import InvalidInputError
    from clearlm.tune import read_card
    from clearlm.tune.base import load_base
    from clearlm.tune.export import export_gguf, export_merged

    if fmt not in ("transformers", "gguf"):
        raise InvalidInputError(f"unknown --format {fmt!r}: choose transformers or gguf")
    hf_logging.disable_progress_bar()
    card = read_card(name)
    base = base or card["base"]["name"]
    if fmt == "gguf":
        from clearlm.tune import gguf

        if outtype not in gguf.OUTTYPES:
            raise InvalidInputError(
                f"unknown --outtype {outtype!r}: choose one of {', '.join(gguf.OUTTYPES)}"
            )
        gguf.check_dest(dest, overwrite)
        gguf.find_converter()  # before loading the base
        with err_console.status(f"loading {escape(base)}, merging {escape(name)}, converting to GGUF ..."):
            path = export_gguf(name, load_base(base), dest, outtype, overwrite)
        console.print(f"merged {escape(base)} + {escape(name)} written to {escape(str(path))} ({outtype})")
        return
    if dest.exists() and not overwrite:
        raise InvalidInputError(f"{dest} exists: choose another folder, or pass --overwrite")
    with err_console.status(f"loading {escape(base)} and merging {escape(name)} ..."):
        path = export_merged(name, load_base(base), dest, overwrite)
    console.print(f"merged {escape(base)} + {escape(name)} written to {escape(str(path))}")
