"""``clearlm policy check`` and ``clearlm scan``: validate a policy file, see what its scanners find."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from clearlm.cli.common import console, err_console

policy_app = typer.Typer(help="Validate governance policy files.", no_args_is_help=True)
POLICY = typer.Option(None, "--policy", help="a YAML policy file (see `clearlm policy check`)")


@policy_app.command("check")
def check(file: Path = typer.Argument(..., help="the YAML policy file")) -> None:
    """Validate a policy: its schema (errors name the key, e.g. input[1].threshold) and that every scanner
    can be built (models load, keys are set, patterns compile)."""
    from clearlm.govern import load_policy

    policy = load_policy(file)
    with err_console.status("building the scanners ..."):
        policy.build_all()
    table = Table("stage", "#", "scanner", "threshold", "action", title=f"policy {policy.name!r} is valid")
    for stage in ("input", "output"):
        for i, rule in enumerate(policy.rules(stage)):
            table.add_row(stage, str(i), rule.scanner, f"{rule.threshold:g}", rule.action.value)
    console.print(table)
    s = policy.spec
    console.print(
        f"on_block: {s.on_block}; store_redacted: {s.store_redacted}; refusal: {escape(repr(s.refusal))}"
    )


def scan(
    text: str = typer.Argument(..., help="the text to scan"),
    policy: Path = typer.Option(..., "--policy", help="the YAML policy file"),
    stage: str = typer.Option("input", "--stage", help="input or output"),
) -> None:
    """Show what each scanner of a policy finds in a text, the action taken, and the text that results."""
    from clearlm.errors import InvalidInputError
    from clearlm.govern import ScanContext, load_policy

    if stage not in ("input", "output"):
        raise InvalidInputError(f"--stage must be input or output, got {stage!r}")
    p = load_policy(policy)
    with err_console.status("scanning ..."):
        decision = p.check(text, ScanContext(stage, "user" if stage == "input" else "assistant"))
    table = Table("scanner", "risk", "action", "findings")
    for r in decision.results:
        found = ", ".join(
            f"{f.type} {escape(repr(text[f.start : f.end])) if f.end > f.start else ''} ({f.score:.2f})".replace(
                "  ", " "
            )
            for f in r.findings
        )
        table.add_row(r.scanner, f"{r.risk:.2f}", r.action.value, found or "-")
    console.print(table)
    console.print(f"[bold]action:[/] {decision.action.value}")
    console.print("[bold]text:[/] " + escape(p.spec.refusal if decision.blocked else decision.text))


def card(
    model: str = typer.Argument(..., help="a catalog model name (see `clearlm models list`)"),
    output: Path = typer.Option(
        None, "--output", "-o", help="folder to write MODEL.card.md and MODEL.card.json"
    ),
) -> None:
    """Write a model card (Markdown and JSON): source, hash, license, intended use, limitations, and the
    figures this project measured on the model."""
    import json

    from clearlm.errors import InvalidInputError
    from clearlm.govern.cards import card_markdown, model_card
    from clearlm.paths import write_text_atomic

    data = model_card(model)
    markdown = card_markdown(data)
    if output is None:
        sys.stdout.write(markdown)
        return
    if not output.is_dir():
        raise InvalidInputError(f"--output must be an existing folder, got {output}")
    for suffix, text in ((".card.md", markdown), (".card.json", json.dumps(data, indent=2))):
        path = write_text_atomic(output / f"{model}{suffix}", text)
        err_console.print(f"[green]wrote[/] {escape(str(path))}")
