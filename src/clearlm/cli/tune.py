"""``clearlm tune`` (train a LoRA adapter) and ``clearlm adapters`` (list, show, remove, merge)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from clearlm.cli.common import console, err_console

app = typer.Typer(help="LoRA adapters: list, show, remove, merge and export.", no_args_is_help=True)
STAGES = {
    "load": "loading the base",
    "data": "reading, screening (PII) and tokenizing the data",
    "measure": "measuring perplexity",
    "save": "writing the adapter",
}
ADAPTER = typer.Argument(..., help="the adapter's name")


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
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Train a LoRA adapter: continued pretraining on documents, or supervised fine-tuning on chat JSONL."""
    from transformers.utils import logging as hf_logging

    from clearlm.govern import load_policy
    from clearlm.tune import load_config
    from clearlm.tune import tune as run_tune
    from clearlm.tune.base import load_base

    settings = load_config(config).with_overrides(
        steps=steps, rank=rank, seq_len=seq_len, learning_rate=learning_rate, seed=seed
    )
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
        )
    finally:
        if progress.live.is_started:
            progress.stop()
    if as_json:
        console.print_json(json.dumps(result.card))
        return
    console.print(f"adapter [bold]{escape(name)}[/] written to {escape(str(result.path))}")
    _figures(result.card)


def _fmt(value, pattern="{:.2f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _figures(card: dict) -> None:
    f = card["figures"]
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
    console.print(
        f"{f['steps']} steps, final loss {_fmt(f['final_loss'], '{:.3f}')}, "
        f"{_fmt(f['tokens_per_s'], '{:.0f}')} tokens/s, {_fmt(f['train_seconds'], '{:.0f}')} s"
        + (f" (resumed at step {f['resumed_from']})" if f.get("resumed_from") else "")
    )


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
    dest: Path = typer.Argument(..., help="the folder to write the merged transformers checkpoint to"),
    base: str | None = typer.Option(
        None, "--base", help="the base model (default: the one on the adapter's card)"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace DEST if it exists"),
) -> None:
    """Merge the adapter into its base and write a transformers checkpoint (safetensors + tokenizer)."""
    from transformers.utils import logging as hf_logging

    from clearlm.tune import read_card
    from clearlm.tune.base import load_base
    from clearlm.tune.export import export_merged

    hf_logging.disable_progress_bar()
    card = read_card(name)
    base = base or card["base"]["name"]
    if dest.exists() and not overwrite:
        from clearlm.errors import InvalidInputError

        raise InvalidInputError(f"{dest} exists: choose another folder, or pass --overwrite")
    with err_console.status(f"loading {escape(base)} and merging {escape(name)} ..."):
        path = export_merged(name, load_base(base), dest, overwrite)
    console.print(f"merged {escape(base)} + {escape(name)} written to {escape(str(path))}")
