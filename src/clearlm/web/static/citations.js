// clearlm web UI: citations in a chat answer. The chat page calls
//   window.clearlmCitations.render(article, citations)
// with an assistant message's <article> and its meta.citations (a CitedAnswer dict: knowledge/answer.py).
// Each [n] in the rendered answer becomes a button that opens passage n in a <dialog>, with the passage's
// sentence that best matches the answer's claim highlighted (the claim: the answer's sentence that ends at
// the citation; the match: the span of the passage it quotes verbatim (the citation's quote_start/quote_end)
// when there is one, else the sentence sharing the most words with it, shared words underlined). Below the
// answer, the passages are listed, shaded by how much the answer relied on them (ablation weight), with the
// flags "cited but not relied on" and "relied on but not cited". Text only: nothing here is parsed as HTML.
"use strict";

window.clearlmCitations = (() => {
  const el = (...a) => clearlm.el(...a);
  // [1], [1, 2], [1;2], [1-3]: as knowledge/answer.py's _CITATION.
  const BRACKET = /\[(\s*\d+(?:\s*(?:[,;]|[-–])\s*\d+)*\s*)\]/g;
  const FLAG = {
    cited_not_relied: "cited but not relied on",
    relied_not_cited: "relied on but not cited",
  };
  const STOP = new Set(
    ("a an and are as at be by for from has have in into is it its of on or that the their this to was " +
      "were will with which who what when where how do does did not no can you your they them he she")
      .split(" "));
  let dialog = null;

  const words = (text) => (text.toLowerCase().match(/[\p{L}\p{N}]+/gu) || []).filter((w) => !STOP.has(w));

  // The answer's claim a citation backs: the text from the sentence's start up to the citation, without
  // other citation brackets.
  function claimBefore(text, start) {
    // (a sentence may end before its citation: "It is so. [1]", as extractive answers write it)
    let head = text.slice(0, start).replace(/(\s*\[[^\]]*\]\s*)+$/, "").replace(/[\s.!?]+$/, "");
    const cut = Math.max(head.lastIndexOf(". "), head.lastIndexOf("! "), head.lastIndexOf("? "),
      head.lastIndexOf("\n"), head.lastIndexOf("]"));
    head = head.slice(cut + 1);
    return head.replace(/\[[^\]]*\]/g, " ").trim();
  }

  // The passage's sentences as [start, end) character spans (trailing space left out).
  function sentences(text) {
    const out = [];
    const re = /[^.!?\n]+(?:[.!?]+|\n|$)/g;
    let m;
    while ((m = re.exec(text))) {
      const s = m[0];
      const lead = s.length - s.trimStart().length;
      const body = s.trim();
      if (body) out.push([m.index + lead, m.index + lead + body.length]);
      if (m[0] === "") re.lastIndex++;
    }
    return out;
  }

  // The passage's best-matching sentence for a claim: {start, end, shared: Set(words)} or null.
  function bestSentence(passage, claim) {
    const want = new Set(words(claim));
    if (!want.size) return null;
    let best = null;
    for (const [start, end] of sentences(passage)) {
      const shared = new Set(words(passage.slice(start, end)).filter((w) => want.has(w)));
      if (shared.size && (!best || shared.size > best.shared.size)) best = { start, end, shared };
    }
    return best;
  }

  // The passage's text as nodes, the matched sentence in <mark> and its shared words underlined.
  function highlighted(text, match) {
    if (!match) return [text];
    const inner = [];
    const sentence = text.slice(match.start, match.end);
    let last = 0;
    for (const m of sentence.matchAll(/[\p{L}\p{N}]+/gu)) {
      if (!match.shared.has(m[0].toLowerCase())) continue;
      inner.push(sentence.slice(last, m.index), el("span", { class: "match" }, m[0]));
      last = m.index + m[0].length;
    }
    inner.push(sentence.slice(last));
    return [text.slice(0, match.start), el("mark", { class: "cited-span" }, ...inner), text.slice(match.end)];
  }

  function label(p) {
    return p.heading_path?.length ? p.heading_path.join(" › ") : p.title || p.path;
  }

  function fmt(w) {
    return w === null || w === undefined ? "not measured" : (w >= 0 ? "+" : "") + w.toFixed(2);
  }

  // Shade by weight over the largest |weight| (red: relied on; blue: the answer was likelier without it).
  function shade(node, weight, peak) {
    if (weight === null || weight === undefined || !peak) return;
    node.classList.add(weight >= 0 ? "pos" : "neg");
    node.style.setProperty("--shade", (Math.min(Math.abs(weight) / peak, 1) * 0.45).toFixed(3));
  }

  function badges(s) {
    return [
      s.cited ? el("span", { class: "badge" }, "cited") : null,
      s.relied ? el("span", { class: "badge relied" }, "relied on") : null,
      s.flag ? el("span", { class: "badge warn flag", dataset: { flag: s.flag } }, FLAG[s.flag] || s.flag) : null,
    ];
  }

  // ---- the answer's [n] markers, found in the rendered Markdown's text nodes

  function markers(body, cited, open) {
    const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT, {
      acceptNode: (n) => (n.parentElement.closest("code, pre, button, .citation") ? NodeFilter.FILTER_REJECT
        : NodeFilter.FILTER_ACCEPT),
    });
    const nodes = [];
    const has = new RegExp(BRACKET.source);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) if (has.test(n.data)) nodes.push(n);
    const spans = [...new Map(cited.citations.map((c) => [c.start + ":" + c.end, c])).values()];
    let index = 0;
    for (const node of nodes) {
      const parts = [];
      let last = 0;
      for (const m of node.data.matchAll(BRACKET)) {
        const span = spans[index++];
        const claim = span ? claimBefore(cited.text, span.start) : claimBefore(node.data, m.index);
        parts.push(node.data.slice(last, m.index), bracket(m[0], cited, claim, open, span));
        last = m.index + m[0].length;
      }
      parts.push(node.data.slice(last));
      node.replaceWith(...parts.filter((x) => x !== ""));
    }
  }

  function bracket(text, cited, claim, open, span) {
    const out = el("span", { class: "citation" });
    let last = 0;
    for (const m of text.matchAll(/\d+/g)) {
      out.append(text.slice(last, m.index));
      const n = Number(m[0]);
      const p = cited.passages[n - 1];
      if (p) {
        const b = el("button", { type: "button", class: "cite", dataset: { passage: n } }, m[0]);
        b.setAttribute("aria-label", `Passage ${n}: ${label(p)}`);
        b.setAttribute("aria-haspopup", "dialog");
        b.addEventListener("click", () => open(n, claim, b, span ? span.start : null));
        out.append(b);
      } else {
        out.append(el("span", { class: "cite unknown", title: `no passage [${n}]` }, m[0],
          el("span", { class: "sr-only" }, " (no such passage)")));
      }
      last = m.index + m[0].length;
    }
    out.append(text.slice(last));
    return out;
  }

  // ---- the list of passages under the answer, and the dialog

  function peakOf(cited) {
    return Math.max(0, ...cited.support.map((s) => (s.weight === null ? 0 : Math.abs(s.weight))));
  }

  function sourceList(cited, open, current) {
    const peak = peakOf(cited);
    return el("ol", { class: "sources" }, ...cited.support.map((s) => {
      const p = cited.passages[s.number - 1];
      const b = el("button", { type: "button", class: "source", dataset: { passage: s.number } },
        el("span", { class: "num" }, `[${s.number}]`), " ", label(p),
        el("span", { class: "weight" }, ` weight ${fmt(s.weight)}`));
      if (current === s.number) b.setAttribute("aria-current", "true");
      b.setAttribute("aria-haspopup", "dialog");
      b.addEventListener("click", () => open(s.number, null, b));
      const item = el("li", { dataset: { passage: s.number, flag: s.flag || "" } }, b, ...badges(s));
      shade(item, s.weight, peak);
      return item;
    }));
  }

  function legend(cited) {
    const measured = cited.support.some((s) => s.weight !== null && s.weight !== undefined);
    return measured
      ? `Shaded by how much the answer relied on each passage (ablation weight; relied on from ` +
          `${cited.relied_threshold.toFixed(2)}).`
      : "Not measured how much the answer relied on each passage (a streamed answer gives citations only).";
  }

  function ensureDialog() {
    if (dialog) return dialog;
    dialog = el("dialog", { class: "citation-dialog", "aria-labelledby": "citation-title" });
    document.body.append(dialog);
    return dialog;
  }

  function show(cited, number, claim, opener, at = null) {
    const d = ensureDialog();
    const p = cited.passages[number - 1];
    const s = cited.support[number - 1] || {};
    if (claim === null) {
      const first = cited.citations.find((c) => c.number === number);
      claim = first ? claimBefore(cited.text, first.start) : cited.text.replace(/\[[^\]]*\]/g, " ");
    }
    // the quoted span of the citation clicked (``at``: its bracket's start; a passage cited twice quotes
    // two spans), else of the passage's first quoting citation
    const quoting = cited.citations.filter((c) => c.number === number && c.quote_start != null);
    const q = quoting.find((c) => c.start === at) || quoting[0];
    const match = q ? { start: q.quote_start, end: q.quote_end, shared: new Set() } : bestSentence(p.text, claim);
    const reopen = (n, c) => show(cited, n, c, opener);
    const close = el("button", { type: "button", class: "close" }, "Close");
    close.addEventListener("click", () => d.close());
    d.replaceChildren(
      el("div", { class: "citation-head" },
        el("h2", { id: "citation-title" }, `Passage [${number}]: ${label(p)}`), close),
      el("p", { class: "muted small where" },
        `${p.path} · characters ${p.start}–${p.end}` + (p.title ? ` · ${p.title}` : "")),
      el("p", { class: "support" }, `Weight ${fmt(s.weight)}`, " ", ...badges(s)),
      claim ? el("p", { class: "claim" }, el("span", { class: "muted" }, "The answer: "), `“${claim}”`) : "",
      el("div", { class: "passage-text", tabindex: 0, "aria-label": `Text of passage ${number}` },
        ...highlighted(p.text, match)),
      el("p", { class: "muted small" }, q
        ? "Highlighted: the words of the passage the answer quotes verbatim."
        : match
        ? "Highlighted: the passage's sentence sharing the most words with the answer's claim (shared words " +
            "underlined)."
        : "No sentence of this passage shares a word with the answer's claim."),
      el("h3", {}, "All passages"),
      el("p", { class: "muted small" }, legend(cited)),
      sourceList(cited, reopen, number),
    );
    if (!d.open) {
      d.showModal();
      d.addEventListener("close", () => opener?.isConnected && opener.focus(), { once: true });
    }
    close.focus();
  }

  function render(article, cited) {
    if (!article || !cited || !Array.isArray(cited.passages)) return;
    const body = article.querySelector(".msg-body") || article;
    const open = (n, claim, opener, at) => show(cited, n, claim, opener, at);
    markers(body, cited, open);
    article.querySelector(".citations-panel")?.remove();
    const flagged = cited.support.filter((s) => s.flag);
    const panel = el("section", { class: "citations-panel", "aria-label": "Sources of this answer" },
      el("h3", {}, "Sources"),
      el("p", { class: "muted small" }, legend(cited),
        flagged.length ? ` ${flagged.length} flagged.` : ""),
      cited.unknown_citations?.length
        ? el("p", { class: "badge warn" },
          `Cites ${cited.unknown_citations.map((n) => `[${n}]`).join(", ")}, but there is no such passage`)
        : null,
      sourceList(cited, open));
    body.after(panel);
  }

  return { render, claimBefore, bestSentence };
})();
