"""Renderers for attribution results: terminal (rich), a self-contained HTML page, and a PNG heatmap."""

from clearlm.explain.render.html import render_html, write_html
from clearlm.explain.render.png import render_png
from clearlm.explain.render.terminal import render_terminal

__all__ = ["render_html", "render_png", "render_terminal", "write_html"]
