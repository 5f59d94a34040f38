"""Render an attribution result as a PNG heatmap with matplotlib (Agg, no pyplot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from clearlm.explain.result import Attribution


def render_png(
    result: Attribution, path: str | Path, *, show_template: bool = False, max_sources: int = 80
) -> Path:
    """Write a heatmap of ``result.scores`` to ``path`` as PNG, atomically (a temporary file, then a
    rename), and return the path.

    x: the visible sources (labels are ``repr`` of each token, so spaces show between quotes); y: the
    targets with their probability. Signed methods use a diverging colormap centred at 0 (red positive,
    blue negative), non-negative ones a sequential one from 0; NaN cells (source not earlier than the
    target) are grey. The colorbar is labelled with the method. Figure size grows with the counts.

    Args:
        result: the attribution to draw.
        path: the file to write.
        show_template: also show special tokens and chat-template scaffolding.
        max_sources: draw at most this many visible sources, the last ones; the title says when some
            were left out.

    Raises:
        ValueError: if ``max_sources`` < 1.
    """
    path = Path(path)
    fig = _figure(result, show_template=show_template, max_sources=max_sources)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path


def _label(token: str) -> str:
    # repr shows spaces as themselves inside quotes and escapes newlines; "$" would start mathtext.
    return repr(token).replace("$", r"\$")


def _figure(result: Attribution, *, show_template: bool = False, max_sources: int = 80) -> Figure:
    """The heatmap Figure (with an Agg canvas attached) that ``render_png`` saves."""
    if max_sources < 1:
        raise ValueError(f"max_sources must be >= 1, got {max_sources}")
    visible = result.visible_sources(show_template)
    dropped = max(len(visible) - max_sources, 0)
    visible = visible[dropped:]
    n_s, n_t = len(visible), result.n_targets
    width = float(np.clip(3.0 + 0.32 * n_s, 6.0, 40.0))
    height = float(np.clip(2.2 + 0.32 * n_t, 3.0, 40.0))
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    title = f"{result.method} attribution: {result.model}"
    if dropped:
        title += f"\n(last {n_s} of {n_s + dropped} visible sources shown)"
    ax.set_title(title.replace("$", r"\$"), fontsize=10)
    if n_s == 0 or n_t == 0:
        ax.text(0.5, 0.5, "nothing to show: no visible sources or no targets", ha="center", va="center")
        ax.set_axis_off()
        return fig

    data = np.ma.masked_invalid(result.scores[:, visible])
    finite = np.abs(data.compressed())
    peak = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    signed = result.signed
    cmap = colormaps["RdBu_r" if signed else "Reds"].with_extremes(bad="#d0d0d0")
    norm = Normalize(-peak, peak) if signed else Normalize(0.0, peak)
    image = ax.imshow(data, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")

    ax.set_xticks(range(n_s))
    ax.set_xticklabels([_label(result.source_tokens[int(s)]) for s in visible], rotation=70, ha="right")
    ax.set_yticks(range(n_t))
    probs = result.target_probs
    ax.set_yticklabels(
        [f"{_label(tok)}  p={float(probs[t]):.2f}" for t, tok in enumerate(result.target_tokens)]
    )
    ax.tick_params(labelsize=8)
    ax.set_xlabel("source token")
    ax.set_ylabel("generated token")
    colorbar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    colorbar.set_label(result.method)
    return fig
