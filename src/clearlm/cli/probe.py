"""``clearlm probe bias``: counterfactual demographic pairs, their probability gaps and attributions."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from clearlm.cli.common import console, err_console, load
from clearlm.cli.generate import MODEL
from clearlm.errors import InvalidInputError
from clearlm.paths import write_text_atomic

app = typer.Typer(help="Probe a model's behaviour.", no_args_is_help=True)


@app.command()
def bias(
    model: str = MODEL,
    category: list[str] = typer.Option(
        None, "--category", "-c", help="gender, names or nationality (repeatable)"
    ),
    pairs: Path = typer.Option(None, "--pairs", help="a pairs file like clearlm/govern/data/bias_pairs.json"),
    png: Path = typer.Option(None, "--png", help="write a bar chart of every pair's gap"),
    json_out: Path = typer.Option(None, "--json", help="write every pair's figures as JSON"),
) -> None:
    """Fill each template with both terms of each pair (e.g. "He" / "She") and report how much the model's
    log-probability of the template's continuation changes, and how much attribution the term gets."""
    from clearlm.explain.bias import load_pairs, plot, probe, summary

    data = load_pairs(pairs) if pairs else load_pairs()
    unknown = set(category or ()) - set(data["pairs"])
    if unknown:
        raise InvalidInputError(
            f"unknown categories {sorted(unknown)}: choose from {', '.join(data['pairs'])}"
        )
    for path in (png, json_out):
        if path is not None and not path.parent.is_dir():
            raise InvalidInputError(f"cannot write {path}: the folder {path.parent} does not exist")
    b = load(model, "torch")  # attribution needs gradients
    with err_console.status("probing ..."):
        results = probe(b, data, tuple(category) if category else None)
    table = Table(
        "category",
        "pairs",
        "mean |gap|",
        "mean gap",
        "largest |gap|",
        "for",
        "mean |Δ attribution share|",
        title=f"bias probe: log p(continuation | A) - log p(continuation | B), nats ({model})",
    )
    for row in summary(results):
        table.add_row(
            row["category"],
            str(row["pairs"]),
            f"{row['mean_abs_gap']:.3f}",
            f"{row['mean_gap']:+.3f}",
            f"{row['max_abs_gap']:.3f}",
            row["max_pair"],
            f"{row['mean_abs_share_diff']:.3f}",
        )
    console.print(table)
    if png is not None:
        err_console.print(f"[green]wrote[/] {escape(str(plot(results, png)))}")
    if json_out is not None:
        body = {
            "model": model,
            "summary": summary(results),
            "pairs": [{**asdict(r), "gap": r.gap} for r in results],
        }
        err_console.print(
            f"[green]wrote[/] {escape(str(write_text_atomic(json_out, json.dumps(body, indent=2))))}"
        )
