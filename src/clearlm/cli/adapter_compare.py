"""``clearlm explain --adapter NAME --compare [--against OTHER]``: the turn's answer attributed under the
base (or base + OTHER) and the tuned model (``clearlm.tune.compare_turn``), printed as two tables: per
generated token, and the prompt's tokens whose attribution moved most."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clearlm.tune.compare import MEASURE, AdapterComparison


def _token(text: str) -> str:
    return escape(repr(text)[1:-1])


def _num(value: float, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_comparison(c: AdapterComparison, console: Console) -> None:
    """Print a comparison: a header, one row per generated token (its probability under each model, the
    distance of its two attribution rows and each model's top source), then the sources that moved most
    (summed shares under each model and their difference, signed)."""
    b, t = c.base, c.tuned
    ref = "base" if c.reference is None else c.reference  # the columns' name for the model compared with
    console.print(
        f"[bold]{escape(t.model)}[/] against [bold]{escape(b.model)}[/]: {escape(t.method)} attribution, "
        f"{t.granularity} level\n[dim]distance: {escape(MEASURE)}[/]"
    )
    steps = Table(title="Per generated token", title_justify="left")
    for col in (
        "step",
        "token",
        f"p {ref}",
        "p tuned",
        "distance",
        f"top source ({ref})",
        "top source (tuned)",
    ):
        steps.add_column(col, justify="right" if col.startswith(("p ", "dist", "step")) else "left")
    for i, token in enumerate(t.target_tokens):
        tops = []
        for r in (b, t):
            top = r.top_sources(i, 1)
            tops.append(f"{_token(r.source_tokens[top[0][0]])} ({top[0][1]:+.3g})" if top else "-")
        steps.add_row(
            str(i),
            _token(token),
            _num(float(b.target_probs[i])),
            _num(float(t.target_probs[i])),
            _num(float(c.distance[i])),
            *tops,
        )
    console.print(steps)
    moved = Table(
        title="Prompt tokens whose attribution moved most (shares summed over the generated tokens)"
    )
    moved.title_justify = "left"
    for col in ("token", ref, "tuned", "moved"):
        moved.add_column(col, justify="left" if col == "token" else "right")
    for m in c.top_moved:
        colour = "red" if m["moved"] > 0 else "blue"
        moved.add_row(
            _token(m["token"]), _num(m["base"]), _num(m["tuned"]), f"[{colour}]{m['moved']:+.3f}[/]"
        )
    console.print(moved)
    console.print(f"[dim]mean distance {float(c.distance.mean()):.3f} over {len(c.distance)} tokens[/]")
    if c.warning:
        console.print(f"[yellow]note:[/] {escape(c.warning)}")
