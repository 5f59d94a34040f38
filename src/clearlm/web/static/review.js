// clearlm review queue (/review): lists items from /v1/review and posts decisions. Every text a request, a
// model or a reviewer wrote is set as text (clearlm.el), never parsed as HTML.
"use strict";

(() => {
  const { api, attempt, say, el } = clearlm;
  const $ = (id) => document.getElementById(id);
  const list = $("review-items");
  const filter = $("review-status");
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const LABELS = { escalated_request: "escalated request", support_handoff: "support hand-off", grade_review: "grade review", quiz_approval: "quiz approval" };

  async function load() {
    const status = filter.value;
    const { data } = await api(`/v1/review?status=${encodeURIComponent(status)}`);
    $("review-count").textContent = data.length
      ? `${data.length} ${status === "all" ? "" : status + " "}item${data.length === 1 ? "" : "s"}`
      : "";
    list.replaceChildren(...(data.length ? data.map(card) : [el("p", { class: "card muted" }, status === "open" ? "Nothing waits for review." : "No items.")]));
  }

  // A prompt as stored: text, or a list of {role, content}.
  function prompt(value) {
    if (value == null) return el("p", { class: "muted" }, "(not stored)");
    if (typeof value === "string") return el("div", { class: "text" }, value);
    return el("ol", { class: "messages" }, ...value.map((m) =>
      el("li", { class: `message role-${m.role}` }, el("span", { class: "role" }, m.role), el("div", { class: "text" }, m.content))));
  }

  // The policy's findings: per stage, per scanned text, scanner, action and what it found (never the text).
  function findings(gov) {
    if (!gov) return el("p", { class: "muted" }, "No findings recorded.");
    const items = [];
    const results = (stage, rs) => {
      for (const r of rs || []) {
        if (r.action === "allow" && !(r.findings || []).length) continue;
        const where = r.message !== undefined ? `message ${r.message + 1}` : r.choice !== undefined ? `answer ${r.choice + 1}` : r.target ? "target" : "";
        const found = (r.findings || []).map((f) => `${f.type} (${f.score})`).join(", ") || "no span";
        items.push(el("li", {}, el("strong", {}, `${stage}${where ? " · " + where : ""}: `), `${r.scanner} → ${r.action}; found ${found}`));
      }
    };
    if (gov.input) results("input", gov.input.results);
    for (const o of gov.output || []) results("output", (o.results || []).map((r) => ({ ...r, choice: o.choice })));
    for (const d of gov.documents || []) items.push(el("li", {}, el("strong", {}, "document: "), `${d.chunk_id ?? ""} → ${d.action}`));
    for (const r of gov.returned || []) items.push(el("li", {}, el("strong", {}, "returned: "), JSON.stringify(r)));
    return el("div", {},
      el("p", {}, "Policy ", el("code", {}, gov.policy || "?"), gov.escalated ? el("span", { class: "badge warn" }, "escalated") : ""),
      items.length ? el("ul", { class: "findings" }, ...items) : el("p", { class: "muted" }, "No findings listed."));
  }

  function output(value) {
    if (value == null) return el("p", { class: "muted" }, "(none)");
    const texts = Array.isArray(value) ? value : [value];
    return el("div", {}, ...texts.map((t) => el("div", { class: "text answer" }, typeof t === "string" ? t : JSON.stringify(t))));
  }

  function details(item) {
    const p = item.payload || {};
    if (item.kind !== "escalated_request") {
      return [el("h3", {}, "Details"), el("pre", { class: "text" }, JSON.stringify(p, null, 2))];
    }
    const facts = [p.model && `model ${p.model}`, p.endpoint, p.status_code && `status ${p.status_code}`, p.finish_reason && `finish ${p.finish_reason}`]
      .filter(Boolean).join(" · ");
    return [
      el("p", { class: "muted small" }, facts, p.origin?.conversation_id ? ` · from conversation ${p.origin.conversation_id}` : ""),
      el("h3", {}, "Request"), prompt(p.prompt),
      el("h3", {}, "Answer given"), output(p.output),
      el("h3", {}, "Why it is here"), findings(p.findings),
    ];
  }

  function decided(item) {
    const d = item.decision || {};
    return el("div", { class: "decided" },
      el("p", {}, el("strong", {}, item.status), ` by ${item.decided_by || "?"} · ${when(item.decided_at)}`),
      d.answer ? [el("h3", {}, "Reviewer's answer"), el("div", { class: "text answer" }, d.answer)] : "",
      d.note ? el("p", {}, "Note: ", d.note) : "");
  }

  function actions(item) {
    const answerId = `answer-${item.id}`;
    const noteId = `note-${item.id}`;
    const answer = el("textarea", { id: answerId, rows: "3", placeholder: "The reply the requester gets instead (for Answer)" });
    const note = el("input", { id: noteId, type: "text", placeholder: "Why, for the audit record (optional)" });
    const decide = (action) => (e) => attempt(async () => {
      const body = { action };
      if (action === "answer") {
        if (!answer.value.trim()) {
          answer.focus();
          throw new Error("Write the answer first: it is what the requester gets");
        }
        body.answer = answer.value;
      }
      if (note.value.trim()) body.note = note.value;
      const done = await api(`/v1/review/${encodeURIComponent(item.id)}/decision`, { method: "POST", body });
      say(`${done.title.slice(0, 60)}: ${done.status}`);
      await load();
      (list.querySelector("button") || filter).focus();
    }, { busy: e.currentTarget });
    return el("div", { class: "decide" },
      el("label", { for: answerId }, "Answer"), answer,
      el("label", { for: noteId }, "Note"), note,
      el("div", { class: "row buttons" },
        el("button", { type: "button", class: "approve", onclick: decide("approve") }, "Approve"),
        el("button", { type: "button", class: "primary answer-button", onclick: decide("answer") }, "Answer"),
        el("button", { type: "button", class: "danger dismiss", onclick: decide("dismiss") }, "Dismiss")));
  }

  function card(item) {
    const headingId = `title-${item.id}`;
    return el("article", { class: "card review-item", dataset: { id: item.id, status: item.status }, "aria-labelledby": headingId },
      el("h2", { id: headingId }, item.title),
      el("p", { class: "row meta" },
        el("span", { class: "badge" }, LABELS[item.kind] || item.kind),
        el("span", { class: `badge status-${item.status}` }, item.status),
        el("span", { class: "muted" }, when(item.created_at)),
        item.request_id ? el("code", { class: "muted" }, item.request_id) : ""),
      ...details(item),
      item.status === "open" ? actions(item) : decided(item));
  }

  filter.addEventListener("change", () => attempt(load));
  $("review-reload").addEventListener("click", (e) => attempt(load, { busy: e.currentTarget }));
  attempt(load);
})();
