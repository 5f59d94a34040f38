"""Render an attribution result in a terminal with rich: shaded prompt, per-target table, small matrix."""

from __future__ import annotations

import math

import numpy as np
from rich.color import Color
from rich.console import Console
from rich.style import Style
from rich.table import Table
from rich.text import Text

from clearlm.explain.result import Attribution

MATRIX_LIMIT = 40
_CELL_WIDTH = 8  # columns a matrix cell needs to stay readable
_WHITE = (255, 255, 255)
_RED = (214, 39, 40)
_BLUE = (31, 100, 200)


def render_terminal(
    result: Attribution, console: Console, *, top_k: int = 5, show_template: bool = False
) -> None:
    """Print ``result`` to ``console``.

    Prints, in order: a header (method, model, granularity and, for integrated gradients, the largest
    completeness gap in percent); the prompt's visible tokens as one paragraph (" ¦ " between messages),
    each shaded by its total attribution (sum over targets of |score|, NaN ignored, normalised so the
    largest is 1; red/blue by the sign of the summed score for signed methods, one colour for
    non-negative ones); a table with one row
    per target (step, token, probability, its ``top_k`` sources as ``token (score)``); and, when at most
    40 sources are visible and there are at most 40 targets, a matrix (rows targets, columns visible
    sources, cells shaded by the score over the row's largest |score|, values to 2 significant digits).

    Args:
        result: the attribution to show; scores are in the method's units (see ``Attribution``).
        console: where to print; token text is never interpreted as rich markup.
        top_k: how many sources to list per target (>= 0).
        show_template: also show special tokens and chat-template scaffolding.

    Raises:
        ValueError: if ``top_k`` is negative.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    signed = result.signed
    visible = result.visible_sources(show_template)
    console.print(_header(result))
    console.print(_prompt_paragraph(result, visible, signed, show_template))
    console.print(_targets_table(result, top_k, show_template, signed))
    fits = (len(visible) + 1) * _CELL_WIDTH <= console.width
    if fits and 0 < len(visible) <= MATRIX_LIMIT and 0 < result.n_targets <= MATRIX_LIMIT:
        console.print(_matrix(result, visible, signed))


def _show(token: str) -> str:
    """A token as one line of text: newlines become ⏎, tabs ⇥, spaces stay spaces."""
    return token.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎").replace("\t", "⇥")


def _shade(value: float, signed: bool) -> Style:
    """Background for ``value`` in [-1, 1]: white to red (positive) or blue (negative)."""
    if math.isnan(value) or abs(value) < 0.02:
        return Style()
    target = _BLUE if signed and value < 0 else _RED
    a = min(abs(value), 1.0) * 0.85
    rgb = [round(w + (c - w) * a) for w, c in zip(_WHITE, target, strict=True)]
    return Style(color="black", bgcolor=Color.from_rgb(*rgb))


def _fmt(value: float, signed: bool, digits: int = 3) -> str:
    return f"{value:+.{digits}g}" if signed else f"{value:.{digits}g}"


def _header(result: Attribution) -> Text:
    header = Text()
    header.append(result.method, style="bold")
    header.append(f"  model {result.model}  {result.granularity}-level")
    if result.params:
        shown = {k: v for k, v in result.params.items() if v is not None}
        header.append("  " + ", ".join(f"{k}={v!r}" for k, v in shown.items()), style="dim")
    gap = result.completeness_gap
    if gap is not None and np.isfinite(gap).any():
        header.append(f"  max completeness gap {100 * float(np.nanmax(gap)):.1f}%")
    return header


def _prompt_paragraph(result: Attribution, visible: np.ndarray, signed: bool, show_template: bool) -> Text:
    prompt = [int(i) for i in visible if i < result.n_prompt]
    if not prompt:
        return Text("(no visible prompt tokens)", style="dim italic")
    with np.errstate(all="ignore"):
        total = np.nansum(np.abs(result.scores), axis=0) if result.n_targets else np.zeros(result.n_sources)
        net = np.nansum(result.scores, axis=0) if result.n_targets else np.zeros(result.n_sources)
    peak = float(total[prompt].max())
    text = Text()
    for j, i in enumerate(prompt):
        if j and not show_template and result.source_message[i] != result.source_message[prompt[j - 1]]:
            text.append(" ¦ ", style="dim")  # a message boundary (the template between is hidden)
        weight = float(total[i]) / peak if peak > 0 else 0.0
        text.append(_show(result.source_tokens[i]), style=_shade(math.copysign(weight, net[i]), signed))
    return text


def _targets_table(result: Attribution, top_k: int, show_template: bool, signed: bool) -> Table:
    table = Table(title="Sources per generated token", title_justify="left", expand=False)
    table.add_column("step", justify="right")
    table.add_column("target")
    table.add_column("prob", justify="right")
    table.add_column(f"top {top_k} sources")
    for t, token in enumerate(result.target_tokens):
        cell = Text()
        for j, (s, score) in enumerate(result.top_sources(t, top_k, show_template)):
            if j:
                cell.append("  ")
            colour = "blue" if signed and score < 0 else "red"
            cell.append(_show(result.source_tokens[s]), style=f"bold {colour}")
            cell.append(f" ({_fmt(score, signed, 2)})", style=colour)
        if not cell:
            cell = Text("-", style="dim")
        prob = float(result.target_probs[t])
        table.add_row(str(t), Text(_show(token)), "-" if math.isnan(prob) else f"{prob:.3f}", cell)
    return table


def _matrix(result: Attribution, visible: np.ndarray, signed: bool) -> Table:
    table = Table(title="Attribution matrix (shaded per row)", title_justify="left", padding=(0, 1))
    table.add_column("target")
    for s in visible:
        table.add_column(Text(_show(result.source_tokens[int(s)])), justify="right")
    for t, token in enumerate(result.target_tokens):
        row = result.scores[t, visible]
        finite = np.abs(row[np.isfinite(row)])
        peak = float(finite.max()) if finite.size else 0.0
        cells: list[Text] = [Text(_show(token))]
        for value in row.tolist():
            if math.isnan(value):
                cells.append(Text("·", style="dim"))
            else:
                style = _shade(value / peak if peak > 0 else 0.0, signed)
                cells.append(Text(f"{value:.2g}", style=style))
        table.add_row(*cells)
    return table
