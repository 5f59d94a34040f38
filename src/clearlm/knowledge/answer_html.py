"""A cited answer as one self-contained HTML page (inline CSS and JS, nothing loaded from the network)."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

from clearlm.knowledge.answer import CitedAnswer, PassageSupport
from clearlm.paths import write_text_atomic

FLAG_TEXT = {
    "cited_not_relied": "cited, but the answer did not rely on it",
    "relied_not_cited": "relied on, but not cited",
}


def render_html(cited: CitedAnswer, *, title: str | None = None) -> str:
    """One HTML document showing ``cited``.

    The page shows the question and the answer, with every citation a link to its passage (a citation
    naming no passage is struck through and listed); the flags ("cited, but not relied on", "relied on,
    but not cited") with their threshold; and every passage as a collapsible card shaded by its ablation
    weight (over the largest |weight|: red positive, blue negative, as in the explanation page), showing its
    number, path, heading, character offsets, weight, gradient share and flag. Clicking a citation opens
    its passage, scrolls to it and highlights it. Below: the attribution's parameters and fit (LDS, R^2).

    The answer is embedded losslessly as ``cited.to_dict()`` JSON in ``<script type="application/json"
    id="clearlm-answer">`` (``</`` written ``<\\/``); every text is HTML-escaped.
    """
    title = title if title is not None else f"Cited answer: {cited.question}"
    peak = max((abs(s.weight) for s in cited.support if not math.isnan(s.weight)), default=0.0)
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n",
        f"<header><h1>{html.escape(title)}</h1>{_legend(cited)}</header>\n",
        '<section id="question"><h2>Question</h2>',
        f'<p class="question">{html.escape(cited.question)}</p></section>\n',
        '<section id="answer"><h2>Answer</h2>',
        f'<p class="answer">{_answer_html(cited)}</p>',
        _flags_html(cited),
        "</section>\n",
        '<section id="passages"><h2>Passages</h2><p class="muted">Shaded by how much the answer relied on '
        "each passage (ablation weight; red: relied on, blue: the answer is likelier without it). Click a "
        "citation to open its passage.</p>\n",
        *(_passage_html(cited, s, peak) for s in cited.support),
        "</section>\n",
        f'<script type="application/json" id="clearlm-answer">{_json(cited.to_dict())}</script>\n',
        f"<script>{_JS}</script>\n</body></html>\n",
    ]
    return "".join(parts)


def write_html(cited: CitedAnswer, path: str | Path, **kw: Any) -> Path:
    """Write ``render_html(cited, **kw)`` to ``path`` (UTF-8) atomically. Returns the path."""
    return write_text_atomic(path, render_html(cited, **kw))


def _answer_html(cited: CitedAnswer) -> str:
    """The answer's text, escaped, with each number inside a citation bracket linked to its passage."""
    brackets = sorted({(c.start, c.end) for c in cited.citations})
    out, pos = [], 0
    for start, end in brackets:
        out.append(html.escape(cited.text[pos:start]))
        inner, last = [], start
        for m in re.finditer(r"\d+", cited.text[start:end]):
            a, b = start + m.start(), start + m.end()
            inner.append(html.escape(cited.text[last:a]))
            number = int(m.group())
            if cited.passage(number) is not None:
                inner.append(f'<a class="cite" href="#passage-{number}" data-passage="{number}">{number}</a>')
            else:
                inner.append(f'<span class="cite unknown" title="no passage [{number}]">{number}</span>')
            last = b
        inner.append(html.escape(cited.text[last:end]))
        out.append('<span class="citation">' + "".join(inner) + "</span>")
        pos = end
    out.append(html.escape(cited.text[pos:]))
    return "".join(out)


def _flags_html(cited: CitedAnswer) -> str:
    items = []
    for s in cited.flagged:
        items.append(
            f'<li class="flag {s.flag}"><a class="cite" href="#passage-{s.number}" '
            f'data-passage="{s.number}">[{s.number}]</a> {html.escape(FLAG_TEXT[s.flag])} '
            f'<span class="muted">(weight {_fmt(s.weight)}; relied on from {cited.relied_threshold:.2f})'
            "</span></li>"
        )
    if cited.unknown_citations:
        numbers = ", ".join(f"[{n}]" for n in cited.unknown_citations)
        items.append(
            f'<li class="flag unknown">{html.escape(numbers)}: cited, but there is no such passage '
            f"(there are {len(cited.passages)})</li>"
        )
    if cited.attribution is None:
        items.append('<li class="muted">No attribution: the answer was not attributed to its passages.</li>')
    elif not items:
        items.append(
            '<li class="muted">No flags: every cited passage was relied on, and every relied-on '
            "passage was cited.</li>"
        )
    for c in cited.corrections:
        items.append(f'<li class="flag correction">{html.escape(_correction_text(c))}</li>')
    return '<ul id="flags">' + "".join(items) + "</ul>"


def _correction_text(c: dict) -> str:
    by = "its attribution" if c.get("by") == "attribution" else "the words it quotes"
    if c.get("kind") == "recited":
        return f"Corrected by {by}: citation [{c.get('from')}] re-pointed to [{c.get('to')}]."
    return f"Corrected by {by}: nothing supported the answer {c.get('text', '')!r}, so it abstains."


def _passage_html(cited: CitedAnswer, s: PassageSupport, peak: float) -> str:
    p = cited.passages[s.number - 1]
    badges = []
    if s.cited:
        badges.append('<span class="badge cited">cited</span>')
    if s.relied:
        badges.append('<span class="badge relied">relied on</span>')
    if s.flag:
        badges.append(f'<span class="badge flag {s.flag}">{html.escape(FLAG_TEXT[s.flag])}</span>')
    figures = ""
    if not math.isnan(s.weight):
        figures = f'<span class="fig">weight {_fmt(s.weight)}</span>'
        if not math.isnan(s.gradient_share):
            figures += f'<span class="fig">gradient {100 * s.gradient_share:+.0f}%</span>'
    where = [
        ("path", p.path),
        ("heading", p.heading or "\u2013"),
        ("characters", f"{p.start}\u2013{p.end}"),
        ("chunk", p.chunk_id),
    ]
    if p.title:
        where.insert(1, ("title", p.title))
    meta = "".join(
        f'<span class="label">{k}</span> <span class="value {k}">{html.escape(str(v))}</span> '
        for k, v in where
    )
    label = html.escape(p.heading or p.title or p.path)
    return (
        f'<details class="passage" id="passage-{s.number}" data-number="{s.number}" '
        f'style="background-color:{_shade(s.weight, peak)}">'
        f'<summary><span class="num">[{s.number}]</span> <span class="head">{label}</span> {figures} '
        f"{''.join(badges)}</summary>"
        f'<div class="meta">{meta}</div><div class="text">{_quoted_html(cited, s.number)}</div></details>\n'
    )


def _quoted_html(cited: CitedAnswer, number: int) -> str:
    """Passage ``number``'s text, escaped, with the spans the answer's citations of it quote in <mark>
    (overlapping spans merged)."""
    text = cited.passages[number - 1].text
    spans = sorted(
        (c.quote_start, c.quote_end)
        for c in cited.citations
        if c.number == number and c.quote_start is not None and c.quote_end is not None
    )
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    out, pos = [], 0
    for a, b in merged:
        out += [html.escape(text[pos:a]), f'<mark class="quote">{html.escape(text[a:b])}</mark>']
        pos = b
    return "".join(out) + html.escape(text[pos:])


def _legend(cited: CitedAnswer) -> str:
    items = [("model", cited.model), ("finish", cited.finish_reason)]
    a = cited.attribution
    if a is not None:
        kind = "every subset" if a.exact else "random, seed " + str(a.params.get("seed"))
        items += [
            ("ablations", f"{a.n_ablations} ({kind})"),
            ("fit", f"LDS {_fmt(a.lds)}, R\u00b2 {_fmt(a.r2)}"),
            ("score", "logit of the mean token probability (citations left out)"),
            ("relied on from", f"weight {cited.relied_threshold:.2f}"),
        ]
    if cited.seconds:
        items.append(("seconds", ", ".join(f"{k} {v:.1f}" for k, v in cited.seconds.items())))
    body = "".join(f"<span><b>{html.escape(k)}:</b> {html.escape(v)}</span>" for k, v in items)
    return f'<div id="legend">{body}</div>'


def _shade(weight: float, peak: float) -> str:
    if math.isnan(weight) or peak <= 0:
        return "transparent"
    alpha = min(abs(weight) / peak, 1.0) * 0.45
    return f"rgba(214,39,40,{alpha:.3f})" if weight > 0 else f"rgba(31,100,200,{alpha:.3f})"


def _fmt(value: float) -> str:
    return "\u2013" if value is None or math.isnan(value) else f"{value:+.2f}"


def _json(data: Any) -> str:
    text = json.dumps(data, allow_nan=False, ensure_ascii=False)
    return text.replace("</", "<\\/").replace("<!--", "\\u003c!--")


_CSS = """
:root{--fg:#222;--muted:#777;--line:#e3e3e3;--red:rgb(214,39,40);--blue:rgb(31,100,200)}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff;
margin:0 auto;padding:16px 24px;max-width:1000px;line-height:1.5}
h1{font-size:1.25rem;margin:0 0 6px}h2{font-size:1rem;margin:18px 0 4px}
#legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.85rem;color:#444}#legend b{font-weight:600}
.muted{color:var(--muted);font-size:.85rem;margin:2px 0}
.question{font-weight:600}.answer{white-space:pre-wrap;font-size:1.05rem;padding:10px 12px;
border:1px solid var(--line);border-radius:8px;background:#fcfcfc}
a.cite{color:#0b57d0;font-weight:600;text-decoration:none;padding:0 1px}a.cite:hover{text-decoration:underline}
.cite.unknown{color:#b00;text-decoration:line-through;cursor:help}
#flags{padding-left:20px;margin:8px 0}.flag{margin:2px 0}.flag.cited_not_relied,.flag.unknown{color:#8a4b00}
.flag.relied_not_cited{color:#7a1f1f}
details.passage{border:1px solid var(--line);border-radius:8px;margin:8px 0;padding:6px 12px;
transition:box-shadow .3s}
details.passage.target{box-shadow:0 0 0 3px #0b57d0}
details.passage summary{cursor:pointer}.num{font-weight:700}.head{font-weight:600}
.fig{margin-left:10px;font-size:.85rem;font-variant-numeric:tabular-nums;color:#333}
.badge{display:inline-block;margin-left:8px;font-size:.75rem;border:1px solid #bbb;border-radius:10px;
padding:0 7px;background:#fff}.badge.cited{border-color:#0b57d0;color:#0b57d0}
.badge.relied{border-color:var(--red);color:var(--red)}.badge.flag{border-color:#8a4b00;color:#8a4b00}
.meta{font-size:.8rem;color:#444;margin:6px 0}.label{text-transform:uppercase;letter-spacing:.04em;
color:var(--muted);font-size:.7rem;margin-left:6px}.meta .label:first-child{margin-left:0}
mark.quote{background:#fff1a8;padding:0 1px}
.text{white-space:pre-wrap;background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 10px}
"""

_JS = r"""
(function () {
"use strict";
function reveal(number, scroll) {
  const card = document.getElementById("passage-" + number);
  if (!card) return;
  card.open = true;
  document.querySelectorAll("details.passage.target").forEach((d) => d.classList.remove("target"));
  card.classList.add("target");
  if (scroll) card.scrollIntoView({block: "center"});
}
document.querySelectorAll("a.cite").forEach((a) => {
  a.addEventListener("click", (event) => {
    event.preventDefault();
    reveal(a.dataset.passage, true);
    history.replaceState(null, "", "#passage-" + a.dataset.passage);
  });
});
const m = /^#passage-(\d+)$/.exec(location.hash);
if (m) reveal(m[1], true);
})();
"""
