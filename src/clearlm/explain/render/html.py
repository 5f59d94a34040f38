"""Render an attribution result as one self-contained, interactive HTML page (inline CSS and JS)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from clearlm.explain.result import Attribution
from clearlm.paths import write_text_atomic


def render_html(result: Attribution, *, show_template: bool = False, title: str | None = None) -> str:
    """One HTML document showing ``result``; it loads nothing from the network.

    The page has the prompt and generated text as token spans (spaces kept, newlines break lines, each
    source underlined in its message's role colour; special and chat-template tokens only with
    ``show_template``). Hovering or clicking a generated token shades every source by that target's row
    of scores (over the row's largest |score|: red positive, blue negative) and lists its probability and
    5 top sources in a side panel. Below: a matrix (rows targets, columns visible sources, the value in
    each cell's tooltip) and a legend (method, model, parameters, completeness gap, message roles).

    The result is embedded losslessly as ``result.to_dict()`` JSON in ``<script type="application/json"
    id="clearlm-data">``, with ``</`` written ``<\\/`` so no token can end the script early; token text
    is only ever inserted with ``textContent``.

    Args:
        result: the attribution to show.
        show_template: also show special tokens and chat-template scaffolding.
        title: the page title; defaults to "<method> attribution: <model>".
    """
    title = title if title is not None else f"{result.method} attribution: {result.model}"
    view = {
        "visible": result.visible_sources(show_template).tolist(),
        "signed": result.signed,
        "show_template": show_template,
        "target_source": _target_sources(result),
        "n_hidden": result.n_sources - len(result.visible_sources(show_template)),
    }
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n",
            f'<header><h1>{html.escape(title)}</h1><div id="legend"></div></header>\n',
            '<main><section id="text-view"><h2>Text</h2><p class="muted">Hover or click a generated token '
            '(orange underline) to see which earlier tokens it drew on.</p><div id="text"></div></section>\n',
            '<aside id="detail"><p class="muted">No token selected.</p></aside></main>\n',
            '<section id="matrix-view"><h2>Matrix</h2><p class="muted">Rows: generated tokens; columns: '
            'sources; shading per row; hover a cell for its value.</p><div class="scroll">'
            '<table id="matrix"></table></div></section>\n',
            f'<script type="application/json" id="clearlm-data">{_json(result.to_dict())}</script>\n',
            f'<script type="application/json" id="clearlm-view">{_json(view)}</script>\n',
            f"<script>{_JS}</script>\n</body></html>\n",
        ]
    )


def write_html(result: Attribution, path: str | Path, **kw: Any) -> Path:
    """Write ``render_html(result, **kw)`` to ``path`` (UTF-8) atomically: a temporary file, then a
    rename. Returns the path."""
    return write_text_atomic(path, render_html(result, **kw))


def _json(data: Any) -> str:
    text = json.dumps(data, allow_nan=False, ensure_ascii=False)
    return text.replace("</", "<\\/").replace("<!--", "\\u003c!--")


def _target_sources(result: Attribution) -> list[int]:
    """For each target, the generated source holding the same text (-1 if none), found through
    ``source_spans``: target t is token ``n_prompt_tokens + t`` of the token-level sequence."""
    gen = range(result.n_prompt, result.n_sources)
    base = result.source_spans[result.n_prompt - 1][1] if result.n_prompt else 0
    out = []
    for t in range(result.n_targets):
        hits = [s for s in gen if result.source_spans[s][0] <= base + t < result.source_spans[s][1]]
        out.append(hits[0] if hits else -1)
    return out


_CSS = """
:root{--sys:#8e44ad;--user:#2e8b57;--asst:#e67e22;--none:#aaa;--fg:#222;--muted:#777;--line:#e3e3e3}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:#fff;
margin:0 auto;padding:16px 24px;max-width:1200px;line-height:1.5}
h1{font-size:1.25rem;margin:0 0 6px}h2{font-size:1rem;margin:18px 0 4px}
#legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.85rem;color:#444}
#legend b{font-weight:600}.sw{display:inline-block;width:14px;height:3px;vertical-align:middle;
margin-right:4px;background:var(--none)}.sw.role-system{background:var(--sys)}
.sw.role-user{background:var(--user)}.sw.role-assistant{background:var(--asst)}
.scale{display:inline-block;width:90px;height:10px;vertical-align:middle;border:1px solid var(--line)}
main{display:grid;grid-template-columns:minmax(0,1fr) 300px;gap:20px;align-items:start}
#text{white-space:pre-wrap;word-break:break-word;font-size:1.02rem;line-height:1.9;padding:10px 12px;
border:1px solid var(--line);border-radius:8px;background:#fcfcfc}
.tok{border-bottom:2px solid var(--none);border-radius:2px;transition:background-color .12s}
.role-system{border-bottom-color:var(--sys)}.role-user{border-bottom-color:var(--user)}
.role-assistant{border-bottom-color:var(--asst)}.tmpl,.special{color:#999;font-style:italic}
.tgt{cursor:pointer}.tgt:hover{outline:1px solid #bbb}.tgt.active{outline:2px solid #222}
.nl{color:#bbb;font-size:.8em}.muted{color:var(--muted);font-size:.85rem;margin:2px 0}
#detail{position:sticky;top:12px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;
margin-top:44px;font-size:.9rem;background:#fafafa}
.label{font-size:.75rem;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);margin-top:8px}
.chip{white-space:pre;font-family:ui-monospace,Menlo,Consolas,monospace;border:1px solid #ddd;
border-radius:4px;padding:0 4px;background:#fff}.big{font-size:1.2rem;display:inline-block;margin:2px 0}
ol.top{padding-left:22px;margin:4px 0}ol.top li{margin:3px 0}.score{margin-left:8px;color:#555;
font-variant-numeric:tabular-nums}.scroll{overflow:auto;max-height:70vh;border:1px solid var(--line);
border-radius:8px}#matrix{border-collapse:collapse;font-size:.8rem}
#matrix th{font-weight:500;background:#fff;white-space:pre;font-family:ui-monospace,Menlo,monospace}
#matrix thead th{position:sticky;top:0;writing-mode:vertical-rl;transform:rotate(180deg);
padding:4px 2px;border-bottom:none;z-index:1;max-height:140px;overflow:hidden}
#matrix tbody th{position:sticky;left:0;text-align:right;padding:0 8px;cursor:pointer}
#matrix td{width:18px;min-width:18px;height:18px;border:1px solid #f2f2f2}#matrix td.nan{background:#eee}
#matrix tr.active th{background:#ffe9c7}
"""

_JS = r"""
(function () {
"use strict";
const R = JSON.parse(document.getElementById("clearlm-data").textContent);
const V = JSON.parse(document.getElementById("clearlm-view").textContent);
const vis = V.visible, isVis = new Set(vis);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
const show = (t) => t.replace(/\r?\n/g, "\u23ce").replace(/\t/g, "\u21e5");
const fmt = (v) => (V.signed && v > 0 ? "+" : "") + String(Number(v.toPrecision(3)));
const roleCls = (s) => "role-" + (R.source_roles[s] || "none");
function shade(v, peak) {
  if (v === null || !(peak > 0)) return "";
  const a = Math.min(Math.abs(v) / peak, 1) * 0.85;
  if (a < 0.02) return "";
  return (V.signed && v < 0 ? "rgba(31,100,200," : "rgba(214,39,40,") + a.toFixed(3) + ")";
}
function rowPeak(t) {
  let m = 0;
  for (const s of vis) { const v = R.scores[t][s]; if (v !== null) m = Math.max(m, Math.abs(v)); }
  return m;
}
function top(t, k) {
  const row = R.scores[t];
  return vis.filter((s) => row[s] !== null).sort((a, b) => Math.abs(row[b]) - Math.abs(row[a])).slice(0, k);
}
function fill(span, tok) {
  tok.split("\n").forEach((part, i) => {
    if (i) { span.appendChild(el("span", "nl", "\u23ce")); span.appendChild(document.createTextNode("\n")); }
    if (part) span.appendChild(document.createTextNode(part));
  });
  return span;
}
function srcSpan(s, span) {
  span.classList.add("src", roleCls(s));
  if (R.source_special[s]) span.classList.add("special");
  else if (R.source_message[s] < 0) span.classList.add("tmpl");
  span.dataset.index = s;
  return span;
}
let pinned = null, rows = [];
const text = document.getElementById("text"), detail = document.getElementById("detail");
let lastMsg = null;
function breakBetween(m) {  // with the template hidden, separate messages by a line break
  if (!V.show_template && lastMsg !== null && m !== lastMsg) text.appendChild(document.createTextNode("\n"));
  lastMsg = m;
}
for (const s of vis) {
  if (s >= R.n_prompt) continue;
  breakBetween(R.source_message[s]);
  text.appendChild(fill(srcSpan(s, el("span", "tok")), R.source_tokens[s]));
}
R.target_tokens.forEach((tok, t) => {
  if (t === 0) breakBetween("generated");
  const s = V.target_source[t];
  const span = el("span", "tok tgt");
  if (s >= 0 && isVis.has(s)) srcSpan(s, span);
  else span.classList.add("role-assistant");
  span.dataset.target = t;
  span.title = "step " + t + (R.target_probs[t] === null ? "" : ", p = " + R.target_probs[t].toFixed(3));
  span.addEventListener("mouseenter", () => select(t));
  span.addEventListener("click", () => { pinned = t; select(t); });
  text.appendChild(fill(span, tok));
});
text.addEventListener("mouseleave", () => { if (pinned !== null) select(pinned); });
function line(label, value) {
  const d = el("div"); d.append(el("span", "label", label + " "), el("span", "", value)); return d;
}
function select(t) {
  const peak = rowPeak(t);
  document.querySelectorAll("#text .src").forEach((sp) => {
    sp.style.backgroundColor = shade(R.scores[t][Number(sp.dataset.index)], peak);
  });
  document.querySelectorAll(".active").forEach((e) => e.classList.remove("active"));
  document.querySelectorAll('.tgt[data-target="' + t + '"]').forEach((e) => e.classList.add("active"));
  if (rows[t]) rows[t].classList.add("active");
  detail.replaceChildren(el("div", "label", "Generated token, step " + t));
  detail.appendChild(el("span", "chip big", show(R.target_tokens[t])));
  const p = R.target_probs[t];
  detail.appendChild(line("probability", p === null ? "\u2013" : p.toFixed(3)));
  if (R.contrast_tokens) {
    const c = line("instead of", ""); c.appendChild(el("span", "chip", show(R.contrast_tokens[t])));
    const cp = R.contrast_probs ? R.contrast_probs[t] : null;
    if (cp !== null) c.appendChild(el("span", "score", "p = " + cp.toFixed(3)));
    detail.appendChild(c);
  }
  if (R.completeness_gap && R.completeness_gap[t] !== null)
    detail.appendChild(line("completeness gap", (100 * R.completeness_gap[t]).toFixed(1) + "%"));
  detail.appendChild(el("div", "label", "Top sources"));
  const ol = el("ol", "top");
  for (const s of top(t, 5)) {
    const chip = el("span", "chip", show(R.source_tokens[s]));
    chip.style.backgroundColor = shade(R.scores[t][s], peak);
    const li = el("li"); li.append(chip, el("span", "score", fmt(R.scores[t][s]))); ol.appendChild(li);
  }
  if (!ol.children.length) ol.appendChild(el("li", "muted", "no visible earlier token"));
  detail.appendChild(ol);
}
const table = document.getElementById("matrix"), hr = table.createTHead().insertRow();
hr.appendChild(el("th", "", ""));
for (const s of vis) hr.appendChild(el("th", roleCls(s), show(R.source_tokens[s])));
const body = table.createTBody();
rows = R.target_tokens.map((tok, t) => {
  const tr = body.insertRow(), peak = rowPeak(t), th = el("th", "", show(tok));
  th.title = "step " + t;
  tr.appendChild(th);
  for (const s of vis) {
    const v = R.scores[t][s], td = tr.insertCell();
    if (v === null) { td.className = "nan"; td.title = "not earlier than the target"; continue; }
    td.style.backgroundColor = shade(v, peak);
    td.title = show(R.source_tokens[s]) + " \u2192 " + show(tok) + ": " + fmt(v);
  }
  tr.addEventListener("click", () => { pinned = t; select(t); });
  return tr;
});
const legend = document.getElementById("legend");
function item(k, v) {
  const d = el("span");
  d.append(el("b", "", k + ": "), document.createTextNode(v));
  legend.appendChild(d);
  return d;
}
item("method", R.method); item("model", R.model); item("granularity", R.granularity);
const params = Object.entries(R.params || {});
if (params.length) item("parameters", params.map(([k, v]) => k + "=" + JSON.stringify(v)).join(", "));
const gaps = (R.completeness_gap || []).filter((g) => g !== null);
if (gaps.length) item("max completeness gap", (100 * Math.max(...gaps)).toFixed(1) + "%");
const scale = item("colours", "");
const bar = el("span", "scale");
const stops = (V.signed ? "rgb(31,100,200),#fff," : "#fff,") + "rgb(214,39,40)";
bar.style.background = "linear-gradient(90deg," + stops + ")";
scale.append(V.signed ? "negative " : "0 ", bar, V.signed ? " positive (per target)" : " max (per target)");
const seen = new Set();
R.source_message.forEach((m, s) => {
  if (m < 0 || seen.has(m)) return;
  seen.add(m);
  const d = item(s >= R.n_prompt ? "generated" : "message " + m, "");
  d.append(el("span", "sw " + roleCls(s)), R.source_roles[s] || "template");
});
if (!V.show_template && V.n_hidden) item("hidden", V.n_hidden + " special / template tokens");
})();
"""
