// clearlm support desk (/support/conversations/{id}): an agent's reply and the hand-back, sent to
// /v1/support; the page is then loaded again, so the transcript shows what the server stored. "Suggest a
// reply" asks /v1/support/.../suggestion and puts the suggestion in the reply box (never sends it), with
// the knowledge base's quoted answer and its citations below. Text only: nothing is parsed as HTML.
"use strict";

(() => {
  const { api, attempt, el, say } = clearlm;
  const page = document.getElementById("support-conversation");
  const form = document.getElementById("reply-form");
  if (!page || !form) return;
  const id = encodeURIComponent(page.dataset.conversationId);
  const text = document.getElementById("reply-text");

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      if (!text.value.trim()) {
        text.focus();
        throw new Error("Write the reply first: it is what the customer reads");
      }
      const language = (document.getElementById("reply-language") || {}).value || "";  // translated when set
      const engine = (document.getElementById("reply-engine") || {}).value || "auto";
      const body = language.trim() ? { text: text.value, language: language.trim(), engine } : { text: text.value };
      await api(`/v1/support/conversations/${id}/replies`, { method: "POST", body });
      window.location.reload();
    }, { busy: document.getElementById("reply-send") });
  });

  // The suggestion's sources: what the knowledge base quoted, each [n] with its document and section.
  function sources(k) {
    if (!k) return [];
    if (!k.quote) {
      return [el("p", { class: "muted small" }, "The knowledge base ", el("code", {}, k.knowledge_base),
        ` does not answer this: “${k.answer}”`)];
    }
    return [
      el("p", { class: "small" }, "Quoted from the knowledge base ", el("code", {}, k.knowledge_base), ":"),
      el("blockquote", { class: "quoted" }, k.answer),
      el("ul", { class: "citations", "aria-label": "Citations" }, k.citations.map((c) =>
        el("li", { dataset: { n: String(c.n) } }, el("strong", {}, `[${c.n}]`), " ", c.path,
          c.heading ? el("span", { class: "muted" }, ` · ${c.heading}`) : null))),
    ];
  }

  const suggest = document.getElementById("suggest");
  const panel = document.getElementById("suggestion");
  suggest.addEventListener("click", () => attempt(async () => {
    const s = await api(`/v1/support/conversations/${id}/suggestion`, { method: "POST" });
    if (!s.text) throw new Error("No suggestion this time: the model gave no text" +
      (s.refused ? " (the policy refused it)" : "") + "; write the reply yourself");
    // An empty box gets the suggestion; what the agent already wrote is kept, the suggestion after it.
    text.value = text.value.trim() ? `${text.value.trimEnd()}\n\n${s.text}` : s.text;
    panel.replaceChildren(...[
      el("p", { class: "muted small" }, el("span", { class: "badge ai" }, "AI-generated"),
        " Suggested reply in the box above: check and edit it, then send it. Nothing was sent."),
      s.refused && el("p", { class: "muted small" }, "The policy refused the model's draft."),
      ...sources(s.knowledge),
    ].filter(Boolean));
    panel.hidden = false;
    text.focus();
    say("Suggestion in the reply box: edit it, then send it");
  }, { busy: suggest }));

  const back = document.getElementById("hand-back");
  back.addEventListener("click", () => attempt(async () => {
    await api(`/v1/support/conversations/${id}/handback`, { method: "POST" });
    window.location.reload();
  }, { busy: back }));
})();
