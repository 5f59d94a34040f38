// /adapters/NAME/compare: POST /v1/adapters/NAME/compare (word level) and draw the comparison: the prompt
// shaded under the base (or the adapter chosen in "Compare with") and under the tuned model (the "Why?"
// panel's .pos-N / .neg-N classes from why.css, one scale for both: shares of each token's attribution), the answer's tokens to pick one step, each step's
// distance, and the prompt tokens that moved most (outlined in both heatmaps, listed in a table). Every token
// is set as text (clearlm.el / textContent), never parsed as HTML.
"use strict";

(() => {
  const { api, say, el } = clearlm;
  const page = document.getElementById("compare-page");
  const form = document.getElementById("compare-form");
  if (!page || !form) return;
  const $ = (id) => document.getElementById(id);
  const adapter = page.dataset.adapter;
  const NON_NEGATIVE = new Set(["saliency", "attention", "attention_rollout"]);
  const visible = (t) => t.replace(/\r?\n/g, "⏎").replace(/\t/g, "⇥").replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => String.fromCharCode(0x2400 + (c === "\u007f" ? 0x21 : c.charCodeAt(0))));
  const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : (v > 0 ? "+" : "") + Number(v).toFixed(digits));
  let result = null;
  let ref = "the base"; // the model compared with, in sentences
  let step = null; // the selected target token (null: all summed)

  // The prompt's displayed sources (no special or template tokens), as [index, message].
  function sources(R) {
    const out = [];
    for (let s = 0; s < R.n_prompt; s++) if (!R.source_special[s] && R.source_message[s] >= 0) out.push(s);
    return out;
  }

  function heatmap(box, R, shares, moved) {
    box.replaceChildren();
    let line = null;
    let message = null;
    const spans = new Map();
    for (const s of sources(R)) {
      if (R.source_message[s] !== message) {
        message = R.source_message[s];
        line = el("p", { class: "why-msg" }, el("span", { class: "why-role badge" }, R.source_roles[s] || "text"));
        box.append(line);
      }
      const span = el("span", { class: "src", dataset: { source: String(s) } }, visible(R.source_tokens[s]));
      if (moved.has(s)) span.classList.add("moved", moved.get(s) > 0 ? "moved-up" : "moved-down");
      spans.set(s, span);
      line.append(span);
    }
    return spans;
  }

  // The row shown: the selected step's shares, or the sum over all steps; null where masked.
  function row(shares, n) {
    if (step !== null) return shares[step];
    const out = new Array(n).fill(null);
    for (const r of shares) r.forEach((v, s) => { if (v !== null) out[s] = (out[s] || 0) + v; });
    return out;
  }

  function shade() {
    const C = result.comparison;
    const R = C.tuned;
    const n = R.source_tokens.length;
    const rows = [row(C.base_share, n), row(C.tuned_share, n)];
    const shown = sources(R);
    const peak = Math.max(0, ...rows.flatMap((r) => shown.map((s) => Math.abs(r[s] || 0))));
    const signed = !NON_NEGATIVE.has(C.method);
    rows.forEach((r, i) => {
      for (const [s, span] of result.spans[i]) {
        const v = r[s];
        const bin = v === null || peak === 0 ? 0 : Math.min(9, Math.floor((Math.abs(v) / peak) * 10));
        span.classList.remove(...[...span.classList].filter((c) => /^(pos|neg)-\d$|^na$/.test(c)));
        span.classList.add(v === null ? "na" : `${v < 0 && signed ? "neg" : "pos"}-${bin}`);
        span.title = v === null ? "not before this token" : `share ${fmt(v)}`;
      }
    });
    $("compare-targets").querySelectorAll("button").forEach((b, t) => b.setAttribute("aria-pressed", String(t === step)));
    $("compare-step").textContent = step === null
      ? `All ${C.distance.length} answer tokens summed; mean distance ${Number(C.distance.reduce((a, b) => a + (b || 0), 0) / Math.max(1, C.distance.length)).toFixed(3)} (0 to 2).`
      : `Token ${step + 1}: distance ${Number(C.distance[step]).toFixed(3)} (0 to 2); probability ${Number(C.base.target_probs[step]).toFixed(3)} under ${ref}, ${Number(C.tuned.target_probs[step]).toFixed(3)} tuned.`;
    $("compare-base").dataset.row = $("compare-tuned").dataset.row = step === null ? "all" : String(step);
  }

  function swatches(signed) {
    const bins = [...Array(10).keys()];
    return signed ? [...bins.slice().reverse().map((b) => `neg-${b}`), ...bins.map((b) => `pos-${b}`)] : bins.map((b) => `pos-${b}`);
  }

  function draw(body) {
    const C = body.comparison;
    $("compare-result").hidden = false;
    if (!C) {
      $("compare-notice").textContent = "The policy withheld this answer: there is nothing to compare.";
      $("compare-result").hidden = true;
      return;
    }
    ref = body.against ? `the adapter ${body.against}` : "the base";
    page.querySelectorAll(".ref-label").forEach((label) => { label.textContent = body.against ? "Reference" : "Base"; });
    $("compare-base-model").textContent = body.reference_model;
    $("compare-base").setAttribute("aria-label", `Prompt under ${ref}`);
    const moved = new Map(C.top_moved.map((m) => [m.source, m.moved]));
    result = { ...body, spans: [heatmap($("compare-base"), C.base, C.base_share, moved), heatmap($("compare-tuned"), C.tuned, C.tuned_share, moved)] };
    step = null;
    $("compare-targets").replaceChildren(...C.tuned.target_tokens.map((tok, t) => {
      const b = el("button", { type: "button", class: "tgt", "aria-pressed": "false", dataset: { step: String(t) } }, visible(tok));
      b.addEventListener("click", () => { step = step === t ? null : t; shade(); });
      return b;
    }));
    $("compare-legend").replaceChildren(
      el("span", {}, NON_NEGATIVE.has(C.method) ? "less" : "pushed away"),
      el("span", { class: "why-scale", "aria-hidden": "true" }, ...swatches(!NON_NEGATIVE.has(C.method)).map((c) => el("span", { class: `swatch ${c}` }))),
      el("span", {}, NON_NEGATIVE.has(C.method) ? "more" : "pushed toward"),
      el("span", { class: "muted" }, `${C.method}, words; shares of each token's attribution, one scale for both models; outlined: moved most (▲ more under the tuned model, ▼ less)`));
    $("compare-moved").tBodies[0].replaceChildren(...C.top_moved.map((m) => el("tr", {},
      el("td", {}, el("code", {}, visible(m.token))), el("td", {}, fmt(m.base)), el("td", {}, fmt(m.tuned)),
      el("td", { class: m.moved > 0 ? "up" : "down" }, fmt(m.moved)))));
    shade();
    $("compare-notice").textContent = `Answer: ${body.text}` + (C.warning ? ` · Note: ${C.warning}` : "");
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("compare-prompt").value;
    const target = $("compare-target").value;
    const body = {
      method: $("compare-method").value,
      level: "word",
      top_k: 5,
      max_tokens: Number($("compare-tokens").value) || 16,
      ...($("compare-chat").checked ? { messages: [{ role: "user", content: text }] } : { prompt: text }),
      ...(target ? { target } : {}),
      ...($("compare-against")?.value ? { against: $("compare-against").value } : {}),
    };
    const button = $("compare-submit");
    button.disabled = true;
    page.setAttribute("aria-busy", "true");
    $("compare-notice").textContent = "Generating and attributing under both models…";
    $("compare-notice").className = "muted";
    try {
      draw(await api(`/v1/adapters/${encodeURIComponent(adapter)}/compare`, { method: "POST", body }));
    } catch (err) {
      $("compare-notice").textContent = err.message || String(err);
      $("compare-notice").className = "error";
      say(err.message || String(err), { error: true });
    } finally {
      button.disabled = false;
      page.setAttribute("aria-busy", "false");
    }
  });
})();
