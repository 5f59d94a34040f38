// clearlm "Why?" panel: explains one answer of a conversation against the whole conversation.
// window.clearlmWhy.open({conversationId, messageId, article}) reads GET /v1/conversations/{id}, asks
// POST /v1/explain (streamed: progress, then the explanation) and shows a heatmap over the prompt and
// history. Every token, word and message is set as text (clearlm.el / textContent), never parsed as HTML;
// shades are CSS classes (.pos-0..9 / .neg-0..9): the Content-Security-Policy forbids inline styles.
"use strict";

(() => {
  const { api, stream, say, el, ApiError } = clearlm;

  // The methods offered, the default first. Occlusion is the default: in the README's faithfulness table
  // it is the most faithful method (comprehensiveness 0.59 against 0.23 for random scores, the best
  // sufficiency and Soft-NC), and the fastest of the faithful ones (integrated gradients is less faithful
  // at three times the cost); saliency and attention are quicker but rank less faithfully.
  const METHODS = [
    ["occlusion", "Occlusion (default)", {}, "Leaves each token out and measures how much less likely the answer becomes. " +
      "The default: the most faithful method in clearlm's faithfulness test (README, Faithfulness), and the fastest of the faithful ones: one forward pass per prompt token."],
    ["saliency", "Saliency (fast)", {}, "The size of the gradient: quick, about a quarter of occlusion's time, but unsigned and less faithful."],
    ["integrated_gradients", "Integrated gradients (slow, signed)", { placement: "gauss-legendre", steps: 16 },
      "Signed contributions in nats along a path from a zero input, at 16 Gauss-Legendre points (as in the faithfulness test); the completeness gap says how far the scores are from the change they explain."],
    ["input_x_gradient", "Input × gradient (fast, signed)", {}, "A one-step approximation of integrated gradients: signed and quick, but barely above random in the faithfulness test."],
    ["attention", "Attention (where it looked)", {}, "Attention weights: where the model looked, not what mattered (below random by Soft-NC)."],
    ["attention_rollout", "Attention rollout", {}, "Rolled-out attention: below the random floor on every faithfulness measure for the default model; shown for comparison only."],
  ];
  const NON_NEGATIVE = new Set(["saliency", "attention", "attention_rollout"]);
  const IN_HISTORY = new Set(["complete", "stopped", "refused"]); // as the server builds a turn's request
  const MAX_HISTORY = 511;
  const SPECIAL = /^<\|[^|]*\|>$/;
  const STAGES = { attribution: "Explaining", faithfulness: "Measuring faithfulness" };
  const alnum = (ch) => !!ch && /^[\p{L}\p{N}]$/u.test(ch);
  const isSpace = (s) => s.length > 0 && /^\s+$/u.test(s);
  const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const signed = (v) => (v > 0 ? "+" : "") + Number(v).toPrecision(3);
  // Control characters as their visible symbols (U+2400 on): text stays text, and nothing is invisible.
  const visible = (t) => t.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => String.fromCharCode(c === "\u007f" ? 0x2421 : 0x2400 + c.charCodeAt(0)));
  const shown = (t) => visible(t.replace(/\r?\n/g, "⏎").replace(/\t/g, "⇥"));
  let seq = 0;

  // Words of token pieces, as clearlm.explain.aggregate.word_spans: [start, end) spans.
  function wordSpans(tokens, special, message) {
    const spans = [];
    tokens.forEach((tok, i) => {
      const prev = i ? tokens[i - 1] : "";
      const last = spans[spans.length - 1];
      const joins = i > 0 && !special[i] && !special[i - 1] && message[i] === message[i - 1] && alnum(tok[0]) &&
        (alnum(prev.slice(-1)) || (isSpace(prev) && !prev.includes("\n") && last[1] - last[0] === 1));
      if (joins) last[1] = i + 1;
      else spans.push([i, i + 1]);
    });
    return spans;
  }

  // The chat request the answer was made from: the system prompt, then the history before it.
  function requestOf(conversation, messageId) {
    const messages = conversation.messages || [];
    const at = messages.findIndex((m) => String(m.id) === String(messageId));
    if (at < 0) throw new ApiError("this answer is no longer in the conversation: reload the page");
    const answer = messages[at];
    if (answer.role !== "assistant" || !answer.content.trim()) throw new ApiError("only an answer with text can be explained");
    const history = messages.slice(0, at)
      .filter((m) => (m.role === "user" || m.role === "assistant") && IN_HISTORY.has(m.status) && m.content.trim())
      .map((m) => ({ role: m.role, content: m.content }))
      .slice(-MAX_HISTORY);
    const system = (conversation.settings || {}).system_prompt || "";
    if (system.trim()) history.unshift({ role: "system", content: system });
    if (!history.length) throw new ApiError("there is no prompt before this answer to explain it by");
    return { messages: history, target: answer.content, answer };
  }

  class Panel {
    constructor(trigger) {
      this.trigger = trigger;
      this.id = "why-" + ++seq;
      this.controller = null;
      this.words = true; // word level by default; sub-word on request
      this.pinned = null; // the selected target unit (index into this.targetUnits), null: the whole answer
      this.preview = null; // a unit under the mouse
      this.result = null; // the shown explanation's body ({explanation, faithfulness?})
      this.main = null; // the method's explanation (a contrastive one is shown on top of it)
      this.contrast = null; // {token, unitToken} while a contrastive explanation is shown
      this.build();
    }

    // ---- the frame ---------------------------------------------------------------------------------------
    build() {
      const id = this.id;
      this.method = el("select", { id: `${id}-method`, "aria-describedby": `${id}-method-help` },
        ...METHODS.map(([value, label, , help]) => el("option", { value, title: help }, label)));
      this.method.title = METHODS[0][3];
      this.methodHelp = el("p", { id: `${id}-method-help`, class: "muted why-help" }, METHODS[0][3]);
      this.method.addEventListener("change", () => {
        const help = METHODS.find((m) => m[0] === this.method.value)[3];
        this.methodHelp.textContent = this.method.title = help;
        this.explain();
      });
      this.subword = el("input", { type: "checkbox", id: `${id}-subword` });
      this.subword.addEventListener("change", () => {
        this.words = !this.subword.checked;
        this.pinned = this.preview = null;
        this.render();
      });
      this.faithButton = el("button", { type: "button", onclick: () => this.faithfulness() }, "Faithfulness");
      this.faithButton.title = "Measure how faithful this explanation is: remove (comprehensiveness) or keep only (sufficiency) its top-ranked tokens and see how the answer's probability changes, next to random scores";
      this.cancelButton = el("button", { type: "button", class: "danger", disabled: true, onclick: () => this.cancel() }, "Cancel");
      this.bar = el("progress", { id: `${id}-progress`, max: 1, value: 0 });
      this.barLabel = el("label", { for: `${id}-progress`, class: "why-progress-label" }, "Ready");
      this.progressRow = el("div", { class: "row why-progress", hidden: true }, this.barLabel, this.bar, this.cancelButton);
      this.notice = el("p", { class: "why-notice", role: "status" });
      this.heat = el("div", { class: "why-heat", role: "region", "aria-label": "Prompt and history, shaded by attribution", tabindex: "0" });
      this.legend = el("div", { class: "why-legend" });
      this.targets = el("div", { class: "why-targets", role: "toolbar", "aria-label": "Generated words: move with the arrow keys to see what each drew on" });
      this.targets.addEventListener("mouseleave", () => { this.preview = null; this.shade(); });
      this.targets.addEventListener("keydown", (e) => this.keys(e));
      this.wholeButton = el("button", { type: "button", class: "link", onclick: () => this.select(null) }, "Whole answer");
      this.detail = el("aside", { class: "why-detail", "aria-label": "Selected words" });
      this.faith = el("div", { class: "why-faith", hidden: true });
      this.banner = el("div", { class: "why-banner", hidden: true });
      this.dialog = el("dialog", { class: "why-panel", "aria-labelledby": `${id}-title` },
        el("div", { class: "row why-head" },
          el("h2", { id: `${id}-title`, class: "grow" }, "Why this answer?"),
          el("button", { type: "button", "aria-label": "Close the explanation", onclick: () => this.dialog.close() }, "Close")),
        el("div", { class: "row why-controls" },
          el("label", { for: `${id}-method` }, "Method"), this.method,
          el("span", { class: "row why-check" }, this.subword, el("label", { for: `${id}-subword` }, "Sub-word tokens")),
          this.faithButton),
        this.methodHelp, this.progressRow, this.notice, this.banner,
        el("div", { class: "why-body" },
          el("section", { class: "why-main", "aria-label": "Explanation" },
            el("h3", {}, "What the answer drew on"), this.legend, this.heat,
            el("h3", {}, "The answer ", el("span", { class: "muted" }, "(hover or focus a word; "), this.wholeButton, el("span", { class: "muted" }, ")")),
            this.targets),
          el("div", { class: "why-side" }, this.detail, this.faith)));
      this.dialog.addEventListener("close", () => this.closed());
      document.body.append(this.dialog);
    }

    async open({ conversationId, messageId, article }) {
      this.article = article;
      this.dialog.showModal();
      this.notice.textContent = "Reading the conversation…";
      try {
        const conversation = await api(`/v1/conversations/${encodeURIComponent(conversationId)}`);
        Object.assign(this, requestOf(conversation, messageId));
        if (this.answer.meta && this.answer.meta.citations) {
          this.banner.hidden = false;
          this.banner.replaceChildren(el("p", { class: "muted" }, "This answer also drew on knowledge-base passages; its citations show how much it relied on each. This explanation covers the conversation."));
        }
        await this.explain();
      } catch (e) {
        this.fail(e);
      }
    }

    fail(e) {
      if (e.name === "AbortError") return;
      this.notice.textContent = e.message || String(e);
      this.notice.className = "why-notice error";
      say(e.message || String(e), { error: true });
    }

    closed() {
      this.cancel(true);
      this.dialog.remove();
      const back = this.trigger && this.trigger.isConnected ? this.trigger : this.article && this.article.querySelector("button.why");
      if (back) back.focus();
    }

    // ---- requests ----------------------------------------------------------------------------------------
    async request(method, options, extra = {}) {
      this.cancel(true);
      const controller = (this.controller = new AbortController());
      this.busy(true);
      let body = null;
      try {
        await stream("/v1/explain", { messages: this.messages, target: this.target, method, options, stream: true, ...extra }, (ev) => {
          if (ev.error) throw new ApiError(ev.error.message);
          if (ev.object === "explanation.progress") this.progress(ev);
          else if (ev.object === "explanation") body = ev;
        }, controller.signal);
      } finally {
        if (this.controller === controller) {
          this.controller = null;
          this.busy(false);
        }
        if (!body) controller.abort();
      }
      if (!body) throw new ApiError("the explanation ended without a result: try again");
      return body;
    }

    busy(on) {
      this.progressRow.hidden = !on;
      this.cancelButton.disabled = !on;
      this.method.disabled = this.faithButton.disabled = on;
      this.dialog.setAttribute("aria-busy", on ? "true" : "false");
      if (on) {
        this.bar.removeAttribute("value"); // indeterminate until the first event
        this.barLabel.textContent = "Starting…";
        this.notice.textContent = "";
        this.notice.className = "why-notice";
      }
    }

    progress({ stage, done, total }) {
      this.bar.max = Math.max(total, 1);
      this.bar.value = done;
      this.barLabel.textContent = `${STAGES[stage] || stage}: ${done} of ${total}`;
    }

    cancel(quiet = false) {
      if (!this.controller) return;
      this.controller.abort();
      this.controller = null;
      this.busy(false);
      if (!quiet) this.notice.textContent = "Cancelled.";
    }

    async explain() {
      const [method, , options] = METHODS.find((m) => m[0] === this.method.value);
      this.contrast = null;
      this.banner.hidden = !(this.answer.meta && this.answer.meta.citations);
      this.faith.hidden = true;
      try {
        const body = await this.request(method, options);
        this.main = this.result = body;
        this.render();
        this.notice.textContent = body.explanation ? "" : "The policy withheld this answer: there is nothing to explain.";
      } catch (e) {
        this.fail(e);
      }
    }

    async faithfulness() {
      const [method, , options] = METHODS.find((m) => m[0] === this.method.value);
      try {
        const body = await this.request(method, options, { faithfulness: true });
        this.main = this.result = body;
        this.contrast = null;
        this.render();
        this.showFaithfulness(body.faithfulness);
      } catch (e) {
        this.fail(e);
      }
    }

    async contrastWith(alternative, position, chosen) {
      try {
        const body = await this.request("contrastive", { contrast: alternative, position });
        this.result = body;
        this.contrast = { alternative, chosen };
        this.render();
        this.banner.hidden = false;
        this.banner.replaceChildren(
          el("p", {}, "Why ", el("q", { class: "why-chip" }, shown(chosen)), " and not ", el("q", { class: "why-chip" }, shown(alternative)),
            "? Red: pushed toward the answer's word; blue: toward the alternative."),
          el("button", { type: "button", onclick: () => this.back() }, "Back to the explanation"));
      } catch (e) {
        this.fail(e);
      }
    }

    back() {
      this.result = this.main;
      this.contrast = null;
      this.banner.hidden = !(this.answer.meta && this.answer.meta.citations);
      this.render();
    }

    // ---- the view ----------------------------------------------------------------------------------------
    render() {
      const R = this.result && this.result.explanation;
      this.heat.replaceChildren();
      this.targets.replaceChildren();
      this.detail.replaceChildren();
      this.legend.replaceChildren();
      if (!R) return;
      this.R = R;
      const n = R.source_tokens.length;
      const all = Array.from({ length: n }, (_, i) => i);
      const displayed = (i) => !R.source_special[i] && R.source_message[i] >= 0; // not template or special
      const spans = this.words ? wordSpans(R.source_tokens, R.source_special, R.source_message) : all.map((i) => [i, i + 1]);
      this.sourceUnits = spans.filter(([a, b]) => a < R.n_prompt && all.slice(a, b).every(displayed));
      const tspans = this.words ? wordSpans(R.target_tokens, R.target_tokens.map(() => false), R.target_tokens.map(() => 0))
        : R.target_tokens.map((_, t) => [t, t + 1]);
      this.targetUnits = tspans;
      this.signed = !NON_NEGATIVE.has(R.method) || R.method === "contrastive";
      // the prompt and history, a line per message
      let lastMessage = null;
      let line = null;
      this.sourceSpans = this.sourceUnits.map(([a, b]) => {
        const m = R.source_message[a];
        if (m !== lastMessage) {
          lastMessage = m;
          const role = R.source_roles[a] || "template";
          line = el("p", { class: `why-msg role-${role}` }, el("span", { class: "why-role badge" }, role));
          this.heat.append(line);
        }
        const text = R.source_tokens.slice(a, b).join("");
        const span = el("span", { class: "src" }, visible(text));
        line.append(span);
        return span;
      });
      // the generated words: a toolbar of buttons (one tab stop; arrows move)
      this.targetButtons = tspans.map(([a, b], u) => {
        const button = el("button", { type: "button", class: "tgt", tabindex: u === 0 ? "0" : "-1", "aria-pressed": "false", dataset: { unit: String(u) } },
          shown(R.target_tokens.slice(a, b).join("")));
        button.addEventListener("mouseenter", () => { this.preview = u; this.shade(); });
        button.addEventListener("focus", () => this.select(u)); // selection follows focus
        button.addEventListener("click", () => this.select(u));
        return button;
      });
      this.targets.append(...this.targetButtons);
      this.legendOf(R);
      if (this.contrast) this.pinned = this.unitOfToken(R.params.position);
      else if (this.pinned !== null && this.pinned >= tspans.length) this.pinned = null;
      this.shade();
    }

    legendOf(R) {
      const bins = [...Array(10).keys()];
      const swatches = this.signed ? [...bins.slice().reverse().map((b) => `neg-${b}`), ...bins.map((b) => `pos-${b}`)] : bins.map((b) => `pos-${b}`);
      const unit = { occlusion: "nats", integrated_gradients: "nats", input_x_gradient: "nats", contrastive: "nats" }[R.method];
      this.legend.append(
        el("span", {}, this.signed ? "pushed away" : "less"),
        el("span", { class: "why-scale", "aria-hidden": "true" }, ...swatches.map((c) => el("span", { class: `swatch ${c}` }))),
        el("span", {}, this.signed ? "pushed toward" : "more"),
        el("span", { class: "muted" }, `${R.method}${unit ? ", " + unit : ""}, shades relative to the largest score shown · ${this.words ? "words" : "sub-word tokens"}`));
      const gaps = (R.completeness_gap || []).filter((g) => g !== null);
      if (gaps.length) {
        this.legend.append(el("span", { class: "why-gap" }, ` · completeness gap: at most ${(100 * Math.max(...gaps)).toFixed(1)}%`));
      }
    }

    unitOfToken(t) {
      return this.targetUnits.findIndex(([a, b]) => a <= t && t < b);
    }

    // The row shown: the selected unit's target rows summed (null: the whole answer's).
    row() {
      const R = this.R;
      const u = this.preview !== null ? this.preview : this.pinned;
      const [a, b] = u === null ? [0, R.target_tokens.length] : this.targetUnits[u];
      const row = new Array(R.source_tokens.length).fill(null);
      for (let t = a; t < b; t++) {
        R.scores[t].forEach((v, s) => { if (v !== null) row[s] = (row[s] || 0) + v; });
      }
      return { row, u };
    }

    shade() {
      if (!this.R) return;
      const R = this.R;
      const { row, u } = this.row();
      const sum = (a, b) => {
        let total = null;
        for (let s = a; s < b; s++) if (row[s] !== null) total = (total || 0) + row[s];
        return total;
      };
      const values = this.sourceUnits.map(([a, b]) => sum(a, b));
      // generated words are sources of later ones: target token t is source n_prompt + t
      const genValues = this.targetUnits.map(([a, b]) => sum(R.n_prompt + a, Math.min(R.n_prompt + b, R.source_tokens.length)));
      const peak = Math.max(0, ...values.concat(genValues).filter((v) => v !== null).map(Math.abs));
      const classOf = (v) => {
        if (v === null) return "na";
        const bin = peak > 0 ? Math.min(9, Math.floor((Math.abs(v) / peak) * 10)) : 0;
        return `${v < 0 && this.signed ? "neg" : "pos"}-${bin}`;
      };
      const label = (v) => (v === null ? "not before the selected words" : this.signed ? signed(v) : Number(v).toPrecision(3));
      this.sourceSpans.forEach((span, i) => {
        span.className = `src ${classOf(values[i])}`;
        span.title = label(values[i]);
      });
      this.targetButtons.forEach((button, i) => {
        const selected = u !== null && i === u;
        button.className = `tgt ${selected ? "sel" : classOf(genValues[i])}`;
        button.setAttribute("aria-pressed", String(this.pinned === i));
      });
      this.heat.dataset.row = u === null ? "all" : String(u);
      this.describe(u, values);
    }

    select(u) {
      this.preview = null;
      this.pinned = u;
      if (u !== null) {
        this.targetButtons.forEach((b, i) => b.setAttribute("tabindex", i === u ? "0" : "-1"));
      }
      this.shade();
    }

    keys(e) {
      const buttons = this.targetButtons || [];
      const at = buttons.indexOf(document.activeElement);
      if (at < 0) return;
      const next = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1, Home: 0, End: buttons.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      const to = Math.max(0, Math.min(buttons.length - 1, next));
      buttons[to].focus();
    }

    // The side panel: the selected words, their probability, top sources, alternatives, gap.
    describe(u, values) {
      const R = this.R;
      const [a, b] = u === null ? [0, R.target_tokens.length] : this.targetUnits[u];
      const text = R.target_tokens.slice(a, b).join("");
      const p = R.target_probs.slice(a, b).reduce((x, y) => (x === null || y === null ? null : x * y), 1);
      const items = this.sourceUnits.map((span, i) => [i, values[i]]).filter(([, v]) => v !== null)
        .sort((x, y) => Math.abs(y[1]) - Math.abs(x[1])).slice(0, 5);
      const chip = (s) => el("span", { class: "why-chip" }, shown(s));
      const parts = [
        el("h3", {}, u === null ? "The whole answer" : "Selected"),
        u === null ? el("p", { class: "muted" }, "The heatmap sums over every generated word.") : el("p", {}, chip(text)),
      ];
      if (u !== null) parts.push(el("p", {}, `Probability: ${fmt(p)}`));
      const gaps = (R.completeness_gap || []).slice(a, b).filter((g) => g !== null);
      if (gaps.length) {
        parts.push(el("p", { class: "why-gap-detail" }, `Completeness gap: ${(100 * Math.max(...gaps)).toFixed(1)}%`,
          el("span", { class: "muted" }, " (how far the scores' sum is from the change in log-probability they explain)")));
      }
      parts.push(el("h4", {}, "Drew most on"));
      parts.push(items.length
        ? el("ol", { class: "why-top" }, ...items.map(([i, v]) => {
            const [sa, sb] = this.sourceUnits[i];
            return el("li", {}, chip(R.source_tokens.slice(sa, sb).join("")), " ", el("span", { class: "muted" }, this.signed ? signed(v) : Number(v).toPrecision(3)));
          }))
        : el("p", { class: "muted" }, "Nothing before these words."));
      if (u !== null && !this.contrast) parts.push(...this.alternatives(a));
      this.detail.replaceChildren(...parts);
    }

    // Alternatives at target token t, from the answer's recorded top log-probabilities.
    alternatives(t) {
      const R = this.R;
      const lps = this.answer.meta && this.answer.meta.logprobs;
      const head = el("h4", {}, "Alternatives");
      if (!lps || !lps.length) {
        return [head, el("p", { class: "muted" }, "No alternatives were recorded for this answer (the policy changed it, or it was not generated here).")];
      }
      const start = R.target_tokens.slice(0, t).join("").length;
      let offset = 0;
      const entry = lps.find((lp) => {
        const hit = offset === start && lp.token === R.target_tokens[t];
        offset += lp.token.length;
        return hit;
      });
      // not the token itself, nor a special token (shown empty, or as text that is no one token) nor a
      // piece of a character (�): none of them can be contrasted
      const alts = entry ? (entry.top_logprobs || []).filter((x) => x.token && x.token !== R.target_tokens[t] &&
        !SPECIAL.test(x.token) && !x.token.includes("\ufffd")) : [];
      if (!alts.length) return [head, el("p", { class: "muted" }, "No other likely token was recorded at this step.")];
      return [head, el("p", { class: "muted" }, "The model's other choices for ", el("span", { class: "why-chip" }, shown(R.target_tokens[t])), " (click one: why this and not that?)"),
        el("ul", { class: "why-alts" }, ...alts.map((x) => el("li", {},
          el("button", { type: "button", class: "why-alt", onclick: () => this.contrastWith(x.token, t, R.target_tokens[t]) },
            el("span", { class: "why-chip" }, shown(x.token)), ` p = ${fmt(Math.exp(x.logprob))}`))))];
    }

    showFaithfulness(f) {
      this.faith.hidden = false;
      if (!f) {
        this.faith.replaceChildren(el("p", { class: "muted" }, "Nothing to measure: the answer was withheld."));
        return;
      }
      const r = f.random || {};
      this.faith.replaceChildren(
        el("h3", {}, "Faithfulness"),
        el("dl", { class: "why-figures" },
          el("dt", {}, "Comprehensiveness"), el("dd", { class: "why-comp" }, fmt(f.comprehensiveness)),
          el("dd", { class: "muted why-floor" }, `random: ${fmt(r.comprehensiveness)}; higher is better`),
          el("dt", {}, "Sufficiency"), el("dd", { class: "why-suff" }, fmt(f.sufficiency)),
          el("dd", { class: "muted why-floor" }, `random: ${fmt(r.sufficiency)}; lower is better`)),
        el("p", { class: "muted" }, "The drop in the answer's probability when its top-ranked 1–50% of tokens are removed (comprehensiveness) or are all that is kept (sufficiency)."));
    }
  }

  let current = null;
  window.clearlmWhy = {
    // Open the panel for one answer; the button that called it gets the focus back on close.
    open({ conversationId, messageId, article }) {
      if (current && current.dialog.open) current.dialog.close();
      const trigger = document.activeElement instanceof HTMLElement && document.activeElement !== document.body ? document.activeElement : null;
      current = new Panel(trigger);
      return current.open({ conversationId, messageId, article });
    },
  };
})();
